"""zarr checkpoints: exact round-trip of values, dtypes, dims, chunks, attrs and tables."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import jwst_dask
from jwst_dask.io import is_zarr_store, write_zarr


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


def _product(rng) -> tuple[xr.Dataset, dict]:
    truth = {
        "SCI": rng.integers(0, 65535, (2, 3, 20, 30), endpoint=True).astype(np.uint16),
        "PIXELDQ": rng.integers(0, 2**32 - 1, (20, 30), dtype=np.uint64).astype(np.uint32),
        "GROUPDQ": rng.integers(0, 255, (2, 3, 20, 30)).astype(np.uint8),
        "ERR": rng.normal(size=(2, 3, 20, 30)).astype(np.float32),
    }
    truth["ERR"][0, 0, 0, 0] = np.nan
    dims4 = ("integration", "group", "y", "x")
    data_vars = {
        "SCI": (dims4, da.from_array(truth["SCI"], chunks=(2, 3, 8, 16))),
        "PIXELDQ": (("y", "x"), da.from_array(truth["PIXELDQ"], chunks=(8, 16))),
        "GROUPDQ": (dims4, da.from_array(truth["GROUPDQ"], chunks=(2, 3, 8, 16))),
        "ERR": (dims4, da.from_array(truth["ERR"], chunks=(2, 3, 8, 16))),
        "GROUP.integration_number": ("GROUP_row", np.array([1, 1, 1, 2, 2, 2], dtype=np.int32)),
        "GROUP.group_end_time": ("GROUP_row", np.array([f"2024-01-01T00:00:0{i}" for i in range(6)])),
        "GROUP.bary_end_time": ("GROUP_row", np.linspace(0, 1, 6)),
    }
    attrs = {
        "meta": {
            "instrument": {"name": "MIRI", "detector": "MIRIMAGE"},
            "exposure": {"ngroups": 3, "nints": 2, "type": "MIR_IMAGE", "frame_time": 2.775},
            "cal_step": {"dq_init": "COMPLETE"},
            "target": {"catalog_name": None},
        },
        "extra_fits": {"PRIMARY": [["ODDKEY", 1.5, "odd"]]},
        "model_type": "RampModel",
        "product": "ramp",
        "filename": "jw01_mirimage_ramp.fits",
        "tables": {"GROUP": ["integration_number", "group_end_time", "bary_end_time"]},
    }
    return xr.Dataset(data_vars, attrs=attrs), truth


def test_zarr_roundtrip_exact(tmp_path):
    ds, truth = _product(np.random.default_rng(5))
    store = tmp_path / "ckpt.zarr"
    write_zarr(ds, store)
    assert is_zarr_store(store)

    back = jwst_dask.open(store)

    assert list(back.data_vars) == list(ds.data_vars)
    assert back.attrs == ds.attrs
    for name, var in ds.data_vars.items():
        got = back[name]
        assert got.dims == var.dims, name
        assert got.dtype == var.dtype, name
        np.testing.assert_array_equal(got.values, var.values, err_msg=name)
    for name in truth:
        assert isinstance(back[name].data, da.Array)
        assert back[name].data.chunks == ds[name].data.chunks
        np.testing.assert_array_equal(back[name].values, truth[name])
    assert isinstance(back["GROUP.group_end_time"].data, np.ndarray)  # tables are eager
    assert back.jwst.meta.exposure.frame_time == 2.775


def test_zarr_irregular_chunks_and_accessor(tmp_path):
    ds, truth = _product(np.random.default_rng(6))
    ds["SCI"] = ds.SCI.chunk({"y": (5, 10, 5), "x": 30})
    store = tmp_path / "irregular.zarr"
    ds.jwst.to_zarr(store)
    back = jwst_dask.open(store, chunks={"y": 20})
    np.testing.assert_array_equal(back.SCI.values, truth["SCI"])
    assert back.SCI.data.chunks[2] == (20,)
