"""Stripe fusion (jwst_dask.fusion): same results, far fewer tasks, no stripe swallowed by a
reduction, nothing computed twice."""

from __future__ import annotations

import collections

import dask
import dask.array as da
import numpy as np
import pytest

from jwst_dask import cluster, fusion

CALLS: collections.Counter = collections.Counter()


def _count(name):
    def f(block, *rest):
        CALLS[name] += 1
        return block + sum(float(np.asarray(r).sum()) * 0 for r in rest)

    return f


def _chain(x: da.Array, ref: da.Array) -> tuple[da.Array, da.Array]:
    """A stage-1-like chain: per-tile steps, a reference read by two steps, a multi-output
    step, an overlap, and a frame-wide statistic feeding the tiles."""
    a = x.map_blocks(_count("a"), meta=np.array((), x.dtype)) * 2.0
    b = da.map_blocks(np.add, a, ref, dtype=x.dtype)  # the reference, used by two steps
    c = da.map_blocks(np.subtract, b, ref, dtype=x.dtype)
    both = da.map_blocks(lambda v: np.stack([v, -v]), c, new_axis=0, chunks=((2,), *c.chunks), dtype=x.dtype)
    pos, neg = both[0], both[1]
    halo = da.map_overlap(lambda v: v + np.roll(v, 1, axis=-2), pos, depth={1: 1, 2: 1}, boundary="none")
    stat = neg.mean()  # a frame-wide statistic
    out = halo.map_blocks(_count("out"), meta=np.array((), x.dtype)) + stat
    return out, neg


@pytest.fixture
def arrays():
    rng = np.random.default_rng(3)
    xv = rng.normal(size=(3, 64, 48)).astype(np.float64)
    rv = rng.normal(size=(64, 48))
    return xv, rv


def _lazy(xv, rv):
    return da.from_array(xv, chunks=(3, 8, 48)), da.from_array(rv, chunks=(8, 48))


def test_fused_graph_gives_the_numpy_result(arrays):
    xv, rv = arrays
    out, neg = _chain(*_lazy(xv, rv))
    got_out, got_neg = cluster.compute(out, neg, scheduler="threads", progress=False)
    # independent numpy computation of the same chain
    pos = xv * 2.0
    exp_neg = -pos
    shifted = np.empty_like(pos)
    for y0 in range(0, 64, 8):  # the overlap's per-tile roll, with a 1-row halo
        lo, hi = max(0, y0 - 1), min(64, y0 + 9)
        tile = pos[:, lo:hi]
        rolled = tile + np.roll(tile, 1, axis=-2)
        shifted[:, y0 : y0 + 8] = rolled[:, y0 - lo : y0 - lo + 8]
    np.testing.assert_allclose(got_neg, exp_neg)
    np.testing.assert_allclose(got_out, shifted + exp_neg.mean())


def test_fusion_cuts_tasks_and_keeps_stripes_parallel(arrays):
    out, neg = _chain(*_lazy(*arrays))
    from dask.base import collections_to_expr

    plain = dict(collections_to_expr([out, neg], True).optimize().__dask_graph__())
    fused, _, _, priorities = fusion.fused_graph(out, neg)
    # every task has a priority (the unfused graph's order at its output), all distinct
    assert set(priorities) == set(fused)
    assert len(set(priorities.values())) == len(priorities)
    assert len(fused) < 0.6 * len(plain)
    before = collections.Counter(fusion.stripe_of(k) for k in plain)
    after = collections.Counter(fusion.stripe_of(k) for k in fused)
    for stripe in {(s, 0) for s in range(8)}:
        assert 1 <= after[stripe] < 0.6 * before[stripe], (stripe, after[stripe], before[stripe])
    # the frame statistic did not swallow the stripes' chains: every stripe keeps a task of its own
    stripes = {fusion.stripe_of(k) for k in fused if fusion.stripe_of(k) is not None}
    assert {s[0] for s in stripes} >= set(range(8))
    # no fused task holds the work of two different stripes
    from dask._task_spec import Task

    for key, task in fused.items():
        inner = task.args[0] if isinstance(task, Task) and isinstance(task.args[0], dict) else {}
        owners = {fusion.stripe_of(k) for k in inner} - {None}
        assert len(owners) <= 1, (key, owners)


def test_fused_tasks_compute_each_tile_once(arrays):
    CALLS.clear()
    out, neg = _chain(*_lazy(*arrays))
    cluster.compute(out, neg, scheduler="threads", progress=False)
    assert CALLS["a"] == 8  # 8 tiles; 'a' feeds both outputs and the statistic, run once each
    assert CALLS["out"] == 8


def test_stripe_of_names_the_block_a_slice_is_cut_for():
    assert fusion.stripe_of(("x", 0, 0, 5, 0)) == (5, 0)
    assert fusion.stripe_of(("x", 0, 0, 4.1, 0)) == (5, 0)  # cut from block 4 for block 5
    assert fusion.stripe_of(("x", 0, 0, 5.9, 0)) == (5, 0)  # cut from block 6 for block 5
    assert fusion.stripe_of(("x", 3)) is None
    assert fusion.stripe_of("finalize-abc") is None


def test_fused_compute_on_the_cluster(cluster_client, arrays):
    xv, rv = arrays
    out, neg = _chain(*_lazy(xv, rv))
    expected = dask.compute(out, neg, scheduler="sync")
    with dask.config.set(scheduler="dask.distributed"):
        got = cluster.compute(out, neg, progress=False)
    np.testing.assert_allclose(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1])


def test_a_cheap_block_function_is_copied_not_held():
    """A reference block read then translated by a function marked cheap, used by two steps of
    one stripe, runs inside each of them (no task of its own, whose result would wait in memory);
    the same read followed by an unmarked function stays a task of its own."""
    ref = da.from_array(np.arange(64.0).reshape(8, 8), chunks=(2, 8))
    x = da.from_array(np.ones((3, 8, 8)), chunks=(3, 2, 8))

    def graph(translate):
        r = ref.map_blocks(translate, dtype=float)
        one = da.map_blocks(np.add, x, r, dtype=float)  # two outputs, each using r
        two = da.map_blocks(np.multiply, x, r, dtype=float)
        return one, two

    marked = fusion.cheap(lambda b: b * 2.0)
    plain = lambda b: b * 2.0  # noqa: E731
    r = np.arange(64.0).reshape(8, 8) * 2.0
    for func, expect_task in ((marked, False), (plain, True)):
        fused, _, _, _ = fusion.fused_graph(*graph(func))
        names = {k[0] if isinstance(k, tuple) else k for k in fused}
        assert any(n.startswith("lambda") for n in names) == expect_task, names
        one, two = cluster.compute(*graph(func), scheduler="threads", progress=False)
        np.testing.assert_allclose(one, np.broadcast_to(1 + r, (3, 8, 8)))
        np.testing.assert_allclose(two, np.broadcast_to(r, (3, 8, 8)))


def _stripe_graph(nstripes: int) -> dict:
    """Dependencies of a halo pipeline: read(s) -> smooth(s) needs read(s-1..s+1) -> write(s),
    all writes -> done. Keys are block keys ``(name, 0, s, 0)``."""
    deps: dict = {}
    for s in range(nstripes):
        deps[("read", 0, s, 0)] = set()
        deps[("smooth", 0, s, 0)] = {("read", 0, t, 0) for t in (s - 1, s, s + 1) if 0 <= t < nstripes}
        deps[("write", 0, s, 0)] = {("smooth", 0, s, 0)}
    deps["done"] = {("write", 0, s, 0) for s in range(nstripes)}
    return deps


def _held_peak(deps: dict, priority: dict) -> int:
    """Run the graph one task at a time, lowest priority among the ready first; the most block
    results (reads and smoothed blocks; a write returns nothing) held at once, a result being
    freed when its last user has run."""
    users: dict = collections.defaultdict(set)
    for k, ds in deps.items():
        for d in ds:
            users[d].add(k)
    done: set = set()
    held: set = set()
    peak = 0
    while len(done) < len(deps):
        ready = [k for k in deps if k not in done and deps[k] <= done]
        key = min(ready, key=priority.__getitem__)
        done.add(key)
        held.add(key)
        held = {k for k in held if not users[k] <= done}
        peak = max(peak, sum(1 for k in held if k[0] in ("read", "smooth")))
    return peak


@pytest.mark.parametrize("nstripes", [8, 32])
def test_sweep_order_holds_a_few_stripes_whatever_the_rank(nstripes):
    deps = _stripe_graph(nstripes)
    keys = list(deps)
    rng = np.random.default_rng(nstripes)
    # an adversarial tie-break rank: a random topological order (inputs first)
    rank: dict = {}
    pending = set(keys)
    while pending:
        ready = sorted((k for k in pending if deps[k] <= set(rank)), key=repr)
        pick = ready[rng.integers(len(ready))]
        rank[pick] = len(rank)
        pending.discard(pick)
    order = fusion.sweep_order(deps, rank)

    assert sorted(order.values()) == list(range(len(keys)))
    assert all(order[d] < order[k] for k in keys for d in deps[k])  # inputs first
    writes = sorted(range(nstripes), key=lambda s: order[("write", 0, s, 0)])
    assert writes == list(range(nstripes))  # one sweep, first stripe to last
    # a read waits for at most its two neighbours' smoothing: a few results, not the frame
    assert _held_peak(deps, order) <= 5
    assert _held_peak(deps, rank) >= _held_peak(deps, order)
