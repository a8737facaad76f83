"""``jwst-dask refs FILE``, and the whole chain with the real reference builder (select, build, open, cut)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import jwst_dask.refs.cache as refcache
from jwst_dask.cli import main
from jwst_dask.refs import best_references, open_reference

KEYWORDS = {
    "TELESCOP": "JWST",
    "INSTRUME": "NIRCAM",
    "DETECTOR": "NRCA1",
    "MODULE": "A",
    "CHANNEL": "SHORT",
    "FILTER": "F200W",
    "PUPIL": "CLEAR",
    "EXP_TYPE": "NRC_IMAGE",
    "READPATT": "RAPID",
    "NOUTPUTS": 4,
    "NGROUPS": 2,
    "NINTS": 1,
    "SUBARRAY": "FULL",
    "SUBSTRT1": 1,
    "SUBSTRT2": 1,
    "SUBSIZE1": 8,
    "SUBSIZE2": 8,
    "TSOVISIT": False,
    "DATE-OBS": "2024-03-01",
    "TIME-OBS": "00:00:00",
}


def uncal(path: Path, **changes) -> Path:
    header = fits.Header()
    for key, value in {**KEYWORDS, **changes}.items():
        header[key] = value
    data = np.zeros((1, 2, 8, 8), np.uint16)
    fits.HDUList([fits.PrimaryHDU(header=header), fits.ImageHDU(data, name="SCI")]).writeto(path)
    return path


class TinyBuilder:
    def __init__(self):
        self.built = []

    def __call__(self, reftype, selection, path, *, useafter):
        self.built.append(Path(path).name)
        Path(path).write_bytes(b"stand-in reference")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    for var in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JWST_DASK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "crds"


def test_cli_refs_default_types(no_network, isolated, tmp_path, monkeypatch, capsys):
    builder = TinyBuilder()
    monkeypatch.setattr(refcache, "get_builder", lambda: builder)
    path = uncal(tmp_path / "jw01234001001_01101_00001_nrca1_uncal.fits")
    assert main(["refs", str(path)]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    for reftype in (
        "mask",
        "saturation",
        "superbias",
        "linearity",
        "dark",
        "gain",
        "readnoise",
        "flat",
        "photom",
        "area",
        "distortion",
        "filteroffset",
    ):
        assert Path(lines[reftype]).is_absolute() and Path(lines[reftype]).is_file(), reftype
    assert lines["specwcs"] == "N/A" and lines.get("refpix", "N/A") == "N/A"
    assert Path(lines["flat"]).name == "jwst_nircam_flat_0001.fits"
    assert Path(lines["dark"]).parent == isolated / "references" / "jwst" / "nircam"


def test_cli_refs_types_and_error(no_network, isolated, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(refcache, "get_builder", TinyBuilder)
    good = uncal(tmp_path / "a_uncal.fits", FILTER="F150W")
    assert main(["refs", str(good), "--types", "flat,refpix"]) == 0
    out = capsys.readouterr().out.split()
    assert (
        out[0] == "flat"
        and Path(out[1]).name == "jwst_nircam_flat_0003.fits"
        and out[2:] == ["refpix", "N/A"]
    )
    bad = uncal(tmp_path / "b_uncal.fits", FILTER="F444W")
    assert main(["refs", str(bad), "--types", "flat"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "flat" in err and "FILTER=F444W" in err


def test_cli_build_cache(no_network, isolated, monkeypatch, capsys):
    builder = TinyBuilder()
    monkeypatch.setattr(refcache, "get_builder", lambda: builder)
    assert main(["refs", "--build-cache"]) == 0
    built = sorted(p.name for p in (isolated / "references" / "jwst").glob("*/*"))
    assert built == sorted(builder.built) and "jwst_nircam_flat_0002.fits" in built
    assert f"{len(built)} reference files" in capsys.readouterr().out
    assert main(["refs"]) == 1
    assert "give a product FILE" in capsys.readouterr().err


def test_real_builder_chain_sub64p(no_network, isolated):
    """The default path calls jwst_dask.simulate.references.build_reference; the files it writes
    are selected, opened and (full-frame ones) cut to the SUB64P science subarray."""
    pytest.importorskip("jwst_dask.simulate.references")
    meta = {
        "instrument": {"name": "NIRCAM", "detector": "NRCA1", "filter": "F210M", "pupil": "CLEAR"},
        "exposure": {"type": "NRC_TSIMAGE", "readpatt": "RAPID", "noutputs": 1},
        "subarray": {"name": "SUB64P", "xstart": 1, "ystart": 1, "xsize": 64, "ysize": 64},
        "visit": {"tsovisit": True},
        "observation": {"date": "2024-03-01", "time": "00:00:00"},
    }
    refs = best_references(meta, ["superbias", "mask"])
    assert Path(refs["superbias"]).name == "jwst_nircam_superbias_0002.fits"
    science = xr.Dataset(
        {"SCI": (("y", "x"), da.zeros((64, 64), np.float32, chunks=(32, 32)))}, attrs={"meta": meta}
    )
    bias = open_reference(refs["superbias"], like=science)
    assert bias["SCI"].shape == (64, 64) and bias["SCI"].chunks == ((32, 32), (32, 32))
    np.testing.assert_array_equal(bias["SCI"].values, fits.getdata(refs["superbias"], "SCI"))
    mask = open_reference(refs["mask"], like=science)
    assert mask["DQ"].shape == (64, 64) and mask["DQ"].chunks == ((32, 32), (32, 32))
    raw = open_reference(refs["mask"], translate_dq=False)
    np.testing.assert_array_equal(
        open_reference(refs["mask"], like=science, translate_dq=False)["DQ"].values,
        raw["DQ"].values[:64, :64],
    )
