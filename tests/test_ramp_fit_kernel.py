"""Ramp-fitting kernel: parity with stcal 1.20's OLS fitter, analytic and statistical truth."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ParameterError, ShapeMismatchError
from jwst_dask.kernels.ramp_fit import fit_ramps

stcal_fit = pytest.importorskip("stcal.ramp_fitting.ramp_fit")
from stcal.ramp_fitting.ramp_fit_class import RampData  # noqa: E402

DNU, SAT, JUMP, CHARGELOSS = FLAGS["DO_NOT_USE"], FLAGS["SATURATED"], FLAGS["JUMP_DET"], FLAGS["CHARGELOSS"]
FT = GT = 10.737
JWST3 = {"median_per_integration": True, "weight_by_readnoise": True}


def run_stcal(
    data, gdq, pdq, gain, rn, *, nframes=1, zf=None, dark=None, suppress=True, save_opt=False, name="NIRCAM"
):
    """stcal 1.20 OLS_C, set up as jwst 3.0's RampFitStep does."""
    rd = RampData()
    rd.algorithm = "OLS_C"
    orig = gdq.copy() if np.any(gdq & CHARGELOSS) else None
    dark = np.zeros(pdq.shape, np.float32) if dark is None else dark.copy()
    rd.set_arrays(
        data.copy(), gdq.copy(), pdq.copy(), dark, orig_gdq=orig, zeroframe=None if zf is None else zf.copy()
    )
    rd.set_meta(name=name, frame_time=FT, group_time=GT, groupgap=0, nframes=nframes, drop_frames1=0)
    rd.set_dqflags(FLAGS)
    rd.start_row, rd.num_rows = 0, data.shape[2]
    rd.suppress_one_group_ramps = suppress and data.shape[1] > 1
    return stcal_fit.ramp_fit_data(rd, save_opt, rn.copy(), gain.copy(), "OLS_C", "optimal", "1")


def random_ramps(nints, ngroups, n=20, seed=0):
    """Random ramps with jumps, saturation (from any group, incl. the 2nd and the 1st), DO_NOT_USE
    groups, zero and negative rates, bad gain and flagged pixels."""
    rng = np.random.default_rng(seed)
    gain = rng.uniform(1.5, 2.5, (n, n)).astype(np.float32)
    rn = rng.uniform(5, 15, (n, n)).astype(np.float32)
    rate = rng.choice([0.0, -2.0, 0.5, 10.0, 100.0, 1000.0, 5000.0], (n, n)) * rng.uniform(0.5, 1.5, (n, n))
    t = (np.arange(ngroups) + 1) * GT
    noise = rng.normal(0, 8, (nints, ngroups, n, n))
    data = (rate[None, None] * t[None, :, None, None] + 1000.0 + noise).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    jumps = rng.random(data.shape) < 0.06
    jumps[:, 0] = False
    gdq[jumps] |= JUMP
    data[jumps] += 500
    sat_from = rng.integers(0, ngroups + 4, (nints, n, n))
    sat_from[:, 3, :4] = 1  # saturated in the 2nd group
    sat_from[:, 4, :4] = 0  # saturated in every group
    for g in range(ngroups):
        gdq[:, g][g >= sat_from] |= SAT
    gdq[rng.random(data.shape) < 0.04] |= DNU
    pdq = np.zeros((n, n), np.uint32)
    pdq[0, :3] = [DNU, FLAGS["HOT"], FLAGS["NO_GAIN_VALUE"]]
    gain[1, 1], gain[1, 2] = 0.0, np.nan
    zf = (rate[None] * FT + 1000 + rng.normal(0, 8, (nints, n, n))).astype(np.float32)
    zf[:, 4, :2] = 0.0  # saturated frame zero
    return data, gdq, pdq, gain, rn, zf


def assert_close(ours, ref, what):
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, what
    nan_ok = np.isnan(ours) == np.isnan(ref)
    assert nan_ok.all(), f"{what}: NaN pattern differs at {np.argwhere(~nan_ok)[:5].tolist()}"
    good = ~np.isnan(ref)
    np.testing.assert_allclose(ours[good], ref[good], rtol=1e-5, atol=1e-12, err_msg=what)


def assert_products(res, image, integ):
    for ours, key in (
        (res.rate_sci, "slope"),
        (res.rate_err, "err"),
        (res.rate_var_poisson, "var_poisson"),
        (res.rate_var_rnoise, "var_rnoise"),
    ):
        assert_close(ours, image[key], f"rate {key}")
    np.testing.assert_array_equal(res.rate_dq, image["dq"], err_msg="rate dq")
    for ours, key in (
        (res.ints_sci, "slope"),
        (res.ints_err, "err"),
        (res.ints_var_poisson, "var_poisson"),
        (res.ints_var_rnoise, "var_rnoise"),
    ):
        assert_close(ours, integ[key], f"rateints {key}")
    np.testing.assert_array_equal(res.ints_dq, integ["dq"], err_msg="rateints dq")


@pytest.mark.parametrize(
    ("nints", "ngroups", "suppress", "use_zf"),
    [
        (2, 8, True, True),
        (2, 8, False, True),
        (2, 8, False, False),
        (1, 5, True, False),
        (3, 3, False, True),
        (2, 2, False, True),
        (2, 2, True, False),
        (3, 1, True, False),
        (2, 1, False, True),
    ],
)
def test_parity_with_stcal(nints, ngroups, suppress, use_zf):
    data, gdq, pdq, gain, rn, zf = random_ramps(nints, ngroups, seed=nints * 10 + ngroups)
    zf = zf if use_zf else None
    image, integ, _ = run_stcal(data, gdq, pdq, gain, rn, zf=zf, suppress=suppress)
    res = fit_ramps(
        data, gdq, pdq, gain, rn, frame_time=FT, group_time=GT, nframes=1, zeroframe=zf,
        suppress_one_group=suppress, **JWST3,
    )  # fmt: skip
    assert_products(res, image, integ)
    # the input covers the special cases it claims to
    assert np.isnan(res.rate_sci).any() and (res.rate_dq & SAT).any()
    if ngroups > 2:
        assert (res.rate_dq & JUMP).any()


def test_parity_optional_outputs_nframes_dark_current():
    data, gdq, pdq, gain, rn, zf = random_ramps(2, 9, seed=3)
    dark = np.full(pdq.shape, 0.05, np.float32)
    image, integ, opt = run_stcal(
        data, gdq, pdq, gain, rn, nframes=4, zf=zf, dark=dark, suppress=False, save_opt=True
    )
    res = fit_ramps(
        data, gdq, pdq, gain, rn, frame_time=FT, group_time=GT, nframes=4, zeroframe=zf, dark_current=dark,
        suppress_one_group=False, save_opt=True, **JWST3,
    )  # fmt: skip
    assert_products(res, image, integ)
    nseg = min(opt["slope"].shape[1], res.seg_slope.shape[1])
    assert not np.any(opt["slope"][:, nseg:]), "stcal found more segments than our bound"
    for key in ("slope", "sigslope", "yint", "sigyint", "weights", "var_poisson", "var_rnoise"):
        ours = getattr(res, "seg_" + key)[:, :nseg]
        ref = opt[key][:, :nseg]
        finite = np.isfinite(ref)
        assert_close(ours[finite], ref[finite], f"fitopt {key}")
    assert_close(res.pedestal, opt["pedestal"], "fitopt pedestal")
    ncr = opt["crmag"].shape[1]
    assert_close(res.crmag[:, :ncr], opt["crmag"], "fitopt crmag")
    assert not np.any(res.crmag[:, ncr:])


def test_parity_chargeloss_weighted_readnoise():
    data, gdq, pdq, gain, rn, _ = random_ramps(2, 8, seed=5)
    gdq &= ~np.uint8(SAT)
    rng = np.random.default_rng(1)
    start = rng.integers(2, 12, (2, 20, 20))
    for g in range(8):
        gdq[:, g][g >= start] |= CHARGELOSS | DNU
    image, integ, _ = run_stcal(data, gdq, pdq, gain, rn, suppress=True)
    res = fit_ramps(data, gdq, pdq, gain, rn, frame_time=FT, group_time=GT, nframes=1, **JWST3)
    assert_products(res, image, integ)


def test_parity_miri_leading_and_trailing_dnu_groups():
    data, gdq, pdq, gain, rn, _ = random_ramps(2, 8, seed=7)
    gdq[:, 0] |= DNU  # firstframe
    gdq[:, -1] |= DNU  # lastframe
    gdq[0, 1, 5, 5] |= JUMP  # a jump on the new first group is ignored
    image, integ, _ = run_stcal(data, gdq, pdq, gain, rn, name="MIRI")
    res = fit_ramps(
        data,
        gdq,
        pdq,
        gain,
        rn,
        frame_time=FT,
        group_time=GT,
        nframes=1,
        first_group=1,
        last_group=6,
        **JWST3,
    )
    assert_products(res, image, integ)


def ols(y, x):
    a = np.vstack([x, np.ones_like(x)]).T
    return np.linalg.lstsq(a, y, rcond=None)[0][0]


@pytest.mark.parametrize("jwst3", [False, True])
def test_noiseless_linear_ramp_recovers_slope_and_analytic_variances(jwst3):
    n, ngroups, nints = 6, 7, 2
    rate = np.linspace(0.0, 400.0, n * n).reshape(n, n)
    t = (np.arange(ngroups) + 1) * GT
    data = np.broadcast_to(500.0 + rate[None, None] * t[None, :, None, None], (nints, ngroups, n, n))
    data = data.astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gain = np.full((n, n), 2.0, np.float32)
    rn = np.full((n, n), 12.0, np.float32)
    pdq = np.zeros((n, n), np.uint32)
    res = fit_ramps(
        data, gdq, pdq, gain, rn, frame_time=FT, group_time=GT, nframes=1,
        median_per_integration=jwst3, weight_by_readnoise=jwst3,
    )  # fmt: skip
    np.testing.assert_allclose(res.rate_sci, rate, rtol=2e-6, atol=2e-5)
    np.testing.assert_allclose(res.ints_sci, np.broadcast_to(rate, (nints, n, n)), rtol=2e-6, atol=2e-5)
    # VAR_RNOISE = 12 R^2 / ((n^3 - n) tgroup^2), R = per-read noise = CDS noise / sqrt(2), per integration
    var_r_int = 12 * (12.0**2 / 2) / ((ngroups**3 - ngroups) * GT**2)
    np.testing.assert_allclose(res.ints_var_rnoise, var_r_int, rtol=1e-5)
    np.testing.assert_allclose(res.rate_var_rnoise, var_r_int / nints, rtol=1e-5)
    # VAR_POISSON = rate / (tgroup gain (n - 1)) per integration (0 for a zero rate)
    var_p_int = rate / (GT * 2.0 * (ngroups - 1))
    np.testing.assert_allclose(res.ints_var_poisson[0], var_p_int, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(res.rate_var_poisson, var_p_int / nints, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(res.rate_err, np.sqrt(var_p_int / nints + var_r_int / nints), rtol=1e-4)
    assert not res.rate_dq.any()


def test_seeds_combination_rules_against_numpy_reference():
    """Seeds rules: pooled median of clean first differences over all integrations; segments and
    integrations combined with inverse combined variances. Low signal keeps the OLS unweighted."""
    nints, ngroups, n = 3, 8, 4
    rng = np.random.default_rng(11)
    t = np.arange(ngroups) * GT
    rate_i = np.array([0.02, 0.05, 0.2])  # a different rate per integration: the median rules differ
    data = (
        100.0
        + rate_i[:, None, None, None] * t[None, :, None, None]
        + rng.normal(0, 0.5, (nints, ngroups, n, n))
    )
    data = data.astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[1, 4] = JUMP  # integration 1: two segments, groups 0-3 and 4-7 (starting on the jump group)
    data[1, 4:] += 50
    gain = np.full((n, n), 2.0, np.float32)
    rn_cds = np.full((n, n), 10.0, np.float32)
    pdq = np.zeros((n, n), np.uint32)
    res = fit_ramps(data, gdq, pdq, gain, rn_cds, frame_time=FT, group_time=GT, nframes=1)

    d = data.astype(np.float64)
    r_read = 10.0 / np.sqrt(2.0)
    for y in range(n):
        for x in range(n):
            diffs = []
            for i in range(nints):
                fd = np.diff(d[i, :, y, x]) / GT
                fd[4 - 1] = np.nan if i == 1 else fd[3]
                diffs.extend(fd[~np.isnan(fd)])
            med = max(np.median(diffs), 0.0)
            num = den = inv_r = inv_p = 0.0
            for i in range(nints):
                segs = [(0, 4), (4, 8)] if i == 1 else [(0, 8)]
                si_num = si_den = 0.0
                for a, b in segs:
                    m = b - a
                    slope = ols(d[i, a:b, y, x], np.arange(a, b, dtype=float)) / GT
                    vr = 12 * r_read**2 / ((m**3 - m) * GT**2)
                    vp = med / (GT * 2.0 * (m - 1))
                    ve = vr + vp
                    si_num += slope / ve
                    si_den += 1 / ve
                    inv_r += 1 / vr
                    inv_p += 1 / vp
                num += si_num
                den += si_den
                np.testing.assert_allclose(res.ints_sci[i, y, x], si_num / si_den, rtol=1e-5)
            np.testing.assert_allclose(res.rate_sci[y, x], num / den, rtol=1e-5)
            np.testing.assert_allclose(res.rate_var_rnoise[y, x], 1 / inv_r, rtol=1e-5)
            np.testing.assert_allclose(res.rate_var_poisson[y, x], 1 / inv_p, rtol=1e-5)


def test_statistical_truth():
    """Known rates, Poisson + read noise: (rate - true) / ERR is centred with unit spread."""
    n, ngroups, gain_v, rn_cds = 256, 10, 2.0, 10.0
    rng = np.random.default_rng(2024)
    true = rng.uniform(0.0, 1.0, (n, n))
    electrons = rng.poisson(true[None] * GT * gain_v, (ngroups, n, n)).cumsum(axis=0) / gain_v
    reads = electrons + rng.normal(0.0, rn_cds / np.sqrt(2.0), (ngroups, n, n)) + 1000.0
    data = reads[None].astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    res = fit_ramps(
        data, gdq, np.zeros((n, n), np.uint32), np.full((n, n), gain_v, np.float32),
        np.full((n, n), rn_cds, np.float32), frame_time=GT, group_time=GT, nframes=1,
    )  # fmt: skip
    pull = (res.rate_sci - true) / res.rate_err
    med = np.median(pull)
    spread = 1.4826 * np.median(np.abs(pull - med))
    assert abs(med) < 0.02
    assert abs(spread - 1.0) < 0.05


def test_bad_input_errors():
    data = np.zeros((1, 3, 4, 4), np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((4, 4), np.uint32)
    g = np.ones((4, 4), np.float32)
    with pytest.raises(ShapeMismatchError, match="gain"):
        fit_ramps(data, gdq, pdq, np.ones((3, 4), np.float32), g, frame_time=1.0, group_time=1.0, nframes=1)
    with pytest.raises(ShapeMismatchError, match="SCI"):
        fit_ramps(data[0], gdq, pdq, g, g, frame_time=1.0, group_time=1.0, nframes=1)
    with pytest.raises(ParameterError, match="timing"):
        fit_ramps(data, gdq, pdq, g, g, frame_time=1.0, group_time=0.0, nframes=1)


def test_special_cases_analytic():
    """First group only, ZEROFRAME, suppression, all saturated, bad gain: values by hand."""
    ngroups, nframes = 5, 4
    tframe = 2.0
    tgroup = 8.0
    data = np.zeros((1, ngroups, 1, 5), np.float32)
    data[0, :, :, :] = (100.0 + 40.0 * np.arange(ngroups))[:, None, None]
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1:, 0, 0] = SAT  # only the first group good
    gdq[0, :, 0, 1] = SAT  # all saturated, ZEROFRAME good
    gdq[0, :, 0, 2] = SAT  # all saturated, ZEROFRAME saturated (0)
    gain = np.full((1, 5), 2.0, np.float32)
    gain[0, 3] = np.nan  # bad gain
    zf = np.array([[[5.0, 30.0, 0.0, 5.0, 5.0]]], np.float32)
    pdq = np.zeros((1, 5), np.uint32)
    rn = np.full((1, 5), 10.0, np.float32)
    kw = {"frame_time": tframe, "group_time": tgroup, "nframes": nframes, "zeroframe": zf}
    res = fit_ramps(data, gdq, pdq, gain, rn, suppress_one_group=False, **kw)
    one_group_time = (nframes + 1) * tframe / 2
    assert res.rate_sci[0, 0] == pytest.approx(100.0 / one_group_time, rel=1e-6)
    assert res.rate_sci[0, 1] == pytest.approx(30.0 / tframe, rel=1e-6)
    assert res.rate_dq[0, 1] & SAT and not res.rate_dq[0, 1] & DNU
    assert np.isnan(res.rate_sci[0, 2]) and res.rate_dq[0, 2] & SAT and res.rate_dq[0, 2] & DNU
    assert res.rate_err[0, 2] == 0 and res.rate_var_poisson[0, 2] == 0
    assert (
        np.isnan(res.rate_sci[0, 3])
        and res.rate_dq[0, 3] & FLAGS["NO_GAIN_VALUE"]
        and res.rate_dq[0, 3] & DNU
    )
    assert res.rate_sci[0, 4] == pytest.approx(40.0 / tgroup, rel=1e-6)
    sup = fit_ramps(data, gdq, pdq, gain, rn, suppress_one_group=True, **kw)
    for x in (0, 1):  # suppressed: no single-group or ZEROFRAME slope
        assert np.isnan(sup.rate_sci[0, x]) and sup.rate_dq[0, x] & DNU
    assert sup.rate_sci[0, 4] == res.rate_sci[0, 4]


def test_median_matches_numpy():
    from jwst_dask.kernels.ramp_fit import _median

    rng = np.random.default_rng(0)
    for n in [*range(1, 30), 100]:
        for trial in range(20):
            values = rng.integers(0, 4, n).astype(float) if trial % 2 else rng.normal(size=n)
            assert _median(values.copy(), n) == np.median(values)
    assert np.isnan(_median(np.zeros(3), 0))
