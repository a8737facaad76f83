"""Saturation kernel: flag groups at or above the saturation threshold, and A/D-floor groups.

A group whose value reaches the pixel's threshold is SATURATED, and so is every later group of
that integration (charge only accumulates). Values at or below zero are AD_FLOOR | DO_NOT_USE.
Saturated pixels are grown by ``n_pix_grow_sat`` in a square box to catch charge spilling into
neighbours, so a tile needs a halo of ``halo_depth(n_pix_grow_sat)`` pixels to give the same
result as the whole frame. With a read pattern (frame-averaged groups), groups that saturated
part-way through are caught from the dilution of the group mean (the jwst 3.x behaviour).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from jwst_dask.dq import FLAGS

__all__ = [
    "flag_saturation",
    "halo_depth",
    "prepare_threshold",
    "dilate",
    "first_crossing",
    "min_filter",
    "apply_flags",
    "ATOD_LIMIT",
]

#: Hard limit of the 16-bit analogue-to-digital converter.
ATOD_LIMIT = 65535.0

_DNU = FLAGS["DO_NOT_USE"]
_SAT = FLAGS["SATURATED"]
_ADF = FLAGS["AD_FLOOR"]
_NSC = FLAGS["NO_SAT_CHECK"]


def halo_depth(n_pix_grow_sat: int) -> int:
    """Pixels of neighbouring tiles a block needs (the grow, then the grow of the read-pattern pass)."""
    return 2 * max(int(n_pix_grow_sat), 0)


@njit(cache=True, nogil=True)
def dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """Boolean dilation of a 2-D mask by a (2n+1)x(2n+1) box, truncated at the array edges."""
    ny, nx = mask.shape
    tmp = np.zeros((ny, nx), dtype=np.bool_)
    for y in range(ny):
        for x in range(nx):
            if mask[y, x]:
                x0 = max(0, x - n)
                x1 = min(nx, x + n + 1)
                for xx in range(x0, x1):
                    tmp[y, xx] = True
    out = np.zeros((ny, nx), dtype=np.bool_)
    for y in range(ny):
        for x in range(nx):
            if tmp[y, x]:
                y0 = max(0, y - n)
                y1 = min(ny, y + n + 1)
                for yy in range(y0, y1):
                    out[yy, x] = True
    return out


def prepare_threshold(sat_thresh: np.ndarray, sat_dq: np.ndarray, atod_limit: float = ATOD_LIMIT):
    """(threshold, reference DQ, no-check mask): NaN thresholds and NO_SAT_CHECK pixels get a
    threshold above the A/D limit (they never saturate) and NO_SAT_CHECK in the returned DQ."""
    thresh = np.array(sat_thresh, dtype=np.float32, copy=True)
    dq = np.array(sat_dq, dtype=np.uint32, copy=True)
    nan = np.isnan(thresh)
    dq[nan] |= np.uint32(_NSC)
    nocheck = (dq & _NSC) == _NSC
    thresh[nocheck] = atod_limit + 1
    return thresh, dq, nocheck


def flag_saturation(
    data: np.ndarray,
    gdq: np.ndarray,
    pdq: np.ndarray,
    sat_thresh: np.ndarray,
    sat_dq: np.ndarray,
    n_pix_grow_sat: int = 1,
    read_pattern: list | None = None,
    bias: np.ndarray | None = None,
    zframe: np.ndarray | None = None,
    atod_limit: float = ATOD_LIMIT,
):
    """Flag saturation and A/D floor in one block.

    ``data`` (nints, ngroups, y, x) float, ``gdq`` uint8 same shape, ``pdq`` (y, x) uint32,
    ``sat_thresh``/``sat_dq`` (y, x), ``bias`` (y, x) or None, ``zframe`` (nints, y, x) or None.
    ``read_pattern``: the frame numbers in each group (None: no frame-averaging passes).
    Returns new ``(gdq, pdq, zframe)``; saturated or A/D-floor ZEROFRAME pixels become 0.
    """
    nints, ngroups = data.shape[:2]
    gdq = np.array(gdq, dtype=np.uint8, copy=True)
    thresh, ref_dq, nocheck = prepare_threshold(sat_thresh, sat_dq, atod_limit)
    n = int(n_pix_grow_sat)
    sat = np.uint8(_SAT)
    dnu = np.uint8(_DNU)
    low = np.uint8(_ADF | _DNU)
    bias_arr = np.float32(0.0) if bias is None else np.asarray(bias, dtype=np.float32)
    for i in range(nints):
        seen = np.zeros(thresh.shape, dtype=bool)
        for g in range(ngroups):
            plane = data[i, g]
            seen |= plane >= thresh
            gdq[i, g] |= np.where(seen, sat, np.uint8(0))
            gdq[i, g] |= np.where(plane <= 0, low, np.uint8(0))
            if n > 0:
                grown = dilate((gdq[i, g] & sat) != 0, n)
                gdq[i, g] |= np.where(grown, sat, np.uint8(0))
        if read_pattern is not None:
            # Groups that saturated in their last frames: the group mean is diluted.
            for g in range(ngroups - 2, -1, -1):
                reads = read_pattern[g]
                factor = float(np.mean(reads)) / float(reads[-1])
                if factor == 1:
                    continue
                dil = np.where(nocheck, np.float32(1.0), np.float32(factor))
                partial = (
                    (data[i, g] >= thresh * dil)
                    & ((gdq[i, g] & (sat | dnu)) == 0)
                    & ((gdq[i, g + 1] & sat) != 0)
                )
                if n > 0:
                    partial = dilate(partial, n)
                gdq[i, g] |= np.where(partial, dnu, np.uint8(0))
            if ngroups > 2:
                # A saturating event in the second group, seen from the first.
                g1 = data[i, 0] - bias_arr
                mask = (g1 / np.mean(read_pattern[0])) * read_pattern[2][-1] + bias_arr < thresh
                mask &= (data[i, 1] - data[i, 0]) > (thresh - data[i, 0]) / len(read_pattern[1])
                mask &= ((gdq[i, 2] & sat) != 0) & ((gdq[i, 1] & sat) == 0)
                gdq[i, 1] |= np.where(mask, dnu, np.uint8(0))
    if zframe is not None:
        zframe = np.array(zframe, dtype=np.float32, copy=True)
        for i in range(zframe.shape[0]):
            plane = zframe[i]
            bad = (plane >= thresh) | (plane <= 0)
            if n > 0:
                bad |= dilate(plane >= thresh, n)
            plane[bad] = 0.0
    pdq = np.bitwise_or(np.asarray(pdq, dtype=np.uint32), ref_dq)
    return gdq, pdq, zframe


# ----------------------------------------------------------------------- the fast two-pass form
# Without read-pattern passes and without SATURATED flags already in GROUPDQ, "saturated in group
# g" is monotonic in g, so the grown flags of group g are "some pixel of the box first crossed its
# threshold at or before g": a minimum filter of the first-crossing group. The per-tile first pass
# needs no neighbours; only the small first-crossing map (one int16 per pixel and integration) is
# exchanged between tiles for the grow.


@njit(cache=True, nogil=True)
def first_crossing(data: np.ndarray, gdq: np.ndarray, thresh: np.ndarray) -> np.ndarray:
    """(nints, y, x) int16: first group with ``data >= thresh`` or already SATURATED (ngroups
    when none). An input SATURATED flag thus counts from its group on."""
    nints, ngroups, ny, nx = data.shape
    out = np.full((nints, ny, nx), ngroups, dtype=np.int16)
    sat = np.uint8(_SAT)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                t = thresh[y, x]
                for g in range(ngroups):
                    if data[i, g, y, x] >= t or (gdq[i, g, y, x] & sat):
                        out[i, y, x] = g
                        break
    return out


@njit(cache=True, nogil=True)
def min_filter(first: np.ndarray, n: int) -> np.ndarray:
    """Box minimum ((2n+1) x (2n+1), truncated at the array edges) of each (y, x) plane."""
    nints, ny, nx = first.shape
    tmp = np.empty_like(first)
    out = np.empty_like(first)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                m = first[i, y, x]
                for xx in range(max(0, x - n), min(nx, x + n + 1)):
                    if first[i, y, xx] < m:
                        m = first[i, y, xx]
                tmp[i, y, x] = m
        for y in range(ny):
            for x in range(nx):
                m = tmp[i, y, x]
                for yy in range(max(0, y - n), min(ny, y + n + 1)):
                    if tmp[i, yy, x] < m:
                        m = tmp[i, yy, x]
                out[i, y, x] = m
    return out


@njit(cache=True, nogil=True)
def apply_flags(data: np.ndarray, gdq: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """GROUPDQ with SATURATED from group ``grown`` on, and AD_FLOOR | DO_NOT_USE where data <= 0."""
    nints, ngroups, ny, nx = data.shape
    out = gdq.copy()
    sat = np.uint8(_SAT)
    low = np.uint8(_ADF | _DNU)
    for i in range(nints):
        for g in range(ngroups):
            for y in range(ny):
                for x in range(nx):
                    f = out[i, g, y, x]
                    if g >= grown[i, y, x]:
                        f |= sat
                    if data[i, g, y, x] <= 0:
                        f |= low
                    out[i, g, y, x] = f
    return out
