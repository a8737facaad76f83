"""What the simulator knows: truth files beside each exposure, and the associations.

``<root>_truth.fits`` (``root`` = the exposure name without ``_uncal.fits``):

- RATE: the detector count rate (DN/s) of the constant sky, what stage 1 should measure
  (for TSO the variable target at light-curve value 1 is in VARIABLE, in flat-fielded DN/s);
- SCENE: the flat-fielded rate (DN/s), what flat fielding should give;
- CAL: SCENE x PHOTMJSR (MJy/sr), what photom should give;
- DARK: the dark current (DN/s) that dark subtraction removes;
- AMP_DRIFT (nints, ngroups, namps, 2) and ROW_DRIFT (nints, ngroups, ny): the reference-pixel drifts
  (DN) per amplifier and column parity, and per row;
- LIGHTCURVE (TSO): integration, mid time, relative flux of the target.

Tables: ``_sources.ecsv`` (position on the sky and on this exposure's pixels, flux in DN/s and Jy),
``_cosmic_rays.ecsv`` (every pixel hit: integration, group, y, x, electrons, DN),
``_saturated.ecsv`` (pixels reaching full well in integration 1 and the first such group);
``_truth.json``: commanded and true pointing (the pointing error tweakreg should find), dither,
transit parameters, photometric constants, seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from jwst_dask.simulate.exposure import saturated_truth, truth_rate
from jwst_dask.simulate.refs_calib import photmjsr, pixel_area_sr

__all__ = ["write_truth", "write_associations", "truth_root"]


def truth_root(filename: str) -> str:
    """``jw..._nrca1`` from ``jw..._nrca1_uncal.fits``."""
    return filename.removesuffix(".fits").removesuffix("_uncal")


def write_truth(info, outdir: Path) -> dict[str, Path]:
    """Write the truth files of one exposure (:class:`~jwst_dask.simulate.observation.ExposureInfo`)."""
    plan, p = info.plan, info.preset
    root = Path(outdir) / truth_root(info.filename)
    tr = truth_rate(plan)
    phot = photmjsr(p.instrument, p.filter)
    sr, a2 = pixel_area_sr(p.detector)
    hdr = fits.Header()
    hdr["ROOTNAME"] = truth_root(info.filename)
    hdr["PHOTMJSR"] = phot
    hdr["PIXAR_SR"] = sr
    hdr["PIXAR_A2"] = a2
    hdr["SUBSTRT1"], hdr["SUBSTRT2"] = plan.xstart, plan.ystart
    hdr["SUBSIZE1"], hdr["SUBSIZE2"] = plan.xsize, plan.ysize
    hdus = [
        fits.PrimaryHDU(header=hdr),
        fits.ImageHDU(tr["rate"].astype(np.float32), name="RATE"),
        fits.ImageHDU(tr["scene"].astype(np.float32), name="SCENE"),
        fits.ImageHDU((tr["scene"] * phot).astype(np.float32), name="CAL"),
        fits.ImageHDU(tr["dark"].astype(np.float32), name="DARK"),
    ]
    if plan.amp_drift is not None:
        hdus.append(fits.ImageHDU(plan.amp_drift.astype(np.float64), name="AMP_DRIFT"))
        hdus.append(fits.ImageHDU(plan.row_drift.astype(np.float64), name="ROW_DRIFT"))
    if plan.lightcurve is not None:
        from jwst_dask.simulate.readout import int_times_table

        it = int_times_table(plan.readout, float(info.start.mjd))
        hdus.append(fits.ImageHDU(tr["scene_variable"].astype(np.float32), name="VARIABLE"))
        lc = fits.BinTableHDU.from_columns(
            [
                fits.Column("integration", "J", array=it["integration_number"]),
                fits.Column("mid_mjd", "D", array=it["int_mid_MJD_UTC"]),
                fits.Column("relative_flux", "D", array=plan.lightcurve),
            ],
            name="LIGHTCURVE",
        )
        hdus.append(lc)
    out = {"truth": root.with_name(root.name + "_truth.fits")}
    fits.HDUList(hdus).writeto(out["truth"], overwrite=True)

    src = plan.sources
    tab = Table(
        {
            "id": src["id"],
            "kind": src["kind"],
            "ra": src["ra"],
            "dec": src["dec"],
            "x": src["x"] - (plan.xstart - 1),  # this exposure's pixels, 0-based
            "y": src["y"] - (plan.ystart - 1),
            "x_full": src["x"],
            "y_full": src["y"],
            "flux_dn_s": src["flux"],
            "flux_jy": src["flux"] * phot * sr * 1e6,
            "sersic_n": src["sersic_n"],
            "r_eff_pix": src["r_eff"],
            "axis_ratio": src["axis_ratio"],
            "theta_rad": src["theta"],
            "variable": src["variable"],
        }
    )
    tab["abmag"] = -2.5 * np.log10(np.asarray(tab["flux_jy"]) / 3631.0)
    out["sources"] = root.with_name(root.name + "_sources.ecsv")
    tab.write(out["sources"], overwrite=True)

    hits = plan.hits
    out["cosmic_rays"] = root.with_name(root.name + "_cosmic_rays.ecsv")
    Table({name: hits[name] for name in hits.dtype.names}).write(out["cosmic_rays"], overwrite=True)

    sat = saturated_truth(plan, truth=tr)
    out["saturated"] = root.with_name(root.name + "_saturated.ecsv")
    Table({name: sat[name] for name in sat.dtype.names}).write(out["saturated"], overwrite=True)

    cosd = np.cos(np.deg2rad(info.commanded.dec_ref))
    ptg = {
        "commanded": info.commanded.as_dict(),
        "true": info.true.as_dict(),
        "error_arcsec": {
            "ra": (info.true.ra_ref - info.commanded.ra_ref) * 3600.0 * cosd,
            "dec": (info.true.dec_ref - info.commanded.dec_ref) * 3600.0,
            "roll_deg": info.true.roll_ref - info.commanded.roll_ref,
        },
    }
    doc = {
        "preset": p.name,
        "seed": plan.seed,
        "exposure": plan.exposure,
        "filename": info.filename,
        "noiseless": plan.noiseless,
        "pointing": ptg,
        "dither_pixels": list(info.dither),
        "photmjsr": phot,
        "pixar_sr": sr,
        "background_dn_s": p.background,
        "psf_sigma_pix": plan.psf,
        "n_cosmic_ray_pixels": len(hits),
        "n_saturated_pixels": len(sat),
        "transit": info.transit,
        "readout": {
            "frame_time": plan.readout.frame_time,
            "group_time": plan.readout.group_time,
            "nframes": plan.readout.nframes,
            "groupgap": plan.readout.groupgap,
        },
        "subarray": {"xstart": plan.xstart, "ystart": plan.ystart, "xsize": plan.xsize, "ysize": plan.ysize},
    }
    out["json"] = root.with_name(root.name + "_truth.json")
    out["json"].write_text(json.dumps(doc, indent=2, default=float) + "\n")
    return out


def write_associations(exposures: list, paths: list[Path], outdir: Path) -> list[Path]:
    """Level-2 (image2 / tso) and level-3 (image3 / tso3) associations for the simulated exposures.

    Members are named relative to ``outdir``: level 2 lists the ``_rate`` products (``_rateints``
    for TSO), level 3 the ``_cal`` (``_calints``) products the stage-2 pipeline will write.
    """
    from jwst_dask.associations import asn_from_list, write_asn

    outdir = Path(outdir)
    names = [p.name for p in paths]
    tso = bool(exposures[0].preset.tsovisit)
    s2, s3 = ("rateints", "calints") if tso else ("rate", "cal")
    written = []
    cwd_paths = [str(outdir / n) for n in names]
    asn2 = asn_from_list(cwd_paths, rule="DMSLevel2bBase")
    asn3 = asn_from_list(cwd_paths, rule="DMSLevel3Base")
    for asn, suffix in ((asn2, s2), (asn3, s3)):
        for product in asn["products"]:
            for member in product["members"]:
                member["expname"] = Path(member["expname"]).name.replace("_uncal.fits", f"_{suffix}.fits")
            product["name"] = Path(product["name"]).name.removesuffix("_uncal")
    product3 = asn3["products"][0]["name"]
    level2_name = f"{product3}_{'tso' if tso else 'image2'}_asn.json"
    level3_name = f"{product3}_{'tso3' if tso else 'image3'}_asn.json"
    written.append(write_asn(asn2, outdir / level2_name))
    written.append(write_asn(asn3, outdir / level3_name))
    return written
