"""charge_migration: flag groups (and their 4 neighbours) from the first one above a signal
threshold on, CHARGELOSS | DO_NOT_USE. Off by default in calwebb_detector1."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels.charge_migration import flag_charge_migration
from jwst_dask.steps.base import Step

__all__ = ["ChargeMigrationStep"]


def _block(sci, gdq, *, threshold):
    return flag_charge_migration(sci, gdq, threshold)


class ChargeMigrationStep(Step):
    """Flag charge migration (CHARGELOSS | DO_NOT_USE) above ``signal_threshold`` DN."""

    class_alias = "charge_migration"
    spec = """
        signal_threshold = float(default=25000.0)  # flag groups above this level (DN)
    """
    reference_file_types = ()

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        if ds.sizes["group"] < 3:
            self.log.info("Fewer than 3 groups per integration; step skipped")
            return ds.jwst.set_cal_step("charge_migration", "SKIPPED")
        d4 = {0: 0, 1: 0, 2: 1, 3: 1}
        gdq = da.map_overlap(
            _block,
            ds["SCI"].data,
            ds["GROUPDQ"].data,
            depth=[d4, d4],
            boundary="none",
            dtype=np.uint8,
            threshold=float(self.signal_threshold),
        )
        out = ds.copy()
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=gdq)
        return out.jwst.set_cal_step("charge_migration")
