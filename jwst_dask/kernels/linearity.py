"""Linearity kernel: evaluate the per-pixel correction polynomial on every unsaturated group.

F_c = sum_k c_k F^k, by Horner's rule in float32 (the same operation order as the official
library, so results agree bit for bit). Pixels without a usable correction (a NaN coefficient,
a zero linear term, or NO_LIN_CORR in the reference DQ) get the identity polynomial and, for the
first two cases, NO_LIN_CORR in PIXELDQ. SATURATED groups are left untouched.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from jwst_dask.dq import FLAGS

__all__ = ["prepare_coefficients", "apply_linearity", "correct_zeroframe"]

_SAT = FLAGS["SATURATED"]
_NLC = FLAGS["NO_LIN_CORR"]


def prepare_coefficients(coeffs: np.ndarray, lin_dq: np.ndarray, pdq: np.ndarray):
    """(float32 coefficients (ncoeff, y, x), new PIXELDQ) with unusable pixels made benign.

    PIXELDQ |= reference DQ; NO_LIN_CORR pixels, NaN-coefficient pixels and zero-linear-term
    pixels get (0, 1, 0, ...); the last two also get NO_LIN_CORR.
    """
    c = np.array(coeffs, dtype=np.float32, copy=True)
    lin_dq = np.asarray(lin_dq, dtype=np.uint32)
    new_pdq = np.bitwise_or(np.asarray(pdq, dtype=np.uint32), lin_dq)
    benign = np.zeros(c.shape[0], dtype=np.float32)
    benign[1] = 1.0
    flagged = (lin_dq & _NLC) == _NLC
    c[:, flagged] = benign[:, None]
    nan = np.isnan(c).any(axis=0)
    c[:, nan] = benign[:, None]
    zero = c[1] == 0
    c[:, zero] = benign[:, None]
    new_pdq[nan | zero] |= np.uint32(_NLC)
    return c, new_pdq


@njit(cache=True, nogil=True)
def _horner(data, gdq, coeffs, satflag):
    nints, ngroups, ny, nx = data.shape
    ncoeff = coeffs.shape[0]
    out = np.empty(data.shape, dtype=np.float32)
    for i in range(nints):
        for g in range(ngroups):
            for y in range(ny):
                for x in range(nx):
                    v = data[i, g, y, x]
                    if gdq[i, g, y, x] & satflag:
                        out[i, g, y, x] = v
                        continue
                    r = coeffs[ncoeff - 1, y, x] * v
                    for j in range(ncoeff - 2, 0, -1):
                        r = r + coeffs[j, y, x]
                        r = r * v
                    out[i, g, y, x] = r + coeffs[0, y, x]
    return out


def apply_linearity(data: np.ndarray, gdq: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Linearised ``data`` (nints, ngroups, y, x) float32; ``coeffs`` from :func:`prepare_coefficients`."""
    return _horner(
        np.ascontiguousarray(data, dtype=np.float32),
        np.ascontiguousarray(gdq, dtype=np.uint8),
        np.ascontiguousarray(coeffs, dtype=np.float32),
        np.uint8(_SAT),
    )


def correct_zeroframe(zframe: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Linearised ZEROFRAME (nints, y, x); zero (saturated) pixels stay zero."""
    z = np.ascontiguousarray(zframe, dtype=np.float32)[:, None]
    zdq = np.where(z == 0, np.uint8(_SAT), np.uint8(0))
    out = apply_linearity(z, zdq, coeffs)[:, 0]
    out[zframe == 0] = 0.0
    return out
