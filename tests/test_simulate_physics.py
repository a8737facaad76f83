"""Detector physics of the simulator: non-linearity and its inverse, the tile renderer's invariances."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.simulate import detector as phys
from jwst_dask.simulate.exposure import ExposurePlan, make_drifts, render_block
from jwst_dask.simulate.readout import make_readout
from jwst_dask.simulate.scene import SOURCE_DTYPE, render_rate


def test_linearity_inverts_response_below_90_percent_of_full_well():
    rng = np.random.default_rng(0)
    beta = phys.DETECTORS["NRCA1"].beta * rng.uniform(0.85, 1.15, 400)
    sat = phys.DETECTORS["NRCA1"].sat_signal
    s = rng.uniform(10.0, 0.9 * sat, 400)
    # the exact linear signal: the smaller root of beta L^2 - L + s = 0
    linear = (1.0 - np.sqrt(1.0 - 4.0 * beta * s)) / (2.0 * beta)
    back = phys.linearize(s, phys.linearity_coefficients(beta))
    assert np.max(np.abs(back - linear) / linear) < 1e-4


def test_response_monotonic_and_clipped():
    beta = np.full(5, 1.5e-6)
    lin = np.array([0.0, 1e4, 5e4, 5e5, 5e7])
    out = phys.nonlinear(lin, beta, 46000.0)
    assert np.all(np.diff(out) >= 0)
    assert out[-1] == 46000.0 and out[0] == 0.0


def test_saturation_threshold_below_full_well_and_adc():
    thr = phys.saturation_threshold("NRCA1")
    bias = phys.field("NRCA1", "bias")
    sat = phys.field("NRCA1", "sat_signal")
    assert np.all(thr < 65535)
    assert np.all(thr < bias + sat)
    assert np.all(thr > bias + 0.9 * sat)


def test_bad_pixel_classes_do_not_overlap_reference_pixels():
    det = phys.detector_spec("NRCA1")
    ref = phys.reference_pixel_mask(det)
    assert ref.sum() == 2048 * 2048 - 2040 * 2040
    for prop in ("hot", "dead", "lowqe"):
        assert not np.any(phys.field("NRCA1", prop) & ref)
    assert np.all(phys.field("NRCA1", "qe")[ref] == 0)


def test_gaussian_star_flux_is_conserved():
    src = np.zeros(1, dtype=SOURCE_DTYPE)
    src["kind"], src["x"], src["y"], src["flux"] = "star", 20.3, 19.6, 1000.0
    img = render_rate(src, 0, 40, 0, 40, psf=0.95)
    assert img.sum() == pytest.approx(1000.0, rel=1e-6)
    # tiles rendered apart add up to the whole
    parts = render_rate(src, 0, 20, 0, 40, psf=0.95), render_rate(src, 20, 40, 0, 40, psf=0.95)
    np.testing.assert_array_equal(np.vstack(parts), img)


def _plan(noiseless: bool) -> ExposurePlan:
    ro = make_readout("NIRCAM", "BRIGHT2", 4, 2, 2048, 2048, 4)
    rng = np.random.default_rng(5)
    src = np.zeros(2, dtype=SOURCE_DTYPE)
    src["kind"] = "star", "galaxy"
    src["x"], src["y"], src["flux"] = [10.0, 25.0], [12.0, 20.0], [500.0, 800.0]
    src["sersic_n"], src["r_eff"], src["axis_ratio"] = [0.0, 1.0], [0.0, 3.0], [1.0, 0.7]
    amp, row = make_drifts(rng, phys.detector_spec("NRCA1"), ro, 32)
    return ExposurePlan("NRCA1", ro, 1, 1, 32, 32, "F200W", "2024-07-01", 1, 1, src, 0.3, 0.95,
                        noiseless=noiseless, amp_drift=amp, row_drift=row)  # fmt: skip


def test_noiseless_blocks_independent_of_tiling():
    plan = _plan(noiseless=True)
    whole = render_block(plan, 0, 2, 0, 32, 0, 32)
    tiles = np.concatenate(
        [np.concatenate([render_block(plan, 0, 2, y, y + 16, x, x + 16) for x in (0, 16)], axis=-1)
         for y in (0, 16)], axis=-2)  # fmt: skip
    np.testing.assert_array_equal(tiles, whole)


def test_noisy_blocks_deterministic():
    plan = _plan(noiseless=False)
    a = render_block(plan, 0, 2, 0, 32, 0, 32)
    b = render_block(plan, 0, 2, 0, 32, 0, 32)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint16
    # read noise is present: reference pixels of two integrations differ
    assert np.any(a[0, :, :4] != a[1, :, :4])


def test_detector_properties_same_whatever_rows_are_asked():
    full = phys.field("NRCA1", "bias")
    np.testing.assert_array_equal(
        phys.field("NRCA1", "bias", slice(100, 300), slice(5, 70)), full[100:300, 5:70]
    )
    flat = phys.flat_field("NRCA1", "F200W", "2024-07-01")
    np.testing.assert_array_equal(
        phys.flat_field("NRCA1", "F200W", "2024-07-01", slice(250, 260), slice(0, 2048)), flat[250:260]
    )
