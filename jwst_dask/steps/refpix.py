"""refpix: remove bias drifts measured in the reference pixels (NIR, MIRI; NIRSpec IRS2 in
:mod:`jwst_dask.steps.refpix_irs2`).

Two passes, both lazy: (a) the reference statistics, computed from the reference strips only
(the top/bottom rows and side columns of the frame, a small part of the graph) into a few numbers
per integration and group; (b) a broadcast subtraction on every tile, which needs only the
tile's global row and column offsets to know its amplifier and column/row parity.
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels import refpix as kern
from jwst_dask.steps import refpix_irs2
from jwst_dask.steps._two_pass import frame_statistic
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import subarray_origin

__all__ = ["RefPixStep"]

_NREF = 4
_MIRI_SHAPE = (1024, 1032)


def _rows(lo: int, hi: int, start: int, size: int) -> slice | None:
    """Local slice of global rows [lo, hi) within [start, start+size), or None."""
    a, b = max(lo, start), min(hi, start + size)
    return slice(a - start, b - start) if b > a else None


def _as_slice(pos: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices (either direction) as a slice, anything else as is."""
    if pos.size and np.all(np.diff(pos) == (step := 1 if pos.size < 2 or pos[1] > pos[0] else -1)):
        stop = int(pos[-1]) + step
        return slice(int(pos[0]), stop if stop >= 0 else None, step)
    return pos


def _take_block(block: np.ndarray, *, axis: int, per_block: list, block_info=None) -> np.ndarray:
    return np.take(block, per_block[block_info[0]["chunk-location"][axis]], axis=axis)


def _take(arr: da.Array, axis: int, idx: np.ndarray) -> da.Array:
    """``arr`` at the sorted indices ``idx`` along ``axis``: one task per block, reading only that
    block (fancy indexing would gather through a task that waits for every block)."""
    bounds = np.cumsum((0, *arr.chunks[axis]))
    per_block = [idx[(idx >= lo) & (idx < hi)] - lo for lo, hi in itertools.pairwise(bounds)]
    chunks = list(arr.chunks)
    chunks[axis] = tuple(len(p) for p in per_block)
    return da.map_blocks(
        _take_block, arr, axis=axis, per_block=per_block, chunks=tuple(chunks), dtype=arr.dtype
    )


class _RefView:
    """The reference rows and columns of a (..., ny, nx) dask array, indexable like the array.

    The frame-wide statistics read only a few rows and columns of the frame. Gathering them with
    one row take and one column take means that each upstream block has one consumer in the
    statistics pass (two where the reference rows and columns cross), so Dask frees every block
    as soon as its reference pixels are copied out; slicing each strip from the full array gave
    every block several consumers and kept blocks waiting for the others. Indexing a view with
    rows that are all reference rows (or columns that are all reference columns) gives the same
    values as indexing the array.
    """

    def __init__(self, arr: da.Array, rows, cols):
        self.shape = arr.shape
        self.ndim = arr.ndim
        ny, nx = arr.shape[-2:]
        self._rows = np.unique(np.asarray(rows, dtype=np.int64).clip(0, ny - 1))
        self._cols = np.unique(np.asarray(cols, dtype=np.int64).clip(0, nx - 1))
        self._by_row = _take(arr, arr.ndim - 2, self._rows) if self._rows.size else None
        self._by_col = _take(arr, arr.ndim - 1, self._cols) if self._cols.size else None

    def __getitem__(self, key: tuple) -> da.Array:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        *lead, rk, ck = key
        ny, nx = self.shape[-2:]
        rows, cols = np.arange(ny)[rk], np.arange(nx)[ck]
        if self._by_row is not None and np.isin(rows, self._rows).all():
            return self._by_row[(*lead, _as_slice(np.searchsorted(self._rows, rows)), ck)]
        if self._by_col is not None and np.isin(cols, self._cols).all():
            return self._by_col[(*lead, rk, _as_slice(np.searchsorted(self._cols, cols)))]
        raise IndexError("refpix: a statistic read pixels outside the reference rows and columns")


def _edges(n: int, origin: int) -> np.ndarray:
    """Local indices of the 4-pixel borders of the data and of the detector's reference pixels."""
    local = np.r_[0:_NREF, n - _NREF : n]
    detector = np.r_[0:_NREF, kern.NIR_SIZE - _NREF : kern.NIR_SIZE] - origin
    both = np.concatenate([local, detector])
    return both[(both >= 0) & (both < n)]


def _nir_strips_tb(sci, pdq, y0, x0, ny, nx, flip_y=False, flip_x=False):
    """The top and bottom reference rows present, in detector read order (so that the float32
    means add up in the same order as a detector-frame computation)."""
    strips = []
    gx = np.arange(x0, x0 + nx)
    cols = slice(None, None, -1 if flip_x else 1)
    for lo, hi in ((kern.NIR_SIZE - _NREF, kern.NIR_SIZE), (0, _NREF)):
        s = _rows(lo, hi, y0, ny)
        if s is not None:
            rows = slice(s.stop - 1, s.start - 1 if s.start else None, -1) if flip_y else s
            strips.append((sci[:, :, rows, cols], pdq[rows, cols], gx[cols]))
    return strips


def _nir_strips_side(sci, pdq, y0, x0, ny, nx):
    out = []
    for lo, hi in ((0, _NREF), (kern.NIR_SIZE - _NREF, kern.NIR_SIZE)):
        s = _rows(lo, hi, x0, nx)
        out.append(None if s is None else (sci[:, :, :, s], pdq[:, s], np.arange(x0 + s.start, x0 + s.stop)))
    return out


def _border_blocks(sci, pdq, y0, x0, ny, nx) -> tuple[list, list, list, list]:
    """The 4-pixel border of the data as blocks, not one array: values (nints, ngroups, r, c)
    and dq (r, c) as Delayed, global rows and columns (r, c) as numpy, one entry per block of
    each border part. :func:`jwst_dask.kernels.refpix.subarray_signals_from_blocks` reads them in
    batches of integrations: the border of a long time series (22 MiB at 1000 integrations of
    SUB64P) is never concatenated, reordered and copied again in one piece."""
    blocks_v, blocks_d, blocks_y, blocks_x = [], [], [], []
    for rs, cs in (
        (slice(0, min(_NREF, ny)), slice(0, nx)),
        (slice(max(ny - _NREF, _NREF), ny), slice(0, nx)),
        (slice(_NREF, max(ny - _NREF, _NREF)), slice(0, min(_NREF, nx))),
        (slice(_NREF, max(ny - _NREF, _NREF)), slice(max(nx - _NREF, _NREF), nx)),
    ):
        if rs.stop <= rs.start or cs.stop <= cs.start:
            continue
        v = sci[:, :, rs, cs].rechunk({0: -1, 1: -1})
        d = pdq[rs, cs].rechunk(v.chunks[2:])
        ystarts = rs.start + np.cumsum((0, *v.chunks[2]))
        xstarts = cs.start + np.cumsum((0, *v.chunks[3]))
        vd, dd = v.to_delayed(), d.to_delayed()
        for i, j in np.ndindex(*v.numblocks[2:]):
            yy, xx = np.mgrid[ystarts[i] : ystarts[i + 1], xstarts[j] : xstarts[j + 1]]
            blocks_v.append(vd[0, 0, i, j])
            blocks_d.append(dd[i, j])
            blocks_y.append(yy + y0)
            blocks_x.append(xx + x0)
    return blocks_v, blocks_d, blocks_y, blocks_x


def _apply_nir_block(sci, gy, gx, tb, side, *, side_gain, wide):
    return kern.apply_nir(sci, int(gx[0]), int(gy[0]), tb, side if side.size else None, side_gain, wide)


def _apply_miri_block(sci, gy, gx, sig):
    return kern.apply_miri(sci, int(gx[0]), int(gy[0]), sig)


def _miri_signals(left, left_dq, right, right_dq, odd_even_rows, siglimit):
    return kern.miri_signals(
        kern.first_group_subtracted(left),
        left_dq,
        kern.first_group_subtracted(right),
        right_dq,
        odd_even_rows,
        siglimit,
    )


class RefPixStep(Step):
    """Subtract the reference-pixel bias drift per amplifier and parity, and the side-pixel
    running median per row (NIR); MIRI left/right reference columns per row parity; NIRSpec IRS2:
    the Fourier-filtered interleaved reference pixels and reference output (REFPIX reference),
    and the interleaved reference pixels removed from every array."""

    class_alias = "refpix"
    spec = """
        odd_even_columns = boolean(default=True)  # separate signals for even and odd columns (NIR)
        use_side_ref_pixels = boolean(default=True)  # subtract the side reference signal per row (NIR)
        side_smoothing_length = integer(default=11)  # running-median window of the side signal (rows)
        side_gain = float(default=1.0)  # factor applied to the side signal before subtracting
        odd_even_rows = boolean(default=True)  # separate signals for even and odd rows (MIRI)
        ovr_corr_mitigation_ftr = float(default=3.0)  # IRS2: sigmas flagging a bad reference pair
        preserve_irs2_refpix = boolean(default=False)  # IRS2: keep the reference pixels (False only)
        irs2_mean_subtraction = boolean(default=False)  # IRS2: mean correction first (False only)
        refpix_algorithm = option("median", "sirs", default="median")  # side-pixel algorithm (no sirs yet)
        sigreject = float(default=4.0)  # sirs only
        gaussmooth = float(default=1.0)  # sirs only
        halfwidth = integer(default=30)  # sirs only
        siglimit = float(default=3.0)  # sigma-clipping limit of the reference means
    """
    reference_file_types = ("refpix",)  # NIRSpec IRS2 only; N/A for everything else

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        meta = ds.jwst.meta
        instrument = str(meta.get_path("instrument.name") or "").upper()
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        y0, x0 = subarray_origin(ds)
        if refpix_irs2.is_irs2(ds):
            return refpix_irs2.correct_irs2(self, ds)
        if instrument == "MIRI":
            if (ny, nx) != _MIRI_SHAPE:
                self.log.warning("Refpix correction skipped for MIRI subarrays")
                return ds.jwst.set_cal_step("refpix", "SKIPPED")
            return self._miri(ds)
        if y0 < 0 or x0 < 0 or y0 + ny > kern.NIR_SIZE or x0 + nx > kern.NIR_SIZE:
            self.log.warning("Subarray doesn't fit in full-sized array; step skipped")
            return ds.jwst.set_cal_step("refpix", "SKIPPED")
        if self.refpix_algorithm == "sirs":
            self.log.warning("SIRS side-pixel algorithm not implemented; using the running median")
        transpose = abs(int(meta.get_path("subarray.fastaxis") or 1)) == 2
        upstream = [ds["SCI"].data, ds["PIXELDQ"].data]
        if "ZEROFRAME" in ds:
            upstream.append(ds["ZEROFRAME"].data)

        def statistics(sci, pdq, *zeroframe):
            stats = [self._nir_stats(sci, pdq, ds, transpose)]
            if zeroframe:
                stats.append(self._nir_stats(zeroframe[0][:, None], pdq, ds, transpose, zeroframe=True))
            return tuple(stats)

        # the statistics in a pass of their own, then the tiles stream (see steps._two_pass)
        stats, ds = frame_statistic(upstream, statistics, ds)
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=self._nir_apply(ds["SCI"].data, stats[0], transpose))
        if "ZEROFRAME" in ds:
            z = ds["ZEROFRAME"].data
            corr = self._nir_apply(z[:, None], stats[1], transpose)[:, 0]
            out["ZEROFRAME"] = ds["ZEROFRAME"].copy(data=da.where(z == 0, np.float32(0), corr))
        return out.jwst.set_cal_step("refpix")

    # ------------------------------------------------------------------------------ NIR
    def _nir_stats(
        self, sci: da.Array, pdq: da.Array, ds: xr.Dataset, transpose: bool, zeroframe: bool = False
    ) -> tuple:
        """The reference signals of ``sci`` as small lazy arrays: (amplifier means, side signal,
        whether the side signal is used, the kernel's float64 switch, first row, first column)."""
        y0, x0 = subarray_origin(ds)
        meta = ds.jwst.meta
        fast = int(meta.get_path("subarray.fastaxis") or 1)
        slow = int(meta.get_path("subarray.slowaxis") or 2)
        flip_x, flip_y = fast < 0, slow < 0
        if transpose:
            sci, pdq, (y0, x0) = sci.transpose(0, 1, 3, 2), pdq.T, (x0, y0)
        nints, ngroups, ny, nx = sci.shape
        rows, cols = _edges(ny, y0), _edges(nx, x0)
        sci, pdq = _RefView(sci, rows, cols), _RefView(pdq, rows, cols)
        subarray = (ny, nx) != (kern.NIR_SIZE, kern.NIR_SIZE)
        noutputs = ds.jwst.meta.get_path("exposure.noutputs")
        one_output = subarray and noutputs is not None and int(noutputs) == 1
        side = None
        use_side = bool(self.use_side_ref_pixels) and not one_output
        wide = kern.wide_groups(nints, ngroups, use_side, zeroframe)
        if one_output:
            values, dq, gy, gx = _border_blocks(sci, pdq, y0, x0, ny, nx)
            tb = dask.delayed(kern.subarray_signals_from_blocks)(
                values, dq, gy, gx, bool(self.odd_even_columns), float(self.siglimit), flip_y, flip_x
            )
        else:
            strips = _nir_strips_tb(sci, pdq, y0, x0, ny, nx, flip_y, flip_x)
            tb = dask.delayed(kern.nir_amp_signals)(
                strips, bool(self.odd_even_columns), float(self.siglimit), wide, (nints, ngroups)
            )
            if self.use_side_ref_pixels:
                left, right = _nir_strips_side(sci, pdq, y0, x0, ny, nx)
                if left is not None or right is not None:
                    side = dask.delayed(kern.nir_side_signal)(
                        left, right, np.arange(y0, y0 + ny), tb, int(self.side_smoothing_length), wide=wide
                    )
        tb_arr = da.from_delayed(tb, (nints, ngroups, 4, 2), dtype=np.float64)
        if side is not None:
            side_arr = da.from_delayed(side, (nints, ngroups, kern.NIR_SIZE), dtype=np.float64)
        elif use_side:  # no side columns in the data: a zero signal (still float64 maths)
            side_arr = da.zeros((nints, ngroups, kern.NIR_SIZE), dtype=np.float64, chunks=-1)
        else:
            side_arr = da.zeros((0,), dtype=np.float64, chunks=1)
        return tb_arr, side_arr, use_side, wide, y0, x0

    def _nir_apply(self, sci: da.Array, stats: tuple, transpose: bool) -> da.Array:
        """Subtract the signals ``stats`` (from :meth:`_nir_stats`) from every tile of ``sci``."""
        tb_arr, side_arr, use_side, wide, y0, x0 = stats
        if transpose:
            sci = sci.transpose(0, 1, 3, 2)
        ny, nx = sci.shape[2:]
        gy_arr = da.arange(y0, y0 + ny, chunks=(sci.chunks[2],))
        gx_arr = da.arange(x0, x0 + nx, chunks=(sci.chunks[3],))
        out = da.blockwise(
            _apply_nir_block,
            "igyx",
            sci,
            "igyx",
            gy_arr,
            "y",
            gx_arr,
            "x",
            tb_arr,
            "igap",
            side_arr,
            "igr" if use_side else "r",
            dtype=np.float32,
            concatenate=True,
            side_gain=float(self.side_gain),
            wide=wide,
        )
        return out.transpose(0, 1, 3, 2) if transpose else out

    # ----------------------------------------------------------------------------- MIRI
    def _miri(self, ds: xr.Dataset) -> xr.Dataset:
        nints, ngroups, ny, nx = ds["SCI"].shape

        def statistics(sci, pdq):
            cols = np.r_[0:_NREF, nx - _NREF : nx]
            sci, pdq = _RefView(sci, [], cols), _RefView(pdq, [], cols)
            sig = dask.delayed(_miri_signals)(
                sci[:, :, :, 0:_NREF],
                pdq[:, 0:_NREF],
                sci[:, :, :, nx - _NREF : nx],
                pdq[:, nx - _NREF : nx],
                bool(self.odd_even_rows),
                float(self.siglimit),
            )
            return da.from_delayed(sig, (nints, ngroups, 4, 2), dtype=np.float32)

        # the statistics in a pass of their own, then the tiles stream (see steps._two_pass)
        sig_arr, ds = frame_statistic([ds["SCI"].data, ds["PIXELDQ"].data], statistics, ds)
        sci = ds["SCI"].data
        gy_arr = da.arange(0, ny, chunks=(sci.chunks[2],))
        gx_arr = da.arange(0, nx, chunks=(sci.chunks[3],))
        new = da.blockwise(
            _apply_miri_block,
            "igyx",
            sci,
            "igyx",
            gy_arr,
            "y",
            gx_arr,
            "x",
            sig_arr,
            "igap",
            dtype=np.float32,
            concatenate=True,
        )
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=new)
        return out.jwst.set_cal_step("refpix")
