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
    "pattern_candidates",
    "second_group_candidates",
    "pattern_pass_needed",
    "pack_first",
    "finish_pattern",
    "PACKED_GROUPS",
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


def dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """Boolean dilation of each 2-D (y, x) plane of ``mask`` by a (2n+1)x(2n+1) box, truncated
    at the plane's edges."""
    mask = np.asarray(mask, dtype=np.bool_)
    if mask.ndim == 2:
        return _dilate_plane(mask, n)
    planes = np.ascontiguousarray(mask).reshape((-1, *mask.shape[-2:]))
    return _dilate_planes(planes, n).reshape(mask.shape)


@njit(cache=True, nogil=True)
def _dilate_planes(planes: np.ndarray, n: int) -> np.ndarray:
    out = np.empty_like(planes)
    for i in range(planes.shape[0]):
        out[i] = _dilate_plane(planes[i], n)
    return out


@njit(cache=True, nogil=True)
def _dilate_plane(mask: np.ndarray, n: int) -> np.ndarray:
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
    ngroups = data.shape[1]
    gdq = np.array(gdq, dtype=np.uint8, copy=True)
    thresh, ref_dq, nocheck = prepare_threshold(sat_thresh, sat_dq, atod_limit)
    n = int(n_pix_grow_sat)
    sat = np.uint8(_SAT)
    dnu = np.uint8(_DNU)
    # all integrations and groups at once: saturated from the first crossing on (charge only
    # accumulates), the A/D floor, then the grow of every SATURATED flag of each group
    data32 = np.ascontiguousarray(data, dtype=np.float32)
    first = first_crossing(data32, np.zeros_like(gdq), thresh)  # from the data alone
    gdq = apply_flags(data32, gdq, first)
    if n > 0:
        gdq |= np.where(dilate((gdq & sat) != 0, n), sat, np.uint8(0))
    if read_pattern is not None:
        # Groups that saturated in their last frames: the group mean is diluted. Each group's
        # test reads only SATURATED flags (which this pass does not change) and its own flags.
        for g in range(ngroups - 2, -1, -1):
            factor = _dilution(read_pattern[g])
            if factor == 1:
                continue
            dil = np.where(nocheck, np.float32(1.0), np.float32(factor))
            partial = (
                (data[:, g] >= thresh * dil) & ((gdq[:, g] & (sat | dnu)) == 0) & ((gdq[:, g + 1] & sat) != 0)
            )
            if n > 0:
                partial = dilate(partial, n)
            gdq[:, g] |= np.where(partial, dnu, np.uint8(0))
        if ngroups > 2:
            # A saturating event in the second group, seen from the first.
            mask = second_group_candidates(data, thresh, bias, read_pattern)
            mask &= ((gdq[:, 2] & sat) != 0) & ((gdq[:, 1] & sat) == 0)
            gdq[:, 1] |= np.where(mask, dnu, np.uint8(0))
    if zframe is not None:
        zframe = np.array(zframe, dtype=np.float32, copy=True)
        bad = (zframe >= thresh) | (zframe <= 0)
        if n > 0:
            bad |= dilate(zframe >= thresh, n)
        zframe[bad] = 0.0
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
    return _box_filter(first, n, False)


@njit(cache=True, nogil=True)
def _box_filter(a: np.ndarray, n: int, use_or: bool) -> np.ndarray:
    """Separable (2n+1) x (2n+1) box filter of each (y, x) plane, truncated at the edges: the
    minimum, or with ``use_or`` the bitwise OR (a dilation of every bit plane at once)."""
    nints, ny, nx = a.shape
    tmp = np.empty_like(a)
    out = np.empty_like(a)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                m = a[i, y, x]
                for xx in range(max(0, x - n), min(nx, x + n + 1)):
                    v = a[i, y, xx]
                    if use_or:
                        m |= v
                    elif v < m:
                        m = v
                tmp[i, y, x] = m
        for y in range(ny):
            for x in range(nx):
                m = tmp[i, y, x]
                for yy in range(max(0, y - n), min(ny, y + n + 1)):
                    v = tmp[i, yy, x]
                    if use_or:
                        m |= v
                    elif v < m:
                        m = v
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


# ---------------------------------------------------------- the fast form with a read pattern
# The read-pattern pass flags group g DO_NOT_USE (and grows that flag) when the pixel is not
# SATURATED in g, is SATURATED in g + 1, and its own data pass the dilution test in g. After the
# grow, "SATURATED in g" is "g >= grown first crossing", so the only group that can pass is
# g = grown - 1, and the data part of the test is the pixel's own. A per-tile pass (no
# neighbours) therefore packs, for each pixel and integration, the first-crossing group and one bit
# per group for the data test; that small map is all the tiles exchange (a halo of twice the grow:
# the grow of the first crossings, then the grow of the part-way flags). The second-group test
# (a saturating event in group 2 seen from group 1) is the pixel's own data and grown crossing.

#: Groups whose read-pattern bits fit beside the first crossing in one uint64 (16 bits + 48).
PACKED_GROUPS = 49


def _dilution(reads) -> float:
    return float(np.mean(reads)) / float(reads[-1])


def pattern_pass_needed(read_pattern: list) -> bool:
    """True when some group but the last averages frames (a dilution factor other than 1): only
    then can the read-pattern pass flag a group part-way saturated."""
    return any(_dilution(reads) != 1 for reads in read_pattern[:-1])


def pattern_candidates(
    data: np.ndarray, gdq: np.ndarray, thresh: np.ndarray, nocheck: np.ndarray, read_pattern: list
) -> np.ndarray:
    """(nints, y, x) uint64: bit g set when group g passes the pixel's own tests of the read-pattern
    pass: data at or above the diluted threshold, not DO_NOT_USE on input, not at the A/D floor.
    ``thresh`` and ``nocheck`` as from :func:`prepare_threshold`."""
    nints, ngroups = data.shape[:2]
    bits = np.zeros((nints, *data.shape[2:]), dtype=np.uint64)
    dnu = np.uint8(_DNU)
    for g in range(ngroups - 1):
        factor = _dilution(read_pattern[g])
        if factor == 1:
            continue
        dil = np.where(nocheck, np.float32(1.0), np.float32(factor))
        ok = (data[:, g] >= thresh * dil) & ((gdq[:, g] & dnu) == 0) & (data[:, g] > 0)
        bits |= ok.astype(np.uint64) << np.uint64(g)
    return bits


def second_group_candidates(
    data: np.ndarray, thresh: np.ndarray, bias: np.ndarray | None, read_pattern: list
) -> np.ndarray:
    """(nints, y, x) bool: the data part of the second-group test (a saturating event in the second
    group seen from the first), in the same arithmetic as :func:`flag_saturation`."""
    bias_arr = np.float32(0.0) if bias is None else np.asarray(bias, dtype=np.float32)
    g1 = data[:, 0] - bias_arr
    mask = (g1 / np.mean(read_pattern[0])) * read_pattern[2][-1] + bias_arr < thresh
    mask &= (data[:, 1] - data[:, 0]) > (thresh - data[:, 0]) / len(read_pattern[1])
    return mask


def pack_first(first: np.ndarray, candidates: np.ndarray | None) -> np.ndarray:
    """One uint64 per pixel and integration: the first crossing in the low 16 bits, the
    candidate bits of :func:`pattern_candidates` (at most ``PACKED_GROUPS - 1``) above them.
    Without candidates (no group averages frames), the int16 first crossing itself."""
    if candidates is None:
        return first
    return first.astype(np.uint64) | (candidates << np.uint64(16))


@njit(cache=True, nogil=True)
def _grown_and_partial(packed: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """From a packed map: the grown first crossing (box minimum) and, per pixel, the bit of the
    group that saturated part-way (bit grown - 1 of its own candidates), grown in a box (OR)."""
    nints, ny, nx = packed.shape
    first = np.empty((nints, ny, nx), dtype=np.int16)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                first[i, y, x] = np.int16(packed[i, y, x] & np.uint64(0xFFFF))
    grown = min_filter(first, n)
    part = np.zeros((nints, ny, nx), dtype=np.uint64)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                g = grown[i, y, x]
                if g >= 1 and g - 1 < 48:
                    bit = np.uint64(1) << np.uint64(g - 1)
                    if (packed[i, y, x] >> np.uint64(16)) & bit:
                        part[i, y, x] = bit
    return grown, _box_filter(part, n, True)


@njit(cache=True, nogil=True)
def _flag_part_way(gdq: np.ndarray, part: np.ndarray) -> None:
    nints, ngroups, ny, nx = gdq.shape
    dnu = np.uint8(_DNU)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                b = part[i, y, x]
                if b:
                    for g in range(min(ngroups, 48)):
                        if (b >> np.uint64(g)) & np.uint64(1):
                            gdq[i, g, y, x] |= dnu


def finish_pattern(
    data: np.ndarray,
    gdq: np.ndarray,
    packed_halo: np.ndarray,
    pad: tuple[tuple[int, int], tuple[int, int]],
    n: int,
    second: np.ndarray | None,
) -> np.ndarray:
    """GROUPDQ of one tile flagged as :func:`flag_saturation` flags it with ``read_pattern``.

    ``packed_halo``: :func:`pack_first` of the tile and ``pad`` = ((top, bottom), (left, right))
    rows and columns of its neighbours around it (twice the grow, fewer at the frame's edges);
    ``second``: :func:`second_group_candidates` of the tile (None with two groups or fewer).
    """
    packed_halo = np.ascontiguousarray(packed_halo)
    if packed_halo.dtype == np.uint64:
        grown, part = _grown_and_partial(packed_halo, int(n))
    else:  # the first crossings alone: no group can be part-way saturated
        grown, part = min_filter(packed_halo, int(n)), None
    (top, bottom), (left, right) = pad
    ny, nx = packed_halo.shape[1:]
    inner = (slice(None), slice(top, ny - bottom), slice(left, nx - right))
    grown = np.ascontiguousarray(grown[inner])
    out = apply_flags(np.ascontiguousarray(data, dtype=np.float32), np.ascontiguousarray(gdq), grown)
    if part is not None:
        _flag_part_way(out, np.ascontiguousarray(part[inner]))
    if second is not None:
        out[:, 1] |= np.where(second & (grown == 2), np.uint8(_DNU), np.uint8(0))
    return out
