"""ipc: inter-pixel-capacitance deconvolution (off by default), a map_overlap with the kernel
half-width so that tiles agree exactly with a whole-frame run."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels.ipc import halo_depth, ipc_convolve
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import as_tiles, subarray_origin

__all__ = ["IPCStep", "science_mask"]


def science_mask(ds: xr.Dataset) -> da.Array:
    """Lazy bool (y, x): True off the reference pixels (NIR: 4-pixel border of the 2048 frame;
    MIRI: the 4 left and 4 right reference columns of the 1032-column frame)."""
    y0, x0 = subarray_origin(ds)
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    miri = str(ds.jwst.meta.get_path("instrument.name") or "").upper() == "MIRI"
    gy = np.arange(y0, y0 + ny)[:, None]
    gx = np.arange(x0, x0 + nx)[None, :]
    if miri:
        mask = (gx >= 4) & (gx < 1028) & np.ones_like(gy, dtype=bool)
    else:
        mask = (gy >= 4) & (gy < 2044) & (gx >= 4) & (gx < 2044)
    return as_tiles(mask, ds)


def _block(sci, kernel, mask):
    return ipc_convolve(sci, kernel, mask)


class IPCStep(Step):
    """Convolve every group with the IPC kernel (2-D, or 4-D per pixel); reference pixels untouched."""

    class_alias = "ipc"
    spec = """
        skip = boolean(default=True)
    """
    reference_file_types = ("ipc",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        ref = self.get_reference_dataset(ds, "ipc")
        if ref is None:
            self.log.warning("No IPC reference file; step skipped")
            return ds.jwst.set_cal_step("ipc", "SKIPPED")
        kernel = ref["SCI"].data
        kernel = kernel if isinstance(kernel, da.Array) else da.asarray(np.asarray(kernel))
        kernel = kernel.astype(np.float32)
        mask = science_mask(ds)
        depth = halo_depth(kernel.shape)
        d4 = {0: 0, 1: 0, 2: depth, 3: depth}
        d2 = {0: depth, 1: depth}
        sci = ds["SCI"].data
        if kernel.ndim == 2:
            k = np.asarray(kernel.compute())
            new = da.map_overlap(
                lambda s, m: ipc_convolve(s, k, m),
                sci,
                mask,
                depth=[d4, d2],
                boundary="none",
                dtype=np.float32,
            )
        else:
            k4 = as_tiles(kernel, ds)
            dk = {0: 0, 1: 0, 2: depth, 3: depth}
            new = da.map_overlap(_block, sci, k4, mask, depth=[d4, dk, d2], boundary="none", dtype=np.float32)
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=new)
        return out.jwst.set_cal_step("ipc")
