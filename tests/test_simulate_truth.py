"""Simulated exposures against their truth, through the reference files built for them.

Each check recomputes the expected values in plain numpy from the truth files and the reference
files (never from the simulator's own functions).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_dask.simulate import simulate
from jwst_dask.simulate.references import build_reference

N = 96
NGROUPS = 10
SEL = {"META.INSTRUMENT.DETECTOR": "NRCA1", "META.SUBARRAY.NAME": "FULL", "META.INSTRUMENT.FILTER": "F200W"}


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    out = {}
    for rt in ("superbias", "linearity", "dark", "saturation"):
        out[rt] = d / f"jwst_nircam_{rt}_0001.fits"
        build_reference(rt, SEL, out[rt], useafter="2016-01-01 00:00:00")
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    return simulate("nircam-mosaic", d, seed=3, nexp=1, size=N, ngroups=NGROUPS, noiseless=True,
                    cosmic_rays=False, write_asn=False)[0]  # fmt: skip


@pytest.fixture(scope="module")
def with_crs(tmp_path_factory):
    d = tmp_path_factory.mktemp("crs")
    return simulate("nircam-mosaic", d, seed=3, nexp=1, size=N, ngroups=NGROUPS, noiseless=True,
                    write_asn=False)[0]  # fmt: skip


def _truth(uncal, ext):
    return fits.getdata(str(uncal).replace("_uncal.fits", "_truth.fits"), ext)


def _corrected(uncal, refs):
    """Superbias, drift, linearity and dark corrections written out in plain numpy."""
    raw = fits.getdata(uncal, "SCI").astype(np.float64)[0]
    ng, ny, nx = raw.shape
    bias = fits.getdata(refs["superbias"], "SCI")[:ny, :nx].astype(np.float64)
    coeffs = fits.getdata(refs["linearity"], "COEFFS")[:, :ny, :nx].astype(np.float64)
    dark = fits.getdata(refs["dark"], "SCI")[:, :ny, :nx].astype(np.float64)
    amp, row = _truth(uncal, "AMP_DRIFT"), _truth(uncal, "ROW_DRIFT")
    x = np.arange(nx)
    amp_of_col = np.minimum(x // 512, 3)  # NIRCam full frame: four 512-column outputs
    out = np.empty_like(raw)
    for g in range(ng):
        s = raw[g] - bias - (row[0, g][:, None] + amp[0, g][amp_of_col, x % 2][None, :])
        lin = np.zeros_like(s)
        for c in coeffs[::-1]:
            lin = lin * s + c
        out[g] = lin - dark[g]
    return out, raw, bias


def test_noiseless_simulation_inverts_through_reference_files(clean, refs):
    corr, raw, bias = _corrected(clean, refs)
    tgroup = fits.getheader(clean, 0)["TGROUP"]
    t = (np.arange(NGROUPS) + 1.0) * tgroup
    a = t - t.mean()
    slope = np.tensordot(a, corr - corr.mean(axis=0), axes=(0, 0)) / np.sum(a * a)
    rate = _truth(clean, "RATE")
    sat = fits.getdata(refs["saturation"], "SCI")[:N, :N]
    unsaturated = raw[-1] < bias + 0.9 * (sat - bias) / 0.97  # below 90 % of full well
    sel = (rate > 10.0) & unsaturated
    assert sel.sum() > 100
    rel = np.abs(slope[sel] - rate[sel]) / rate[sel]
    assert rel.max() < 1e-3
    # reference pixels carry no signal once the drifts are known
    assert np.abs(slope[:4]).max() < 0.05


def test_jumps_where_the_truth_table_says(clean, with_crs):
    hits = Table.read(str(with_crs).replace("_uncal.fits", "_cosmic_rays.ecsv"))
    assert len(hits) > 0
    a = fits.getdata(with_crs, "SCI").astype(np.float64)[0]
    b = fits.getdata(clean, "SCI").astype(np.float64)[0]
    jump = np.diff(a, axis=0) - np.diff(b, axis=0)  # (ngroups-1, y, x): the extra step in each group
    total = np.zeros_like(jump)
    for h in hits:
        total[h["group"] - 1, h["y"], h["x"]] += h["dn"]
    # pixels the table never hit have the same ramp as without cosmic rays
    never_hit = total.sum(axis=0) == 0
    assert np.all(np.abs(jump[:, never_hit]) <= 1.0)
    checked = 0
    for h in hits:
        g, y, x = h["group"] - 1, h["y"], h["x"]
        if a[-1, y, x] > 50000 or total[g, y, x] < 20:  # near full well / tiny halo hits
            continue
        # the response is non-linear (a few %) and the ramp is rounded to integers
        assert jump[g, y, x] == pytest.approx(total[g, y, x], rel=0.1, abs=2.0)
        checked += 1
    assert checked > 5


def test_saturated_pixels_exceed_the_saturation_reference(tmp_path, refs):
    uncal = simulate("nircam-mosaic", tmp_path, seed=5, nexp=1, size=64, ngroups=5, write_asn=False)[0]
    sat = Table.read(str(uncal).replace("_uncal.fits", "_saturated.ecsv"))
    assert len(sat) > 0
    raw = fits.getdata(uncal, "SCI")[0]
    thr = fits.getdata(refs["saturation"], "SCI")[:64, :64]
    for row in sat:
        g, y, x = row["first_group"], row["y"], row["x"]
        assert np.all(raw[g:, y, x] >= thr[y, x])


def test_same_seed_same_sci_other_seed_differs(tmp_path):
    kw = {"nexp": 1, "size": 32, "ngroups": 3, "write_asn": False, "truth": False}
    a = simulate("nircam-mosaic", tmp_path / "a", seed=11, **kw)[0]
    b = simulate("nircam-mosaic", tmp_path / "b", seed=11, **kw)[0]
    c = simulate("nircam-mosaic", tmp_path / "c", seed=12, **kw)[0]
    np.testing.assert_array_equal(fits.getdata(a, "SCI"), fits.getdata(b, "SCI"))
    assert np.any(fits.getdata(a, "SCI") != fits.getdata(c, "SCI"))


def test_pointing_error_recorded(clean):
    doc = json.loads(clean.with_name(clean.name.replace("_uncal.fits", "_truth.json")).read_text())
    hdr = fits.getheader(clean, "SCI")
    cmd, true = doc["pointing"]["commanded"], doc["pointing"]["true"]
    # the header carries the commanded pointing; the truth the offset tweakreg has to find
    assert hdr["RA_REF"] == pytest.approx(cmd["ra_ref"], abs=1e-12)
    err = np.hypot(doc["pointing"]["error_arcsec"]["ra"], doc["pointing"]["error_arcsec"]["dec"])
    assert 0 < err < 1.0
    assert true["ra_ref"] != cmd["ra_ref"]


def test_miri_reset_anomaly_matches_reset_reference(tmp_path):
    """Noiseless, no cosmic rays: the sky is identical in both integrations, so their difference is
    the reset anomaly difference (RESET reference) plus the known drifts (and RSCD in the first
    groups of integration 2, which the RSCD reference tells the pipeline to skip)."""
    uncal = simulate("miri-image", tmp_path, seed=4, size=64, ngroups=8, nints=2, noiseless=True,
                     cosmic_rays=False, write_asn=False)[0]  # fmt: skip
    sel = {
        "META.INSTRUMENT.DETECTOR": "MIRIMAGE",
        "META.SUBARRAY.NAME": "FULL",
        "META.EXPOSURE.READPATT": "FAST",
    }
    build_reference("reset", sel, tmp_path / "reset.fits", useafter="2016-01-01")
    build_reference("rscd", sel, tmp_path / "rscd.fits", useafter="2016-01-01")
    reset = fits.getdata(tmp_path / "reset.fits", "SCI")[:, :, :64, :64].astype(np.float64)
    skip = fits.getdata(tmp_path / "rscd.fits", "RSCD_GROUP_SKIP")
    nskip = int(skip["group_skip"][(skip["subarray"] == "FULL") & (skip["readpatt"] == "FAST")][0])
    raw = fits.getdata(uncal, "SCI").astype(np.float64)
    amp, row = _truth(uncal, "AMP_DRIFT"), _truth(uncal, "ROW_DRIFT")
    x = np.arange(64)

    def drift(i, g):  # MIRI: four interleaved outputs (column % 4)
        return row[i, g][:, None] + amp[i, g][x % 4, x % 2][None, :]

    for g in range(nskip, 8):
        expected = reset[0, g] - reset[1, g] + drift(0, g) - drift(1, g)
        np.testing.assert_allclose(raw[0, g] - raw[1, g], expected, atol=1.01)
    # the reset anomaly is really there: the first groups differ by tens of DN
    assert np.median(np.abs(reset[0, 0] - reset[1, 0])) > 10


def test_flat_of_the_observation_epoch(tmp_path):
    """An observation before the flat's USEAFTER change sees the older flat: truth RATE / SCENE is the
    2016 flat reference, not the 2024 one."""
    uncal = simulate("nircam-mosaic", tmp_path, seed=1, nexp=1, size=32, ngroups=2,
                     date="2023-01-05T10:00:00", write_asn=False)[0]  # fmt: skip
    sel = {
        "META.INSTRUMENT.DETECTOR": "NRCA1",
        "META.INSTRUMENT.FILTER": "F200W",
        "META.INSTRUMENT.PUPIL": "CLEAR",
    }
    build_reference("flat", sel, tmp_path / "old.fits", useafter="2016-01-01 00:00:00")
    build_reference("flat", sel, tmp_path / "new.fits", useafter="2024-06-01 00:00:00")
    rate, scene = _truth(uncal, "RATE"), _truth(uncal, "SCENE")
    live = (scene > 0) & (rate > 0)
    ratio = rate[live] / scene[live]
    old = fits.getdata(tmp_path / "old.fits", "SCI")[:32, :32][live]
    new = fits.getdata(tmp_path / "new.fits", "SCI")[:32, :32][live]
    np.testing.assert_allclose(ratio, old, rtol=1e-5)
    assert np.max(np.abs(ratio - new) / new) > 1e-3
