"""Associations: ASN JSON round trip, asn_from_list level 2/3, grouping, member resolution."""

from __future__ import annotations

import json
from pathlib import Path

import _official
import pytest
from astropy.io import fits

from jwst_dask.associations import (
    asn_from_list,
    group_exposures,
    level3_product_name,
    load_asn,
    read_asn,
    write_asn,
    write_groups,
)
from jwst_dask.cli import main
from jwst_dask.errors import AssociationError

REQUIRED = {
    "asn_type",
    "asn_rule",
    "asn_id",
    "asn_pool",
    "program",
    "target",
    "version_id",
    "code_version",
    "degraded_status",
    "constraints",
    "products",
}


def exposure(folder: Path, name: str, **keywords) -> Path:
    """A header-only exposure file with the grouping keywords."""
    header = fits.Header()
    defaults = {
        "PROGRAM": "01234",
        "OBSERVTN": "001",
        "VISIT": "001",
        "TARGPROP": "NGC-1234",
        "INSTRUME": "NIRCAM",
        "DETECTOR": "NRCA1",
        "FILTER": "F200W",
        "PUPIL": "CLEAR",
        "SUBARRAY": "FULL",
        "EXP_TYPE": "NRC_IMAGE",
        "TSOVISIT": False,
    }
    defaults.update(keywords)
    for key, value in defaults.items():
        header[key] = value
    path = folder / name
    fits.PrimaryHDU(header=header).writeto(path)
    return path


def mosaic(folder: Path, n: int = 4, filter_: str = "F200W", obs: str = "001") -> list[Path]:
    return [
        exposure(
            folder,
            f"jw01234{obs}001_02101_{i:05d}_nrca1_{filter_.lower()}_cal.fits",
            FILTER=filter_,
            OBSERVTN=obs,
        )
        for i in range(1, n + 1)
    ]


def test_product_names():
    assert level3_product_name("1234", "NIRCAM", "F200W", "CLEAR") == "jw01234-o001_t001_nircam_clear-f200w"
    assert (
        level3_product_name(1234, "MIRI", "F770W", None, acid="o002", target=3)
        == "jw01234-o002_t003_miri_f770w"
    )
    assert (
        level3_product_name("01234", "NIRCAM", "F210M", "CLEAR", subarray="SUB64P")
        == "jw01234-o001_t001_nircam_clear-f210m-sub64p"
    )


def test_round_trip(tmp_path):
    files = [p.name for p in mosaic(tmp_path, 2)]
    asn = asn_from_list([tmp_path / f for f in files], product_name="l3_results")
    path = write_asn(asn, tmp_path / "l3_asn.json")
    raw = json.loads(path.read_text())
    assert REQUIRED <= set(raw)
    assert read_asn(path) == asn


def test_asn_from_list_level2(tmp_path):
    files = mosaic(tmp_path, 3)
    asn = asn_from_list([f.name for f in files], rule="DMSLevel2bBase")
    assert asn["asn_rule"] == "DMSLevel2bBase" and asn["asn_type"] == "image2"
    assert [p["name"] for p in asn["products"]] == [f.name.removesuffix("_cal.fits") for f in files]
    for product, file in zip(asn["products"], files):
        assert product["members"] == [
            {
                "expname": file.name,
                "exptype": "science",
                "exposerr": None,
                "asn_candidate": "[('o001', 'observation')]",
            }
        ]


def test_background_members(tmp_path):
    files = mosaic(tmp_path, 2)
    asn = asn_from_list(files, rule="DMSLevel2bBase", background=["bkg1_rate.fits", "bkg2_rate.fits"])
    for product, file in zip(asn["products"], files):
        assert [(m["expname"], m["exptype"]) for m in product["members"]] == [
            (str(file), "science"),
            ("bkg1_rate.fits", "background"),
            ("bkg2_rate.fits", "background"),
        ]
    l3 = asn_from_list(files, product_name="l3", background=["bkg_cal.fits"])
    assert [m["exptype"] for m in l3["products"][0]["members"]] == ["science", "science", "background"]


def test_asn_from_list_level3_named_by_rules(tmp_path):
    files = mosaic(tmp_path, 4)
    asn = asn_from_list(files)
    assert asn["asn_type"] == "image3" and asn["asn_rule"] == "DMSLevel3Base"
    assert asn["program"] == "01234" and asn["asn_id"] == "o001" and asn["target"] == "NGC-1234"
    (product,) = asn["products"]
    assert product["name"] == "jw01234-o001_t001_nircam_clear-f200w"
    assert [m["expname"] for m in product["members"]] == [str(f) for f in files]
    assert {m["exptype"] for m in product["members"]} == {"science"}
    named = asn_from_list(["a_cal.fits", "b_cal.fits"], product_name="l3_results")
    assert named["products"][0]["name"] == "l3_results"
    with pytest.raises(AssociationError, match="product name"):
        asn_from_list(["a_cal.fits"])  # no header to name it from
    with pytest.raises(AssociationError, match="unknown association rule"):
        asn_from_list(files, rule="Nonsense")


def test_tso_types(tmp_path):
    files = [
        exposure(
            tmp_path,
            f"jw01234002001_03101_0000{i}_nrca1_calints.fits",
            EXP_TYPE="NRC_TSIMAGE",
            TSOVISIT=True,
            FILTER="F210M",
            SUBARRAY="SUB64P",
            OBSERVTN="002",
        )
        for i in (1, 2)
    ]
    assert asn_from_list(files)["asn_type"] == "tso3"
    assert asn_from_list(files)["products"][0]["name"] == "jw01234-o002_t001_nircam_clear-f210m-sub64p"
    assert asn_from_list(files, rule="DMSLevel2bBase")["asn_type"] == "tso-image2"


def test_grouping(tmp_path):
    f200 = mosaic(tmp_path, 4, "F200W")
    f150 = mosaic(tmp_path, 2, "F150W")
    miri = [
        exposure(
            tmp_path,
            f"jw01234003001_02101_0000{i}_mirimage_cal.fits",
            INSTRUME="MIRI",
            DETECTOR="MIRIMAGE",
            FILTER="F770W",
            PUPIL="N/A",
            EXP_TYPE="MIR_IMAGE",
            OBSERVTN="003",
            TARGPROP="OTHER",
        )
        for i in (1, 2)
    ]
    (tmp_path / "notes.txt").write_text("not an exposure")
    groups = {a["products"][0]["name"]: a for a in group_exposures(tmp_path)}
    assert set(groups) == {
        "jw01234-o001_t001_nircam_clear-f200w",
        "jw01234-o001_t001_nircam_clear-f150w",
        "jw01234-o003_t002_miri_f770w",
    }
    members = {n: sorted(m["expname"] for m in a["products"][0]["members"]) for n, a in groups.items()}
    assert members["jw01234-o001_t001_nircam_clear-f200w"] == sorted(p.name for p in f200)
    assert members["jw01234-o001_t001_nircam_clear-f150w"] == sorted(p.name for p in f150)
    assert members["jw01234-o003_t002_miri_f770w"] == sorted(p.name for p in miri)
    assert all(a["asn_type"] == "image3" for a in groups.values())


def test_write_groups_elsewhere_resolves(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = mosaic(data, 2)
    (path,) = write_groups(data, tmp_path / "asn")
    assert path.parent == tmp_path / "asn"
    loaded = load_asn(path)
    assert sorted(m["expname"] for m in loaded["products"][0]["members"]) == sorted(str(f) for f in files)


def test_load_asn_resolves_and_reports_missing(tmp_path):
    files = mosaic(tmp_path, 3)
    asn = asn_from_list([f.name for f in files], product_name="l3")
    path = write_asn(asn, tmp_path / "l3_asn.json")
    loaded = load_asn(path)
    assert [m["expname"] for m in loaded["products"][0]["members"]] == [str(f) for f in files]
    files[0].unlink()
    files[2].unlink()
    with pytest.raises(AssociationError) as err:
        load_asn(path)
    assert files[0].name in str(err.value) and files[2].name in str(err.value)
    assert files[1].name not in str(err.value)


def test_malformed_asn(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AssociationError, match="not valid JSON"):
        read_asn(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text(json.dumps({"asn_type": "image3", "products": []}))
    with pytest.raises(AssociationError, match="products"):
        read_asn(tmp_path / "empty.json")


def test_cli_from_list_and_group(tmp_path, capsys):
    files = mosaic(tmp_path, 2)
    out = tmp_path / "l2_asn.json"
    assert main(["asn", "from-list", "-o", str(out), "-r", "DMSLevel2bBase", *map(str, files)]) == 0
    assert len(read_asn(out)["products"]) == 2
    out3 = tmp_path / "l3_asn.json"
    assert main(["asn", "from-list", "-o", str(out3), "--product-name", "l3_results", *map(str, files)]) == 0
    assert read_asn(out3)["products"][0]["name"] == "l3_results"
    assert main(["asn", "group", str(tmp_path), "-o", str(tmp_path / "groups")]) == 0
    assert (tmp_path / "groups" / "jw01234-o001_t001_nircam_clear-f200w_image3_asn.json").is_file()
    assert main(["asn", "group", str(tmp_path / "nowhere")]) == 1
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.official
@_official.requires_official
def test_official_pipeline_reads_our_asn(tmp_path):
    files = mosaic(tmp_path, 2)
    path = write_asn(asn_from_list(files), tmp_path / "l3_asn.json")
    code = (
        "import sys; from jwst.associations import load_asn\n"
        "asn = load_asn(open(sys.argv[1]))\n"
        "print(asn['asn_type'], asn['products'][0]['name'], len(asn['products'][0]['members']))"
    )
    out = _official.run_official(["-c", code, str(path)], timeout=300)
    assert out.stdout.split() == ["image3", "jw01234-o001_t001_nircam_clear-f200w", "2"]
