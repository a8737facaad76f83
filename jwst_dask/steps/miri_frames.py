"""firstframe / lastframe: flag the first / last group of each MIRI integration DO_NOT_USE."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels.miri_frames import flag_first_frame, flag_last_frame, kept_bright
from jwst_dask.steps.base import Step

__all__ = ["FirstFrameStep", "LastFrameStep"]


def _first_block(gdq, *, bright):
    return flag_first_frame(gdq, bright)


def _pdq_block(pdq, gdq):
    return kept_bright(pdq, gdq)


def _is_miri(ds: xr.Dataset) -> bool:
    return str(ds.jwst.meta.get_path("instrument.name") or "").upper() == "MIRI"


class FirstFrameStep(Step):
    """GROUPDQ[:, 0] |= DO_NOT_USE when NGROUPS > 3 (MIRI)."""

    class_alias = "firstframe"
    spec = """
        bright_use_group1 = boolean(default=False)  # keep group 1 if group 3 is saturated (jwst 3.x)
    """
    reference_file_types = ()

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if not _is_miri(ds) or ds.sizes["group"] <= 3:
            self.log.info("firstframe needs MIRI data with more than 3 groups; step skipped")
            return ds.jwst.set_cal_step("firstframe", "SKIPPED")
        out = ds.copy()
        gdq = da.map_blocks(
            _first_block, ds["GROUPDQ"].data, dtype=np.uint8, bright=bool(self.bright_use_group1)
        )
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=gdq)
        if self.bright_use_group1:
            pdq = da.blockwise(
                _pdq_block,
                "yx",
                ds["PIXELDQ"].data,
                "yx",
                ds["GROUPDQ"].data,
                "igyx",
                dtype=np.uint32,
                concatenate=True,
            )
            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=pdq)
        return out.jwst.set_cal_step("firstframe")


class LastFrameStep(Step):
    """GROUPDQ[:, -1] |= DO_NOT_USE when NGROUPS > 2 (MIRI)."""

    class_alias = "lastframe"
    spec = ""
    reference_file_types = ()

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if not _is_miri(ds) or ds.sizes["group"] <= 2:
            self.log.info("lastframe needs MIRI data with more than 2 groups; step skipped")
            return ds.jwst.set_cal_step("lastframe", "SKIPPED")
        out = ds.copy()
        out["GROUPDQ"] = ds["GROUPDQ"].copy(
            data=ds["GROUPDQ"].data.map_blocks(flag_last_frame, dtype=np.uint8)
        )
        return out.jwst.set_cal_step("lastframe")
