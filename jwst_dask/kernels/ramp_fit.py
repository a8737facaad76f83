"""Ramp fitting: optimally weighted least-squares slopes of up-the-ramp samples, per pixel.

One call fits a block of pixels through all integrations and groups and returns everything the
ramp_fit step writes: the exposure-level ``rate`` arrays (2-D), the per-integration ``rateints``
arrays (3-D) and, when asked, the per-segment ``fitopt`` arrays. The algorithm is the ordinary
least-squares fit with Fixsen optimal weighting of the JWST pipeline (the seeds' "Ramp Fitting"
section), with every special case handled as stcal 1.20's C slope fitter does (single-group
segments, the first group only, ZEROFRAME slopes, one-group suppression, CHARGELOSS read noise,
the data-quality bookkeeping), so that the outputs match the official pipeline.

Two places where the seeds and stcal 1.20 differ are switches:

- ``median_per_integration``: the Poisson "slope estimate" is the median of the clean first
  differences pooled over all integrations (seeds, False) or the mean over integrations of each
  integration's median (stcal 1.20, True).
- ``weight_by_readnoise``: segment and integration slopes are combined with inverse combined
  variance weights (seeds, False) or inverse read-noise variance weights (stcal 1.20, True).

Units: SCI in DN, gain in e/DN, READNOISE as in the reference file (the noise of a CDS
difference, DN), times in seconds. Internally the read noise is converted to electrons per
frame as stcal does (``rn * gain / sqrt(2 nframes)``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from jwst_dask.errors import ParameterError, ShapeMismatchError

__all__ = ["RampFitResult", "fit_ramps", "max_segments", "max_crs"]

# DQ bits used here (the JWST table; see jwst_dask.dq).
_DNU = 1
_SAT = 2
_JUMP = 4
_PERS = 32
_CHARGELOSS = 128
_NO_GAIN = 1 << 19

_LARGE_VAR = 1.0e6  # stcal's LARGE_VARIANCE_THRESHOLD
_POWERS = np.array([0.0, 0.4, 1.0, 3.0, 6.0, 10.0])


class RampFitResult(NamedTuple):
    """All arrays from one ramp-fitting call (float32 except the uint32 DQ arrays).

    ``rate_*`` are (ny, nx); ``ints_*`` and ``pedestal`` are (nints, ny, nx); the per-segment
    ``seg_*`` arrays are (nints, max_segments, ny, nx) and ``crmag`` (nints, max_crs, ny, nx).
    The optional arrays have zero size unless ``save_opt`` was requested.
    """

    rate_sci: np.ndarray
    rate_err: np.ndarray
    rate_dq: np.ndarray
    rate_var_poisson: np.ndarray
    rate_var_rnoise: np.ndarray
    ints_sci: np.ndarray
    ints_err: np.ndarray
    ints_dq: np.ndarray
    ints_var_poisson: np.ndarray
    ints_var_rnoise: np.ndarray
    seg_slope: np.ndarray
    seg_sigslope: np.ndarray
    seg_yint: np.ndarray
    seg_sigyint: np.ndarray
    seg_weights: np.ndarray
    seg_var_poisson: np.ndarray
    seg_var_rnoise: np.ndarray
    pedestal: np.ndarray
    crmag: np.ndarray


def max_segments(ngroups: int) -> int:
    """Upper bound on the number of fitted segments in one integration ramp of ``ngroups``."""
    return max(1, ngroups // 2)


def max_crs(ngroups: int) -> int:
    """Upper bound on the number of jumps in one integration ramp of ``ngroups``."""
    return max(1, ngroups - 1)


def _weight_table(ngroups: int) -> np.ndarray:
    """Optimal-weighting factors |(k - mid)/mid|**P for every segment length, power and sample.

    Computed once per call in float32 (as the C fitter's ``powf``), so the per-pixel loop does
    no ``pow``. Indexed ``[length, power index, sample]``.
    """
    table = np.zeros((ngroups + 1, len(_POWERS), max(ngroups, 1)), dtype=np.float64)
    for length in range(3, ngroups + 1):
        mid = (length - 1) / 2.0
        ratio = np.abs((np.arange(length, dtype=np.float64) - mid) * (1.0 / mid)).astype(np.float32)
        for ip, power in enumerate(_POWERS):
            table[length, ip, :length] = np.power(ratio, np.float32(power)).astype(np.float64)
    return table


@njit(cache=True, nogil=True, error_model="numpy")
def _snr_power_index(snr):
    if snr < 5.0:
        return 0
    if snr < 10.0:
        return 1
    if snr < 20.0:
        return 2
    if snr < 50.0:
        return 3
    if snr < 100.0:
        return 4
    return 5


@njit(cache=True, nogil=True, error_model="numpy")
def _median(buf, n):
    """Median of buf[:n] (finite values; may be reordered); NaN if n == 0.

    Short lists (the usual case: the first differences of one ramp) use a branch-free rank count,
    which beats sorting on such sizes; longer ones a sort.
    """
    if n == 0:
        return np.nan
    h = n >> 1
    if n > 24:
        buf[:n].sort()
        if n & 1:
            return buf[h]
        return (buf[h] + buf[h - 1]) / 2.0
    lo = 0.0
    hi = 0.0
    for a in range(n):
        va = buf[a]
        rank = 0
        for b in range(n):
            vb = buf[b]
            rank += (vb < va) | ((vb == va) & (b < a))
        if rank == h:
            hi = va
        if rank == h - 1:
            lo = va
    if n & 1:
        return hi
    return (lo + hi) / 2.0


@njit(cache=True, nogil=True, error_model="numpy")
def _segments(dq, ng, seg_start, seg_len):
    """Segments of one integration ramp: runs of good groups, a run may start on a lone JUMP_DET
    group; single-group runs only if no longer one exists (only the first is kept then).
    Returns the number of segments written to seg_start/seg_len."""
    nseg = 0
    maxlen = 0
    in_seg = False
    start = 0
    npers = ~_PERS
    for idx in range(ng + 1):
        good = idx < ng and (dq[idx] & npers) == 0
        if good:
            if not in_seg:
                if idx > 0 and (dq[idx - 1] & npers) == _JUMP:
                    start = idx - 1
                else:
                    start = idx
                in_seg = True
        elif in_seg:
            length = idx - start
            in_seg = False
            if length == 1 and maxlen > 1:
                continue
            seg_start[nseg] = start
            seg_len[nseg] = length
            nseg += 1
            if length > maxlen:
                maxlen = length
    if nseg >= 2:
        if maxlen < 2:
            nseg = 1
        else:
            k = 0
            for s in range(nseg):
                if seg_len[s] != 1:
                    seg_start[k] = seg_start[s]
                    seg_len[k] = seg_len[s]
                    k += 1
            nseg = k
    return nseg


@njit(cache=True, nogil=True, error_model="numpy")
def _single_group_time(group_time, one_group_time, frame_time, suppress1g, is_0th, is_zf):
    """The time a one-group segment's slope divides by: the group time, or, unless one-group
    slopes are suppressed, the first group's or the ZEROFRAME's own time."""
    if not suppress1g:
        if is_0th:
            return one_group_time
        if is_zf:
            return frame_time
    return group_time


@njit(cache=True, nogil=True, error_model="numpy")
def _rnoise_var(rn, gain, timing, length):
    """Read-noise variance of a segment slope (rn in electrons, timing in s)."""
    r = rn / timing
    if length <= 2:
        return 12.0 * r * r / (6.0 * gain * gain)
    if gain <= 0.0 or math.isnan(gain):
        return 0.0
    return 12.0 * r * r / ((length * length * length - length) * gain * gain)


@njit(cache=True, nogil=True, error_model="numpy")
def _fit_block(
    data,
    gdq,
    pixeldq,
    gain2d,
    rn2d,
    dark2d,
    zframe,
    has_zframe,
    gstart,
    ng,
    frame_time,
    group_time,
    one_group_time,
    nframes,
    ped_tmp,
    suppress_pre,
    suppress1g,
    median_per_int,
    weight_rn,
    save_opt,
    wtable,
    r_sci,
    r_err,
    r_dq,
    r_vp,
    r_vr,
    i_sci,
    i_err,
    i_dq,
    i_vp,
    i_vr,
    o_slope,
    o_sigslope,
    o_yint,
    o_sigyint,
    o_weights,
    o_vp,
    o_vr,
    o_ped,
    o_crmag,
):
    nints = data.shape[0]
    ny = data.shape[2]
    nx = data.shape[3]
    sqrt2nf = math.sqrt(2.0 * nframes)
    inv_gt = 1.0 / group_time
    maxseg = ng // 2 + 1

    ramp = np.empty((nints, ng), dtype=np.float64)
    dq = np.empty((nints, ng), dtype=np.int64)
    odq = np.empty((nints, ng), dtype=np.int64)
    buf = np.empty(max(nints * ng, 1), dtype=np.float64)
    seg_start = np.empty(maxseg + 1, dtype=np.int64)
    seg_len = np.empty(maxseg + 1, dtype=np.int64)
    cnt_good = np.empty(nints, dtype=np.int64)
    cnt_sat = np.empty(nints, dtype=np.int64)
    cnt_dnu = np.empty(nints, dtype=np.int64)
    cnt_dnu_sat = np.empty(nints, dtype=np.int64)
    has_cl = np.empty(nints, dtype=np.bool_)
    is_0th = np.empty(nints, dtype=np.bool_)
    is_zf = np.empty(nints, dtype=np.bool_)
    isl = np.empty(nints, dtype=np.float64)
    idq = np.empty(nints, dtype=np.int64)
    ivp = np.empty(nints, dtype=np.float64)
    ivr = np.empty(nints, dtype=np.float64)
    ierr = np.empty(nints, dtype=np.float64)

    rowd = np.empty((nints, ng, nx), dtype=np.float32)
    rowq = np.empty((nints, ng, nx), dtype=np.uint8)
    for y in range(ny):
        # copy the row's ramps to a contiguous buffer: one sequential stream per group plane
        for i in range(nints):
            for k in range(ng):
                for x in range(nx):
                    rowd[i, k, x] = data[i, gstart + k, y, x]
                    rowq[i, k, x] = gdq[i, gstart + k, y, x]
        for x in range(nx):
            # ---- pixel set-up -------------------------------------------------------
            pdq = np.int64(pixeldq[y, x])
            g = np.float64(gain2d[y, x])
            if g <= 0.0 or math.isnan(g):
                pdq |= _DNU | _NO_GAIN
            if math.isnan(rn2d[y, x]):  # unknown read noise: no variance, no weights, no slope
                pdq |= _DNU
            rn = np.float64(np.float32(np.float64(rn2d[y, x]) * (g / sqrt2nf)))
            dc = np.float64(dark2d[y, x])
            rdq = pdq
            any_cl = False
            for i in range(nints):
                ngood_pre = 0
                cg = 0
                cs = 0
                cd = 0
                cds = 0
                jump = False
                pers = False
                cl = False
                for k in range(ng):
                    v0 = np.int64(rowq[i, k, x])
                    odq[i, k] = v0
                    if (v0 & ~_PERS) == 0:
                        ngood_pre += 1
                    v = v0 - _JUMP if (k == 0 and gstart > 0 and (v0 & _JUMP)) else v0
                    dq[i, k] = v
                    if v & _JUMP:
                        jump = True
                    if v & _PERS:
                        pers = True
                    if v & _CHARGELOSS:
                        cl = True
                    if v == 0:
                        cg += 1
                    elif v & _DNU:
                        cd += 1
                    if v & (_DNU | _SAT):
                        cds += 1
                    if v & _SAT:
                        ramp[i, k] = np.nan
                        cs += 1
                    else:
                        ramp[i, k] = np.float64(rowd[i, k, x])
                if suppress_pre and ngood_pre == 1:
                    # a ramp with one good group is suppressed: every group DO_NOT_USE
                    for k in range(ng):
                        dq[i, k] |= _DNU
                    cg = 0
                    cd = ng
                    cds = ng
                is_0th[i] = False
                is_zf[i] = False
                if not suppress1g:
                    if cg == 1 and dq[i, 0] == 0:
                        is_0th[i] = True
                    elif cg == 0 and has_zframe:
                        zf = np.float64(zframe[i, y, x])
                        if zf != 0.0:
                            ramp[i, 0] = zf
                            dq[i, 0] = 0
                            cg = 1
                            cds -= 1
                            if cs == ng:
                                cs -= 1
                            if cd == ng:
                                cd -= 1
                            is_zf[i] = True
                cnt_good[i] = cg
                cnt_sat[i] = cs
                cnt_dnu[i] = cd
                cnt_dnu_sat[i] = cds
                has_cl[i] = cl
                if cl:
                    any_cl = True
                idq[i] = pdq
                if jump:
                    idq[i] |= _JUMP
                    rdq |= _JUMP
                if pers:
                    idq[i] |= _PERS
                    rdq |= _PERS
                isl[i] = 0.0
                ivp[i] = 0.0
                ivr[i] = 0.0
                ierr[i] = 0.0

            # ---- Poisson slope estimate ----------------------------------------------
            if ng == 1:
                acc = 0.0
                for i in range(nints):
                    acc += ramp[i, 0] / one_group_time
                median_rate = acc / nints
            elif median_per_int:
                acc = 0.0
                for i in range(nints):
                    if is_0th[i]:
                        mr = ramp[i, 0] / one_group_time
                    elif is_zf[i]:
                        mr = ramp[i, 0] / frame_time
                    else:
                        n = _first_diffs(ramp, dq, i, ng, inv_gt, buf, 0)
                        mr = _median(buf, n)
                    if math.isnan(mr):
                        mr = 0.0
                    acc += mr
                median_rate = acc / nints
            else:
                n = 0
                for i in range(nints):
                    if is_0th[i]:
                        buf[n] = ramp[i, 0] / one_group_time
                        n += 1
                    elif is_zf[i]:
                        buf[n] = ramp[i, 0] / frame_time
                        n += 1
                    else:
                        n += _first_diffs(ramp, dq, i, ng, inv_gt, buf, n)
                median_rate = _median(buf, n)
                if math.isnan(median_rate):
                    median_rate = 0.0

            # ---- per integration -----------------------------------------------------
            rate_vp = 0.0
            rate_vr = 0.0
            rate_num = 0.0
            rate_num_e = 0.0
            inv_e_sum = 0.0
            dnu_cnt = 0
            sat_cnt = 0
            set_rate_sat = False
            for i in range(nints):
                nseg = 0
                if dq[i, 0] & _SAT:
                    idq[i] |= _DNU | _SAT
                    isl[i] = np.nan
                else:
                    nseg = _segments(dq[i], ng, seg_start, seg_len)
                if cnt_dnu_sat[i] == ng:
                    idq[i] |= _DNU
                    if cnt_sat[i] == ng:
                        idq[i] |= _SAT
                elif nseg > 0:
                    inv_r = 0.0
                    inv_p = 0.0
                    inv_e = 0.0
                    num_r = 0.0
                    num_e = 0.0
                    for s in range(nseg):
                        st = seg_start[s]
                        length = seg_len[s]
                        sigslope = 0.0
                        yint = 0.0
                        sigyint = 0.0
                        if length == 1:
                            timing = _single_group_time(
                                group_time, one_group_time, frame_time, suppress1g, is_0th[i], is_zf[i]
                            )
                            slope = ramp[i, st] / timing
                            pden = timing * g
                            var_r = _rnoise_var(rn, g, timing, 1)
                        elif length == 2:
                            d0 = ramp[i, st]
                            d1 = ramp[i, st + 1]
                            slope = (d1 - d0) / group_time
                            pden = group_time * g
                            var_r = _rnoise_var(rn, g, group_time, 2)
                            sigslope = 1.41421356 * rn
                            second = st + 1.0
                            yint = d1 * (1.0 - second) + d0 * second
                            sigyint = sigslope
                        else:
                            dstart = ramp[i, st]
                            dend = ramp[i, st + length - 1]
                            sig = dend - dstart
                            den = rn * rn + sig * g
                            if den <= 0.0 or g == 0.0:
                                snr = 0.0
                            else:
                                snr = sig * g / math.sqrt(den)
                                if snr < 0.0:
                                    snr = 0.0
                            ip = _snr_power_index(snr)
                            invrn2 = 1.0 / (rn * rn)
                            sumw = 0.0
                            sumx = 0.0
                            sumxx = 0.0
                            sumy = 0.0
                            sumxy = 0.0
                            for k in range(length):
                                w = wtable[length, ip, k] * invrn2
                                xv = np.float64(k + st)
                                d = ramp[i, st + k]
                                if math.isnan(d):
                                    d = 0.0
                                xw = xv * w
                                sumw += w
                                sumx += xw
                                sumxx += xv * xw
                                sumy += d * w
                                sumxy += d * xw
                            den = sumw * sumxx - sumx * sumx
                            num = sumw * sumxy - sumx * sumy
                            invden = 1.0 / den
                            slope = num * invden / group_time
                            if save_opt:
                                sigslope = math.sqrt(sumw * invden)
                                yint = (sumxx * sumy - sumx * sumxy) * invden
                                sigyint = math.sqrt(sumxx * invden)
                            pden = group_time * g * (length - 1.0)
                            var_r = _rnoise_var(rn, g, group_time, np.float64(length))
                        if median_rate > 0.0:
                            var_p = (median_rate + dc) / pden
                        else:
                            var_p = dc / pden
                        var_e = var_p + var_r
                        w_r = 1.0 / var_r
                        w_e = 1.0 / var_e
                        inv_r += w_r
                        if var_p > 0.0:
                            inv_p += 1.0 / var_p
                        inv_e += w_e
                        num_r += slope * w_r
                        num_e += slope * w_e
                        if save_opt and s < o_slope.shape[1]:
                            o_slope[i, s, y, x] = slope
                            o_sigslope[i, s, y, x] = sigslope
                            o_yint[i, s, y, x] = yint
                            o_sigyint[i, s, y, x] = sigyint
                            o_weights[i, s, y, x] = w_r
                            o_vp[i, s, y, x] = var_p
                            o_vr[i, s, y, x] = var_r
                    if inv_p > 0.0:
                        ivp[i] = 1.0 / inv_p
                    if ivp[i] >= _LARGE_VAR:
                        ivp[i] = 0.0
                    ivr[i] = 1.0 / inv_r
                    if ivr[i] >= _LARGE_VAR:
                        ivr[i] = 0.0
                    if idq[i] & (_DNU | _SAT):
                        isl[i] = np.nan
                        ivp[i] = 0.0
                        ivr[i] = 0.0
                        ierr[i] = 0.0
                    else:
                        var_err = 1.0 / inv_e
                        if weight_rn:
                            isl[i] = num_r * ivr[i]
                        else:
                            isl[i] = num_e * var_err
                        if var_err > _LARGE_VAR:
                            ierr[i] = 0.0
                        else:
                            ierr[i] = math.sqrt(var_err)
                    if inv_p > 0.0:
                        rate_vp += inv_p
                    rate_vr += inv_r
                    inv_e_sum += inv_e
                    rate_num += num_r
                    rate_num_e += num_e
                if idq[i] & _DNU:
                    dnu_cnt += 1
                    isl[i] = np.nan
                if save_opt:
                    if idq[i] & _SAT:
                        ped = 0.0
                    else:
                        ped = ramp[i, 0] - isl[i] * ped_tmp
                        if math.isnan(ped):
                            ped = 0.0
                    o_ped[i, y, x] = ped
                    ncr = 0
                    for k in range(1, ng):
                        if dq[i, k] & _JUMP and ncr < o_crmag.shape[1]:
                            o_crmag[i, ncr, y, x] = ramp[i, k] - ramp[i, k - 1]
                            ncr += 1
                if idq[i] & _SAT:
                    sat_cnt += 1
                    isl[i] = np.nan
                if cnt_sat[i] > 0:
                    idq[i] |= _SAT
                    set_rate_sat = True

            # ---- exposure level ------------------------------------------------------
            if dnu_cnt == nints:
                rdq |= _DNU
            if sat_cnt == nints:
                rdq |= _SAT
            if rate_vp > 0.0:
                rate_vp = 1.0 / rate_vp
            if rate_vp >= _LARGE_VAR or rate_vp < 0.0:
                rate_vp = 0.0
            if rate_vr > 0.0:
                rate_vr = 1.0 / rate_vr
            if rate_vr >= _LARGE_VAR:
                rate_vr = 0.0
            rerr = math.sqrt(rate_vp + rate_vr)
            if weight_rn:
                rsl = rate_num
            elif inv_e_sum > 0.0:
                rsl = rate_num_e / inv_e_sum
            else:
                rsl = 0.0
            if rdq & (_DNU | _SAT):
                rsl = np.nan
                rate_vp = 0.0
                rate_vr = 0.0
                rerr = 0.0
            if set_rate_sat:
                rdq |= _SAT
            if weight_rn and not math.isnan(rsl):
                rsl = rsl * rate_vr

            # ---- CHARGELOSS: read-noise variance including the charge-migration groups ----
            if any_cl:
                evar_r = 0.0
                for i in range(nints):
                    if not has_cl[i]:
                        if ivr[i] > 0.0:
                            evar_r += 1.0 / ivr[i]
                        continue
                    for k in range(ng):
                        if odq[i, k] & _CHARGELOSS:
                            odq[i, k] ^= _DNU | _CHARGELOSS
                    nseg = _segments(odq[i], ng, seg_start, seg_len)
                    inv_r = 0.0
                    for s in range(nseg):
                        length = seg_len[s]
                        if length == 1:
                            timing = _single_group_time(
                                group_time, one_group_time, frame_time, suppress1g, is_0th[i], is_zf[i]
                            )
                            svar = _rnoise_var(rn, g, timing, 1)
                        else:
                            svar = _rnoise_var(rn, g, group_time, np.float64(length))
                        if svar > 0.0:
                            inv_r += 1.0 / svar
                    ivr[i] = 1.0 / inv_r
                    if ivr[i] >= _LARGE_VAR:
                        ivr[i] = 0.0
                    evar_r += inv_r
                if evar_r > 0.0:
                    rate_vr = 1.0 / evar_r
                if rate_vr >= _LARGE_VAR:
                    rate_vr = 0.0

            # ---- store -----------------------------------------------------------------
            r_sci[y, x] = rsl
            r_err[y, x] = rerr
            r_dq[y, x] = rdq
            r_vp[y, x] = rate_vp
            r_vr[y, x] = rate_vr
            for i in range(nints):
                i_sci[i, y, x] = isl[i]
                i_err[i, y, x] = ierr[i]
                i_dq[i, y, x] = idq[i]
                i_vp[i, y, x] = ivp[i]
                i_vr[i, y, x] = ivr[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _first_diffs(ramp, dq, i, ng, inv_gt, buf, off):
    """Clean first differences (DN/s) of integration i appended to buf[off:]: a difference is
    dropped where either group is DO_NOT_USE or saturated or the later group is a jump. If none
    is left but the first group is good, the first group's rate is used instead. Returns the
    number of values written."""
    n = 0
    prev = np.nan if (dq[i, 0] & _DNU) else ramp[i, 0]
    loc0 = prev
    for k in range(1, ng):
        cur = np.nan if (dq[i, k] & _DNU) else ramp[i, k]
        if not (dq[i, k] & _JUMP):
            d = cur - prev
            if not math.isnan(d):
                buf[off + n] = d * inv_gt
                n += 1
        prev = cur
    if n == 0 and not math.isnan(loc0):
        buf[off] = loc0 * inv_gt
        n = 1
    return n


def fit_ramps(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    gain: np.ndarray,
    readnoise: np.ndarray,
    *,
    frame_time: float,
    group_time: float,
    nframes: int,
    groupgap: int = 0,
    dropframes1: int = 0,
    zeroframe: np.ndarray | None = None,
    dark_current: np.ndarray | None = None,
    suppress_one_group: bool = True,
    save_opt: bool = False,
    median_per_integration: bool = False,
    weight_by_readnoise: bool = False,
    first_group: int = 0,
    last_group: int | None = None,
) -> RampFitResult:
    """Fit the ramps of a block of pixels; return the rate, rateints and (optional) fitopt arrays.

    ``data`` (nints, ngroups, ny, nx) float, ``groupdq`` uint8 of the same shape, ``pixeldq``
    uint32 (ny, nx), ``gain`` e/DN and ``readnoise`` DN (CDS noise) (ny, nx), optional
    ``zeroframe`` (nints, ny, nx) and ``dark_current`` (ny, nx, DN/s). ``first_group`` and
    ``last_group`` (inclusive) restrict the fit to a range of groups as if the others did not
    exist (the official pipeline drops MIRI groups that are DO_NOT_USE in every pixel this way).
    The switches are described in the module docstring.
    """
    data = np.asarray(data)
    if data.ndim != 4:
        raise ShapeMismatchError(
            f"ramp_fit: SCI must be 4-D (nints, ngroups, ny, nx), got shape {data.shape}"
        )
    nints, ngroups_all, ny, nx = data.shape
    for name, arr, shape in (
        ("GROUPDQ", groupdq, data.shape),
        ("PIXELDQ", pixeldq, (ny, nx)),
        ("gain", gain, (ny, nx)),
        ("readnoise", readnoise, (ny, nx)),
    ):
        if np.shape(arr) != shape:
            raise ShapeMismatchError(f"ramp_fit: {name} has shape {np.shape(arr)}, expected {shape}")
    if zeroframe is not None and np.shape(zeroframe) != (nints, ny, nx):
        raise ShapeMismatchError(
            f"ramp_fit: ZEROFRAME has shape {np.shape(zeroframe)}, expected {(nints, ny, nx)}"
        )
    if not (group_time > 0 and frame_time > 0 and nframes >= 1):
        raise ParameterError(
            f"ramp_fit: invalid timing (group_time={group_time}, frame_time={frame_time}, nframes={nframes})"
        )
    gstart = int(first_group)
    gend = ngroups_all if last_group is None else int(last_group) + 1
    if not (0 <= gstart < gend <= ngroups_all):
        raise ParameterError(
            f"ramp_fit: invalid group range {first_group}..{last_group} for {ngroups_all} groups"
        )
    ng = gend - gstart
    suppress_pre = bool(suppress_one_group) and ngroups_all > 1
    if dark_current is None:
        dark_current = np.zeros((ny, nx), dtype=np.float32)
    has_zf = zeroframe is not None
    zf = zeroframe if has_zf else np.zeros((nints, 1, 1), dtype=np.float32)
    one_group_time = (float(np.float32(nframes)) + 1.0) * float(np.float32(frame_time)) / 2.0
    ped_tmp = ((nframes + 1) / 2.0 + dropframes1) / (nframes + groupgap)

    f32 = np.float32
    # every element of the rate and rateints arrays is written by the kernel
    r = [np.empty((ny, nx), f32) for _ in range(5)]
    r[2] = np.empty((ny, nx), np.uint32)
    ints = [np.empty((nints, ny, nx), f32) for _ in range(5)]
    ints[2] = np.empty((nints, ny, nx), np.uint32)
    if save_opt:
        sshape = (nints, max_segments(ng), ny, nx)
        opt = [np.zeros(sshape, f32) for _ in range(7)]
        ped = np.zeros((nints, ny, nx), f32)
        crmag = np.zeros((nints, max_crs(ng), ny, nx), f32)
    else:
        opt = [np.zeros((nints, 0, ny, nx), f32) for _ in range(7)]
        ped = np.zeros((nints, 0, 0), f32)
        crmag = np.zeros((nints, 0, ny, nx), f32)

    # one compiled specialisation: C-contiguous arrays of the JWST dtypes
    c = np.ascontiguousarray
    _fit_block(
        c(data, dtype=np.float32),
        c(groupdq, dtype=np.uint8),
        c(pixeldq, dtype=np.uint32),
        c(gain, dtype=np.float32),
        c(readnoise, dtype=np.float32),
        c(dark_current, dtype=np.float32),
        c(zf, dtype=np.float32),
        has_zf,
        gstart,
        ng,
        float(frame_time),
        float(group_time),
        float(one_group_time),
        int(nframes),
        float(ped_tmp),
        suppress_pre,
        bool(suppress_one_group) and ngroups_all > 1,
        bool(median_per_integration),
        bool(weight_by_readnoise),
        bool(save_opt),
        _weight_table(ng),
        *r,
        *ints,
        *opt,
        ped,
        crmag,
    )
    return RampFitResult(*r, *ints, *opt, ped, crmag)
