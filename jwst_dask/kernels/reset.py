"""MIRI reset kernel: subtract the reset-anomaly ramp, integration by integration.

The reference holds the reset transient for the first integration and for all later ones
(and up to its own number of groups); groups beyond the reference get no correction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["subtract_reset"]


def subtract_reset(sci: np.ndarray, reset: np.ndarray, int_start: int = 1) -> np.ndarray:
    """``sci`` (nints, ngroups, y, x) minus the reset reference (nints_ref, ngroups_ref, y, x).

    Science integration ``i`` (counted from ``int_start`` for segmented exposures) uses reference
    integration ``min(i, nints_ref - 1)``; groups ``>= ngroups_ref`` are unchanged; NaN -> 0.
    """
    out = np.array(sci, dtype=np.float32, copy=True)
    ref = np.where(np.isnan(reset), np.float32(0), reset).astype(np.float32, copy=False)
    nints, ngroups = sci.shape[:2]
    nint_ref, ngrp_ref = ref.shape[:2]
    ng = min(ngroups, ngrp_ref)
    for i in range(nints):
        k = min(i + int_start - 1, nint_ref - 1)
        out[i, :ng] -= ref[k, :ng]
    return out
