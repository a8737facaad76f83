"""Build associations from a list of exposure files (the official ``asn_from_list``).

``rule="DMSLevel2bBase"`` makes a level-2 association: one product per science exposure, named
after the exposure (its known suffix stripped), for ``calwebb_image2`` / ``spec2``.
``rule="DMSLevel3Base"`` (the default) makes a level-3 association: one product holding every file,
named ``product_name`` or, when not given, by the source-based naming rules from the first
file's header (``jw01234-o001_t001_nircam_clear-f200w``). Every listed file is a member of type
``exptype`` (science by default). Headers are read only when the files exist; the association is
otherwise built from the names alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jwst_dask.associations.asn import MEMBER_EXPTYPES, new_association
from jwst_dask.associations.naming import level3_product_name
from jwst_dask.errors import AssociationError

__all__ = ["asn_from_list", "read_exposure_header", "LEVEL2_RULES", "LEVEL3_RULES"]

LEVEL2_RULES = ("DMSLevel2bBase", "DMS_Level2b_Base", "Asn_Lv2Image", "Asn_Lv2Spec")
LEVEL3_RULES = ("DMSLevel3Base", "DMS_Level3_Base", "Asn_Lv3Image", "Asn_Lv3TSO", "Asn_Lv3Spec")

#: EXP_TYPE values of imaging / TSO imaging exposures
IMAGING = {"NRC_IMAGE", "MIR_IMAGE", "NIS_IMAGE", "FGS_IMAGE", "NRC_TSIMAGE"}

_KEYWORDS = (
    "PROGRAM",
    "OBSERVTN",
    "VISIT",
    "TARGPROP",
    "TARGNAME",
    "INSTRUME",
    "DETECTOR",
    "FILTER",
    "PUPIL",
    "SUBARRAY",
    "EXP_TYPE",
    "TSOVISIT",
    "EXPOSURE",
    "DATE-OBS",
)


def read_exposure_header(path: str | os.PathLike) -> dict[str, Any]:
    """The grouping keywords of an exposure's primary header (empty when the file is not FITS)."""
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError):
        return {}
    return {k: header[k] for k in _KEYWORDS if k in header}


def _asn_type(level: int, headers: list[dict]) -> str:
    exp_types = {str(h.get("EXP_TYPE", "")).upper() for h in headers} - {""}
    tso = any(bool(h.get("TSOVISIT")) for h in headers) or "NRC_TSIMAGE" in exp_types
    spectro = bool(exp_types - IMAGING)
    if level == 2:
        if spectro:
            return "tso-spec2" if tso else "spec2"
        return "tso-image2" if tso else "image2"
    if tso:
        return "tso3"
    return "spec3" if spectro else "image3"


def _acid(header: dict) -> str:
    try:
        return f"o{int(header.get('OBSERVTN', 1)):03d}"
    except (TypeError, ValueError):
        return "o001"


def asn_from_list(
    files: Iterable[str | os.PathLike],
    product_name: str | None = None,
    rule: str = "DMSLevel3Base",
    *,
    exptype: str = "science",
    asn_id: str | None = None,
    background: Iterable[str | os.PathLike] = (),
) -> dict:
    """An association of ``files`` (level 2 or 3 by ``rule``); write it with ``write_asn``.

    ``background`` files are added as ``exptype="background"`` members: to every product of a
    level-2 association (background subtraction in ``calwebb_image2``/``spec2``), to the one
    product of a level-3 association. Member names are written as given (relative names stay
    relative to the ASN file's folder).
    """
    background = [os.fspath(f) for f in background]
    files = [os.fspath(f) for f in files]
    if not files:
        raise AssociationError("asn_from_list: no files given")
    if exptype not in MEMBER_EXPTYPES:
        raise AssociationError(f"unknown member exptype {exptype!r}; expected one of {MEMBER_EXPTYPES}")
    if rule in LEVEL2_RULES:
        level = 2
    elif rule in LEVEL3_RULES:
        level = 3
    else:
        raise AssociationError(f"unknown association rule {rule!r}; use DMSLevel2bBase or DMSLevel3Base")
    headers = [read_exposure_header(f) for f in files]
    first = next((h for h in headers if h), {})
    acid = asn_id or _acid(first)
    candidate = f"[('{acid}', 'observation')]"
    program = str(first.get("PROGRAM", "noprogram"))
    fields: dict[str, Any] = {
        "asn_type": _asn_type(level, headers),
        "asn_rule": "DMSLevel2bBase" if level == 2 else "DMSLevel3Base",
        "asn_id": acid,
        "program": program,
        "target": str(first.get("TARGPROP", first.get("TARGNAME", "none"))),
    }

    def member(name: str, kind: str = exptype) -> dict:
        return {"expname": name, "exptype": kind, "exposerr": None, "asn_candidate": candidate}

    backgrounds = [member(f, "background") for f in background]

    if level == 2:
        from jwst_dask.io.naming import strip_suffix

        products = [{"name": strip_suffix(f), "members": [member(f), *backgrounds]} for f in files]
    else:
        if product_name is None:
            if not first:
                raise AssociationError(
                    "asn_from_list: a level-3 product name is needed (--product-name): "
                    f"no readable exposure header in {Path(files[0]).name}"
                )
            product_name = level3_product_name(
                program,
                first.get("INSTRUME", "unknown"),
                first.get("FILTER"),
                first.get("PUPIL"),
                acid=acid,
                subarray=first.get("SUBARRAY"),
            )
        products = [{"name": product_name, "members": [*(member(f) for f in files), *backgrounds]}]
    return new_association(products=products, **fields)
