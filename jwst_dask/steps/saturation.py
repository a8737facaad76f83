"""saturation: flag saturated and A/D-floor groups, grown by ``n_pix_grow_sat`` pixels.

The grow needs neighbouring pixels, so the kernel runs with ``dask.array.map_overlap`` and a
halo of :func:`jwst_dask.kernels.saturation.halo_depth` pixels; the result equals a whole-frame
run exactly.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels import saturation as kern
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


def _fast_gdq(sci: da.Array, gdq: da.Array, thresh: da.Array, tdq: da.Array, n: int) -> da.Array:
    """Saturation flags in three lazy passes; only the int16 first-crossing map needs a halo."""
    first = da.blockwise(
        _first_block,
        "iyx",
        sci,
        "igyx",
        gdq,
        "igyx",
        thresh,
        "yx",
        tdq,
        "yx",
        dtype=np.int16,
        concatenate=True,
    )
    if n > 0:
        first = da.map_overlap(
            _grow_block, first, depth={0: 0, 1: n, 2: n}, boundary="none", dtype=np.int16, n=n
        )
    return da.blockwise(
        _flags_block, "igyx", sci, "igyx", gdq, "igyx", first, "iyx", dtype=np.uint8, concatenate=True
    )


def _zframe_block(z, thresh, tdq, *, n):
    nints = z.shape[0]
    dummy = np.zeros((nints, 1, *z.shape[1:]), np.float32)
    gdq = np.zeros(dummy.shape, np.uint8)
    return kern.flag_saturation(dummy, gdq, np.zeros(thresh.shape, np.uint32), thresh, tdq, n, zframe=z)[2]


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
        ref = self.get_reference_dataset(ds, "saturation")
        if ref is None:
            self.log.warning("No SATURATION reference file; step skipped")
            return ds.jwst.set_cal_step("saturation", "SKIPPED")
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
            bref = self.get_reference_dataset(ds, "superbias")
            if bref is not None:
                args.append(ref_array(bref, "SCI", ds, "superbias", np.float32))
                depths.append(d2)
                func = _gdq_block
        if pattern is None:
            new_gdq = _fast_gdq(sci, gdq, thresh, tdq, n)
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
        return out.jwst.set_cal_step("saturation")
