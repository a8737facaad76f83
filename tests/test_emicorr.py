"""EmiCorrStep and its kernels: read timing, injected EMI removal, tiling, skipping, bad input.

EMI is injected with read times computed by a plain loop over integrations, groups and rows (the
clocking described in the seeds / the official sequential algorithm), independent of the kernels'
vectorised formula. An official-parity test runs jwst's EmiCorrStep when ``JWST_OFFICIAL_PYTHON``
points at a Python with jwst 3.0.
"""

from __future__ import annotations

import _official
import asdf
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.stats import sigma_clipped_stats

from jwst_dask.errors import ReferenceFileError, ShapeMismatchError
from jwst_dask.kernels import emicorr as kern
from jwst_dask.steps.emicorr import EmiCorrStep
from jwst_dask.steps.ramp_model import to_ramp

CLOCKS = {"SUB64": (28, 8512), "FULL_FAST": (271, 277504), "MASK1550": (82, 23968)}


def loop_times(nints, ngroups, ny, nx4, nsamples, rowclocks, frameclocks, readpatt, xstart, xsize):
    """Read time of every quad column, one row at a time (the clock walks row by row)."""
    t = np.zeros((nints, ngroups, ny, nx4), dtype=np.int64)
    start = 0
    for i in range(nints):
        for k in range(ngroups):
            for j in range(ny):
                t[i, k, j] = np.arange(nx4) * nsamples + start
                if xsize // 4 + xstart - 1 == 258:  # the right-hand reference pixel is read
                    t[i, k, j, -1] += 3 + 2**32
                start += rowclocks
            start += (1024 - ny) * 7  # the rows outside the subarray
        if readpatt in ("FASTR1", "SLOWR1"):
            start += frameclocks  # the extra reset frame
    return t


def inject(shape, waves, *, subarray="SUB64", readpatt="FAST", xstart=1, seed=3, noise=1.0):
    """(clean, with EMI) ramps: a sky ramp, bias, read noise, plus the sinusoids
    ``[(frequency, amplitude, phase), ...]`` at each pixel's read time."""
    nints, ngroups, ny, nx = shape
    rng = np.random.default_rng(seed)
    bias = rng.normal(10000.0, 50.0, (ny, nx))
    rate = rng.uniform(5.0, 40.0, (ny, nx))
    g = np.arange(ngroups)[None, :, None, None]
    clean = bias + rate * g + rng.normal(0.0, noise, shape)
    rowclocks, frameclocks = CLOCKS[subarray if subarray != "FULL" else "FULL_FAST"]
    t = loop_times(nints, ngroups, ny, nx // 4, 1, rowclocks, frameclocks, readpatt, xstart, nx)
    emi = np.zeros(t.shape)
    for freq, amp, phi in waves:
        period = 1.0 / freq / 10e-6
        emi += amp * np.sin(2 * np.pi * (t / period) + phi)
    dirty = clean + np.repeat(emi, 4, axis=-1)
    return clean.astype(np.float32), dirty.astype(np.float32)


def make_dataset(sci, *, subarray="SUB64", readpatt="FAST", xstart=1, tile=None, inst="MIRI"):
    nints, ngroups, ny, nx = sci.shape
    chunks = (nints, ngroups, tile or ny, tile or nx)
    meta = {
        "instrument": {"name": inst, "detector": "MIRIMAGE"},
        "subarray": {"name": subarray, "xstart": xstart, "ystart": 1, "xsize": nx, "ysize": ny},
        "exposure": {"readpatt": readpatt, "nsamples": 1, "nints": nints, "ngroups": ngroups},
    }
    data = {
        "SCI": (("integration", "group", "y", "x"), da.from_array(sci, chunks=chunks)),
        "PIXELDQ": (("y", "x"), np.zeros((ny, nx), np.uint32)),
    }
    return to_ramp(xr.Dataset(data, attrs={"meta": meta, "model_type": "RampModel"}))


def sine_wave(n=500):
    return np.sin(2 * np.pi * np.arange(n) / n).astype(np.float32)


def write_reference(path, cases, freqs):
    """An EMICORR ASDF file: ``cases`` {subarray: (rowclocks, frameclocks, [names])},
    ``freqs`` {name: (frequency, wave)}."""
    tree = {
        "frequencies": {n: {"frequency": f, "phase_amplitudes": w} for n, (f, w) in freqs.items()},
        "subarray_cases": {
            s: {"rowclocks": r, "frameclocks": fc, "freqs": {"FAST": names, "SLOW": {"MIRIMAGE": names}}}
            for s, (r, fc, names) in cases.items()
        },
    }
    asdf.AsdfFile(tree).write_to(path)
    return path


def ref390(path, case, rowclocks, frameclocks):
    """A reference with one case listing one 390.625 Hz unit sine."""
    return write_reference(
        path, {case: (rowclocks, frameclocks, ["Hz390"])}, {"Hz390": (390.625, sine_wave())}
    )


def run(ds, **params):
    out = EmiCorrStep(skip=False, **params).run(ds)
    with dask.config.set(scheduler="sync"):
        return out, np.asarray(out["SCI"].data.compute())


def rms(a):
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


# ------------------------------------------------------------------------------ kernels
@pytest.mark.parametrize(
    ("shape", "readpatt", "xstart", "clocks"),
    [((2, 4, 8, 72), "FAST", 779, (28, 8512)), ((2, 3, 5, 1032), "FASTR1", 1, (271, 277504))],
)
def test_quad_times_match_the_row_by_row_clock(shape, readpatt, xstart, clocks):
    nints, ngroups, ny, nx = shape
    timing = kern.Timing.for_exposure(ngroups, ny, nx, 1, *clocks, readpatt, xstart, nx)
    expect = loop_times(nints, ngroups, ny, nx // 4, 1, *clocks, readpatt, xstart, nx)
    got = kern.quad_times(np.arange(nints), timing)
    np.testing.assert_array_equal(got.astype(np.int64), expect)
    if nx == 1032:  # full width: the last quad carries the reference-pixel delay
        assert got[0, 0, 0, -1] - got[0, 0, 0, -2] == 1 + 3 + 2**32


def test_clipped_mean_matches_astropy():
    rng = np.random.default_rng(1)
    for n in (1, 7, 50, 400):
        v = rng.normal(0, 1, n)
        v[: n // 10] += 30.0  # outliers
        assert kern.clipped_mean(v) == pytest.approx(sigma_clipped_stats(v)[0], rel=1e-12, abs=1e-12)


def test_phased_wave_recovers_a_binned_sine():
    # constant frames plus a sine of the phase: each bin's clipped mean is the sine at its phases
    rng = np.random.default_rng(2)
    phases = rng.uniform(0, 1, (1, 3, 40, 60))
    quads = (5.0 * np.sin(2 * np.pi * phases)).astype(np.float32)
    quads[..., 1:3] = 0  # columns 1 and 2 are replaced by the mean of 0 and 3 anyway
    pa = kern.phased_wave(quads, phases, 50)
    centres = (np.arange(50) + 0.5) / 50
    expect = 5.0 * np.sin(2 * np.pi * centres)
    assert np.max(np.abs(pa - (expect - np.median(expect)))) < 0.5


# ---------------------------------------------------------------------------- the step
def test_removes_injected_390hz_and_10hz_with_reference(tmp_path):
    # 56 full-width rows: both waves drift in phase from frame to frame (a wave in phase with
    # the frames is a constant bias per pixel, which the phased wave cannot see nor needs to)
    waves = [(390.625, 6.0, 0.7), (10.039216, 4.0, 2.1)]
    clean, dirty = inject((2, 10, 56, 1032), waves, subarray="FULL")
    ref = write_reference(
        tmp_path / "emi.asdf",
        {"FULL_FAST": (271, 277504, ["Hz390", "Hz10"])},
        {"Hz390": (390.625, sine_wave()), "Hz10": (10.039216, sine_wave(250))},
    )
    ds = make_dataset(dirty, subarray="FULL", tile=256)
    out, sci = run(ds, override_emicorr=str(ref))
    before, after = rms(dirty - clean), rms(sci - clean)
    assert before > 4.0
    assert after < 0.12 * before, (before, after)
    diff_before = rms(np.diff(dirty - clean, axis=1))
    assert rms(np.diff(sci - clean, axis=1)) < 0.12 * diff_before
    assert out.jwst.meta.get_path("cal_step.emicorr") == "COMPLETE"
    assert out.jwst.meta.get_path("ref_file.emicorr.name") == "emi.asdf"
    for name in ("PIXELDQ", "GROUPDQ"):
        np.testing.assert_array_equal(out[name].values, ds[name].values)


def test_subarray_390hz_amplitude_scaling(tmp_path):
    # SUB64 (72 columns): the 390.625 Hz wave moves a quarter period per frame
    clean, dirty = inject((2, 10, 64, 72), [(390.625, 6.0, 0.7)], xstart=779)
    ref = ref390(tmp_path / "s.asdf", "SUB64", 28, 8512)
    ds = make_dataset(dirty, xstart=779, tile=32)
    _, scaled = run(ds, override_emicorr=str(ref))
    _, unscaled = run(ds, override_emicorr=str(ref), scale_reference=False)
    before = rms(dirty - clean)
    assert rms(scaled - clean) < 0.05 * before
    # unscaled: the reference's unit amplitude is subtracted at the right phase, 5 of 6 remain
    assert rms(unscaled - clean) == pytest.approx(before * 5.0 / 6.0, rel=0.03)


def test_self_correction_on_the_fly():
    clean, dirty = inject((1, 12, 64, 72), [(390.625, 8.0, -1.2)], xstart=779)
    _, sci = run(make_dataset(dirty, xstart=779), onthefly_corr_freq=[390.625])
    before, after = rms(dirty - clean), rms(sci - clean)
    assert after < 0.2 * before, (before, after)


def test_on_the_fly_waves_saved_as_a_reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clean, dirty = inject((1, 12, 64, 72), [(390.625, 8.0, -1.2)], xstart=779)
    ds = make_dataset(dirty, xstart=779)
    ds.attrs["filename"] = "jw01_mirimage_uncal.fits"
    run(ds, onthefly_corr_freq=[390.625], save_intermediate_results=True)
    path = tmp_path / "jw01_mirimage_emi_ref_waves.asdf"
    with asdf.open(path) as af:
        (name,) = af["frequencies"]
        wave = np.asarray(af["frequencies"][name]["phase_amplitudes"])
        assert af["frequencies"][name]["frequency"] == 390.625
        assert af["subarray_cases"]["SUB64"]["freqs"]["FAST"] == [name]
    assert wave.shape == (128,)  # half the 256-clock period
    # the saved wave is the injected sine at the bin centres (up to its median)
    centres = (np.arange(128) + 0.5) / 128
    expect = 8.0 * np.sin(2 * np.pi * centres - 1.2)
    assert rms(wave - (expect - np.median(expect))) < 0.5
    # and used as a reference it corrects the same data as well as the self-correction did
    _, sci = run(ds, override_emicorr=str(path))
    assert rms(sci - clean) < 0.2 * rms(dirty - clean)


def test_full_width_subarray_without_scaling(tmp_path):
    # 1032 columns (the reference-pixel delay on the last quad), the FULL case of a reference
    # named as the simulator writes it; amplitude 1 in the reference, 1 injected, no scaling
    clean, dirty = inject((1, 10, 16, 1032), [(390.625, 1.0, 0.3)], subarray="FULL", noise=0.3)
    ref = ref390(tmp_path / "full.asdf", "FULL", 271, 277504)
    _, sci = run(
        make_dataset(dirty, subarray="FULL", tile=256), override_emicorr=str(ref), scale_reference=False
    )
    before, after = rms(dirty - clean), rms(sci - clean)
    assert after < 0.15 * before, (before, after)


def test_joint_fit_removes_both_waves_with_few_groups(tmp_path):
    # the joint fit (jwst 3.x) also works with 5 groups and two frequencies on SUB64
    waves = [(390.625, 6.0, 0.7), (10.039216, 4.0, 2.1)]
    clean, dirty = inject((2, 5, 64, 72), waves, xstart=779)
    ref = write_reference(
        tmp_path / "j.asdf",
        {"SUB64": (28, 8512, ["Hz390", "Hz10"])},
        {"Hz390": (390.625, sine_wave()), "Hz10": (10.039216, sine_wave(250))},
    )
    _, whole = run(make_dataset(dirty, xstart=779), override_emicorr=str(ref), algorithm="joint")
    assert rms(whole - clean) < 0.05 * rms(dirty - clean)
    _, separately = run(
        make_dataset(dirty, xstart=779),
        override_emicorr=str(ref),
        algorithm="joint",
        fit_ints_separately=True,
    )
    assert rms(separately - clean) < 0.05 * rms(dirty - clean)
    # tiles: the per-tile sums add up in another order, the result is the same to rounding
    _, tiled = run(make_dataset(dirty, xstart=779, tile=20), override_emicorr=str(ref), algorithm="joint")
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-4)


def test_tiles_and_whole_frame_give_identical_results(tmp_path):
    _, dirty = inject((2, 6, 40, 72), [(390.625, 5.0, 0.2)], subarray="MASK1550")
    ref = ref390(tmp_path / "e.asdf", "MASK1550", 82, 23968)
    _, whole = run(make_dataset(dirty, subarray="MASK1550"), override_emicorr=str(ref))
    _, tiled = run(make_dataset(dirty, subarray="MASK1550", tile=16), override_emicorr=str(ref))
    _, odd = run(make_dataset(dirty, subarray="MASK1550", tile=13), override_emicorr=str(ref))
    assert not np.array_equal(whole, dirty)
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_array_equal(odd, whole)


def test_defaults_and_skips(tmp_path):
    spec = EmiCorrStep.merged_spec()
    assert EmiCorrStep().skip is True
    assert EmiCorrStep.reference_file_types == ("emicorr",)
    assert "override_emicorr" in spec
    step = EmiCorrStep()
    assert (step.nints_to_phase, step.nbins, step.scale_reference) == (None, None, True)
    assert (step.user_supplied_reffile, step.save_intermediate_results) == (None, False)
    _, dirty = inject((1, 5, 8, 72), [(390.625, 5.0, 0.0)])
    ds = make_dataset(dirty)
    assert EmiCorrStep().run(ds).jwst.meta.get_path("cal_step.emicorr") == "SKIPPED"
    nircam = make_dataset(dirty, inst="NIRCAM")
    out = EmiCorrStep(skip=False).run(nircam)
    assert out.jwst.meta.get_path("cal_step.emicorr") == "SKIPPED"
    assert out["SCI"].data is nircam["SCI"].data
    slow = make_dataset(dirty)
    slow.attrs["meta"]["exposure"]["readpatt"] = "SLOWGRPAVG"
    assert EmiCorrStep(skip=False).run(slow).jwst.meta.get_path("cal_step.emicorr") == "SKIPPED"
    # a reference without a case for the subarray: skipped, data unchanged
    ref = ref390(tmp_path / "o.asdf", "SUB256", 96, 29952)
    out = EmiCorrStep(skip=False, override_emicorr=str(ref)).run(ds)
    assert out.jwst.meta.get_path("cal_step.emicorr") == "SKIPPED"


def test_user_supplied_reffile_and_bad_input(tmp_path):
    clean, dirty = inject((1, 10, 32, 72), [(390.625, 5.0, 1.0)])
    ref = ref390(tmp_path / "u.asdf", "SUB64", 28, 8512)
    out, sci = run(make_dataset(dirty), user_supplied_reffile=str(ref))
    assert rms(sci - clean) < 0.2 * rms(dirty - clean)
    assert out.jwst.meta.get_path("ref_file.emicorr.name") == "u.asdf"
    with pytest.raises(ReferenceFileError, match="user_supplied_reffile"):
        EmiCorrStep(skip=False, user_supplied_reffile=str(tmp_path / "missing.asdf")).run(make_dataset(dirty))
    with pytest.raises(ShapeMismatchError, match="multiple of the 4"):
        EmiCorrStep(skip=False, override_emicorr=str(ref)).run(make_dataset(dirty[..., :70]))
    bad = tmp_path / "bad.asdf"
    asdf.AsdfFile({"frequencies": {}}).write_to(bad)
    with pytest.raises(ReferenceFileError, match="subarray_cases"):
        EmiCorrStep(skip=False, override_emicorr=str(bad)).run(make_dataset(dirty))


def test_crds_selected_reference_for_miri_full_frame(project_cache):
    # the shipped rules select the EMICORR file for MIRI; a 4-row full-width slice of a FULL
    # FAST exposure runs with it (the simulator's file has a FULL case for 390.625 / 218.5 Hz)
    clean, dirty = inject((1, 10, 8, 1032), [(390.625, 3.0, 0.4)], subarray="FULL", noise=0.3)
    ds = make_dataset(dirty, subarray="FULL")
    ds.attrs["meta"]["observation"] = {"date": "2024-01-01", "time": "00:00:00"}
    ds.attrs["meta"]["exposure"]["type"] = "MIR_IMAGE"
    ds.attrs["meta"]["instrument"]["filter"] = "F770W"
    step = EmiCorrStep(skip=False)
    out = step.run(ds)
    assert str(out.jwst.meta.get_path("ref_file.emicorr.name")).startswith("crds://")
    with dask.config.set(scheduler="sync"):
        sci = out["SCI"].values
    assert rms(sci - clean) < 0.3 * rms(dirty - clean)


# ------------------------------------------------------------------------- official parity
SCRIPT = (
    _official.SCRIPT_PREAMBLE
    + r"""
import sys
import numpy as np
from stdatamodels.jwst import datamodels
from jwst.emicorr import EmiCorrStep
inp, out, ref, sub, xstart = sys.argv[1:6]
d = np.load(inp)
ramp = datamodels.RampModel(data=d["data"], pixeldq=np.zeros(d["data"].shape[2:], np.uint32),
                            groupdq=np.zeros(d["data"].shape, np.uint8))
m = ramp.meta
m.instrument.name, m.instrument.detector = "MIRI", "MIRIMAGE"
m.subarray.name, m.subarray.xstart, m.subarray.ystart = sub, int(xstart), 1
m.subarray.xsize, m.subarray.ysize = d["data"].shape[3], d["data"].shape[2]
m.exposure.readpatt, m.exposure.nsamples = "FAST", 1
m.exposure.nints, m.exposure.ngroups = d["data"].shape[:2]
emi = datamodels.EmiModel()
emi.frequencies = {"Hz390": {"frequency": 390.625, "phase_amplitudes": d["wave"]},
                   "Hz10": {"frequency": 10.039216, "phase_amplitudes": d["wave10"]}}
case = "FULL_FAST" if sub == "FULL" else sub
rowclocks, frameclocks = {"FULL_FAST": (271, 277504), "SUB64": (28, 8512)}[case]
emi.subarray_cases = {case: {"rowclocks": rowclocks, "frameclocks": frameclocks,
                                "freqs": {"FAST": ["Hz390", "Hz10"], "SLOW": {"MIRIMAGE": ["Hz390"]}}}}
emi.meta.reftype, emi.meta.author, emi.meta.pedigree = "emicorr", "test", "GROUND"
emi.meta.description, emi.meta.useafter = "test", "2020-01-01T00:00:00"
emi.meta.instrument.name = "MIRI"
emi.save(ref)
res = EmiCorrStep.call(ramp, skip=False, override_emicorr=ref, algorithm=sys.argv[6],
                       fit_ints_separately=sys.argv[7] == "1")
np.save(out, res.data)
"""
)


@pytest.mark.official
@_official.requires_official
@pytest.mark.parametrize(
    ("shape", "subarray", "xstart", "algorithm", "separately"),
    [
        ((2, 10, 56, 1032), "FULL", 1, "sequential", False),
        ((2, 10, 64, 72), "SUB64", 779, "sequential", False),
        ((2, 10, 56, 1032), "FULL", 1, "joint", False),
        ((3, 5, 64, 72), "SUB64", 779, "joint", True),
    ],
)
def test_matches_official(tmp_path, shape, subarray, xstart, algorithm, separately):
    _, dirty = inject(shape, [(390.625, 6.0, 0.7), (10.039216, 4.0, 2.1)], subarray=subarray, xstart=xstart)
    np.savez(tmp_path / "in.npz", data=dirty, wave=sine_wave(), wave10=sine_wave(250))
    (tmp_path / "run.py").write_text(SCRIPT)
    ref = tmp_path / "emi_ref.asdf"
    args = [str(tmp_path / "run.py"), str(tmp_path / "in.npz"), str(tmp_path / "out.npy"), str(ref)]
    _official.run_official(
        [*args, subarray, str(xstart), algorithm, "1" if separately else "0"], cwd=tmp_path
    )
    official = np.load(tmp_path / "out.npy")
    ds = make_dataset(dirty, subarray=subarray, xstart=xstart, tile=32)
    _, ours = run(ds, override_emicorr=str(ref), algorithm=algorithm, fit_ints_separately=separately)
    assert official.shape == ours.shape
    assert not np.allclose(official, dirty, atol=0.5)  # the official step did correct
    np.testing.assert_allclose(ours, official, rtol=0, atol=1e-4)


def test_detector1_runs_emicorr_for_miri_only(project_cache):
    from jwst_dask.steps.base import resolve_class

    pipe = resolve_class("calwebb_detector1")(steps={"emicorr": {"skip": False}})
    _, dirty = inject((1, 5, 8, 72), [(390.625, 5.0, 0.0)])
    miri = make_dataset(dirty, subarray="FULL")
    miri.attrs["meta"]["observation"] = {"date": "2024-01-01", "time": "00:00:00"}
    nircam = make_dataset(dirty, inst="NIRCAM")
    nircam.attrs["meta"]["instrument"]["detector"] = "NRCA1"
    miri_steps = {s.name: s for s in pipe.steps_in_order(miri)}
    assert miri_steps["emicorr"].skip is False
    assert "emicorr" not in {s.name for s in pipe.steps_in_order(nircam)}
    assert str(pipe.prefetch(miri, [miri_steps["emicorr"]])["emicorr"]).endswith(
        "jwst_miri_emicorr_0001.asdf"
    )
