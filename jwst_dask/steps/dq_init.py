"""dq_init: fold the MASK reference flags into PIXELDQ (DQ for FGS guide modes)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.dq import FLAGS
from jwst_dask.kernels.dq_init import apply_mask
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import RAMP_DIMS, ref_array

__all__ = ["DQInitStep", "GUIDER_MODES"]

#: Exposure types whose flags go to DQ rather than PIXELDQ.
GUIDER_MODES = ("FGS_ID-IMAGE", "FGS_ID-STACK", "FGS_ACQ1", "FGS_ACQ2", "FGS_TRACK", "FGS_FINEGUIDE")


class DQInitStep(Step):
    """Create GROUPDQ/PIXELDQ if needed and OR the MASK reference DQ into the pixel DQ."""

    class_alias = "dq_init"
    spec = """
        propagate_do_not_use = boolean(default=False)  # flag all groups of DO_NOT_USE pixels (jwst 3.x)
    """
    reference_file_types = ("mask",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        ref = self.get_reference_dataset(ds, "mask")
        if ref is None:
            self.log.warning("No MASK reference file; step skipped")
            return ds.jwst.set_cal_step("dq_init", "SKIPPED")
        mask = ref_array(ref, "DQ", ds, "mask", np.uint32)
        out = ds.copy()
        exp_type = str(ds.jwst.meta.get_path("exposure.type") or "").upper()
        target = "DQ" if exp_type in GUIDER_MODES else "PIXELDQ"
        if target in ds and ds[target].ndim == 2:
            base = ds[target].data.astype(np.uint32)
        else:
            base = da.zeros(mask.shape, dtype=np.uint32, chunks=mask.chunks)
        out[target] = (("y", "x"), da.map_blocks(apply_mask, base, mask, dtype=np.uint32))
        if target == "PIXELDQ" and "GROUPDQ" not in ds:
            sci = ds["SCI"].data
            out["GROUPDQ"] = (RAMP_DIMS, da.zeros(sci.shape, dtype=np.uint8, chunks=sci.chunks))
        if target == "PIXELDQ" and self.propagate_do_not_use:
            dnu = (mask & np.uint32(FLAGS["DO_NOT_USE"])).astype(np.uint8)
            out["GROUPDQ"] = out["GROUPDQ"].copy(data=out["GROUPDQ"].data | dnu)
        return out.jwst.set_cal_step("dq_init")
