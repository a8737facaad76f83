"""RampFitStep wiring: products, metadata, tiling invariance, one kernel call per tile."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from test_ramp_fit_kernel import DNU, FT, GT, JUMP, assert_products, random_ramps, run_stcal

import jwst_dask.steps.ramp_fit as ramp_fit_step
from jwst_dask.errors import MissingKeywordError, ReferenceFileError
from jwst_dask.steps.ramp_fit import RampFitStep

N = 48


def ramp_dataset(tile, nints=2, ngroups=6, instrument="NIRCAM", seed=1, int_chunk=None):
    data, gdq, pdq, gain, rn, zf = random_ramps(nints, ngroups, n=N, seed=seed)
    if instrument == "MIRI":
        gdq[:, 0] |= DNU
        gdq[0, 1, 3, 3] |= JUMP
    ic = int_chunk or nints
    ds = xr.Dataset(
        {
            "SCI": (
                ("integration", "group", "y", "x"),
                da.from_array(data, chunks=(ic, ngroups, tile, tile)),
            ),
            "GROUPDQ": (
                ("integration", "group", "y", "x"),
                da.from_array(gdq, chunks=(ic, ngroups, tile, tile)),
            ),
            "PIXELDQ": (("y", "x"), da.from_array(pdq, chunks=(tile, tile))),
            "ZEROFRAME": (("integration", "y", "x"), da.from_array(zf, chunks=(ic, tile, tile))),
            "INT_TIMES.integration_number": (("INT_TIMES_row",), np.arange(1, nints + 1, dtype=np.int32)),
            "INT_TIMES.int_mid_MJD_UTC": (("INT_TIMES_row",), 60000.0 + np.arange(nints) * 1e-3),
        },
        attrs={
            "meta": {
                "instrument": {"name": instrument},
                "exposure": {
                    "type": "NRC_IMAGE" if instrument == "NIRCAM" else "MIR_IMAGE",
                    "frame_time": FT,
                    "group_time": GT,
                    "nframes": 1,
                    "groupgap": 0,
                    "ngroups": ngroups,
                    "nints": nints,
                },
                "cal_step": {"jump": "COMPLETE"},
            },
            "model_type": "RampModel",
            "product": "ramp",
            "filename": "jw0001_nrca1_uncal.fits",
            "tables": {"INT_TIMES": ["integration_number", "int_mid_MJD_UTC"]},
        },
    )
    refs = {
        "gain": xr.Dataset({"SCI": (("y", "x"), gain)}, attrs={"meta": {"exposure": {"gain_factor": 2.0}}}),
        "readnoise": xr.Dataset({"SCI": (("y", "x"), rn)}, attrs={"meta": {}}),
    }
    return ds, refs, (data, gdq, pdq, gain, rn, zf)


def make_step(refs, **params):
    step = RampFitStep(**params)
    step.get_reference_dataset = lambda ds, reftype: refs[reftype]
    return step


def compute_products(products):
    (rate, rateints) = dask.compute(products["rate"], products["rateints"])
    return rate, rateints


def test_products_and_metadata():
    ds, refs, _ = ramp_dataset(16)
    out = make_step(refs).run(ds)
    assert set(out) == {"rate", "rateints"}
    rate, rints = out["rate"], out["rateints"]
    assert rate["SCI"].dims == ("y", "x") and rints["SCI"].dims == ("integration", "y", "x")
    assert isinstance(rate["SCI"].data, da.Array), "process() must stay lazy"
    assert rate.attrs["model_type"] == "ImageModel" and rate.attrs["product"] == "rate"
    assert rints.attrs["model_type"] == "CubeModel" and rints.attrs["product"] == "rateints"
    for prod in (rate, rints):
        assert prod.attrs["meta"]["cal_step"]["ramp_fit"] == "COMPLETE"
        assert prod.attrs["meta"]["exposure"]["gain_factor"] == 2.0
        assert prod.attrs["meta"]["bunit_data"] == "DN/s"
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE"):
            assert prod[name].dtype == np.float32, name
        assert prod["DQ"].dtype == np.uint32
    assert "ramp_fit" not in ds.attrs["meta"]["cal_step"], "input metadata must not be mutated"
    np.testing.assert_array_equal(rints["INT_TIMES.integration_number"].values, [1, 2])
    assert rints.attrs["tables"] == {"INT_TIMES": ["integration_number", "int_mid_MJD_UTC"]}
    assert "INT_TIMES.integration_number" not in rate


@pytest.mark.parametrize("variant", ["seeds", "jwst3"])
def test_tiles_bit_identical_to_whole_frame(variant):
    ds16, refs, _ = ramp_dataset(16)
    dsall, _, _ = ramp_dataset(N, int_chunk=1)  # integrations split: the step rechunks them
    a = compute_products(make_step(refs, variant=variant).run(ds16))
    b = compute_products(make_step(refs, variant=variant).run(dsall))
    for pa, pb in zip(a, b, strict=True):
        for name in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            np.testing.assert_array_equal(pa[name].values, pb[name].values, err_msg=name)


def test_step_matches_stcal_end_to_end():
    ds, refs, (data, gdq, pdq, gain, rn, zf) = ramp_dataset(16)
    rate, rints = compute_products(make_step(refs, variant="jwst3", suppress_one_group=False).run(ds))
    image, integ, _ = run_stcal(data, gdq, pdq, gain, rn, zf=zf, suppress=False)

    class Res:
        rate_sci, rate_err, rate_dq = rate["SCI"].values, rate["ERR"].values, rate["DQ"].values
        rate_var_poisson, rate_var_rnoise = rate["VAR_POISSON"].values, rate["VAR_RNOISE"].values
        ints_sci, ints_err, ints_dq = rints["SCI"].values, rints["ERR"].values, rints["DQ"].values
        ints_var_poisson, ints_var_rnoise = rints["VAR_POISSON"].values, rints["VAR_RNOISE"].values

    assert_products(Res, image, integ)


def test_miri_all_dnu_first_group_matches_stcal():
    ds, refs, (data, gdq, pdq, gain, rn, _) = ramp_dataset(16, instrument="MIRI", seed=4)
    ds = ds.drop_vars("ZEROFRAME")
    rate, rints = compute_products(make_step(refs, variant="jwst3").run(ds))
    image, integ, _ = run_stcal(data, gdq, pdq, gain, rn, name="MIRI")
    np.testing.assert_array_equal(rints["DQ"].values, integ["dq"])
    np.testing.assert_array_equal(rate["DQ"].values, image["dq"])
    np.testing.assert_allclose(rate["SCI"].values, image["slope"], rtol=1e-5, equal_nan=True)


def test_kernel_runs_once_per_tile(monkeypatch):
    calls = []
    real = ramp_fit_step.fit_ramps

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(ramp_fit_step, "fit_ramps", counting)
    ds, refs, _ = ramp_dataset(16)
    out = make_step(refs, save_opt=True).run(ds)
    step_fitopt = None
    with dask.config.set(scheduler="threads"):
        step_fitopt = dask.compute(out["rate"], out["rateints"])
    assert len(calls) == (N // 16) ** 2
    assert all(shape == (2, 6, 16, 16) for shape in calls)
    assert step_fitopt[0]["SCI"].shape == (N, N)


def test_fitopt_side_product():
    ds, refs, _ = ramp_dataset(16)
    step = make_step(refs, save_opt=True)
    step.run(ds)
    fitopt = step.side_products["fitopt"]
    assert fitopt.attrs["product"] == "fitopt"
    assert fitopt["SLOPE"].dims == ("integration", "segment", "y", "x")
    assert fitopt["PEDESTAL"].shape == (2, N, N)
    assert np.isfinite(fitopt["SLOPE"].values).any()


def test_firstgroup_lastgroup_flag_groups_do_not_use():
    ds, refs, (data, gdq, pdq, gain, rn, zf) = ramp_dataset(16)
    rate, _ = compute_products(make_step(refs, variant="jwst3", firstgroup=1, lastgroup=4).run(ds))
    gdq2 = gdq.copy()
    gdq2[:, 0] |= DNU
    gdq2[:, 5] |= DNU
    image, _, _ = run_stcal(data, gdq2, pdq, gain, rn, zf=zf)
    np.testing.assert_allclose(rate["SCI"].values, image["slope"], rtol=1e-5, equal_nan=True)


def test_missing_reference_and_timing_errors():
    ds, refs, _ = ramp_dataset(16)
    with pytest.raises(ReferenceFileError, match="readnoise"):
        make_step({**refs, "readnoise": None}).run(ds)
    bad = ds.jwst.update_meta({"exposure.group_time": None})
    with pytest.raises(MissingKeywordError, match="group_time"):
        make_step(refs).run(bad)


@pytest.mark.slow
def test_distributed_workers_match_threads(cluster_client):
    ds, refs, _ = ramp_dataset(16)
    out = make_step(refs).run(ds)
    dist = cluster_client.compute([out["rate"], out["rateints"]], sync=True)
    with dask.config.set(scheduler="threads"):
        local = dask.compute(out["rate"], out["rateints"])
    for pa, pb in zip(dist, local, strict=True):
        for name in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            np.testing.assert_array_equal(pa[name].values, pb[name].values, err_msg=name)
