"""Large cosmic-ray events: NIR snowballs and MIRI showers (the jump step's extended flagging).

Both work on whole frames of one integration, group by group, because an event may span many
tiles (up to ``max_extended_radius`` pixels) and the snowball edge rule uses the distance to the
detector edge:

* snowballs (:func:`flag_snowballs`): connected JUMP_DET regions of at least ``min_jump_area``
  pixels are fitted with ellipses (second moments of the region); a region is a snowball when a
  newly saturated core (in this group or the next) lies inside it, or when it is within
  ``edge_size`` pixels of the edge (its core may be off the detector). The ellipse is expanded by
  ``expand_factor`` and flagged JUMP_DET (not over saturated pixels). Saturated cores wider than
  ``min_sat_radius_extend`` are grown by ``sat_expand`` and flagged SATURATED in this and later
  groups; optionally the core is flagged JUMP_DET in the first groups of the next integration.
* showers (:func:`flag_showers`): the first-difference signal-to-noise of each group (flagged
  pixels masked) is smoothed with a ring kernel; regions above ``extend_snr_threshold`` of at
  least ``extend_min_area`` pixels get an expanded ellipse flagged JUMP_DET for that group and
  the groups within ``time_masked_after_shower``; pixels whose mean rate changes by more than
  ``max_shower_amplitude`` get their flags back.

Labelling, region moments and ellipse rasterising use scikit-image, as the reference
implementation does; parity is best-effort (see docs/differences.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["LargeEventParams", "find_ellipses", "flag_snowballs", "flag_showers", "flag_showers_block"]

_DNU = FLAGS["DO_NOT_USE"]
_SAT = FLAGS["SATURATED"]
_JUMP = FLAGS["JUMP_DET"]
_REF = FLAGS["REFERENCE_PIXEL"]

Ellipse = tuple[tuple[float, float], tuple[float, float], float]


@dataclass(frozen=True)
class LargeEventParams:
    """Snowball and shower parameters, in the units the algorithms use (widths are full axes)."""

    min_jump_area: float = 5.0
    min_sat_area: float = 1.0
    expand_factor: float = 2.0
    sat_required_snowball: bool = True
    min_sat_radius_extend: float = 2.5
    sat_expand: float = 4.0  # pixels added to the core's axes (twice the step's sat_expand)
    edge_size: int = 25
    max_extended_width: float = 400.0  # twice the step's max_extended_radius
    mask_persist_next_int: bool = True
    persist_groups: int = 25
    extend_snr_threshold: float = 1.2
    extend_min_area: int = 90
    extend_inner_radius: float = 1.0
    extend_outer_radius: float = 2.6
    extend_ellipse_expand_ratio: float = 1.1
    groups_masked_after_shower: int = 5
    max_shower_amplitude: float = 6.0  # per group
    minimum_sigclip_groups: int = 100
    nframes: int = 1

    @classmethod
    def from_step(cls, step, group_time: float | None, nframes: int) -> LargeEventParams:
        """From a JumpStep's parameters; times become group counts with ``group_time`` (s)."""
        gt = group_time or 1.0
        return cls(
            min_jump_area=float(step.min_jump_area),
            min_sat_area=float(step.min_sat_area),
            expand_factor=float(step.expand_factor),
            sat_required_snowball=bool(step.sat_required_snowball),
            min_sat_radius_extend=float(step.min_sat_radius_extend),
            sat_expand=float(step.sat_expand * 2),
            edge_size=int(step.edge_size),
            max_extended_width=float(step.max_extended_radius * 2),
            mask_persist_next_int=bool(step.mask_snowball_core_next_int),
            persist_groups=int(step.snowball_time_masked_next_int // gt),
            extend_snr_threshold=float(step.extend_snr_threshold),
            extend_min_area=int(step.extend_min_area),
            extend_inner_radius=float(step.extend_inner_radius),
            extend_outer_radius=float(step.extend_outer_radius),
            extend_ellipse_expand_ratio=float(step.extend_ellipse_expand_ratio),
            groups_masked_after_shower=int(step.time_masked_after_shower // gt),
            max_shower_amplitude=float(step.max_shower_amplitude) * gt,
            minimum_sigclip_groups=int(step.minimum_sigclip_groups),
            nframes=int(nframes),
        )


def find_ellipses(mask: np.ndarray, min_area: float) -> list[Ellipse]:
    """Ellipses of the 8-connected regions of ``mask`` whose filled area is >= ``min_area``.

    Each is ``((x_centre, y_centre), (minor_width, major_width), angle_deg)`` from the region's
    second moments (widths are the moment axis lengths minus one pixel).
    """
    from skimage import measure  # imported here: large events are off by default, and it is slow to import

    labels = measure.label(np.asarray(mask) != 0)
    out = []
    for region in measure.regionprops(labels):
        if region.area_filled < min_area:
            continue
        cy, cx = region.centroid
        out.append(
            (
                (float(cx), float(cy)),
                (region.axis_minor_length - 1, region.axis_major_length - 1),
                float(np.degrees(region.orientation)),
            )
        )
    return out


def _ellipse_patch(ex: float, ey: float, width1: float, width2: float, angle: float, shape):
    """Filled ellipse mask in a sub-box of a ``shape`` frame: ((y0, y1, x0, x1), bool mask)."""
    xc, yc = round(ex), round(ey)
    half = max(round(width1 / 2), round(width2 / 2)) + 2
    x0, x1 = max(xc - half, 0), min(xc + half + 1, shape[1])
    y0, y1 = max(yc - half, 0), min(yc + half + 1, shape[0])
    mask = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=bool)
    r1, r2 = round(width1 / 2), round(width2 / 2)
    if r1 and r2 and mask.size:
        from skimage import draw

        rr, cc = draw.ellipse(yc - y0, xc - x0, r2, r1, mask.shape, math.radians(angle))
        mask[rr, cc] = True
    return (y0, y1, x0, x1), mask


def _expanded_axes(ell: Ellipse, factor: float, max_width: float) -> tuple[int, int]:
    """Half-axes after expansion: both axes grow by the minor axis times (factor - 1)."""
    a, b = ell[1]
    if b < a:
        w1, w2 = a + (factor - 1.0) * b, b * factor
    else:
        w1, w2 = a * factor, b + (factor - 1.0) * a
    return round(min(w1, max_width) / 2), round(min(w2, max_width) / 2)


def _flag_ellipses(gdq, i, g, ellipses, factor, max_width, n_after) -> None:
    """JUMP_DET inside each expanded ellipse, in group g and the next ``n_after`` groups."""
    ngroups = gdq.shape[1]
    for ell in ellipses:
        h1, h2 = _expanded_axes(ell, factor, max_width)
        (y0, y1, x0, x1), mask = _ellipse_patch(ell[0][0], ell[0][1], h1 * 2, h2 * 2, ell[2], gdq.shape[2:])
        for gg in range(g, min(g + n_after + 1, ngroups)):
            sub = gdq[i, gg, y0:y1, x0:x1]
            mask &= (sub & _SAT) != _SAT
            sub |= np.where(mask, np.uint8(_JUMP), np.uint8(0))


def _inside(point, ell: Ellipse) -> bool:
    """Is ``point`` (x, y) inside the ellipse?"""
    ang = math.radians(180 - ell[2])
    dx, dy = point[0] - ell[0][0], point[1] - ell[0][1]
    u = dx * math.cos(ang) - dy * math.sin(ang)
    v = dx * math.sin(ang) + dy * math.cos(ang)
    major, minor = max(ell[1]) * 0.5, min(ell[1]) * 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.float64(u) ** 2 / major**2 + np.float64(v) ** 2 / minor**2 <= 1)


def _grow_cores(cube, g, sat_ellipses, p: LargeEventParams, persist) -> None:
    """Grow large saturated cores (SATURATED from group g on) and record them for the next int."""
    for ell in sat_ellipses:
        if min(ell[1]) <= p.min_sat_radius_extend:
            continue
        w1 = min(ell[1][0] + p.sat_expand, p.max_extended_width)
        w2 = min(ell[1][1] + p.sat_expand, p.max_extended_width)
        (y0, y1, x0, x1), mask = _ellipse_patch(ell[0][0], ell[0][1], w1, w2, ell[2], cube.shape[1:])
        for gg in range(g, cube.shape[0]):
            cube[gg, y0:y1, x0:x1][mask] = _SAT
        (y0, y1, x0, x1), mask = _ellipse_patch(
            ell[0][0], ell[0][1], ell[1][0], ell[1][1], ell[2], cube.shape[1:]
        )
        persist[y0:y1, x0:x1][mask] = _JUMP


def flag_snowballs(gdq: np.ndarray, params: LargeEventParams) -> np.ndarray:
    """Snowball flagging on a whole exposure's GROUPDQ (nints, ngroups, y, x); returns a copy."""
    gdq = np.array(gdq, dtype=np.uint8, copy=True)
    nints, ngroups, ny, nx = gdq.shape
    persist = np.zeros((nints, ny, nx), dtype=np.uint8)
    lo, hi = params.edge_size, max(0, ny - params.edge_size)
    for i in range(nints):
        next_new = np.zeros((ny, nx), dtype=bool)
        for g in range(1, ngroups):
            cur = (gdq[i, g] & _SAT) != 0
            new_sat = cur & ((gdq[i, g - 1] & _SAT) == 0)
            if g < ngroups - 1:
                next_new = ((gdq[i, g + 1] & _SAT) != 0) & ~cur
            next_ells = find_ellipses(next_new, params.min_sat_area)
            sat_ells = find_ellipses(new_sat, params.min_sat_area)
            jump_ells = find_ellipses((gdq[i, g] & _JUMP) != 0, params.min_jump_area)
            if params.sat_required_snowball:
                balls = []
                for j in jump_ells:
                    c = j[0]
                    if c[0] < lo or c[1] < lo or c[0] > hi or c[1] > hi:
                        balls.append(j)
                        continue
                    cores = sat_ells + (next_ells if g < ngroups - 1 else [])
                    if any(_inside(s[0], j) for s in cores):
                        balls.append(j)
                _grow_cores(gdq[i], g, sat_ells, params, persist[i])
            else:
                balls = jump_ells
            _flag_ellipses(gdq, i, g, balls, params.expand_factor, params.max_extended_width, 0)
    if params.mask_persist_next_int and params.persist_groups >= 1:
        last = min(params.persist_groups, ngroups)
        for i in range(1, nints):
            gdq[i, 1:last] |= persist[i - 1][None]
    return gdq


def _convolve_nan(arr: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolution ignoring NaNs (normalised by the kernel weight of valid pixels); NaN stays NaN."""
    good = np.isfinite(arr)
    a = np.where(good, arr, 0.0)
    from scipy import signal

    conv = signal.oaconvolve(a, kernel, mode="same")
    n = kernel.shape[0] // 2
    pad = np.ones((good.shape[0] + 2 * n, good.shape[1] + 2 * n))
    pad[n:-n, n:-n] = good
    norm = signal.oaconvolve(pad, kernel, mode="valid")
    good &= norm > 1e-3 * np.mean(kernel)
    with np.errstate(divide="ignore", invalid="ignore"):
        conv = conv / norm
    conv[~good] = np.nan
    return conv


def flag_showers(
    data_e: np.ndarray, gdq: np.ndarray, pdq: np.ndarray, readnoise_e: np.ndarray, params: LargeEventParams
) -> np.ndarray:
    """Shower flagging on a whole exposure: ``data_e`` and ``readnoise_e`` in electrons.

    Needs at least 10 usable differences in the exposure; returns a new GROUPDQ.
    """
    from astropy.stats import sigma_clipped_stats

    nints, ngroups = gdq.shape[:2]
    dnu_groups = int(((gdq & _DNU) != 0).all(axis=(2, 3)).sum())
    if nints * (ngroups - 1) - dnu_groups < 10:
        return np.array(gdq, copy=True)
    work = np.array(gdq, dtype=np.uint8, copy=True)
    data = np.array(data_e, dtype=np.float32, copy=True)
    for v in (_JUMP | _DNU, _SAT | _DNU, _SAT, _JUMP, _DNU):
        data[work == v] = np.nan
    refy, refx = np.nonzero(pdq == _REF)
    work[:, :, refy, refx] = _DNU
    fd = np.diff(data, axis=1)
    del data
    from astropy.convolution import Ring2DKernel

    kernel = Ring2DKernel(params.extend_inner_radius, params.extend_outer_radius).array
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigclip = nints >= params.minimum_sigclip_groups
        if sigclip:
            _, cmed, cstd = sigma_clipped_stats(fd, sigma=5, axis=0)
        else:
            med = np.nanmedian(fd, axis=(0, 1))
            sig = np.sqrt(np.abs(med) + readnoise_e**2 / params.nframes)
        for i in range(nints):
            first = 0
            for g in range(ngroups):
                if not np.all(work[i, g] & _DNU):
                    first = g
                    break
            for g in range(first + 1, ngroups):
                if sigclip:
                    ratio = np.abs(fd[i, g - 1] - cmed[g - 1]) / cstd[g - 1]
                else:
                    ratio = np.abs(fd[i, g - 1] - med) / sig
                ratio = np.array(ratio, dtype=np.float64)
                flagged = ((work[i, g] | pdq) & (_JUMP | _SAT | _DNU)) != 0
                ratio[flagged] = np.nan
                smooth = _convolve_nan(ratio, kernel)
                ells = find_ellipses(smooth > params.extend_snr_threshold, params.extend_min_area)
                if ells:
                    found.append((i, g, ells))
    for i, g, ells in found:
        _flag_ellipses(
            work,
            i,
            g,
            ells,
            params.extend_ellipse_expand_ratio,
            params.max_extended_width,
            params.groups_masked_after_shower,
        )
    return _revert_big_changes(data_e, gdq, work, params.max_shower_amplitude)


def _revert_big_changes(data_e, gdq_in, gdq_new, limit: float) -> np.ndarray:
    """Give pixels back their input flags where the shower flags change the mean rate too much."""
    bad = _DNU | _SAT | _JUMP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(gdq_in.shape[0]):
            before = np.where((gdq_in[i] & bad) != 0, np.nan, data_e[i])
            after = np.where((gdq_new[i] & bad) != 0, np.nan, data_e[i])
            change = np.abs(
                np.nanmean(np.diff(before, axis=0), axis=0) - np.nanmean(np.diff(after, axis=0), axis=0)
            )
            revert = ~np.isfinite(change) | (change > limit)
            gdq_new[i][:, revert] = gdq_in[i][:, revert]
    return gdq_new


def flag_showers_block(sci, gdq, pdq, gain, readnoise, *, params: LargeEventParams) -> np.ndarray:
    """:func:`flag_showers` on whole-exposure blocks in DN (converted to electrons here)."""
    gain = np.asarray(gain, dtype=np.float32)
    data_e = np.asarray(sci, dtype=np.float32) * gain
    rn_e = np.asarray(readnoise, dtype=np.float32) * gain
    return flag_showers(data_e, np.asarray(gdq, np.uint8), np.asarray(pdq, np.uint32), rn_e, params)
