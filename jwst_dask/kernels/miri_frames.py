"""MIRI first/last-frame kernels: flag the first or last group of every integration DO_NOT_USE.

The first group carries reset transients and the last group a reset anomaly; ramp fitting then
ignores them. Each only applies when enough groups remain to fit a ramp.
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["flag_first_frame", "flag_last_frame"]

_DNU = np.uint8(FLAGS["DO_NOT_USE"])


def flag_first_frame(gdq: np.ndarray, bright_use_group1: bool = False, sat_group2=None) -> np.ndarray:
    """GROUPDQ (nints, ngroups, y, x) with group 0 flagged DO_NOT_USE.

    ``bright_use_group1`` (jwst 3.x): leave group 0 unflagged where the pixel is SATURATED by
    the second group (``sat_group2`` boolean (nints, y, x)), so a bright ramp keeps a slope.
    """
    out = gdq.copy()
    if bright_use_group1 and sat_group2 is not None:
        out[:, 0] |= np.where(sat_group2, np.uint8(0), _DNU)
    else:
        out[:, 0] |= _DNU
    return out


def flag_last_frame(gdq: np.ndarray) -> np.ndarray:
    """GROUPDQ (nints, ngroups, y, x) with the last group flagged DO_NOT_USE."""
    out = gdq.copy()
    out[:, -1] |= _DNU
    return out
