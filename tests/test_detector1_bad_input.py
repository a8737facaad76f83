"""Stage 1 on bad input: one clear error line naming the thing at fault, a non-zero exit status
from ``jwst-dask run``, and no file left in the output folder.

Each bad input is made from a good small simulated exposure (or a good CRDS reference) by
breaking exactly one thing. What stage 1 needs of a raw exposure was found by removing things:
the GROUP table is not used (as in the official pipeline), and keywords such as NGROUPS may also
come from the ASDF extension, so a keyword is only missing when neither carries it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import _sim
import dask
import numpy as np
import pytest
from _sim import image_arrays
from astropy.io import fits

from jwst_dask.cli import main

sims, stage1 = _sim.sims, _sim.stage1  # the session fixtures

PIPELINE = "calwebb_detector1"


@pytest.fixture(scope="module")
def good(sims):
    return sims.get("nircam-mosaic", seed=11, size=32, ngroups=5, cosmic_rays=False)


@pytest.fixture(autouse=True)
def _threads():
    with dask.config.set(scheduler="threads"):
        yield


def _variant(good: Path, folder: Path, name: str, change) -> Path:
    """A copy of the good exposure with ``change(hdul)`` applied, as ``<name>_uncal.fits``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_uncal.fits"
    with fits.open(good) as hdul:
        copy = fits.HDUList([hdu.copy() for hdu in hdul])
    change(copy)
    copy.writeto(path, overwrite=True)
    return path


def _drop(*keywords: str, asdf: bool = True):
    def change(hdul):
        if asdf:
            hdul.pop(hdul.index_of("ASDF"))
        for keyword in keywords:
            del hdul[0].header[keyword]

    return change


def _run(capsys, tmp_path: Path, input_path, *options: str) -> tuple[int, list[str], list[str]]:
    """``jwst-dask run calwebb_detector1 INPUT --output-dir OUT OPTIONS``: (status, error lines,
    files left in OUT)."""
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    capsys.readouterr()
    status = main(["run", PIPELINE, str(input_path), "--output-dir", str(out), *options])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    problems = [line for line in err.splitlines() if " - INFO - " not in line and " - WARNING - " not in line]
    return status, problems, sorted(p.name for p in out.iterdir())


def _assert_one_clear_error(result, *words: str) -> None:
    status, lines, files = result
    assert status != 0
    assert len(lines) == 1 and lines[0].startswith("jwst-dask: error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert files == [], files


# ------------------------------------------------------------------------------ the exposure
def test_good_exposure_runs(good, tmp_path, capsys):
    """The baseline the bad inputs break: the same command on the good file succeeds."""
    status, lines, files = _run(capsys, tmp_path, good)
    assert status == 0 and lines == []
    root = Path(good).name.removesuffix("_uncal.fits")
    assert {f"{root}_rate.fits", f"{root}_rateints.fits"} <= set(files)


def test_group_table_is_not_needed(good, tmp_path, capsys, stage1):
    """Without the GROUP table the products are those of the full file (nothing reads it)."""
    path = _variant(good, tmp_path / "in", "nogroup", lambda h: h.pop(h.index_of("GROUP")))
    status, lines, _ = _run(capsys, tmp_path, path)
    assert status == 0 and lines == []
    got = image_arrays(tmp_path / "out" / "nogroup_rate.fits")
    ref = image_arrays(stage1.get(good)["rate"])
    for name in ("SCI", "ERR", "DQ"):
        assert np.array_equal(got[name], ref[name], equal_nan=True), name


def test_asdf_extension_alone_is_not_needed(good, tmp_path, capsys):
    """The FITS keywords alone describe the exposure (the ASDF extension only duplicates them)."""
    path = _variant(good, tmp_path / "in", "noasdf", _drop())
    status, lines, _ = _run(capsys, tmp_path, path)
    assert status == 0 and lines == []


@pytest.mark.parametrize("keyword", ["NGROUPS", "NINTS", "DETECTOR"])
def test_missing_required_keyword(good, tmp_path, capsys, keyword):
    path = _variant(good, tmp_path / "in", f"no{keyword.lower()}", _drop(keyword))
    _assert_one_clear_error(_run(capsys, tmp_path, path), keyword, path.name)


def test_missing_group_time(good, tmp_path, capsys):
    """Ramp fitting and jump detection need the group time: TGROUP (and TFRAME to rebuild it)."""
    path = _variant(good, tmp_path / "in", "notgroup", _drop("TGROUP", "TFRAME"))
    result = _run(capsys, tmp_path, path)
    status, lines, files = result
    assert status != 0 and files == []
    assert len(lines) == 1 and lines[0].startswith("jwst-dask: error: "), lines
    assert any(word in lines[0] for word in ("TGROUP", "TFRAME", "group_time", "frame_time")), lines


@pytest.mark.parametrize(
    ("keyword", "value", "words"),
    [("NGROUPS", 4, ["5 groups", "NGROUPS = 4"]), ("INTEND", 3, ["1 integrations", "1..3"])],
)
def test_ngroups_or_integrations_disagree_with_sci(good, tmp_path, capsys, keyword, value, words):
    """(NINTS counts the integrations of every segment; the file's own are INTSTART..INTEND.)"""

    def change(hdul):
        hdul.pop(hdul.index_of("ASDF"))
        hdul[0].header[keyword] = value

    path = _variant(good, tmp_path / "in", f"bad{keyword.lower()}", change)
    _assert_one_clear_error(_run(capsys, tmp_path, path), path.name, *words)


def test_missing_input_file(tmp_path, capsys):
    missing = tmp_path / "nothere_uncal.fits"
    _assert_one_clear_error(_run(capsys, tmp_path, missing), "nothere_uncal.fits")


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_input_file(good, tmp_path, capsys, keep):
    data = Path(good).read_bytes()
    path = tmp_path / "truncated_uncal.fits"
    path.write_bytes(data[: int(len(data) * keep) // 2880 * 2880 - 100])
    _assert_one_clear_error(_run(capsys, tmp_path, path), "truncated_uncal.fits", "truncated")


def test_not_a_fits_file(tmp_path, capsys):
    path = tmp_path / "text_uncal.fits"
    path.write_text("SIMPLE  = this is not a FITS file\n")
    _assert_one_clear_error(_run(capsys, tmp_path, path), "text_uncal.fits")


# ------------------------------------------------------------------------------ parameters
def test_unknown_step_parameter(good, tmp_path, capsys):
    result = _run(capsys, tmp_path, good, "--steps.jump.rejection_treshold=5")
    _assert_one_clear_error(result, "jump", "'rejection_treshold'")


def test_unknown_step(good, tmp_path, capsys):
    result = _run(capsys, tmp_path, good, "--steps.jumpp.rejection_threshold=5")
    _assert_one_clear_error(result, "'jumpp'")


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--steps.jump.rejection_threshold=abc", ["jump", "'rejection_threshold'", "'abc'"]),
        ("--steps.saturation.n_pix_grow_sat=1.5", ["saturation", "'n_pix_grow_sat'", "'1.5'"]),
        ("--steps.ramp_fit.skip=perhaps", ["ramp_fit", "'skip'", "'perhaps'"]),
        ("--save_calibrated_ramp=maybe", ["'save_calibrated_ramp'", "'maybe'"]),
    ],
)
def test_wrong_typed_value(good, tmp_path, capsys, option, words):
    _assert_one_clear_error(_run(capsys, tmp_path, good, option), *words)


# ------------------------------------------------------------------------------ references
def _crds_reference(good: Path, reftype: str) -> Path:
    from jwst_dask.io import open_product
    from jwst_dask.refs import best_references

    return Path(best_references(open_product(good).attrs["meta"], [reftype])[reftype])


def test_reference_shape_does_not_cover_the_subarray(good, tmp_path, capsys):
    """A superbias smaller than the exposure cannot be cut to its 32 x 32 pixels."""
    bad = tmp_path / "small_superbias.fits"
    with fits.open(_crds_reference(good, "superbias")) as hdul:
        copy = fits.HDUList([hdu.copy() for hdu in hdul])
    for hdu in copy:
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
            hdu.data = np.ascontiguousarray(hdu.data[..., :16, :16])
    copy[0].header["SUBSIZE1"], copy[0].header["SUBSIZE2"] = 16, 16
    copy[0].header["SUBARRAY"] = "GENERIC"
    copy.writeto(bad)
    result = _run(capsys, tmp_path, good, f"--steps.superbias.override_superbias={bad}")
    _assert_one_clear_error(result, "small_superbias.fits")


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_truncated_reference_file(good, tmp_path, capsys, keep):
    data = _crds_reference(good, "superbias").read_bytes()
    bad = tmp_path / "truncated_superbias.fits"
    bad.write_bytes(data[: int(len(data) * keep) // 2880 * 2880])
    result = _run(capsys, tmp_path, good, f"--steps.superbias.override_superbias={bad}")
    _assert_one_clear_error(result, "truncated_superbias.fits")


def test_reference_file_missing(good, tmp_path, capsys):
    result = _run(capsys, tmp_path, good, f"--steps.dark_current.override_dark={tmp_path / 'nodark.fits'}")
    _assert_one_clear_error(result, "nodark.fits")


def test_ipc_reference_with_nan(good, tmp_path, capsys):
    """IPC is the reference type whose NaN is rejected (a NaN kernel would spread NaN to every pixel);
    in the others a NaN pixel is flagged or taken as 0, as the official steps do (tests below)."""
    from jwst_dask.simulate.references import build_reference

    good_ipc, bad = tmp_path / "good_ipc.fits", tmp_path / "nan_ipc.fits"
    sel = {"META.INSTRUMENT.DETECTOR": "NRCA1", "META.SUBARRAY.NAME": "FULL"}
    build_reference("ipc", sel, good_ipc, useafter="2016-01-01 00:00:00")
    with fits.open(good_ipc) as hdul:
        hdul["SCI"].data[0, 0] = np.nan
        hdul.writeto(bad)
    # the same kernel without the NaN runs, so the failure below is the NaN's
    status, lines, _ = _run(capsys, tmp_path / "ok", good, "--steps.ipc.skip=False",
                            f"--steps.ipc.override_ipc={good_ipc}")  # fmt: skip
    assert status == 0 and lines == []
    result = _run(capsys, tmp_path, good, "--steps.ipc.skip=False", f"--steps.ipc.override_ipc={bad}")
    _assert_one_clear_error(result, "nan_ipc.fits", "NaN")


# NaN in reference types whose format allows it: the official pipeline's rule for each, on one pixel
PIX = (20, 20)
NAN_RULES = {
    # reftype: (step, extension, pixel flags expected, rate: "nan" | "same" | "linear" | "biased" | "dark")
    "gain": ("ramp_fit", "SCI", ("DO_NOT_USE", "NO_GAIN_VALUE"), "nan"),
    "saturation": ("saturation", "SCI", ("NO_SAT_CHECK",), "same"),
    "linearity": ("linearity", "COEFFS", ("NO_LIN_CORR",), "linear"),
    "superbias": ("superbias", "SCI", (), "biased"),  # NaN -> 0: the bias stays in the ramp
    "dark": ("dark_current", "SCI", (), "dark"),  # NaN -> 0: the dark is not subtracted
}


def _nan_reference(good: Path, folder: Path, reftype: str, ext: str) -> Path:
    bad = folder / f"nan_{reftype}.fits"
    with fits.open(_crds_reference(good, reftype)) as hdul:
        hdul[ext].data[..., PIX[0], PIX[1]] = np.nan
        hdul.writeto(bad)
    return bad


@pytest.mark.parametrize("reftype", sorted(NAN_RULES))
def test_nan_in_reference_follows_the_official_rule(good, tmp_path, capsys, stage1, reftype):
    from jwst_dask.dq import FLAGS

    step, ext, flags, expect = NAN_RULES[reftype]
    base = image_arrays(stage1.get(good)["rate"])
    assert base["DQ"][PIX] == 0 and np.isfinite(base["SCI"][PIX])
    bad = _nan_reference(good, tmp_path, reftype, ext)
    status, lines, _ = _run(capsys, tmp_path, good, f"--steps.{step}.override_{reftype}={bad}")
    assert status == 0 and lines == []
    got = image_arrays(tmp_path / "out" / Path(good).name.replace("_uncal", "_rate"))
    # every other pixel is untouched
    others = np.ones(base["SCI"].shape, bool)
    others[PIX] = False
    for name in ("SCI", "DQ"):
        assert np.array_equal(got[name][others], base[name][others], equal_nan=True), name
    want = 0
    for flag in flags:
        want |= FLAGS[flag]
    assert got["DQ"][PIX] == want
    rate, rate0 = float(got["SCI"][PIX]), float(base["SCI"][PIX])
    if expect == "nan":
        assert np.isnan(rate)
    elif expect == "same":
        assert rate == rate0
    elif expect == "linear":  # left uncorrected: off by the small non-linearity at this signal level
        assert rate == pytest.approx(rate0, rel=2e-3) and rate != rate0
    elif expect == "biased":  # the linearity correction then acts on bias + signal: a few % high
        assert 1.01 < rate / rate0 < 1.10
    elif expect == "dark":  # the true dark current of the pixel is left in
        dark = fits.getdata(Path(str(good).replace("_uncal.fits", "_truth.fits")), "DARK")[PIX]
        assert rate - rate0 == pytest.approx(float(dark), rel=0.05)


def test_nan_readnoise_is_not_silent(good, tmp_path, capsys):
    bad = _nan_reference(good, tmp_path, "readnoise", "SCI")
    status, _, _ = _run(capsys, tmp_path, good, f"--steps.ramp_fit.override_readnoise={bad}")
    assert status == 0
    got = image_arrays(tmp_path / "out" / Path(good).name.replace("_uncal", "_rate"))
    # the pixel's read noise is unknown: its rate must be NaN or flagged, not a silent finite value
    assert np.isnan(got["SCI"][PIX]) or got["DQ"][PIX] != 0, (got["SCI"][PIX], got["DQ"][PIX])


# ------------------------------------------------------------------------------ real command
def test_command_exit_status(good, tmp_path):
    """The installed command exits non-zero with the one line on stderr (a separate process)."""
    path = _variant(good, tmp_path / "in", "nongroups", _drop("NGROUPS"))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "DASK_SCHEDULER": "threads"}
    proc = subprocess.run(
        [sys.executable, "-m", "jwst_dask", "run", PIPELINE, str(path), "--output-dir", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("jwst-dask: error")]
    assert len(errors) == 1 and "NGROUPS" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []
