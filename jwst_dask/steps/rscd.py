"""rscd: baseline RSCD correction, flagging the first groups of integrations 2.. DO_NOT_USE."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels.rscd import flag_rscd, flag_rscd_jwst3
from jwst_dask.steps.base import Step

__all__ = ["RscdStep", "group_skip"]


def group_skip(ref: xr.Dataset, readpatt: str, subarray: str, column: str = "group_skip") -> int | None:
    """Groups to skip from the reference's group-skip table row matching READPATT and SUBARRAY
    (``column``: ``group_skip`` for integrations 2.., ``group_skip1`` for integration 1), or None."""
    if subarray.upper() == "SUBPRISM":
        subarray = "SLITLESSPRISM"
    for ext in ref.attrs.get("tables", {}):
        cols = {c.lower(): c for c in ref.attrs["tables"][ext]}
        if not {"subarray", "readpatt", column} <= set(cols):
            continue
        subs = np.asarray(ref[f"{ext}.{cols['subarray']}"].values).astype(str)
        pats = np.asarray(ref[f"{ext}.{cols['readpatt']}"].values).astype(str)
        skips = np.asarray(ref[f"{ext}.{cols[column]}"].values)
        for s, p, n in zip(subs, pats, skips, strict=False):
            if s.strip().upper() == subarray.upper() and p.strip().upper() == readpatt.upper():
                return int(n)
    return None


def _block(gdq, *, n):
    return flag_rscd(gdq, n)


def _block3(gdq, pdq, *, which, n1, n2, int_start):
    gdq_out, pdq_out = flag_rscd_jwst3(gdq, pdq, n1, n2, int_start)
    return gdq_out if which == "gdq" else pdq_out


class RscdStep(Step):
    """Flag DO_NOT_USE on the first N groups (N from the RSCD reference) of integrations 2..,
    when NGROUPS > N + 3."""

    class_alias = "rscd"
    spec = """
        type = option('baseline', 'enhanced', default='baseline')  # correction type (only baseline)
        variant = option('seeds', 'jwst3', default='seeds')  # jwst3: int 1 too, saturation back-off
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
        readpatt = str(meta.get_path("exposure.readpatt") or "")
        subarray = str(meta.get_path("subarray.name") or "")
        n = group_skip(ref, readpatt, subarray)
        if n is None:
            self.log.warning("READPATT, SUBARRAY combination not found in the RSCD reference; step skipped")
            return ds.jwst.set_cal_step("rscd", "SKIPPED")
        out = ds.copy()
        if self.variant == "jwst3":
            if ds.sizes["group"] < 3:
                self.log.warning("Too few groups to apply RSCD correction; step skipped")
                return ds.jwst.set_cal_step("rscd", "SKIPPED")
            n1 = group_skip(ref, readpatt, subarray, "group_skip1")
            kw = {
                "n1": -1 if n1 is None else n1,
                "n2": n,
                "int_start": int(meta.get_path("exposure.integration_start") or 1),
            }
            gdq, pdq = ds["GROUPDQ"].data, ds["PIXELDQ"].data
            args = (gdq, "igyx", pdq, "yx")
            new_g = da.blockwise(_block3, "igyx", *args, dtype=np.uint8, concatenate=True, which="gdq", **kw)
            new_p = da.blockwise(_block3, "yx", *args, dtype=np.uint32, concatenate=True, which="pdq", **kw)
            out["GROUPDQ"] = ds["GROUPDQ"].copy(data=new_g)
            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=new_p)
            return out.jwst.set_cal_step("rscd")
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=ds["GROUPDQ"].data.map_blocks(_block, dtype=np.uint8, n=n))
        return out.jwst.set_cal_step("rscd")
