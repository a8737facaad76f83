"""Stage 1 streams: frame-wide statistics do not keep the exposure's tiles in memory.

refpix's reference-pixel signals and jump's frame-wide tables are computed in passes of their own
(``jwst_dask.steps._two_pass``), so the tile chain after them holds O(1) ramp tiles at a time
instead of the whole exposure. Checked on the graph structure of small two-pass graphs, and by running
calwebb_tso1 on a small time series (SUB64P, 120 integrations, so that jump runs in sigma-clip
mode) cut into 16 tiles, summing the 4-D blocks held after every task. The tasks run one at a
time in the fused graph's priority order (:func:`jwst_dask.fusion.sweep_order`), as a distributed
worker runs them; and the products are written on an embedded cluster, whose scheduler counts the
bytes held. The same runs with one-pass statistics (the former graph) are the control: they hold
the whole exposure, and their products must be identical.
"""

from __future__ import annotations

import _sim
import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split

from jwst_dask.steps import _two_pass

sims = _sim.sims  # the session fixture

NINTS, NGROUPS, SIZE, TILE_X = 120, 6, 64, 4


def _graph(x) -> dict:
    from dask._task_spec import convert_legacy_graph

    return convert_legacy_graph(dict(x.__dask_graph__()))


def _ancestors(dsk: dict, keys) -> set:
    todo, seen = list(keys), set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        todo.extend(dsk[k].dependencies)
    return seen


def test_two_pass_graph_has_independent_passes():
    values = np.arange(6 * 8, dtype=np.float64).reshape(6, 8)
    src = da.from_array(values, chunks=(6, 2))
    upstream = src * 3.0
    main = upstream + 1.0
    stat, gated = _two_pass.frame_statistic([upstream], lambda u: u.sum(), main)

    assert float(stat.compute(scheduler="sync")) == pytest.approx(3.0 * values.sum())
    np.testing.assert_array_equal(gated.compute(scheduler="sync"), values * 3.0 + 1.0)

    dsk = _graph(gated)
    stat_keys = _ancestors(dsk, [(stat.name,)])
    chain = set(dsk) - stat_keys
    # the statistic has tasks of its own: no key of the main chain's copy is shared with it, and
    # none of the original (ungated) tasks is left in either
    assert stat_keys.isdisjoint(chain)
    assert not set(_graph(main)) & set(dsk)
    # the source is read twice, once by each pass (4 chunks each)
    reads = [k for k in dsk if key_split(k) == "array"]
    assert len(reads) == 8 and len(stat_keys.intersection(reads)) == 4
    # every task of the main chain that computes waits for the statistic (constants, the data
    # already in the graph, do not)
    from dask._task_spec import DataNode

    stat_out = {k for k in stat_keys if isinstance(k, tuple) and k[0] == stat.name}
    computing = [k for k in chain if not isinstance(dsk[k], DataNode)]
    assert len(computing) >= 8
    for k in computing:
        assert _ancestors(dsk, [k]) & stat_out, k


def test_later_passes_share_earlier_statistics():
    values = np.arange(4 * 8, dtype=np.float64).reshape(4, 8)
    src = da.from_array(values, chunks=(4, 2))
    s1, g1 = _two_pass.frame_statistic([src], lambda u: u.max(), src)
    s2, g2 = _two_pass.frame_statistic([g1 - s1], lambda u: u.min(), g1 - s1)
    dsk = _graph(g2 + s2)
    # the first statistic is computed once: later copies share it instead of recomputing it
    assert sum(1 for k in dsk if key_split(k) == "chunk_max") == 4
    # three passes read the source: s1, s2's copy of the chain after s1, and the main chain
    assert sum(1 for k in dsk if key_split(k) == "array") == 3 * 4
    assert float(s2.compute(scheduler="sync")) == values.min() - values.max()
    np.testing.assert_array_equal(
        (g2 + s2).compute(scheduler="sync"), values - 2 * values.max() + values.min()
    )


def _run_by_priority(arrays) -> tuple[list[np.ndarray], int]:
    """Compute ``arrays`` as the distributed cluster does: the stripe-fused graph
    (:mod:`jwst_dask.fusion`), one task at a time in the priority order it is submitted with
    (the synchronous scheduler's last-in-first-out stack does not follow it), freeing each result
    once its dependents have run. Returns the values and the largest sum of 4-D blocks held
    between tasks."""
    import heapq

    from dask._task_spec import DataNode

    from jwst_dask import fusion

    dsk, keys, repack, priority = fusion.fused_graph(*arrays)
    deps = {k: set(v.dependencies) for k, v in dsk.items()}
    dependents: dict = {k: set() for k in dsk}
    for k, d in deps.items():
        for x in d:
            dependents[x].add(k)
    waiting = {k: set(d) for k, d in deps.items()}
    outputs = set(keys)
    remaining = {k: len(v) for k, v in dependents.items()}
    ready = [(priority[k], k) for k in dsk if not deps[k]]
    heapq.heapify(ready)
    cache: dict = {}
    peak = 0
    while ready:
        _, key = heapq.heappop(ready)
        node = dsk[key]
        cache[key] = node() if isinstance(node, DataNode) else node({d: cache[d] for d in deps[key]})
        held = sum(v.nbytes for v in cache.values() if isinstance(v, np.ndarray) and v.ndim == 4)
        peak = max(peak, held)
        for d in deps[key]:
            remaining[d] -= 1
            if not remaining[d] and d not in outputs:
                del cache[d]
        for x in dependents[key]:
            waiting[x].discard(key)
            if not waiting[x]:
                heapq.heappush(ready, (priority[x], x))
    values = list(repack([cache[k] for k in keys]))
    return values, peak


def _run_tso1(uncal):
    from jwst_dask.pipelines import Tso1Pipeline

    pipe = Tso1Pipeline()
    pipe.input_chunks = {"y": SIZE, "x": TILE_X}
    products = pipe.run_all(str(uncal))
    arrays = {
        f"{suffix}.{name}": products[suffix][name].data
        for suffix in ("rate", "rateints")
        for name in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")
    }
    values, peak = _run_by_priority(list(arrays.values()))
    return dict(zip(arrays, values, strict=True)), peak


@pytest.mark.slow
def test_tso1_holds_a_few_tiles_not_the_exposure(sims):
    uncal = sims.get("nircam-tso", nints=NINTS, ngroups=NGROUPS)
    exposure = NINTS * NGROUPS * SIZE * SIZE * 4  # the float32 ramp
    tile = exposure // (SIZE // TILE_X)

    streamed, peak = _run_tso1(uncal)

    with dask.config.set({_two_pass.CONFIG_KEY: False}):  # the one-pass graph
        control, control_peak = _run_tso1(uncal)

    ntiles = SIZE // TILE_X
    assert control_peak >= exposure, f"the control holds {control_peak / tile:.1f} tiles of {ntiles}"
    assert peak <= exposure / 2 and peak <= control_peak / 3, f"held {peak / tile:.1f} tiles of {ntiles}"
    for name in control:
        np.testing.assert_array_equal(streamed[name], control[name], err_msg=name)
    assert np.isfinite(streamed["rate.SCI"]).mean() > 0.9


class _HeldBytes:
    """A scheduler plugin: the peak of the bytes held in worker memory, summed over tasks."""

    name = "jwst-dask-held-bytes"

    def __init__(self):
        self.now = self.peak = 0

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        ts = self.scheduler.tasks.get(key)
        nbytes = max(ts.nbytes, 0) if ts is not None else 0
        if finish == "memory":
            self.now += nbytes
        elif start == "memory":
            self.now -= nbytes
        self.peak = max(self.peak, self.now)


@pytest.mark.slow
def test_tso1_streams_on_the_embedded_cluster(sims, tmp_path):
    """The default path (`jwst-dask run`): products written from the fused graph, submitted with
    the sweep priorities to the embedded cluster (one worker, two threads, in this process), hold
    a few tiles at a time, not the exposure."""
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    from jwst_dask.io import open_product, write_products
    from jwst_dask.pipelines import Tso1Pipeline

    uncal = sims.get("nircam-tso", nints=NINTS, ngroups=NGROUPS)
    exposure = NINTS * NGROUPS * SIZE * SIZE * 4

    def peak_of(out_dir):
        out_dir.mkdir()
        pipe = Tso1Pipeline()
        pipe.input_chunks = {"y": SIZE, "x": TILE_X}
        products = pipe.run_all(str(uncal))
        items = [(products[s], out_dir / f"x_{s}.fits") for s in ("rate", "rateints")]
        with (
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc,
            Client(lc) as client,
        ):
            client.register_plugin(type("HeldBytes", (_HeldBytes, SchedulerPlugin), {})())
            write_products(items, compute=False).compute()
            return client.run_on_scheduler(
                lambda dask_scheduler: dask_scheduler.plugins[_HeldBytes.name].peak
            )

    peak = peak_of(tmp_path / "streamed")
    with dask.config.set({_two_pass.CONFIG_KEY: False}):  # the one-pass graph
        control = peak_of(tmp_path / "control")

    # two threads each sweep a stripe with its neighbours' halos: about 8 of the 16 tiles
    assert control >= exposure, f"the control holds {control / exposure:.2f} of the exposure"
    assert 0 < peak <= 0.6 * exposure, f"held {peak / exposure:.2f} of the exposure"
    streamed = open_product(tmp_path / "streamed" / "x_rate.fits")["SCI"].values
    assert np.array_equal(
        streamed, open_product(tmp_path / "control" / "x_rate.fits")["SCI"].values, equal_nan=True
    )
    assert streamed.shape == (SIZE, SIZE) and np.isfinite(streamed).mean() > 0.9
