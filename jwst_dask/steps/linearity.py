"""linearity: apply the per-pixel linearity polynomial to every unsaturated group (and ZEROFRAME)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.errors import ReferenceFileError
from jwst_dask.kernels import linearity as kern
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["LinearityStep"]


def _sci_block(sci, gdq, coeffs, ldq):
    c, _ = kern.prepare_coefficients(coeffs, ldq, np.zeros(ldq.shape, np.uint32))
    return kern.apply_linearity(sci, gdq, c)


def _pdq_block(pdq, coeffs, ldq):
    return kern.prepare_coefficients(coeffs, ldq, pdq)[1]


def _z_block(z, coeffs, ldq):
    c, _ = kern.prepare_coefficients(coeffs, ldq, np.zeros(ldq.shape, np.uint32))
    return kern.correct_zeroframe(z, c)


class LinearityStep(Step):
    """F_c = sum_k c_k F^k per pixel; NaN / zero-linear-term / NO_LIN_CORR pixels uncorrected
    (NO_LIN_CORR in PIXELDQ); SATURATED groups untouched; PIXELDQ |= reference DQ."""

    class_alias = "linearity"
    spec = ""
    reference_file_types = ("linearity",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        ref = self.get_reference_dataset(ds, "linearity")
        if ref is None:
            self.log.warning("No LINEARITY reference file; step skipped")
            return ds.jwst.set_cal_step("linearity", "SKIPPED")
        coeffs = ref_array(ref, "COEFFS", ds, "linearity", np.float32)
        if coeffs.ndim != 3 or coeffs.shape[0] < 2:
            raise ReferenceFileError(
                f"linearity reference COEFFS must be (ncoeffs>=2, y, x), got {coeffs.shape}"
            )
        if "DQ" in ref:
            ldq = ref_array(ref, "DQ", ds, "linearity", np.uint32)
        else:
            ldq = da.zeros(coeffs.shape[1:], dtype=np.uint32, chunks=coeffs.chunks[1:])
        out = ds.copy()
        kw = {"concatenate": True, "dtype": np.float32}
        sci = da.blockwise(
            _sci_block,
            "igyx",
            ds["SCI"].data,
            "igyx",
            ds["GROUPDQ"].data,
            "igyx",
            coeffs,
            "cyx",
            ldq,
            "yx",
            **kw,
        )
        out["SCI"] = ds["SCI"].copy(data=sci)
        pdq = da.blockwise(
            _pdq_block,
            "yx",
            ds["PIXELDQ"].data,
            "yx",
            coeffs,
            "cyx",
            ldq,
            "yx",
            concatenate=True,
            dtype=np.uint32,
        )
        out["PIXELDQ"] = ds["PIXELDQ"].copy(data=pdq)
        if "ZEROFRAME" in ds:
            z = da.blockwise(_z_block, "iyx", ds["ZEROFRAME"].data, "iyx", coeffs, "cyx", ldq, "yx", **kw)
            out["ZEROFRAME"] = ds["ZEROFRAME"].copy(data=z)
        return out.jwst.set_cal_step("linearity")
