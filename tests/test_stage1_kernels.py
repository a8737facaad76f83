"""Stage-1 kernels against the official stcal library or plain-numpy references written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stcal.dark_current.dark_class import DarkData
from stcal.dark_current.dark_sub import average_dark_frames_3d
from stcal.linearity.linearity import linearity_correction
from stcal.saturation.saturation import flag_saturated_pixels

from jwst_dask.dq import FLAGS
from jwst_dask.kernels import (
    charge_migration,
    dark_current,
    ipc,
    linearity,
    miri_frames,
    persistence,
    reset,
    rscd,
    saturation,
    superbias,
)

DQFLAGS = {k: v for k, v in FLAGS.items()}


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


def _ramp(rng, shape, rate=300.0):
    return np.cumsum(rng.uniform(0, rate, shape), axis=1).astype(np.float32)


@pytest.mark.parametrize("grow", [0, 1, 2])
@pytest.mark.parametrize("readpatt", [False, True])
def test_saturation_matches_stcal(rng, grow, readpatt):
    shape = (2, 6, 24, 28)
    data = _ramp(rng, shape, 2000)
    data[0, 3:, 10, 10] = 70000
    data[1, 2, 20, 3] = -5
    data[1, 0, 0, 0] = 0
    thresh = rng.uniform(6000, 9000, shape[2:]).astype(np.float32)
    thresh[4, 4] = np.nan
    tdq = np.zeros(shape[2:], np.uint32)
    tdq[5, 5] = FLAGS["NO_SAT_CHECK"]
    zf = data[:, 0] * 0.5
    zf[0, 10, 10] = 65000
    gdq = np.zeros(shape, np.uint8)
    gdq[0, 1, 2, 2] = FLAGS["SATURATED"]
    pdq = np.zeros(shape[2:], np.uint32)
    pattern = [[g * 2 + 1, g * 2 + 2] for g in range(shape[1])] if readpatt else None
    bias = rng.uniform(0, 10, shape[2:]).astype(np.float32) if readpatt else None
    got = saturation.flag_saturation(data, gdq, pdq, thresh, tdq, grow, pattern, bias, zf)
    exp = flag_saturated_pixels(
        data.copy(),
        gdq.copy(),
        pdq.copy(),
        thresh.copy(),
        tdq.copy(),
        65535,
        DQFLAGS,
        grow,
        zframe=zf.copy(),
        read_pattern=pattern,
        bias=bias,
    )
    np.testing.assert_array_equal(got[0], exp[0])
    np.testing.assert_array_equal(got[1], exp[1])
    np.testing.assert_array_equal(got[2], exp[2])
    assert got[0][0, -1, 10, 10] & FLAGS["SATURATED"]
    assert got[1][4, 4] & FLAGS["NO_SAT_CHECK"]


@pytest.mark.parametrize("grow", [0, 1, 3])
def test_saturation_fast_passes_match_stcal(rng, grow):
    shape = (2, 5, 20, 24)
    data = _ramp(rng, shape, 2500)
    data[1, 2:, 0, 23] = 70000  # a corner: the grow is truncated at the edges
    data[0, 1, 5, 5] = 0
    thresh = rng.uniform(6000, 9000, shape[2:]).astype(np.float32)
    thresh[3, 3] = np.nan
    tdq = np.zeros(shape[2:], np.uint32)
    gdq = np.zeros(shape, np.uint8)
    t = saturation.prepare_threshold(thresh, tdq)[0]
    first = saturation.first_crossing(data, gdq, t)
    got = saturation.apply_flags(data, gdq, saturation.min_filter(first, grow))
    exp = flag_saturated_pixels(
        data.copy(),
        gdq.copy(),
        np.zeros(shape[2:], np.uint32),
        thresh.copy(),
        tdq.copy(),
        65535,
        DQFLAGS,
        grow,
    )[0]
    np.testing.assert_array_equal(got, exp)


def test_dilate_is_truncated_box():
    mask = np.zeros((7, 9), bool)
    mask[0, 0] = mask[3, 5] = True
    got = saturation.dilate(mask, 1)
    exp = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        exp[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = True
    np.testing.assert_array_equal(got, exp)


def test_linearity_matches_stcal(rng):
    shape = (2, 4, 16, 20)
    data = _ramp(rng, shape, 5000)
    gdq = np.zeros(shape, np.uint8)
    gdq[0, 2:, 3, 3] = FLAGS["SATURATED"]
    coeffs = np.stack(
        [
            rng.normal(0, 1, shape[2:]),
            1 + rng.normal(0, 1e-3, shape[2:]),
            rng.normal(0, 1e-7, shape[2:]),
            rng.normal(0, 1e-12, shape[2:]),
        ]
    ).astype(np.float32)
    coeffs[2, 5, 5] = np.nan
    coeffs[1, 6, 6] = 0.0
    ldq = np.zeros(shape[2:], np.uint32)
    ldq[7, 7] = FLAGS["NO_LIN_CORR"]
    ldq[8, 8] = FLAGS["DO_NOT_USE"]
    pdq = np.zeros(shape[2:], np.uint32)
    zf = data[:, 0].copy()
    zf[1, 9, 9] = 0.0
    c, new_pdq = linearity.prepare_coefficients(coeffs, ldq, pdq)
    got = linearity.apply_linearity(data, gdq, c)
    got_z = linearity.correct_zeroframe(zf, c)
    exp = linearity_correction(
        data.copy(), gdq.copy(), pdq.copy(), coeffs.copy(), ldq.copy(), DQFLAGS, zframe=zf
    )
    np.testing.assert_array_equal(got, exp[0])
    np.testing.assert_array_equal(new_pdq, exp[1])
    np.testing.assert_array_equal(got_z, exp[2])
    assert got[0, 3, 3, 3] == data[0, 3, 3, 3]  # saturated group untouched
    assert new_pdq[5, 5] & FLAGS["NO_LIN_CORR"] and new_pdq[6, 6] & FLAGS["NO_LIN_CORR"]


@pytest.mark.parametrize(("nframes", "groupgap"), [(1, 0), (2, 1), (4, 0), (3, 2)])
def test_dark_average_matches_stcal(rng, nframes, groupgap):
    ngroups = 3
    dark = rng.normal(0, 5, (20, 8, 8)).astype(np.float32)
    dd = DarkData(dims=dark.shape)
    dd.data = dark.copy()
    dd.groupdq = np.zeros((8, 8), np.uint32)
    got = dark_current.average_dark(dark, ngroups, nframes, groupgap)
    exp = average_dark_frames_3d(dd, ngroups, nframes, groupgap).data if nframes > 1 else dark[:ngroups]
    np.testing.assert_array_equal(got, exp)


def test_dark_subtract_nan_and_miri_integrations(rng):
    sci = rng.normal(100, 1, (3, 2, 4, 4)).astype(np.float32)
    dark3 = rng.normal(0, 1, (5, 4, 4)).astype(np.float32)
    dark3[:, 0, 0] = np.nan
    got = dark_current.subtract_dark(sci, dark3)
    exp = sci - np.nan_to_num(dark3)[None, :2]
    np.testing.assert_array_equal(got, exp)
    dark4 = rng.normal(0, 1, (2, 4, 4, 4)).astype(np.float32)
    got4 = dark_current.subtract_dark(sci, dark4)
    for i, k in enumerate([0, 1, 1]):  # the last dark integration for later science ones
        np.testing.assert_array_equal(got4[i], sci[i] - dark4[k, :2])
    assert dark_current.frames_needed(4, 2, 1) == 4 * 2 + 3 * 1


def test_superbias_nan_is_zero(rng):
    sci = rng.normal(1e4, 10, (1, 2, 5, 5)).astype(np.float32)
    bias = rng.normal(1e4, 10, (5, 5)).astype(np.float32)
    bias[1, 1] = np.nan
    got = superbias.subtract_bias(sci, bias)
    np.testing.assert_array_equal(got, sci - np.nan_to_num(bias))
    assert got[0, 0, 1, 1] == sci[0, 0, 1, 1]


def test_charge_migration_reference_loop(rng):
    data = _ramp(rng, (2, 5, 10, 12), 8000)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1, 4, 4] = FLAGS["DO_NOT_USE"]  # a DO_NOT_USE group does not trigger it
    thr = 20000.0
    got = charge_migration.flag_charge_migration(data, gdq, thr)
    exp = gdq.copy()
    flag = FLAGS["CHARGELOSS"] | FLAGS["DO_NOT_USE"]
    ni, ng, ny, nx = data.shape
    for i in range(ni):
        for g in range(ng):
            for y in range(ny):
                for x in range(nx):
                    if data[i, g, y, x] > thr and gdq[i, g, y, x] != FLAGS["DO_NOT_USE"]:
                        for yy, xx in ((y, x), (y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                            if 0 <= yy < ny and 0 <= xx < nx:
                                exp[i, g:, yy, xx] |= flag
    np.testing.assert_array_equal(got, exp)
    few = charge_migration.flag_charge_migration(data[:, :2] * 10, gdq[:, :2], thr)
    np.testing.assert_array_equal(few, gdq[:, :2])  # 1-2 groups: nothing added


def test_miri_frames_and_rscd():
    gdq = np.zeros((3, 8, 2, 2), np.uint8)
    dnu = FLAGS["DO_NOT_USE"]
    assert (miri_frames.flag_first_frame(gdq)[:, 0] == dnu).all()
    assert not miri_frames.flag_first_frame(gdq)[:, 1:].any()
    assert (miri_frames.flag_last_frame(gdq)[:, -1] == dnu).all()
    out = rscd.flag_rscd(gdq, 2)
    assert not out[0].any()
    assert (out[1:, :2] == dnu).all() and not out[1:, 2:].any()
    assert not rscd.flag_rscd(gdq[:, :5], 2).any()  # ngroups <= N + 3: nothing


def test_reset_subtraction(rng):
    sci = rng.normal(0, 1, (3, 6, 4, 4)).astype(np.float32)
    ref = rng.normal(0, 1, (2, 4, 4, 4)).astype(np.float32)
    got = reset.subtract_reset(sci, ref)
    for i in range(3):
        k = min(i, 1)
        np.testing.assert_array_equal(got[i, :4], sci[i, :4] - ref[k])
        np.testing.assert_array_equal(got[i, 4:], sci[i, 4:])


def _ipc_reference(plane, kernel, science):
    """Direct convolution over science pixels (reference pixels count as zero, stay unchanged)."""
    ny, nx = plane.shape
    kh, kw = kernel.shape[:2]
    out = plane.astype(np.float64).copy()
    for y in range(ny):
        for x in range(nx):
            if not science[y, x]:
                continue
            acc = 0.0
            for j in range(kh):
                for i in range(kw):
                    yy, xx = y + kh // 2 - j, x + kw // 2 - i
                    if 0 <= yy < ny and 0 <= xx < nx and science[yy, xx]:
                        k = kernel[j, i] if kernel.ndim == 2 else kernel[j, i, y, x]
                        acc += float(k) * float(plane[yy, xx])
            out[y, x] = acc
    return out


@pytest.mark.parametrize("per_pixel", [False, True])
def test_ipc_against_direct_convolution(rng, per_pixel):
    plane = rng.normal(100, 10, (12, 14)).astype(np.float32)
    science = np.ones(plane.shape, bool)
    science[:4] = False
    science[:, -4:] = False
    k = np.array([[0.0, 0.01, 0.0], [0.02, 0.94, 0.015], [0.0, 0.012, 0.003]], np.float32)
    kernel = (
        np.repeat(np.repeat(k[:, :, None, None], 12, 2), 14, 3)
        * rng.uniform(0.9, 1.1, (3, 3, 12, 14)).astype(np.float32)
        if per_pixel
        else k
    )
    got = ipc.ipc_convolve(plane[None, None], kernel, science)[0, 0]
    np.testing.assert_allclose(got, _ipc_reference(plane, kernel, science), rtol=1e-6)
    np.testing.assert_array_equal(got[~science], plane[~science])
    assert ipc.halo_depth(kernel.shape) == 1


def test_persistence_decay_of_input_traps_is_analytic():
    # One family, no capture (trap density 0): the persistence of group g is the cumulative
    # release T0 * (1 - exp(-(g+1) tgroup / tau)).
    t0, dp, tgroup = 1000.0, -0.01, 10.0
    sci = np.zeros((1, 4, 2, 3), np.float32)
    gdq = np.zeros(sci.shape, np.uint8)
    traps = np.full((1, 2, 3), t0, np.float32)
    params = np.array([[0.0, -0.001, 0.0, dp]])
    out, pers, traps_out = persistence.correct_persistence(
        sci,
        gdq,
        traps,
        np.zeros((2, 3)),
        np.full((2, 3), 1e5),
        np.zeros((2, 3), bool),
        params,
        tgroup,
        1.0,
        0,
        1,
    )
    expect = [t0 * (1 - math.exp(-(g + 1) * tgroup * abs(dp))) for g in range(4)]
    np.testing.assert_allclose(pers[0, :, 0, 0], expect, rtol=1e-5)
    np.testing.assert_allclose(out[0, :, 1, 2], -np.array(expect), rtol=1e-5)
    np.testing.assert_allclose(traps_out[0, 0, 0], t0 * math.exp(-4 * tgroup * abs(dp)), rtol=1e-5)


def test_persistence_ramp_capture_is_analytic():
    # A clean linear ramp, no earlier traps: the correction is zero and the captured traps follow
    # 2 * density * s^2 * (dt^2 (a0 + a2)/2 + a0 (dt tau + tau^2) exp(-dt/tau) - a0 tau^2).
    ngroups, tgroup, tframe, rate = 5, 10.0, 10.0, 100.0
    sci = (np.arange(1, ngroups + 1, dtype=np.float32)[None, :, None, None] * rate) * np.ones(
        (1, 1, 2, 2), np.float32
    )
    gdq = np.zeros(sci.shape, np.uint8)
    a0, a1, a2 = 0.2, -0.05, 0.01
    params = np.array([[a0, a1, a2, -0.001]])
    density, persat = 50.0, 1e5
    out, _, traps = persistence.correct_persistence(
        sci,
        gdq,
        np.zeros((1, 2, 2), np.float32),
        np.full((2, 2), density),
        np.full((2, 2), persat),
        np.zeros((2, 2), bool),
        params,
        tgroup,
        tframe,
        1,
        1,
    )
    np.testing.assert_array_equal(out, sci)
    s = rate / (persat * tgroup)
    dt = ngroups * tgroup + tframe
    tau = 1 / abs(a1)
    expect = (
        2
        * density
        * s**2
        * (dt**2 * (a0 + a2) / 2 + a0 * (dt * tau + tau**2) * math.exp(-dt / tau) - a0 * tau**2)
    )
    np.testing.assert_allclose(traps[0], expect, rtol=1e-5)


def test_rscd_jwst3_backs_off_for_saturation():
    sat, dnu = FLAGS["SATURATED"], FLAGS["DO_NOT_USE"]
    gdq = np.zeros((2, 8, 1, 4), np.uint8)
    gdq[0, 3:, 0, 0] = sat  # A: saturated from group 4 in integration 1
    gdq[0, :, 0, 1] = sat  # B: saturated from group 1 (no back-off)
    gdq[1, 1:, 0, 2] = sat  # C: saturated from group 2 in integration 2
    out, pdq = rscd.flag_rscd_jwst3(gdq, np.zeros((1, 4), np.uint32), 2, 3)
    dnu_groups = lambda i, x: [g for g in range(8) if out[i, g, 0, x] & dnu]  # noqa: E731
    assert dnu_groups(0, 3) == [0, 1] and dnu_groups(1, 3) == [0, 1, 2]  # a plain pixel
    assert dnu_groups(0, 0) == [0]  # backed off by one
    assert dnu_groups(0, 1) == [0, 1]
    assert dnu_groups(1, 2) == []  # backed off to nothing
    est = FLAGS["FLUX_ESTIMATED"]
    assert [bool(pdq[0, x] & est) for x in range(4)] == [True, False, True, False]
    few, _ = rscd.flag_rscd_jwst3(gdq[:, :5], np.zeros((1, 4), np.uint32), 2, 3)
    assert all((few[i, 0, 0, 3] & dnu) and not (few[i, 1, 0, 3] & dnu) for i in range(2))  # <= 5 groups: 1
