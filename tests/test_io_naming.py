"""Output naming by the suffix rules, and the keyword / extension layout read from the official
data-model schemas (checked against stdatamodels' own lookups)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_dask.io import KNOWN_SUFFIXES, model_for_suffix, model_layout, output_name, split_suffix

BASE = "jw93065002001_02101_00001_nrca1"


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        (f"{BASE}_uncal.fits", "rate", f"{BASE}_rate.fits"),
        (f"{BASE}_rate.fits", "cal", f"{BASE}_cal.fits"),
        (f"{BASE}_rateints.fits", "calints", f"{BASE}_calints.fits"),
        (f"{BASE}_dq_init.fits", "saturation", f"{BASE}_saturation.fits"),
        (f"{BASE}_cal.fits", "outlier_i2d", f"{BASE}_outlier_i2d.fits"),
        ("myexposure.fits", "rate", "myexposure_rate.fits"),  # unknown suffix: appended
        ("my_raw.fits", "rate", "my_raw_rate.fits"),
        (f"/some/where/{BASE}_uncal.fits", "ramp", f"{BASE}_ramp.fits"),
    ],
)
def test_output_name_suffix_rules(name, suffix, expected):
    assert output_name(name, suffix) == Path(expected)


def test_output_dir_and_output_file(tmp_path):
    assert output_name(f"{BASE}_uncal.fits", "rate", output_dir=tmp_path) == tmp_path / f"{BASE}_rate.fits"
    assert output_name(f"{BASE}_uncal.fits", "rate", output_file="run7") == Path("run7_rate.fits")
    assert output_name(f"{BASE}_uncal.fits", "rate", output_file="out/run7.fits") == Path("run7_rate.fits")
    assert output_name(f"{BASE}_uncal.fits", None) == Path(f"{BASE}.fits")


def test_suffix_table_and_split():
    table = (
        "uncal ramp rate rateints fitopt bsub bsubints cal calints crf crfints i2d s2d s3d x1d x1dints c1d "
        "cat segm phot whtlt psfstack psfalign psfsub ami amiavg aminorm dark trapsfilled output_pers esec "
        "flat wfscmb psf-amiavg outlier_i2d median blot"
    )
    for s in table.split():
        assert s in KNOWN_SUFFIXES, s
    assert split_suffix(f"{BASE}_x1dints.fits") == (BASE, "x1dints")
    assert split_suffix("jw87600-a3001_t001_niriss_f480m-nrm_psf-amiavg.fits") == (
        "jw87600-a3001_t001_niriss_f480m-nrm",
        "psf-amiavg",
    )


def test_model_for_suffix():
    assert model_for_suffix("uncal") == "Level1bModel"
    assert model_for_suffix("ramp") == model_for_suffix("dark") == "RampModel"
    assert {model_for_suffix(s) for s in ("rate", "cal", "i2d", "bsub", "crf")} == {"ImageModel"}
    assert {model_for_suffix(s) for s in ("rateints", "calints", "crfints", "bsubints")} == {"CubeModel"}
    assert model_for_suffix("nonsense") is None


@pytest.mark.parametrize("model", ["Level1bModel", "RampModel", "ImageModel", "CubeModel"])
def test_keyword_mapping_matches_stdatamodels(model):
    layout = model_layout(model)
    instance = getattr(dm, model)()
    by_hdu = layout.keywords_by_hdu()
    for keyword in ["INSTRUME", "DETECTOR", "EXP_TYPE", "NGROUPS", "NINTS", "SUBSTRT1", "READPATT", "FILTER",
                    "DATE-OBS", "S_JUMP", "DATAMODL"]:  # fmt: skip
        official = instance.find_fits_keyword(keyword)
        assert official == [f"meta.{by_hdu['PRIMARY'][keyword].path}"], keyword
    # keywords of other HDUs (BUNIT of SCI, the WCS keywords)
    assert by_hdu["SCI"]["BUNIT"].path == "bunit_data"
    assert instance.find_fits_keyword("CRPIX1") == [f"meta.{by_hdu['SCI']['CRPIX1'].path}"]


def test_extension_layout_matches_schema():
    l1b = model_layout("Level1bModel")
    assert l1b.array("SCI").dtype == "uint16" and l1b.array("SCI").ndim == 4
    assert l1b.array("ZEROFRAME").dtype == "uint16"
    assert [c for c, _ in l1b.table("INT_TIMES").columns] == list(
        dm.Level1bModel().get_dtype("int_times").names
    )
    ramp = model_layout("RampModel")
    assert (ramp.array("PIXELDQ").dtype, ramp.array("GROUPDQ").dtype) == ("uint32", "uint8")
    image = model_layout("ImageModel")
    for ext in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "AREA", "WHT", "CON"):
        assert image.array(ext) is not None, ext
    assert image.array("CON").dtype == "int32"
    with pytest.raises(ValueError, match="NoSuchModel"):
        model_layout("NoSuchModel")
