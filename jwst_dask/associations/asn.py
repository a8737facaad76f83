"""Association (ASN) files: read, validate, write, and load with members resolved.

An association is the JSON document the official pipeline uses to group exposures::

    {"asn_type": "image3", "asn_rule": "DMSLevel3Base", "asn_id": "o001", "asn_pool": "none",
     "program": "01234", "target": "1", "version_id": null, "code_version": "...",
     "degraded_status": "No known degraded exposures in association.", "constraints": "none",
     "products": [{"name": "jw01234-o001_t001_nircam_clear-f200w",
                   "members": [{"expname": "..._cal.fits", "exptype": "science",
                                "exposerr": null, "asn_candidate": "[('o001', 'observation')]"}]}]}

Here an association is that plain ``dict``. Member file names are relative to the ASN file's
folder; :func:`load_asn` resolves them and raises :class:`AssociationError` naming every member
that does not exist.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from jwst_dask.errors import AssociationError

__all__ = [
    "ASN_FIELDS",
    "MEMBER_EXPTYPES",
    "new_association",
    "read_asn",
    "write_asn",
    "load_asn",
    "validate_asn",
]

#: top-level fields of an association, with their defaults
ASN_FIELDS: dict[str, Any] = {
    "asn_type": "None",
    "asn_rule": "DMS_Level3_Base",
    "asn_id": "a3001",
    "asn_pool": "none",
    "program": "noprogram",
    "target": "none",
    "version_id": None,
    "code_version": "",
    "degraded_status": "No known degraded exposures in association.",
    "constraints": "No constraints",
    "products": [],
}

#: member exposure types seen in JWST associations
MEMBER_EXPTYPES = ("science", "background", "psf", "imprint", "selfcal", "sourcecat", "segmap")


def _code_version() -> str:
    from jwst_dask import __version__

    return f"jwst-dask {__version__}"


def new_association(**fields: Any) -> dict:
    """A new association dict: the defaults of :data:`ASN_FIELDS` updated with ``fields``."""
    unknown = set(fields) - set(ASN_FIELDS)
    if unknown:
        raise AssociationError(f"unknown association field(s): {', '.join(sorted(unknown))}")
    asn = copy.deepcopy(ASN_FIELDS)
    asn["code_version"] = _code_version()
    asn.update(copy.deepcopy(fields))
    return asn


def validate_asn(asn: Any, source: str = "association") -> dict:
    """Check the structure of an association; return it. Raises AssociationError naming the fault."""
    if not isinstance(asn, dict):
        raise AssociationError(f"{source}: not a JSON object")
    products = asn.get("products")
    if not isinstance(products, list) or not products:
        raise AssociationError(f"{source}: 'products' must be a non-empty list")
    for i, product in enumerate(products):
        if not isinstance(product, dict) or not isinstance(product.get("members"), list):
            raise AssociationError(f"{source}: product {i} has no 'members' list")
        if "name" not in product:
            raise AssociationError(f"{source}: product {i} has no 'name'")
        for j, member in enumerate(product["members"]):
            if not isinstance(member, dict) or not isinstance(member.get("expname"), str):
                raise AssociationError(f"{source}: product {i} member {j} has no 'expname'")
            member.setdefault("exptype", "science")
            member.setdefault("exposerr", None)
    for key, default in ASN_FIELDS.items():
        asn.setdefault(key, copy.deepcopy(default))
    return asn


def read_asn(path: str | Path) -> dict:
    """Read and validate an ASN JSON file (member names are left as written)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssociationError(f"cannot read association {path}: {exc.strerror or exc}") from exc
    try:
        asn = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AssociationError(f"association {path} is not valid JSON: {exc}") from exc
    return validate_asn(asn, str(path))


def write_asn(asn: dict, path: str | Path) -> Path:
    """Write ``asn`` as indented JSON to ``path``; return the path."""
    validate_asn(asn)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asn, indent=4) + "\n", encoding="utf-8")
    return path


def load_asn(path: str | Path, *, check_exists: bool = True) -> dict:
    """Read an ASN file and resolve every member ``expname`` to an absolute path.

    Names are resolved relative to the ASN file's folder (absolute names are kept). Raises
    :class:`AssociationError` naming the members that do not exist (when ``check_exists``).
    The returned dict also has ``"asn_path"`` (the ASN file's absolute path).
    """
    path = Path(path).resolve()
    asn = read_asn(path)
    missing = []
    for product in asn["products"]:
        for member in product["members"]:
            member_path = Path(member["expname"])
            if not member_path.is_absolute():
                member_path = Path(os.path.normpath(path.parent / member_path))
            member["expname"] = str(member_path)
            if check_exists and not member_path.is_file():
                missing.append(member_path.name)
    if missing:
        raise AssociationError(
            f"association {path.name} names missing member(s) in {path.parent}: {', '.join(missing)}"
        )
    asn["asn_path"] = str(path)
    return asn
