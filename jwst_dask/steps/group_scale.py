"""group_scale: rescale groups averaged on board with FRMDIVSR != NFRAMES (docs: Group Scale)."""

from __future__ import annotations

import xarray as xr

from jwst_dask.kernels.group_scale import scale_groups
from jwst_dask.steps.base import Step

__all__ = ["GroupScaleStep"]


class GroupScaleStep(Step):
    """Multiply SCI by FRMDIVSR/NFRAMES when the two differ; otherwise SKIPPED."""

    class_alias = "group_scale"
    spec = ""
    reference_file_types = ()

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        meta = ds.jwst.meta
        nframes = meta.get_path("exposure.nframes")
        divisor = meta.get_path("exposure.frame_divisor")
        if nframes is None:
            self.log.warning("NFRAMES value not found; step skipped")
            return ds.jwst.set_cal_step("group_scale", "SKIPPED")
        nframes = int(nframes)
        if divisor is None:
            self.log.info("NFRAMES=%d and no FRMDIVSR; correction not needed", nframes)
            return ds.jwst.set_cal_step("group_scale", "SKIPPED")
        if int(divisor) == nframes:
            self.log.info("NFRAMES and FRMDIVSR are equal; correction not needed")
            return ds.jwst.set_cal_step("group_scale", "SKIPPED")
        factor = float(divisor) / nframes
        self.log.info("Rescaling all groups by %s/%d", divisor, nframes)
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=ds["SCI"].data.map_blocks(scale_groups, factor, dtype="f4"))
        return out.jwst.set_cal_step("group_scale")
