"""``jwst-dask asn``: make associations.

- ``jwst-dask asn from-list -o OUT.json [-r RULE] [--product-name N] [--background B] FILES...``:
  every file a science member (each ``--background`` file a background member);
  ``-r DMSLevel2bBase`` for a level-2 association (one product per exposure),
  ``DMSLevel3Base`` (default) for one level-3 product.
- ``jwst-dask asn group DIR [-o OUTDIR]``: one stage-3 association per group of exposures in DIR
  sharing program, observation, target, instrument, filter, pupil and subarray.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "asn", help="make association (ASN) files", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="asn_command", metavar="ACTION")

    fl = sub.add_parser("from-list", help="an association of the listed files")
    fl.add_argument("files", nargs="+", help="exposure files (members)")
    fl.add_argument("-o", "--output", required=True, help="the ASN JSON file to write")
    fl.add_argument("-r", "--rule", default="DMSLevel3Base", help="DMSLevel2bBase or DMSLevel3Base (default)")
    fl.add_argument(
        "--product-name", default=None, help="level-3 product name (default: by the naming rules)"
    )
    fl.add_argument("--exptype", default="science", help="member exposure type (default science)")
    fl.add_argument(
        "--background", action="append", default=[], metavar="FILE", help="a background member (repeatable)"
    )
    fl.set_defaults(func=_from_list)

    gr = sub.add_parser("group", help="group the exposures of a folder into stage-3 associations")
    gr.add_argument("directory", help="folder of _cal / _calints exposures")
    gr.add_argument("-o", "--outdir", default=None, help="where to write the ASN files (default: DIR)")
    gr.set_defaults(func=_group)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _from_list(args: argparse.Namespace) -> int:
    from jwst_dask.associations import asn_from_list, write_asn

    asn = asn_from_list(
        args.files,
        product_name=args.product_name,
        rule=args.rule,
        exptype=args.exptype,
        background=args.background,
    )
    path = write_asn(asn, args.output)
    print(f"wrote {path} ({asn['asn_type']}, {len(asn['products'])} product(s))")
    return 0


def _group(args: argparse.Namespace) -> int:
    from jwst_dask.associations import write_groups

    for path in write_groups(args.directory, args.outdir):
        print(f"wrote {path}")
    return 0
