"""RSCD kernel (baseline): flag the first groups of the second and later integrations.

The reset-switch-charge-decay transient of MIRI affects the first groups of every integration
after the first; the baseline correction marks them DO_NOT_USE so ramp fitting skips them.
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["flag_rscd"]


def flag_rscd(gdq: np.ndarray, ngroups_skip: int) -> np.ndarray:
    """GROUPDQ with DO_NOT_USE on groups ``[0, ngroups_skip)`` of integrations 2..nints.

    Nothing is flagged when the integration has ``ngroups <= ngroups_skip + 3`` (too few groups
    would remain for a fit) or when there is a single integration.
    """
    out = gdq.copy()
    nints, ngroups = gdq.shape[:2]
    if nints < 2 or ngroups_skip <= 0 or ngroups <= ngroups_skip + 3:
        return out
    out[1:, :ngroups_skip] |= np.uint8(FLAGS["DO_NOT_USE"])
    return out
