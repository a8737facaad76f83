"""refpix against a plain-numpy reference written here (explicit amplifier/parity loops with
scipy.stats.sigmaclip, the side running median), on small subarrays and a MIRI frame."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from jwst_dask.dq import FLAGS
from jwst_dask.steps.ramp_model import to_ramp
from jwst_dask.steps.refpix import RefPixStep

DNU = FLAGS["DO_NOT_USE"]
REF = FLAGS["REFERENCE_PIXEL"]


def _clip_mean(values, dq):
    good = values[(dq & DNU) == 0]
    if good.size == 0:
        return None
    if np.std(good, dtype=np.float64) == 0:
        return float(good.mean(dtype=np.float64))
    return float(stats.sigmaclip(good, 3.0, 3.0)[0].mean())


def _avg(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return 0.5 * (a + b)


def _side_median(strip, good, length):
    half = length // 2
    n = strip.shape[0]
    out = np.full(n, np.nan)
    for r in range(n):
        rows = [r + k for k in range(-half, half + 1)]
        rows = [-q if q < 0 else (2 * (n - 1) - q if q >= n else q) for q in rows]  # reflect, no edge repeat
        w = strip[rows][good[rows]]
        if w.size:
            out[r] = np.median(w)
    return out


def nir_reference(sci, pdq, y0, x0, odd_even=True, use_side=True, length=11, gain=1.0):
    """Embed in a 2048x2048 frame (outside: DO_NOT_USE), correct group by group, cut back."""
    ny, nx = sci.shape[-2:]
    full_dq = np.full((2048, 2048), DNU | REF, np.uint32)
    full_dq[y0 : y0 + ny, x0 : x0 + nx] = pdq
    out = np.empty(sci.shape, np.float64)
    for i in range(sci.shape[0]):
        for g in range(sci.shape[1]):
            f = np.zeros((2048, 2048), np.float64)
            f[y0 : y0 + ny, x0 : x0 + nx] = sci[i, g]
            for amp in range(4):
                cols = np.arange(amp * 512, amp * 512 + 512)
                sig = {}
                parities = (0, 1) if odd_even else (None,)
                for p in parities:
                    c = cols if p is None else cols[cols % 2 == p]
                    top = _clip_mean(f[2044:2048][:, c].astype(np.float32), full_dq[2044:2048][:, c])
                    bot = _clip_mean(f[0:4][:, c].astype(np.float32), full_dq[0:4][:, c])
                    sig[p] = _avg(top, bot)
                if any(v is None for v in sig.values()):
                    continue
                for p, v in sig.items():
                    c = cols if p is None else cols[cols % 2 == p]
                    f[:, c] -= v
            if use_side:
                meds = []
                for c0 in (0, 2044):
                    strip = f[:, c0 : c0 + 4]
                    good = (full_dq[:, c0 : c0 + 4] & DNU) == 0
                    meds.append(_side_median(strip, good, length))
                a, b = meds
                comb = np.where(
                    np.isnan(a), np.where(np.isnan(b), 0, b), np.where(np.isnan(b), a, (a + b) / 2)
                )
                f -= gain * comb[:, None]
            out[i, g] = f[y0 : y0 + ny, x0 : x0 + nx]
    return out


def _dataset(sci, pdq, *, inst="NIRCAM", xstart=1, ystart=1, noutputs=4, tile=16, zeroframe=None, fast=1):
    nints, ngroups = sci.shape[:2]
    meta = {
        "instrument": {"name": inst, "detector": "NRCA1" if inst == "NIRCAM" else "MIRIMAGE"},
        "subarray": {
            "xstart": xstart,
            "ystart": ystart,
            "xsize": sci.shape[3],
            "ysize": sci.shape[2],
            "fastaxis": fast,
        },
        "exposure": {"noutputs": noutputs, "nints": nints, "ngroups": ngroups},
    }
    data = {
        "SCI": (("integration", "group", "y", "x"), da.from_array(sci, chunks=(nints, ngroups, tile, tile))),
        "PIXELDQ": (("y", "x"), pdq),
    }
    if zeroframe is not None:
        data["ZEROFRAME"] = (("integration", "y", "x"), zeroframe)
    return to_ramp(xr.Dataset(data, attrs={"meta": meta}))


def _signal(rng, shape):
    sci = rng.normal(1000, 5, shape) + rng.normal(0, 30, (*shape[:2], 1, 1))
    sci[..., ::2] += 7.0  # an even/odd column offset
    sci += np.linspace(0, 20, shape[2])[:, None]  # a slow drift along rows
    return sci.astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_nir_stripe_bottom_and_sides_matches_reference(rng):
    # A 2048-wide stripe at the bottom: bottom reference rows and both side columns present.
    sci = _signal(rng, (2, 2, 40, 2048))
    pdq = np.zeros((40, 2048), np.uint32)
    pdq[2, 700] = DNU
    sci[:, :, 2, 700] = 1e6  # a DO_NOT_USE reference pixel must not count
    out = RefPixStep().run(_dataset(sci, pdq, tile=256))
    assert out.attrs["meta"]["cal_step"]["refpix"] == "COMPLETE"
    np.testing.assert_allclose(out.SCI.values, nir_reference(sci, pdq, 0, 0), atol=2e-3, rtol=1e-7)


def test_nir_corner_top_right_and_tile_independence(rng):
    sci = _signal(rng, (1, 3, 48, 48))
    pdq = np.zeros((48, 48), np.uint32)
    ds16 = _dataset(sci, pdq, xstart=2001, ystart=2001, tile=16)
    ds48 = _dataset(sci, pdq, xstart=2001, ystart=2001, tile=48)
    a = RefPixStep().run(ds16).SCI.values
    b = RefPixStep().run(ds48).SCI.values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, nir_reference(sci, pdq, 2000, 2000), atol=2e-3, rtol=1e-7)
    # odd_even_columns=False and no side pixels
    c = RefPixStep(odd_even_columns=False, use_side_ref_pixels=False).run(ds16).SCI.values
    np.testing.assert_allclose(
        c, nir_reference(sci, pdq, 2000, 2000, odd_even=False, use_side=False), atol=2e-3
    )


def test_nir_one_output_subarray_uses_flagged_pixels(rng):
    sci = _signal(rng, (2, 2, 32, 32))
    pdq = np.zeros((32, 32), np.uint32)
    pdq[:4, :] = REF
    pdq[1, 3] |= DNU
    sci[:, :, 1, 3] = 1e6
    out = RefPixStep().run(_dataset(sci, pdq, xstart=101, ystart=1, noutputs=1, tile=8)).SCI.values
    exp = np.empty(sci.shape)
    gx = np.arange(100, 132)
    for i in range(2):
        for g in range(2):
            plane = sci[i, g]
            corr = plane.astype(np.float64).copy()
            for p in (0, 1):
                sel = (pdq == REF) & ((gx % 2 == p)[None, :])
                corr[:, gx % 2 == p] -= _clip_mean(plane[sel], pdq[sel])
            exp[i, g] = corr
    np.testing.assert_allclose(out, exp, atol=2e-3, rtol=1e-7)


def test_nir_zeroframe_and_skips(rng):
    sci = _signal(rng, (1, 2, 40, 2048))
    pdq = np.zeros((40, 2048), np.uint32)
    zf = sci[:, 0].copy()
    zf[0, 10, 10] = 0.0
    out = RefPixStep(use_side_ref_pixels=False).run(_dataset(sci, pdq, tile=256, zeroframe=zf))
    exp = nir_reference(zf[:, None], pdq, 0, 0, use_side=False)[:, 0]
    exp[0, 10, 10] = 0.0  # zero stays zero
    np.testing.assert_allclose(out.ZEROFRAME.values, exp, atol=2e-3, rtol=1e-7)
    outside = RefPixStep().run(_dataset(sci[:, :, :8, :8], pdq[:8, :8], xstart=2045, ystart=1))
    assert outside.attrs["meta"]["cal_step"]["refpix"] == "SKIPPED"
    miri_sub = RefPixStep().run(_dataset(sci[:, :, :8, :8], pdq[:8, :8], inst="MIRI"))
    assert miri_sub.attrs["meta"]["cal_step"]["refpix"] == "SKIPPED"


def test_miri_full_frame_matches_reference(rng):
    sci = (rng.normal(500, 3, (1, 3, 1024, 1032)) + np.arange(3)[None, :, None, None] * 50).astype(np.float32)
    sci[..., 0::4] += 11.0  # amplifier offsets
    sci[:, :, 1::2, :] += 4.0  # row parity offset
    pdq = np.zeros((1024, 1032), np.uint32)
    pdq[10, 1] = DNU
    sci[:, 1:, 10, 1] = 1e6
    out = RefPixStep().run(_dataset(sci, pdq, inst="MIRI", tile=256)).SCI.values
    exp = np.empty(sci.shape, np.float64)
    first = sci[:, 0].astype(np.float64)
    for i in range(sci.shape[0]):
        exp[i, 0] = sci[i, 0]
        for g in range(1, sci.shape[1]):
            d = (sci[i, g] - first[i]).astype(np.float32).astype(np.float64)
            for amp in range(4):
                for par in (0, 1):
                    left = _clip_mean(d[par::2, amp].astype(np.float32), pdq[par::2, amp])
                    right = _clip_mean(d[par::2, 1028 + amp].astype(np.float32), pdq[par::2, 1028 + amp])
                    d[par::2, amp::4] -= 0.5 * (left + right)
            exp[i, g] = d + first[i]
    np.testing.assert_allclose(out, exp, atol=2e-3, rtol=1e-7)


def test_nir_subarray_without_reference_pixels_is_unchanged(rng):
    # No reference rows or columns inside: no correction at all, for every integration and group.
    sci = _signal(rng, (3, 4, 24, 24))
    pdq = np.zeros((24, 24), np.uint32)
    out = RefPixStep().run(_dataset(sci, pdq, xstart=1001, ystart=1001, tile=8))
    assert out.attrs["meta"]["cal_step"]["refpix"] == "COMPLETE"
    np.testing.assert_array_equal(out.SCI.values, sci)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmaclip_matches_scipy_to_the_bit(dtype):
    """The kernel's sigmaclip keeps exactly the values scipy.stats.sigmaclip keeps, in the same
    dtype, so the clipped means are identical (heavy tails, outliers, a few values, ties)."""
    from jwst_dask.kernels.refpix import sigmaclip

    rng = np.random.default_rng(7)
    cases = [rng.standard_t(2, size=n).astype(dtype) * 50 + 1e4 for n in (3, 17, 512, 4096)]
    cases.append(np.concatenate([rng.normal(0, 1, 1000), [40.0, -35.0, 1e6]]).astype(dtype))
    cases.append(np.array([1.0, 1.0, 1.0, 2.0], dtype))
    cases.append(rng.integers(0, 4, 300).astype(dtype))
    for values in cases:
        ours = sigmaclip(values, 3.0, 2.5)
        theirs = stats.sigmaclip(values, 3.0, 2.5)[0]
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
        assert ours.mean() == theirs.mean()
    assert sigmaclip(cases[4], 3.0, 3.0).size < cases[4].size - 2  # the outliers go
