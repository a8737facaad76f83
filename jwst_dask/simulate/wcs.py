"""Geometry: the aperture (SIAF values), the detector distortion and the telescope pointing.

The chain is the one the official pipeline's assign_wcs builds for imaging:
science pixel (0-based) -> distortion polynomial -> ideal frame (arcsec) -> V2/V3 (arcsec) -> sky,
the last via the pointing rotation ``(v2_ref, -v3_ref, roll_ref, dec_ref, -ra_ref)`` about
``zyxyz``. The aperture numbers (V2Ref, V3Ref, V3IdlYAngle, VIdlParity, scales and the degree-2
science-to-ideal coefficients) are those of the JWST SIAF for NRCA1_FULL and MIRIM_FULL, copied here
so the simulator does not need to load the SIAF at run time.

The same :func:`distortion_model` feeds the simulator (placing sources) and the DISTORTION
reference file, so a WCS built from the reference maps the truth positions back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from astropy.modeling import models

__all__ = [
    "Aperture",
    "APERTURES",
    "Pointing",
    "distortion_model",
    "v23_to_sky",
    "sky_to_v23",
    "pixel_to_sky",
    "sky_to_pixel",
    "wcsinfo_meta",
]


@dataclass(frozen=True)
class Aperture:
    """A SIAF aperture: reference point, orientation, scale and the science->ideal polynomial."""

    name: str
    v2_ref: float  # arcsec
    v3_ref: float  # arcsec
    v3_idl_yang: float  # deg
    vparity: int
    x_ref: float  # 1-based science-frame reference pixel
    y_ref: float
    x_scale: float  # arcsec/pixel
    y_scale: float
    # science->ideal coefficients {(i, j): value}: x_idl = sum c_ij dx**(i-j) dy**j
    coeffs_x: tuple[tuple[int, int, float], ...]
    coeffs_y: tuple[tuple[int, int, float], ...]


APERTURES: dict[str, Aperture] = {
    "NRCA1": Aperture(
        "NRCA1_FULL", 120.576793, -527.501431, -0.55188201, -1, 1024.5, 1024.5, 0.03113269, 0.03131901,
        ((1, 0, 0.031132678529), (1, 1, 8.1828122897e-07), (2, 0, 2.4954906343e-09),
         (2, 1, -2.1083860827e-07), (2, 2, -3.2516448863e-08)),
        ((1, 0, 2.7514830369e-05), (1, 1, 0.031319011322), (2, 0, 6.844789399e-08),
         (2, 1, 3.659439595e-08), (2, 2, -1.4197410831e-07)),
    ),
    "MIRIMAGE": Aperture(
        "MIRIM_FULL", -453.34829, -373.667949, 4.83544897, -1, 693.5, 512.5, 0.11049812, 0.11133593,
        ((1, 0, 0.11049812), (1, 1, 0.0), (2, 0, 1.5e-08), (2, 1, -4.0e-08), (2, 2, 1.0e-08)),
        ((1, 0, 0.0), (1, 1, 0.11133593), (2, 0, 2.0e-08), (2, 1, 1.0e-08), (2, 2, -3.0e-08)),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Pointing:
    """Where the aperture reference point (V2_REF, V3_REF) looks, and the roll there (degrees)."""

    ra_ref: float
    dec_ref: float
    roll_ref: float

    def as_dict(self) -> dict:
        """Plain dictionary."""
        return {"ra_ref": self.ra_ref, "dec_ref": self.dec_ref, "roll_ref": self.roll_ref}


def _poly(coeffs: tuple[tuple[int, int, float], ...], name: str) -> models.Polynomial2D:
    """astropy Polynomial2D (c_{i}_{j} multiplies x**i y**j) from SIAF-style (i, j, value)."""
    params = {f"c{i - j}_{j}": value for i, j, value in coeffs}
    return models.Polynomial2D(2, name=name, **params)


@cache
def distortion_model(det: str, *, with_inverse: bool = True) -> models.Model:
    """Science pixel (0-based x, y) -> V2, V3 (arcsec), with a fitted polynomial inverse.

    ``x_idl, y_idl = P(x - (x_ref - 1), y - (y_ref - 1))`` then rotation by V3IdlYAngle with the
    parity and the shift to (V2Ref, V3Ref), as in the SIAF's ideal->V2V3 relation.
    """
    ap = APERTURES[det.upper()]
    th = np.deg2rad(ap.v3_idl_yang)
    p = ap.vparity
    matrix = np.array([[p * np.cos(th), np.sin(th)], [-p * np.sin(th), np.cos(th)]])
    shift = models.Shift(-(ap.x_ref - 1.0), name="x_ref") & models.Shift(-(ap.y_ref - 1.0), name="y_ref")
    poly = models.Mapping((0, 1, 0, 1)) | (_poly(ap.coeffs_x, "sci2idl_x") & _poly(ap.coeffs_y, "sci2idl_y"))
    idl2v23 = models.AffineTransformation2D(matrix=matrix, translation=[ap.v2_ref, ap.v3_ref], name="idl2v23")
    forward = shift | poly | idl2v23
    forward.name = f"{ap.name}_distortion"
    if with_inverse:
        forward.inverse = _fit_inverse(forward, det)
    return forward


def _fit_inverse(forward: models.Model, det: str) -> models.Model:
    """Polynomial V2/V3 -> pixel fitted on a grid over the full frame (sub-milli-pixel residuals)."""
    from astropy.modeling import fitting

    from jwst_dask.simulate.detector import detector_spec

    ny, nx = detector_spec(det).shape
    ap = APERTURES[det.upper()]
    yy, xx = np.mgrid[-50 : ny + 50 : 41j, -50 : nx + 50 : 41j]
    v2, v3 = forward(xx, yy)
    fitter = fitting.LinearLSQFitter()  # the model is linear in its parameters: exact least squares
    du, dv = v2 - ap.v2_ref, v3 - ap.v3_ref
    px = fitter(models.Polynomial2D(4), du, dv, xx)
    py = fitter(models.Polynomial2D(4), du, dv, yy)
    inv = (models.Shift(-ap.v2_ref) & models.Shift(-ap.v3_ref)) | models.Mapping((0, 1, 0, 1)) | (px & py)
    inv.name = "v23_to_pixel"
    return inv


def _rotation(p: Pointing, det: str):
    ap = APERTURES[det.upper()]
    angles = [ap.v2_ref / 3600.0, -ap.v3_ref / 3600.0, p.roll_ref, p.dec_ref, -p.ra_ref]
    return models.RotationSequence3D(angles, axes_order="zyxyz")


def _sph2cart(lon, lat):
    lon, lat = np.deg2rad(lon), np.deg2rad(lat)
    return np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)


def _cart2sph(x, y, z):
    return np.rad2deg(np.arctan2(y, x)), np.rad2deg(np.arctan2(z, np.hypot(x, y)))


def v23_to_sky(v2, v3, pointing: Pointing, det: str):
    """V2/V3 (arcsec) -> RA/Dec (deg) for a pointing, as the official pipeline's v23tosky."""
    rot = _rotation(pointing, det)
    ra, dec = _cart2sph(*rot(*_sph2cart(np.asarray(v2) / 3600.0, np.asarray(v3) / 3600.0)))
    return np.mod(ra, 360.0), dec


def sky_to_v23(ra, dec, pointing: Pointing, det: str):
    """RA/Dec (deg) -> V2/V3 (arcsec)."""
    rot = _rotation(pointing, det).inverse
    v2, v3 = _cart2sph(*rot(*_sph2cart(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))))
    return (np.mod(v2 + 180.0, 360.0) - 180.0) * 3600.0, v3 * 3600.0


def pixel_to_sky(x, y, pointing: Pointing, det: str, model: models.Model | None = None):
    """Full-frame science pixel (0-based) -> RA/Dec (deg)."""
    model = model or distortion_model(det)
    v2, v3 = model(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return v23_to_sky(v2, v3, pointing, det)


def sky_to_pixel(ra, dec, pointing: Pointing, det: str, model: models.Model | None = None):
    """RA/Dec (deg) -> full-frame science pixel (0-based): the fitted inverse refined by Newton steps
    on the forward distortion, so positions are exact to ~1e-8 pixel."""
    model = model or distortion_model(det)
    v2, v3 = sky_to_v23(ra, dec, pointing, det)
    x, y = model.inverse(v2, v3)
    ap = APERTURES[det.upper()]
    eps = 1e-3
    for _ in range(3):
        fx, fy = model(x, y)
        ax, ay = model(x + eps, y)
        bx, by = model(x, y + eps)
        j11, j21 = (ax - fx) / eps, (ay - fy) / eps
        j12, j22 = (bx - fx) / eps, (by - fy) / eps
        rx, ry = v2 - fx, v3 - fy
        det_j = j11 * j22 - j12 * j21
        x = x + (j22 * rx - j12 * ry) / det_j
        y = y + (-j21 * rx + j11 * ry) / det_j
    del ap
    return np.asarray(x), np.asarray(y)


def _gnomonic(ra, dec, ra0: float, dec0: float):
    """Tangent-plane (RA---TAN) intermediate coordinates in degrees about (ra0, dec0)."""
    ra, dec = np.deg2rad(ra), np.deg2rad(dec)
    a0, d0 = np.deg2rad(ra0), np.deg2rad(dec0)
    cosc = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cosc
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cosc
    return np.rad2deg(xi), np.rad2deg(eta)


def wcsinfo_meta(det: str, pointing: Pointing, xstart: int = 1, ystart: int = 1) -> dict:
    """``meta.wcsinfo`` for a pointing: the SIAF reference point and the local tangent-plane
    approximation at it (crpix at the aperture reference pixel in subarray coordinates, cdelt from
    the scales, pc from the local derivatives of the full model)."""
    ap = APERTURES[det.upper()]
    model = distortion_model(det, with_inverse=False)
    x0, y0 = ap.x_ref - 1.0, ap.y_ref - 1.0
    ra0, dec0 = pixel_to_sky(x0, y0, pointing, det, model)
    cdelt1, cdelt2 = ap.x_scale / 3600.0, ap.y_scale / 3600.0
    ra_s, dec_s = pixel_to_sky(np.array([x0 + 1.0, x0]), np.array([y0, y0 + 1.0]), pointing, det, model)
    xi, eta = _gnomonic(ra_s, dec_s, float(ra0), float(dec0))
    cd = np.array([[xi[0], xi[1]], [eta[0], eta[1]]])
    pc = cd / np.array([[cdelt1, cdelt2], [cdelt1, cdelt2]])
    return {
        "wcsaxes": 2,
        "crpix1": ap.x_ref - (xstart - 1),
        "crpix2": ap.y_ref - (ystart - 1),
        "crval1": float(ra0),
        "crval2": float(dec0),
        "ctype1": "RA---TAN",
        "ctype2": "DEC--TAN",
        "cunit1": "deg",
        "cunit2": "deg",
        "cdelt1": cdelt1,
        "cdelt2": cdelt2,
        "pc1_1": float(pc[0][0]),
        "pc1_2": float(pc[0][1]),
        "pc2_1": float(pc[1][0]),
        "pc2_2": float(pc[1][1]),
        "v2_ref": ap.v2_ref,
        "v3_ref": ap.v3_ref,
        "vparity": ap.vparity,
        "v3yangle": ap.v3_idl_yang,
        "ra_ref": pointing.ra_ref,
        "dec_ref": pointing.dec_ref,
        "roll_ref": pointing.roll_ref,
        "siaf_xref_sci": ap.x_ref,
        "siaf_yref_sci": ap.y_ref,
        "velosys": 0.0,
    }
