"""saturation: flag saturated and A/D-floor groups, grown by ``n_pix_grow_sat`` pixels.

NIRSpec IRS2 data (3200 x 2048) are flagged on their normal pixels only, against the 2048 x 2048
reference, and the flags put back in the IRS2 layout; the interleaved reference rows get none.

The grow needs neighbouring pixels. The tiles exchange only a small map (the first group that
crossed the threshold in each pixel and integration and, with a read pattern, one bit per group
for the part-way test; :mod:`jwst_dask.kernels.saturation`), not the ramps: a tile's ramp is read
by its own tasks only, so a long time series does not keep the ramps of neighbouring stripes in
memory for the halo. Tiles smaller than the halo, or read patterns of more than
``PACKED_GROUPS`` groups, run the whole-frame kernel with ``dask.array.map_overlap`` and a halo of
:func:`jwst_dask.kernels.saturation.halo_depth` pixels. Both give the whole-frame result exactly.
"""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels import saturation as kern
from jwst_dask.steps import refpix_irs2
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["SaturationStep", "read_pattern"]


def read_pattern(ngroups: int, nframes: int, groupgap: int = 0) -> list[list[int]]:
    """Frame numbers (1-based) in each group: NFRAMES frames per group, GROUPGAP dropped between."""
    step = nframes + groupgap
    return [[g * step + k + 1 for k in range(nframes)] for g in range(ngroups)]


def _gdq_block(sci, gdq, thresh, tdq, bias, *, n, pattern):
    b = None if bias is None or bias.ndim == 0 else bias
    return kern.flag_saturation(sci, gdq, np.zeros(thresh.shape, np.uint32), thresh, tdq, n, pattern, b)[0]


def _gdq_block_nobias(sci, gdq, thresh, tdq, *, n, pattern):
    return kern.flag_saturation(sci, gdq, np.zeros(thresh.shape, np.uint32), thresh, tdq, n, pattern)[0]


def _first_block(sci, gdq, thresh, tdq):
    t = kern.prepare_threshold(thresh, tdq)[0]
    return kern.first_crossing(np.ascontiguousarray(sci, np.float32), np.ascontiguousarray(gdq), t)


def _grow_block(first, *, n):
    return kern.min_filter(np.ascontiguousarray(first), n)


def _flags_block(sci, gdq, grown):
    return kern.apply_flags(np.ascontiguousarray(sci, np.float32), np.ascontiguousarray(gdq), grown)


def _packed_block(sci, gdq, thresh, tdq, *, pattern):
    t, _, nocheck = kern.prepare_threshold(thresh, tdq)
    data = np.ascontiguousarray(sci, np.float32)
    first = kern.first_crossing(data, np.ascontiguousarray(gdq), t)
    cands = (
        kern.pattern_candidates(data, gdq, t, nocheck, pattern) if kern.pattern_pass_needed(pattern) else None
    )
    return kern.pack_first(first, cands)


def _finish_block(sci, gdq, halo, thresh, tdq, gy, gx, bias=None, *, n, pattern):
    depth = kern.halo_depth(n)
    top = depth if gy[0] > 0 else 0
    left = depth if gx[0] > 0 else 0
    pad = (
        (top, halo.shape[1] - sci.shape[2] - top),
        (left, halo.shape[2] - sci.shape[3] - left),
    )
    data = np.ascontiguousarray(sci, np.float32)
    second = None
    if sci.shape[1] > 2:
        t = kern.prepare_threshold(thresh, tdq)[0]
        b = None if bias is None or bias.ndim == 0 else bias
        second = kern.second_group_candidates(data, t, b, pattern)
    return kern.finish_pattern(data, gdq, halo, pad, n, second)


def _fast_gdq(
    sci: da.Array,
    gdq: da.Array,
    thresh: da.Array,
    tdq: da.Array,
    n: int,
    pattern: list | None = None,
    bias: da.Array | None = None,
) -> da.Array:
    """Saturation flags in lazy passes where only a small per-pixel map needs a halo: without a
    read pattern, the int16 first crossing (grown by ``n``); with one, the packed first crossing
    and part-way bits (a halo of ``2 n``: :func:`jwst_dask.kernels.saturation.finish_pattern`)."""
    ijyx = ("igyx", "igyx", "yx", "yx")
    if pattern is None:
        first = da.blockwise(
            _first_block, "iyx", *_pairs((sci, gdq, thresh, tdq), ijyx), dtype=np.int16, concatenate=True
        )
        if n > 0:
            first = da.map_overlap(
                _grow_block, first, depth={0: 0, 1: n, 2: n}, boundary="none", dtype=np.int16, n=n
            )
        return da.blockwise(
            _flags_block, "igyx", sci, "igyx", gdq, "igyx", first, "iyx", dtype=np.uint8, concatenate=True
        )
    packed = da.blockwise(
        _packed_block,
        "iyx",
        *_pairs((sci, gdq, thresh, tdq), ijyx),
        dtype=np.uint64 if kern.pattern_pass_needed(pattern) else np.int16,
        concatenate=True,
        pattern=pattern,
    )
    depth = kern.halo_depth(n)
    halo = da.overlap.overlap(packed, depth={0: 0, 1: depth, 2: depth}, boundary="none")
    gy = da.arange(sci.shape[2], chunks=(sci.chunks[2],))
    gx = da.arange(sci.shape[3], chunks=(sci.chunks[3],))
    args = [sci, "igyx", gdq, "igyx", halo, "iyx", thresh, "yx", tdq, "yx", gy, "y", gx, "x"]
    if bias is not None:
        args += [bias, "yx"]
    # the halo's (y, x) blocks are larger than the tile's: match blocks by index, not by size
    return da.blockwise(
        _finish_block,
        "igyx",
        *args,
        dtype=np.uint8,
        concatenate=True,
        align_arrays=False,
        n=n,
        pattern=pattern,
    )


def _pairs(arrays, indices) -> list:
    return [v for pair in zip(arrays, indices, strict=True) for v in pair]


def _fast_pattern_ok(sci: da.Array, n: int, pattern: list) -> bool:
    """The packed map holds the part-way bits of ``PACKED_GROUPS`` groups, and the halo of a tile
    comes from its neighbours alone when no tile is thinner than it."""
    depth = kern.halo_depth(n)
    if len(pattern) > kern.PACKED_GROUPS and kern.pattern_pass_needed(pattern):
        return False
    return all(c >= depth for c in (*sci.chunks[2], *sci.chunks[3]))


def _zframe_block(z, thresh, tdq, *, n):
    nints = z.shape[0]
    dummy = np.zeros((nints, 1, *z.shape[1:]), np.float32)
    gdq = np.zeros(dummy.shape, np.uint8)
    return kern.flag_saturation(dummy, gdq, np.zeros(thresh.shape, np.uint32), thresh, tdq, n, zframe=z)[2]


def _put_rows(full: np.ndarray, new: np.ndarray, *, axis: int, keep: list, block_info=None) -> np.ndarray:
    """``full`` with its rows ``keep[block]`` (bool along ``axis``) replaced by ``new``."""
    out = full.copy()
    index = [slice(None)] * full.ndim
    index[axis] = keep[block_info[0]["chunk-location"][axis]]
    out[tuple(index)] = new
    return out


def _pdq_block(pdq, thresh, tdq):
    return np.bitwise_or(pdq, kern.prepare_threshold(thresh, tdq)[1])


class SaturationStep(Step):
    """Flag SATURATED (>= threshold, in that and all later groups) and AD_FLOOR | DO_NOT_USE
    (<= 0); NaN / NO_SAT_CHECK thresholds never saturate and put NO_SAT_CHECK in PIXELDQ."""

    class_alias = "saturation"
    spec = """
        n_pix_grow_sat = integer(default=1, min=0)  # number of layers of adjacent pixels to flag
        use_readpatt = boolean(default=False)  # flag groups that saturated part-way (jwst 3.x default True)
    """
    reference_file_types = ("saturation",)  # + superbias (from CRDS) when use_readpatt

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if refpix_irs2.is_irs2(ds):
            return self._irs2(ds)
        ref = self.get_reference_dataset(ds, "saturation")
        if ref is None:
            self.log.warning("No SATURATION reference file; step skipped")
            return ds.jwst.set_cal_step("saturation", "SKIPPED")
        return self._flag(ds, ref).jwst.set_cal_step("saturation")

    def _irs2(self, ds: xr.Dataset) -> xr.Dataset:
        """NIRSpec IRS2: flag the normal pixels against the 2048 x 2048 reference (the grow skips
        the interleaved reference rows, as if they were not there); reference rows get no flags."""
        layout, detector = refpix_irs2.irs2_layout(ds, self.log)
        normal = layout.science_normal_rows(detector)
        sub = xr.Dataset(attrs=dict(ds.attrs))
        cuts = {}
        for name in ("SCI", "GROUPDQ", "PIXELDQ", "ZEROFRAME"):
            if name in ds:
                var = ds[name]
                axis = var.dims.index("y")
                cut = refpix_irs2.trim_reference_rows(var.data, axis, normal)
                cuts[name] = (axis, cut.chunks[axis])
                sub[name] = (var.dims, refpix_irs2.drop_empty_chunks(cut, axis))
        ref = self.get_reference_dataset(sub, "saturation")
        if ref is None:
            self.log.warning("No SATURATION reference file; step skipped")
            return ds.jwst.set_cal_step("saturation", "SKIPPED")
        bias = None
        if self.use_readpatt:
            bref = self.get_reference_dataset(ds, "superbias")  # IRS2 layout, like the data
            if bref is not None:
                b = refpix_irs2.trim_reference_rows(bref["SCI"].data.astype(np.float32), 0, normal)
                bias = refpix_irs2.drop_empty_chunks(b, 0).rechunk(sub["SCI"].data.chunks[2:])
        flagged = self._flag(sub, ref, bias)
        out = ds.copy()
        for name in ("GROUPDQ", "PIXELDQ", "ZEROFRAME"):
            if name in ds:
                axis, chunks = cuts[name]
                new = flagged[name].data
                new = new.rechunk((*new.chunks[:axis], chunks, *new.chunks[axis + 1 :]))
                full = ds[name].data
                keep = [normal[a:b] for a, b in itertools.pairwise(np.cumsum((0, *full.chunks[axis])))]
                merged = da.map_blocks(_put_rows, full, new, dtype=full.dtype, axis=axis, keep=keep)
                out[name] = ds[name].copy(data=merged)
        return out.jwst.set_cal_step("saturation")

    def _flag(self, ds: xr.Dataset, ref: xr.Dataset, bias: da.Array | None = None) -> xr.Dataset:
        """``ds`` with GROUPDQ, PIXELDQ (and ZEROFRAME) flagged against the reference ``ref``;
        ``bias``: the superbias for ``use_readpatt`` (None: the CRDS one)."""
        thresh = ref_array(ref, "SCI", ds, "saturation", np.float32)
        if "DQ" in ref:
            tdq = ref_array(ref, "DQ", ds, "saturation", np.uint32)
        else:
            tdq = da.zeros(thresh.shape, dtype=np.uint32, chunks=thresh.chunks)
        n = int(self.n_pix_grow_sat)
        depth = kern.halo_depth(n)
        meta = ds.jwst.meta
        pattern = None
        if self.use_readpatt:
            nframes = int(meta.get_path("exposure.nframes") or 1)
            groupgap = int(meta.get_path("exposure.groupgap") or 0)
            pattern = read_pattern(ds.sizes["group"], nframes, groupgap)
        sci, gdq = ds["SCI"].data, ds["GROUPDQ"].data
        d4 = {0: 0, 1: 0, 2: depth, 3: depth}
        d2 = {0: depth, 1: depth}
        args = [sci, gdq, thresh, tdq]
        depths = [d4, d4, d2, d2]
        func = _gdq_block_nobias
        if pattern is not None:
            if bias is None:
                bref = self.get_reference_dataset(ds, "superbias")
                if bref is not None:
                    bias = ref_array(bref, "SCI", ds, "superbias", np.float32)
            if bias is not None:
                args.append(bias)
                depths.append(d2)
                func = _gdq_block
        if pattern is None:
            new_gdq = _fast_gdq(sci, gdq, thresh, tdq, n)
        elif _fast_pattern_ok(sci, n, pattern):
            new_gdq = _fast_gdq(sci, gdq, thresh, tdq, n, pattern, bias)
        elif depth:
            new_gdq = da.map_overlap(
                func, *args, depth=depths, boundary="none", dtype=np.uint8, n=n, pattern=pattern
            )
        else:
            new_gdq = da.map_blocks(func, *args, dtype=np.uint8, n=n, pattern=pattern)
        out = ds.copy()
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=new_gdq)
        pdq = da.map_blocks(_pdq_block, ds["PIXELDQ"].data, thresh, tdq, dtype=np.uint32)
        out["PIXELDQ"] = ds["PIXELDQ"].copy(data=pdq)
        if "ZEROFRAME" in ds:
            z = ds["ZEROFRAME"].data
            dz = {0: 0, 1: depth, 2: depth}
            if depth:
                z_new = da.map_overlap(
                    _zframe_block, z, thresh, tdq, depth=[dz, d2, d2], boundary="none", dtype=np.float32, n=n
                )
            else:
                z_new = da.map_blocks(_zframe_block, z, thresh, tdq, dtype=np.float32, n=n)
            out["ZEROFRAME"] = ds["ZEROFRAME"].copy(data=z_new)
        return out
