"""Logging: stpipe logger names and line format, the log configuration file and its lookup order."""

from __future__ import annotations

import logging
import re

import pytest
from test_framework_toys import ScaleStep, ToyPipeline, make_ramp

import jwst_dask.refs
from jwst_dask import log
from jwst_dask.errors import InputFileError

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (?P<name>\S+) - (?P<level>[A-Z]+) - (?P<msg>.*)$")


@pytest.fixture(autouse=True)
def fresh_logging(monkeypatch, tmp_path):
    monkeypatch.setattr(jwst_dask.refs, "best_references", lambda meta, r: dict.fromkeys(r, "N/A"))
    monkeypatch.chdir(tmp_path)  # no stray ./stpipe-log.cfg
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    log.configure()  # back to the default (closes file handlers)


def _records(text):
    return [m.groupdict() for m in map(LINE.match, text.splitlines()) if m]


def test_default_is_info_to_stderr_in_the_stpipe_format(capsys):
    log.configure()
    ds, _ = make_ramp()
    ToyPipeline.call(ds, output_dir="out")
    err = capsys.readouterr().err
    recs = _records(err)
    assert recs, err
    assert {
        "name": "stpipe.ToyPipeline.toy_add",
        "level": "INFO",
        "msg": "Step toy_add running with args (toy_uncal.fits,).",
    } in recs
    done = [
        r
        for r in recs
        if r["name"] == "stpipe.ToyPipeline.toy_scale" and r["msg"].startswith("Step toy_scale done")
    ]
    assert done and re.search(r"graph built in \d+\.\d{3} s", done[0]["msg"])
    assert any(re.match(r"Computed and wrote 3 product\(s\) in \d+\.\d+ s", r["msg"]) for r in recs)
    assert any(r["msg"].startswith("Saved model in ") and r["msg"].endswith("toy_rate.fits") for r in recs)
    assert not any(r["level"] == "DEBUG" for r in recs)


def test_standalone_step_logger_is_named_after_its_class(capsys):
    log.configure()
    ds, _ = make_ramp()
    ScaleStep.call(ds, skip=True)
    recs = _records(capsys.readouterr().err)
    assert {"name": "stpipe.ScaleStep", "level": "INFO", "msg": "Step skipped."} in recs


def test_verbose_adds_debug(capsys):
    log.configure(verbose=True)
    ds, _ = make_ramp()
    ScaleStep.call(ds, factor=5.0)
    recs = _records(capsys.readouterr().err)
    assert any(r["level"] == "DEBUG" and "'factor': 5.0" in r["msg"] for r in recs)


def test_logcfg_file_handler_level_and_format(tmp_path, capsys):
    cfg = tmp_path / "my-log.cfg"
    out = tmp_path / "pipeline.log"
    cfg.write_text(
        f"[*]\nhandler = file:{out}\nlevel = WARNING\nformat = %(levelname)s|%(name)s|%(message)s\n"
    )
    ds, _ = make_ramp()
    ScaleStep.call(ds, logcfg=str(cfg))
    logging.getLogger("stpipe.ScaleStep").warning("a warning")
    logging.getLogger("stpipe.ScaleStep").info("an info")
    for handler in logging.getLogger("stpipe").handlers:
        handler.flush()
    assert out.read_text().splitlines() == ["WARNING|stpipe.ScaleStep|a warning"]
    assert capsys.readouterr().err == ""


def test_break_level_raises(tmp_path):
    cfg = tmp_path / "break.cfg"
    cfg.write_text("[*]\nhandler = stderr\nlevel = INFO\nbreak_level = WARNING\n")
    log.configure(cfg)
    logging.getLogger("stpipe.X.y").info("fine")
    with pytest.raises(log.LogBreakError, match="boom"):
        logging.getLogger("stpipe.X.y").warning("boom")


def test_lookup_order(tmp_path, capsys):
    (tmp_path / "stpipe-log.cfg").write_text("[*]\nhandler = stdout\nlevel = ERROR\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "stpipe-log.cfg").write_text("[*]\nhandler = stderr\nlevel = DEBUG\n")
    assert log.find_logcfg() == tmp_path / "stpipe-log.cfg"  # ./ first
    explicit = tmp_path / "explicit.cfg"
    explicit.write_text("[*]\nlevel = INFO\n")
    assert log.find_logcfg(explicit) == explicit  # --logcfg / logcfg= first of all
    (tmp_path / "stpipe-log.cfg").unlink()
    assert log.find_logcfg() == home / "stpipe-log.cfg"  # then ~/
    (home / "stpipe-log.cfg").unlink()
    assert log.find_logcfg() is None
    with pytest.raises(InputFileError, match=r"nope\.cfg"):
        log.find_logcfg(tmp_path / "nope.cfg")


def test_cwd_cfg_is_applied(tmp_path, capsys):
    (tmp_path / "stpipe-log.cfg").write_text("[*]\nhandler = stdout\nlevel = INFO\n")
    log.configure()
    logging.getLogger("stpipe.Z").info("to stdout")
    captured = capsys.readouterr()
    assert "stpipe.Z - INFO - to stdout" in captured.out and captured.err == ""


def test_sections_are_glob_patterns_on_step_loggers(tmp_path, capsys):
    cfg = tmp_path / "glob.cfg"
    cfg.write_text(
        "[*]\nlevel = CRITICAL\nhandler = stderr\n"
        "[*.toy_add]\nlevel = INFO\nhandler = stdout\nformat = %(name)s|%(message)s\n"
    )
    log.configure(cfg)
    ds, _ = make_ramp()
    ToyPipeline.call(ds)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "stpipe.ToyPipeline.toy_add|Step toy_add running with args (toy_uncal.fits,)." in lines
    assert all(line.startswith("stpipe.ToyPipeline.toy_add|") for line in lines)
    assert captured.err == ""  # nothing reached CRITICAL


def test_file_rewrites_and_append_appends(tmp_path):
    for kind, expected in (("file", ["second"]), ("append", ["first", "second"])):
        out = tmp_path / f"{kind}.log"
        cfg = tmp_path / f"{kind}.cfg"
        cfg.write_text(f"[*]\nhandler = {kind}:{out}\nformat = %(message)s\n")
        for message in ("first", "second"):
            log.configure(cfg)
            logging.getLogger("stpipe.A").info(message)
        log.configure()
        assert out.read_text().splitlines() == expected
