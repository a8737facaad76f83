"""Stage-1 steps wired on lazy Datasets: the uncal -> ramp conversion, each step against an
independent computation, tiles vs whole frame, ZEROFRAME, skips, subarray reference cut-outs,
and the detector1 / tso1 / dark pipelines end to end on a tiny exposure."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from stcal.saturation.saturation import flag_saturated_pixels

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ReferenceFileError
from jwst_dask.steps.charge_migration import ChargeMigrationStep
from jwst_dask.steps.dark_current import DarkCurrentStep
from jwst_dask.steps.dq_init import DQInitStep
from jwst_dask.steps.emicorr import EmiCorrStep
from jwst_dask.steps.group_scale import GroupScaleStep
from jwst_dask.steps.ipc import IPCStep
from jwst_dask.steps.linearity import LinearityStep
from jwst_dask.steps.miri_frames import FirstFrameStep, LastFrameStep
from jwst_dask.steps.persistence import PersistenceStep
from jwst_dask.steps.ramp_model import to_ramp
from jwst_dask.steps.refpix import RefPixStep
from jwst_dask.steps.reset import ResetStep
from jwst_dask.steps.rscd import RscdStep
from jwst_dask.steps.saturation import SaturationStep
from jwst_dask.steps.superbias import SuperBiasStep

Y0 = X0 = 1000  # the science subarray starts at full-frame pixel (1000, 1000), 0-based
NY = NX = 32


def _meta(ni, ng, inst="NIRCAM", **exposure):
    exp = {"type": "NRC_IMAGE", "ngroups": ng, "nints": ni, "nframes": 1, "groupgap": 0, "noutputs": 4}
    exp.update(exposure)
    det = "NRCA1" if inst == "NIRCAM" else "MIRIMAGE"
    return {
        "instrument": {"name": inst, "detector": det, "filter": "F200W", "pupil": "CLEAR", "module": "A"},
        "exposure": exp,
        "subarray": {
            "name": "SUB32",
            "xstart": X0 + 1,
            "ystart": Y0 + 1,
            "xsize": NX,
            "ysize": NY,
            "fastaxis": -1,
        },
        "observation": {"date": "2024-01-01", "time": "00:00:00"},
    }


def _uncal(sci, tile=8, zeroframe=None, inst="NIRCAM", **exposure):
    ni, ng = sci.shape[:2]
    data = {"SCI": (("integration", "group", "y", "x"), da.from_array(sci, chunks=(ni, ng, tile, tile)))}
    if zeroframe is not None:
        data["ZEROFRAME"] = (("integration", "y", "x"), zeroframe)
    attrs = {"meta": _meta(ni, ng, inst, **exposure), "model_type": "Level1bModel", "product": "uncal"}
    attrs["filename"] = "jw01_nrca1_uncal.fits"
    return xr.Dataset(data, attrs=attrs)


def _with_refs(step, refs):
    """Give a step hand-built reference Datasets (as a CRDS selection would)."""
    step.get_reference_dataset = lambda ds, reftype: refs.get(reftype)
    return step


def _img(**arrays):
    return xr.Dataset({k: (("y", "x"), v) for k, v in arrays.items()})


@pytest.fixture
def rng():
    return np.random.default_rng(11)


@pytest.fixture
def ramp(rng):
    sci = (1000 + np.cumsum(rng.uniform(0, 400, (2, 5, NY, NX)), axis=1)).astype(np.uint16)
    return sci


# ------------------------------------------------------------------------------- to_ramp
def test_to_ramp_layout(ramp):
    zf = ramp[:, 0].astype(np.float32)
    ds = to_ramp(_uncal(ramp, zeroframe=zf))
    assert ds.attrs["model_type"] == "RampModel" and ds.attrs["product"] == "ramp"
    assert ds.SCI.dtype == np.float32 and ds.SCI.dims == ("integration", "group", "y", "x")
    assert ds.GROUPDQ.dtype == np.uint8 and ds.GROUPDQ.shape == ramp.shape
    assert ds.PIXELDQ.dtype == np.uint32 and ds.PIXELDQ.dims == ("y", "x")
    assert ds.ERR.dtype == np.float32 and ds.ERR.shape == ramp.shape
    assert ds.ZEROFRAME.dtype == np.float32
    assert ds.SCI.data.chunks[:2] == ((2,), (5,)) and ds.SCI.data.chunks[2] == (8, 8, 8, 8)
    np.testing.assert_array_equal(ds.SCI.values, ramp.astype(np.float32))
    assert not ds.GROUPDQ.values.any() and not ds.PIXELDQ.values.any()
    with pytest.raises(Exception, match="4-D"):
        to_ramp(xr.Dataset({"SCI": (("y", "x"), np.zeros((2, 2)))}))


# ------------------------------------------------------------------------- group_scale, dq_init
def test_group_scale(ramp):
    ds = to_ramp(_uncal(ramp, nframes=5, frame_divisor=4))
    out = GroupScaleStep().run(ds)
    np.testing.assert_array_equal(out.SCI.values, ramp.astype(np.float32) * np.float32(4 / 5))
    assert out.attrs["meta"]["cal_step"]["group_scale"] == "COMPLETE"
    same = GroupScaleStep().run(to_ramp(_uncal(ramp, nframes=4, frame_divisor=4)))
    assert same.attrs["meta"]["cal_step"]["group_scale"] == "SKIPPED"


def test_dq_init_ors_mask(ramp):
    mask = np.zeros((NY, NX), np.uint32)
    mask[3, 4] = FLAGS["DEAD"] | FLAGS["DO_NOT_USE"]
    ds = to_ramp(_uncal(ramp))
    ds["PIXELDQ"] = ds.PIXELDQ.copy(data=da.full((NY, NX), FLAGS["HOT"], np.uint32, chunks=8))
    out = _with_refs(DQInitStep(), {"mask": _img(DQ=mask)}).run(ds)
    np.testing.assert_array_equal(out.PIXELDQ.values, mask | FLAGS["HOT"])
    none = _with_refs(DQInitStep(), {}).run(ds)
    assert none.attrs["meta"]["cal_step"]["dq_init"] == "SKIPPED"


# ------------------------------------------------------------------------------ saturation
@pytest.mark.parametrize("grow", [1, 2])
def test_saturation_tiles_equal_whole_and_stcal(ramp, grow):
    sci = ramp.copy()
    sci[0, 2:, 7, 8] = 65000  # saturates across the tile boundary at 8
    sci[1, 3:, 16, 15] = 65000
    thresh = np.full((NY, NX), 50000, np.float32)
    zf = sci[:, 0].astype(np.float32)
    zf[0, 8, 8] = 60000
    refs = {"saturation": _img(SCI=thresh, DQ=np.zeros((NY, NX), np.uint32))}
    outs = [
        _with_refs(SaturationStep(n_pix_grow_sat=grow), refs).run(to_ramp(_uncal(sci, tile=t, zeroframe=zf)))
        for t in (8, 32)
    ]
    np.testing.assert_array_equal(outs[0].GROUPDQ.values, outs[1].GROUPDQ.values)
    np.testing.assert_array_equal(outs[0].ZEROFRAME.values, outs[1].ZEROFRAME.values)
    gdq, _, zz = flag_saturated_pixels(
        sci.astype(np.float32),
        np.zeros(sci.shape, np.uint8),
        np.zeros((NY, NX), np.uint32),
        thresh.copy(),
        np.zeros((NY, NX), np.uint32),
        65535,
        dict(FLAGS),
        grow,
        zframe=zf.copy(),
    )
    np.testing.assert_array_equal(outs[0].GROUPDQ.values, gdq)
    np.testing.assert_array_equal(outs[0].ZEROFRAME.values, zz)
    assert zz[0, 8, 8] == 0


@pytest.mark.parametrize("grow", [0, 1, 2])
@pytest.mark.parametrize("nframes", [1, 4])
def test_saturation_read_pattern_tiles_equal_stcal(rng, grow, nframes):
    """With a read pattern, tiles that exchange only the packed first-crossing map flag exactly
    what stcal flags on the whole frame (part-way saturated groups and their grow across tile
    edges, the second-group test); tiles thinner than the halo take the whole-frame kernel."""
    from jwst_dask.steps.saturation import _fast_pattern_ok

    sci = (1000 + np.cumsum(rng.uniform(0, 400, (3, 6, NY, NX)), axis=1)).astype(np.float32)
    sci[0, 1, 4, 7] = 0.0  # A/D floor
    thresh = rng.uniform(1400, 2400, (NY, NX)).astype(np.float32)  # most pixels saturate mid-ramp
    thresh[5, 5] = np.nan
    tdq = np.zeros((NY, NX), np.uint32)
    tdq[9, 9] = FLAGS["NO_SAT_CHECK"]
    bias = rng.uniform(900, 1000, (NY, NX)).astype(np.float32)
    refs = {"saturation": _img(SCI=thresh, DQ=tdq), "superbias": _img(SCI=bias)}
    pattern = [[g * nframes + k + 1 for k in range(nframes)] for g in range(6)]
    exp = flag_saturated_pixels(
        sci.copy(),
        np.zeros(sci.shape, np.uint8),
        np.zeros((NY, NX), np.uint32),
        thresh.copy(),
        tdq.copy(),
        65535,
        dict(FLAGS),
        grow,
        read_pattern=pattern,
        bias=bias.copy(),
    )[0]
    # frame-averaged groups: the read-pattern tests flag groups neither at the A/D floor nor SATURATED
    extra = (exp & FLAGS["DO_NOT_USE"] != 0) & (exp & (FLAGS["AD_FLOOR"] | FLAGS["SATURATED"]) == 0)
    assert (extra.sum() > 3) == (nframes > 1)
    for tile in (3, 4, 8):
        ds = to_ramp(_uncal(sci, tile=tile, nframes=nframes))
        fast = _fast_pattern_ok(ds.SCI.data, grow, pattern)
        assert fast == (tile >= 2 * grow)
        out = _with_refs(SaturationStep(n_pix_grow_sat=grow, use_readpatt=True), refs).run(ds)
        np.testing.assert_array_equal(out.GROUPDQ.values, exp, err_msg=f"tile {tile}")


# -------------------------------------------------------------------- superbias, linearity
def test_superbias_and_zeroframe(ramp, rng):
    bias = rng.uniform(900, 1000, (NY, NX)).astype(np.float32)
    bias[2, 2] = np.nan
    bdq = np.zeros((NY, NX), np.uint32)
    bdq[5, 5] = FLAGS["UNRELIABLE_BIAS"]
    zf = ramp[:, 0].astype(np.float32)
    zf[1, 6, 6] = 0.0
    out = _with_refs(SuperBiasStep(), {"superbias": _img(SCI=bias, DQ=bdq)}).run(
        to_ramp(_uncal(ramp, zeroframe=zf))
    )
    b = np.nan_to_num(bias)
    np.testing.assert_array_equal(out.SCI.values, ramp.astype(np.float32) - b)
    exp_z = zf - b
    exp_z[1, 6, 6] = 0.0
    np.testing.assert_array_equal(out.ZEROFRAME.values, exp_z)
    assert out.PIXELDQ.values[5, 5] == FLAGS["UNRELIABLE_BIAS"]


def test_linearity_step_polynomial(ramp, rng):
    c = np.stack([np.full((NY, NX), 1.0), np.full((NY, NX), 1.01), np.full((NY, NX), 2e-6)]).astype(
        np.float32
    )
    c[1, 4, 4] = np.nan
    ds = to_ramp(_uncal(ramp))
    gdq = np.zeros(ramp.shape, np.uint8)
    gdq[0, 3:, 9, 9] = FLAGS["SATURATED"]
    ds["GROUPDQ"] = ds.GROUPDQ.copy(data=da.from_array(gdq, chunks=ds.GROUPDQ.data.chunks))
    ref = xr.Dataset({"COEFFS": (("coeff", "y", "x"), c), "DQ": (("y", "x"), np.zeros((NY, NX), np.uint32))})
    out = _with_refs(LinearityStep(), {"linearity": ref}).run(ds)
    f = ramp.astype(np.float64)
    exp = 1.0 + 1.01 * f + 2e-6 * f**2
    exp[:, :, 4, 4] = f[:, :, 4, 4]
    exp[0, 3:, 9, 9] = f[0, 3:, 9, 9]
    np.testing.assert_allclose(out.SCI.values, exp, rtol=1e-6)
    assert out.PIXELDQ.values[4, 4] & FLAGS["NO_LIN_CORR"]


# ---------------------------------------------------------------------------- dark_current
def test_dark_current_frame_averaging_and_skip(ramp, rng):
    dark = rng.normal(0, 3, (30, NY, NX)).astype(np.float32)
    ddq = np.zeros((NY, NX), np.uint32)
    ddq[1, 2] = FLAGS["HOT"]
    ref = xr.Dataset(
        {"SCI": (("group", "y", "x"), dark), "DQ": (("y", "x"), ddq)},
        attrs={"meta": {"exposure": {"nframes": 1, "groupgap": 0}}},
    )
    ds = to_ramp(_uncal(ramp, nframes=2, groupgap=3))
    out = _with_refs(DarkCurrentStep(), {"dark": ref}).run(ds)
    exp = ramp.astype(np.float32).copy()
    for g in range(ramp.shape[1]):
        exp[:, g] -= dark[g * 5 : g * 5 + 2].mean(axis=0)
    np.testing.assert_allclose(out.SCI.values, exp, rtol=1e-6)
    assert out.PIXELDQ.values[1, 2] == FLAGS["HOT"]
    assert out.attrs["meta"]["cal_step"]["dark_sub"] == "COMPLETE"
    too_long = _with_refs(DarkCurrentStep(), {"dark": ref}).run(to_ramp(_uncal(ramp, nframes=8)))
    assert too_long.attrs["meta"]["cal_step"]["dark_sub"] == "SKIPPED"
    np.testing.assert_array_equal(too_long.SCI.values, ramp.astype(np.float32))


# ------------------------------------------------------------------- charge_migration, ipc
def test_charge_migration_tiles(ramp):
    sci = ramp.copy()
    sci[0, 2:, 7, 7] = 30000
    outs = [ChargeMigrationStep().run(to_ramp(_uncal(sci, tile=t))).GROUPDQ.values for t in (8, 32)]
    np.testing.assert_array_equal(outs[0], outs[1])
    flag = FLAGS["CHARGELOSS"] | FLAGS["DO_NOT_USE"]
    for y, x in ((7, 7), (6, 7), (8, 7), (7, 6), (7, 8)):  # across the tile edge at 8
        assert (outs[0][0, 2:, y, x] == flag).all() and not outs[0][0, :2, y, x].any()
    assert not outs[0][0, :, 6, 6].any()


def test_ipc_tiles_equal_whole(ramp, rng):
    k = np.array([[0.001, 0.01, 0.001], [0.012, 0.95, 0.011], [0.002, 0.009, 0.003]], np.float32)
    ref = xr.Dataset({"SCI": (("ky", "kx"), k)})
    outs = [_with_refs(IPCStep(skip=False), {"ipc": ref}).run(to_ramp(_uncal(ramp, tile=t))) for t in (8, 32)]
    np.testing.assert_array_equal(outs[0].SCI.values, outs[1].SCI.values)
    plane = ramp[0, 1].astype(np.float64)
    y, x = 9, 16  # an interior pixel next to a tile boundary
    direct = sum(float(k[j, i]) * plane[y + 1 - j, x + 1 - i] for j in range(3) for i in range(3))
    assert outs[0].SCI.values[0, 1, y, x] == pytest.approx(direct, rel=1e-6)
    assert IPCStep().skip is True


# ---------------------------------------------------------------------------------- MIRI
def _miri(rng, ni=3, ng=8):
    sci = (1000 + np.cumsum(rng.uniform(0, 50, (ni, ng, NY, NX)), axis=1)).astype(np.uint16)
    ds = to_ramp(_uncal(sci, inst="MIRI", type="MIR_IMAGE", readpatt="FASTR1"))
    return ds.jwst.update_meta({"subarray.name": "SUB32"}), sci


def test_miri_frame_steps_and_rscd(rng):
    ds, _ = _miri(rng)
    dnu = FLAGS["DO_NOT_USE"]
    first = FirstFrameStep().run(ds).GROUPDQ.values
    assert (first[:, 0] == dnu).all() and not first[:, 1:].any()
    last = LastFrameStep().run(ds).GROUPDQ.values
    assert (last[:, -1] == dnu).all() and not last[:, :-1].any()
    table = xr.Dataset(
        {
            "RSCD_GROUP_SKIP.subarray": ("RSCD_GROUP_SKIP_row", np.array(["FULL", "SUB32"])),
            "RSCD_GROUP_SKIP.readpatt": ("RSCD_GROUP_SKIP_row", np.array(["FASTR1", "FASTR1"])),
            "RSCD_GROUP_SKIP.group_skip": ("RSCD_GROUP_SKIP_row", np.array([4, 2])),
        },
        attrs={"tables": {"RSCD_GROUP_SKIP": ["subarray", "readpatt", "group_skip"]}},
    )
    r = _with_refs(RscdStep(), {"rscd": table}).run(ds).GROUPDQ.values
    assert not r[0].any() and (r[1:, :2] == dnu).all() and not r[1:, 2:].any()
    nircam = FirstFrameStep().run(to_ramp(_uncal(np.zeros((1, 5, 4, 4), np.uint16))))
    assert nircam.attrs["meta"]["cal_step"]["firstframe"] == "SKIPPED"


def test_reset_step(rng):
    ds, sci = _miri(rng)
    reset = rng.normal(0, 2, (2, 4, NY, NX)).astype(np.float32)
    rdq = np.zeros((NY, NX), np.uint32)
    rdq[0, 0] = FLAGS["DO_NOT_USE"]
    ref = xr.Dataset({"SCI": (("integration", "group", "y", "x"), reset), "DQ": (("y", "x"), rdq)})
    out = _with_refs(ResetStep(), {"reset": ref}).run(ds)
    exp = sci.astype(np.float32).copy()
    exp[0, :4] -= reset[0]
    exp[1:, :4] -= reset[1]
    np.testing.assert_array_equal(out.SCI.values, exp)
    assert out.PIXELDQ.values[0, 0] == FLAGS["DO_NOT_USE"]


def test_emicorr_off_by_default_and_skips_a_subarray_its_reference_lacks(rng):
    # The correction itself is tested in tests/test_emicorr.py; here: the default is off, and when
    # turned on for a subarray the EMICORR reference has no case for, the data pass unchanged.
    ds, _ = _miri(rng)
    assert EmiCorrStep().run(ds).attrs["meta"]["cal_step"]["emicorr"] == "SKIPPED"
    out = EmiCorrStep(skip=False).run(ds)
    assert out.attrs["meta"]["cal_step"]["emicorr"] == "SKIPPED"
    np.testing.assert_array_equal(out.SCI.values, ds.SCI.values)


# ---------------------------------------------------------------------------- persistence
def _persistence_refs():
    table = xr.Dataset(
        {
            "TRAPPARS.capture0": ("TRAPPARS_row", np.array([0.1, 0.2])),
            "TRAPPARS.capture1": ("TRAPPARS_row", np.array([-0.01, -0.002])),
            "TRAPPARS.capture2": ("TRAPPARS_row", np.array([0.001, 0.002])),
            "TRAPPARS.decay_param": ("TRAPPARS_row", np.array([-0.001, -0.0005])),
        },
        attrs={"tables": {"TRAPPARS": ["capture0", "capture1", "capture2", "decay_param"]}},
    )
    return {
        "trapdensity": _img(SCI=np.full((NY, NX), 20.0, np.float32)),
        "persat": _img(SCI=np.full((NY, NX), 60000.0, np.float32)),
        "trappars": table,
    }


def test_persistence_first_integration_unchanged_and_trapsfilled(ramp):
    refs = _persistence_refs()
    refs["trapdensity"] = _img(SCI=np.full((NY, NX), 1000.0, np.float32))
    refs["persat"] = _img(SCI=np.full((NY, NX), 1500.0, np.float32))  # bright pixels fill traps
    tg, tf = 10.0, 10.0
    step = _with_refs(PersistenceStep(), refs)
    out = step.run(to_ramp(_uncal(ramp[:1], group_time=tg, frame_time=tf)))
    np.testing.assert_array_equal(out.SCI.values, ramp[:1].astype(np.float32))  # no earlier traps
    traps = step.side_products["trapsfilled"].SCI.values
    assert traps.shape == (2, NY, NX) and (traps > 0).all()
    # Integration 2 sees the traps integration 1 filled: after the reset (one frame) they release
    # T e^{-tf/tau} (1 - e^{-tg/tau}) during its first group.
    two = _with_refs(PersistenceStep(), refs).run(to_ramp(_uncal(ramp, group_time=tg, frame_time=tf)))
    np.testing.assert_array_equal(two.SCI.values[0], ramp[0].astype(np.float32))
    rates = np.array([1e-3, 5e-4])[:, None, None]
    release = (traps * np.exp(-tf * rates) * (1 - np.exp(-tg * rates))).sum(axis=0)
    np.testing.assert_allclose(ramp[1, 0] - two.SCI.values[1, 0], release, rtol=1e-3, atol=2e-3)
    assert release.max() > 0.05


# ------------------------------------------------------------ reference files on disk (subarray)
def _write_ref(path: Path, reftype: str, images: dict, tables: dict | None = None, start=(985, 985)) -> str:
    primary = fits.PrimaryHDU()
    h = primary.header
    h["REFTYPE"], h["INSTRUME"], h["DETECTOR"] = reftype.upper(), "NIRCAM", "NRCA1"
    h["SUBSTRT1"], h["SUBSTRT2"] = start[1] + 1, start[0] + 1
    h["NFRAMES"], h["GROUPGAP"] = 1, 0
    hdus = [primary] + [fits.ImageHDU(a, name=n) for n, a in images.items()]
    for name, cols in (tables or {}).items():
        hdus.append(
            fits.BinTableHDU.from_columns([fits.Column(k, "D", array=v) for k, v in cols.items()], name=name)
        )
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return str(path)


def test_override_reference_is_cut_to_subarray(ramp, tmp_path):
    big = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)  # covers full-frame rows/cols 985..1048
    path = _write_ref(tmp_path / "bias.fits", "superbias", {"SCI": big, "DQ": np.zeros((64, 64), np.uint32)})
    out = SuperBiasStep(override_superbias=path).run(to_ramp(_uncal(ramp)))
    cut = big[Y0 - 985 : Y0 - 985 + NY, X0 - 985 : X0 - 985 + NX]
    np.testing.assert_array_equal(out.SCI.values, ramp.astype(np.float32) - cut)
    with pytest.raises(ReferenceFileError):
        SuperBiasStep(override_superbias=str(tmp_path / "missing.fits")).run(to_ramp(_uncal(ramp)))


# ------------------------------------------------------------------------------ pipelines
@pytest.fixture
def pipeline_refs(tmp_path):
    s = 64
    z = np.zeros((s, s), np.uint32)
    d = tmp_path / "refs"
    d.mkdir()
    w = _write_ref
    traps = {
        "capture0": [0.1, 0.2],
        "capture1": [-0.01, -0.02],
        "capture2": [0.001, 0.002],
        "decay_param": [-1e-3, -2e-3],
    }
    return {
        "dq_init": {"override_mask": w(d / "mask.fits", "mask", {"DQ": z})},
        "saturation": {
            "override_saturation": w(
                d / "sat.fits", "saturation", {"SCI": np.full((s, s), 6e4, np.float32), "DQ": z}
            )
        },
        "superbias": {
            "override_superbias": w(
                d / "bias.fits", "superbias", {"SCI": np.full((s, s), 1e3, np.float32), "DQ": z}
            )
        },
        "linearity": {
            "override_linearity": w(
                d / "lin.fits",
                "linearity",
                {"COEFFS": np.stack([np.zeros((s, s)), np.ones((s, s))]).astype(np.float32), "DQ": z},
            )
        },
        "persistence": {
            "override_trapdensity": w(d / "td.fits", "trapdensity", {"SCI": np.full((s, s), 5, np.float32)}),
            "override_persat": w(d / "ps.fits", "persat", {"SCI": np.full((s, s), 5e4, np.float32)}),
            "override_trappars": w(
                d / "tp.fits", "trappars", {}, {"TRAPPARS": {k: np.array(v) for k, v in traps.items()}}
            ),
        },
        "dark_current": {
            "override_dark": w(d / "dark.fits", "dark", {"SCI": np.zeros((10, s, s), np.float32), "DQ": z})
        },
        "jump": {
            "override_gain": w(d / "gain.fits", "gain", {"SCI": np.full((s, s), 2.0, np.float32)}),
            "override_readnoise": w(d / "rn.fits", "readnoise", {"SCI": np.full((s, s), 10.0, np.float32)}),
        },
    }


def _exposure(rng, ni=2, ng=5):
    rate = rng.uniform(20, 80, (NY, NX))
    t = 10.737
    sci = (
        1000
        + rate[None, None] * np.arange(1, ng + 1)[None, :, None, None] * t
        + rng.normal(0, 3, (ni, ng, NY, NX))
    )
    ds = _uncal(sci.astype(np.uint16), tile=16, group_time=t, frame_time=t, readpatt="RAPID", frame_divisor=1)
    return ds, rate


@pytest.mark.slow
def test_detector1_end_to_end(tmp_path, pipeline_refs, rng):
    from jwst_dask.pipelines import Detector1Pipeline

    ds, rate = _exposure(rng)
    steps = dict(pipeline_refs)
    steps["jump"] = {**pipeline_refs["jump"], "rejection_threshold": 5}
    steps["ramp_fit"] = dict(pipeline_refs["jump"])
    steps["gain_scale"] = {"override_gain": pipeline_refs["jump"]["override_gain"]}
    out = tmp_path / "out"
    Detector1Pipeline.call(ds, output_dir=str(out), save_results=True, save_calibrated_ramp=True, steps=steps)
    names = sorted(p.name for p in out.iterdir())
    for suffix in ("rate", "rateints", "ramp", "trapsfilled"):
        assert f"jw01_nrca1_{suffix}.fits" in names
    with fits.open(out / "jw01_nrca1_rate.fits") as hdul:
        np.testing.assert_allclose(hdul["SCI"].data, rate, rtol=0.05)
        h = hdul[0].header
        assert h["S_SATURA"] == "COMPLETE" and h["S_SUPERB"] == "COMPLETE" and h["S_DARK"] == "COMPLETE"
        assert h["S_IPC"] == "SKIPPED"
    with fits.open(out / "jw01_nrca1_rateints.fits") as hdul:
        assert hdul["SCI"].data.shape == (2, NY, NX)


@pytest.mark.slow
def test_dark_pipeline_stops_before_dark_current(tmp_path, pipeline_refs, rng):
    from jwst_dask.pipelines import DarkPipeline

    ds, _ = _exposure(rng)
    steps = {
        k: v for k, v in pipeline_refs.items() if k in ("dq_init", "saturation", "superbias", "linearity")
    }
    out = tmp_path / "dark"
    result = DarkPipeline.call(ds, output_dir=str(out), save_results=True, steps=steps)
    assert (out / "jw01_nrca1_dark.fits").exists()
    assert "dark_sub" not in result.attrs["meta"].get("cal_step", {})
    assert result.attrs["meta"]["cal_step"]["linearity"] == "COMPLETE"


def test_variants_and_tso_configuration(rng):
    from jwst_dask.pipelines import Detector1Pipeline
    from jwst_dask.pipelines.detector1 import Tso1Pipeline

    nir = Detector1Pipeline()
    ds, _ = _exposure(rng)
    assert [s.name for s in nir.steps_in_order(ds)][:6] == [
        "group_scale",
        "dq_init",
        "saturation",
        "ipc",
        "superbias",
        "refpix",
    ]
    miri, _ = _miri(rng)
    order = [s.name for s in nir.steps_in_order(miri)]
    assert order.index("reset") < order.index("linearity") < order.index("rscd") < order.index("dark_current")
    assert order.index("dark_current") < order.index("refpix")
    assert nir.ipc.skip and nir.charge_migration.skip and nir.emicorr.skip and not nir.persistence.skip
    tso = Tso1Pipeline()
    assert tso.persistence.skip and tso.firstframe.skip and tso.lastframe.skip and tso.rscd.skip
    assert not tso.saturation.skip


def test_chain_is_identical_for_any_tile_size(rng):
    # The near-infrared chain on a corner subarray (reference rows and columns inside): products
    # do not depend on the pixel tile.
    n = 48
    sci = (1000 + np.cumsum(rng.uniform(0, 3000, (2, 4, n, n)), axis=1)).astype(np.uint16)
    sci[0, 2:, 20, 20] = 60000
    refs = {
        "mask": _img(DQ=np.zeros((n, n), np.uint32)),
        "saturation": _img(SCI=np.full((n, n), 40000, np.float32), DQ=np.zeros((n, n), np.uint32)),
        "superbias": _img(
            SCI=rng.uniform(900, 1000, (n, n)).astype(np.float32), DQ=np.zeros((n, n), np.uint32)
        ),
        "linearity": xr.Dataset(
            {
                "COEFFS": (
                    ("coeff", "y", "x"),
                    np.stack([np.zeros((n, n)), np.ones((n, n)), np.full((n, n), 1e-6)]),
                ),
                "DQ": (("y", "x"), np.zeros((n, n), np.uint32)),
            }
        ),
        "dark": xr.Dataset(
            {"SCI": (("group", "y", "x"), rng.normal(0, 2, (6, n, n)).astype(np.float32))},
            attrs={"meta": {"exposure": {"nframes": 1, "groupgap": 0}}},
        ),
        **_persistence_refs_sized(n),
    }
    steps = [DQInitStep, SaturationStep, SuperBiasStep, RefPixStep, LinearityStep, PersistenceStep]
    steps += [DarkCurrentStep, ChargeMigrationStep]
    results = []
    for tile in (16, 48):
        ds = to_ramp(_uncal(sci, tile=tile, group_time=10.0, frame_time=10.0))
        ds = ds.jwst.update_meta(
            {"subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": n, "subarray.ysize": n}
        )
        for cls in steps:
            ds = _with_refs(cls(), refs).run(ds)
        results.append(ds)
    for name in ("SCI", "GROUPDQ", "PIXELDQ"):
        np.testing.assert_array_equal(results[0][name].values, results[1][name].values)
    assert results[0].attrs["meta"]["cal_step"]["refpix"] == "COMPLETE"


def _persistence_refs_sized(n):
    refs = _persistence_refs()
    refs["trapdensity"] = _img(SCI=np.full((n, n), 20.0, np.float32))
    refs["persat"] = _img(SCI=np.full((n, n), 30000.0, np.float32))
    return refs
