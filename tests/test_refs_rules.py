"""The CRDS rules shipped in stores/: valid checksums, in sync with the rules table, complete."""

from __future__ import annotations

import hashlib

import pytest

from jwst_dask.refs.cache import stores_mappings
from jwst_dask.refs.rules import CONTEXT, NOT_APPLICABLE, RULES, update_checksum, write_mappings

MAPPINGS = sorted(stores_mappings().glob("*.?map"))


def crds_checksum(text: str) -> str:
    """The checksum as crds defines it: sha1 of the text without lines containing 'sha1sum'."""
    kept = [line for line in text.splitlines(True) if "sha1sum" not in line]
    return hashlib.sha1("".join(kept).encode("utf-8")).hexdigest()


def test_mappings_present():
    names = {p.name for p in MAPPINGS}
    assert CONTEXT in names
    assert {"jwst_nircam_0001.imap", "jwst_miri_0001.imap", "jwst_nirspec_0001.imap"} <= names
    assert len(MAPPINGS) == 1 + len(RULES) + sum(len(r) for r in RULES.values())


@pytest.mark.parametrize("path", MAPPINGS, ids=lambda p: p.name)
def test_checksum_valid_by_crds(path):
    """crds itself loads every mapping with checksum verification on (raises on mismatch)."""
    from crds.core import rmap

    text = path.read_text()
    recorded = next(line for line in text.splitlines() if "sha1sum" in line).split("'")[3]
    assert recorded == crds_checksum(text)
    mapping = rmap.load_mapping(str(path), ignore_checksum=False)
    assert mapping.sha1sum == recorded


def test_stores_in_sync_with_rules_table(tmp_path):
    written = {p.name: p.read_text() for p in write_mappings(tmp_path)}
    assert written == {p.name: p.read_text() for p in MAPPINGS}


def test_update_checksum_repairs_a_hand_edit(tmp_path):
    src = stores_mappings() / "jwst_nircam_gain_0001.rmap"
    path = tmp_path / src.name
    path.write_text(src.read_text().replace("'Gain'", "'Gain (edited)'"))
    from crds.core import rmap
    from crds.core.exceptions import ChecksumError

    with pytest.raises(ChecksumError):
        rmap.load_mapping(str(path), ignore_checksum=False)
    update_checksum(path)
    assert rmap.load_mapping(str(path), ignore_checksum=False).text_descr.lower() == "gain (edited)"


def test_imaps_cover_stage_types():
    """Every type the stage 1-3 imaging steps use is ruled or explicitly N/A for both instruments."""
    stage_types = {
        "mask",
        "saturation",
        "superbias",
        "linearity",
        "dark",
        "gain",
        "readnoise",
        "ipc",
        "trapdensity",
        "persat",
        "trappars",
        "refpix",
        "reset",
        "rscd",
        "emicorr",
        "flat",
        "photom",
        "area",
        "distortion",
        "filteroffset",
        "drizpars",
        "apcorr",
        "abvegaoffset",
        "tsophot",
        "specwcs",
        "regions",
        "wavelengthrange",
        "camera",
        "collimator",
        "disperser",
        "fore",
        "fpa",
        "ifufore",
        "ifupost",
        "ifuslicer",
        "msa",
        "ote",
    }
    for instrument in ("NIRCAM", "MIRI"):
        covered = set(RULES[instrument]) | set(NOT_APPLICABLE[instrument])
        assert stage_types <= covered, stage_types - covered
        assert not set(RULES[instrument]) & set(NOT_APPLICABLE[instrument])


def _spec_parkeys(instrument: str, reftype: str) -> tuple[str, ...] | None:
    """The Match parkeys of the crds-shipped JWST spec for instrument/type (None if none ships)."""
    import ast
    from pathlib import Path

    import crds
    from crds.core import rmap

    specs = Path(crds.__file__).parent / "jwst" / "specs"
    base = f"{instrument.lower()}_{reftype}"
    if (specs / f"{base}.rmap").is_file():
        parkey = rmap.load_mapping(str(specs / f"{base}.rmap"), ignore_checksum=True).parkey
    elif (specs / f"{base}.spec").is_file():
        parkey = ast.literal_eval((specs / f"{base}.spec").read_text())["parkey"]
    else:
        return None
    typos = {
        "META.EXPOSUIRE.NOUTPUTS": "META.EXPOSURE.NOUTPUTS",
        "META.INSTRUMENT.EXP_TYPE": "META.EXPOSURE.TYPE",
    }
    return tuple(typos.get(k, k) for k in parkey[0])


@pytest.mark.parametrize("instrument", ["NIRCAM", "MIRI"])
def test_parkeys_are_the_real_jwst_parkeys(instrument):
    """Each rule matches on the parkeys of the spec crds ships for that type (plus DATE/TIME)."""
    checked = 0
    for reftype, rule in RULES[instrument].items():
        expected = _spec_parkeys(instrument, reftype)
        if expected is None:
            continue
        assert rule.parkey == expected, (instrument, reftype)
        checked += 1
    assert checked >= len(RULES[instrument]) - 2
