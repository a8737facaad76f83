"""The official pipeline's calwebb_detector1, given the simulator's reference files, recovers the true
rate of a noiseless simulated exposure (its refpix step estimates the drifts from the reference
pixels itself).

Needs the official pipeline in its own environment: set ``JWST_OFFICIAL_PYTHON`` to its Python
interpreter; skipped otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import _official
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_dask.simulate import simulate
from jwst_dask.simulate.references import build_reference, cut_reference

pytestmark = [
    pytest.mark.slow,
    pytest.mark.official,
    _official.requires_official,
]

REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")

SCRIPT = r"""
import sys
from jwst.pipeline import Detector1Pipeline
d = sys.argv[2]
f = {rt: f"{d}/jwst_nircam_{rt}_0001.fits" for rt in sys.argv[3].split(",")}
steps = {
    "dq_init": {"override_mask": f["mask"]},
    "saturation": {"override_saturation": f["saturation"], "override_superbias": f["superbias"]},
    "ipc": {"skip": True}, "persistence": {"skip": True}, "charge_migration": {"skip": True},
    "clean_flicker_noise": {"skip": True}, "picture_frame": {"skip": True},
    "superbias": {"override_superbias": f["superbias"]},
    "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
    "linearity": {"override_linearity": f["linearity"]},
    "dark_current": {"override_dark": f["dark"]},
    "jump": {"override_gain": f["gain"], "override_readnoise": f["readnoise"]},
    "ramp_fit": {"override_gain": f["gain"], "override_readnoise": f["readnoise"]},
    "gain_scale": {"override_gain": f["gain"]},
}
for k in ("rscd", "reset", "emicorr"):
    steps[k] = {"skip": True, "override_" + k: "N/A"}
for k in ("firstframe", "lastframe"):
    steps[k] = {"skip": True}
Detector1Pipeline.call(sys.argv[1], steps=steps, save_results=True, output_dir=d)
"""

SCRIPT2 = r"""
import sys, json
import numpy as np
from astropy.table import Table
from jwst.pipeline import Image2Pipeline
from stdatamodels.jwst import datamodels
rate, d, sources, out = sys.argv[1:5]
aw = {"override_" + k: "N/A" for k in ("specwcs", "regions", "camera", "chromcorr", "collimator", "disperser",
      "fore", "fpa", "msa", "ote", "ifupost", "ifufore", "ifuslicer", "wavelengthrange")}
aw.update(override_distortion=d + "/jwst_nircam_distortion_0001.asdf",
          override_filteroffset=d + "/jwst_nircam_filteroffset_0001.asdf")
steps = {"assign_wcs": aw,
         "bkg_subtract": {"skip": True, "override_bkg": "N/A", "override_wavelengthrange": "N/A"},
         "flat_field": {"override_flat": d + "/jwst_nircam_flat_0001.fits", "override_fflat": "N/A",
                        "override_sflat": "N/A", "override_dflat": "N/A"},
         "photom": {"override_photom": d + "/jwst_nircam_photom_0001.fits",
                    "override_area": d + "/jwst_nircam_area_0001.fits"},
         "resample": {"skip": True}}
Image2Pipeline.call(rate, steps=steps, save_results=True, output_dir=d)
m = datamodels.open(rate.replace("_rate.fits", "_cal.fits"))
src = Table.read(sources)
ra, dec = m.meta.wcs(np.asarray(src["x"]), np.asarray(src["y"]))
json.dump({"ra": [float(v) for v in ra], "dec": [float(v) for v in dec]}, open(out, "w"))
from jwst.source_catalog import SourceCatalogStep
SourceCatalogStep.call(rate.replace("_rate.fits", "_cal.fits"), save_results=True, output_dir=d,
                       override_apcorr=d + "/jwst_nircam_apcorr_0001.fits",
                       override_abvegaoffset=d + "/jwst_nircam_abvegaoffset_0001.asdf")
"""


def test_official_detector1_recovers_the_true_rate(tmp_path):
    n = 128
    uncal = simulate("nircam-mosaic", tmp_path, seed=3, nexp=1, size=n, ngroups=10, noiseless=True,
                     cosmic_rays=False, write_asn=False)[0]  # fmt: skip
    sel = {
        "META.INSTRUMENT.DETECTOR": "NRCA1",
        "META.SUBARRAY.NAME": "FULL",
        "META.INSTRUMENT.FILTER": "F200W",
    }
    for rt in REFTYPES:
        build_reference(rt, sel, tmp_path / f"jwst_nircam_{rt}_0001.fits", useafter="2016-01-01 00:00:00")
    # the official dark step needs a dark of the science subarray's size (no cut-out)
    dark = tmp_path / "jwst_nircam_dark_0001.fits"
    cut_reference(dark, dark, xstart=1, ystart=1, xsize=n, ysize=n)
    # an offline CRDS configuration (every reference is overridden)
    env = _official.offline_crds_env(tmp_path / "crds", with_mappings=True)
    script = tmp_path / "run_official.py"
    script.write_text(SCRIPT)
    _official.run_official([str(script), str(uncal), str(tmp_path), ",".join(REFTYPES)], env=env)
    rate_file = tmp_path / uncal.name.replace("_uncal", "_rate")
    rate = fits.getdata(rate_file, "SCI")
    dq = fits.getdata(rate_file, "DQ")
    truth = fits.getdata(str(uncal).replace("_uncal.fits", "_truth.fits"), "RATE")
    good = (truth > 10.0) & (dq == 0)
    assert good.sum() > 100
    rel = np.abs(rate[good] - truth[good]) / truth[good]
    assert rel.max() < 1e-3

    # stage 2: the WCS from the DISTORTION file and the (commanded) pointing, flat field and photom
    sel2 = dict(sel, **{"META.INSTRUMENT.PUPIL": "CLEAR", "META.EXPOSURE.TYPE": "NRC_IMAGE"})
    for rt, ext in (("distortion", "asdf"), ("filteroffset", "asdf"), ("flat", "fits"), ("photom", "fits"),
                    ("area", "fits"), ("apcorr", "fits"), ("abvegaoffset", "asdf")):  # fmt: skip
        build_reference(rt, sel2, tmp_path / f"jwst_nircam_{rt}_0001.{ext}", useafter="2024-06-01 00:00:00")
    script2 = tmp_path / "run_official2.py"
    script2.write_text(SCRIPT2)
    sources = str(uncal).replace("_uncal.fits", "_sources.ecsv")
    _official.run_official(
        [str(script2), str(rate_file), str(tmp_path), sources, str(tmp_path / "w.json")], env=env
    )
    cal_file = tmp_path / uncal.name.replace("_uncal", "_cal")
    cal, cal_dq = fits.getdata(cal_file, "SCI"), fits.getdata(cal_file, "DQ")
    cal_truth = fits.getdata(str(uncal).replace("_uncal.fits", "_truth.fits"), "CAL")
    good = (truth > 10.0) & (cal_dq == 0)
    assert np.max(np.abs(cal[good] - cal_truth[good]) / cal_truth[good]) < 1e-3
    # true source positions map to the sky displaced by minus the pointing error, all by the same offset
    world = json.loads((tmp_path / "w.json").read_text())
    src = Table.read(sources)
    cosd = np.cos(np.deg2rad(np.asarray(src["dec"])))
    d_ra = (np.asarray(world["ra"]) - np.asarray(src["ra"])) * 3600.0 * cosd
    d_dec = (np.asarray(world["dec"]) - np.asarray(src["dec"])) * 3600.0
    inside = np.isfinite(d_ra)
    assert inside.sum() >= 3
    truth_json = Path(str(uncal).replace("_uncal.fits", "_truth.json"))
    err = json.loads(truth_json.read_text())["pointing"]["error_arcsec"]
    assert np.median(d_dec[inside]) == pytest.approx(-err["dec"], abs=0.005)
    assert np.median(d_ra[inside]) == pytest.approx(-err["ra"], abs=0.005)
    assert np.std(d_ra[inside]) < 0.002 and np.std(d_dec[inside]) < 0.002

    # stage 3 references: aperture-corrected fluxes of isolated, unsaturated stars are their true fluxes
    cat = Table.read(tmp_path / uncal.name.replace("_uncal.fits", "_cat.ecsv"))
    xs, ys = np.asarray(src["x"]), np.asarray(src["y"])
    checked = 0
    for row in cat:
        d = np.hypot(xs - row["xcentroid"], ys - row["ycentroid"])
        k = int(np.argmin(d))
        others = np.sort(d)[1]
        if src["kind"][k] != "star" or d[k] > 0.3 or others < 12 or not np.isfinite(row["aper_total_flux"]):
            continue
        if min(xs[k], ys[k]) < 12 or max(xs[k], ys[k]) > n - 12:
            continue
        assert row["aper_total_flux"] == pytest.approx(src["flux_jy"][k], rel=0.05)
        checked += 1
    assert checked >= 1


MIRI_SCRIPT = r"""
import sys
from jwst.pipeline import Detector1Pipeline
d = sys.argv[2]
f = {rt: f"{d}/jwst_miri_{rt}_0001.fits" for rt in sys.argv[3].split(",")}
steps = {
    "dq_init": {"override_mask": f["mask"]},
    "emicorr": {"skip": True, "override_emicorr": "N/A"},
    "saturation": {"override_saturation": f["saturation"], "override_superbias": "N/A"},
    "ipc": {"skip": True}, "superbias": {"skip": True, "override_superbias": "N/A"},
    "persistence": {"skip": True}, "charge_migration": {"skip": True},
    "clean_flicker_noise": {"skip": True}, "picture_frame": {"skip": True},
    "reset": {"override_reset": f["reset"]},
    "linearity": {"override_linearity": f["linearity"]},
    "rscd": {"override_rscd": f["rscd"]},
    "dark_current": {"override_dark": f["dark"]},
    "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
    "jump": {"override_gain": f["gain"], "override_readnoise": f["readnoise"]},
    "ramp_fit": {"override_gain": f["gain"], "override_readnoise": f["readnoise"]},
    "gain_scale": {"override_gain": f["gain"]},
}
Detector1Pipeline.call(sys.argv[1], steps=steps, save_results=True, output_dir=d)
"""


def test_official_detector1_miri_reset_rscd_linearity(tmp_path):
    """MIRI full frame: reset anomaly, first/last-frame and RSCD effects, the non-linearity of the
    total signal and the dark are all undone by the official steps with these references, to the
    digitisation limit of a 2.8 s group time."""
    uncal = simulate("miri-image", tmp_path, seed=3, nexp=1, ngroups=10, nints=2, noiseless=True,
                     cosmic_rays=False, write_asn=False)[0]  # fmt: skip
    sel = {
        "META.INSTRUMENT.DETECTOR": "MIRIMAGE",
        "META.SUBARRAY.NAME": "FULL",
        "META.EXPOSURE.READPATT": "FAST",
    }
    reftypes = ("mask", "saturation", "linearity", "dark", "gain", "readnoise", "reset", "rscd")
    for rt in reftypes:
        build_reference(rt, sel, tmp_path / f"jwst_miri_{rt}_0001.fits", useafter="2016-01-01 00:00:00")
    env = _official.offline_crds_env(tmp_path / "crds", with_mappings=True)
    script = tmp_path / "run_official_miri.py"
    script.write_text(MIRI_SCRIPT)
    _official.run_official([str(script), str(uncal), str(tmp_path), ",".join(reftypes)], env=env, timeout=900)
    ints = fits.getdata(tmp_path / uncal.name.replace("_uncal", "_rateints"), "SCI")
    dq = fits.getdata(tmp_path / uncal.name.replace("_uncal", "_rate"), "DQ")
    truth = fits.getdata(str(uncal).replace("_uncal.fits", "_truth.fits"), "RATE")
    good = (truth > 10.0) & (dq == 0)
    assert good.sum() > 1000
    for plane in ints:  # integration 2 fits fewer groups (RSCD)
        rel = np.abs(plane[good] - truth[good]) / truth[good]
        assert np.median(rel) < 3e-3
        assert np.percentile(rel, 99) < 2e-2
