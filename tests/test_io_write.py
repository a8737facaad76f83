"""Block-by-block FITS writing: values under a real distributed cluster, deferred writes of several
products from one graph, atomicity (nothing is left when a write fails), overwrite rules."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from jwst_dask.errors import InputFileError
from jwst_dask.io import PendingWrite, write_product, write_products

META = {
    "instrument": {"name": "NIRCAM", "detector": "NRCB2"},
    "exposure": {"type": "NRC_IMAGE", "ngroups": 4, "nints": 3},
}


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


def _ramp_ds(rng, shape=(3, 4, 40, 56), chunks=(3, 4, 16, 16)) -> tuple[xr.Dataset, dict]:
    truth = {
        "SCI": rng.integers(0, 65535, shape, endpoint=True).astype(np.uint16),
        "ZEROFRAME": rng.integers(0, 65535, (shape[0], *shape[2:]), endpoint=True).astype(np.uint16),
    }
    ds = xr.Dataset(
        {
            "SCI": (("integration", "group", "y", "x"), da.from_array(truth["SCI"], chunks=chunks)),
            "ZEROFRAME": (("integration", "y", "x"), da.from_array(truth["ZEROFRAME"], chunks=(3, 16, 16))),
        },
        attrs={"meta": META, "model_type": "Level1bModel", "product": "uncal"},
    )
    return ds, truth


def _rate_pair(rng):
    """rate and rateints computed from one lazy ramp, as detector1 would."""
    ramp = rng.normal(10, 2, (3, 5, 32, 40)).astype(np.float32)
    lazy = da.from_array(ramp, chunks=(3, 5, 16, 16))
    slope_ints = lazy[:, -1] - lazy[:, 0]
    slope = slope_ints.mean(axis=0)
    dq = (lazy[0, 0] > 12).astype(np.uint32) * np.uint32(2**31 + 4)  # high bit set: pseudo-unsigned
    rate = xr.Dataset(
        {"SCI": (("y", "x"), slope), "DQ": (("y", "x"), dq)},
        attrs={"meta": META, "model_type": "ImageModel", "product": "rate"},
    )
    rateints = xr.Dataset(
        {"SCI": (("integration", "y", "x"), slope_ints)},
        attrs={"meta": META, "model_type": "CubeModel", "product": "rateints"},
    )
    expect_ints = ramp[:, -1] - ramp[:, 0]
    expect_dq = (ramp[0, 0] > 12).astype(np.uint32) * np.uint32(2**31 + 4)
    return rate, rateints, expect_ints.mean(axis=0), expect_ints, expect_dq


def test_write_on_distributed_cluster(tmp_path, cluster_client):
    rng = np.random.default_rng(11)
    ds, truth = _ramp_ds(rng)
    path = tmp_path / "dist_uncal.fits"
    # a graph step that only exists on the workers: values must come from the workers' blocks
    ds["SCI"] = ds.SCI.copy(data=ds.SCI.data.map_blocks(lambda b: b[::-1, ::-1][::-1, ::-1], dtype=np.uint16))

    out = write_product(ds, path)

    assert out == path
    with fits.open(path) as hdul:
        assert hdul[1].name == "SCI"
        assert hdul["SCI"].header["BITPIX"] == 16 and hdul["SCI"].header["BZERO"] == 32768
        np.testing.assert_array_equal(hdul["SCI"].data, truth["SCI"])
        np.testing.assert_array_equal(hdul["ZEROFRAME"].data, truth["ZEROFRAME"])
        assert hdul[0].header["DETECTOR"] == "NRCB2"
        hdul.verify("exception")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist_uncal.fits"]


def test_pending_write_of_two_products_from_one_graph(tmp_path):
    rng = np.random.default_rng(12)
    rate, rateints, expect_rate, expect_ints, expect_dq = _rate_pair(rng)
    p_rate, p_ints = tmp_path / "x_rate.fits", tmp_path / "x_rateints.fits"

    pending = write_products([(rate, p_rate), (rateints, p_ints)], compute=False)

    assert isinstance(pending, PendingWrite)
    assert not p_rate.exists() and not p_ints.exists()  # nothing final before the compute
    assert pending.compute() == [p_rate, p_ints]
    with fits.open(p_rate) as a, fits.open(p_ints) as b:
        np.testing.assert_allclose(a["SCI"].data, expect_rate, rtol=1e-6)
        np.testing.assert_array_equal(a["DQ"].data, expect_dq)
        np.testing.assert_array_equal(b["SCI"].data, expect_ints)
        assert a[0].header["DATAMODL"] == "ImageModel" and b[0].header["DATAMODL"] == "CubeModel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_rate.fits", "x_rateints.fits"]


def test_pending_write_delayed_and_finalize(tmp_path):
    rng = np.random.default_rng(13)
    rate, _, expect_rate, _, _ = _rate_pair(rng)
    path = tmp_path / "y_rate.fits"
    pending = write_product(rate, path, compute=False)
    dask.compute(pending.delayed, scheduler="threads")
    assert not path.exists()
    assert pending.finalize() == [path]
    with fits.open(path) as hdul:
        np.testing.assert_allclose(hdul["SCI"].data, expect_rate, rtol=1e-6)


def _boom(block, block_info=None):
    if block_info is not None and block_info[0]["chunk-location"][-1] == 2:
        raise RuntimeError("block failed")
    return block


@pytest.mark.parametrize("deferred", [False, True])
def test_failed_write_leaves_nothing(tmp_path, deferred):
    rng = np.random.default_rng(14)
    ds, _ = _ramp_ds(rng)
    ds["SCI"] = ds.SCI.copy(data=ds.SCI.data.map_blocks(_boom, dtype=np.uint16))
    path = tmp_path / "bad_uncal.fits"
    with pytest.raises(RuntimeError, match="block failed"):
        if deferred:
            write_product(ds, path, compute=False).compute(scheduler="threads")
        else:
            write_product(ds, path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path):
    rng = np.random.default_rng(15)
    good, truth = _ramp_ds(rng)
    path = tmp_path / "keep_uncal.fits"
    write_product(good, path)
    bad = good.copy()
    bad["SCI"] = good.SCI.copy(data=good.SCI.data.map_blocks(_boom, dtype=np.uint16))
    with pytest.raises(RuntimeError):
        write_product(bad, path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep_uncal.fits"]
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul["SCI"].data, truth["SCI"])


def test_overwrite_false_refuses(tmp_path):
    rng = np.random.default_rng(16)
    ds, _ = _ramp_ds(rng, shape=(3, 4, 8, 8), chunks=(3, 4, 8, 8))
    path = tmp_path / "o_uncal.fits"
    path.write_bytes(b"old")
    with pytest.raises(InputFileError, match=r"o_uncal\.fits"):
        write_product(ds, path, overwrite=False)
    assert path.read_bytes() == b"old"


def test_dtype_cast_to_product_dtype(tmp_path):
    """A float64 SCI in an ImageModel product is written as float32, as the data model says."""
    values = np.linspace(0, 1, 64 * 48).reshape(64, 48)
    ds = xr.Dataset(
        {"SCI": (("y", "x"), da.from_array(values, chunks=(32, 16)))},
        attrs={"meta": META, "model_type": "ImageModel", "product": "cal"},
    )
    path = tmp_path / "z_cal.fits"
    write_product(ds, path)
    with fits.open(path) as hdul:
        assert hdul["SCI"].data.dtype == np.dtype(">f4")
        np.testing.assert_array_equal(hdul["SCI"].data, values.astype(np.float32))


def test_transposed_variable_written_in_fits_order(tmp_path):
    values = np.arange(6 * 10, dtype=np.float32).reshape(6, 10)
    ds = xr.Dataset(
        {"SCI": (("x", "y"), da.from_array(values.T, chunks=(5, 3)))},
        attrs={"meta": META, "model_type": "ImageModel", "product": "rate"},
    )
    path = tmp_path / "t_rate.fits"
    write_product(ds, path)
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul["SCI"].data, values)


def test_store_blocks_writes_each_stripe_of_an_exposure_in_one_task(tmp_path):
    """The block writes of one label's arrays that cover the same stripe (and the same chunk of a
    split leading axis) are one task; every value lands where numpy indexing puts it."""
    from jwst_dask.io.fits_write import FitsBlockTarget, store_blocks

    rng = np.random.default_rng(5)
    rate = rng.normal(size=(12, 10)).astype(np.float32)
    ints = rng.normal(size=(6, 12, 10)).astype(np.float32)
    dq = rng.integers(0, 2**31, size=(12, 10)).astype(np.uint32)
    sources = [
        da.from_array(rate, chunks=(4, 10)),  # 3 stripes
        da.from_array(dq, chunks=(4, 10)),
        da.from_array(ints, chunks=(3, 4, 10)),  # 2 integration chunks x 3 stripes
        da.from_array(rate.astype(np.float64), chunks=(4, 5)),  # another exposure, 3 x 2 tiles
    ]
    paths = [tmp_path / f"a{i}.bin" for i in range(len(sources))]
    targets = []
    for path, src in zip(paths, sources, strict=True):
        dtype = np.dtype(np.float32) if src.dtype == np.float64 else src.dtype  # cast on write
        path.write_bytes(b"\0" * (src.size * dtype.itemsize))
        targets.append(FitsBlockTarget(str(path), 0, src.shape, dtype.str))

    delayed = store_blocks(sources, targets, labels=["x", "x", "x", "y"])

    writes = [k for k in delayed.dask if isinstance(k, tuple) and str(k[0]).startswith("store-stripe")]
    # x: rate + dq share 3 stripe tasks, the cube's 2 x 3 blocks are 6 more; y: 6 tiles
    assert len(writes) == 3 + 6 + 6
    dask.compute(delayed, scheduler="sync")
    assert np.array_equal(np.fromfile(paths[0], ">f4").reshape(12, 10), rate)
    # FITS unsigned: the sign bit flipped, stored big-endian
    assert np.array_equal(np.fromfile(paths[1], ">u4").reshape(12, 10) ^ np.uint32(1 << 31), dq)
    assert np.array_equal(np.fromfile(paths[2], ">f4").reshape(6, 12, 10), ints)
    assert np.array_equal(np.fromfile(paths[3], ">f4").reshape(12, 10), rate)
