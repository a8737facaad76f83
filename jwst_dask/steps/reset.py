"""reset: subtract the MIRI reset-anomaly reference from the first groups of each integration."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels.reset import subtract_reset
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import as_tiles, ref_array

__all__ = ["ResetStep"]


def _block(sci, reset, *, int_start):
    return subtract_reset(sci, reset, int_start)


class ResetStep(Step):
    """SCI[i, g] -= RESET[min(i, nints_ref-1), g] for g < ngroups_ref; PIXELDQ |= reset DQ."""

    class_alias = "reset"
    spec = ""
    reference_file_types = ("reset",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if str(ds.jwst.meta.get_path("instrument.name") or "").upper() != "MIRI":
            self.log.info("reset applies to MIRI only; step skipped")
            return ds.jwst.set_cal_step("reset", "SKIPPED")
        ref = self.get_reference_dataset(ds, "reset")
        if ref is None:
            self.log.warning("No RESET reference file; step skipped")
            return ds.jwst.set_cal_step("reset", "SKIPPED")
        reset = ref_array(ref, "SCI", ds, "reset", np.float32)
        while reset.ndim < 4:
            reset = reset[None]
        int_start = int(ds.jwst.meta.get_path("exposure.integration_start") or 1)
        sci = da.blockwise(
            _block,
            "igyx",
            ds["SCI"].data,
            "igyx",
            reset,
            "jhyx",
            dtype=np.float32,
            concatenate=True,
            int_start=int_start,
        )
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=sci)
        if "DQ" in ref:
            rdq = ref["DQ"].data
            rdq = rdq if isinstance(rdq, da.Array) else da.asarray(rdq)
            while rdq.ndim > 2:
                rdq = rdq[0]
            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=ds["PIXELDQ"].data | as_tiles(rdq, ds, np.uint32))
        return out.jwst.set_cal_step("reset")
