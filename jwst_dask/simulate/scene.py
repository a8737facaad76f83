"""The sky: point sources and Sersic galaxies with known positions and fluxes, a flat background.

Sources are drawn once per observation on the sky (RA/Dec) and placed on each exposure's pixels
through its true pointing and the detector distortion. Count rates are in DN/s as the flat-fielded
rate product would show them (``rate / flat``); the detector sees them multiplied by the pixel
response. :func:`render_rate` evaluates the model on any rectangle of pixels and gives the same
value for a pixel whatever the rectangle, so tiles rendered apart agree with the full-frame truth.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, gamma, gammaincinv

__all__ = ["SOURCE_DTYPE", "make_sources", "render_rate", "psf_sigma"]

#: one row per source; x, y are full-frame science pixels (0-based) for one exposure
SOURCE_DTYPE = np.dtype(
    [
        ("id", "i4"),
        ("kind", "U6"),  # "star" | "galaxy"
        ("ra", "f8"),
        ("dec", "f8"),
        ("x", "f8"),
        ("y", "f8"),
        ("flux", "f8"),  # total DN/s (flat-fielded)
        ("sersic_n", "f8"),
        ("r_eff", "f8"),  # pixels
        ("axis_ratio", "f8"),
        ("theta", "f8"),  # radians, from +x towards +y
        ("variable", "?"),  # scaled per integration by the light curve (TSO target)
    ]
)

_PSF_SIGMA = {"NRCA1": 0.95, "MIRIMAGE": 1.1}


def psf_sigma(detector: str) -> float:
    """Gaussian PSF sigma in pixels used for point sources (and to blur galaxies' cores)."""
    return _PSF_SIGMA.get(detector.upper(), 1.0)


def make_sources(
    rng: np.random.Generator,
    n_stars: int,
    n_galaxies: int,
    ra0: float,
    dec0: float,
    radius_arcsec: float,
    *,
    star_flux: tuple[float, float] = (30.0, 3.0e5),
    galaxy_flux: tuple[float, float] = (100.0, 8.0e3),
    r_eff: tuple[float, float] = (1.5, 6.0),
) -> np.ndarray:
    """Random stars and galaxies within a square of half-size ``radius_arcsec`` about (ra0, dec0).

    Fluxes are log-uniform; the brightest stars saturate. Pixel positions are filled in later
    per exposure.
    """
    n = n_stars + n_galaxies
    src = np.zeros(n, dtype=SOURCE_DTYPE)
    src["id"] = np.arange(1, n + 1)
    src["kind"][:n_stars] = "star"
    src["kind"][n_stars:] = "galaxy"
    dx = rng.uniform(-radius_arcsec, radius_arcsec, n) / 3600.0
    dy = rng.uniform(-radius_arcsec, radius_arcsec, n) / 3600.0
    src["dec"] = dec0 + dy
    src["ra"] = ra0 + dx / np.cos(np.deg2rad(dec0))
    lo, hi = np.log10(star_flux)
    src["flux"][:n_stars] = 10 ** rng.uniform(lo, hi, n_stars)
    lo, hi = np.log10(galaxy_flux)
    src["flux"][n_stars:] = 10 ** rng.uniform(lo, hi, n_galaxies)
    src["sersic_n"][n_stars:] = rng.uniform(0.6, 3.5, n_galaxies)
    src["r_eff"][n_stars:] = rng.uniform(*r_eff, n_galaxies)
    src["axis_ratio"][:n_stars] = 1.0
    src["axis_ratio"][n_stars:] = rng.uniform(0.4, 1.0, n_galaxies)
    src["theta"][n_stars:] = rng.uniform(0.0, np.pi, n_galaxies)
    return src


def _gauss_pixel_integral(x0: np.ndarray, y0: np.ndarray, xc: float, yc: float, s: float) -> np.ndarray:
    """Fraction of a unit 2-D Gaussian (centre xc, yc; sigma s) falling in each pixel (centres x0, y0)."""
    k = 1.0 / (np.sqrt(2.0) * s)
    fx = 0.5 * (erf((x0 + 0.5 - xc) * k) - erf((x0 - 0.5 - xc) * k))
    fy = 0.5 * (erf((y0 + 0.5 - yc) * k) - erf((y0 - 0.5 - yc) * k))
    return fy[:, None] * fx[None, :]


def _sersic_pixels(xx: np.ndarray, yy: np.ndarray, row: np.void, psf: float) -> np.ndarray:
    """Sersic surface brightness integrated over pixels by 4x4 sub-sampling, softened by the PSF
    width in quadrature; normalised analytically to the total flux."""
    n, re, q, th = float(row["sersic_n"]), float(row["r_eff"]), float(row["axis_ratio"]), float(row["theta"])
    b = gammaincinv(2.0 * n, 0.5)
    sub = (np.arange(4) + 0.5) / 4.0 - 0.5
    c, s = np.cos(th), np.sin(th)
    acc = np.zeros(xx.shape, dtype=np.float64)
    soft2 = psf * psf
    for oy in sub:
        for ox in sub:
            dx = xx + ox - row["x"]
            dy = yy + oy - row["y"]
            u = dx * c + dy * s
            v = -dx * s + dy * c
            r = np.sqrt(u * u + (v / q) ** 2 + soft2)
            acc += np.exp(-b * ((r / re) ** (1.0 / n) - 1.0))
    acc /= 16.0
    total = 2.0 * np.pi * n * re * re * q * np.exp(b) * b ** (-2.0 * n) * gamma(2.0 * n)
    return acc * (row["flux"] / total)


def render_rate(
    sources: np.ndarray,
    y0: int,
    y1: int,
    x0: int,
    x1: int,
    *,
    psf: float,
    background: float = 0.0,
    variable: bool | None = None,
) -> np.ndarray:
    """Count rate (DN/s, flat-fielded) on full-frame pixels [y0:y1, x0:x1] (0-based).

    ``variable`` None renders every source; True / False only the variable / constant ones
    (the background goes with the constant part).
    """
    out = np.full((y1 - y0, x1 - x0), 0.0 if variable else background, dtype=np.float64)
    if len(sources) == 0:
        return out
    sel = sources if variable is None else sources[sources["variable"] == bool(variable)]
    ys = np.arange(y0, y1, dtype=np.float64)
    xs = np.arange(x0, x1, dtype=np.float64)
    for row in sel:
        if row["kind"] == "star":
            half = int(np.ceil(6.0 * psf)) + 1
        else:
            half = int(np.ceil(8.0 * row["r_eff"] + 3.0 * psf)) + 1
        cx, cy = int(np.floor(row["x"])), int(np.floor(row["y"]))
        sx0, sx1 = max(cx - half, x0), min(cx + half + 1, x1)
        sy0, sy1 = max(cy - half, y0), min(cy + half + 1, y1)
        if sx0 >= sx1 or sy0 >= sy1:
            continue
        if row["kind"] == "star":
            stamp = row["flux"] * _gauss_pixel_integral(xs[sx0 - x0 : sx1 - x0], ys[sy0 - y0 : sy1 - y0],
                                                        row["x"], row["y"], psf)  # fmt: skip
        else:
            yy, xx = np.meshgrid(ys[sy0 - y0 : sy1 - y0], xs[sx0 - x0 : sx1 - x0], indexing="ij")
            stamp = _sersic_pixels(xx, yy, row, psf)
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] += stamp
    return out
