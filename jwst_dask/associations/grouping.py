"""Group a folder of exposures into stage-3 associations, reading only their primary headers.

Exposures that share program, observation, target, instrument, filter, pupil and subarray form
one stage-3 product (the grouping the official level-3 rules make for imaging and TSO), named by
the source-based naming rules. Targets are numbered ``t001``, ``t002``, ... in the sorted order of
their names within the program.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from jwst_dask.associations.asn import new_association, write_asn
from jwst_dask.associations.builder import _asn_type, read_exposure_header
from jwst_dask.associations.naming import level3_product_name
from jwst_dask.errors import AssociationError

__all__ = ["group_exposures", "write_groups", "GROUP_KEYS", "INPUT_SUFFIXES"]

#: header keywords whose values must agree within one stage-3 product
GROUP_KEYS = ("PROGRAM", "OBSERVTN", "TARGPROP", "INSTRUME", "FILTER", "PUPIL", "SUBARRAY")

#: file suffixes taken as stage-3 inputs (stage-2 products)
INPUT_SUFFIXES = ("_cal.fits", "_calints.fits")


def group_exposures(
    directory: str | os.PathLike, *, suffixes: tuple[str, ...] = INPUT_SUFFIXES
) -> list[dict]:
    """Stage-3 associations for the exposures in ``directory`` (members named relative to it)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AssociationError(f"not a folder: {directory}")
    files = sorted(p for p in directory.iterdir() if p.name.endswith(suffixes))
    if not files:
        raise AssociationError(f"no exposures ({', '.join(suffixes)}) in {directory}")
    groups: dict[tuple, list[tuple[Path, dict]]] = defaultdict(list)
    for path in files:
        header = read_exposure_header(path)
        if not header:
            raise AssociationError(f"cannot read the header of {path.name}")
        key = tuple(str(header.get(k, "")).upper() for k in GROUP_KEYS)
        groups[key].append((path, header))
    targets: dict[str, list[str]] = defaultdict(list)
    for key in groups:
        program, target = key[0], key[2]
        if target not in targets[program]:
            targets[program].append(target)
    associations = []
    for key in sorted(groups):
        members = groups[key]
        program, observation, target, instrument, filter_, pupil, subarray = key
        header = members[0][1]
        try:
            acid = f"o{int(observation):03d}"
        except ValueError:
            acid = "o001"
        tnum = sorted(targets[program]).index(target) + 1
        name = level3_product_name(
            program, instrument, filter_, pupil, acid=acid, target=tnum, subarray=subarray
        )
        candidate = f"[('{acid}', 'observation')]"
        asn = new_association(
            asn_type=_asn_type(3, [h for _, h in members]),
            asn_rule="DMSLevel3Base",
            asn_id=acid,
            program=str(header.get("PROGRAM", program)),
            target=str(header.get("TARGPROP", target)),
            products=[
                {
                    "name": name,
                    "members": [
                        {
                            "expname": p.name,
                            "exptype": "science",
                            "exposerr": None,
                            "asn_candidate": candidate,
                        }
                        for p, _ in members
                    ],
                }
            ],
        )
        associations.append(asn)
    return associations


def write_groups(directory: str | os.PathLike, outdir: str | os.PathLike | None = None) -> list[Path]:
    """Group ``directory`` and write one ``<product>_<asn_type>_asn.json`` per group.

    Written beside the exposures by default; in another ``outdir`` the member names are made
    relative to it, so the association still resolves.
    """
    directory = Path(directory).resolve()
    outdir = Path(outdir).resolve() if outdir is not None else directory
    written = []
    for asn in group_exposures(directory):
        if outdir != directory:
            for product in asn["products"]:
                for member in product["members"]:
                    member["expname"] = os.path.relpath(directory / member["expname"], outdir)
        product = asn["products"][0]["name"]
        written.append(write_asn(asn, outdir / f"{product}_{asn['asn_type']}_asn.json"))
    return written
