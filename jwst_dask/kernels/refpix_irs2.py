"""NIRSpec IRS2 reference-pixel correction: the maths, on numpy arrays.

In IRS2 readout each detector row (detector orientation: 2048 rows of 3200 samples) holds five
readouts of ``sector`` = 640 samples: the reference output (sector 0), then the four amplifier
outputs, whose samples alternate ``n`` (16) normal pixels and ``r`` (4) interleaved reference
pixels (a row of an output starts and ends with ``n / 2`` normal pixels). Sectors 0, 2 and 4 are
read right to left. In time order a row of one output is ``row`` = 712 samples long: the 512
normal reads, the 128 reference reads, one sample of overhead at each jump and ``pad`` samples at
the end of the row.

Per integration (the kernels here follow the seeds' description; the layout arithmetic is that of
the official implementation):

1. reference pixels flagged bad (``BAD_REF_PIXEL`` in PIXELDQ, the REFPIX reference's DQ table, or
   found intermittently bad: pair means, standard deviations or pair differences above the mean
   plus ``ovr_corr_mitigation_ftr`` standard deviations, sigma-clipped) are replaced by the mean
   of the nearest good reference reads of the same phase (one period before and after), else by
   a good neighbour of the other pair, else zero;
2. the mean over the ramp is subtracted from every pixel (added back at the end);
3. per group and output, a straight line in time, fitted to the 4 top and 4 bottom detector rows,
   is removed from every non-zero sample;
4. the reference output's time series is filled in its gaps by a cosine-weighted interpolation
   and then by an iterated Fourier low-pass filter;
5. per output ``k``: ``ifft(fft(refpix_k) * beta_k + fft(refout) * alpha_k)``, with ``refpix_k``
   the time series of the interleaved reference reads, is the correction subtracted from the
   normal pixels of that output.

Orientation: science (DMS) arrays are (y=3200, x=2048); NRS1 is the transpose of the detector
orientation, NRS2 the transpose flipped on both axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from jwst_dask.errors import ShapeMismatchError

__all__ = [
    "Irs2Layout",
    "DETECTORS",
    "NOUTPUTS",
    "to_detector",
    "clipped_stats",
    "flag_intermittent",
    "replace_bad",
    "dq_table_bad_columns",
    "fill_filter",
    "cosine_fill",
    "fft_fill",
    "fit_line",
    "group_correction",
    "apply_tile",
    "complex_from_rows",
    "integration_correction",
    "EDGE_X",
]

#: the five readouts of an IRS2 row: the reference output and four amplifier outputs
NOUTPUTS = 5
#: the detectors IRS2 exists for, and how their science orientation relates to the detector's
DETECTORS = ("NRS1", "NRS2")


@dataclass(frozen=True)
class Irs2Layout:
    """The IRS2 readout geometry: ``n`` normal reads between jumps to ``r`` reference reads
    (NRS_NORM, NRS_REF), ``pad`` samples of new-row overhead, ``ny`` detector rows."""

    n: int = 16
    r: int = 4
    pad: int = 8
    ny: int = 2048

    def __post_init__(self):
        if self.n <= 0 or 512 % self.n or self.r <= 0 or self.r % 2 or self.n % 2:
            raise ShapeMismatchError(
                f"IRS2 layout NRS_NORM={self.n}, NRS_REF={self.r}: NRS_NORM must be an even divisor "
                "of 512 and NRS_REF a positive even number"
            )

    @property
    def sector(self) -> int:
        """Samples of one output in a detector row (640)."""
        return 512 + 512 // self.n * self.r

    @property
    def width(self) -> int:
        """Samples of a detector row, all five outputs (3200)."""
        return NOUTPUTS * self.sector

    @property
    def row(self) -> int:
        """Time samples of one row of one output, overheads included (712)."""
        return (self.n + self.r + 2) * 512 // self.n + self.pad

    @property
    def nref(self) -> int:
        """Interleaved reference reads per row of one output (128)."""
        return 512 // self.n * self.r

    @cached_property
    def hnorm(self) -> np.ndarray:
        """Read position (within an output, in read order) of each of the 512 normal pixels."""
        i = np.arange(512)
        return i + self.r * ((i + self.n // 2) // self.n)

    @cached_property
    def href(self) -> np.ndarray:
        """Read position of each interleaved reference pixel."""
        i = np.arange(self.nref)
        return i + self.n * (i // self.r) + self.n // 2

    @cached_property
    def hnorm1(self) -> np.ndarray:
        """Time sample of each normal read (a jump costs one sample each way)."""
        i = np.arange(512)
        return i + (self.r + 2) * ((i + self.n // 2) // self.n)

    @cached_property
    def href1(self) -> np.ndarray:
        """Time sample of each reference read."""
        i = np.arange(self.nref)
        return i + (self.n + 2) * (i // self.r) + self.n // 2 + 1

    @cached_property
    def ref_series_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(target, source)`` time samples: the reference time series takes, around each block of
        reference reads, the reads of each pair in turn, each twice (the official ordering)."""
        nblock, blen = 512 // self.n, self.n + self.r + 2
        half = self.n // 2 + 1
        lo = half - self.r // 2
        order = np.arange(self.r).reshape(2, self.r // 2).T
        pattern = np.concatenate((order, order), axis=1).ravel() + half
        if self.r % 4 == 2:
            pattern = pattern.reshape(-1, 2)[:, ::-1].ravel()
        base = np.arange(nblock)[:, None] * blen
        target = (base + np.arange(lo, lo + 2 * self.r)[None, :]).ravel()
        source = (base + pattern[None, :]).ravel()
        return target, source

    @cached_property
    def normal_columns(self) -> np.ndarray:
        """Bool over the 3200 samples of a detector row: True for normal pixels."""
        per = np.ones(self.sector, bool)
        per[self.href] = False
        mask = np.zeros(self.width, bool)
        for k in range(1, NOUTPUTS):
            mask[k * self.sector : (k + 1) * self.sector] = per if k % 2 else per[::-1]
        return mask

    @cached_property
    def interleaved_columns(self) -> np.ndarray:
        """Bool over a detector row: True for interleaved reference reads; the reference output
        gets the pattern of an amplifier output read in the same direction (sector 2)."""
        mask = ~self.normal_columns
        mask[: self.sector] = mask[2 * self.sector : 3 * self.sector]
        return mask

    @cached_property
    def read_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(output, read position)`` of every detector column (0..3199)."""
        c = np.arange(self.width)
        k, local = np.divmod(c, self.sector)
        flipped = (k % 2) == 0
        return k, np.where(flipped, self.sector - 1 - local, local)

    @cached_property
    def normal_number(self) -> np.ndarray:
        """For each read position of an output, the index of its normal pixel (-1: reference)."""
        out = np.full(self.sector, -1, np.int64)
        out[self.hnorm] = np.arange(512)
        return out

    @cached_property
    def time_mean(self) -> float:
        """Mean of the time sample numbers of a frame (the fitted lines are centred on it)."""
        return float(np.arange(self.ny * self.row, dtype=np.float32).mean(dtype=np.float64))

    def science_normal_rows(self, detector: str) -> np.ndarray:
        """Bool over the 3200 science rows: True for normal pixels (the rows the step keeps)."""
        return self.normal_columns if detector == "NRS1" else self.normal_columns[::-1]

    def science_to_detector_column(self, y: np.ndarray, detector: str) -> np.ndarray:
        """Detector column (0..3199) of science rows ``y``."""
        return y if detector == "NRS1" else self.width - 1 - y

    def science_to_detector_row(self, x: np.ndarray, detector: str) -> np.ndarray:
        """Detector row of science columns ``x``."""
        return x if detector == "NRS1" else self.ny - 1 - x

    def science_reference_rows(self, detector: str) -> np.ndarray:
        """Science rows holding reference data (sorted): the reference output and every
        interleaved reference read."""
        return np.flatnonzero(~self.science_normal_rows(detector))

    def pair_starts(self) -> np.ndarray:
        """First science row of every pair of reference reads checked for intermittent badness:
        in each of the five 640-row blocks, from ``n / 2`` every ``n + r`` rows, pairs of 2."""
        starts = []
        for k in range(NOUTPUTS):
            for s in range(self.n // 2, self.sector, self.n + self.r):
                starts.extend(k * self.sector + s + q for q in range(0, self.r, 2))
        return np.array(starts, dtype=np.int64)


def to_detector(a: np.ndarray, detector: str) -> np.ndarray:
    """``a`` (..., y, x) in science orientation as (..., detector row, detector column)."""
    t = np.swapaxes(a, -1, -2)
    return t if detector == "NRS1" else t[..., ::-1, ::-1]


def complex_from_rows(values: np.ndarray) -> np.ndarray:
    """Complex64 coefficients from a REFPIX column storing real and imaginary parts in
    alternating rows."""
    v = np.asarray(values, dtype=np.float32)
    return (v[0::2] + 1j * v[1::2]).astype(np.complex64)


# --------------------------------------------------------------------------- bad reference pixels
def clipped_stats(values: np.ndarray, sigma: float, maxiters: int = 5) -> tuple[float, float]:
    """Mean and standard deviation of ``values`` after iterative clipping at ``sigma`` standard
    deviations about the median (both sides; at most ``maxiters`` passes), as astropy's
    ``sigma_clipped_stats`` with its defaults."""
    v = np.asarray(values)
    keep = np.isfinite(v)
    for _ in range(maxiters):
        kept = v[keep]
        if kept.size == 0:
            break
        centre, spread = np.median(kept), np.std(kept)
        new = keep & (v >= centre - sigma * spread) & (v <= centre + sigma * spread)
        if new.sum() == keep.sum():
            break
        keep = new
    kept = v[keep]
    if kept.size == 0:
        return np.nan, np.nan
    return float(np.mean(kept)), float(np.std(kept))


def flag_intermittent(
    values: np.ndarray, rows: np.ndarray, initial_bad: np.ndarray, layout: Irs2Layout, n_sigma: float
) -> np.ndarray:
    """Science rows (bool over 3200) of reference pairs that look intermittently bad.

    ``values`` (nints, ngroups, len(rows), nx) holds the science rows ``rows`` (sorted, every
    reference row included); ``initial_bad`` (bool over 3200) the rows already known bad, left out
    of the statistics. Per integration and 640-row block, each pair's mean, standard deviation and
    mean absolute difference between its two reads are compared with the sigma-clipped mean plus
    ``n_sigma`` clipped standard deviations of all good pairs; a pair above in any test is bad in
    both reads. The result includes ``initial_bad``.
    """
    bad = initial_bad.copy()
    where = np.searchsorted(rows, np.arange(layout.width)).clip(0, len(rows) - 1)
    starts_all = layout.pair_starts()
    for k in range(NOUTPUTS):
        starts = starts_all[(starts_all >= k * layout.sector) & (starts_all < (k + 1) * layout.sector)]
        for i in range(values.shape[0]):
            good = ~(initial_bad[starts] | initial_bad[starts + 1])
            s = starts[good]
            if s.size == 0:
                continue
            a = values[i][:, where[s], :]
            b = values[i][:, where[s + 1], :]
            diffs = np.array([np.mean(np.abs(b[:, m] - a[:, m])) for m in range(s.size)])
            pair = np.stack((a, b), axis=2)  # (ngroups, npairs, 2, nx)
            means = np.array([np.mean(pair[:, m]) for m in range(s.size)])
            stds = np.array([np.std(pair[:, m]) for m in range(s.size)])
            high = np.zeros(s.size, bool)
            for stat in (diffs, means, stds):
                mean, std = clipped_stats(stat, n_sigma)
                high |= (stat - mean) > (n_sigma * std)
            bad[s[high]] = True
            bad[s[high] + 1] = True
    return bad


def replace_bad(
    values: np.ndarray,
    index: np.ndarray,
    bad_positions: list[int] | np.ndarray,
    bad: np.ndarray,
    is_ref: np.ndarray,
    lo: int,
    hi: int,
    period: int,
    axis: int,
) -> None:
    """Replace, in place, the reads at global positions ``bad_positions`` along ``axis`` of
    ``values`` (which holds the positions ``index``, sorted) by the mean of the good reads one
    ``period`` before and after (or the one that is good), else by a good reference read two
    positions before (or after), else by zero. ``bad``/``is_ref`` are bools over all positions;
    only positions in [lo, hi) are candidates."""
    moved = np.moveaxis(values, axis, -1)

    def at(p: int) -> np.ndarray:
        return moved[..., int(np.searchsorted(index, p))]

    def usable(p: int, need_ref: bool) -> bool:
        return lo <= p < hi and not bad[p] and (is_ref[p] if need_ref else True)

    for p in bad_positions:
        p = int(p)
        low, high = p - period, p + period
        v1 = at(low) if usable(low, False) else None
        v2 = at(high) if usable(high, False) else None
        if v1 is not None and v2 is not None:
            new = np.mean([v1, v2], axis=0)
        elif v1 is not None or v2 is not None:
            new = v1 if v1 is not None else v2
        elif usable(p - 2, True):
            new = at(p - 2)
        elif usable(p + 2, True):
            new = at(p + 2)
        else:
            new = 0.0
        moved[..., int(np.searchsorted(index, p))] = new


def dq_table_bad_columns(
    output: np.ndarray, odd_even: np.ndarray, mask: np.ndarray, layout: Irs2Layout
) -> list[list[int]]:
    """Per REFPIX DQ table row, the detector columns of the interleaved reference reads it marks
    bad: bit ``b`` of MASK (least significant first) is the ``b``-th block of reference reads of
    output OUTPUT (1..4), counting by increasing column; ODD_EVEN 1 or 2 names the first or second
    pair of the block (swapped for the outputs read right to left)."""
    out = []
    for o, oe, m in zip(np.asarray(output), np.asarray(odd_even), np.asarray(mask, dtype=np.uint64)):
        o, oe = int(o), int(oe)
        if not 1 <= o <= 4 or oe not in (1, 2):
            raise ValueError(f"REFPIX DQ row OUTPUT={o}, ODD_EVEN={oe}: OUTPUT must be 1..4, ODD_EVEN 1 or 2")
        which = 3 - oe if o % 2 == 0 else oe
        cols = []
        for b in range(32):
            if int(m) >> b & 1:
                first = o * layout.sector + layout.n // 2 + b * (layout.n + layout.r) + 2 * (which - 1)
                cols += [first, first + 1]
        out.append(cols)
    return out


# --------------------------------------------------------------------------------- time series
def fill_filter(layout: Irs2Layout) -> np.ndarray:
    """The Fourier low-pass used to fill gaps: 1 up to a cut-off, a cosine roll-off, 0 beyond
    (mirrored for negative frequencies), over ``ny * row`` samples."""
    blk = layout.n + layout.r + 2
    elen = 110000 // blk
    blen = (512 + 512 // layout.n * (layout.r + 2) + layout.pad) // blk * layout.ny // 2 - elen // 2
    half = layout.row * layout.ny // 2
    roll = (np.cos(np.arange(elen, dtype=np.float64) * np.pi / elen) + 1.0) / 2.0
    pos = np.concatenate(
        (np.ones(blen), roll, np.zeros(half - 2 * blen - 2 * elen), roll[::-1], np.ones(blen))
    )
    return np.concatenate((pos, np.roll(pos, -1)[::-1]))


def cosine_fill(series: np.ndarray) -> np.ndarray:
    """``series`` (float32, any shape, filled in time order) with its zero samples replaced by the
    sine-weighted (31 samples, circular) mean of the non-zero samples around them."""
    from scipy.ndimage import convolve1d

    flat = series.ravel()
    w = np.sin(np.arange(1, 32, dtype=np.float32) / np.float32(32.0) * np.pi)
    have = (flat != 0.0).astype(np.float32)
    num = convolve1d(flat, w, mode="wrap")
    den = convolve1d(have, w, mode="wrap")
    empty = den == 0.0
    est = np.where(empty, 0.0, num) / np.where(empty, 1.0, den)
    out = flat + (est * (1.0 - have)).astype(np.float32)
    return out.astype(np.float32).reshape(series.shape)


def fft_fill(series: np.ndarray, keep: np.ndarray, filt: np.ndarray, n_iter: int = 3) -> np.ndarray:
    """``series`` (float32) low-pass filtered ``n_iter`` times through ``filt``, the samples where
    ``keep`` is True put back after each pass (so only the others are interpolated)."""
    orig = series.ravel()
    keep = keep.ravel()
    p = orig.copy()
    for _ in range(n_iter):
        spec = np.fft.fft(p)
        spec *= filt
        p[:] = np.fft.ifft(spec).real
        p[keep] = orig[keep]
    return p.reshape(series.shape)


def fit_line(t: np.ndarray, v: np.ndarray) -> tuple[np.float32, np.float32]:
    """Ordinary least-squares intercept and slope of ``v`` against ``t`` over the non-zero ``v``
    (float32 arithmetic, as the official step); (0, 0) when nothing is non-zero."""
    m = v != 0.0
    x, y = t[m], v[m]
    if x.size < 1:
        return np.float32(0.0), np.float32(0.0)
    n = float(x.size)
    mx, my = x.mean(), y.mean()
    sxx, sxy = (x**2).sum(), (x * y).sum()
    slope = (sxy - n * mx * my) / (sxx - n * mx**2)
    return np.float32(my - slope * mx), np.float32(slope)


def _time_order(reads: np.ndarray, layout: Irs2Layout, rows: int) -> np.ndarray:
    """(rows, sector) reads in read order -> (rows, row) time samples, zero in the gaps."""
    out = np.zeros((rows, layout.row), np.float32)
    out[:, layout.hnorm1] = reads[:, layout.hnorm]
    out[:, layout.href1] = reads[:, layout.href]
    return out


def _time_samples(layout: Irs2Layout, det_rows: np.ndarray) -> np.ndarray:
    t = (det_rows[:, None] * layout.row + np.arange(layout.row)[None, :]).astype(np.float32)
    return (t - layout.time_mean).astype(np.float32)


def group_correction(
    refout: np.ndarray,
    refpix: np.ndarray,
    edges: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    layout: Irs2Layout,
    filt: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The correction of one group (ramp mean already subtracted from every read).

    ``refout`` (ny, sector): the reference output in read order; ``refpix`` (4, ny, nref): the
    interleaved reference reads of outputs 1..4 in read order; ``edges`` (5, 8, sector): detector
    rows 0-3 and 2044-2047 of every output in read order (normal and reference reads); ``alpha``,
    ``beta`` (4, ny * row) complex64. Returns the correction of the normal pixels (4, ny, 512)
    float32, in read order, and the fitted lines (5, 2) float32 (intercept, slope per output;
    applied to normal pixels by :func:`apply_tile`).
    """
    ny, row = layout.ny, layout.row
    edge_rows = np.array([0, 1, 2, 3, ny - 4, ny - 3, ny - 2, ny - 1])
    t_edge = _time_samples(layout, edge_rows)
    t_all = _time_samples(layout, np.arange(ny))
    lines = np.zeros((NOUTPUTS, 2), np.float32)
    for k in range(NOUTPUTS):
        lines[k] = fit_line(t_edge, _time_order(edges[k], layout, len(edge_rows)))
    norm = float(ny * row)
    # the reference output: line removed, gaps filled (cosine weights, then Fourier filter)
    ro = _time_order(refout, layout, ny)
    ro -= (lines[0, 0] + t_all * lines[0, 1]) * (ro != 0.0)
    ro = cosine_fill(ro)
    keep = np.zeros((ny, row), bool)
    keep[:, layout.hnorm1] = True
    ro = fft_fill(ro, keep, fill_filter(layout) if filt is None else filt)
    ft_refout = np.fft.fft(ro.ravel()) / norm
    target, source = layout.ref_series_index
    corr = np.empty((4, ny, 512), np.float32)
    for k in range(1, NOUTPUTS):
        reads = np.zeros((ny, row), np.float32)
        reads[:, layout.href1] = refpix[k - 1]
        reads -= (lines[k, 0] + t_all * lines[k, 1]) * (reads != 0.0)
        series = np.zeros((ny, row), np.float32)
        series[:, target] = reads[:, source]
        ft = np.fft.fft(series.ravel().astype(np.complex64)) / norm
        ft *= beta[k - 1]
        ft += alpha[k - 1] * ft_refout
        back = (np.fft.ifft(ft) * norm).real.reshape(ny, row)
        corr[k - 1] = back[:, layout.hnorm1]
    return corr, lines


# ------------------------------------------------------------------------------------ the tiles
def apply_tile(
    sci: np.ndarray,
    y0: int,
    x0: int,
    corr: np.ndarray,
    lines: np.ndarray,
    layout: Irs2Layout,
    detector: str,
) -> np.ndarray:
    """Correct the normal pixels of a science tile and drop its reference rows.

    ``sci`` (nints, ngroups, ty, tx) float32 at science rows ``y0..``, columns ``x0..``; ``corr``
    (nints, ngroups, n_normal_rows_of_tile, tx) the correction of its normal pixels (science
    orientation); ``lines`` (nints, ngroups, 5, 2) the fitted lines. Per pixel: the ramp mean is
    removed, the line of its output (only where the pixel differs from its ramp mean) and the
    correction are subtracted, and the ramp mean is added back (float32, as the official step).
    """
    ty, tx = sci.shape[-2:]
    ys = np.arange(y0, y0 + ty)
    keep = layout.science_normal_rows(detector)[ys]
    s = sci[:, :, keep, :]
    ngroups = s.shape[1]
    offset = s.sum(axis=1, dtype=np.float64, keepdims=True) / float(ngroups)
    d = (s - offset).astype(np.float32)
    cols = layout.science_to_detector_column(ys[keep], detector)
    out_k, pos = layout.read_index
    k, p = out_k[cols], pos[cols]
    tcol = layout.hnorm1[layout.normal_number[p]]
    drow = layout.science_to_detector_row(np.arange(x0, x0 + tx), detector)
    t = (drow[None, :] * layout.row + tcol[:, None] - layout.time_mean).astype(np.float32)
    a = lines[:, :, k, 0][..., None]
    b = lines[:, :, k, 1][..., None]
    d -= (a + t * b) * (d != 0.0)
    d -= corr
    return (d + offset).astype(np.float32)


#: science columns (detector rows 0-3 and 2044-2047) the fitted lines are measured on
EDGE_X = np.array([0, 1, 2, 3, 2044, 2045, 2046, 2047])


def _science_interleaved_rows(layout: Irs2Layout) -> np.ndarray:
    starts = layout.pair_starts()
    mask = np.zeros(layout.width, bool)
    mask[starts] = True
    mask[starts + 1] = True
    return mask


def integration_correction(
    ref_values: np.ndarray,
    rows: np.ndarray,
    edge_values: np.ndarray,
    bad_rows: np.ndarray,
    dq_columns: list[list[int]],
    alpha: np.ndarray,
    beta: np.ndarray,
    layout: Irs2Layout,
    detector: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The correction of every group of one integration, from its reference data only.

    ``ref_values`` (ngroups, len(rows), nx): the science rows ``rows`` (sorted; every reference
    row); ``edge_values`` (ngroups, 3200, 8): the science columns :data:`EDGE_X`; ``bad_rows``
    (bool over the 3200 science rows): reference rows to replace (PIXELDQ BAD_REF_PIXEL and the
    intermittently bad ones); ``dq_columns``: the detector columns each REFPIX DQ row marks bad
    (:func:`dq_table_bad_columns`). Returns the correction of the normal pixels in science
    orientation (ngroups, 2048 normal rows, nx) float32 and the fitted lines (ngroups, 5, 2).
    """
    if detector not in DETECTORS:
        raise ShapeMismatchError(f"IRS2 refpix: detector {detector!r} is not one of {', '.join(DETECTORS)}")
    ngroups = ref_values.shape[0]
    vals = np.array(ref_values, dtype=np.float32, copy=True)
    period = layout.n + layout.r
    # bad reference rows (science orientation), block by block
    is_ref = _science_interleaved_rows(layout)
    in_sel = np.zeros(layout.width, bool)
    in_sel[rows] = True
    for k in range(NOUTPUTS):
        lo, hi = k * layout.sector, (k + 1) * layout.sector
        todo = np.flatnonzero(bad_rows[lo:hi] & in_sel[lo:hi]) + lo
        replace_bad(vals, rows, todo, bad_rows, is_ref, lo, hi, period, axis=-2)
    # detector orientation: (ngroups, detector rows, selected detector columns)
    if detector == "NRS1":
        cols, dvals = rows, np.swapaxes(vals, 1, 2)
        flags = bad_rows.copy()
        edge = np.swapaxes(edge_values, 1, 2)
    else:
        cols = layout.width - 1 - rows[::-1]
        dvals = np.swapaxes(vals[:, ::-1, ::-1], 1, 2)
        flags = bad_rows[::-1].copy()
        edge = np.swapaxes(edge_values[:, ::-1, ::-1], 1, 2)
    dvals = np.ascontiguousarray(dvals)
    # reads the REFPIX DQ table marks bad, unless already handled
    out_of = layout.read_index[0]
    for marked in dq_columns:
        new = []
        for c in marked:
            if not flags[c]:
                new.append(c)
                flags[c] = True
        for c in new:
            lo = out_of[c] * layout.sector
            replace_bad(
                dvals, cols, [c], flags, layout.interleaved_columns, lo, lo + layout.sector, period, -1
            )
    # the edge columns become detector rows 0-3, 2044-2047 in increasing order either way
    edge = np.array(edge, dtype=np.float32, copy=True)
    edge[:, :, cols] = dvals[:, np.sort(layout.science_to_detector_row(EDGE_X, detector)), :]
    # ramp mean removed
    d = (dvals - dvals.sum(axis=0, dtype=np.float64) / float(ngroups)).astype(np.float32)
    e = (edge - edge.sum(axis=0, dtype=np.float64) / float(ngroups)).astype(np.float32)
    # read-order index of every output's reads
    pos_in_sel = np.full(layout.width, -1, np.int64)
    pos_in_sel[cols] = np.arange(cols.size)
    reads = np.arange(layout.sector)
    col_of = [k * layout.sector + (reads if k % 2 else layout.sector - 1 - reads) for k in range(NOUTPUTS)]
    filt = fill_filter(layout)
    corr_read = np.empty((ngroups, 4, layout.ny, 512), np.float32)
    lines = np.empty((ngroups, NOUTPUTS, 2), np.float32)
    for g in range(ngroups):
        refout = d[g][:, pos_in_sel[col_of[0]]]
        refpix = np.stack([d[g][:, pos_in_sel[col_of[k][layout.href]]] for k in range(1, NOUTPUTS)])
        edges = np.stack([e[g][:, col_of[k]] for k in range(NOUTPUTS)])
        corr_read[g], lines[g] = group_correction(refout, refpix, edges, alpha, beta, layout, filt)
    # back to the normal pixels' science rows
    normal_cols = np.flatnonzero(layout.normal_columns)
    k, p = layout.read_index[0][normal_cols], layout.read_index[1][normal_cols]
    corr_det = corr_read[:, k - 1, :, layout.normal_number[p]]  # (ncols, ngroups, ny)
    corr_det = np.moveaxis(corr_det, 0, -1)  # (ngroups, ny, ncols)
    if detector == "NRS1":
        return np.ascontiguousarray(np.swapaxes(corr_det, 1, 2)), lines
    return np.ascontiguousarray(np.swapaxes(corr_det[:, ::-1, ::-1], 1, 2)), lines
