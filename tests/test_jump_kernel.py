"""Jump kernel against stcal 1.20's detect_jumps_data, and against injected truth."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.dq import FLAGS
from jwst_dask.kernels import jump as jk

stcal_jump = pytest.importorskip("stcal.jump.jump")
from stcal.jump.jump_class import JumpData  # noqa: E402

JUMP = FLAGS["JUMP_DET"]
SAT = FLAGS["SATURATED"]
DNU = FLAGS["DO_NOT_USE"]


def run_stcal(data, gdq, pdq, gain, rn, nframes=1, **settings):
    """stcal's whole-frame jump detection (single process), as the official step calls it."""
    jd = JumpData(gain2d=gain.copy(), rnoise2d=rn.copy(), dqflags=FLAGS)
    jd.init_arrays_from_arrays(data.copy(), gdq.copy(), pdq.copy())
    jd.nframes = nframes
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2 * nframes
    jd.max_cores = "1"
    for key, value in settings.items():
        setattr(jd, key, value)
    gdq_out, pdq_out, _, _ = stcal_jump.detect_jumps_data(jd)
    return gdq_out, pdq_out


def make_ramps(seed, nints, ngroups, ny, nx, cr_fraction=0.1, sat_fraction=0.05, dnu_fraction=0.01):
    """Random ramps (Poisson + read noise, DN) with cosmic rays of several sizes, saturation,
    scattered DO_NOT_USE groups, and a few bad gains."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0, 50, (ny, nx)).astype(np.float32)
    data = np.cumsum(rng.poisson(np.broadcast_to(rate, (nints, ngroups, ny, nx))), axis=1).astype(np.float32)
    data += rng.normal(0, 5, data.shape).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    for _ in range(int(ny * nx * cr_fraction)):
        i, g = rng.integers(nints), rng.integers(1, ngroups)
        y, x = rng.integers(ny), rng.integers(nx)
        data[i, g:, y, x] += rng.choice([15.0, 30.0, 100.0, 1000.0, 20000.0, -200.0])
    for y, x in zip(*np.nonzero(rng.random((ny, nx)) < sat_fraction)):
        gdq[:, rng.integers(1, ngroups) :, y, x] |= SAT
    gdq[rng.random(gdq.shape) < dnu_fraction] |= DNU
    gain = rng.uniform(1.5, 2.5, (ny, nx)).astype(np.float32)
    gain[0, 3] = 0.0
    gain[min(5, ny - 1), min(5, nx - 1)] = np.nan
    gain[1, 1] = -1.0
    rn = rng.uniform(5, 10, (ny, nx)).astype(np.float32)
    pdq = np.zeros((ny, nx), np.uint32)
    return data, gdq, pdq, gain, rn


def ours(data, gdq, pdq, gain, rn, **kw):
    return jk.detect_jumps(data, gdq, pdq, gain, rn, jk.JumpParams(**kw))


@pytest.mark.parametrize(
    "shape",
    [(1, 3, 16, 16), (1, 4, 16, 16), (1, 5, 32, 32), (2, 6, 32, 32), (1, 10, 32, 32), (2, 8, 24, 24)],
)
def test_matches_stcal_default(shape):
    data, gdq, pdq, gain, rn = make_ramps(sum(shape), *shape)
    g_ref, p_ref = run_stcal(data, gdq, pdq, gain, rn)
    g, p = ours(data, gdq, pdq, gain, rn)
    assert np.count_nonzero(g_ref & JUMP) > 20  # the case exercises jumps
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(p, p_ref)
    bad = ~(gain > 0)
    assert np.all(p[bad] & (FLAGS["NO_GAIN_VALUE"] | DNU) == FLAGS["NO_GAIN_VALUE"] | DNU)


def test_neighbour_flags_match_stcal():
    data, gdq, pdq, gain, rn = make_ramps(7, 1, 8, 32, 32)
    base_ref, _ = run_stcal(data, gdq, pdq, gain, rn, flag_4_neighbors=False)
    for lo, hi in [(10.0, 1000.0), (5.0, 200.0)]:
        g_ref, _ = run_stcal(
            data, gdq, pdq, gain, rn, min_jump_to_flag_neighbors=lo, max_jump_to_flag_neighbors=hi
        )
        g, _ = ours(data, gdq, pdq, gain, rn, min_jump_to_flag_neighbors=lo, max_jump_to_flag_neighbors=hi)
        np.testing.assert_array_equal(g, g_ref)
        assert np.count_nonzero(g_ref & JUMP) > np.count_nonzero(base_ref & JUMP)  # neighbours were added
    g, _ = ours(data, gdq, pdq, gain, rn, flag_4_neighbors=False)
    np.testing.assert_array_equal(g, base_ref)


def test_nframes_and_input_jumps_match_stcal():
    data, gdq, pdq, gain, rn = make_ramps(11, 1, 6, 16, 16)
    gdq |= np.uint8(JUMP) * (np.random.default_rng(3).random(gdq.shape) < 0.02).astype(np.uint8)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, nframes=4)
    g, _ = ours(data, gdq, pdq, gain, rn, nframes=4)
    np.testing.assert_array_equal(g, g_ref)


def test_single_pass_matches_stcal():
    data, gdq, pdq, gain, rn = make_ramps(5, 1, 16, 16, 16)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, min_diffs_single_pass=10)
    g, _ = ours(data, gdq, pdq, gain, rn, min_diffs_single_pass=10)
    np.testing.assert_array_equal(g, g_ref)
    # the seeds' default (always iterate) is stcal with the single pass disabled
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, min_diffs_single_pass=1000)
    g, _ = ours(data, gdq, pdq, gain, rn)
    np.testing.assert_array_equal(g, g_ref)


def test_after_jump_flagging_matches_stcal():
    data, gdq, pdq, gain, rn = make_ramps(9, 2, 10, 24, 24)
    settings = dict(
        after_jump_flag_dn1=50.0, after_jump_flag_n1=2, after_jump_flag_dn2=1000.0, after_jump_flag_n2=5
    )
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, **settings)
    e1 = jk.after_jump_threshold(50.0, gain)
    e2 = jk.after_jump_threshold(1000.0, gain)
    g, _ = ours(
        data,
        gdq,
        pdq,
        gain,
        rn,
        after_jump_flag_e1=e1,
        after_jump_flag_n1=2,
        after_jump_flag_e2=e2,
        after_jump_flag_n2=5,
    )
    np.testing.assert_array_equal(g, g_ref)
    plain, _ = ours(data, gdq, pdq, gain, rn)
    assert np.count_nonzero(g & JUMP) > np.count_nonzero(plain & JUMP)


def test_after_jump_by_hand():
    """A 500 DN jump in group 3 with 2 groups of after-flagging: groups 3, 4, 5 flagged."""
    ngroups = 10
    data = np.zeros((1, ngroups, 5, 5), np.float32)
    data[:] = (np.arange(ngroups, dtype=np.float32) * 10)[None, :, None, None]
    data[0, 3:, 2, 2] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gain = np.ones((5, 5), np.float32)
    rn = np.full((5, 5), 2.0, np.float32)
    params = dict(flag_4_neighbors=False, after_jump_flag_e1=100.0, after_jump_flag_n1=2)
    g, _ = ours(data, gdq, np.zeros((5, 5), np.uint32), gain, rn, **params)
    flagged = np.nonzero(g[0, :, 2, 2] & JUMP)[0]
    assert flagged.tolist() == [3, 4, 5]
    assert np.count_nonzero(g & JUMP) == 3


@pytest.mark.parametrize("only_use_ints", [True, False])
def test_sigma_clip_matches_stcal(only_use_ints):
    shape = (100, 4, 6, 6) if only_use_ints else (2, 60, 6, 6)
    data, gdq, pdq, gain, rn = make_ramps(13, *shape, cr_fraction=2.0)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, only_use_ints=only_use_ints)
    g, _ = ours(data, gdq, pdq, gain, rn, only_use_ints=only_use_ints)
    assert np.count_nonzero(g_ref & JUMP) > 5
    np.testing.assert_array_equal(g, g_ref)


def test_frame_wide_do_not_use_groups_match_stcal():
    # MIRI-like: first and last groups DO_NOT_USE everywhere; with 4 groups the exposure is skipped
    for ngroups in (4, 6):
        data, gdq, pdq, gain, rn = make_ramps(17 + ngroups, 2, ngroups, 16, 16)
        gdq[:, 0] |= DNU
        gdq[:, -1] |= DNU
        g_ref, _ = run_stcal(data, gdq, pdq, gain, rn)
        g, _ = ours(data, gdq, pdq, gain, rn)
        np.testing.assert_array_equal(g, g_ref)


def test_frame_mode():
    p = jk.JumpParams()
    assert jk.frame_mode(np.zeros((1, 10), bool), p) == jk.MODE_ITERATIVE
    t = np.zeros((2, 4), bool)
    t[:, 0] = t[:, -1] = True
    assert jk.frame_mode(t, p) == jk.MODE_SKIP
    assert jk.frame_mode(np.zeros((100, 3), bool), p) == jk.MODE_SIGMA_CLIP
    assert (
        jk.frame_mode(np.zeros((1, 12), bool), jk.JumpParams(min_diffs_single_pass=10)) == jk.MODE_SINGLE_PASS
    )


def test_truth_recovery():
    """Injected jumps > 10 sigma are found (>= 99%); few false positives on clean ramps."""
    rng = np.random.default_rng(21)
    nints, ngroups, ny, nx = 1, 8, 64, 64
    rate, rn_dn, gain_v = 20.0, 8.0, 2.0
    electrons = np.cumsum(rng.poisson(rate * gain_v, (nints, ngroups, ny, nx)), axis=1).astype(np.float64)
    noise = rng.normal(0, rn_dn / np.sqrt(2), electrons.shape)  # READNOISE is the CDS noise
    data = (electrons / gain_v + noise).astype(np.float32)
    truth = np.zeros(data.shape, bool)
    sigma_dn = np.sqrt(rn_dn**2 + rate * gain_v) / gain_v
    hit = rng.random((ny, nx)) < 0.2
    groups = rng.integers(1, ngroups, (ny, nx))
    amps = rng.uniform(12, 200, (ny, nx)) * sigma_dn
    for y, x in zip(*np.nonzero(hit)):
        data[0, groups[y, x] :, y, x] += amps[y, x]
        truth[0, groups[y, x], y, x] = True
    gdq = np.zeros(data.shape, np.uint8)
    gain = np.full((ny, nx), gain_v, np.float32)
    rn = np.full((ny, nx), rn_dn, np.float32)
    g, _ = ours(data, gdq, np.zeros((ny, nx), np.uint32), gain, rn, flag_4_neighbors=False)
    found = (g & JUMP) != 0
    recovered = np.count_nonzero(found & truth) / np.count_nonzero(truth)
    assert recovered >= 0.99
    false_pos = np.count_nonzero(found & ~truth) / (found.size - np.count_nonzero(truth))
    assert false_pos < 0.005


@pytest.mark.parametrize("rate_scale", [0.0, 1.0])
def test_integer_data_with_ties_matches_stcal(rate_scale):
    """Integer-valued ramps (as raw DN): equal and zero differences exercise the tie rules."""
    data, gdq, pdq, gain, rn = make_ramps(71, 2, 9, 24, 24)
    rng = np.random.default_rng(72)
    base = rng.integers(0, 3, data.shape).astype(np.float32) + rate_scale * np.arange(9)[None, :, None, None]
    data = np.round(data * 0.05).astype(np.float32) + base
    gain = np.where(np.isfinite(gain) & (gain > 0), 1.0, gain).astype(np.float32)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn * 0.1)
    g, _ = ours(data, gdq, pdq, gain, rn * 0.1)
    assert np.count_nonzero(g_ref & JUMP) > 20
    np.testing.assert_array_equal(g, g_ref)


def _ratios_on_thresholds(seed, ngroups=10, n=12):
    """Ramps of 2392 e/group with gain 1 and read noise 3 (sigma 49) whose differences depart from
    the median by exact multiples of sigma / 2, so |d - median| / sigma falls exactly on
    thresholds (where x / 49 and x * (1 / 49) round differently)."""
    rng = np.random.default_rng(seed)
    steps = np.full((1, ngroups - 1, n, n), 2392.0)
    for y in range(n):
        for x in range(n):
            k = rng.choice(ngroups - 1, 3, replace=False)
            steps[0, k, y, x] += 24.5 * rng.choice([-8, -6, -4, -3, -2, -1, 1, 2, 3, 4, 6, 8], 3)
    data = np.concatenate([np.zeros((1, 1, n, n)), np.cumsum(steps, axis=1)], axis=1).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gain = np.ones((n, n), np.float32)
    rn = np.full((n, n), 3.0, np.float32)
    return data, gdq, np.zeros((n, n), np.uint32), gain, rn


@pytest.mark.parametrize("single_pass", [False, True])
def test_ratios_exactly_on_thresholds_match_stcal(single_pass):
    """Ratios equal to the rejection and neighbour thresholds are decided as stcal does."""
    data, gdq, pdq, gain, rn = _ratios_on_thresholds(31)
    settings = dict(rejection_threshold=3.0, min_jump_to_flag_neighbors=1.0, max_jump_to_flag_neighbors=2.0)
    names = dict(rejection_threshold="rejection_thresh")  # stcal's names
    if single_pass:
        settings["min_diffs_single_pass"] = 5
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, **{names.get(k, k): v for k, v in settings.items()})
    g, _ = ours(data, gdq, pdq, gain, rn, **settings)
    assert np.count_nonzero(g_ref & JUMP) > 10
    np.testing.assert_array_equal(g, g_ref)
    # the neighbour-flagging range exactly on the ratios (no primary jump: hints only)
    z = np.abs(np.diff(data.astype(np.float64), axis=1) - 2392.0) / 49.0
    for lo, hi in [(1.0, 2.0), (2.0, 4.0), (0.5, 1.0), (3.0, 8.0)]:
        params = jk.JumpParams(
            rejection_threshold=100.0, min_jump_to_flag_neighbors=lo, max_jump_to_flag_neighbors=hi
        )
        packed = jk.twopoint_block(data, gdq, gain, rn, params, jk.MODE_SINGLE_PASS if single_pass else 0)
        np.testing.assert_array_equal((packed[:, 1:] & 0x100) != 0, (z > lo) & (z < hi))
