"""NIRSpec IRS2 refpix kernels against independent computations: the readout layout written out
by hand, least squares from numpy, gap filling of known signals, the Fourier filter with known
alpha/beta, bad-read replacement and flagging on injected outliers, the REFPIX DQ decoding."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats

from jwst_dask.errors import ShapeMismatchError
from jwst_dask.kernels import refpix_irs2 as K

L = K.Irs2Layout()


def test_layout_by_hand():
    # an amplifier output: 8 normal, then 31 x (4 reference + 16 normal), 4 reference, 8 normal
    pattern = [True] * 8
    for _ in range(31):
        pattern += [False] * 4 + [True] * 16
    pattern += [False] * 4 + [True] * 8
    amp = np.array(pattern)
    expected = np.concatenate([np.zeros(640, bool), amp, amp[::-1], amp, amp[::-1]])
    np.testing.assert_array_equal(L.normal_columns, expected)
    assert L.normal_columns.sum() == 2048 and (L.sector, L.row, L.width) == (640, 712, 3200)
    np.testing.assert_array_equal(L.science_normal_rows("NRS2"), expected[::-1])
    # time samples: a jump costs one sample each way, 8 samples of pad end the 712-sample row
    times = []
    t = 0
    for is_normal in amp:
        times.append((t, is_normal))
        t += 1
        if len(times) < 640 and amp[len(times)] != is_normal:
            t += 1
    assert t + 8 == 712
    np.testing.assert_array_equal(L.hnorm1, [tt for tt, n in times if n])
    np.testing.assert_array_equal(L.href1, [tt for tt, n in times if not n])
    with pytest.raises(ShapeMismatchError, match="NRS_NORM"):
        K.Irs2Layout(n=15)


def test_fit_line_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    t = np.linspace(-7e5, 7e5, 5000).astype(np.float32)
    v = (3.5 + 2e-5 * t + rng.normal(0, 0.5, t.size)).astype(np.float32)
    v[::7] = 0.0  # zeros are gaps: left out
    a, b = K.fit_line(t, v)
    slope, intercept = np.polyfit(t[v != 0].astype(np.float64), v[v != 0].astype(np.float64), 1)
    assert a == pytest.approx(intercept, abs=1e-3) and b == pytest.approx(slope, rel=1e-3)


def test_cosine_fill_recovers_a_smooth_signal_in_the_gaps():
    n = 20000
    # periodic over n: the fill wraps around
    truth = (50 + 10 * np.sin(2 * np.pi * np.arange(n) / 4000)).astype(np.float32)
    s = truth.copy()
    gaps = np.zeros(n, bool)
    gaps[::9] = True
    gaps[5000:5004] = True
    s[gaps] = 0.0
    out = K.cosine_fill(s)
    np.testing.assert_array_equal(out[~gaps], truth[~gaps])
    np.testing.assert_allclose(out[gaps], truth[gaps], atol=0.05)


def test_fft_fill_interpolates_only_the_free_samples():
    n = 4096
    freq = np.abs(np.fft.fftfreq(n))
    filt = (freq < 0.02).astype(np.float64)
    truth = (20 + 5 * np.cos(2 * np.pi * 7 * np.arange(n) / n)).astype(np.float32)
    keep = np.ones(n, bool)
    keep[100::16] = False  # one sample in 16 is unknown
    s = np.where(keep, truth, 0.0).astype(np.float32)
    out = K.fft_fill(s, keep, filt, n_iter=30)
    np.testing.assert_array_equal(out[keep], truth[keep])
    np.testing.assert_allclose(out[~keep], truth[~keep], atol=0.05)


def test_fourier_correction_with_known_alpha_beta():
    """beta = a 7-sample advance, alpha = a constant, reference output constant c: the first eight
    normal reads of a row get the reference reads of the row's first block, in the order
    r0 r2 r0 r2 r1 r3 r1 r3, plus alpha * c."""
    rng = np.random.default_rng(3)
    ny, nt = L.ny, L.ny * L.row
    refpix = rng.normal(0, 10, (4, ny, L.nref)).astype(np.float32)
    c, a = 5.0, 0.25
    refout = np.full((ny, L.sector), c, np.float32)
    edges = np.zeros((5, 8, L.sector), np.float32)
    edges[0] = c  # the reference output's fitted line: the constant c, slope 0
    f = np.fft.fftfreq(nt)
    beta = np.tile(np.exp(2j * np.pi * f * 7).astype(np.complex64), (4, 1))
    alpha = np.full((4, nt), a, np.complex64)
    corr, lines = K.group_correction(refout, refpix, edges, alpha, beta, L)
    assert lines[0, 0] == pytest.approx(c) and abs(lines[0, 1]) < 1e-9
    # the fitted line removes c from the reference output, so alpha sees zero
    for k in range(4):
        for row in (0, 1000):
            r = refpix[k, row, :4]
            expected = np.array([r[0], r[2], r[0], r[2], r[1], r[3], r[1], r[3]])
            np.testing.assert_allclose(corr[k, row, :8], expected, atol=2e-3)
    # a reference output that is not removed by its line: alpha * (value) is added everywhere
    refout2 = refout.copy()
    refout2[:, :] = 0.0
    refout2[ny // 2 :, :] = 2 * c  # a step: the line takes out the mean and a slope, not all of it
    corr2, lines2 = K.group_correction(refout2, refpix, np.zeros_like(edges), alpha, beta, L)
    assert np.all(lines2 == 0)
    # with zero edges the line is zero: the reference output after filling is ~0 then ~2c
    np.testing.assert_allclose(corr2[0, 10, :8] - corr[0, 10, :8], a * 0.0, atol=0.05)
    np.testing.assert_allclose(corr2[0, 1500, :8] - corr[0, 1500, :8], a * 2 * c, atol=0.05)


def test_replace_bad_reads_by_same_phase_neighbours():
    rows = np.arange(640, 1280)
    rng = np.random.default_rng(4)
    vals = rng.normal(100, 5, (1, 2, rows.size, 6)).astype(np.float32)
    orig = vals.copy()
    is_ref = ~L.normal_columns  # detector columns; here used as positions along the row axis
    bad = np.zeros(3200, bool)
    p = 640 + 8 + 20 * 10  # a reference read in the middle: both neighbours 20 away good
    q = 640 + 8 + 20 * 30 + 1  # its +20 neighbour is bad too: only -20 used
    e = 640 + 9  # first block: -20 is outside the output, +20 good
    both = 640 + 8 + 20 * 5 + 2  # +-20 bad: the read two before (other pair) is used
    bad[[p, q, q + 20, e, both, both - 20, both + 20]] = True
    K.replace_bad(vals, rows, [p, q, e, both], bad, is_ref, 640, 1280, 20, axis=-2)
    idx = {v: i for i, v in enumerate(rows)}
    np.testing.assert_allclose(
        vals[..., idx[p], :], 0.5 * (orig[..., idx[p - 20], :] + orig[..., idx[p + 20], :])
    )
    np.testing.assert_array_equal(vals[..., idx[q], :], orig[..., idx[q - 20], :])
    np.testing.assert_array_equal(vals[..., idx[e], :], orig[..., idx[e + 20], :])
    np.testing.assert_array_equal(vals[..., idx[both], :], orig[..., idx[both - 2], :])
    untouched = np.ones(rows.size, bool)
    untouched[[idx[p], idx[q], idx[e], idx[both]]] = False
    np.testing.assert_array_equal(vals[..., untouched, :], orig[..., untouched, :])


def test_flag_intermittent_finds_the_noisy_pair():
    rng = np.random.default_rng(5)
    rows = L.science_reference_rows("NRS1")
    vals = rng.normal(1000, 3, (2, 3, rows.size, 64)).astype(np.float32)
    noisy = 640 * 2 + 8 + 20 * 11 + 2  # second pair of a block of output 2
    hot = 640 * 3 + 8 + 20 * 4  # first pair of a block of output 3, high mean
    idx = np.searchsorted(rows, [noisy, noisy + 1, hot, hot + 1])
    for j in idx[:2]:
        vals[1, :, j, :] += rng.normal(0, 200, (3, 64)).astype(np.float32)
    vals[:, :, idx[2:], :] += 80.0
    known = np.zeros(3200, bool)
    known[640 + 8] = True  # already known bad: kept, its pair left out of the statistics
    bad = K.flag_intermittent(vals, rows, known, L, 3.0)
    assert bad[[noisy, noisy + 1, hot, hot + 1, 648]].all()
    assert bad.sum() <= 5 + 4  # a chance 3-sigma pair or two at most


def test_clipped_stats_match_astropy():
    rng = np.random.default_rng(6)
    v = np.concatenate([rng.normal(10, 2, 300), [60.0, 80.0, -40.0]])
    mean, _, std = sigma_clipped_stats(v, sigma=3.0)
    assert K.clipped_stats(v, 3.0) == pytest.approx((mean, std), rel=1e-12)


def test_dq_table_columns():
    cols = K.dq_table_bad_columns(
        np.array([1, 2, 3, 4]), np.array([1, 1, 2, 2]), np.array([1, 1, 1 << 31, 2], np.uint32), L
    )
    # output 1, block 0, first pair; output 2 (read right to left): ODD_EVEN 1 is the second pair
    assert cols[0] == [648, 649]
    assert cols[1] == [1290, 1291]
    assert cols[2] == [1920 + 8 + 31 * 20 + 2, 1920 + 8 + 31 * 20 + 3]
    assert cols[3] == [2560 + 8 + 20, 2560 + 8 + 21]
    with pytest.raises(ValueError, match="OUTPUT"):
        K.dq_table_bad_columns(np.array([5]), np.array([1]), np.array([1]), L)
