"""Detector physics: deterministic per-pixel properties shared by the raw simulation and the references.

Every property of a detector (bias, gain, read noise, dark current, non-linearity, saturation, flat
response, bad pixels) is a full-frame array drawn from a random generator keyed only on the detector
name and the property name, so the simulator and the reference-file builder see the same detector
without talking to each other: a noiseless simulation inverts exactly through the reference files.

Signal chain of one pixel (NIRCam), for the frame read ``t`` seconds after the reset::

    L   = (photo_e + dark_e) / gain                 linear signal in DN (photo_e ~ Poisson when noisy)
    S   = L - beta * L**2, at most sat_signal       non-linear response, clipped at full well
    raw = bias + S + drift[int, group] + read noise, averaged over a group's frames, rounded to uint16

MIRI's non-linearity acts on the total value including the bias (as MIRI's LINEARITY coefficients
assume): ``V = T - beta * T**2`` with ``T = bias + L``. The inverse of both is the series
``L = S * sum_k C_k (beta S)**k`` (C_k the Catalan numbers), which the LINEARITY reference holds
(:func:`linearity_coefficients`); six terms keep the error below 1e-5 up to 90 % of saturation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ParameterError

__all__ = [
    "DetectorSpec",
    "DETECTORS",
    "detector_spec",
    "stable_seed",
    "field",
    "reference_pixel_mask",
    "amplifier_index",
    "nonlinear",
    "linearity_coefficients",
    "linearize",
    "saturation_threshold",
    "bad_pixel_dq",
    "flat_field",
    "reset_anomaly",
    "reset_decay",
    "NCOEFFS",
]

#: number of LINEARITY coefficients (polynomial order 5)
NCOEFFS = 6
_CATALAN = np.array([1.0, 1.0, 2.0, 5.0, 14.0, 42.0, 132.0, 429.0])


@dataclass(frozen=True)
class DetectorSpec:
    """Static description of one detector."""

    instrument: str
    name: str
    shape: tuple[int, int]  # (ny, nx) of the full frame
    refpix: tuple[int, int, int, int]  # reference rows/columns: bottom, top, left, right
    namps: int
    interleaved_amps: bool  # MIRI: output = column % 4; NIRCam: 512-column blocks
    bias: float  # DN
    gain: float  # e-/DN
    read_noise: float  # single-frame sigma, DN
    dark_rate: float  # e-/s
    sat_signal: float  # DN above bias (NIRCam) / total DN (MIRI) where the pixel saturates
    beta: float  # non-linearity coefficient, 1/DN
    nonlinear_on_total: bool  # MIRI convention: non-linearity of the total value
    drift: tuple[float, float, float] = (4.0, 1.5, 0.35)  # DN rms: amplifier, column parity, row-walk step


DETECTORS: dict[str, DetectorSpec] = {
    "NRCA1": DetectorSpec(
        "NIRCAM", "NRCA1", (2048, 2048), (4, 4, 4, 4), 4, False,
        bias=12000.0, gain=2.05, read_noise=8.0, dark_rate=0.02, sat_signal=46000.0, beta=1.5e-6,
        nonlinear_on_total=False,
    ),
    "MIRIMAGE": DetectorSpec(
        "MIRI", "MIRIMAGE", (1024, 1032), (0, 0, 4, 4), 4, True,
        bias=11000.0, gain=5.5, read_noise=6.0, dark_rate=0.3, sat_signal=58000.0, beta=1.0e-6,
        nonlinear_on_total=True, drift=(0.5, 0.2, 0.05),
    ),
}  # fmt: skip


def detector_spec(name: str) -> DetectorSpec:
    """The :class:`DetectorSpec` of a detector name; ParameterError for an unsupported one."""
    try:
        return DETECTORS[name.upper()]
    except KeyError:
        raise ParameterError(f"detector {name!r} not simulated; supported: {', '.join(DETECTORS)}") from None


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, identical across processes and runs (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def reference_pixel_mask(det: DetectorSpec) -> np.ndarray:
    """Boolean full-frame mask of the reference pixels."""
    ny, nx = det.shape
    b, t, left, r = det.refpix
    m = np.zeros((ny, nx), dtype=bool)
    m[:b, :] = True
    m[ny - t :, :] = True
    m[:, :left] = True
    m[:, nx - r :] = True
    return m


def amplifier_index(det: DetectorSpec, x: np.ndarray) -> np.ndarray:
    """Amplifier (0-based) reading each full-frame column ``x``."""
    x = np.asarray(x)
    if det.interleaved_amps:
        return x % det.namps
    return np.minimum(x // (det.shape[1] // det.namps), det.namps - 1)


#: rows per independently generated band of detector properties
BAND = 128


@cache
def _columns(name: str) -> dict[str, np.ndarray]:
    """Per-column properties (the superbias column structure)."""
    det = detector_spec(name)
    r = np.random.default_rng(stable_seed("detector", name, "bias-columns"))
    return {"bias_cols": r.normal(0.0, 18.0, det.shape[1]).astype(np.float32)}


@cache
def _band(name: str, band: int) -> dict[str, np.ndarray]:
    """All per-pixel properties of one detector on the rows of one band (float32 unless noted).

    Each band draws from its own generators (keyed on detector, property and band), so any rows
    are generated without the rest of the detector and always get the same values.
    """
    det = detector_spec(name)
    ny_full, nx = det.shape
    y0, y1 = band * BAND, min((band + 1) * BAND, ny_full)
    ny = y1 - y0
    ref = reference_pixel_mask(det)[y0:y1]

    def rng(prop: str) -> np.random.Generator:
        return np.random.default_rng(stable_seed("detector", name, prop, band))

    u = (np.arange(nx, dtype=np.float32) / nx - 0.5)[None, :]
    v = (np.arange(y0, y1, dtype=np.float32) / ny_full - 0.5)[:, None]
    amp = amplifier_index(det, np.arange(nx))
    out: dict[str, np.ndarray] = {}

    # superbias: level + per-amplifier offset + column structure + gradient + pixel scatter
    amp_off = np.array([0.0, 140.0, -95.0, 60.0], dtype=np.float32)[: det.namps]
    scatter = rng("bias").standard_normal((ny, nx), dtype=np.float32)
    out["bias"] = (det.bias + amp_off[amp][None, :] + _columns(name)["bias_cols"][None, :] + 80.0 * v
                   + 12.0 * scatter).astype(np.float32)  # fmt: skip

    out["gain"] = det.gain * (1.0 + 0.02 * rng("gain").standard_normal((ny, nx), dtype=np.float32))
    out["read_noise"] = det.read_noise * (
        1.0 + 0.08 * rng("readnoise").standard_normal((ny, nx), dtype=np.float32)
    )
    out["beta"] = det.beta * (1.0 + 0.05 * rng("beta").standard_normal((ny, nx)))  # float64
    out["sat_signal"] = det.sat_signal * (
        1.0 + 0.015 * rng("saturation").standard_normal((ny, nx), dtype=np.float32)
    )

    # pixel classes: hot, dead, low QE (never on reference pixels)
    draw = rng("badpix").random((ny, nx), dtype=np.float32)
    hot = (draw < 5e-4) & ~ref
    dead = (draw >= 5e-4) & (draw < 7e-4) & ~ref
    lowqe = (draw >= 7e-4) & (draw < 1.2e-3) & ~ref
    out["hot"], out["dead"], out["lowqe"] = hot, dead, lowqe

    r = rng("dark")
    dark = det.dark_rate * (1.0 + 0.3 * r.random((ny, nx), dtype=np.float32))
    dark[hot] = r.uniform(2.0, 50.0, int(hot.sum()))
    dark[ref] = 0.0
    out["dark_e"] = dark.astype(np.float32)  # e-/s

    r = rng("flat")
    qe = 1.0 + 0.03 * np.cos(2.1 * np.pi * u) * np.sin(1.7 * np.pi * v)
    qe = qe + 0.01 * r.standard_normal((ny, nx), dtype=np.float32)
    qe[lowqe] = r.uniform(0.3, 0.6, int(lowqe.sum()))
    qe[dead] = 0.0
    qe[ref] = 0.0
    out["qe"] = qe.astype(np.float32)

    if det.instrument == "MIRI":
        out["reset_amp"] = (40.0 + 10.0 * rng("reset").random((ny, nx), dtype=np.float32)).astype(np.float32)
    else:
        out["reset_amp"] = np.zeros((ny, nx), dtype=np.float32)
    for arr in out.values():
        arr.flags.writeable = False
    return out


#: the per-pixel properties :func:`field` knows
PROPERTIES = ("bias", "gain", "read_noise", "beta", "sat_signal", "hot", "dead", "lowqe", "dark_e", "qe",
              "reset_amp")  # fmt: skip


def field(name: str, prop: str, ys: slice = slice(None), xs: slice = slice(None)) -> np.ndarray:
    """Property ``prop`` of detector ``name`` over full-frame rows ``ys`` and columns ``xs``.

    Properties: bias (DN), gain (e-/DN), read_noise (single-frame DN), beta (1/DN), sat_signal (DN),
    dark_e (e-/s), qe (relative response, 0 for dead and reference pixels), hot/dead/lowqe (bool),
    reset_amp (MIRI reset anomaly amplitude, DN). Only the row bands covering ``ys`` are generated.
    """
    name = name.upper()
    if prop not in PROPERTIES:
        raise ParameterError(f"unknown detector property {prop!r}; known: {', '.join(PROPERTIES)}")
    ny = detector_spec(name).shape[0]
    start, stop, step = ys.indices(ny)
    if step != 1:
        raise ParameterError("detector properties are read on contiguous rows")
    if stop <= start:
        return _band(name, 0)[prop][0:0, xs]
    b0, b1 = start // BAND, (stop - 1) // BAND
    parts = [_band(name, b)[prop] for b in range(b0, b1 + 1)]
    rows = slice(start - b0 * BAND, stop - b0 * BAND)
    if len(parts) == 1:
        return parts[0][rows, xs]
    return np.concatenate([part[:, xs] for part in parts], axis=0)[rows]


def nonlinear(linear: np.ndarray, beta: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """The detector's response: ``linear - beta * linear**2``, capped at ``sat`` (full well).

    The parabola is only followed up to its vertex ``1 / (2 beta)`` (far beyond full well), so the
    response stays monotonic for any signal.
    """
    lin = np.minimum(linear, 0.5 / beta)
    return np.minimum(lin - beta * lin * lin, sat)


def linearity_coefficients(beta: np.ndarray, ncoeffs: int = NCOEFFS) -> np.ndarray:
    """Coefficients (ncoeffs, ny, nx) of the inverse response ``L = sum_k c_k S**k``.

    The exact inverse of ``S = L - beta L**2`` is ``L = S * sum_n C_n (beta S)**n`` (Catalan numbers
    ``C_n``): ``c_0 = 0`` and ``c_k = C_{k-1} beta**(k-1)``.
    """
    beta = np.asarray(beta, dtype=np.float64)
    coeffs = np.zeros((ncoeffs, *beta.shape), dtype=np.float64)
    for k in range(1, ncoeffs):
        coeffs[k] = _CATALAN[k - 1] * beta ** (k - 1)
    return coeffs


def linearize(signal: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Evaluate ``sum_k coeffs[k] * signal**k`` (Horner), as the linearity step does."""
    out = np.zeros_like(signal, dtype=np.float64) + coeffs[-1]
    for c in coeffs[-2::-1]:
        out = out * signal + c
    return out


def saturation_threshold(name: str, ys: slice = slice(None), xs: slice = slice(None)) -> np.ndarray:
    """SATURATION reference threshold (raw DN): 97 % of the full-well signal above the bias (NIRCam),
    97 % of the full-well total (MIRI); always below 65535."""
    det = detector_spec(name)
    sat = field(name, "sat_signal", ys, xs).astype(np.float64)
    thr = 0.97 * sat if det.nonlinear_on_total else field(name, "bias", ys, xs) + 0.97 * sat
    return np.minimum(thr, 65000.0).astype(np.float32)


def bad_pixel_dq(name: str, ys: slice = slice(None), xs: slice = slice(None)) -> np.ndarray:
    """MASK reference DQ: DEAD/HOT/LOW_QE (+ DO_NOT_USE for dead and hot), REFERENCE_PIXEL on reference
    pixels (without DO_NOT_USE, so reference-pixel correction can use them)."""
    det = detector_spec(name)
    ref = reference_pixel_mask(det)[ys, xs]
    dq = np.zeros(ref.shape, dtype=np.uint32)
    dq[field(name, "dead", ys, xs)] |= FLAGS["DEAD"] | FLAGS["DO_NOT_USE"]
    dq[field(name, "hot", ys, xs)] |= FLAGS["HOT"] | FLAGS["DO_NOT_USE"]
    dq[field(name, "lowqe", ys, xs)] |= FLAGS["LOW_QE"]
    dq[ref] |= FLAGS["REFERENCE_PIXEL"]
    return dq


#: Flats before this date (the older USEAFTER epoch) carry a slightly different low-order pattern.
FLAT_EPOCH_CHANGE = "2024-06-01"


def flat_field(
    name: str, filt: str, date: str = "2024-12-31", ys: slice = slice(None), xs: slice = slice(None)
) -> np.ndarray:
    """Relative pixel response through filter ``filt`` on observation date ``date`` (YYYY-MM-DD...).

    Pixel QE times a smooth filter-dependent illumination term; the response changed slightly on
    :data:`FLAT_EPOCH_CHANGE`, so the flat of each USEAFTER epoch is the truth for its dates.
    Reference and dead pixels are 1 here (they are flagged in the DQ, not divided by zero).
    ``ys``, ``xs``: full-frame rows and columns to compute.
    """
    return _flat(name.upper(), filt.upper(), str(date)[:10] < FLAT_EPOCH_CHANGE, ys, xs)


def _flat(name: str, filt: str, early: bool, ys: slice, xs: slice) -> np.ndarray:
    det = detector_spec(name)
    ny, nx = det.shape
    qe = field(name, "qe", ys, xs).astype(np.float64)
    r = np.random.default_rng(stable_seed("flat-filter", name, filt))
    a, b = r.uniform(-0.02, 0.02, 2)
    u = (np.arange(nx)[xs] / nx - 0.5)[None, :]
    v = (np.arange(ny)[ys] / ny - 0.5)[:, None]
    illum = 1.0 + a * u + b * v
    if early:
        illum = illum * (1.0 + 0.008 * (1.5 - v))  # 0.8 % (top) to 1.6 % (bottom) different
    flat = qe * illum
    flat[field(name, "dead", ys, xs) | reference_pixel_mask(det)[ys, xs]] = 1.0
    return flat.astype(np.float32)


#: groups covered by the MIRI reset anomaly (and by the RESET reference)
RESET_GROUPS = 10


def reset_decay(nints: int, ngroups: int) -> np.ndarray:
    """MIRI reset anomaly shape (min(nints, 2), ngroups): decays with group, the first integration
    stronger than the later ones, zero from group :data:`RESET_GROUPS` on (the RESET reference's
    length, beyond which the reset step corrects nothing)."""
    g = np.arange(ngroups, dtype=np.float32)
    decay = np.exp(-g / 2.5)
    decay[g >= RESET_GROUPS] = 0.0
    scale = np.array([1.0, 0.6], dtype=np.float32)[: max(1, min(nints, 2))]
    return (scale[:, None] * decay[None, :]).astype(np.float32)


def reset_anomaly(name: str, nints: int, ngroups: int, ys: slice = slice(None), xs: slice = slice(None)):
    """MIRI reset anomaly (DN) added to group g of integration i, shape (min(nints, 2), ngroups, ny, nx)
    over rows ``ys`` and columns ``xs``; integrations beyond the second use the last plane."""
    amp = field(name, "reset_amp", ys, xs)
    return reset_decay(nints, ngroups)[:, :, None, None] * amp[None, None]
