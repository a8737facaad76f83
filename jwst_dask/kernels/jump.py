"""Jump (cosmic-ray) detection kernel: the two-point difference method on blocks of ramps.

The algorithm is the one of the JWST jump step (Anderson & Gordon 2011 as implemented by stcal):
the ramp is converted to electrons with the gain, first differences are taken between adjacent
usable groups (SATURATED and DO_NOT_USE groups excluded), and a difference is a jump when it lies
too many sigma from the pixel's median difference, sigma being the read noise of a difference
(the READNOISE reference holds the noise of a two-frame difference, CDS) and the Poisson noise of
that median. Jumps are found one at a time per pixel (the worst first), recomputing the clipped
median without it, until none is left. Thresholds depend on the number of usable differences.
With many integrations the sigma-clip mode compares each difference with the same difference in
the other integrations instead. Then, in the same groups, the four neighbours of strong jumps
are flagged, and groups following big jumps are flagged for a given time.

Everything is per pixel except the neighbour flagging, which needs the next pixel on each side.
So the work is split in two passes that compose exactly on tiles:

* :func:`twopoint_block` (per pixel, once per tile) returns the group DQ with the primary
  jumps in the low 8 bits of a ``uint16`` array, plus per-group hint bits (is this jump in the
  neighbour-flagging sigma range; is it above the after-jump DN thresholds);
* :func:`finish_block` takes that packed array with a one-pixel halo on each side (zeros beyond
  the detector) and applies the neighbour and after-jump flagging.

A few decisions depend on the whole frame (as in the official pipeline): whether to run at all,
and which mode, from the groups that are DO_NOT_USE in every pixel (:func:`frame_mode`), and in
sigma-clip mode the groups where every pixel ends up JUMP_DET or DO_NOT_USE
(:func:`full_jump_groups`). :func:`detect_jumps` runs everything on a whole exposure.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ShapeMismatchError

__all__ = [
    "JumpParams",
    "frame_mode",
    "after_jump_threshold",
    "twopoint_block",
    "full_jump_groups",
    "finish_block",
    "flag_bad_gain",
    "detect_jumps",
    "MODE_ITERATIVE",
    "MODE_SINGLE_PASS",
    "MODE_SKIP",
    "MODE_SIGMA_CLIP",
    "edge_triggers",
    "halo_from_edges",
]

_DNU = np.uint8(FLAGS["DO_NOT_USE"])
_SAT = np.uint8(FLAGS["SATURATED"])
_JUMP = np.uint8(FLAGS["JUMP_DET"])

#: Hint bits stored above the group DQ byte by :func:`twopoint_block`.
_HINT_NBR = np.uint16(1 << 8)  # sigma of the difference within the neighbour-flagging range
_HINT_BIG1 = np.uint16(1 << 9)  # jump amplitude >= after_jump_flag threshold 1 (electrons)
_HINT_BIG2 = np.uint16(1 << 10)  # jump amplitude >= after_jump_flag threshold 2 (electrons)

MODE_ITERATIVE = 0
MODE_SINGLE_PASS = 1
MODE_SKIP = 2
MODE_SIGMA_CLIP = 3


@dataclass(frozen=True)
class JumpParams:
    """The jump parameters the kernels use (names as the step's; thresholds in sigma).

    ``after_jump_flag_e1/e2`` are in electrons (DN threshold times the median gain, see
    :func:`after_jump_threshold`); ``after_jump_flag_n1/n2`` in groups.
    ``min_diffs_single_pass`` < 0 means never use the single pass (always iterate).
    """

    nframes: int = 1
    rejection_threshold: float = 4.0
    three_group_rejection_threshold: float = 6.0
    four_group_rejection_threshold: float = 5.0
    flag_4_neighbors: bool = True
    max_jump_to_flag_neighbors: float = 1000.0
    min_jump_to_flag_neighbors: float = 10.0
    after_jump_flag_e1: float = 0.0
    after_jump_flag_n1: int = 0
    after_jump_flag_e2: float = 0.0
    after_jump_flag_n2: int = 0
    min_diffs_single_pass: int = -1
    minimum_groups: int = 3
    minimum_sigclip_groups: int = 100
    only_use_ints: bool = True


def frame_mode(dnu_groups: np.ndarray, params: JumpParams) -> int:
    """Which algorithm the whole exposure uses, from its fully DO_NOT_USE groups.

    ``dnu_groups`` (nints, ngroups) bool: True where every pixel of that group is DO_NOT_USE
    (e.g. MIRI first/last frames). Returns one of the ``MODE_*`` constants: sigma clipping when
    there are enough integrations (``only_use_ints``) or groups; skip when fewer than
    ``minimum_groups`` usable groups remain in some integration; the single pass when every
    integration has at least ``min_diffs_single_pass`` usable differences; else iterative.
    """
    dnu_groups = np.asarray(dnu_groups, dtype=bool)
    nints, ngroups = dnu_groups.shape
    per_int = dnu_groups.sum(axis=1)
    total_flagged = int(per_int.sum())
    min_usable_groups = ngroups - int(per_int.max(initial=0))
    total_groups = nints * ngroups - total_flagged
    if params.only_use_ints:
        sigclip = nints >= params.minimum_sigclip_groups
    else:
        sigclip = total_groups >= params.minimum_sigclip_groups
    if sigclip:
        return MODE_SIGMA_CLIP
    if min_usable_groups < params.minimum_groups:
        return MODE_SKIP
    if params.min_diffs_single_pass >= 0 and min_usable_groups - 1 >= params.min_diffs_single_pass:
        return MODE_SINGLE_PASS
    return MODE_ITERATIVE


def after_jump_threshold(dn: float, gain: np.ndarray) -> float:
    """An after-jump DN threshold in electrons: ``dn`` times the NaN-median of the gain frame.

    Computed in float32 like the official pipeline (the gain is float32), so that flags agree.
    """
    med = np.nanmedian(np.asarray(gain, dtype=np.float32))
    return float(np.float32(dn) * med)


# ----------------------------------------------------------------------------------------------
# per-pixel helpers


@njit(cache=True, nogil=True, inline="always")
def _sort_inplace(buf, n):
    """Sort buf[:n]: insertion sort for the few differences of a full-frame pixel, numpy's sort
    for the thousands of a time series (insertion sort is quadratic)."""
    if n > 32:
        buf[:n].sort()
        return
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@njit(cache=True, nogil=True, inline="always")
def _copy_finite(vals, buf):
    """Copy the finite values of a 2-D (nints, ndiffs) array into buf; return their count."""
    n = 0
    for i in range(vals.shape[0]):
        for k in range(vals.shape[1]):
            v = vals[i, k]
            if not math.isnan(v):
                buf[n] = v
                n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _sorted_finite(vals, buf):
    """Copy the finite values of a 2-D (nints, ndiffs) array into buf, sorted; return their count."""
    n = _copy_finite(vals, buf)
    _sort_inplace(buf, n)
    return n


@njit(cache=True, nogil=True, inline="always")
def _median_sorted(buf, n):
    """Median of sorted buf[:n]; NaN if n == 0."""
    if n == 0:
        return np.nan
    if n % 2 == 1:
        return buf[n // 2]
    return (buf[n // 2 - 1] + buf[n // 2]) / 2.0


@njit(cache=True, nogil=True)
def _median_selected(vals, buf):
    """Median of the finite values of a 2-D (nints, ndiffs) array (NaN if none), by selection:
    buf is reordered, not sorted. The same value as :func:`_sorted_finite` then
    :func:`_median_sorted`, in linear time (a time series has thousands of differences)."""
    return _median_of(buf, _copy_finite(vals, buf))


@njit(cache=True, nogil=True, inline="always")
def _median_of(buf, n):
    """Median of buf[:n] (reordered in place; NaN if n == 0): the upper middle value by
    selection, which leaves the smaller values before it, so the lower one is their maximum."""
    if n == 0:
        return np.nan
    h = n // 2
    upper = _wirth_kth(buf, n, h)
    if n % 2 == 1:
        return upper
    lower = buf[0]
    for i in range(1, h):
        if buf[i] > lower:
            lower = buf[i]
    return (lower + upper) / 2.0


@njit(cache=True, nogil=True, inline="always")
def _clipped_from_sorted(buf, n):
    """:func:`_clipped_median` of values already sorted in buf[:n] (all positive, so |v| = v)."""
    if n < 2:
        return np.nan
    if n == 2:
        return buf[0]
    m = n
    if n >= 4:
        vmax = buf[n - 1]
        while m > 0 and buf[m - 1] == vmax:
            m -= 1
    return _median_sorted(buf, m)


@njit(cache=True, nogil=True, inline="always")
def _clipped_median(absd, buf):
    """Median of |differences| used by the iterative search.

    4 or more usable: drop the largest (every value equal to it), median of the rest; 3: plain
    median; 2: the smaller; fewer: NaN. Returns (median, number usable).
    """
    n = 0
    vmax = -np.inf
    for i in range(absd.shape[0]):
        for k in range(absd.shape[1]):
            v = absd[i, k]
            if not math.isnan(v):
                n += 1
                if v > vmax:
                    vmax = v
    if n < 2:
        return np.nan, n
    m = 0
    vmin = np.inf
    for i in range(absd.shape[0]):
        for k in range(absd.shape[1]):
            v = absd[i, k]
            if math.isnan(v):
                continue
            if v < vmin:
                vmin = v
            if n >= 4 and v == vmax:
                continue
            buf[m] = v
            m += 1
    if n == 2:
        return vmin, n
    if m == 0:
        return np.nan, n
    _sort_inplace(buf, m)
    if m % 2 == 1:
        return buf[m // 2], n
    return (buf[m // 2 - 1] + buf[m // 2]) / 2.0, n


@njit(cache=True, nogil=True, inline="always")
def _iterate_pixel(absd, ratio, maxr, buf, med, n_use, rn_term, thr4, thr3, thr2, gdq, y, x):
    """Flag jumps of one pixel one at a time (all integrations together), clipping each.

    ``med``, ``n_use``: the first clipped median of |differences| and the usable count.
    """
    nints, ndiffs = absd.shape
    first = True
    for _round in range(nints * ndiffs):
        if not first:
            med = np.float64(np.float32(med))
        sig = math.sqrt(abs(med) + rn_term)
        if sig == 0.0:
            sig = np.nan
        gmax = np.nan
        for i in range(nints):
            mi = np.nan
            for k in range(ndiffs):
                a = absd[i, k]
                if math.isnan(a):
                    r = np.nan
                else:
                    e = np.float32(a - med)
                    r = abs(np.float64(e)) / sig
                ratio[i, k] = r
                if not math.isnan(r):
                    if math.isnan(mi) or r > mi:
                        mi = r
            maxr[i] = mi
            if not math.isnan(mi) and (math.isnan(gmax) or mi > gmax):
                gmax = mi
        if n_use >= 4:
            thr = thr4
        elif n_use == 3:
            thr = thr3
        elif n_use == 2:
            thr = thr2
        else:
            break
        found = False
        for i in range(nints):
            if not maxr[i] > thr:
                continue
            for k in range(ndiffs):
                if ratio[i, k] == gmax:
                    gdq[i, k + 1, y, x] |= _JUMP
                    absd[i, k] = np.nan
                    found = True
        if not found:
            break
        med, n_use = _clipped_median(absd, buf)
        first = False


@njit(cache=True, nogil=True)
def _wirth_kth(a, n, k):
    """k-th smallest of a[:n], reordering a in place (Wirth's selection)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        x = a[k]
        i = lo
        j = hi
        while True:
            while a[i] < x:
                i += 1
            while x < a[j]:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(cache=True, nogil=True)
def _clip_bounds(buf, count, nsigma, maxiters):
    """Sigma-clipped (median centre, population std) bounds of buf[:count], reordered in place."""
    lo = np.nan
    hi = np.nan
    it = 0
    while True:
        med = _median_of(buf, count)
        mean = 0.0
        for i in range(count):
            mean += buf[i]
        mean /= count
        var = 0.0
        for i in range(count):
            var += (buf[i] - mean) * (buf[i] - mean)
        std = math.sqrt(var / count)
        lo = med - nsigma * std
        hi = med + nsigma * std
        new = 0
        for i in range(count):
            if buf[i] >= lo and buf[i] <= hi:
                buf[new] = buf[i]
                new += 1
        if new == count or new == 0:
            break
        count = new
        it += 1
        if it >= maxiters:
            break
    return lo, hi


@njit(cache=True, nogil=True)
def _sigclip_pixel(fd, gdq, y, x, nsigma, only_use_ints, buf):
    """Sigma-clip mode for one pixel: flag differences outside the clipped bounds."""
    nints, ndiffs = fd.shape
    if only_use_ints:
        for k in range(ndiffs):
            n = 0
            for i in range(nints):
                if not math.isnan(fd[i, k]):
                    buf[n] = fd[i, k]
                    n += 1
            if n == 0:
                continue
            lo, hi = _clip_bounds(buf, n, nsigma, 5)
            for i in range(nints):
                v = fd[i, k]
                if (v < lo or v > hi) and (gdq[i, k + 1, y, x] & (_SAT | _DNU)) == 0:
                    gdq[i, k + 1, y, x] |= _JUMP
    else:
        n = 0
        for i in range(nints):
            for k in range(ndiffs):
                if not math.isnan(fd[i, k]):
                    buf[n] = fd[i, k]
                    n += 1
        if n == 0:
            return
        lo, hi = _clip_bounds(buf, n, nsigma, 5)
        for i in range(nints):
            for k in range(ndiffs):
                v = fd[i, k]
                if (v < lo or v > hi) and (gdq[i, k + 1, y, x] & (_SAT | _DNU)) == 0:
                    gdq[i, k + 1, y, x] |= _JUMP


@njit(cache=True, nogil=True)
def _pixel_general(
    data,
    gdq,
    out,
    y,
    x,
    gain,
    rnoise,
    nframes,
    mode,
    thr4,
    thr3,
    thr2,
    only_use_ints,
    hints,
    nbr_on,
    nbr_min,
    nbr_max,
    after_on,
    e1,
    e2,
    fd,
    absd,
    ratio,
    maxr,
    buf,
    col,
    pg,
):
    """The per-pixel pass of one pixel in full generality (flagged groups, NaNs, jumps, ties, any
    mode): writes ``out[:, :, y, x]``. ``pg`` is (nints, ngroups, 1, 1) scratch for its group DQ."""
    nints, ngroups = data.shape[:2]
    ndiffs = ngroups - 1
    bad = _SAT | _DNU
    for i in range(nints):
        for k in range(ngroups):
            pg[i, k, 0, 0] = gdq[i, k, y, x]
    g = np.float32(gain[y, x])
    # first differences in electrons (float32 like the reference implementation)
    for i in range(nints):
        for k in range(ngroups):
            if pg[i, k, 0, 0] & bad:
                col[k] = np.float32(np.nan)
            else:
                col[k] = np.float32(data[i, k, y, x]) * g
        for k in range(ndiffs):
            d = np.float64(np.float32(col[k + 1] - col[k]))
            fd[i, k] = d
            absd[i, k] = abs(d)
    rn = np.float32(rnoise[y, x]) * g
    rn_term = np.float64(np.float32(rn * rn)) / nframes
    n_fin = 0
    if mode == MODE_SIGMA_CLIP:
        med = _median_selected(fd, buf)  # buf is not used sorted in this mode
    else:
        n_fin = _sorted_finite(fd, buf)
        med = _median_sorted(buf, n_fin)
    sig = math.sqrt(abs(med) + rn_term)
    if sig == 0.0:
        sig = np.nan
    if mode == MODE_ITERATIVE:
        if n_fin > 0 and buf[0] > 0.0:  # all differences positive: |d| sorts the same
            med0 = _clipped_from_sorted(buf, n_fin)
            n0 = n_fin
        else:
            med0, n0 = _clipped_median(absd, buf)
        _iterate_pixel(absd, ratio, maxr, buf, med0, n0, rn_term, thr4, thr3, thr2, pg, 0, 0)
    elif mode == MODE_SINGLE_PASS:
        for i in range(nints):
            for k in range(ndiffs):
                if abs(fd[i, k] - med) / sig > thr4:
                    pg[i, k + 1, 0, 0] |= _JUMP
    else:
        _sigclip_pixel(fd, pg, 0, 0, thr4, only_use_ints, buf)
    for i in range(nints):
        out[i, 0, y, x] = pg[i, 0, 0, 0]
        for k in range(ndiffs):
            h = np.uint16(0)
            if hints:
                # hint bits for the neighbour and after-jump passes
                ej = fd[i, k] - med
                if nbr_on:
                    r = abs(ej) / sig
                    if r < nbr_max and r > nbr_min:
                        h |= _HINT_NBR
                if after_on:
                    if ej >= e1:
                        h |= _HINT_BIG1
                    if ej >= e2:
                        h |= _HINT_BIG2
            out[i, k + 1, y, x] = h | pg[i, k + 1, 0, 0]


#: Largest number of differences per pixel (all integrations) of the vectorised common path.
_FAST_MAX_DIFFS = 32
#: Pixels of a row processed together by the vectorised path (its scratch stays in L1 cache).
_CHUNK = 256


@functools.lru_cache(maxsize=64)
def _sorting_network(n: int) -> np.ndarray:
    """Comparators (lo, hi) of Batcher's odd-even merge sort of n values, as an (m, 2) int64 array.

    Built for the next power of two and restricted to indices < n (the missing values act as
    +inf, which no comparator moves). Sorting by a fixed network needs no data-dependent branch,
    so one comparator can be applied to a whole row of pixels at once (SIMD min / max).
    """
    t = 1
    while t < n:
        t *= 2
    pairs = []
    p = 1
    while p < t:
        k = p
        while k >= 1:
            j = k % p
            while j <= t - 1 - k:
                for i in range(min(k, t - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
                j += 2 * k
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@njit(cache=True, nogil=True, inline="always")
def _sort_rows(s, net, w):
    """Sort each column j < w of s (n, CH) along the first axis with the comparator network."""
    for c in range(net.shape[0]):
        p = net[c, 0]
        q = net[c, 1]
        for j in range(w):
            u = s[p, j]
            v = s[q, j]
            s[p, j] = u if u < v else v
            s[q, j] = v if u < v else u


@njit(cache=True, nogil=True)
def _near_band(t):
    """[lo, hi] around threshold ``t`` outside which ``z > t`` (``z < t``) is decided alike for
    z = fl(x / s) and for z = fl(x * fl(1 / s)) (they differ by < 4e-16 relative); NaN bounds
    (never near) when ``t`` is not finite, compared exactly with any finite ratio."""
    band = np.empty(2, dtype=np.float64)
    if not math.isfinite(t):
        band[0] = np.nan
        band[1] = np.nan
    else:
        band[0] = t - 1e-12 * abs(t)
        band[1] = t + 1e-12 * abs(t)
    return band


@njit(cache=True, nogil=True)
def _twopoint_kernel(
    data,
    gdq,
    gain,
    rnoise,
    nframes,
    mode,
    thr4,
    thr3,
    thr2,
    only_use_ints,
    nbr_on,
    nbr_min,
    nbr_max,
    after_on,
    e1,
    e2,
    net,
    chunk,
):
    """Per-pixel pass on a block (see :func:`twopoint_block`).

    Rows of pixels are processed ``chunk`` pixels at a time with the groups outside and the
    pixels inside (contiguous, vectorised) for the common pixel: no flagged group, all
    differences finite, and in the iterative mode no jump and no tie at the largest
    |difference|. For such a pixel the result of the one-pixel-at-a-time algorithm
    (:func:`_pixel_general`) is known after its first round and computed here with the same
    float operations; every other pixel (and the sigma-clip mode) goes through
    :func:`_pixel_general`.
    """
    nints, ngroups, ny, nx = data.shape
    ndiffs = ngroups - 1
    n = nints * ndiffs
    out = np.empty((nints, ngroups, ny, nx), dtype=np.uint16)
    if mode == MODE_SKIP:
        for i in range(nints):
            for k in range(ngroups):
                for y in range(ny):
                    for x in range(nx):
                        out[i, k, y, x] = gdq[i, k, y, x]
        return out
    hints = nbr_on or after_on
    bad = _SAT | _DNU
    # scratch of the general path
    fd = np.empty((nints, ndiffs), dtype=np.float64)
    absd = np.empty((nints, ndiffs), dtype=np.float64)
    ratio = np.empty((nints, ndiffs), dtype=np.float64)
    maxr = np.empty(nints, dtype=np.float64)
    buf = np.empty(nints * ndiffs + 1, dtype=np.float64)
    col = np.empty(ngroups, dtype=np.float32)
    pg = np.empty((nints, ngroups, 1, 1), dtype=np.uint8)
    fast = (mode == MODE_ITERATIVE or mode == MODE_SINGLE_PASS) and 1 <= n <= _FAST_MAX_DIFFS
    if not fast:
        for y in range(ny):
            for x in range(nx):
                _pixel_general(
                    data,
                    gdq,
                    out,
                    y,
                    x,
                    gain,
                    rnoise,
                    nframes,
                    mode,
                    thr4,
                    thr3,
                    thr2,
                    only_use_ints,
                    hints,
                    nbr_on,
                    nbr_min,
                    nbr_max,
                    after_on,
                    e1,
                    e2,
                    fd,
                    absd,
                    ratio,
                    maxr,
                    buf,
                    col,
                    pg,
                )
        return out
    iterative = mode == MODE_ITERATIVE
    if n >= 4:
        thr = thr4
    elif n == 3:
        thr = thr3
    else:
        thr = thr2
    # masks of the hint bits that are on (so that the packing loop has no branch)
    m_nbr = _HINT_NBR if nbr_on else np.uint16(0)
    m_big1 = _HINT_BIG1 if after_on else np.uint16(0)
    m_big2 = _HINT_BIG2 if after_on else np.uint16(0)
    m_jump = np.uint16(_JUMP) if not iterative else np.uint16(0)
    # the ratios |d - median| / sigma of the hints and the single pass are computed with a
    # product by 1 / sigma; pixels with one within these bands of a threshold take the exact path
    nan_band = np.array([np.nan, np.nan])
    b_jump = _near_band(thr4) if not iterative else nan_band
    b_min = _near_band(nbr_min) if nbr_on else nan_band
    b_max = _near_band(nbr_max) if nbr_on else nan_band
    # scratch of the row path: differences as they are, sorted, |differences| sorted. Each loop
    # below stores to one array only, which lets the compiler vectorise it.
    dv = np.empty((n, chunk), dtype=np.float32)
    ds = np.empty((n, chunk), dtype=np.float32)
    da = np.empty((n, chunk), dtype=np.float32)
    nonfin = np.empty(chunk, dtype=np.float32)
    flags = np.empty(chunk, dtype=np.uint8)
    rnt = np.empty(chunk, dtype=np.float64)
    med = np.empty(chunk, dtype=np.float64)
    sig = np.empty(chunk, dtype=np.float64)
    isig = np.empty(chunk, dtype=np.float64)
    med0 = np.empty(chunk, dtype=np.float64)
    sig0 = np.empty(chunk, dtype=np.float64)
    slow = np.empty(chunk, dtype=np.uint8)
    h2 = n // 2
    for y in range(ny):
        for x0 in range(0, nx, chunk):
            w = min(chunk, nx - x0)
            g = gain[y, x0 : x0 + w]
            # first differences in electrons, float32 as in the general path (the product of a
            # group is recomputed for the next difference: the same float32 value)
            for i in range(nints):
                for k in range(ndiffs):
                    a = data[i, k, y, x0 : x0 + w]
                    b = data[i, k + 1, y, x0 : x0 + w]
                    d = dv[i * ndiffs + k]
                    for j in range(w):
                        d[j] = b[j] * g[j] - a[j] * g[j]
            for r in range(n):
                for j in range(w):
                    ds[r, j] = dv[r, j]
            for r in range(n):
                for j in range(w):
                    da[r, j] = abs(dv[r, j])
            for j in range(w):
                nonfin[j] = np.float32(0.0)
            for r in range(n):
                for j in range(w):
                    nonfin[j] += dv[r, j] - dv[r, j]  # NaN if any difference is NaN or infinite
            for j in range(w):
                flags[j] = 0
            for i in range(nints):
                for k in range(ngroups):
                    q = gdq[i, k, y, x0 : x0 + w]
                    for j in range(w):
                        flags[j] |= q[j]
            for j in range(w):
                rn = rnoise[y, x0 + j] * g[j]
                rnt[j] = np.float64(rn * rn) / nframes
            _sort_rows(ds, net, w)
            # median of the differences and its sigma (hints, single pass)
            for j in range(w):
                if n % 2 == 1:
                    m = np.float64(ds[h2, j])
                else:
                    m = (np.float64(ds[h2 - 1, j]) + np.float64(ds[h2, j])) / 2.0
                med[j] = m
            for j in range(w):
                s = math.sqrt(abs(med[j]) + rnt[j])
                sig[j] = s if s != 0.0 else np.nan
                isig[j] = 1.0 / sig[j]
            for j in range(w):
                clean = nonfin[j] == 0.0 and (flags[j] & bad) == 0
                slow[j] = 0 if clean else 1
            if iterative and n >= 2:
                # first round of the iterative search: clipped median of |differences|
                _sort_rows(da, net, w)
                if n >= 4:
                    # drop the largest (slow path if it is tied), median of the rest
                    h = (n - 1) // 2
                    for j in range(w):
                        if (n - 1) % 2 == 1:
                            m = np.float64(da[h, j])
                        else:
                            m = (np.float64(da[h - 1, j]) + np.float64(da[h, j])) / 2.0
                        med0[j] = m
                    for j in range(w):
                        slow[j] |= np.uint8(da[n - 2, j] == da[n - 1, j])
                else:
                    for j in range(w):
                        med0[j] = np.float64(da[n - 2, j])  # n == 3: the median; 2: the smaller
                for j in range(w):
                    s = math.sqrt(abs(med0[j]) + rnt[j])
                    sig0[j] = s if s != 0.0 else np.nan
                # A jump is found in the first round iff the largest ratio exceeds the threshold.
                # Rounding and division by sigma are monotonic, so the largest ratio is that
                # of the largest |float32(|d| - median)|, found at one end of the sorted |d|.
                for j in range(w):
                    e_lo = abs(np.float32(np.float64(da[0, j]) - med0[j]))
                    e_hi = abs(np.float32(np.float64(da[n - 1, j]) - med0[j]))
                    e = np.float64(e_hi if e_hi > e_lo else e_lo)
                    slow[j] |= np.uint8(e / sig0[j] > thr)
            # packed output: group DQ (with single-pass jumps) and hint bits
            for i in range(nints):
                o = out[i, 0, y, x0 : x0 + w]
                q = gdq[i, 0, y, x0 : x0 + w]
                for j in range(w):
                    o[j] = q[j]
                for k in range(ndiffs):
                    d = dv[i * ndiffs + k]
                    o = out[i, k + 1, y, x0 : x0 + w]
                    q = gdq[i, k + 1, y, x0 : x0 + w]
                    for j in range(w):
                        ej = np.float64(d[j]) - med[j]
                        z = abs(ej) * isig[j]  # |ej| / sigma within 4e-16 (relative)
                        h = np.uint16(q[j])
                        h |= m_jump if z > thr4 else np.uint16(0)
                        h |= m_nbr if (z < nbr_max) & (z > nbr_min) else np.uint16(0)
                        near = (z >= b_jump[0]) & (z <= b_jump[1])
                        near |= (z >= b_min[0]) & (z <= b_min[1])
                        near |= (z >= b_max[0]) & (z <= b_max[1])
                        slow[j] |= np.uint8(near)
                        h |= m_big1 if ej >= e1 else np.uint16(0)
                        h |= m_big2 if ej >= e2 else np.uint16(0)
                        o[j] = h
            for j in range(w):
                if slow[j]:
                    _pixel_general(
                        data,
                        gdq,
                        out,
                        y,
                        x0 + j,
                        gain,
                        rnoise,
                        nframes,
                        mode,
                        thr4,
                        thr3,
                        thr2,
                        only_use_ints,
                        hints,
                        nbr_on,
                        nbr_min,
                        nbr_max,
                        after_on,
                        e1,
                        e2,
                        fd,
                        absd,
                        ratio,
                        maxr,
                        buf,
                        col,
                        pg,
                    )
    return out


def twopoint_block(
    data: np.ndarray,
    gdq: np.ndarray,
    gain: np.ndarray,
    readnoise: np.ndarray,
    params: JumpParams,
    mode: int,
) -> np.ndarray:
    """Per-pixel pass on one block: primary jumps plus hint bits, packed in ``uint16``.

    ``data`` (nints, ngroups, y, x) in DN, ``gdq`` uint8 same shape, ``gain`` (e/DN) and
    ``readnoise`` (DN, CDS) (y, x). ``mode`` from :func:`frame_mode`. The low byte of the result
    is the group DQ with JUMP_DET added; bits 8-10 are hints for :func:`finish_block`.
    """
    if data.ndim != 4 or gdq.shape != data.shape:
        raise ShapeMismatchError(f"jump: SCI {data.shape} and GROUPDQ {gdq.shape} must be equal 4-D shapes")
    if gain.shape != data.shape[2:] or readnoise.shape != data.shape[2:]:
        raise ShapeMismatchError(
            f"jump: GAIN {gain.shape} and READNOISE {readnoise.shape} must match the pixels {data.shape[2:]}"
        )
    after_on = params.after_jump_flag_n1 > 0 or params.after_jump_flag_n2 > 0
    nbr_on = bool(params.flag_4_neighbors)
    if mode == MODE_SKIP:
        nbr_on = after_on = False
    return _twopoint_kernel(
        np.ascontiguousarray(data, dtype=np.float32),
        np.ascontiguousarray(gdq, dtype=np.uint8),
        np.ascontiguousarray(gain, dtype=np.float32),
        np.ascontiguousarray(readnoise, dtype=np.float32),
        float(max(params.nframes, 1)),
        int(mode),
        float(params.rejection_threshold),
        float(params.four_group_rejection_threshold),
        float(params.three_group_rejection_threshold),
        bool(params.only_use_ints),
        nbr_on,
        float(params.min_jump_to_flag_neighbors),
        float(params.max_jump_to_flag_neighbors),
        after_on,
        float(params.after_jump_flag_e1),
        float(params.after_jump_flag_e2),
        _sorting_network(min(data.shape[0] * (data.shape[1] - 1), _FAST_MAX_DIFFS)),
        _CHUNK,
    )


def full_jump_groups(packed: np.ndarray) -> np.ndarray:
    """(nints, ngroups) bool: groups of a block where every pixel is JUMP_DET or DO_NOT_USE.

    The sigma-clip mode un-flags lone jumps in such groups; combine blocks with ``all``.
    """
    low = (packed & np.uint16(_JUMP | _DNU)) != 0
    return low.all(axis=(2, 3))


@njit(cache=True, nogil=True, inline="always")
def _nbr_jump(w, clean):
    """Does packed value ``w`` (a neighbour or the pixel) trigger neighbour flagging?"""
    if not (w & _HINT_NBR):
        return False
    wg = np.uint8(w & 0xFF)
    if clean and wg == _JUMP:
        return False
    return (wg & _JUMP) != 0


@njit(cache=True, nogil=True)
def _finish_kernel(packed, full_groups, clean_full, nbr_on, n1, n2):
    nints, ngroups, nyp, nxp = packed.shape
    ny = nyp - 2
    nx = nxp - 2
    out = np.empty((nints, ngroups, ny, nx), dtype=np.uint8)
    bad = _SAT | _DNU
    # neighbours (same group), then redundant JUMP_DET bits on SATURATED / DO_NOT_USE groups
    # removed; removing them before the after-jump pass is safe: such groups carry no hints.
    for i in range(nints):
        for k in range(ngroups):
            clean = clean_full and full_groups[i, k]
            plane = packed[i, k]
            for y in range(ny):
                for x in range(nx):
                    gd = np.uint8(plane[y + 1, x + 1] & 0xFF)
                    if clean and gd == _JUMP:
                        gd = np.uint8(0)
                    if nbr_on and k > 0 and (gd & bad) == 0:
                        if (
                            _nbr_jump(plane[y + 1, x + 1], clean)
                            or _nbr_jump(plane[y, x + 1], clean)
                            or _nbr_jump(plane[y + 2, x + 1], clean)
                            or _nbr_jump(plane[y + 1, x], clean)
                            or _nbr_jump(plane[y + 1, x + 2], clean)
                        ):
                            gd |= _JUMP
                    if (gd & (_JUMP | _DNU)) == (_JUMP | _DNU):
                        gd ^= _JUMP
                    if (gd & (_JUMP | _SAT)) == (_JUMP | _SAT):
                        gd ^= _JUMP
                    out[i, k, y, x] = gd
    if n1 <= 0 and n2 <= 0:
        return out
    # after-jump flagging: groups following big jumps (per pixel, along the groups)
    m1 = min(n1, ngroups - 2)
    m2 = min(n2, ngroups - 2)
    for i in range(nints):
        for y in range(ny):
            for x in range(nx):
                add_until = -1
                for k in range(1, ngroups):
                    gd = out[i, k, y, x]
                    v = packed[i, k, y + 1, x + 1]
                    j = (gd & _JUMP) != 0
                    b1 = j and (v & _HINT_BIG1) != 0
                    b2 = j and (v & _HINT_BIG2) != 0
                    if (b1 or b2 or k <= add_until) and (gd & bad) == 0:
                        out[i, k, y, x] = gd | _JUMP
                    if b1 and m1 > 0:
                        add_until = max(add_until, k + m1)
                    if b2 and m2 > 0:
                        add_until = max(add_until, k + m2)
    return out


def finish_block(
    packed_halo: np.ndarray,
    params: JumpParams,
    full_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Neighbour and after-jump flagging of one block, from :func:`twopoint_block` output.

    ``packed_halo`` is the packed array of the block with one extra pixel on every side in
    (y, x) (zeros outside the detector); the result is the final uint8 group DQ of the block
    without the halo. ``full_groups`` (sigma-clip mode only): :func:`full_jump_groups` of the
    whole frame. Redundant JUMP_DET bits on DO_NOT_USE or SATURATED groups are removed.
    """
    nints, ngroups = packed_halo.shape[:2]
    clean = full_groups is not None
    fg = np.zeros((nints, ngroups), dtype=np.bool_) if full_groups is None else np.asarray(full_groups, bool)
    return _finish_kernel(
        np.ascontiguousarray(packed_halo, dtype=np.uint16),
        fg,
        clean,
        bool(params.flag_4_neighbors),
        int(params.after_jump_flag_n1),
        int(params.after_jump_flag_n2),
    )


def edge_triggers(packed: np.ndarray) -> tuple:
    """What a block's outer rows and columns tell its neighbours' neighbour flagging.

    ``packed`` is a block of :func:`twopoint_block` output. Returns, for its first row, last row,
    first column and last column (in that order), ``(index, value)``: the flat indices into that
    (nints, ngroups, n) edge of the values with a jump and the neighbour hint, and those packed
    values. Nothing else of an edge can flag a neighbour (see :func:`_nbr_jump`), so a neighbour
    rebuilt from these (:func:`halo_from_edges`) is finished exactly as with the whole block.
    A cosmic ray touches few pixels: this is small where the edges themselves are not.
    """
    trig = np.uint16(_HINT_NBR)
    jump = np.uint16(_JUMP)
    out = []
    for edge in (packed[:, :, 0, :], packed[:, :, -1, :], packed[:, :, :, 0], packed[:, :, :, -1]):
        flat = np.ascontiguousarray(edge).reshape(-1)
        idx = np.flatnonzero((flat & trig != 0) & (flat & jump != 0))
        out.append((idx, flat[idx]))
    return tuple(out)


def halo_from_edges(packed: np.ndarray, above=None, below=None, left=None, right=None) -> np.ndarray:
    """``packed`` with a one-pixel halo for :func:`finish_block`, rebuilt from the neighbours'
    :func:`edge_triggers`: ``above`` is the block above's (its last row is this block's halo
    row), ``below``, ``left`` and ``right`` likewise; None (no neighbour) leaves zeros, as
    beyond the detector."""
    nints, ngroups, ny, nx = packed.shape
    out = np.zeros((nints, ngroups, ny + 2, nx + 2), dtype=np.uint16)
    out[:, :, 1:-1, 1:-1] = packed
    inner = slice(1, -1)
    # (neighbour, which of its edges, where it goes in the halo, its length)
    for nb, which, where, n in (
        (above, 1, (0, inner), nx),
        (below, 0, (-1, inner), nx),
        (left, 3, (inner, 0), ny),
        (right, 2, (inner, -1), ny),
    ):
        if nb is None:
            continue
        idx, val = nb[which]
        edge = np.zeros(nints * ngroups * n, dtype=np.uint16)
        edge[idx] = val
        out[(slice(None), slice(None), *where)] = edge.reshape(nints, ngroups, n)
    return out


def flag_bad_gain(pixeldq: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """PIXELDQ with NO_GAIN_VALUE | DO_NOT_USE added where the gain is <= 0 or NaN."""
    bad = ~(np.asarray(gain) > 0)
    flag = np.uint32(FLAGS["NO_GAIN_VALUE"] | FLAGS["DO_NOT_USE"])
    return np.asarray(pixeldq, dtype=np.uint32) | np.where(bad, flag, np.uint32(0))


def detect_jumps(
    data: np.ndarray,
    gdq: np.ndarray,
    pixeldq: np.ndarray,
    gain: np.ndarray,
    readnoise: np.ndarray,
    params: JumpParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Jump detection on a whole exposure held in memory: returns new (GROUPDQ, PIXELDQ).

    The reference whole-frame composition of :func:`frame_mode`, :func:`twopoint_block` and
    :func:`finish_block` (the step runs the same functions on tiles).
    """
    gdq = np.asarray(gdq, dtype=np.uint8)
    dnu_groups = ((gdq & _DNU) != 0).all(axis=(2, 3))
    mode = frame_mode(dnu_groups, params)
    packed = twopoint_block(data, gdq, gain, readnoise, params, mode)
    full = full_jump_groups(packed) if mode == MODE_SIGMA_CLIP else None
    padded = np.pad(packed, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return finish_block(padded, params, full), flag_bad_gain(pixeldq, gain)
