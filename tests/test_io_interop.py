"""FITS interoperability with the official data models (stdatamodels), both directions.

Official -> ours: a product made and saved by stdatamodels opens with jwst_dask with the same
values, dtypes and metadata. Ours -> official: a Dataset built by hand (numpy truth) and written
by jwst_dask opens with ``stdatamodels.jwst.datamodels.open``, validates, and holds the same
values and metadata.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from stdatamodels.jwst import datamodels as dm

import jwst_dask
from jwst_dask.io import write_product

NY, NX, NGROUPS, NINTS = 16, 24, 3, 2

# product -> (model class, {EXTNAME: (model attr, dtype, shape)})
_RAMP4 = (NINTS, NGROUPS, NY, NX)
_CUBE = (NINTS, NY, NX)
_IMG = (NY, NX)
PRODUCTS = {
    "uncal": (
        "Level1bModel",
        {"SCI": ("data", "u2", _RAMP4), "ZEROFRAME": ("zeroframe", "u2", _CUBE)},
    ),
    "ramp": (
        "RampModel",
        {
            "SCI": ("data", "f4", _RAMP4),
            "PIXELDQ": ("pixeldq", "u4", _IMG),
            "GROUPDQ": ("groupdq", "u1", _RAMP4),
        },
    ),
    "rate": (
        "ImageModel",
        {
            "SCI": ("data", "f4", _IMG),
            "ERR": ("err", "f4", _IMG),
            "DQ": ("dq", "u4", _IMG),
            "VAR_POISSON": ("var_poisson", "f4", _IMG),
            "VAR_RNOISE": ("var_rnoise", "f4", _IMG),
        },
    ),
    "rateints": (
        "CubeModel",
        {
            "SCI": ("data", "f4", _CUBE),
            "ERR": ("err", "f4", _CUBE),
            "DQ": ("dq", "u4", _CUBE),
            "VAR_POISSON": ("var_poisson", "f4", _CUBE),
            "VAR_RNOISE": ("var_rnoise", "f4", _CUBE),
        },
    ),
    "cal": (
        "ImageModel",
        {
            "SCI": ("data", "f4", _IMG),
            "ERR": ("err", "f4", _IMG),
            "DQ": ("dq", "u4", _IMG),
            "VAR_POISSON": ("var_poisson", "f4", _IMG),
            "VAR_RNOISE": ("var_rnoise", "f4", _IMG),
            "VAR_FLAT": ("var_flat", "f4", _IMG),
            "AREA": ("area", "f4", _IMG),
        },
    ),
    "calints": (
        "CubeModel",
        {
            "SCI": ("data", "f4", _CUBE),
            "ERR": ("err", "f4", _CUBE),
            "DQ": ("dq", "u4", _CUBE),
            "VAR_POISSON": ("var_poisson", "f4", _CUBE),
            "VAR_RNOISE": ("var_rnoise", "f4", _CUBE),
            "VAR_FLAT": ("var_flat", "f4", _CUBE),
        },
    ),
    "i2d": (
        "ImageModel",
        {
            "SCI": ("data", "f4", _IMG),
            "ERR": ("err", "f4", _IMG),
            "WHT": ("wht", "f4", _IMG),
            "CON": ("con", "i4", (3, NY, NX)),
            "VAR_POISSON": ("var_poisson", "f4", _IMG),
            "VAR_RNOISE": ("var_rnoise", "f4", _IMG),
            "VAR_FLAT": ("var_flat", "f4", _IMG),
        },
    ),
}

META = {
    "instrument": {"name": "NIRCAM", "detector": "NRCA1", "filter": "F200W", "pupil": "CLEAR"},
    "exposure": {"type": "NRC_IMAGE", "ngroups": NGROUPS, "nints": NINTS, "readpatt": "RAPID"},
    "subarray": {"name": "SUB64", "xstart": 5, "ystart": 9, "xsize": NX, "ysize": NY},
    "observation": {"date": "2024-03-01", "time": "12:00:00.000"},
    "program": {"pi_name": "Webb, James"},
    "wcsinfo": {"crpix1": 12.5, "ctype1": "RA---TAN"},
    "bunit_data": "DN/s",
    "cal_step": {"jump": "COMPLETE"},
}
# (meta path, FITS keyword, HDU) that must come out right in both directions
CHECKS = [
    ("instrument.name", "INSTRUME", 0),
    ("instrument.detector", "DETECTOR", 0),
    ("instrument.filter", "FILTER", 0),
    ("exposure.type", "EXP_TYPE", 0),
    ("exposure.ngroups", "NGROUPS", 0),
    ("exposure.nints", "NINTS", 0),
    ("exposure.readpatt", "READPATT", 0),
    ("subarray.xstart", "SUBSTRT1", 0),
    ("subarray.name", "SUBARRAY", 0),
    ("program.pi_name", "PI_NAME", 0),
    ("cal_step.jump", "S_JUMP", 0),
    ("wcsinfo.crpix1", "CRPIX1", "SCI"),
    ("bunit_data", "BUNIT", "SCI"),
]


def _truth(product: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for ext, (_, dtype, shape) in PRODUCTS[product][1].items():
        dt = np.dtype(dtype)
        if dt.kind == "f":
            out[ext] = rng.normal(100, 30, shape).astype(dt)
        else:
            top = min(np.iinfo(dt).max, 2**32 - 1)
            # include values above the signed range: checks the pseudo-unsigned (BZERO) handling
            out[ext] = rng.integers(0, top, shape, dtype=np.uint64, endpoint=True).astype(dt)
    return out


def _int_times(nints: int) -> np.ndarray:
    dtype = dm.CubeModel().get_dtype("int_times")
    t = np.zeros(nints, dtype=dtype)
    t["integration_number"] = np.arange(1, nints + 1)
    t["int_mid_MJD_UTC"] = 60000.5 + np.arange(nints) * 0.01
    return t


def _official_model(product: str, truth: dict):
    model_name, exts = PRODUCTS[product]
    model = getattr(dm, model_name)()
    for ext, (attr, _, _) in exts.items():
        setattr(model, attr, truth[ext])
    for section, values in META.items():
        if isinstance(values, dict):
            for key, value in values.items():
                setattr(getattr(model.meta, section), key, value)
        else:
            setattr(model.meta, section, values)
    if model_name in ("CubeModel", "Level1bModel"):
        model.int_times = _int_times(NINTS)
    return model


def _dims(ext: str, ndim: int) -> tuple[str, ...]:
    return {
        4: ("integration", "group", "y", "x"),
        3: ("plane" if ext == "CON" else "integration", "y", "x"),
        2: ("y", "x"),
    }[ndim]


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


@pytest.mark.parametrize("product", list(PRODUCTS))
def test_official_to_ours(tmp_path, product):
    truth = _truth(product, seed=1)
    path = tmp_path / f"jw01234001001_01101_00001_nrca1_{product}.fits"
    _official_model(product, truth).save(str(path))

    ds = jwst_dask.open(path)

    assert ds.attrs["model_type"] == PRODUCTS[product][0]
    assert ds.attrs["product"] == product
    assert ds.attrs["filename"] == path.name
    for ext, values in truth.items():
        var = ds[ext]
        assert var.dims == _dims(ext, values.ndim), ext
        assert var.dtype == values.dtype, ext
        assert isinstance(var.data, da.Array)
        np.testing.assert_array_equal(var.values, values, err_msg=ext)
    meta = ds.jwst.meta
    for mpath, _, _ in CHECKS:
        expected = META
        for part in mpath.split("."):
            expected = expected[part]
        assert meta.get_path(mpath) == expected, mpath
    if PRODUCTS[product][0] in ("CubeModel", "Level1bModel"):
        assert ds.attrs["tables"]["INT_TIMES"][0] == "integration_number"
        np.testing.assert_array_equal(ds["INT_TIMES.integration_number"].values, [1, 2])
        np.testing.assert_allclose(
            ds["INT_TIMES.int_mid_MJD_UTC"].values, _int_times(NINTS)["int_mid_MJD_UTC"]
        )


@pytest.mark.parametrize("product", list(PRODUCTS))
def test_ours_to_official(tmp_path, product):
    model_name, exts = PRODUCTS[product]
    truth = _truth(product, seed=2)
    data_vars = {
        ext: (_dims(ext, v.ndim), da.from_array(v, chunks=(*v.shape[:-2], 8, 8))) for ext, v in truth.items()
    }
    attrs = {"meta": META, "model_type": model_name, "product": product, "extra_fits": {}}
    if model_name in ("CubeModel", "Level1bModel"):
        t = _int_times(NINTS)
        for col in t.dtype.names:
            data_vars[f"INT_TIMES.{col}"] = ("INT_TIMES_row", t[col])
        attrs["tables"] = {"INT_TIMES": list(t.dtype.names)}
    attrs["extra_fits"] = {"PRIMARY": [["MYKEY", 42, "not in the schema"]]}
    ds = xr.Dataset(data_vars, attrs=attrs)
    path = tmp_path / f"jw01234001001_01101_00001_nrca1_{product}.fits"

    assert write_product(ds, path) == path

    with dm.open(str(path)) as model:
        assert type(model).__name__ == model_name
        model.validate()
        for ext, (attr, dtype, _) in exts.items():
            got = getattr(model, attr)
            assert got.dtype.newbyteorder("=") == np.dtype(dtype), ext
            np.testing.assert_array_equal(got, truth[ext], err_msg=ext)
        for mpath, _, _ in CHECKS:
            expected = META
            node = model.meta
            for part in mpath.split("."):
                expected = expected[part]
                node = getattr(node, part)
            assert node == expected, mpath
        assert model.meta.filename == path.name
        assert model.meta.model_type == model_name
        if model_name in ("CubeModel", "Level1bModel"):
            np.testing.assert_array_equal(model.int_times["integration_number"], [1, 2])
    # the keywords land in the HDU the official schema puts them in; extra cards are kept
    from astropy.io import fits

    with fits.open(path) as hdul:
        assert hdul[1].name == "SCI"
        assert hdul[-1].name == "ASDF"
        for mpath, keyword, hdu in CHECKS:
            expected = META
            for part in mpath.split("."):
                expected = expected[part]
            assert hdul[hdu].header[keyword] == expected, keyword
        assert hdul[0].header["MYKEY"] == 42
        assert "DATE" in hdul[0].header


def test_roundtrip_ours_keeps_extra_fits(tmp_path):
    truth = _truth("rate", seed=3)
    path = tmp_path / "a_rate.fits"
    _official_model("rate", truth).save(str(path))
    from astropy.io import fits

    with fits.open(path, mode="update") as hdul:
        hdul[0].header["ODDKEY"] = ("odd", "a keyword outside the schema")
        hdul["SCI"].header["SCIKEY"] = 7
    ds = jwst_dask.open(path)
    assert ["ODDKEY", "odd", "a keyword outside the schema"] in ds.attrs["extra_fits"]["PRIMARY"]
    out = tmp_path / "b_rate.fits"
    ds.jwst.write(out)
    with fits.open(out) as hdul:
        assert hdul[0].header["ODDKEY"] == "odd"
        assert hdul["SCI"].header["SCIKEY"] == 7
        np.testing.assert_array_equal(hdul["SCI"].data, truth["SCI"])
        np.testing.assert_array_equal(hdul["DQ"].data, truth["DQ"])


def test_miri_refout_both_directions(tmp_path):
    rng = np.random.default_rng(9)
    sci = rng.integers(0, 65535, (NINTS, NGROUPS, NY, NX), endpoint=True).astype(np.uint16)
    refout = rng.integers(0, 65535, (NINTS, NGROUPS, NY, NX // 4), endpoint=True).astype(np.uint16)
    model = dm.Level1bModel(data=sci, refout=refout)
    model.meta.instrument.name, model.meta.instrument.detector = "MIRI", "MIRIMAGE"
    model.meta.exposure.type, model.meta.exposure.ngroups, model.meta.exposure.nints = "MIR_IMAGE", 3, 2
    path = tmp_path / "m_uncal.fits"
    model.save(str(path))

    ds = jwst_dask.open(path)
    assert ds.REFOUT.dims == ("integration", "group", "y", "x_refout")
    np.testing.assert_array_equal(ds.REFOUT.values, refout)

    out = tmp_path / "m2_uncal.fits"
    ds.jwst.write(out)
    with dm.open(str(out)) as back:
        back.validate()
        np.testing.assert_array_equal(back.refout, refout)
        np.testing.assert_array_equal(back.data, sci)
