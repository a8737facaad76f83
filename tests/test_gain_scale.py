"""GainScaleStep: SCI, ERR x GAINFACT and variances x GAINFACT**2 on rate and rateints."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from jwst_dask.steps.gain_scale import GainScaleStep


def product(dims, shape, gain_factor=None, extra_fits=None, seed=0):
    rng = np.random.default_rng(seed)
    chunks = tuple(min(s, 8) for s in shape)
    variables = {
        name: (dims, da.from_array(rng.uniform(0.1, 10.0, shape).astype(np.float32), chunks=chunks))
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE")
    }
    variables["DQ"] = (dims, da.zeros(shape, dtype=np.uint32, chunks=chunks))
    meta = {"exposure": {"gain_factor": gain_factor} if gain_factor is not None else {}, "cal_step": {}}
    attrs = {"meta": meta, "model_type": "ImageModel", "product": "rate"}
    if extra_fits:
        attrs["extra_fits"] = extra_fits
    return xr.Dataset(variables, attrs=attrs)


def step_with_ref(ref):
    step = GainScaleStep()
    step.get_reference_dataset = lambda ds, reftype: ref
    return step


@pytest.mark.parametrize(
    ("dims", "shape"), [(("y", "x"), (16, 12)), (("integration", "y", "x"), (3, 16, 12))]
)
def test_scales_values_and_variances(dims, shape):
    ds = product(dims, shape, gain_factor=2.0)
    out = step_with_ref(None).run(ds)
    g = 2.0
    for name in ("SCI", "ERR"):
        np.testing.assert_array_equal(out[name].values, ds[name].values * np.float32(g))
    for name in ("VAR_POISSON", "VAR_RNOISE"):
        np.testing.assert_array_equal(out[name].values, ds[name].values * np.float32(g * g))
    np.testing.assert_array_equal(out["DQ"].values, ds["DQ"].values)
    assert out["SCI"].dtype == np.float32
    assert out.attrs["meta"]["cal_step"]["gain_scale"] == "COMPLETE"
    assert "gain_scale" not in ds.attrs["meta"]["cal_step"]


def test_factor_from_gain_reference_header():
    ref = xr.Dataset(attrs={"meta": {}, "extra_fits": {"PRIMARY": [["GAINFACT", 1.5, "gain factor"]]}})
    ds = product(("y", "x"), (8, 8))
    out = step_with_ref(ref).run(ds)
    np.testing.assert_array_equal(out["SCI"].values, ds["SCI"].values * np.float32(1.5))
    np.testing.assert_array_equal(out["VAR_RNOISE"].values, ds["VAR_RNOISE"].values * np.float32(2.25))
    assert out.attrs["meta"]["exposure"]["gain_factor"] == 1.5
    assert out.attrs["meta"]["cal_step"]["gain_scale"] == "COMPLETE"


def test_skipped_without_gainfact():
    ds = product(("y", "x"), (8, 8))
    out = step_with_ref(xr.Dataset(attrs={"meta": {}})).run(ds)
    assert out.attrs["meta"]["cal_step"]["gain_scale"] == "SKIPPED"
    np.testing.assert_array_equal(out["SCI"].values, ds["SCI"].values)
    out = step_with_ref(None).run(ds)  # no gain reference at all (N/A)
    assert out.attrs["meta"]["cal_step"]["gain_scale"] == "SKIPPED"


def test_unit_factor_is_benign():
    ds = product(("y", "x"), (8, 8), gain_factor=1.0)
    out = step_with_ref(None).run(ds)
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE"):
        np.testing.assert_array_equal(out[name].values, ds[name].values)
    assert out.attrs["meta"]["cal_step"]["gain_scale"] == "COMPLETE"


def test_applies_to_each_product_of_a_dict():
    rate = product(("y", "x"), (8, 8), gain_factor=2.0)
    rints = product(("integration", "y", "x"), (2, 8, 8), gain_factor=2.0, seed=1)
    out = step_with_ref(None).run({"rate": rate, "rateints": rints})
    np.testing.assert_array_equal(out["rate"]["ERR"].values, rate["ERR"].values * np.float32(2.0))
    np.testing.assert_array_equal(out["rateints"]["SCI"].values, rints["SCI"].values * np.float32(2.0))


def test_gainfact_read_from_a_gain_reference_file(tmp_path):
    from astropy.io import fits

    from jwst_dask.refs import open_reference
    from jwst_dask.steps.ramp_fit import gain_factor_of

    path = tmp_path / "gain.fits"
    primary = fits.PrimaryHDU()
    primary.header["REFTYPE"] = "GAIN"
    primary.header["GAINFACT"] = 2.5
    fits.HDUList([primary, fits.ImageHDU(np.ones((8, 8), np.float32), name="SCI")]).writeto(path)
    assert gain_factor_of(open_reference(path)) == 2.5
    ds = product(("y", "x"), (8, 8))
    out = step_with_ref(open_reference(path)).run(ds)
    np.testing.assert_array_equal(out["ERR"].values, ds["ERR"].values * np.float32(2.5))
