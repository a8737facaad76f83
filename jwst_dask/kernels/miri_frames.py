"""MIRI first/last-frame kernels: flag the first or last group of every integration DO_NOT_USE.

The first group carries reset transients and the last group a reset anomaly; ramp fitting then
ignores them. Each only applies when enough groups remain to fit a ramp.
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["flag_first_frame", "flag_last_frame", "kept_bright"]

_DNU = np.uint8(FLAGS["DO_NOT_USE"])


def flag_first_frame(gdq: np.ndarray, bright_use_group1: bool = False) -> np.ndarray:
    """GROUPDQ (nints, ngroups, y, x) with group 0 flagged DO_NOT_USE.

    ``bright_use_group1`` (jwst 3.x): leave group 0 unflagged where the pixel is SATURATED in the
    third group, so a bright ramp keeps a slope (see :func:`kept_bright`).
    """
    out = gdq.copy()
    if bright_use_group1:
        out[:, 0] |= np.where(_sat_third(gdq), np.uint8(0), _DNU)
    else:
        out[:, 0] |= _DNU
    return out


def _sat_third(gdq: np.ndarray) -> np.ndarray:
    return (gdq[:, 2] & np.uint8(FLAGS["SATURATED"])) > 0


def kept_bright(pdq: np.ndarray, gdq: np.ndarray) -> np.ndarray:
    """PIXELDQ with FLUX_ESTIMATED where ``bright_use_group1`` kept group 0 in any integration."""
    kept = _sat_third(gdq).any(axis=0)
    return np.where(kept, pdq | np.uint32(FLAGS["FLUX_ESTIMATED"]), pdq)


def flag_last_frame(gdq: np.ndarray) -> np.ndarray:
    """GROUPDQ (nints, ngroups, y, x) with the last group flagged DO_NOT_USE."""
    out = gdq.copy()
    out[:, -1] |= _DNU
    return out
