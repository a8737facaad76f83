"""Stage 1 gives bit-identical products whatever the pixel tiles and whatever the Dask scheduler.

One noisy 128 x 128 exposure with cosmic rays (jumps and their neighbours across tile edges,
saturated stars, a snowball) runs through calwebb_detector1 three times: 64-pixel tiles on the
threaded scheduler, 32-pixel tiles on the threaded scheduler (standing in for 512 vs 256 on a full
frame), and 64-pixel tiles on a real 2-worker distributed cluster. Every array of _rate, _rateints
and _ramp must be equal bit for bit (NaN where NaN).
"""

from __future__ import annotations

import _sim
import dask
import numpy as np
import pytest
from _sim import image_arrays, run_stage1

sims = _sim.sims  # the session fixture

PRODUCTS = ("rate", "rateints", "ramp")


@pytest.fixture(scope="module")
def exposure(sims):
    return sims.get("nircam-mosaic", seed=7, size=128, ngroups=8, nints=2)


@pytest.fixture(scope="module")
def threaded_64(exposure, tmp_path_factory):
    with dask.config.set(scheduler="threads"):
        return run_stage1(exposure, tmp_path_factory.mktemp("t64"), chunks=64, save_calibrated_ramp=True)


def _assert_identical(a: dict, b: dict) -> None:
    for suffix in PRODUCTS:
        xa, xb = image_arrays(a[suffix]), image_arrays(b[suffix])
        assert sorted(xa) == sorted(xb), suffix
        for name in xa:
            assert xa[name].dtype == xb[name].dtype, (suffix, name)
            assert np.array_equal(xa[name], xb[name], equal_nan=xa[name].dtype.kind == "f"), (
                f"{suffix} {name} differs at {np.count_nonzero(xa[name] != xb[name])} elements"
            )


def test_products_are_not_trivial(threaded_64):
    """The comparison means something: the exposure has jumps, saturation and finite rates."""
    from jwst_dask.dq import FLAGS

    rate = image_arrays(threaded_64["rate"])
    gdq = image_arrays(threaded_64["ramp"])["GROUPDQ"]
    assert np.isfinite(rate["SCI"]).mean() > 0.9
    assert np.any(gdq & FLAGS["JUMP_DET"]) and np.any(gdq & FLAGS["SATURATED"])
    assert set(threaded_64) >= set(PRODUCTS)


def test_tile_size_does_not_change_products(exposure, threaded_64, tmp_path):
    with dask.config.set(scheduler="threads"):
        other = run_stage1(exposure, tmp_path, chunks=32, save_calibrated_ramp=True)
    _assert_identical(threaded_64, other)


def test_distributed_cluster_equals_threads(exposure, threaded_64, tmp_path, cluster_client):
    from distributed import get_task_stream

    with dask.config.set(scheduler="dask.distributed"), get_task_stream(cluster_client) as stream:
        other = run_stage1(exposure, tmp_path, chunks=64, save_calibrated_ramp=True)
    # the products were computed by the workers (each in its own process), on both of them
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, workers
    _assert_identical(threaded_64, other)


@pytest.mark.parametrize(
    ("preset", "options", "pipeline", "tiles"),
    [
        ("nircam-tso", {"nints": 24}, "calwebb_tso1", (16, 64)),
        ("miri-image", {"size": 64, "ngroups": 8, "nints": 2}, "calwebb_detector1", (24, 64)),
    ],
)
def test_tile_size_other_presets(sims, tmp_path, preset, options, pipeline, tiles):
    """The time-series configuration and MIRI's steps are tile-independent too (uneven 24-pixel tiles
    included)."""
    uncal = sims.get(preset, seed=5, **options)
    runs = []
    with dask.config.set(scheduler="threads"):
        for tile in tiles:
            runs.append(run_stage1(uncal, tmp_path / f"t{tile}", pipeline=pipeline, chunks=tile))
    for suffix in ("rate", "rateints"):
        a, b = image_arrays(runs[0][suffix]), image_arrays(runs[1][suffix])
        assert sorted(a) == sorted(b)
        for name in a:
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), (suffix, name)
