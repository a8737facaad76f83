"""Persistence kernels: the three-family trap model of the near-infrared detectors.

Charge trapped during earlier exposures is released with time constants per trap family and
appears as spurious signal ("persistence"). Per integration and group, the traps filled so far
decay (``filled * (1 - exp(-dt/tau))``), and the cumulative release since the start of the
integration is subtracted from the group. At the end of each integration, new captures are
predicted from the ramp slope (with saturated and jump groups left out), the time spent above the
persistence saturation level, and cosmic-ray jumps. Everything is per pixel, so a tile gives the
same result as the whole frame.

Parameters per family (the TRAPPARS table): capture0, capture1, capture2, decay_param.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from jwst_dask.dq import FLAGS

__all__ = ["SCALEFACTOR", "decay", "group_slope", "predict_capture", "correct_persistence"]

#: Charges freed from traps are detected with a different gain than photo-generated ones.
SCALEFACTOR = 2.0

_SAT = FLAGS["SATURATED"]
_JUMP = FLAGS["JUMP_DET"]


def decay(filled: np.ndarray, decay_param: float, dt: float) -> np.ndarray:
    """Traps released from ``filled`` in ``dt`` seconds: ``filled * (1 - exp(-dt |decay_param|))``."""
    if decay_param == 0.0:
        return filled * 0.0
    tau = 1.0 / abs(decay_param)
    return filled * (1.0 - math.exp(-dt / tau))


@njit(cache=True, nogil=True)
def _group_slope(data, gdq, satflag, jumpflag):
    ngroups, ny, nx = data.shape
    nd = ngroups - 1
    out = np.zeros((ny, nx), dtype=np.float32)
    diff = np.empty((nx, nd), dtype=np.float32)
    nbad = np.empty(nx, dtype=np.int64)
    for y in range(ny):
        nbad[:] = 0
        for g in range(ngroups):  # row by row: contiguous reads
            for x in range(nx):
                if gdq[g, y, x] & jumpflag:
                    nbad[x] += 1
                if g > 0:
                    if gdq[g, y, x] & satflag:
                        diff[x, g - 1] = np.inf
                        nbad[x] += 1
                    else:
                        diff[x, g - 1] = data[g, y, x] - data[g - 1, y, x]
        for x in range(nx):
            upper = nd - nbad[x]
            if upper <= 0:
                continue
            buf = diff[x]
            for k in range(1, nd):  # insertion sort: a few values per pixel
                v = buf[k]
                j = k - 1
                while j >= 0 and buf[j] > v:
                    buf[j + 1] = buf[j]
                    j -= 1
                buf[j + 1] = v
            acc = np.float32(0.0)
            for k in range(upper):
                acc += buf[k]
            out[y, x] = acc / np.float32(upper)
    return out


def group_slope(data: np.ndarray, gdq: np.ndarray) -> np.ndarray:
    """Slope in DN/group of one integration (ngroups, y, x): the mean of the first differences
    left after dropping as many of the largest as there are SATURATED and JUMP_DET groups
    (saturated differences sort above every real one)."""
    if data.shape[0] == 1:
        return data[0].astype(np.float64)
    return _group_slope(
        np.ascontiguousarray(data, dtype=np.float32),
        np.ascontiguousarray(gdq),
        np.uint8(_SAT),
        np.uint8(_JUMP),
    )


def predict_capture(
    data: np.ndarray,
    gdq: np.ndarray,
    par: tuple[float, float, float],
    trap_density: np.ndarray,
    grp_slope: np.ndarray,
    slope: np.ndarray,
    persat: np.ndarray,
    persat_bad: np.ndarray,
    tgroup: float,
    tframe: float,
    nresets: int,
) -> np.ndarray:
    """Traps of one family filled during one integration (ngroups, y, x): ramp, saturated
    portion and cosmic-ray jumps."""
    par0, par1, par2 = par
    ngroups = data.shape[0]
    total = ngroups * tgroup + nresets * tframe
    over = (data > persat) & ~persat_bad
    sat_count = over.sum(axis=0)
    sattime = sat_count.astype(np.float64) * tgroup
    dt = total - sattime
    tau = 1.0e10 if par1 == 0 else 1.0 / abs(par1)
    ramp = (
        trap_density
        * slope**2
        * (dt**2 * (par0 + par2) / 2.0 + par0 * (dt * tau + tau**2) * np.exp(-dt / tau) - par0 * tau**2)
    )
    ramp = ramp * SCALEFACTOR
    filled = ramp.copy()
    m = sat_count > 0
    if m.any():
        inc = ramp[m].copy()
        td = trap_density[m]
        full = sat_count[m] == ngroups
        inc[full] = td[full] * par2
        exp_filled = inc - td * par2
        empty = td * par0 - exp_filled
        filled[m] = inc + empty * (1.0 - np.exp(-abs(par1) * sattime[m]))
    cr = np.zeros(trap_density.shape, dtype=np.float64)
    for g in range(1, ngroups):
        hit = (gdq[g] & _JUMP) > 0
        if hit.any():
            dtg = (float(ngroups - g) - 0.5) * tgroup
            jump = (data[g] - data[g - 1]) - grp_slope
            jump = np.where(jump < 0.0, 0.0, jump)
            cr += np.where(hit, trap_density * jump * (par0 * (1.0 - math.exp(par1 * dtg)) + par2), 0.0)
    return filled + cr * SCALEFACTOR


def correct_persistence(
    sci: np.ndarray,
    gdq: np.ndarray,
    traps: np.ndarray,
    trap_density: np.ndarray,
    persat: np.ndarray,
    persat_bad: np.ndarray,
    params: np.ndarray,
    tgroup: float,
    tframe: float,
    nresets_start: int,
    nresets_between: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Persistence-corrected SCI, the persistence subtracted (float32, same shape), and the
    traps filled at the end of the exposure (nfamilies, y, x) float32.

    ``traps`` (nfamilies, y, x): traps filled at the start of the exposure (already decayed to
    it; zeros when there is no earlier state). ``trap_density`` has NaN and DO_NOT_USE pixels set
    to 0 and ``persat`` NaN set to 1e7 by the caller. ``params`` (nfamilies, 4): capture0,
    capture1, capture2, decay_param.
    """
    nints, ngroups = sci.shape[:2]
    traps = np.array(traps, dtype=np.float32, copy=True)
    out = np.array(sci, dtype=np.float32, copy=True)
    pers_out = np.zeros(sci.shape, dtype=np.float32)
    nfam = params.shape[0]
    td = np.asarray(trap_density, dtype=np.float32)
    for i in range(nints):
        nresets = nresets_start if i == 0 else nresets_between
        gslope = group_slope(out[i], gdq[i])
        psat = np.where(persat_bad, 1.0, persat)
        slope = np.where(persat_bad, 0.0, gslope / (psat * tgroup))
        decayed = np.zeros((nfam, *sci.shape[2:]), dtype=np.float64)
        for g in range(ngroups if traps.any() else 0):  # empty traps release nothing
            pers = np.zeros(sci.shape[2:], dtype=np.float64)
            for k in range(nfam):
                dp = float(params[k, 3])
                if i > 0 and g == 0 and nresets > 0:
                    traps[k] -= decay(traps[k], dp, tframe * nresets)
                d = decay(traps[k], dp, tgroup)
                decayed[k] += d
                traps[k] -= d
                pers += decayed[k]
            out[i, g] -= pers
            pers_out[i, g] = pers
        for k in range(nfam):
            par = (float(params[k, 0]), float(params[k, 1]), float(params[k, 2]))
            traps[k] += predict_capture(
                out[i], gdq[i], par, td, gslope, slope, persat, persat_bad, tgroup, tframe, nresets
            )
    return out, pers_out, traps
