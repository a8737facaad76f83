"""Simulated products: they open in the official Level1bModel and in jwst_dask.open, carry the
metadata of a real uncal, come with truth and associations; the TSO transit is in the data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy.io import fits

import jwst_dask
from jwst_dask.cli import main
from jwst_dask.errors import ParameterError
from jwst_dask.simulate import simulate

dm = pytest.importorskip("stdatamodels.jwst.datamodels")


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    d = tmp_path_factory.mktemp("mosaic")
    return simulate("nircam-mosaic", d, seed=2, nexp=2, size=48, ngroups=4, zeroframe=True)


@pytest.fixture(scope="module")
def tso(tmp_path_factory):
    d = tmp_path_factory.mktemp("tso")
    return simulate("nircam-tso", d, seed=2, nints=40, size=32, noiseless=True, cosmic_rays=False)[0]


@pytest.fixture(scope="module")
def miri(tmp_path_factory):
    d = tmp_path_factory.mktemp("miri")
    return simulate("miri-image", d, seed=2, size=64, ngroups=5)[0]


def _open_validate(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with dm.Level1bModel(str(path)) as m:
            m.validate()
            return m.data.shape, m.meta.instance


def test_mosaic_uncal_validates_and_opens(mosaic):
    assert [p.name for p in mosaic] == [
        "jw01234001001_01101_00001_nrca1_uncal.fits",
        "jw01234001001_01101_00002_nrca1_uncal.fits",
    ]
    shape, meta = _open_validate(mosaic[0])
    assert shape == (1, 4, 48, 48)
    assert meta["instrument"]["detector"] == "NRCA1" and meta["instrument"]["filter"] == "F200W"
    assert meta["exposure"]["type"] == "NRC_IMAGE" and meta["exposure"]["readpatt"] == "RAPID"
    assert meta["exposure"]["frame_time"] == pytest.approx(10.73676)
    assert meta["subarray"]["name"] == "FULL" and meta["subarray"]["xsize"] == 48
    assert meta["visit"]["tsovisit"] is False
    assert meta["observation"]["date"].startswith("2024")
    for key in ("v2_ref", "v3_ref", "vparity", "v3yangle", "ra_ref", "dec_ref", "roll_ref"):
        assert key in meta["wcsinfo"]
    ds = jwst_dask.open(mosaic[0])
    assert ds["SCI"].dtype == np.uint16 and ds["SCI"].dims == ("integration", "group", "y", "x")
    assert ds.attrs["meta"]["exposure"]["ngroups"] == 4
    assert "GROUP" in ds.attrs["tables"] and "INT_TIMES" in ds.attrs["tables"]
    np.testing.assert_array_equal(ds["SCI"].values, fits.getdata(mosaic[0], "SCI"))
    # RAPID: the zero frame is the first group
    np.testing.assert_array_equal(fits.getdata(mosaic[0], "ZEROFRAME"), fits.getdata(mosaic[0], "SCI")[:, 0])


def test_dithers_move_the_sources(mosaic):
    from astropy.table import Table

    s1 = Table.read(str(mosaic[0]).replace("_uncal.fits", "_sources.ecsv"))
    s2 = Table.read(str(mosaic[1]).replace("_uncal.fits", "_sources.ecsv"))
    dx = np.median(np.asarray(s2["x"]) - np.asarray(s1["x"]))
    dy = np.median(np.asarray(s2["y"]) - np.asarray(s1["y"]))
    assert np.hypot(dx, dy) > 1.0
    np.testing.assert_array_equal(s1["ra"], s2["ra"])  # the same sky


def test_associations(mosaic):
    folder = mosaic[0].parent
    l2 = json.loads((folder / "jw01234-o001_t001_nircam_clear-f200w_image2_asn.json").read_text())
    l3 = json.loads((folder / "jw01234-o001_t001_nircam_clear-f200w_image3_asn.json").read_text())
    assert len(l2["products"]) == 2
    assert l2["products"][0]["members"][0]["expname"] == mosaic[0].name.replace("_uncal", "_rate")
    assert [m["expname"] for m in l3["products"][0]["members"]] == [
        p.name.replace("_uncal", "_cal") for p in mosaic
    ]


def test_tso_transit_depth_in_truth_and_data(tso):
    shape, meta = _open_validate(tso)
    assert shape == (40, 6, 32, 32)
    assert meta["visit"]["tsovisit"] is True and meta["exposure"]["type"] == "NRC_TSIMAGE"
    assert meta["subarray"]["name"] == "SUB64P"
    truth = json.loads(tso.with_name(tso.name.replace("_uncal.fits", "_truth.json")).read_text())["transit"]
    lc = fits.getdata(tso.with_name(tso.name.replace("_uncal.fits", "_truth.fits")), "LIGHTCURVE")
    assert 1.0 - lc["relative_flux"].min() == pytest.approx(truth["depth"], rel=1e-9)
    mid = fits.getdata(tso, "INT_TIMES")["int_mid_MJD_UTC"]
    np.testing.assert_allclose(lc["mid_mjd"], mid)
    inside = np.abs(mid - truth["t_mid_mjd"]) < 0.4 * truth["duration_days"]
    outside = np.abs(mid - truth["t_mid_mjd"]) > 0.5 * truth["duration_days"] + truth["ingress_days"]
    assert inside.sum() > 3 and outside.sum() > 3
    # the data: last minus first group summed over the target (noiseless; bias, dark, sky cancel
    # to first order in the in/out ratio after subtracting an off-target annulus)
    sci = fits.getdata(tso, "SCI").astype(np.float64)
    signal = sci[:, -1] - sci[:, 0]
    yy, xx = np.mgrid[0:32, 0:32]
    from astropy.table import Table

    star = Table.read(str(tso).replace("_uncal.fits", "_sources.ecsv"))[0]
    r = np.hypot(xx - star["x"], yy - star["y"])
    ap, ann = (r < 6) & (xx >= 4) & (yy >= 4), (r > 9) & (r < 13) & (xx >= 4) & (yy >= 4)
    flux = signal[:, ap].sum(axis=1) - ap.sum() * np.median(signal[:, ann], axis=1)
    depth = 1.0 - flux[inside].mean() / flux[outside].mean()
    assert depth == pytest.approx(truth["depth"], rel=0.1)


def test_miri_refout_and_metadata(miri):
    shape, meta = _open_validate(miri)
    assert shape == (2, 5, 64, 64)
    assert meta["instrument"]["name"] == "MIRI" and meta["exposure"]["readpatt"] == "FAST"
    assert meta["exposure"]["frame_time"] == pytest.approx(2.77504)
    assert fits.getdata(miri, "REFOUT").shape == (2, 5, 64, 16)
    ds = jwst_dask.open(miri)
    assert ds["REFOUT"].shape == (2, 5, 64, 16)


def test_bad_options():
    with pytest.raises(ParameterError, match="bogus"):
        simulate("bogus", "unused")
    with pytest.raises(ParameterError, match="size=3000"):
        simulate("nircam-mosaic", "unused", size=3000)
    with pytest.raises(ParameterError, match="wibble"):
        simulate("nircam-mosaic", "unused", wibble=1)
    with pytest.raises(ParameterError, match="F444W"):
        simulate("nircam-mosaic", "unused", filter="F444W")


def test_cli(tmp_path, capsys):
    rc = main(["simulate", "nircam-mosaic", str(tmp_path), "--size", "32", "--nexp", "1", "--ngroups", "3",
               "--seed", "4", "--no-cosmic-rays", "--readpatt", "BRIGHT2"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "jw01234001001_01101_00001_nrca1_uncal.fits" in out
    h = fits.getheader(tmp_path / "jw01234001001_01101_00001_nrca1_uncal.fits")
    assert (h["READPATT"], h["NFRAMES"], h["GROUPGAP"], h["NGROUPS"]) == ("BRIGHT2", 2, 0, 3)
    assert h["TGROUP"] == pytest.approx(2 * 10.73676, rel=1e-6)
    assert main(["simulate", "nircam-mosaic", str(tmp_path), "--readpatt", "DEEP9"]) == 1
    assert "DEEP9" in capsys.readouterr().err


def test_distributed_workers_make_the_same_exposure(tmp_path, cluster_client):
    """Tiles rendered in two worker processes equal tiles rendered by threads in this process."""
    import dask

    kw = {"nexp": 1, "size": 64, "ngroups": 3, "tile": 32, "write_asn": False, "truth": False}
    on_cluster = simulate("nircam-mosaic", tmp_path / "cluster", seed=9, **kw)[0]
    with dask.config.set(scheduler="threads"):
        local = simulate("nircam-mosaic", tmp_path / "local", seed=9, **kw)[0]
    np.testing.assert_array_equal(fits.getdata(on_cluster, "SCI"), fits.getdata(local, "SCI"))
