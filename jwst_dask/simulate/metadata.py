"""The metadata tree of a simulated raw exposure, laid out as the Level1bModel ``meta`` tree.

Everything a real ``_uncal`` carries that the pipeline reads: telescope, program, observation
identifiers (JWST naming), visit, target, instrument, exposure (readout and times), subarray, dither,
pointing, aperture and wcsinfo. Values are JSON-compatible, and a given plan gives the same tree
(no wall-clock dates), so repeated simulations write identical files.
"""

from __future__ import annotations

from astropy.time import Time

from jwst_dask.simulate.readout import Readout
from jwst_dask.simulate.wcs import APERTURES, Pointing, v23_to_sky, wcsinfo_meta

__all__ = ["level1b_meta", "exposure_filename", "SCA_NUM"]

#: detector -> SCA number
SCA_NUM = {"NRCA1": 481, "MIRIMAGE": 493}
#: detector -> (FASTAXIS, SLOWAXIS)
AXES = {"NRCA1": (-1, 2), "MIRIMAGE": (1, 2)}


def exposure_filename(
    program: str, observation: str, visit: str, exposure: int, detector: str, suffix: str = "uncal"
) -> str:
    """JWST file name ``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>_<suffix>.fits``."""
    return f"jw{program}{observation}{visit}_01101_{exposure:05d}_{detector.lower()}_{suffix}.fits"


def level1b_meta(
    *,
    instrument: str,
    detector: str,
    exp_type: str,
    filt: str,
    pupil: str,
    module: str | None,
    channel: str | None,
    readout: Readout,
    noutputs: int,
    subarray: str,
    xstart: int,
    ystart: int,
    xsize: int,
    ysize: int,
    start: Time,
    pointing: Pointing,
    target: tuple[float, float, str],
    program: str,
    observation: str,
    visit: str,
    exposure: int,
    nexp: int,
    tsovisit: bool,
    zero_frame: bool,
    dither: dict,
    filename: str,
) -> dict:
    """The ``meta`` tree of a Level1bModel raw exposure."""
    start_mjd = float(start.mjd)
    end_mjd = start_mjd + readout.duration / 86400.0
    mid_mjd = 0.5 * (start_mjd + end_mjd)
    end = Time(end_mjd, format="mjd", scale="utc")
    iso_start = start.isot
    ap = APERTURES[detector.upper()]
    ra_v1, dec_v1 = v23_to_sky(0.0, 0.0, pointing, detector)
    fast, slow = AXES[detector.upper()]
    instr = {"name": instrument, "detector": detector, "filter": filt}
    if instrument == "NIRCAM":
        instr.update(pupil=pupil, module=module, channel=channel)
    exp = readout.as_meta()
    exp.update(
        type=exp_type,
        noutputs=noutputs,
        start_time=start_mjd,
        mid_time=mid_mjd,
        end_time=end_mjd,
        start_time_mjd=start_mjd,
        mid_time_mjd=mid_mjd,
        end_time_mjd=end_mjd,
        start_time_tdb=start_mjd,
        mid_time_tdb=mid_mjd,
        end_time_tdb=end_mjd,
        zero_frame=bool(zero_frame),
        sca_num=SCA_NUM[detector.upper()],
        nsamples=1,
        sample_time=10.0,
        count=exposure,
        data_problem=False,
        prime_parallel="PRIME",
    )
    exp["readpatt"] = readout.readpatt
    if instrument == "MIRI":
        exp["miri_fsw_nframes"] = readout.nframes
        exp["miri_fsw_ngroups"] = readout.ngroups
    obs_id = f"V{program}{observation}{visit}P0000000001101"
    return {
        "date": f"{iso_start[:10]}T00:00:00.000",
        "origin": "STSCI",
        "time_sys": "UTC",
        "time_unit": "s",
        "filename": filename,
        "model_type": "Level1bModel",
        "telescope": "JWST",
        "data_processing_software_version": "jwst-dask simulator",
        "program": {"title": "jwst-dask simulated observation", "pi_name": "Simulator, J.", "category": "GO"},
        "observation": {
            "date": iso_start[:10],
            "time": iso_start[11:23],
            "date_beg": iso_start[:23],
            "date_end": end.isot[:23],
            "obs_id": obs_id,
            "visit_id": f"{program}{observation}{visit}",
            "program_number": program,
            "observation_number": observation,
            "visit_number": visit,
            "visit_group": "01",
            "sequence_id": "1",
            "activity_id": "01",
            "exposure_number": f"{exposure:05d}",
            "observation_label": "simulated",
            "bkgdtarg": False,
        },
        "visit": {
            "tsovisit": bool(tsovisit),
            "type": "PRIME_TARGETED_FIXED",
            "engineering_quality": "OK",
            "total_exposures": nexp,
            "internal_target": False,
            "too_visit": False,
            "start_time": iso_start[:10] + " " + iso_start[11:19],
        },
        "target": {
            "proposer_name": target[2],
            "catalog_name": target[2],
            "ra": target[0],
            "dec": target[1],
            "proposer_ra": target[0],
            "proposer_dec": target[1],
            "type": "FIXED",
            "source_type": "POINT" if tsovisit else "EXTENDED",
        },
        "instrument": instr,
        "exposure": exp,
        "subarray": {
            "name": subarray,
            "xstart": xstart,
            "ystart": ystart,
            "xsize": xsize,
            "ysize": ysize,
            "fastaxis": fast,
            "slowaxis": slow,
        },
        "dither": dither,
        "aperture": {"name": ap.name if subarray == "FULL" else f"{ap.name.split('_')[0]}_{subarray}"},
        "pointing": {"ra_v1": float(ra_v1), "dec_v1": float(dec_v1), "pa_v3": pointing.roll_ref},
        "wcsinfo": wcsinfo_meta(detector, pointing, xstart, ystart),
        "velocity_aberration": {
            "scale_factor": 1.0,
            "va_ra_ref": pointing.ra_ref,
            "va_dec_ref": pointing.dec_ref,
        },
    }
