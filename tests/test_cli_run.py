"""``jwst-dask run`` end to end on the toy pipeline and steps (in-process and as a real command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from test_framework_toys import make_ramp

import jwst_dask.refs
from jwst_dask.cli import main
from jwst_dask.cli.run import parse_overrides, resolve_target
from jwst_dask.errors import NoScienceDataError, ParameterError
from jwst_dask.io import open_product, write_product
from jwst_dask.steps import Step

TOY = "test_framework_toys.ToyPipeline"
SEEN_CHUNKS: list = []


def record_chunks(ds):
    SEEN_CHUNKS.append(dict(ds.chunksizes))


class NoDataStep(Step):
    class_alias = "toy_nodata"

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        raise NoScienceDataError("no science data on the detector")


class CrashStep(Step):
    class_alias = "toy_crash"

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        raise RuntimeError("unexpected failure inside")


@pytest.fixture(autouse=True)
def setup(monkeypatch, tmp_path):
    monkeypatch.setattr(jwst_dask.refs, "best_references", lambda meta, r: dict.fromkeys(r, "N/A"))
    monkeypatch.chdir(tmp_path)
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture
def uncal(tmp_path):
    ds, sci = make_ramp()
    path = tmp_path / "jw01_nrca1_uncal.fits"
    write_product(ds, path)
    return path, sci


def _err_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("jwst-dask: error")]


def test_run_toy_pipeline_with_step_and_pipeline_options(uncal, tmp_path):
    path, sci = uncal
    status = main(
        [
            "run",
            TOY,
            str(path),
            "--steps.toy_scale.factor=4",
            "--steps.toy_add.value",
            "2",
            "--save_scaled=True",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert status == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "jw01_nrca1_ramp.fits",
        "jw01_nrca1_rate.fits",
        "jw01_nrca1_rateints.fits",
        "jw01_nrca1_toyside.fits",
    ]
    ints = ((sci + 2.0) * 4.0).mean(axis=1) * 0.5
    got = open_product(tmp_path / "out" / "jw01_nrca1_rateints.fits")["SCI"].values
    np.testing.assert_allclose(got, ints, rtol=1e-6)


def test_run_a_step_by_class_path_saves_root_alias(uncal, tmp_path):
    path, sci = uncal
    assert main(["run", "test_framework_toys.ScaleStep", str(path), "--factor=0.25"]) == 0
    out = tmp_path / "jw01_nrca1_toy_scale.fits"
    np.testing.assert_allclose(open_product(out)["SCI"].values, sci * 0.25)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--steps.toy_scale.facter=4", ["toy_scale", "'facter'"]),
        ("--steps.toy_jump.skip=True", ["'toy_jump'"]),
        ("--steps.toy_scale.factor=abc", ["toy_scale", "'factor'", "'abc'"]),
        ("--no_such_option=1", ["'no_such_option'"]),
        ("--save_scaled=perhaps", ["'save_scaled'", "'perhaps'"]),
    ],
)
def test_bad_parameters_exit_1_with_one_line(uncal, capsys, option, words):
    path, _ = uncal
    status = main(["run", TOY, str(path), option])
    captured = capsys.readouterr()
    assert status == 1
    lines = [line for line in captured.err.splitlines() if " - INFO - " not in line]
    assert len(lines) == 1 and lines[0].startswith("jwst-dask: error:"), captured.err
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in captured.err


def test_unknown_target_and_missing_input(uncal, capsys):
    path, _ = uncal
    assert main(["run", "no_such_pipeline", str(path)]) == 1
    assert "no_such_pipeline" in _err_lines(capsys)[0]
    assert main(["run", TOY, "missing_uncal.fits"]) == 1
    assert "missing_uncal.fits" in _err_lines(capsys)[0]
    assert main(["run", TOY]) == 1
    assert "no input" in _err_lines(capsys)[0]


def test_no_science_data_exits_64(uncal, capsys):
    path, _ = uncal
    assert main(["run", "test_cli_run.NoDataStep", str(path)]) == 64
    assert "no science data" in _err_lines(capsys)[0]


def test_unexpected_errors_one_line_or_traceback_with_verbose(uncal, capsys):
    path, _ = uncal
    assert main(["run", "test_cli_run.CrashStep", str(path)]) == 1
    err = capsys.readouterr().err
    assert "jwst-dask: error: RuntimeError: unexpected failure inside" in err and "Traceback" not in err
    assert main(["run", "test_cli_run.CrashStep", str(path), "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_help_lists_pipeline_and_step_parameters(capsys):
    assert main(["run", TOY, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--save_scaled=False" in out
    assert "--steps.toy_add.override_toyref=None" in out
    assert "--steps.toy_scale.factor=3.0  [float(default=2.0)]  # multiplier" in out
    assert "--steps.toy_final.skip=False" in out


def test_save_parameters_and_run_from_the_file(uncal, tmp_path, capsys):
    path, sci = uncal
    for ext in ("asdf", "cfg"):
        pars = tmp_path / f"used.{ext}"
        assert main(["run", TOY, str(path), "--steps.toy_final.factor=3", f"--save-parameters={pars}"]) == 0
        assert pars.is_file()
        (tmp_path / "jw01_nrca1_rate.fits").unlink()
        # the parameter file as the target: its class and parameters; the command line still wins
        assert main(["run", str(pars), str(path), "--steps.toy_add.value=0"]) == 0
        ints = (sci * 3.0).mean(axis=1) * 3.0
        got = open_product(tmp_path / "jw01_nrca1_rateints.fits")["SCI"].values
        np.testing.assert_allclose(got, ints, rtol=1e-6)


def test_chunks_option_reaches_the_reader(uncal):
    path, _ = uncal
    SEEN_CHUNKS.clear()
    status = main(
        [
            "run",
            "test_framework_toys.ScaleStep",
            str(path),
            "--chunks",
            "y=4,x=8",
            "--pre_hooks=test_cli_run.record_chunks",
        ]
    )
    assert status == 0
    assert SEEN_CHUNKS and set(SEEN_CHUNKS[0]["y"]) == {4} and set(SEEN_CHUNKS[0]["x"]) == {8}
    assert main(["run", "test_framework_toys.ScaleStep", str(path), "--chunks", "y4"]) == 1


def test_logcfg_option(uncal, tmp_path):
    path, _ = uncal
    cfg = tmp_path / "log.cfg"
    logfile = tmp_path / "run.log"
    cfg.write_text(f"[*]\nhandler = file:{logfile}\nlevel = INFO\n")
    try:
        assert main(["run", TOY, str(path), "--logcfg", str(cfg)]) == 0
    finally:
        from jwst_dask import log

        log.configure()
    text = logfile.read_text()
    assert "stpipe.ToyPipeline.toy_split - INFO - Step toy_split running with args" in text
    assert "Computed and wrote 3 product(s)" in text


def test_parse_overrides():
    params, steps = parse_overrides(
        ["--a=1", "--steps.jump.rejection_threshold=5", "--save-results", "--b", "x y"]
    )
    assert params == {"a": "1", "save_results": "True", "b": "x y"}
    assert steps == {"jump": {"rejection_threshold": "5"}}
    with pytest.raises(ParameterError):
        parse_overrides(["stray"])
    with pytest.raises(ParameterError):
        parse_overrides(["--steps.jump=5"])


def test_auto_picks_the_stage1_pipeline_from_exp_type(tmp_path):
    ds, _ = make_ramp()
    write_product(ds, tmp_path / "a_uncal.fits")
    assert resolve_target("auto", str(tmp_path / "a_uncal.fits"))[1] == {"definition": "calwebb_detector1"}
    meta = dict(ds.attrs["meta"], exposure={"type": "NRC_DARK", "ngroups": 3, "nints": 2})
    write_product(ds.jwst.update_meta({}, meta=meta), tmp_path / "d_uncal.fits")
    assert resolve_target("auto", str(tmp_path / "d_uncal.fits"))[1] == {"definition": "calwebb_dark"}
    tso = dict(
        ds.attrs["meta"], exposure={"type": "NRC_TSIMAGE", "ngroups": 3, "nints": 2}, visit={"tsovisit": True}
    )
    write_product(ds.jwst.update_meta({}, meta=tso), tmp_path / "t_uncal.fits")
    assert resolve_target("auto", str(tmp_path / "t_uncal.fits"))[1] == {"definition": "calwebb_tso1"}


def test_real_command_line(uncal, tmp_path):
    path, sci = uncal
    env = dict(
        os.environ, PYTHONPATH=str(Path(__file__).parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    exe = Path(sys.executable).with_name("jwst-dask")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "jwst_dask"]
    ok = subprocess.run(
        [*cmd, "run", "test_framework_toys.ScaleStep", str(path), "--factor=2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert (
        " - stpipe.ScaleStep - INFO - Step toy_scale running with args (jw01_nrca1_uncal.fits,)." in ok.stderr
    )
    np.testing.assert_allclose(open_product(tmp_path / "jw01_nrca1_toy_scale.fits")["SCI"].values, sci * 2)
    bad = subprocess.run(
        [*cmd, "run", "test_framework_toys.ScaleStep", str(path), "--factor=two"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("jwst-dask: error: step toy_scale: invalid value 'two'")
    )


def test_help_of_the_real_stage1_pipeline(capsys):
    assert main(["run", "calwebb_detector1", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--save_calibrated_ramp=False" in out
    assert "--steps.jump.rejection_threshold=4.0" in out
    assert "--steps.jump.override_gain=None" in out
    assert "--steps.ipc.skip=True" in out  # the definition's step_parameters
    assert "--steps.emicorr." in out and "--steps.persistence." in out  # every variant's steps
