"""From a preset to files: plan every exposure, build the lazy Datasets, write products, truth and
associations.

All randomness is drawn here, up front, from generators keyed on (preset, seed, exposure), except
the per-pixel noise which each tile draws from its own key: the same seed gives the same files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from astropy.time import Time, TimeDelta

from jwst_dask.errors import InputFileError
from jwst_dask.simulate import detector as phys
from jwst_dask.simulate.exposure import (
    ExposurePlan,
    make_cosmic_rays,
    make_drifts,
    refout_array,
    sci_array,
    zeroframe_array,
)
from jwst_dask.simulate.metadata import exposure_filename, level1b_meta
from jwst_dask.simulate.presets import Preset, configure, get_preset
from jwst_dask.simulate.readout import group_table, int_times_table, make_readout
from jwst_dask.simulate.references import SUBARRAYS
from jwst_dask.simulate.scene import make_sources, psf_sigma
from jwst_dask.simulate.wcs import APERTURES, Pointing, pixel_to_sky, sky_to_pixel

__all__ = ["ExposureInfo", "plan_observation", "exposure_dataset", "simulate", "transit_lightcurve"]

log = logging.getLogger(__name__)


@dataclass
class ExposureInfo:
    """One planned exposure: the render plan plus what the files and the truth need."""

    plan: ExposurePlan
    preset: Preset
    meta: dict
    filename: str
    commanded: Pointing
    true: Pointing
    dither: tuple[float, float]
    start: Time
    transit: dict | None


def transit_lightcurve(
    t: np.ndarray, t_mid: float, duration: float, depth: float, ingress: float
) -> np.ndarray:
    """Relative flux of a trapezoid transit at times ``t`` (same unit as the other times): 1 out of
    transit, ``1 - depth`` at full depth, linear over ``ingress`` at each side of ``duration``."""
    x = np.abs(np.asarray(t, dtype=np.float64) - t_mid)
    half = duration / 2.0
    shape = np.clip((half - x) / ingress, 0.0, 1.0)
    return 1.0 - depth * shape


def plan_observation(preset_name: str, seed: int = 0, **options) -> tuple[list[ExposureInfo], dict]:
    """Plan every exposure of a preset; returns (exposures, physics switches)."""
    base = get_preset(preset_name)
    p, sw = configure(base, options)
    det = phys.detector_spec(p.detector)
    _, _, sub_nx, sub_ny, _ = SUBARRAYS[p.detector][p.subarray]
    # the frame time is the preset subarray's, also for a cut-out (its darks match it)
    readout = make_readout(p.instrument, p.readpatt, p.ngroups, p.nints, sub_nx, sub_ny, p.noutputs)
    ap = APERTURES[p.detector]
    rng = np.random.default_rng(phys.stable_seed("observation", p.name, seed))

    ra_t, dec_t, tname = p.target
    base_pointing = Pointing(ra_t, dec_t, p.roll)
    # the readout region (full-frame, 0-based): a corner cut-out when size is given
    x0f, y0f = p.xstart - 1, p.ystart - 1
    cx, cy = x0f + (p.xsize - 1) / 2.0, y0f + (p.ysize - 1) / 2.0
    scale = min(1.0, max(p.xsize, p.ysize) / 1024.0)
    dithers = [(dx * scale, dy * scale) for dx, dy in p.dither_pixels]
    if p.nexp > len(dithers):
        extra = rng.uniform(-40.0, 40.0, (p.nexp - len(dithers), 2)) * scale
        dithers += [tuple(e) for e in extra]
    dithers = dithers[: p.nexp]
    ra_c, dec_c = (float(v) for v in pixel_to_sky(cx, cy, base_pointing, p.detector))

    # the sky: sources around the readout centre, covering the dithers
    full_area = base.xsize * base.ysize
    frac = p.xsize * p.ysize / full_area
    pix = 0.5 * (ap.x_scale + ap.y_scale)
    max_dither = max((np.hypot(*d) for d in dithers), default=0.0)
    radius = (max(p.xsize, p.ysize) / 2.0 + max_dither + 4.0) * pix
    if p.transit:
        sources = make_sources(rng, p.n_stars, 0, ra_c, dec_c, radius * 0.8, star_flux=(200.0, 2000.0))
        sources["ra"][0], sources["dec"][0] = ra_c, dec_c
        sources["flux"][0] = 3.0e5
        sources["variable"][0] = True
        tname_ra, tname_dec = ra_c, dec_c
    else:
        n_st = max(8, round(p.n_stars * frac))
        n_gal = max(4, round(p.n_galaxies * frac))
        sources = make_sources(rng, n_st, n_gal, ra_c, dec_c, radius)
        # one bright, saturating star near the centre of every field
        sources["ra"][0] = ra_c + 0.21 * p.xsize * pix / 3600.0 / np.cos(np.deg2rad(dec_c))
        sources["dec"][0] = dec_c - 0.17 * p.ysize * pix / 3600.0
        sources["flux"][0] = 4.0e5 if p.instrument == "NIRCAM" else 1.2e6
        tname_ra, tname_dec = ra_t, dec_t

    start0 = Time(p.date, format="isot", scale="utc")
    exposures: list[ExposureInfo] = []
    t_cursor = start0
    for j, (dxp, dyp) in enumerate(dithers, start=1):
        erng = np.random.default_rng(phys.stable_seed("exposure", p.name, seed, j))
        ra_j, dec_j = (float(v) for v in pixel_to_sky(ap.x_ref - 1 + dxp, ap.y_ref - 1 + dyp, base_pointing,
                                                      p.detector))  # fmt: skip
        commanded = Pointing(ra_j, dec_j, p.roll)
        err = erng.normal(0.0, 1.0, 3)
        true = Pointing(
            ra_j + err[0] * p.pointing_error_arcsec / 3600.0 / np.cos(np.deg2rad(dec_j)),
            dec_j + err[1] * p.pointing_error_arcsec / 3600.0,
            p.roll + err[2] * p.roll_error_deg,
        )
        src = sources.copy()
        src["x"], src["y"] = sky_to_pixel(src["ra"], src["dec"], true, p.detector)
        amp, row = make_drifts(erng, det, readout, p.ysize)
        hits = (
            make_cosmic_rays(erng, det, readout, p.xstart, p.ystart, p.xsize, p.ysize)
            if sw["cosmic_rays"]
            else None
        )
        start = t_cursor
        t_cursor = start + TimeDelta(readout.duration + 120.0, format="sec")
        transit = None
        lc = None
        if p.transit:
            it = int_times_table(readout, float(start.mjd))
            tmid = it["int_mid_MJD_UTC"]
            t_mid = float(0.5 * (tmid[0] + tmid[-1]))
            dur = float(0.5 * (tmid[-1] - tmid[0])) if len(tmid) > 1 else 1.0
            transit = {"t_mid_mjd": t_mid, "duration_days": dur, "ingress_days": 0.1 * dur,
                       "depth": sw["transit_depth"], "source_id": int(src["id"][0])}  # fmt: skip
            lc = transit_lightcurve(tmid, t_mid, dur, sw["transit_depth"], 0.1 * dur)
        filename = exposure_filename(p.program, p.observation, p.visit, j, p.detector)
        plan = ExposurePlan(
            detector=p.detector, readout=readout, xstart=p.xstart, ystart=p.ystart, xsize=p.xsize,
            ysize=p.ysize, filter=p.filter, date=p.date[:10], seed=int(seed), exposure=j, sources=src,
            background=p.background, psf=psf_sigma(p.detector), noiseless=sw["noiseless"], lightcurve=lc,
            amp_drift=amp, row_drift=row, tile=sw["tile"], int_chunk=p.int_chunk,
        )  # fmt: skip
        if hits is not None:
            plan.hits = hits
        meta = level1b_meta(
            instrument=p.instrument, detector=p.detector, exp_type=p.exp_type, filt=p.filter, pupil=p.pupil,
            module=p.module, channel=p.channel, readout=readout, noutputs=p.noutputs, subarray=p.subarray,
            xstart=p.xstart, ystart=p.ystart, xsize=p.xsize, ysize=p.ysize, start=start, pointing=commanded,
            target=(tname_ra, tname_dec, tname), program=p.program, observation=p.observation, visit=p.visit,
            exposure=j, nexp=p.nexp, tsovisit=p.tsovisit, zero_frame=p.zeroframe,
            dither={"primary_type": "NONE" if p.nexp == 1 else "INTRAMODULEBOX", "position_number": j,
                    "total_points": p.nexp, "x_offset": dxp * ap.x_scale, "y_offset": dyp * ap.y_scale},
            filename=filename,
        )  # fmt: skip
        exposures.append(ExposureInfo(plan, p, meta, filename, commanded, true, (dxp, dyp), start, transit))
    return exposures, sw


def exposure_dataset(info: ExposureInfo) -> xr.Dataset:
    """The raw exposure as a lazy Dataset in the Dataset contract (SCI generated tile by tile)."""
    plan, p = info.plan, info.preset
    start_mjd = float(info.start.mjd)
    data = {"SCI": (("integration", "group", "y", "x"), sci_array(plan))}
    if p.zeroframe:
        data["ZEROFRAME"] = (("integration", "y", "x"), zeroframe_array(plan))
    if p.refout:
        ref = refout_array(plan)
        data["REFOUT"] = (("integration", "group", "y", "x_refout"), da.from_array(ref, chunks=-1))
    tables = {
        "GROUP": group_table(plan.readout, start_mjd, plan.xsize, plan.ysize),
        "INT_TIMES": int_times_table(plan.readout, start_mjd),
    }
    for ext, cols in tables.items():
        for col, values in cols.items():
            data[f"{ext}.{col}"] = (f"{ext}_row", values)
    return xr.Dataset(
        data,
        attrs={
            "meta": info.meta,
            "tables": {ext: list(cols) for ext, cols in tables.items()},
            "extra_fits": {},
            "model_type": "Level1bModel",
            "product": "uncal",
            "filename": info.filename,
        },
    )


def simulate(preset: str, outdir, *, seed: int = 0, **options) -> list[Path]:
    """Simulate the exposures of ``preset`` into ``outdir``; returns the ``_uncal.fits`` paths.

    Beside each exposure: ``<root>_truth.fits`` (true rates, drifts, light curve), ``<root>_sources.ecsv``,
    ``<root>_cosmic_rays.ecsv``, ``<root>_saturated.ecsv`` and ``<root>_truth.json``; and the
    associations ``<product>_image2_asn.json`` / ``<product>_<image3|tso3>_asn.json``. Options: see
    :data:`jwst_dask.simulate.presets.OPTIONS`. The pixel data are computed with the active Dask
    scheduler, all exposures in one pass.
    """
    from jwst_dask.io import write_products
    from jwst_dask.simulate import irs2
    from jwst_dask.simulate.truth import write_associations, write_truth

    if preset == irs2.PRESET:
        return irs2.simulate_preset(outdir, seed=seed, **options)

    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"{outdir}: cannot create the output folder ({exc.strerror})") from None
    exposures, sw = plan_observation(preset, seed, **options)
    items = [(exposure_dataset(e), outdir / e.filename) for e in exposures]
    paths = [Path(p) for p in write_products(items)]
    if sw["truth"]:
        for e in exposures:
            write_truth(e, outdir)
    if sw["write_asn"]:
        write_associations(exposures, paths, outdir)
    return paths
