"""dark_current: subtract the dark reference, frame-averaged to the science readout pattern."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.kernels import dark_current as kern
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["DarkCurrentStep"]


def _or_planes(dq: np.ndarray) -> np.ndarray:
    return np.bitwise_or.reduce(dq, axis=0)


def _sub_block(sci, dark, *, ngroups, nframes, groupgap, direct, int_start):
    d = dark if direct else kern.average_dark(dark, ngroups, nframes, groupgap)
    return kern.subtract_dark(sci, d, int_start)


class DarkCurrentStep(Step):
    """SCI -= dark (NaN -> 0), averaged over NFRAMES frames with GROUPGAP skipped per group;
    PIXELDQ |= dark DQ. Skipped when the dark has too few frames for the science readout."""

    class_alias = "dark_current"
    cal_step_key = "dark_sub"
    spec = """
        dark_output = output_file(default=None)  # save the frame-averaged dark under this name
        average_dark_current = float(default=None)  # not used: the dark reference carries the current
    """
    reference_file_types = ("dark",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        ref = self.get_reference_dataset(ds, "dark")
        if ref is None:
            self.log.warning("No DARK reference file; step skipped")
            return ds.jwst.set_cal_step("dark_sub", "SKIPPED")
        meta = ds.jwst.meta
        ngroups = ds.sizes["group"]
        nframes = int(meta.get_path("exposure.nframes") or 1)
        groupgap = int(meta.get_path("exposure.groupgap") or 0)
        int_start = int(meta.get_path("exposure.integration_start") or 1)
        rmeta = ref.jwst.meta
        d_nframes = int(rmeta.get_path("exposure.nframes") or 1)
        d_groupgap = int(rmeta.get_path("exposure.groupgap") or 0)
        dark = ref_array(ref, "SCI", ds, "dark", np.float32)
        d_ngroups = dark.shape[-3]
        needed = kern.frames_needed(ngroups, nframes, groupgap)
        have = kern.frames_needed(d_ngroups, d_nframes, d_groupgap)
        if needed > have:
            self.log.warning(
                "Dark reference has %d frames, the science data need %d; step skipped", have, needed
            )
            return ds.jwst.set_cal_step("dark_sub", "SKIPPED")
        if d_nframes > nframes or d_groupgap > groupgap:
            self.log.warning("Dark NFRAMES/GROUPGAP exceed the science values; step skipped")
            return ds.jwst.set_cal_step("dark_sub", "SKIPPED")
        direct = nframes == d_nframes and groupgap == d_groupgap
        dark_ind = "jdyx" if dark.ndim == 4 else "dyx"
        sci = da.blockwise(
            _sub_block,
            "igyx",
            ds["SCI"].data,
            "igyx",
            dark,
            dark_ind,
            dtype=np.float32,
            concatenate=True,
            ngroups=ngroups,
            nframes=nframes,
            groupgap=groupgap,
            direct=direct,
            int_start=int_start,
        )
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=sci)
        if "DQ" in ref:
            rdq = ref["DQ"].data
            rdq = rdq if isinstance(rdq, da.Array) else da.asarray(rdq)
            if rdq.ndim == 4:  # MIRI: a DQ plane per integration (first group), OR-ed together
                rdq = rdq[:, 0]
            if rdq.ndim == 3:
                rdq = da.map_blocks(_or_planes, rdq.astype(np.uint32), drop_axis=0, dtype=np.uint32)
            from jwst_dask.steps.ramp_model import as_tiles

            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=ds["PIXELDQ"].data | as_tiles(rdq, ds, np.uint32))
        if self.dark_output:
            avg = (
                dark
                if direct
                else da.map_blocks(
                    kern.average_dark,
                    dark,
                    ngroups,
                    nframes,
                    groupgap,
                    dtype=np.float32,
                    chunks=(*((n,) for n in dark.shape[:-3]), (ngroups,), *dark.chunks[-2:]),
                )
            )
            dims = ("integration", "group", "y", "x")[-avg.ndim :]
            dark_ds = xr.Dataset({"SCI": (dims, avg)}, attrs=dict(ref.attrs))
            dark_ds = dark_ds.jwst.update_meta(
                {"exposure.nframes": nframes, "exposure.groupgap": groupgap, "exposure.ngroups": ngroups},
                product="darkavg",
                model_type="DarkModel",
            )
            self.add_side_product("darkavg", dark_ds)
        return out.jwst.set_cal_step("dark_sub")
