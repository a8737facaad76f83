"""One raw exposure: the plan (everything random drawn up front, small) and the tile renderer.

:class:`ExposurePlan` holds what is random about an exposure but small: the sources on its pixels,
the cosmic-ray hits, the reference-pixel drifts, the light curve. :func:`render_block` turns a plan
into the raw uint16 ramp of any block of integrations and pixels, drawing its noise from a generator
seeded by (seed, exposure, integration, block origin), so a block is the same whichever process
makes it and the whole exposure is a lazy Dask array generated tile by tile
(:func:`sci_array`): memory stays bounded and every core works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dask.array as da
import numpy as np

from jwst_dask.simulate import detector as phys
from jwst_dask.simulate.readout import Readout
from jwst_dask.simulate.scene import render_rate

__all__ = [
    "ExposurePlan",
    "HIT_DTYPE",
    "make_cosmic_rays",
    "make_drifts",
    "render_block",
    "sci_array",
    "zeroframe_array",
    "refout_array",
    "truth_rate",
    "saturated_truth",
]

#: one row per pixel hit by a cosmic ray (coordinates in the exposure's own pixels, 0-based)
HIT_DTYPE = np.dtype(
    [
        ("event", "i4"),
        ("kind", "U8"),  # "cr" | "halo" | "snowball"
        ("integration", "i4"),
        ("group", "i4"),  # the jump is between groups group-1 and group (0-based)
        ("y", "i4"),
        ("x", "i4"),
        ("electrons", "f8"),
        ("dn", "f8"),  # linear DN (electrons / gain)
    ]
)

_REFOUT_BIAS = 10500.0
_MIRI_FIRST_FRAME = 15.0  # DN added to the first group (flagged by firstframe)
_MIRI_LAST_FRAME = -20.0  # DN added to the last group (flagged by lastframe)
_MIRI_RSCD = 30.0  # DN, decaying over the first groups of integrations 2+ (flagged by rscd)
MIRI_RSCD_GROUPS = 4


@dataclass
class ExposurePlan:
    """Everything needed to render an exposure; small enough to ship to every task."""

    detector: str
    readout: Readout
    xstart: int  # 1-based full-frame origin of the exposure's pixels
    ystart: int
    xsize: int
    ysize: int
    filter: str
    date: str
    seed: int
    exposure: int
    sources: np.ndarray
    background: float
    psf: float
    noiseless: bool = False
    lightcurve: np.ndarray | None = None  # (nints,) multiplier of the variable sources
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=HIT_DTYPE))
    amp_drift: np.ndarray | None = None  # (nints, ngroups, namps, 2) DN per amplifier and column parity
    row_drift: np.ndarray | None = None  # (nints, ngroups, ysize) DN per row
    tile: int = 512
    int_chunk: int = 0  # integrations per chunk (0: all)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(nints, ngroups, ysize, xsize)."""
        return (self.readout.nints, self.readout.ngroups, self.ysize, self.xsize)

    @property
    def det(self) -> phys.DetectorSpec:
        """The detector description."""
        return phys.detector_spec(self.detector)

    def full_slices(self, y0: int, y1: int, x0: int, x1: int) -> tuple[slice, slice]:
        """Full-frame slices of a block given in the exposure's own pixels."""
        oy, ox = self.ystart - 1, self.xstart - 1
        return slice(oy + y0, oy + y1), slice(ox + x0, ox + x1)


def make_drifts(rng: np.random.Generator, det: phys.DetectorSpec, readout: Readout, ysize: int):
    """Reference-pixel drifts: per (integration, group, amplifier, column parity) offsets and a slow
    row-wise 1/f-like wander (a smoothed random walk along the rows), in DN."""
    ni, ng = readout.nints, readout.ngroups
    s_amp, s_par, s_row = det.drift
    amp = rng.normal(0.0, s_amp, (ni, ng, det.namps, 1)) + rng.normal(0.0, s_par, (ni, ng, det.namps, 2))
    steps = rng.normal(0.0, s_row, (ni, ng, ysize))
    walk = np.cumsum(steps, axis=-1)
    kernel = np.ones(9) / 9.0
    smooth = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), -1, walk)
    smooth -= smooth.mean(axis=-1, keepdims=True)
    return amp.astype(np.float64), smooth.astype(np.float64)


def make_cosmic_rays(
    rng: np.random.Generator,
    det: phys.DetectorSpec,
    readout: Readout,
    xstart: int,
    ystart: int,
    xsize: int,
    ysize: int,
    *,
    rate: float = 1.6e-5,
    snowballs_per_kilosecond_frame: float = 25.0,
    min_snowballs: int = 1,
) -> np.ndarray:
    """Cosmic-ray hits as a pixel table (:data:`HIT_DTYPE`).

    ``rate`` hits per pixel per second (about 5 per cm^2 per s on 18 um pixels), log-normal charge
    (median 700 e-); a third of them with a shower halo (3x3 neighbours at 3-8 %); snowballs (a
    saturating disk of radius 2-5 px and a faint ring) at ``snowballs_per_kilosecond_frame`` per
    1000 s over a full frame, at least ``min_snowballs`` per exposure. Hits fall at groups 1..n-1.
    """
    if readout.ngroups < 2:
        return np.zeros(0, dtype=HIT_DTYPE)
    ref = phys.reference_pixel_mask(det)[ystart - 1 : ystart - 1 + ysize, xstart - 1 : xstart - 1 + xsize]
    oy, ox = ystart - 1, xstart - 1
    gain = phys.field(det.name, "gain", slice(oy, oy + ysize), slice(ox, ox + xsize))
    cols: dict[str, list] = {k: [] for k in ("event", "kind", "integration", "group", "y", "x", "electrons")}

    def add(event, kind, integ, group, y, x, e) -> None:
        n = len(np.atleast_1d(y))
        values = {"event": event, "integration": integ, "group": group, "y": y, "x": x, "electrons": e}
        for key, value in values.items():
            cols[key].append(np.broadcast_to(np.asarray(value), (n,)))
        cols["kind"].append(np.full(n, kind, dtype="U8"))

    ev = 0
    t_int = readout.integration_duration
    area_frac = xsize * ysize / (det.shape[0] * det.shape[1])
    nb = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    for i in range(readout.nints):
        n = rng.poisson(rate * xsize * ysize * t_int)
        ys = rng.integers(0, ysize, n)
        xs = rng.integers(0, xsize, n)
        gs = rng.integers(1, readout.ngroups, n)
        amps = rng.lognormal(np.log(700.0), 0.8, n)
        halo = rng.random(n) < 0.33
        events = ev + 1 + np.arange(n)
        ev += n
        add(events, "cr", i, gs, ys, xs, amps)
        k = np.nonzero(halo)[0]
        if len(k):
            hy = (ys[k][:, None] + nb[None, :, 0]).ravel()
            hx = (xs[k][:, None] + nb[None, :, 1]).ravel()
            he = (amps[k][:, None] * rng.uniform(0.03, 0.08, (len(k), len(nb)))).ravel()
            inside = (hy >= 0) & (hy < ysize) & (hx >= 0) & (hx < xsize)
            ev_h = np.repeat(events[k], len(nb))[inside]
            g_h = np.repeat(gs[k], len(nb))[inside]
            add(ev_h, "halo", i, g_h, hy[inside], hx[inside], he[inside])
    expected = snowballs_per_kilosecond_frame * area_frac * readout.nints * t_int / 1000.0
    nsnow = max(min_snowballs, rng.poisson(expected))
    for _ in range(nsnow):
        ev += 1
        i = int(rng.integers(0, readout.nints))
        g = int(rng.integers(1, readout.ngroups))
        r0 = rng.uniform(2.0, 5.0)
        cy = rng.uniform(0, ysize)
        cx = rng.uniform(0, xsize)
        core = rng.uniform(1.5e5, 3.0e5)
        rr = int(np.ceil(r0 + 2))
        for y in range(int(cy) - rr, int(cy) + rr + 1):
            for x in range(int(cx) - rr, int(cx) + rr + 1):
                if not (0 <= y < ysize and 0 <= x < xsize):
                    continue
                d = np.hypot(y + 0.5 - cy, x + 0.5 - cx)
                if d <= r0:
                    add(ev, "snowball", i, g, y, x, core)
                elif d <= r0 + 2:
                    add(ev, "halo", i, g, y, x, core * 0.01)
    hits = np.zeros(sum(len(v) for v in cols["y"]), dtype=HIT_DTYPE)
    if len(hits):
        for key, parts in cols.items():
            hits[key] = np.concatenate(parts)
        keep = ~ref[hits["y"], hits["x"]]  # reference pixels see no light and no charge
        hits = hits[keep]
        hits["dn"] = hits["electrons"] / gain[hits["y"], hits["x"]]
    return hits


def _response(plan: ExposurePlan, fy: slice, fx: slice) -> np.ndarray:
    """Pixel response multiplying the flat-fielded scene: the flat, 0 on dead and reference pixels."""
    flat = phys.flat_field(plan.detector, plan.filter, plan.date, fy, fx).astype(np.float64)
    dead = phys.field(plan.detector, "dead", fy, fx) | (phys.field(plan.detector, "qe", fy, fx) == 0)
    return np.where(dead, 0.0, flat)


def truth_rate(plan: ExposurePlan, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None):
    """True count rates on the exposure's pixels [y0:y1, x0:x1]: a dict of float64 arrays

    ``scene`` (flat-fielded DN/s, constant part), ``scene_variable`` (the variable sources at light-curve
    value 1), ``response`` (flat, 0 on dead/reference pixels), ``rate`` (detector DN/s of the constant
    part = scene x response) and ``dark`` (DN/s)."""
    y1 = plan.ysize if y1 is None else y1
    x1 = plan.xsize if x1 is None else x1
    fy, fx = plan.full_slices(y0, y1, x0, x1)
    oy, ox = plan.ystart - 1, plan.xstart - 1
    args = (plan.sources, y0 + oy, y1 + oy, x0 + ox, x1 + ox)
    static = render_rate(*args, psf=plan.psf, background=plan.background, variable=False)
    var = render_rate(*args, psf=plan.psf, variable=True)
    resp = _response(plan, fy, fx)
    gain = phys.field(plan.detector, "gain", fy, fx).astype(np.float64)
    dark = phys.field(plan.detector, "dark_e", fy, fx).astype(np.float64) / gain
    return {"scene": static, "scene_variable": var, "response": resp, "rate": static * resp, "dark": dark}


def render_block(plan: ExposurePlan, i0: int, i1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Raw uint16 ramp (i1-i0, ngroups, y1-y0, x1-x0) for integrations [i0, i1) and pixels [y0:y1, x0:x1]."""
    return _render(plan, i0, i1, y0, y1, x0, x1, zeroframe=False)


def _render(plan: ExposurePlan, i0, i1, y0, y1, x0, x1, *, zeroframe: bool) -> np.ndarray:
    det = plan.det
    ro = plan.readout
    name = plan.detector
    fy, fx = plan.full_slices(y0, y1, x0, x1)
    ny, nx = y1 - y0, x1 - x0
    bias = phys.field(name, "bias", fy, fx).astype(np.float64)
    gain = phys.field(name, "gain", fy, fx).astype(np.float64)
    rn = phys.field(name, "read_noise", fy, fx).astype(np.float64)
    beta = phys.field(name, "beta", fy, fx).astype(np.float64)
    sat = phys.field(name, "sat_signal", fy, fx).astype(np.float64)
    truth = truth_rate(plan, y0, y1, x0, x1)
    e_static = (truth["rate"] + truth["dark"]) * gain  # e-/s
    e_var = truth["scene_variable"] * truth["response"] * gain
    xs_full = np.arange(fx.start, fx.stop)
    amp = phys.amplifier_index(det, xs_full)
    parity = xs_full % 2
    frames = ro.frame_index()  # (ngroups, nframes)
    miri = det.instrument == "MIRI"
    if miri:
        reset = phys.reset_anomaly(name, ro.nints, ro.ngroups, fy, fx).astype(np.float64)

    hits = plan.hits
    if len(hits):
        inblk = (hits["y"] >= y0) & (hits["y"] < y1) & (hits["x"] >= x0) & (hits["x"] < x1)
        hits = hits[inblk & (hits["integration"] >= i0) & (hits["integration"] < i1)]

    out_shape = (i1 - i0, ny, nx) if zeroframe else (i1 - i0, ro.ngroups, ny, nx)
    out = np.empty(out_shape, dtype=np.uint16)
    vertex = 0.5 / beta
    for i in range(i0, i1):
        rng = np.random.default_rng(
            phys.stable_seed("tile", plan.seed, plan.exposure, i, plan.ystart + y0, plan.xstart + x0)
        )
        e_rate = e_static if plan.lightcurve is None else e_static + e_var * plan.lightcurve[i]
        hi = hits[hits["integration"] == i] if len(hits) else hits
        charge = np.zeros((ny, nx), dtype=np.float64)
        t_prev = 0.0
        for g in range(1 if zeroframe else ro.ngroups):
            hg = hi[hi["group"] == g] if len(hi) else hi
            if len(hg):
                np.add.at(charge, (hg["y"] - y0, hg["x"] - x0), hg["electrons"])
            acc = np.zeros((ny, nx), dtype=np.float64)
            nread = 1 if zeroframe else frames.shape[1]
            for k in frames[g, :nread]:
                t = (k + 1) * ro.frame_time
                lam = e_rate * (t - t_prev)
                charge += lam if plan.noiseless else rng.poisson(lam)
                t_prev = t
                lin = charge / gain
                if det.nonlinear_on_total:
                    lin += bias
                np.minimum(lin, vertex, out=lin)
                val = np.minimum(lin - beta * lin * lin, sat)
                if not det.nonlinear_on_total:
                    val += bias
                if not plan.noiseless:
                    val += rn * rng.standard_normal((ny, nx), dtype=np.float32)
                acc += val
            grp = acc / nread + _drift(plan, i, g, y0, y1, amp, parity)
            if zeroframe:
                out[i - i0] = _digitise(grp)
                continue
            if miri:
                grp += reset[min(i, reset.shape[0] - 1), g]
                if g == 0:
                    grp += _MIRI_FIRST_FRAME
                if g == ro.ngroups - 1 and ro.ngroups > 1:
                    grp += _MIRI_LAST_FRAME
                if i > 0 and g < MIRI_RSCD_GROUPS:
                    grp += _MIRI_RSCD * np.exp(-g / 1.5)
            out[i - i0, g] = _digitise(grp)
    return out


def _drift(plan: ExposurePlan, i: int, g: int, y0: int, y1: int, amp: np.ndarray, parity: np.ndarray):
    """Reference-pixel drift (DN) of group g of integration i on rows [y0:y1] and the given columns."""
    if plan.amp_drift is None:
        return 0.0
    cols = plan.amp_drift[i, g][amp, parity]  # (nx,)
    rows = plan.row_drift[i, g, y0:y1]  # (ny,)
    return rows[:, None] + cols[None, :]


def _digitise(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 65535).astype(np.uint16)


def _chunks(plan: ExposurePlan) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    def split(n: int, step: int) -> tuple[int, ...]:
        step = n if step <= 0 else step
        return tuple(min(step, n - s) for s in range(0, n, step))

    return (
        split(plan.readout.nints, plan.int_chunk),
        split(plan.ysize, plan.tile),
        split(plan.xsize, plan.tile),
    )


def _block_array(plan: ExposurePlan, zeroframe: bool) -> da.Array:
    ci, cy, cx = _chunks(plan)
    ng = plan.readout.ngroups
    chunks = (ci, cy, cx) if zeroframe else (ci, (ng,), cy, cx)

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        (i0, i1) = loc[0]
        (y0, y1), (x0, x1) = loc[-2], loc[-1]
        return _render(plan, i0, i1, y0, y1, x0, x1, zeroframe=zeroframe)

    name = (
        f"simulate-{'zeroframe' if zeroframe else 'sci'}-{plan.detector.lower()}-{plan.seed}-{plan.exposure}"
    )
    from dask.base import tokenize

    token = tokenize(plan.seed, plan.exposure, plan.detector, plan.shape, plan.noiseless, len(plan.hits),
                     plan.xstart, plan.ystart, plan.filter, plan.date, plan.tile, plan.int_chunk)  # fmt: skip
    return da.map_blocks(
        block,
        dtype=np.uint16,
        chunks=chunks,
        name=f"{name}-{token}",
        meta=np.empty((0,) * len(chunks), np.uint16),
    )


def sci_array(plan: ExposurePlan) -> da.Array:
    """The raw SCI ramp (nints, ngroups, ysize, xsize) uint16 as a lazy Dask array, one task per tile."""
    return _block_array(plan, zeroframe=False)


def zeroframe_array(plan: ExposurePlan) -> da.Array:
    """ZEROFRAME (nints, ysize, xsize) uint16: the first frame of each integration (same noise draws)."""
    return _block_array(plan, zeroframe=True)


def refout_array(plan: ExposurePlan) -> np.ndarray:
    """MIRI REFOUT (nints, ngroups, ysize, xsize/4) uint16: the reference output, which sees the bias
    of the reference output, the mean amplifier drift and the row drift, plus read noise."""
    ni, ng = plan.readout.nints, plan.readout.ngroups
    nxr = plan.xsize // 4
    rng = np.random.default_rng([plan.seed, plan.exposure, 7777])
    out = np.full((ni, ng, plan.ysize, nxr), _REFOUT_BIAS)
    if plan.amp_drift is not None:
        out += plan.amp_drift.mean(axis=(2, 3))[:, :, None, None] + plan.row_drift[:, :, :, None]
    if not plan.noiseless:
        out += rng.normal(0.0, plan.det.read_noise, out.shape)
    return _digitise(out)


def saturated_truth(plan: ExposurePlan, integration: int = 0, truth: dict | None = None) -> np.ndarray:
    """Pixels that reach full well in ``integration`` without noise or cosmic rays: a structured array
    (y, x, first_group) where first_group is the first group whose every frame is at full well (its
    raw value then exceeds the SATURATION threshold by ~3 % of full well). ``truth``: the
    :func:`truth_rate` of the whole exposure, if already computed."""
    ro = plan.readout
    truth = truth_rate(plan) if truth is None else truth
    lc = 1.0 if plan.lightcurve is None else plan.lightcurve[integration]
    fy, fx = plan.full_slices(0, plan.ysize, 0, plan.xsize)
    gain = phys.field(plan.detector, "gain", fy, fx).astype(np.float64)
    e_rate = (truth["rate"] + truth["dark"]) * gain + truth["scene_variable"] * truth["response"] * gain * lc
    t_last = (ro.frame_index()[-1, -1] + 1) * ro.frame_time
    cand = np.nonzero(e_rate * t_last / gain > 0.5 * phys.detector_spec(plan.detector).sat_signal)
    beta = phys.field(plan.detector, "beta", fy, fx)[cand]
    sat = phys.field(plan.detector, "sat_signal", fy, fx)[cand].astype(np.float64)
    offset = phys.field(plan.detector, "bias", fy, fx)[cand].astype(np.float64)
    if not plan.det.nonlinear_on_total:
        offset = np.zeros_like(offset)
    first_frames = ro.frame_index()[:, 0]
    t = (first_frames[:, None] + 1) * ro.frame_time  # (ngroups, 1)
    lin = np.minimum(e_rate[cand] * t / gain[cand] + offset, 0.5 / beta)
    full = lin - beta * lin * lin >= sat  # (ngroups, ncand)
    hit = full.any(axis=0)
    out = np.zeros(int(hit.sum()), dtype=[("y", "i4"), ("x", "i4"), ("first_group", "i4")])
    out["y"], out["x"] = cand[0][hit], cand[1][hit]
    out["first_group"] = np.argmax(full[:, hit], axis=0)
    return out
