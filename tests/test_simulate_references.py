"""Synthetic reference files: they open and validate in the official data models, carry the required
keywords, are deterministic, and agree with the simulated detector and sky."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from jwst_dask.errors import ParameterError
from jwst_dask.simulate.references import build_reference

dm = pytest.importorskip("stdatamodels.jwst.datamodels")

NRC_SUB = {"META.INSTRUMENT.NAME": "NIRCAM", "META.INSTRUMENT.DETECTOR": "NRCA1",
           "META.SUBARRAY.NAME": "SUB64P", "META.INSTRUMENT.FILTER": "F200W|F150W",
           "META.INSTRUMENT.PUPIL": "CLEAR", "META.EXPOSURE.TYPE": "NRC_IMAGE|NRC_TSIMAGE",
           "META.EXPOSURE.NOUTPUTS": "1"}  # fmt: skip
MIRI = {"META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "MIRIMAGE", "META.SUBARRAY.NAME": "FULL",
        "META.INSTRUMENT.FILTER": "F770W", "META.EXPOSURE.READPATT": "FAST|SLOW"}  # fmt: skip

NIRCAM_CASES = [
    ("mask", "MaskModel"), ("saturation", "SaturationModel"), ("superbias", "SuperBiasModel"),
    ("linearity", "LinearityModel"), ("dark", "DarkModel"), ("gain", "GainModel"),
    ("readnoise", "ReadnoiseModel"), ("ipc", "IPCModel"), ("trapdensity", "TrapDensityModel"),
    ("persat", "PersistenceSatModel"), ("trappars", "TrapParsModel"), ("flat", "FlatModel"),
    ("photom", "NrcImgPhotomModel"), ("area", "PixelAreaModel"), ("distortion", "DistortionModel"),
    ("filteroffset", "FilteroffsetModel"), ("apcorr", "NrcImgApcorrModel"),
    ("abvegaoffset", "ABVegaOffsetModel"), ("tsophot", "TsoPhotModel"),
]  # fmt: skip
MIRI_CASES = [
    ("mask", "MaskModel"), ("saturation", "SaturationModel"), ("linearity", "LinearityModel"),
    ("gain", "GainModel"), ("readnoise", "ReadnoiseModel"), ("rscd", "RSCDModel"), ("emicorr", "EmiModel"),
    ("flat", "FlatModel"), ("photom", "MirImgPhotomModel"), ("area", "PixelAreaModel"),
    ("distortion", "DistortionModel"), ("filteroffset", "FilteroffsetModel"), ("apcorr", "MirImgApcorrModel"),
    ("abvegaoffset", "ABVegaOffsetModel"),
]  # fmt: skip
ASDF = {"distortion", "filteroffset", "abvegaoffset", "tsophot", "emicorr"}


def _build(tmp_path, reftype, sel, instr, useafter="2016-01-01 00:00:00"):
    ext = "asdf" if reftype in ASDF else "fits"
    path = tmp_path / f"jwst_{instr}_{reftype}_0001.{ext}"
    build_reference(reftype, sel, path, useafter=useafter)
    return path


def _validates(path, model_name):
    model_cls = getattr(dm, model_name)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", category=dm.ValidationWarning if hasattr(dm, "ValidationWarning") else Warning
        )
        warnings.filterwarnings("ignore", message=".*does not correspond to an existing DQ mnemonic.*")
        with model_cls(str(path)) as model:
            model.validate()
            return model.meta.reftype, model.meta.instrument.name


@pytest.mark.parametrize(("reftype", "model"), NIRCAM_CASES)
def test_nircam_reference_validates(tmp_path, reftype, model):
    path = _build(tmp_path, reftype, NRC_SUB, "nircam")
    reftype_kw, instr = _validates(path, model)
    assert reftype_kw.lower() == reftype
    assert instr == "NIRCAM"
    if path.suffix == ".fits":
        h = fits.getheader(path)
        for key in (
            "REFTYPE",
            "DESCRIP",
            "AUTHOR",
            "USEAFTER",
            "PEDIGREE",
            "TELESCOP",
            "INSTRUME",
            "DETECTOR",
        ):
            assert key in h, key
        if reftype in ("mask", "saturation", "superbias", "dark", "gain", "readnoise", "flat"):
            assert (h["SUBARRAY"], h["SUBSTRT1"], h["SUBSIZE1"], h["SUBSIZE2"]) == ("SUB64P", 1, 64, 64)
            assert h["FASTAXIS"] == -1 and h["SLOWAXIS"] == 2


@pytest.mark.parametrize(("reftype", "model"), MIRI_CASES)
def test_miri_reference_validates(tmp_path, reftype, model):
    path = _build(tmp_path, reftype, MIRI, "miri")
    reftype_kw, instr = _validates(path, model)
    assert reftype_kw.lower() == reftype and instr == "MIRI"


@pytest.mark.slow
@pytest.mark.parametrize(("reftype", "model"), [("dark", "DarkMIRIModel"), ("reset", "ResetModel")])
def test_miri_large_references_validate(tmp_path, reftype, model):
    _validates(_build(tmp_path, reftype, MIRI, "miri"), model)


def test_drizpars_layout(tmp_path):
    path = _build(tmp_path, "drizpars", NRC_SUB, "nircam")
    tab = fits.getdata(path, "DRIZPARS")
    assert tab.columns.names == [
        "numimages",
        "filter",
        "pixfrac",
        "kernel",
        "fillval",
        "wht_type",
        "stepsize",
    ]


def test_deterministic_bytes(tmp_path):
    a = _build(tmp_path / "a", "linearity", NRC_SUB, "nircam")
    b = _build(tmp_path / "b", "linearity", NRC_SUB, "nircam")
    assert a.read_bytes() == b.read_bytes()


def test_readnoise_is_cds_and_dark_matches_frame_time(tmp_path):
    from jwst_dask.simulate import detector as phys

    rn = fits.getdata(_build(tmp_path, "readnoise", NRC_SUB, "nircam"), "SCI")
    np.testing.assert_allclose(rn, np.sqrt(2.0) * phys.field("NRCA1", "read_noise")[:64, :64], rtol=1e-6)
    dark_path = _build(tmp_path, "dark", NRC_SUB, "nircam")
    dark, hdr = fits.getdata(dark_path, "SCI"), fits.getheader(dark_path)
    assert hdr["NFRAMES"] == 1 and hdr["GROUPGAP"] == 0
    # SUB64P through one output: ((64 + 12) * (64 + 2)) * 10 us
    tframe = (64 + 12) * (64 + 2) * 1e-5
    rate = phys.field("NRCA1", "dark_e")[:64, :64] / phys.field("NRCA1", "gain")[:64, :64]
    np.testing.assert_allclose(dark[4], 5 * tframe * rate, rtol=1e-5, atol=1e-7)


def test_flat_epochs_and_filters_differ(tmp_path):
    sel = dict(NRC_SUB, **{"META.INSTRUMENT.FILTER": "F200W"})
    old = fits.getdata(_build(tmp_path / "o", "flat", sel, "nircam", "2016-01-01 00:00:00"), "SCI")
    new = fits.getdata(_build(tmp_path / "n", "flat", sel, "nircam", "2024-06-01 00:00:00"), "SCI")
    f150 = fits.getdata(_build(tmp_path / "f", "flat", dict(sel, **{"META.INSTRUMENT.FILTER": "F150W"}),
                               "nircam", "2024-06-01 00:00:00"), "SCI")  # fmt: skip
    assert not np.allclose(old, new) and not np.allclose(new, f150)
    assert 0.9 < np.median(new) < 1.1


def test_photom_rows_for_the_preset_filters(tmp_path):
    path = _build(tmp_path, "photom", NRC_SUB, "nircam")
    tab = fits.getdata(path, "PHOTOM")
    assert {"F150W", "F200W", "F210M"} <= set(tab["filter"])
    h = fits.getheader(path)
    # nominal pixel area from the SW scales (~0.0311 x 0.0313 arcsec)
    assert h["PIXAR_A2"] == pytest.approx(0.03113269 * 0.03131901, rel=1e-6)
    assert h["PIXAR_SR"] == pytest.approx(h["PIXAR_A2"] * (np.pi / 180 / 3600) ** 2, rel=1e-9)


def test_distortion_file_maps_sources_to_their_sky_positions(tmp_path):
    """Truth: a source placed at (ra, dec) through the true pointing lands where the DISTORTION file's
    model, followed by the standard V2/V3 -> sky rotation written out here, puts it."""
    import asdf

    from jwst_dask.simulate.wcs import Pointing, sky_to_pixel

    path = _build(tmp_path, "distortion", NRC_SUB, "nircam")
    ptg = Pointing(53.1, -27.8, 37.0)
    ra = np.array([53.1, 53.105, 53.095])
    dec = np.array([-27.8, -27.797, -27.804])
    x, y = sky_to_pixel(ra, dec, ptg, "NRCA1")
    with asdf.open(path) as af:
        v2, v3 = af["model"](x, y)
        xb, yb = af["model"].inverse(v2, v3)
    np.testing.assert_allclose([xb, yb], [x, y], atol=0.02)
    # V2/V3 (arcsec) -> sky by the rotations (v2_ref, -v3_ref, roll, dec_ref, -ra_ref) about z, y, x, y, z
    v2r, v3r = 120.576793 / 3600, -527.501431 / 3600

    def rot(axis, ang):
        c, s = np.cos(np.deg2rad(ang)), np.sin(np.deg2rad(ang))
        m = {"x": [[1, 0, 0], [0, c, s], [0, -s, c]], "y": [[c, 0, -s], [0, 1, 0], [s, 0, c]],
             "z": [[c, s, 0], [-s, c, 0], [0, 0, 1]]}[axis]  # fmt: skip
        return np.array(m)

    m = (
        rot("z", -ptg.ra_ref)
        @ rot("y", ptg.dec_ref)
        @ rot("x", ptg.roll_ref)
        @ rot("y", -v3r)
        @ rot("z", v2r)
    )
    lon, lat = np.deg2rad(v2 / 3600), np.deg2rad(v3 / 3600)
    vec = m @ np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    ra_b = np.rad2deg(np.arctan2(vec[1], vec[0])) % 360
    dec_b = np.rad2deg(np.arcsin(vec[2]))
    np.testing.assert_allclose(ra_b, ra, atol=1e-8)
    np.testing.assert_allclose(dec_b, dec, atol=1e-8)


def test_apcorr_radii_enclose_the_simulated_psf(tmp_path):
    from jwst_dask.simulate.scene import SOURCE_DTYPE, psf_sigma, render_rate

    tab = fits.getdata(_build(tmp_path, "apcorr", NRC_SUB, "nircam"), "APCORR")
    rows = tab[(tab["filter"] == "F200W") & (tab["eefraction"] >= 0.65)]
    assert len(rows) >= 3
    yy, xx = np.mgrid[0:61, 0:61]
    sub = (np.arange(16) + 0.5) / 16 - 0.5  # 16x16 sub-pixel sampling of the aperture overlap
    rng = np.random.default_rng(3)
    for row in rows:
        ees = []
        for cx, cy in 30.0 + rng.uniform(-0.5, 0.5, (6, 2)):  # random centring of the star
            src = np.zeros(1, dtype=SOURCE_DTYPE)
            src["kind"], src["x"], src["y"], src["flux"] = "star", cx, cy, 1.0
            img = render_rate(src, 0, 61, 0, 61, psf=psf_sigma("NRCA1"))
            frac = sum(np.hypot(xx + ox - cx, yy + oy - cy) <= row["radius"] for oy in sub for ox in sub)
            ees.append(np.sum(img * frac) / 256.0)
        assert np.mean(ees) == pytest.approx(row["eefraction"], abs=0.02)
        assert row["apcorr"] == pytest.approx(1.0 / row["eefraction"], rel=1e-6)


def test_bad_selection_errors(tmp_path):
    with pytest.raises(ParameterError, match="SUB999"):
        build_reference("mask", dict(NRC_SUB, **{"META.SUBARRAY.NAME": "SUB999"}), tmp_path / "x.fits",
                        useafter="2016-01-01")  # fmt: skip
    with pytest.raises(ParameterError, match="bogus"):
        build_reference("bogus", NRC_SUB, tmp_path / "x.fits", useafter="2016-01-01")


def test_cut_reference(tmp_path):
    from jwst_dask.simulate.references import cut_reference

    full = _build(tmp_path, "dark", NRC_SUB, "nircam")
    out = tmp_path / "cut.fits"
    cut_reference(full, out, xstart=11, ystart=5, xsize=20, ysize=30)
    np.testing.assert_array_equal(fits.getdata(out, "SCI"), fits.getdata(full, "SCI")[:, 4:34, 10:30])
    np.testing.assert_array_equal(fits.getdata(out, "DQ"), fits.getdata(full, "DQ")[4:34, 10:30])
    h = fits.getheader(out)
    assert (h["SUBSTRT1"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"]) == (11, 5, 20, 30)
    _validates(out, "DarkModel")
    cut_reference(out, out, xstart=11, ystart=5, xsize=20, ysize=30)  # in place
    with pytest.raises(ParameterError, match="not inside"):
        cut_reference(full, out, xstart=60, ystart=1, xsize=20, ysize=20)
