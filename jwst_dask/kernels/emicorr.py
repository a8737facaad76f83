"""MIRI EMI correction kernels: pixel read times, the phased-amplitude wave, and its subtraction.

MIRI reads its four amplifiers at once: columns ``4q .. 4q+3`` of a row are sampled together, so
the detector clock gives one read time per (integration, group, row, quad column ``q``). In units
of 10 us pixel clocks, counted from the first pixel of the exposure (the sequential algorithm of
the seeds, "MIRI EMI Correction", as the official pipeline implements it)::

    frame   f = integration * ngroups + group
    t       = q * nsamples + (f * ny + row) * rowclocks + f * extra_rowclocks
              + integration * reset_clocks  (+ ref_pix_extra on the last quad of full-width data)
    phase   = frac(t / period_in_pixels),  period_in_pixels = 1 / (frequency * 10 us)

with ``extra_rowclocks = (1024 - ny) * 7`` (the non-ROI rows of a subarray frame) and
``reset_clocks = frameclocks`` only for the FASTR1 / SLOWR1 patterns (an extra reset frame between
integrations). The phases only depend on the global indices, so every tile computes its own.

Per frequency (the sequential algorithm):

1. :func:`clean_quads` (per tile, per pixel): subtract a crude linear ramp (fitted to groups
   ``1 .. ngroups-2``) and a self-superbias (their median), then average the four amplifier
   columns of each quad.
2. :func:`phased_wave` (one reduction over the phasing integrations): repair the bad reference
   quad columns 1 and 2, subtract each frame's median, bin by phase (``nbins`` bins, the
   sigma-clipped mean of each bin) and remove the wave's median.
3. :func:`noise_lut`: resample the wave to one value per pixel clock of a period, or align the
   reference wave to it (the cross-correlation peak) and optionally scale it (a linear fit).
4. :func:`subtract_noise` (per tile): subtract ``lut[int(phase * period)]`` from all four
   amplifier columns of each quad.

The joint algorithm (jwst 3.x, :func:`joint_sums`, :func:`joint_fit`, :func:`subtract_joint`) fits
the reference wave's phase and amplitude together with straight ramps on pixels of modest scatter;
the fit needs only per-phase sums of their reads. Its phases use the same clocks, counted from
the first read of each group (``row * rowclocks + q * nsamples``, no reference-pixel delay) plus
a per-group step of one frame time and the fitted offset per integration.

Pure numpy / numba / scipy on blocks: no dask, xarray, I/O or metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = [
    "Timing",
    "SUBARRAY_CLOCKS",
    "period_in_pixels",
    "default_nbins",
    "phasing_integrations",
    "quad_times",
    "quad_phases",
    "clean_quads",
    "clipped_mean",
    "phased_wave",
    "rebin",
    "noise_lut",
    "lut_size",
    "subtract_noise",
    "joint_phase_steps",
    "joint_quad_phase",
    "wave_function",
    "pixel_scatter",
    "joint_sums",
    "joint_fit",
    "subtract_joint",
]

#: Pixel clock (s): the EMI period is expressed in these.
PIXEL_TIME = 10.0e-6
#: Extra sample times of the right-hand reference pixel; the official code adds it as a uint64
#: together with 2**32 (a no-op for periods dividing 2**32, a phase shift otherwise): kept for parity.
_REF_PIX_EXTRA = 3 + 2**32
#: Row clocks and frame clocks of the MIRI readouts (used for on-the-fly frequencies, when no
#: reference file gives them).
SUBARRAY_CLOCKS: dict[str, tuple[int, int]] = {
    "SLITLESSPRISM": (28, 15904),
    "MASKLYOT": (90, 32400),
    "SUB64": (28, 8512),
    "SUB128": (44, 11904),
    "MASK1140": (82, 23968),
    "MASK1550": (82, 23968),
    "MASK1065": (82, 23968),
    "FULL_FAST": (271, 277504),
    "FULL_SLOW": (2333, 2388992),
    "BRIGHTSKY": (162, 86528),
    "SUB256": (96, 29952),
}


@dataclass(frozen=True)
class Timing:
    """The read-time model of one exposure (all in 10 us pixel clocks, integers).

    ``ref_pix_extra`` is added to the last quad column of every row when the data reach the
    right-hand reference pixels (``xsize / 4 + xstart - 1 == 258``).
    """

    ngroups: int
    ny: int
    nx4: int
    nsamples: int
    rowclocks: int
    extra_rowclocks: int
    reset_clocks: int
    ref_pix_extra: int

    @classmethod
    def for_exposure(
        cls,
        ngroups: int,
        ny: int,
        nx: int,
        nsamples: int,
        rowclocks: int,
        frameclocks: int,
        readpatt: str,
        xstart: int,
        xsize: int,
    ) -> Timing:
        """The timing of an exposure from its shape, clocks and readout keywords."""
        colstop = int(xsize / 4 + xstart - 1)
        return cls(
            ngroups=int(ngroups),
            ny=int(ny),
            nx4=int(nx) // 4,
            nsamples=int(nsamples),
            rowclocks=int(rowclocks),
            extra_rowclocks=int((1024 - int(ny)) * 7),
            reset_clocks=int(frameclocks) if str(readpatt).upper() in ("FASTR1", "SLOWR1") else 0,
            ref_pix_extra=_REF_PIX_EXTRA if colstop == 258 else 0,
        )

    def as_tuple(self) -> tuple[int, ...]:
        """The fields in the order :func:`subtract_noise`'s numba loop takes them."""
        return (
            self.ngroups,
            self.ny,
            self.nx4,
            self.nsamples,
            self.rowclocks,
            self.extra_rowclocks,
            self.reset_clocks,
            self.ref_pix_extra,
        )


def period_in_pixels(frequency: float) -> float:
    """EMI period in 10 us pixel clocks (390.625 Hz -> 256.0)."""
    return (1.0 / float(frequency)) / PIXEL_TIME


def default_nbins(period: float, nbins: int | None) -> int:
    """Bins of one phased wave: ``nbins`` or half the period in pixels, at most 500."""
    n = int(period / 2.0) if nbins is None else int(nbins)
    return 500 if n > 501 else n


def phasing_integrations(
    nints: int,
    ngroups: int,
    period: float,
    frameclocks: int,
    nints_to_phase: int | None,
    use_n_cycles: int | None,
) -> int:
    """How many leading integrations build the phased wave: all of them when both parameters
    are None; enough for ``use_n_cycles`` periods when ``nints_to_phase`` is None; else
    ``nints_to_phase`` (at most ``nints``)."""
    if nints_to_phase is None and use_n_cycles is None:
        return int(nints)
    if nints_to_phase is None:
        return max(1, min(int(nints), int(np.ceil((use_n_cycles * period) / (frameclocks * ngroups)))))
    return max(1, min(int(nints), int(nints_to_phase)))


def quad_times(ints: np.ndarray, timing: Timing) -> np.ndarray:
    """Read times (uint64 pixel clocks) of every quad column, shape (len(ints), ngroups, ny, nx4)."""
    t = timing
    ints = np.asarray(ints, dtype=np.uint64)[:, None, None, None]
    frame = ints * np.uint64(t.ngroups) + np.arange(t.ngroups, dtype=np.uint64)[None, :, None, None]
    rows = np.arange(t.ny, dtype=np.uint64)[None, None, :, None]
    start = (
        (frame * np.uint64(t.ny) + rows) * np.uint64(t.rowclocks)
        + frame * np.uint64(t.extra_rowclocks)
        + ints * np.uint64(t.reset_clocks)
    )
    quad = np.arange(t.nx4, dtype=np.uint64) * np.uint64(t.nsamples)
    if t.ref_pix_extra:
        quad[-1] += np.uint64(t.ref_pix_extra)
    return start + quad[None, None, None, :]


def quad_phases(ints: np.ndarray, timing: Timing, period: float) -> np.ndarray:
    """EMI phase in [0, 1) of every quad column read, shape (len(ints), ngroups, ny, nx4)."""
    x = quad_times(ints, timing) / period
    return x - np.floor(x)


def clean_quads(block: np.ndarray) -> np.ndarray:
    """Quad-averaged, slope- and bias-subtracted data of a tile (float32, nints, ngroups, ny, nx/4).

    Per pixel and integration: a least-squares line through groups ``1 .. ngroups-2`` gives a
    slope, ``slope * group`` is subtracted from every group; the median of groups
    ``1 .. ngroups-2`` of the result (their minimum when there are at most two) is the
    self-superbias, subtracted too. Then the four amplifier columns of each quad are averaged.
    The tile must start on a quad boundary and hold whole quads. Float32 intermediates, as the
    data's own dtype.
    """
    ngroups, nx = block.shape[1], block.shape[3]
    if nx % 4:
        raise ValueError(f"clean_quads: tile width {nx} is not a multiple of 4")
    inner = block[:, 1 : ngroups - 1].astype(np.float64)
    n = inner.shape[1]
    tt = np.arange(n, dtype=np.float64)
    sx, sxx = tt.sum(), (tt**2).sum()
    sy = inner.sum(axis=1)
    sxy = np.tensordot(tt, inner, axes=(0, 1)) if n else np.zeros_like(sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    g = np.arange(ngroups, dtype=np.float64)[None, :, None, None]
    data = (block - slope[:, None] * g).astype(np.float32)
    mid = data[:, 1 : ngroups - 1]
    with np.errstate(all="ignore"):
        bias = np.nanmin(mid, axis=1) if mid.shape[1] <= 2 else np.nanmedian(mid, axis=1)
    data = data - bias[:, None]
    return (data[..., 0::4] + data[..., 1::4] + data[..., 2::4] + data[..., 3::4]) / np.float32(4.0)


def clipped_mean(values: np.ndarray, sigma: float = 3.0, maxiters: int = 5) -> float:
    """Mean of the finite values inside the final bounds of an iterative clip at ``sigma``
    standard deviations around the median (at most ``maxiters`` passes, stopping when a pass
    removes nothing); NaN when nothing is left. The same rule as astropy's
    ``sigma_clipped_stats`` with its defaults."""
    good = values[np.isfinite(values)]
    if good.size == 0:
        return float("nan")
    keep, lo, hi = good, -np.inf, np.inf
    for _ in range(maxiters):
        cen, std = np.median(keep), np.std(keep)
        lo, hi = cen - std * sigma, cen + std * sigma
        new = keep[(keep >= lo) & (keep <= hi)]
        changed = keep.size - new.size
        keep = new
        if changed == 0 or keep.size == 0:
            break
    final = good[(good >= lo) & (good <= hi)]
    return float(np.mean(final)) if final.size else float("nan")


def phased_wave(quads: np.ndarray, phases: np.ndarray, nbins: int) -> np.ndarray:
    """The binned phased-amplitude wave (float64, ``nbins``) of the phasing integrations.

    ``quads``: :func:`clean_quads` of the whole frame, (nints, ngroups, ny, nx4) float32;
    ``phases``: :func:`quad_phases` of the same reads. Quad columns 1 and 2 (a bad reference
    column) are replaced by the mean of columns 0 and 3, each frame's median is subtracted, and
    bin ``b`` takes the reads with phase in ``(b / nbins, (b + 1) / nbins]``: its value is their
    3-sigma-clipped mean. The wave's median is subtracted.
    """
    dd = np.array(quads, dtype=np.float32, copy=True)
    if dd.shape[-1] > 3:
        fix = (dd[..., 0] + dd[..., 3]) / np.float32(2)
        dd[..., 1] = fix
        dd[..., 2] = fix
    nints, ngroups = dd.shape[:2]
    flat = np.empty(dd.shape, dtype=np.float64)
    for i in range(nints):
        for g in range(ngroups):
            flat[i, g] = dd[i, g] - np.median(dd[i, g])
    edges = np.array([b / nbins for b in range(nbins + 1)])
    which = np.searchsorted(edges, phases.ravel(), side="left") - 1  # edges[b] < p <= edges[b+1]
    values = flat.ravel()
    order = np.argsort(which, kind="stable")
    which, values = which[order], values[order]
    bounds = np.searchsorted(which, np.arange(nbins + 1), side="left")
    pa = np.array([clipped_mean(values[bounds[b] : bounds[b + 1]]) for b in range(nbins)])
    return pa - np.median(pa)


def _rebin_index(old: int, new: float) -> np.ndarray:
    """Nearest-lower source index of each element when resampling ``old`` samples to ``new``
    (IDL ``congrid`` without interpolation; ``new`` may be fractional)."""
    step = float(old) / new
    size = math.ceil(old / step)
    return (np.arange(size) * step).astype(int)


def rebin(arr: np.ndarray, new: float) -> np.ndarray:
    """``arr`` (1-D) resampled to ``new`` elements (rounded up) by nearest-lower lookup."""
    return np.asarray(arr)[_rebin_index(len(arr), new)]


def lut_size(nbins: int, period: float, ref_size: int | None) -> int:
    """Length of the noise look-up table :func:`noise_lut` returns."""
    return len(_rebin_index(ref_size if ref_size else nbins, period))


def noise_lut(
    pa: np.ndarray, period: float, reference_wave: np.ndarray | None = None, scale_reference: bool = True
) -> np.ndarray:
    """The noise per pixel clock of one period (float64): the phased wave ``pa`` resampled, or,
    given ``reference_wave``, that wave rolled to the shift of highest correlation with ``pa``
    (resampled to the reference's length) and, when ``scale_reference``, multiplied by the slope
    of a linear fit of ``pa`` against it. Non-finite entries become 0; a wave with no finite
    value gives an all-zero table (nothing subtracted)."""
    lut = rebin(np.asarray(pa, dtype=np.float64), period)
    if reference_wave is not None:
        ref = np.asarray(reference_wave)
        if not np.all(np.isfinite(pa)):
            return np.zeros(lut_size(len(pa), period, ref.size))
        resampled = rebin(pa, ref.size)
        cc = np.empty(ref.size)
        with np.errstate(all="ignore"):
            for i in range(ref.size):
                cc[i] = np.corrcoef(np.roll(ref, i), resampled)[0, 1]
        shift = int(np.argmax(cc)) if np.any(np.isfinite(cc)) else 0
        lut_ref = rebin(np.roll(ref, shift), period)
        if scale_reference:
            slope = np.polyfit(lut_ref.astype(np.float64), lut, 1)[0]
            lut_ref = lut_ref * slope
        lut = np.asarray(lut_ref, dtype=np.float64)
    out = np.array(lut, dtype=np.float64)
    out[~np.isfinite(out)] = 0.0
    return out


@njit(cache=True, nogil=True)
def _subtract(block, gi, gx, y0, lut, period, ngroups, ny, nx4, nsamples, rowcl, extra, reset, refx):
    nints, ng, nyb, nxb = block.shape
    out = np.empty(block.shape, dtype=np.float32)
    nlut = lut.shape[0]
    for a in range(nints):
        i = gi[a]
        for g in range(ng):
            frame = i * ngroups + g
            for yy in range(nyb):
                start = (frame * ny + y0 + yy) * rowcl + frame * extra + i * reset
                for xx in range(nxb):
                    q = gx[xx] // 4
                    t = start + q * nsamples
                    if q == nx4 - 1:
                        t += refx
                    x = np.float64(t) / period
                    k = int((x - np.floor(x)) * period)
                    noise = lut[k] if 0 <= k < nlut else 0.0
                    out[a, g, yy, xx] = np.float32(np.float64(block[a, g, yy, xx]) - noise)
    return out


def subtract_noise(
    block: np.ndarray, i0: int, y0: int, x0: int, lut: np.ndarray, period: float, timing: Timing
) -> np.ndarray:
    """``block`` (float32, nints, ngroups, ny, nx; its first pixel at integration ``i0``, row
    ``y0``, column ``x0`` of the data) minus ``lut[int(phase * period)]`` at each pixel's read."""
    nints, _, _, nx = block.shape
    gi = np.arange(i0, i0 + nints, dtype=np.int64)
    gx = np.arange(x0, x0 + nx, dtype=np.int64)
    return _subtract(
        np.ascontiguousarray(block, dtype=np.float32),
        gi,
        gx,
        np.int64(y0),
        np.ascontiguousarray(lut, dtype=np.float64),
        float(period),
        *[np.int64(v) for v in timing.as_tuple()],
    )


# ---------------------------------------------------------------------------------------------
# The joint algorithm (jwst 3.x): fit ramps and the reference wave's phase and amplitude at once
# on pixels with modest scatter; the fit needs only per-phase sums of the reads (a reduction).
# ---------------------------------------------------------------------------------------------
def joint_phase_steps(ny: int, ngroups: int, rowclocks: int, reset_clocks: int, period: float):
    """(phase step between groups, phase step between integrations) of the joint model, whose
    frame time is ``ny * rowclocks + (1024 - ny) * 7`` pixel clocks."""
    frametime = ny * rowclocks + (1024.0 - ny) * (4 + 3.0)
    dphase = (frametime / period) % 1
    return dphase, dphase * ngroups + reset_clocks / period


def joint_quad_phase(y0: int, ny: int, q0: int, nq: int, nsamples: int, rowclocks: int, period: float):
    """Phase (ny, nq) of the first group's read of rows ``y0..`` and quad columns ``q0..``."""
    t = np.arange(y0, y0 + ny)[:, None] * rowclocks + np.arange(q0, q0 + nq)[None, :] * nsamples
    return (t.astype(np.float64) / period) % 1


def wave_function(refwave: np.ndarray):
    """The reference wave as a periodic cubic-spline function of phase in [0, 1)."""
    from scipy import interpolate

    ref = np.asarray(refwave, dtype=np.float64)
    n = ref.size
    extended = np.concatenate([ref[-1:], ref, ref[:1]])
    return interpolate.interp1d((np.arange(n + 2) - 0.5) / n, extended, kind="cubic")


def pixel_scatter(block: np.ndarray) -> np.ndarray:
    """Standard deviation of each pixel's reads along the groups (nints, ny, nx)."""
    return np.std(block, axis=1)


def joint_sums(
    block: np.ndarray,
    pdq: np.ndarray,
    y0: int,
    x0: int,
    std_limit: float,
    nphases: int,
    nsamples: int,
    rowclocks: int,
    period: float,
) -> np.ndarray:
    """Per-phase sums of the usable reads of a tile: (nints, nphases, ngroups + 1), the last
    plane holding the number of pixels summed. Usable: scatter below ``std_limit`` and PIXELDQ 0;
    quad columns 1 and 2 (a bad reference column) are left out."""
    nints, ngroups, ny, nx = block.shape
    gx = np.arange(x0, x0 + nx)
    q = gx // 4
    phase = joint_quad_phase(y0, ny, 0, int(q.max()) + 1, nsamples, rowclocks, period)[:, q]
    idx = (phase * nphases).astype(np.int64)
    ok = (pixel_scatter(block) < std_limit) & (pdq == 0)[None]
    ok &= ~np.isin(q, (1, 2))[None, None, :]
    out = np.zeros((nints, nphases, ngroups + 1))
    flat_idx = idx.ravel()
    for i in range(nints):
        w = ok[i].ravel()
        out[i, :, ngroups] = np.bincount(flat_idx, weights=w.astype(np.float64), minlength=nphases)
        for g in range(ngroups):
            vals = (block[i, g] * ok[i]).ravel().astype(np.float64)
            out[i, :, g] = np.bincount(flat_idx, weights=vals, minlength=nphases)
    return out


def _best_phase(phases: np.ndarray, chisq: np.ndarray) -> float:
    if np.all(~np.isfinite(chisq)):
        return float(phases[0])
    ib = int(np.nanargmin(chisq))
    ip = ib + 1 if ib + 1 < len(chisq) else 0
    trio = [chisq[ib - 1], chisq[ib], chisq[ip]]
    if np.any(~np.isfinite(trio)) or np.nanstd(trio) == 0:
        return float(phases[ib])
    a, b, _ = np.polyfit([phases[ib - 1], phases[ib], phases[ip]], trio, 2)
    return float(-b / (2 * a))


def joint_fit(
    sums: np.ndarray,
    refwave: np.ndarray,
    dphase: float,
    dphase_frame: float,
    fit_ints_separately: bool = False,
    nphases_opt: int = 500,
) -> np.ndarray:
    """Best phase and amplitude of the reference wave per integration, (nints, 2), from
    :func:`joint_sums`: for each trial phase offset the amplitude minimising the chi squared of
    straight-line fits to the wave-subtracted ramps is analytic; the best offset is the vertex of
    a parabola through the lowest chi squared and its neighbours. One fit for all integrations
    (offset by ``dphase_frame`` each), or one per integration."""
    all_y, all_n = sums[..., :-1], sums[..., -1]
    nints, nphases, ngroups = all_y.shape
    func = wave_function(refwave)
    ext = (np.arange(nphases + 2) - 0.5) / nphases
    template = (ext[1:-1, None] + np.arange(ngroups) * dphase) % 1
    tt = np.arange(ngroups, dtype=np.float64)
    s_tt, s_t = np.sum(tt**2), np.sum(tt)
    delta = ngroups * s_tt - s_t**2
    s_y, s_ty = all_y.sum(axis=2), np.sum(all_y * tt, axis=2)
    plist = np.arange(nphases_opt) * 1.0 / nphases_opt
    z = np.stack([func((template.T + p) % 1).T for p in plist])  # (nopt, nphases, ngroups)
    s_z, s_tz, s_zz = z.sum(axis=2), np.sum(tt * z, axis=2), np.sum(z**2, axis=2)

    def chisq_amp(ints, phases):
        chi, amp = [], []
        for p in phases:
            a_ = b_ = 0.0
            for i in ints:
                k = int(np.argmin(np.abs((plist - p - dphase_frame * i) % 1)))
                a_ += np.sum(
                    all_n[i]
                    / delta
                    * (
                        -s_tt * s_z[k] ** 2
                        + 2 * s_t * s_z[k] * s_tz[k]
                        - ngroups * s_tz[k] ** 2
                        + s_zz[k] * delta
                    )
                )
                b_ += (2 / delta) * np.sum(
                    s_tt * s_z[k] * s_y[i]
                    - s_t * s_tz[k] * s_y[i]
                    - s_t * s_z[k] * s_ty[i]
                    + ngroups * s_tz[k] * s_ty[i]
                )
                b_ -= 2 * np.sum(np.sum(z[k] * all_y[i], axis=1))
            if np.isclose(a_, 0, atol=1e-8) or not np.isfinite(a_) or not np.isfinite(b_):
                chi.append(np.nan)
                amp.append(0.0)
            else:
                c = -b_ / (2 * a_)
                chi.append(a_ * c**2 + b_ * c)
                amp.append(c)
        return np.array(chi), amp

    out = np.zeros((nints, 2))
    if fit_ints_separately:
        for i in range(nints):
            best = _best_phase(plist, chisq_amp([i], plist)[0])
            out[i] = best + i * dphase_frame, chisq_amp([i], [best])[1][0]
    else:
        best = _best_phase(plist, chisq_amp(range(nints), plist)[0])
        amp = chisq_amp(range(nints), [best])[1][0]
        out[:, 0] = (best + np.arange(nints) * dphase_frame) % 1
        out[:, 1] = amp
    return out


def subtract_joint(
    block: np.ndarray,
    i0: int,
    y0: int,
    x0: int,
    refwave: np.ndarray,
    fit: np.ndarray,
    dphase: float,
    nsamples: int,
    rowclocks: int,
    period: float,
) -> np.ndarray:
    """``block`` minus the fitted wave: amplitude ``fit[i, 1]`` times the reference wave at
    phase ``phase(row, quad) + group * dphase + fit[i, 0]``, for integrations ``i0..``."""
    nints, ngroups, ny, nx = block.shape
    func = wave_function(refwave)
    q = np.arange(x0, x0 + nx) // 4
    phase = joint_quad_phase(y0, ny, 0, int(q.max()) + 1, nsamples, rowclocks, period)
    out = np.empty(block.shape, dtype=np.float32)
    for a in range(nints):
        p0, amp = fit[i0 + a]
        for g in range(ngroups):
            emi = func((phase + dphase * g + p0) % 1)[:, q]
            out[a, g] = block[a, g] - amp * emi
    return out
