"""Stage 1 against the simulator's truth, through the real CRDS-selected references.

Each expectation is computed in the test from the truth files written beside the simulated
exposure (true rates, light curve, cosmic-ray table, injected drifts) and from the reference files
in plain numpy; never from the pipeline's own output.
"""

from __future__ import annotations

import json

import _sim
import numpy as np
import pytest
from _sim import image_arrays, ols_rounding_bound, truth_image, truth_path
from astropy.io import fits
from astropy.table import Table

from jwst_dask.dq import FLAGS

sims, stage1 = _sim.sims, _sim.stage1  # the session fixtures

UNUSABLE = FLAGS["DO_NOT_USE"] | FLAGS["SATURATED"] | FLAGS["REFERENCE_PIXEL"]
NOISY = {"size": 128, "ngroups": 10, "nints": 24}  # 24 independent integrations of 128 x 128 pixels


def _readout(uncal) -> dict:
    return json.loads(truth_path(uncal, "truth.json").read_text())["readout"]


def _reference(ramp_path, reftype: str, shape: tuple[int, int]) -> np.ndarray:
    """The CRDS reference the product records having used, cut to the exposure's pixels (the
    simulated cut-outs start at the detector's first pixel)."""
    from jwst_dask.refs import best_references

    meta = _meta(ramp_path)
    path = best_references(meta, [reftype])[reftype]
    assert meta["ref_file"][reftype]["name"] == f"crds://{path.rsplit('/', 1)[-1]}"
    return fits.getdata(path, "SCI")[: shape[0], : shape[1]].astype(np.float64)


def _meta(path) -> dict:
    from jwst_dask.io import open_product

    return open_product(path).attrs["meta"]


# ------------------------------------------------------------------------------ (a) noiseless
@pytest.fixture(scope="module")
def clean_mosaic(sims, stage1):
    uncal = sims.get("nircam-mosaic", size=128, ngroups=10, noiseless=True, cosmic_rays=False)
    return uncal, stage1.get(uncal, save_calibrated_ramp=True)


def test_noiseless_rate_equals_true_rate(clean_mosaic):
    uncal, out = clean_mosaic
    rate = image_arrays(out["rate"])
    true = truth_image(uncal, "RATE")
    tgroup = _readout(uncal)["group_time"]
    dq = rate["DQ"]
    # every pixel with no flag, above 10 DN/s: the digitisation limit of a 10-group ramp is 3e-4
    clean = (dq == 0) & (true > 10.0)
    assert clean.sum() > 50
    rel = np.abs(rate["SCI"][clean] - true[clean]) / true[clean]
    assert rel.max() < 1e-3, f"worst relative error {rel.max():.2e}"
    # every unflagged pixel, faint ones included: within the rounding bound of a 10-group ramp
    gdq = image_arrays(out["ramp"])["GROUPDQ"][0]
    ngood = (gdq == 0).sum(axis=0)
    err = np.abs(rate["SCI"] - true)
    bound = 1.5 * ols_rounding_bound(ngood, tgroup) + 1e-4 * true
    unflagged = dq == 0
    assert unflagged.sum() > 0.9 * 120 * 124
    assert np.all(err[unflagged] <= bound[unflagged]), (err[unflagged] / bound[unflagged]).max()
    # saturated pixels that keep >= 2 good groups: within the rounding bound of their shorter ramp
    partial = ((dq & FLAGS["SATURATED"]) != 0) & ((dq & FLAGS["DO_NOT_USE"]) == 0) & (true > 10.0)
    assert partial.sum() >= 3
    assert np.all(err[partial] <= bound[partial]), (err[partial] / bound[partial]).max()
    # pixels saturated from the first group have no rate and say so
    lost = (dq & FLAGS["DO_NOT_USE"]) != 0
    sat0 = Table.read(truth_path(uncal, "saturated.ecsv"))
    first = sat0[sat0["first_group"] == 0]
    assert len(first) > 0
    assert np.all(lost[first["y"], first["x"]])


# ------------------------------------------------------------------------------ (b) (c) noisy
@pytest.fixture(scope="module")
def noisy_mosaic(sims, stage1):
    uncal = sims.get("nircam-mosaic", **NOISY)
    return uncal, stage1.get(uncal, save_calibrated_ramp=True)


def _robust(z: np.ndarray) -> tuple[float, float]:
    med = float(np.median(z))
    return med, float(1.4826 * np.median(np.abs(z - med)))


def test_noisy_residuals_follow_err(noisy_mosaic):
    """(rate - true) / ERR over ~360 000 pixel-integrations: centred on 0, unit robust spread.

    The integrations are pooled: the reference-pixel correction of one integration leaves an error
    common to all its pixels (a few % of ERR on a 128-pixel cut-out), which only averages out over
    independent integrations."""
    uncal, out = noisy_mosaic
    ints = image_arrays(out["rateints"])
    true = truth_image(uncal, "RATE")
    usable = (ints["DQ"] & UNUSABLE) == 0
    z = ((ints["SCI"] - true[None]) / ints["ERR"])[usable]
    assert z.size > 300_000
    assert np.isfinite(z).all()
    med, spread = _robust(z)
    assert abs(med) < 0.02, med
    assert abs(spread - 1.0) < 0.05, spread
    # the combined rate: the same unit spread (its median, near +0.04 here, is not held to 0.02)
    rate = image_arrays(out["rate"])
    ok = (rate["DQ"] & UNUSABLE) == 0
    _, spread_rate = _robust(((rate["SCI"] - true) / rate["ERR"])[ok])
    assert abs(spread_rate - 1.0) < 0.05, spread_rate


def test_injected_jumps_are_flagged(noisy_mosaic):
    uncal, out = noisy_mosaic
    ramp = image_arrays(out["ramp"])
    gdq, pdq = ramp["GROUPDQ"], ramp["PIXELDQ"]
    ny, nx = gdq.shape[2:]
    hits = Table.read(truth_path(uncal, "cosmic_rays.ecsv"))
    jump = np.zeros(gdq.shape)
    np.add.at(jump, (hits["integration"], hits["group"], hits["y"], hits["x"]), hits["dn"])
    # noise of one group difference: CDS read noise (READNOISE reference) and the true signal's shot noise
    rn = _reference(out["ramp"], "readnoise", (ny, nx))
    gain = _reference(out["ramp"], "gain", (ny, nx))
    signal = truth_image(uncal, "RATE") + truth_image(uncal, "DARK")
    sigma = np.sqrt(rn**2 + np.maximum(signal, 0.0) * _readout(uncal)["group_time"] / gain)
    # a jump cannot be seen in a group that is (or follows one) saturated / do-not-use
    lost = np.maximum.accumulate((gdq & (FLAGS["SATURATED"] | FLAGS["DO_NOT_USE"])) != 0, axis=1)
    pixel_ok = (pdq & (FLAGS["DO_NOT_USE"] | FLAGS["REFERENCE_PIXEL"])) == 0
    big = (jump > 10.0 * sigma) & ~lost & pixel_ok[None, None]
    assert big.sum() >= 100
    flagged = (gdq & FLAGS["JUMP_DET"]) != 0
    assert flagged[big].mean() >= 0.99, f"{(~flagged[big]).sum()} of {big.sum()} jumps > 10 sigma missed"
    # and jumps are not flagged where nothing hit (the 3 x 3 neighbourhood of a hit excepted)
    hit = jump > 0
    near = np.zeros_like(hit)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(hit, (dy, dx), axis=(2, 3))
    false = flagged & ~near & ~lost & pixel_ok[None, None]
    assert false.sum() <= 1e-4 * gdq.size, false.sum()


# ------------------------------------------------------------------------------ time series
@pytest.fixture(scope="module")
def transit(sims, stage1):
    uncal = sims.get("nircam-tso", nints=16, noiseless=True, cosmic_rays=False)
    return uncal, stage1.get(uncal, pipeline="calwebb_tso1")


def test_tso_rateints_follow_true_light_curve(transit):
    uncal, out = transit
    ints = image_arrays(out["rateints"])
    sci, dq = ints["SCI"], ints["DQ"]
    with fits.open(truth_path(uncal, "truth.fits")) as hdul:
        rate, scene, var = (hdul[e].data.astype(np.float64) for e in ("RATE", "SCENE", "VARIABLE"))
        lc = np.asarray(hdul["LIGHTCURVE"].data["relative_flux"], dtype=np.float64)
        row_drift = hdul["ROW_DRIFT"].data.astype(np.float64)  # (nints, ngroups, ny)
    nints, ny = sci.shape[:2]
    assert nints == 16 and lc.min() == pytest.approx(0.99)
    # detector rate of integration i: constant sky + the variable target (flat-fielded VARIABLE x the
    # pixel response RATE / SCENE) scaled by the light curve
    true = rate[None] + (var * rate / scene)[None] * lc[:, None, None]
    # a one-output subarray has no side-reference correction: the row drift stays in the ramp
    readout = _readout(uncal)
    ng, tgroup = row_drift.shape[1], readout["group_time"]
    a = np.arange(ng) - (ng - 1) / 2.0
    true = true + (np.tensordot(row_drift, a, axes=(1, 0)) / (a * a).sum() / tgroup)[:, :, None]
    ok = dq == 0
    assert ok.sum() > 0.8 * ok.size * (1 - 8 / ny)
    bound = 3.0 * ols_rounding_bound(np.full(sci.shape, ng), tgroup) + 1e-4 * true
    err = np.abs(sci - true)
    assert np.all(err[ok] <= bound[ok]), (err[ok] / bound[ok]).max()
    # the transit: the target's summed rate follows the true one (light curve + drift) to 1e-3 (a
    # tenth of the depth), once the common offset the reference-pixel correction leaves in each
    # integration (a few DN/s, measured on the sky pixels as a local background would) is taken out;
    # the rest is the drift seen through the optimal weights of the bright pixels (not plain OLS)
    target = (var > 0.01 * var.max()) & ok.all(axis=0)
    sky = (var == 0) & ok.all(axis=0)
    assert target.sum() >= 9 and sky.sum() > 1000
    offset = np.median((sci - true)[:, sky], axis=1)
    assert np.all(np.abs(offset) < 10.0)
    flux = np.where(target, sci - offset[:, None, None], 0.0).sum(axis=(1, 2))
    expected = np.where(target, true, 0.0).sum(axis=(1, 2))
    np.testing.assert_allclose(flux / expected, 1.0, atol=1e-3)
    # and the transit is visible: the in-transit dip of the measured flux against out-of-transit
    out_of_transit = flux[lc == 1.0].mean()
    depth = 1.0 - flux[lc == lc.min()].mean() / out_of_transit
    true_depth = 1.0 - expected[lc == lc.min()].mean() / expected[lc == 1.0].mean()
    assert depth == pytest.approx(true_depth, abs=5e-4)
    assert depth > 0.005  # at least half the 1 % transit depth (the sky adds a little flux)


# ------------------------------------------------------------------------------ MIRI
def _drift_bound(drift: np.ndarray, used: np.ndarray, tgroup: float) -> np.ndarray:
    """Largest slope (DN/s) a per-group offset ``drift`` (ngroups, ny, nx) can add to a fit over the
    ``used`` groups, for any of the pipeline's weightings: with weights |a|^P (P >= 0, a the group
    offsets from the middle) the slope's coefficients c_k sum to 0 and sum |c_k| is largest for P = 0,
    sum |a| / sum a^2 per group time, so |slope| <= that x half the range of the drift."""
    n = used.sum(axis=0)
    high = np.where(used, drift, -np.inf).max(axis=0)
    low = np.where(used, drift, np.inf).min(axis=0)
    out = np.zeros(n.shape)
    for m in np.unique(n[n >= 2]):
        a = np.arange(m) - (m - 1) / 2.0
        out[n == m] = np.abs(a).sum() / (a * a).sum()
    return out * np.where(n >= 2, high - low, 0.0) / 2.0 / tgroup


def test_miri_noiseless_rateints_equal_true_rate_up_to_the_drifts(sims, stage1):
    """MIRI through firstframe, lastframe, reset, linearity (on bias + signal), rscd and dark.

    On a cut-out (a subarray) MIRI's refpix does not run, as in the official pipeline, so the
    injected amplifier and row drifts stay in the ramps: each integration's rate must equal the true
    rate within what those drifts (from the truth file) can add to the fit, plus rounding."""
    uncal = sims.get("miri-image", size=64, ngroups=10, nints=2, noiseless=True, cosmic_rays=False)
    out = stage1.get(uncal, save_calibrated_ramp=True)
    ints = image_arrays(out["rateints"])
    gdq = image_arrays(out["ramp"])["GROUPDQ"]
    true = truth_image(uncal, "RATE")
    with fits.open(truth_path(uncal, "truth.fits")) as hdul:
        amp = hdul["AMP_DRIFT"].data.astype(np.float64)  # (nints, ngroups, namps, 2)
        row = hdul["ROW_DRIFT"].data.astype(np.float64)  # (nints, ngroups, ny)
    tgroup = _readout(uncal)["group_time"]
    x = np.arange(true.shape[1])  # MIRI outputs interleave: column x is read by output x % 4
    for i in range(gdq.shape[0]):
        used = gdq[i] == 0
        # firstframe and lastframe drop the first and last group; rscd the first groups of int 2
        assert not used[0].any() and not used[-1].any()
        assert i == 0 or not used[1].any()
        drift = row[i][:, :, None] + amp[i][:, x % 4, x % 2][:, None, :]
        bound = (
            _drift_bound(drift, used, tgroup)
            + 1.5 * ols_rounding_bound(used.sum(axis=0), tgroup)
            + 1e-4 * true
        )
        ok = (ints["DQ"][i] == 0) & (true > 10.0)
        assert ok.sum() > 200
        err = np.abs(ints["SCI"][i] - true)
        assert np.all(err[ok] <= bound[ok]), (i, (err[ok] / bound[ok]).max())
