"""Stage-2/3 reference files: flat, photom, area, distortion, filteroffset, drizpars, apcorr,
abvegaoffset and tsophot, consistent with the simulator's flat field, photometric scale, PSF and
geometry (the same functions and constants are used to make the truth images).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from jwst_dask.dq import FLAGS
from jwst_dask.simulate import detector as phys
from jwst_dask.simulate import references as R
from jwst_dask.simulate.scene import psf_sigma
from jwst_dask.simulate.wcs import APERTURES, distortion_model

__all__ = ["PHOTMJSR", "ABVEGA", "photmjsr", "pixel_area_sr", "pixel_area_map", "BUILDERS"]

#: MJy/sr per DN/s for (instrument, filter) with PUPIL CLEAR (NIRCam) / subarray FULL (MIRI)
PHOTMJSR: dict[tuple[str, str], float] = {
    ("NIRCAM", "F070W"): 0.62, ("NIRCAM", "F090W"): 0.48, ("NIRCAM", "F115W"): 0.37,
    ("NIRCAM", "F150W"): 0.245, ("NIRCAM", "F200W"): 0.215, ("NIRCAM", "F210M"): 0.55,
    ("MIRI", "F560W"): 0.62, ("MIRI", "F770W"): 0.28, ("MIRI", "F1000W"): 0.45,
}  # fmt: skip

#: AB - Vega magnitude offsets
ABVEGA: dict[tuple[str, str], float] = {
    ("NIRCAM", "F070W"): 0.26, ("NIRCAM", "F090W"): 0.50, ("NIRCAM", "F115W"): 0.78,
    ("NIRCAM", "F150W"): 1.21, ("NIRCAM", "F200W"): 1.68, ("NIRCAM", "F210M"): 1.81,
    ("MIRI", "F560W"): 3.56, ("MIRI", "F770W"): 4.34, ("MIRI", "F1000W"): 5.04,
}  # fmt: skip

_EE_FRACTIONS = np.round(np.arange(0.1, 0.95, 0.1), 2)


def photmjsr(instrument: str, filt: str) -> float:
    """PHOTMJSR of a filter (MJy/sr per DN/s); KeyError-free: unknown filters get 0.3."""
    return PHOTMJSR.get((instrument.upper(), filt.upper()), 0.3)


def pixel_area_sr(detector: str) -> tuple[float, float]:
    """Nominal pixel area (steradians, arcsec^2) from the aperture scales."""
    ap = APERTURES[detector.upper()]
    a2 = ap.x_scale * ap.y_scale
    return a2 * (np.pi / 180.0 / 3600.0) ** 2, a2


@cache
def pixel_area_map(detector: str) -> np.ndarray:
    """Full-frame pixel area relative to the nominal area: the Jacobian determinant of the distortion
    polynomial (the ideal->V2/V3 step is a rotation, area preserving), computed analytically."""
    ap = APERTURES[detector.upper()]
    ny, nx = phys.detector_spec(detector).shape
    dy = (np.arange(ny, dtype=np.float64) - (ap.y_ref - 1.0))[:, None]
    dx = (np.arange(nx, dtype=np.float64) - (ap.x_ref - 1.0))[None, :]

    def grads(coeffs):
        c = {(i - j, j): v for i, j, v in coeffs}  # power of dx, power of dy
        gx = c.get((1, 0), 0.0) + 2 * c.get((2, 0), 0.0) * dx + c.get((1, 1), 0.0) * dy
        gy = c.get((0, 1), 0.0) + 2 * c.get((0, 2), 0.0) * dy + c.get((1, 1), 0.0) * dx
        return gx, gy

    ax, ay = grads(ap.coeffs_x)
    bx, by = grads(ap.coeffs_y)
    out = (np.abs(ax * by - ay * bx) / pixel_area_sr(detector)[1]).astype(np.float32)
    out.flags.writeable = False
    return out


def _filters(sel) -> list[str]:
    return sorted({f for (inst, f) in PHOTMJSR if inst == sel.instrument})


def _flat(sel, useafter):
    h = R.header(sel, "flat", useafter, f"Pixel flat field for {sel.filter}")
    h["FILTER"] = sel.filter
    h["EXP_TYPE"] = sel.exp_type
    if sel.instrument == "NIRCAM":
        h["PUPIL"] = sel.pupil
    flat = phys.flat_field(sel.detector, sel.filter, R._useafter(useafter)[:10], *sel.slices)
    dq = np.zeros(flat.shape, dtype=np.uint32)
    dead = phys.field(sel.detector, "dead", *sel.slices)
    dq[dead] = FLAGS["NO_FLAT_FIELD"] | FLAGS["DO_NOT_USE"]
    err = np.full(flat.shape, 0.002, dtype=np.float32)
    return "fits", (h, [R.image(flat, "SCI"), R.image(err, "ERR"), R.image(dq, "DQ"), R.dq_def()])


def _photom(sel, useafter):
    h = R.header(sel, "photom", useafter, "Photometric conversion DN/s -> MJy/sr", imaging=False)
    h["EXP_TYPE"] = sel.exp_type
    sr, a2 = pixel_area_sr(sel.detector)
    h["PIXAR_SR"] = sr
    h["PIXAR_A2"] = a2
    filters = _filters(sel)
    vals = np.array([photmjsr(sel.instrument, f) for f in filters], dtype=np.float32)
    if sel.instrument == "NIRCAM":
        cols = {"filter": np.array(filters), "pupil": np.array(["CLEAR"] * len(filters)),
                "photmjsr": vals, "uncertainty": (0.01 * vals).astype(np.float32)}  # fmt: skip
    else:
        cols = {"filter": np.array(filters), "subarray": np.array(["FULL"] * len(filters)),
                "photmjsr": vals, "uncertainty": (0.01 * vals).astype(np.float32)}  # fmt: skip
    return "fits", (h, [R.table(cols, "PHOTOM")])


def _area(sel, useafter):
    h = R.header(sel, "area", useafter, "Pixel area map relative to the nominal pixel area")
    sr, a2 = pixel_area_sr(sel.detector)
    h["PIXAR_SR"] = sr
    h["PIXAR_A2"] = a2
    h["EXP_TYPE"] = sel.exp_type
    h["FILTER"] = sel.filter
    if sel.instrument == "NIRCAM":
        h["PUPIL"] = sel.pupil
    return "fits", (h, [R.image(R.cut(pixel_area_map(sel.detector), sel), "SCI")])


def _distortion(sel, useafter):
    meta = R.asdf_meta(sel, "distortion", useafter, "Distortion: science pixels -> V2/V3 (arcsec)",
                       "DistortionModel")  # fmt: skip
    meta["input_units"] = "pixel"
    meta["output_units"] = "arcsec"
    meta["exposure"]["p_exptype"] = (
        "NRC_IMAGE|NRC_TSIMAGE|NRC_FLAT|NRC_LED|NRC_WFSC|"
        if sel.instrument == "NIRCAM"
        else "MIR_IMAGE|MIR_TACQ|"
    )
    if sel.instrument == "NIRCAM":
        meta["instrument"]["pupil"] = sel.pupil
        meta["instrument"]["p_pupil"] = "CLEAR|F162M|F164N|GDHS0|GDHS60|WLM8|WLP8|"
    meta["subarray"] = {"name": "FULL"}
    return "asdf", {"meta": meta, "model": distortion_model(sel.detector)}


def _filteroffset(sel, useafter):
    meta = R.asdf_meta(sel, "filteroffset", useafter, "Filter offsets (none in the simulator)",
                       "FilteroffsetModel")  # fmt: skip
    meta["input_units"] = "pixel"
    filters = [
        {"filter": f, "pupil": "CLEAR", "row_offset": 0.0, "column_offset": 0.0}
        if sel.instrument == "NIRCAM"
        else {"name": f, "row_offset": 0.0, "column_offset": 0.0}
        for f in _filters(sel)
    ]
    return "asdf", {"meta": meta, "filters": filters}


def _drizpars(sel, useafter):
    h = R.header(sel, "drizpars", useafter, "Drizzle parameters by number of images", imaging=False)
    cols = {
        "numimages": np.array([1, 2, 4], dtype=np.int32),
        "filter": np.array(["ANY", "ANY", "ANY"]),
        "pixfrac": np.array([1.0, 1.0, 1.0], dtype=np.float32),
        "kernel": np.array(["square", "square", "square"]),
        "fillval": np.array(["INDEF", "INDEF", "INDEF"]),
        "wht_type": np.array(["ivm", "ivm", "ivm"]),
        "stepsize": np.array([10, 10, 10], dtype=np.int32),
    }
    return "fits", (h, [R.table(cols, "DRIZPARS")])


@cache
def _ee_curve(detector: str) -> tuple[np.ndarray, np.ndarray]:
    """Enclosed energy of the simulator's pixelated PSF against aperture radius, as aperture photometry
    measures it (pixel overlap by 8x8 sub-sampling), averaged over 4x4 sub-pixel source positions."""
    from jwst_dask.simulate.scene import SOURCE_DTYPE, render_rate

    radii = np.linspace(0.2, 12.0, 119)
    half = 16
    yy, xx = np.mgrid[0 : 2 * half + 1, 0 : 2 * half + 1].astype(np.float64)
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    ee = np.zeros_like(radii)
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    src = np.zeros(1, dtype=SOURCE_DTYPE)
    src["kind"], src["flux"] = "star", 1.0
    for cy in offsets:
        for cx in offsets:
            src["x"], src["y"] = half + cx, half + cy
            img = render_rate(src, 0, 2 * half + 1, 0, 2 * half + 1, psf=psf_sigma(detector))
            for oy in sub:
                for ox in sub:
                    d = np.hypot(xx + ox - (half + cx), yy + oy - (half + cy)).ravel()
                    order = np.argsort(d)
                    cum = np.concatenate([[0.0], np.cumsum(img.ravel()[order]) / 64.0])
                    ee += cum[np.searchsorted(d[order], radii, side="right")]
    return radii, ee / (len(offsets) ** 2)


def ee_radius(detector: str, ee) -> np.ndarray:
    """Aperture radius (pixels) enclosing the fraction ``ee`` of a point source's flux."""
    radii, curve = _ee_curve(detector)
    return np.interp(np.asarray(ee, dtype=np.float64), curve, radii)


def _apcorr(sel, useafter):
    h = R.header(sel, "apcorr", useafter, "Aperture corrections for the Gaussian PSF", imaging=False)
    h["EXP_TYPE"] = sel.exp_type
    filters = _filters(sel)
    n_ee = len(_EE_FRACTIONS)
    radius = ee_radius(sel.detector, _EE_FRACTIONS).astype(np.float32)
    skyin = float(np.ceil(ee_radius(sel.detector, 0.999) + 2.0))
    cols = {"filter": np.repeat(filters, n_ee)}
    cols["pupil" if sel.instrument == "NIRCAM" else "subarray"] = np.array(
        ["CLEAR" if sel.instrument == "NIRCAM" else "FULL"] * (n_ee * len(filters))
    )
    cols.update(
        eefraction=np.tile(_EE_FRACTIONS, len(filters)).astype(np.float32),
        radius=np.tile(radius, len(filters)),
        apcorr=np.tile((1.0 / _EE_FRACTIONS).astype(np.float32), len(filters)),
        skyin=np.full(n_ee * len(filters), skyin, dtype=np.float32),
        skyout=np.full(n_ee * len(filters), skyin + 6.0, dtype=np.float32),
    )
    return "fits", (h, [R.table(cols, "APCORR")])


def _abvegaoffset(sel, useafter):
    from astropy.table import Table

    meta = R.asdf_meta(sel, "abvegaoffset", useafter, "AB to Vega magnitude offsets", "ABVegaOffsetModel")
    filters = sorted({f for (inst, f) in ABVEGA if inst == sel.instrument})
    vals = [ABVEGA[(sel.instrument, f)] for f in filters]
    if sel.instrument == "NIRCAM":
        tab = Table({"filter": filters, "pupil": ["CLEAR"] * len(filters), "abvega_offset": vals})
    else:
        tab = Table({"filter": filters, "abvega_offset": vals})
    return "asdf", {"meta": meta, "abvega_offset": tab}


def _tsophot(sel, useafter):
    meta = R.asdf_meta(sel, "tsophot", useafter, "TSO aperture photometry radii (pixels)", "TsoPhotModel")
    meta["exposure"]["type"] = "NRC_TSIMAGE" if sel.instrument == "NIRCAM" else "MIR_IMAGE"
    meta["visit"] = {"tsovisit": True}
    r = float(np.ceil(ee_radius(sel.detector, 0.97)))
    radii = [
        {"pupil": "CLEAR", "radius": r, "radius_inner": r + 2.0, "radius_outer": r + 6.0},
        {"pupil": "WLP8", "radius": 50.0, "radius_inner": 60.0, "radius_outer": 70.0},
    ]
    return "asdf", {"meta": meta, "radii": radii}


BUILDERS = {
    "flat": _flat,
    "photom": _photom,
    "area": _area,
    "distortion": _distortion,
    "filteroffset": _filteroffset,
    "drizpars": _drizpars,
    "apcorr": _apcorr,
    "abvegaoffset": _abvegaoffset,
    "tsophot": _tsophot,
}
