"""RSCD kernel (baseline): flag the first groups of the second and later integrations.

The reset-switch-charge-decay transient of MIRI affects the first groups of every integration
after the first; the baseline correction marks them DO_NOT_USE so ramp fitting skips them.
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["flag_rscd", "flag_rscd_jwst3"]


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


def flag_rscd_jwst3(
    gdq: np.ndarray, pdq: np.ndarray, skip_int1: int, skip_int2p: int, int_start: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The jwst 3.x RSCD flagging: (GROUPDQ, PIXELDQ).

    Integration 1 gets ``skip_int1`` groups DO_NOT_USE and later ones ``skip_int2p`` (all use
    ``skip_int2p`` when the data start later than integration 1); with 5 or fewer groups both are
    1, and at least 3 groups are always left. Where the pixel saturates before the end of the
    skipped groups + 1 (but not in group 1), fewer groups are skipped, and PIXELDQ gets
    FLUX_ESTIMATED. Fewer than 3 groups: nothing flagged.
    """
    out = gdq.copy()
    pout = np.array(pdq, dtype=np.uint32, copy=True)
    nints, ngroups = gdq.shape[:2]
    if ngroups < 3:
        return out, pout
    if skip_int1 < 0:
        skip_int1 = 1
    if ngroups <= 5:
        skip_int1 = skip_int2p = 1
    if ngroups < skip_int1 + 3:
        skip_int1 = max(0, ngroups - 3)
    if nints > 1 and ngroups < skip_int2p + 3:
        skip_int2p = max(0, ngroups - 3)
    spans = []
    if int_start == 1:
        spans.append((0, 1, skip_int1))
        if nints > 1:
            spans.append((1, nints, skip_int2p))
    elif nints > 0:
        spans.append((0, nints, skip_int2p))
    sat = np.uint8(FLAGS["SATURATED"])
    for i0, i1, skip in spans:
        part = out[i0:i1]
        skips = np.full((i1 - i0, *gdq.shape[2:]), skip, dtype=np.int64)
        min_group = skip + 2
        first_sat = (part[:, 0] & sat) > 0
        if 0 < min_group <= ngroups:
            problem = ((part[:, min_group - 1] & sat) > 0) & ~first_sat
            while problem.any() and min_group > 1:
                skips[problem] = np.maximum(skips[problem] - 1, 0)
                min_group -= 1
                problem = ((part[:, min_group - 1] & sat) > 0) & ~first_sat
            backed = (skips < skip).any(axis=0)
            pout[backed] |= np.uint32(FLAGS["FLUX_ESTIMATED"])
        mask = np.arange(ngroups)[None, :, None, None] <= (skips - 1)[:, None]
        part[mask] |= np.uint8(FLAGS["DO_NOT_USE"])
    return out, pout
