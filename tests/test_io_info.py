"""``jwst-dask info``: the product description and the exit status for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from jwst_dask.cli import main


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


def test_info_prints_model_arrays_and_metadata(tmp_path, capsys):
    path = tmp_path / "jw01_nrcb1_uncal.fits"
    primary = fits.PrimaryHDU()
    for key, value in {
        "INSTRUME": "NIRCAM",
        "DETECTOR": "NRCB1",
        "EXP_TYPE": "NRC_TSIMAGE",
        "FILTER": "F210M",
        "READPATT": "RAPID",
        "NGROUPS": 4,
        "NINTS": 2,
        "SUBARRAY": "SUBGRISM64",
    }.items():
        primary.header[key] = value
    sci = np.zeros((2, 4, 16, 32), np.uint16)
    fits.HDUList([primary, fits.ImageHDU(sci, name="SCI")]).writeto(path)

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Level1bModel" in out and "uncal" in out
    assert "SCI  (integration, group, y, x)  2x4x16x32  uint16  chunks 2x4x16x32" in out
    for word in ("NIRCAM", "NRCB1", "NRC_TSIMAGE", "F210M", "RAPID", "SUBGRISM64"):
        assert word in out, word
    assert "ngroups    4" in out and "nints      2" in out


def test_info_bad_file_exit_status(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.fits")]) == 1
    assert "missing.fits: no such file" in capsys.readouterr().err
