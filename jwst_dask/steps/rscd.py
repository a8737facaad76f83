"""rscd: baseline RSCD correction, flagging the first groups of integrations 2.. DO_NOT_USE."""

from __future__ import annotations

import numpy as np
import xarray as xr

from jwst_dask.kernels.rscd import flag_rscd
from jwst_dask.steps.base import Step

__all__ = ["RscdStep", "group_skip"]


def group_skip(ref: xr.Dataset, readpatt: str, subarray: str) -> int | None:
    """Groups to skip for integrations 2.. from the reference's GROUP_SKIP table row matching
    READPATT and SUBARRAY (``RSCD_GROUP_SKIP.group_skip`` columns), or None."""
    if subarray.upper() == "SUBPRISM":
        subarray = "SLITLESSPRISM"
    for ext in ref.attrs.get("tables", {}):
        cols = {c.lower(): c for c in ref.attrs["tables"][ext]}
        if not {"subarray", "readpatt", "group_skip"} <= set(cols):
            continue
        subs = np.asarray(ref[f"{ext}.{cols['subarray']}"].values).astype(str)
        pats = np.asarray(ref[f"{ext}.{cols['readpatt']}"].values).astype(str)
        skips = np.asarray(ref[f"{ext}.{cols['group_skip']}"].values)
        for s, p, n in zip(subs, pats, skips, strict=False):
            if s.strip().upper() == subarray.upper() and p.strip().upper() == readpatt.upper():
                return int(n)
    return None


def _block(gdq, *, n):
    return flag_rscd(gdq, n)


class RscdStep(Step):
    """Flag DO_NOT_USE on the first N groups (N from the RSCD reference) of integrations 2..,
    when NGROUPS > N + 3."""

    class_alias = "rscd"
    spec = """
        type = option('baseline', 'enhanced', default='baseline')  # correction type (only baseline)
    """
    reference_file_types = ("rscd",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        meta = ds.jwst.meta
        if str(meta.get_path("instrument.name") or "").upper() != "MIRI":
            self.log.info("rscd applies to MIRI only; step skipped")
            return ds.jwst.set_cal_step("rscd", "SKIPPED")
        if self.type == "enhanced":
            self.log.warning("enhanced RSCD correction not implemented; using baseline flagging")
        ref = self.get_reference_dataset(ds, "rscd")
        if ref is None:
            self.log.warning("No RSCD reference file; step skipped")
            return ds.jwst.set_cal_step("rscd", "SKIPPED")
        n = group_skip(
            ref, str(meta.get_path("exposure.readpatt") or ""), str(meta.get_path("subarray.name") or "")
        )
        if n is None:
            self.log.warning("READPATT, SUBARRAY combination not found in the RSCD reference; step skipped")
            return ds.jwst.set_cal_step("rscd", "SKIPPED")
        out = ds.copy()
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=ds["GROUPDQ"].data.map_blocks(_block, dtype=np.uint8, n=n))
        return out.jwst.set_cal_step("rscd")
