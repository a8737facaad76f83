"""The ASDF extension: our document is valid ASDF (read back by the asdf library), metadata
objects without a plain form (a gwcs) survive a read/write cycle, and model detection falls back
to the array shapes."""

from __future__ import annotations

import io

import asdf
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

import jwst_dask
from jwst_dask.io import write_product
from jwst_dask.io.asdf_tree import read_meta, write_meta


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


def test_written_document_is_asdf():
    meta = {
        "instrument": {"name": "NIRSPEC", "detector": "NRS1"},
        "observation": {"date": "2024-03-01", "time": "12:00:00"},  # dates stay strings
        "exposure": {"ngroups": np.int64(5), "frame_time": np.float32(10.5), "flag": True, "none": None},
        "program": {"title": "yes"},  # YAML 1.1 would read a bare yes as True
    }
    raw = write_meta(meta)
    with asdf.open(io.BytesIO(raw)) as af:
        got = af.tree["meta"]
        assert got["observation"] == {"date": "2024-03-01", "time": "12:00:00"}
        assert got["exposure"]["ngroups"] == 5 and got["exposure"]["frame_time"] == 10.5
        assert got["exposure"]["flag"] is True and got["exposure"]["none"] is None
        assert got["program"]["title"] == "yes"
    plain, objects = read_meta(raw)
    assert objects == {}
    assert plain["observation"]["date"] == "2024-03-01"
    assert plain["exposure"]["ngroups"] == 5 and type(plain["exposure"]["ngroups"]) is int


def _wcs():
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs.wcs import WCS

    return WCS(
        models.Shift(1) & models.Shift(2),
        input_frame=cf.Frame2D(name="detector"),
        output_frame=cf.Frame2D(name="world"),
    )


def test_gwcs_in_meta_survives(tmp_path):
    model = dm.ImageModel(np.arange(12, dtype=np.float32).reshape(3, 4))
    model.meta.instrument.name = "NIRCAM"
    model.meta.wcs = _wcs()
    src = tmp_path / "w_cal.fits"
    model.save(str(src))

    ds = jwst_dask.open(src)
    assert "wcs" not in ds.attrs["meta"]  # the metadata tree stays JSON-compatible
    wcs = ds.attrs["meta_objects"]["wcs"]
    assert tuple(wcs(3, 4)) == (4, 6)

    out = tmp_path / "w2_cal.fits"
    ds.jwst.write(out)
    with dm.open(str(out)) as back:
        assert tuple(back.meta.wcs(3, 4)) == (4, 6)
        assert back.meta.instrument.name == "NIRCAM"
        np.testing.assert_array_equal(back.data, model.data)


@pytest.mark.parametrize(("shape", "model"), [((2, 6, 5), "CubeModel"), ((6, 5), "ImageModel")])
def test_model_from_shapes(tmp_path, shape, model):
    path = tmp_path / "anonymous.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(shape, np.float32), name="SCI")]).writeto(path)
    ds = jwst_dask.open(path)
    assert ds.attrs["model_type"] == model


def test_meta_keywords_win_over_asdf(tmp_path):
    """As in stdatamodels, a header keyword edited after writing wins over the ASDF copy."""
    ds = xr.Dataset(
        {"SCI": (("y", "x"), da.zeros((4, 4), dtype=np.float32))},
        attrs={"meta": {"instrument": {"name": "MIRI", "filter": "F770W"}}, "model_type": "ImageModel"},
    )
    path = tmp_path / "k_rate.fits"
    write_product(ds, path)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["FILTER"] = "F1000W"
    assert jwst_dask.open(path).jwst.meta.instrument.filter == "F1000W"


def test_gwcs_survives_zarr_checkpoint(tmp_path):
    model = dm.ImageModel(np.ones((3, 4), dtype=np.float32))
    model.meta.wcs = _wcs()
    src = tmp_path / "z_cal.fits"
    model.save(str(src))
    ds = jwst_dask.open(src)
    ds.jwst.to_zarr(tmp_path / "z.zarr")
    back = jwst_dask.open(tmp_path / "z.zarr")
    assert tuple(back.attrs["meta_objects"]["wcs"](3, 4)) == (4, 6)
    assert back.attrs["meta"] == ds.attrs["meta"]
