"""Reference-pixel kernels: bias-drift signals from the reference pixels, and their subtraction.

Near-infrared detectors (2048x2048, four 512-column amplifiers) have 4 reference rows at the top
and bottom and 4 reference columns at each side. Per integration and group:

1. per amplifier (and per column parity when ``odd_even_columns``), the sigma-clipped mean of
   the top and of the bottom reference rows, averaged, is subtracted from the amplifier;
2. the running median (``side_smoothing_length`` rows, reflected at the ends) of the left and
   right reference columns, averaged, times ``side_gain``, is subtracted row by row.

Subarrays read by one output use one clipped mean of the pixels flagged REFERENCE_PIXEL (per
column parity). MIRI (1032 columns, amplifier = column mod 4) uses its left and right reference
columns, per row parity, on first-group-subtracted data.

The statistics run on the (small) reference strips and give a few numbers per group; the
subtraction is a per-tile broadcast that needs only the tile's global column and row offsets.
All coordinates here are *global* full-frame coordinates in the frame where amplifiers are
column ranges (DMS frame for detectors read along x; transposed otherwise). Flips do not change
which pixels share an amplifier or parity, so they are not needed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from jwst_dask.dq import FLAGS

__all__ = [
    "clipped_mean",
    "sigmaclip",
    "subarray_signals_from_blocks",
    "nir_amp_signals",
    "nir_side_signal",
    "subarray_signals",
    "apply_nir",
    "wide_groups",
    "miri_signals",
    "apply_miri",
    "NIR_SIZE",
    "AMP_WIDTH",
]

NIR_SIZE = 2048
AMP_WIDTH = 512
_DNU = FLAGS["DO_NOT_USE"]
_REF = FLAGS["REFERENCE_PIXEL"]


def clipped_mean(values: np.ndarray, dq: np.ndarray, siglimit: float = 3.0) -> float:
    """Sigma-clipped mean (scipy.stats.sigmaclip, ``siglimit`` both sides) of the values whose
    DQ lacks DO_NOT_USE; NaN when none is usable. Constant data: their plain mean."""
    good = values[(dq & _DNU) == 0]
    if good.size == 0:
        return np.nan
    if np.std(good, dtype=np.float64) != 0.0:
        return sigmaclip(good, siglimit, siglimit).mean()
    return good.mean(dtype=np.float64)


def sigmaclip(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """The values left by ``scipy.stats.sigmaclip(values, low, high)`` (which the official
    correction uses), with the same operations in the same dtype, so the same values to the bit:
    drop those outside [mean - low * std, mean + high * std] until none is dropped.

    Stated here because importing ``scipy.stats`` takes about 0.5 s, in the first refpix task of
    every process, with the interpreter lock held (docs/benchmarks.md)."""
    c = np.asarray(values).ravel()
    while True:
        c_std = c.std()
        c_mean = c.mean()
        kept = c[(c >= c_mean - c_std * low) & (c <= c_mean + c_std * high)]
        if kept.size == c.size:
            return kept
        c = kept


def _avg_none(a, b):
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return 0.5 * (a + b)


def wide_groups(nints: int, ngroups: int, use_side: bool, zeroframe: bool = False) -> np.ndarray:
    """(nints, ngroups) bool: groups the official correction computes in float64.

    With the side correction on, the official code keeps its working group array in float64
    after the first group of the first integration (and for ZEROFRAME, processed afterwards), so
    those groups' means and subtractions are float64; the first group is float32 throughout.
    """
    wide = np.full((nints, ngroups), bool(use_side))
    if use_side and not zeroframe:
        wide[0, 0] = False
    return wide


def nir_amp_signals(
    strips: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    odd_even_columns: bool = True,
    siglimit: float = 3.0,
    wide: np.ndarray | None = None,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Top/bottom reference signal per (integration, group, amplifier, column parity).

    ``strips``: up to two ``(values (nints, ngroups, rows, cols), dq (rows, cols), gx (cols,))``
    tuples, the top and the bottom reference rows present in the data (global column indices
    ``gx``). ``wide`` (nints, ngroups) bool selects float64 statistics (else float32, see
    :func:`wide_groups`). Returns float64 (nints, ngroups, 4, 2), parity 0 = even global column;
    NaN where an amplifier gets no correction (no usable reference pixel for one of its parities).
    ``shape`` (nints, ngroups) is needed when there are no strips.
    """
    if not strips:
        if shape is None:
            raise ValueError("nir_amp_signals: no reference strips and no shape")
        return np.full((*shape, 4, 2), np.nan)
    nints, ngroups = strips[0][0].shape[:2]
    if wide is None:
        wide = np.zeros((nints, ngroups), bool)
    out = np.full((nints, ngroups, 4, 2), np.nan)
    for i in range(nints):
        for g in range(ngroups):
            dtype = np.float64 if wide[i, g] else np.float32
            for amp in range(4):
                per_edge = []
                for values, dq, gx in strips:
                    plane = values[i, g].astype(dtype)
                    sel_amp = (gx // AMP_WIDTH) == amp
                    if odd_even_columns:
                        pair = []
                        for par in (0, 1):
                            sel = sel_amp & ((gx % 2) == par)
                            pair.append(clipped_mean(plane[:, sel], dq[:, sel], siglimit))
                        per_edge.append(pair)
                    else:
                        m = clipped_mean(plane[:, sel_amp], dq[:, sel_amp], siglimit)
                        per_edge.append([m, m])
                if len(per_edge) == 1:
                    per_edge.append([np.nan, np.nan])
                sig = [_avg_none(per_edge[0][p], per_edge[1][p]) for p in (0, 1)]
                if np.isnan(sig[0]) or np.isnan(sig[1]):
                    continue
                out[i, g, amp] = sig
    return out


def _tb_for_columns(tb: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """(nints, ngroups, ncols) float64 signal per column (0 where NaN)."""
    sig = tb[:, :, np.clip(gx // AMP_WIDTH, 0, 3), gx % 2]
    return np.where(np.isnan(sig), 0.0, sig)


@njit(cache=True, nogil=True)
def _window_medians(d, m, length):
    nrows = d.shape[0] - length + 1
    ncols = d.shape[1]
    out = np.full(nrows, np.nan)
    buf = np.empty(length * ncols, dtype=d.dtype)
    for r in range(nrows):
        k = 0
        for rr in range(r, r + length):
            for c in range(ncols):
                if m[rr, c]:
                    buf[k] = d[rr, c]
                    k += 1
        if k == 0:
            continue
        w = np.sort(buf[:k])
        if k % 2 == 1:
            out[r] = w[k // 2]
        else:
            out[r] = (w[k // 2 - 1] + w[k // 2]) / 2
    return out


def _running_median(data: np.ndarray, good: np.ndarray, length: int) -> np.ndarray:
    """Median over a ``length``-row window (rows reflected at the ends, edge row not repeated)
    of the good pixels of a (rows, cols) strip; NaN where a window has none."""
    if length % 2 == 0:
        length += 1
    half = length // 2
    nrows = data.shape[0]
    idx = np.concatenate(
        [np.arange(half, 0, -1), np.arange(nrows), np.arange(nrows - 2, nrows - 2 - half, -1)]
    )
    return _window_medians(np.ascontiguousarray(data[idx]), np.ascontiguousarray(good[idx]), length)


def nir_side_signal(
    left: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    right: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    gy: np.ndarray,
    tb: np.ndarray,
    smoothing_length: int = 11,
    nrows_full: int = NIR_SIZE,
    wide: np.ndarray | None = None,
) -> np.ndarray:
    """Side reference signal per (integration, group, global row): float64 (nints, ngroups, nrows_full).

    ``left``/``right``: ``(values (nints, ngroups, rows, cols), dq (rows, cols), gx (cols,))`` of
    the side reference columns present (rows at global rows ``gy``), or None. The top/bottom
    signal ``tb`` is removed first (as the correction does); rows of the full frame that are not
    in the data count as unusable. Left and right running medians are averaged (one alone if the
    other is NaN; 0 if both are). ``wide`` as in :func:`nir_amp_signals`.
    """
    sides = [s for s in (left, right) if s is not None]
    nints, ngroups = sides[0][0].shape[:2] if sides else tb.shape[:2]
    if wide is None:
        wide = np.zeros((nints, ngroups), bool)
    out = np.zeros((nints, ngroups, nrows_full))
    for i in range(nints):
        for g in range(ngroups):
            meds = []
            dtype = np.float64 if wide[i, g] else np.float32
            for values, dq, gx in sides:
                full = np.zeros((nrows_full, len(gx)), dtype=dtype)
                good = np.zeros((nrows_full, len(gx)), dtype=bool)
                sig = _tb_for_columns(tb, gx)[min(i, tb.shape[0] - 1), min(g, tb.shape[1] - 1)]
                corr = values[i, g].astype(dtype) - sig.astype(dtype)
                full[gy] = corr
                good[gy] = (dq & _DNU) == 0
                meds.append(_running_median(full, good, smoothing_length))
            if not meds:
                continue
            a = meds[0]
            b = meds[1] if len(meds) > 1 else np.full(nrows_full, np.nan)
            comb = np.where(
                np.isnan(a), np.where(np.isnan(b), 0.0, b), np.where(np.isnan(b), a, 0.5 * (a + b))
            )
            out[i, g] = comb
    return out


def subarray_signals_from_blocks(
    values: list[np.ndarray],
    dq: list[np.ndarray],
    gy: list[np.ndarray],
    gx: list[np.ndarray],
    odd_even_columns: bool = True,
    siglimit: float = 3.0,
    flip_y: bool = False,
    flip_x: bool = False,
    batch: int = 64,
) -> np.ndarray:
    """:func:`subarray_signals` of candidate pixels given as blocks, ``batch`` integrations at a
    time (the same values: each integration and group is its own statistic).

    Block ``k`` holds values ``values[k]`` (nints, ngroups, r, c), PIXELDQ ``dq[k]`` (r, c) and
    global rows and columns ``gy[k]``, ``gx[k]`` (r, c); the pixels are taken in detector read
    order (rows, then columns, each reversed when ``flip_y`` / ``flip_x``), as the official
    correction reads them. Only one batch of integrations is ever gathered into one array.
    """
    ys = np.concatenate([g.ravel() for g in gy])
    xs = np.concatenate([g.ravel() for g in gx])
    order = np.lexsort((-xs if flip_x else xs, -ys if flip_y else ys))
    pdq = np.concatenate([d.ravel() for d in dq])[order]
    nints, ngroups = values[0].shape[:2]
    out = np.empty((nints, ngroups, 4, 2))
    for i0 in range(0, nints, max(int(batch), 1)):
        i1 = min(i0 + int(batch), nints)
        part = np.concatenate([v[i0:i1].reshape(i1 - i0, ngroups, -1) for v in values], axis=2)
        out[i0:i1] = subarray_signals(part[:, :, order], pdq, xs[order], odd_even_columns, siglimit)
    return out


def subarray_signals(
    values: np.ndarray, dq: np.ndarray, gx: np.ndarray, odd_even_columns: bool = True, siglimit: float = 3.0
) -> np.ndarray:
    """One-output subarray signal per (integration, group, parity): (nints, ngroups, 4, 2) (float32 maths)
    (the same for the four amplifier slots, so :func:`apply_nir` applies it).

    ``values`` (nints, ngroups, n) are candidate pixels, ``dq`` (n,) their PIXELDQ and ``gx`` (n,)
    their global columns, in row-major order; those flagged REFERENCE_PIXEL and not DO_NOT_USE
    are used. NaN (no correction) when there are none.
    """
    nints, ngroups = values.shape[:2]
    out = np.full((nints, ngroups, 4, 2), np.nan)
    use = ((dq & _REF) == _REF) & ((dq & _DNU) == 0)
    if not use.any():
        return out
    zero = np.zeros(int(use.sum()), dtype=np.uint32)
    v = values[:, :, use]
    par = gx[use] % 2
    for i in range(nints):
        for g in range(ngroups):
            if odd_even_columns:
                for p in (0, 1):
                    sel = par == p
                    out[i, g, :, p] = clipped_mean(v[i, g, sel], zero[sel], siglimit) if sel.any() else np.nan
            else:
                out[i, g, :, :] = clipped_mean(v[i, g], zero, siglimit)
    return out


@njit(cache=True, nogil=True)
def _apply_nir(sci, gx0, gy0, tb, side, side_gain, use_side, wide):
    nints, ngroups, ny, nx = sci.shape
    out = np.empty(sci.shape, dtype=np.float32)
    for i in range(nints):
        for g in range(ngroups):
            w = wide[i, g]
            for x in range(nx):
                gx = gx0 + x
                amp = min(gx // AMP_WIDTH, 3)
                v = tb[i, g, amp, gx % 2]
                if np.isnan(v):
                    v = 0.0
                v32 = np.float32(v)
                for y in range(ny):
                    if w:
                        r64 = np.float64(sci[i, g, y, x]) - v
                        if use_side:
                            r64 = r64 - side_gain * side[i, g, gy0 + y]
                        out[i, g, y, x] = np.float32(r64)
                    else:
                        r = sci[i, g, y, x] - v32
                        if use_side:
                            r = np.float32(np.float64(r) - side_gain * side[i, g, gy0 + y])
                        out[i, g, y, x] = r
    return out


def apply_nir(
    sci: np.ndarray,
    gx0: int,
    gy0: int,
    tb: np.ndarray,
    side: np.ndarray | None = None,
    side_gain: float = 1.0,
    wide: np.ndarray | None = None,
) -> np.ndarray:
    """Subtract the signals from a tile (nints, ngroups, ty, tx) whose first pixel is at global
    (gy0, gx0): ``sci - tb[amp, parity] - side_gain * side[row]``, stored as float32. Groups
    not ``wide`` (see :func:`wide_groups`) subtract ``tb`` in float32 first. NaN signals count as 0."""
    nints, ngroups = sci.shape[:2]
    use_side = side is not None
    side_arr = np.zeros((1, 1, 1)) if side is None else np.ascontiguousarray(side, dtype=np.float64)
    if wide is None:
        wide = np.zeros((nints, ngroups), bool)
    return _apply_nir(
        np.ascontiguousarray(sci, dtype=np.float32),
        int(gx0),
        int(gy0),
        np.ascontiguousarray(tb, dtype=np.float64),
        side_arr,
        float(side_gain),
        use_side,
        np.ascontiguousarray(wide, dtype=np.bool_),
    )


def miri_signals(
    left: np.ndarray,
    left_dq: np.ndarray,
    right: np.ndarray,
    right_dq: np.ndarray,
    odd_even_rows: bool = True,
    siglimit: float = 3.0,
) -> np.ndarray:
    """MIRI signal per (integration, group, amplifier, row parity): float32 (nints, ngroups, 4, 2).

    ``left``/``right``: the 4 left / right reference columns (nints, ngroups, 1024, 4) of the
    first-group-subtracted data, with their DQ (1024, 4). Column k is amplifier k. Group 0 gets
    0; from the first group with an amplifier/parity lacking usable pixels on, every later group
    (of this and later integrations) gets 0, as the official loop stops there.
    """
    nints, ngroups = left.shape[:2]
    out = np.zeros((nints, ngroups, 4, 2), dtype=np.float32)
    for i in range(nints):
        for g in range(1, ngroups):
            sig = np.zeros((4, 2), dtype=np.float32)
            for amp in range(4):
                if odd_even_rows:
                    vals = []
                    for par in (0, 1):
                        lm = clipped_mean(left[i, g, par::2, amp], left_dq[par::2, amp], siglimit)
                        rm = clipped_mean(right[i, g, par::2, amp], right_dq[par::2, amp], siglimit)
                        vals.append((lm, rm))
                    if any(np.isnan(v[0]) or np.isnan(v[1]) for v in vals):
                        return out
                    sig[amp] = [0.5 * (lm + rm) for lm, rm in vals]
                else:
                    lm = clipped_mean(left[i, g, :, amp], left_dq[:, amp], siglimit)
                    rm = clipped_mean(right[i, g, :, amp], right_dq[:, amp], siglimit)
                    if np.isnan(lm) or np.isnan(rm):
                        return out
                    sig[amp] = 0.5 * (lm + rm)
            out[i, g] = sig
    return out


def first_group_subtracted(sci: np.ndarray) -> np.ndarray:
    """float32 ``sci - sci[:, :1]`` computed in float64, as the MIRI correction does."""
    return (sci.astype(np.float64) - sci[:, :1].astype(np.float64)).astype(np.float32)


def apply_miri(sci: np.ndarray, gx0: int, gy0: int, sig: np.ndarray) -> np.ndarray:
    """MIRI tile correction: subtract group 0, subtract ``sig[amp = x mod 4, row parity]``, add
    group 0 back (float64 sums stored as float32)."""
    ny, nx = sci.shape[-2:]
    gx = np.arange(gx0, gx0 + nx)
    gy = np.arange(gy0, gy0 + ny)
    per_pix = sig[:, :, (gx % 4)[None, :], (gy % 2)[:, None]]  # (nints, ngroups, ny, nx)
    diff = first_group_subtracted(sci)
    diff = diff - per_pix
    return (diff.astype(np.float64) + sci[:, :1].astype(np.float64)).astype(np.float32)
