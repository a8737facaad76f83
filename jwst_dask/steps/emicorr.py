"""emicorr: the MIRI EMI correction (off by default; not implemented, so turning it on fails clearly)."""

from __future__ import annotations

import xarray as xr

from jwst_dask.kernels.emicorr import emicorr
from jwst_dask.steps.base import Step

__all__ = ["EmiCorrStep"]


class EmiCorrStep(Step):
    """MIRI EMI correction. Runs only for MIRI; the correction itself raises ParameterError."""

    class_alias = "emicorr"
    spec = """
        nints_to_phase = integer(default=None)  # number of integrations to phase
        nbins = integer(default=None)  # number of bins in one phased wave
        scale_reference = boolean(default=True)  # scale the reference wave to the data amplitude
        onthefly_corr_freq = float_list(default=None)  # frequencies for on-the-fly correction
        use_n_cycles = integer(default=3)  # cycles used to phase the wave
        fit_ints_separately = boolean(default=False)  # fit each integration separately
        user_supplied_reffile = string(default=None)  # a user reference file
        save_intermediate_results = boolean(default=False)  # save the intermediate products
        skip = boolean(default=True)
    """
    reference_file_types = ()  # the correction is not implemented: no reference is selected

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if str(ds.jwst.meta.get_path("instrument.name") or "").upper() != "MIRI":
            self.log.warning("emicorr applies to MIRI only; step skipped")
            return ds.jwst.set_cal_step("emicorr", "SKIPPED")
        return emicorr(ds)
