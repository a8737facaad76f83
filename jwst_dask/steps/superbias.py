"""superbias: subtract the superbias reference from every group and from ZEROFRAME."""

from __future__ import annotations

import numpy as np
import xarray as xr

from jwst_dask.kernels.superbias import subtract_bias
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["SuperBiasStep"]


def _zero_keep(z: np.ndarray, bias: np.ndarray) -> np.ndarray:
    out = subtract_bias(z, bias)
    out[z == 0] = 0.0  # zero marks unusable frame-zero pixels
    return out


class SuperBiasStep(Step):
    """SCI -= bias (NaN -> 0); PIXELDQ |= bias DQ; ZEROFRAME too (zeros stay zero)."""

    class_alias = "superbias"
    spec = ""
    reference_file_types = ("superbias",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        ref = self.get_reference_dataset(ds, "superbias")
        if ref is None:
            self.log.warning("No SUPERBIAS reference file; step skipped")
            return ds.jwst.set_cal_step("superbias", "SKIPPED")
        bias = ref_array(ref, "SCI", ds, "superbias", np.float32)
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=ds["SCI"].data.map_blocks(subtract_bias, bias, dtype="f4"))
        if "DQ" in ref:
            rdq = ref_array(ref, "DQ", ds, "superbias", np.uint32)
            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=ds["PIXELDQ"].data | rdq)
        if "ZEROFRAME" in ds:
            z = ds["ZEROFRAME"].data.map_blocks(_zero_keep, bias, dtype="f4")
            out["ZEROFRAME"] = ds["ZEROFRAME"].copy(data=z)
        return out.jwst.set_cal_step("superbias")
