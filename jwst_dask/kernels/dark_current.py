"""Dark-current kernels: match the dark reference to the science readout, then subtract it.

The dark reference is taken with one frame per group and no gaps. A science exposure with
NFRAMES frames per group and GROUPGAP dropped frames needs the mean of the dark frames that make
up each of its groups; NaN in the dark counts as zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frames_needed", "average_dark", "subtract_dark"]


def frames_needed(ngroups: int, nframes: int, groupgap: int) -> int:
    """Number of dark frames a science exposure spans."""
    return ngroups * nframes + (ngroups - 1) * groupgap


def average_dark(dark: np.ndarray, ngroups: int, nframes: int, groupgap: int) -> np.ndarray:
    """Frame-averaged dark (..., ngroups, y, x) float32 from a (..., frames, y, x) dark.

    Group g is the float32 mean of frames ``[g*(nframes+groupgap), ... + nframes)``; with
    ``nframes == 1`` the frames are copied. Works on 3-D darks and on 4-D (MIRI) darks.
    """
    dark = np.asarray(dark, dtype=np.float32)
    out = np.empty((*dark.shape[:-3], ngroups, *dark.shape[-2:]), dtype=np.float32)
    for g in range(ngroups):
        start = g * (nframes + groupgap)
        if nframes == 1:
            out[..., g, :, :] = dark[..., start, :, :]
        else:
            out[..., g, :, :] = dark[..., start : start + nframes, :, :].mean(axis=-3)
    return out


def subtract_dark(sci: np.ndarray, dark: np.ndarray, int_start: int = 1) -> np.ndarray:
    """``sci`` (nints, ngroups, y, x) minus the dark (ngroups', y, x) or MIRI (nints_d, ngroups', y, x).

    NaN in the dark counts as 0. For a 4-D dark, science integration i uses dark integration i
    while ``i < nints_d`` and ``int_start == 1``, else the last one. Only the first ``ngroups``
    dark groups are used.
    """
    ngroups = sci.shape[1]
    d = np.where(np.isnan(dark), np.float32(0), dark).astype(np.float32, copy=False)
    out = np.array(sci, dtype=np.float32, copy=True)
    if d.ndim == 3:
        out -= d[None, :ngroups]
        return out
    nd = d.shape[0]
    for i in range(sci.shape[0]):
        k = i if (i < nd and int_start == 1) else nd - 1
        out[i] -= d[k, :ngroups]
    return out
