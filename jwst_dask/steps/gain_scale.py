"""GainScaleStep (gain_scale): apply GAINFACT to the rate and rateints products.

The factor comes from ``meta.exposure.gain_factor`` (set by ramp_fit from the GAIN reference
header) or, failing that, from the GAIN reference header itself. Without one the step is
SKIPPED. A factor of 1 is benign: the data are passed through unchanged and the step is
COMPLETE, as in the official pipeline. The step runs once per product (rate, rateints).
"""

from __future__ import annotations

import xarray as xr

from jwst_dask.kernels.gain_scale import scale_values, scale_variance
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_fit import gain_factor_of

__all__ = ["GainScaleStep"]

_VALUES = ("SCI", "ERR")
_VARIANCES = ("VAR_POISSON", "VAR_RNOISE")


class GainScaleStep(Step):
    """Rescale count rates taken with a non-standard gain: SCI, ERR x GAINFACT; variances x
    GAINFACT**2."""

    class_alias = "gain_scale"
    spec = ""
    reference_file_types = ("gain",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        factor = gain_factor_of(ds)
        if factor is None:
            factor = gain_factor_of(self.get_reference_dataset(ds, "gain"))
        if factor is None:
            self.log.info("GAINFACT not found in gain reference file; step will be skipped")
            return ds.jwst.set_cal_step("gain_scale", "SKIPPED")
        self.log.info("Rescaling by %s", factor)
        out = ds.copy(deep=False)
        if factor != 1.0:
            for name in _VALUES + _VARIANCES:
                if name in out and out[name].size:
                    fn = scale_values if name in _VALUES else scale_variance
                    var = out[name]
                    data = var.data
                    scaled = (
                        data.map_blocks(fn, factor, dtype=data.dtype)
                        if hasattr(data, "map_blocks")
                        else fn(data, factor)
                    )
                    out[name] = var.copy(data=scaled)
        return out.jwst.update_meta({"exposure.gain_factor": factor, "cal_step.gain_scale": "COMPLETE"})
