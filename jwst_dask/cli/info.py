"""``jwst-dask info FILE``: what a product holds, without reading its pixels.

Prints the data model and product kind, each variable's dims, shape, dtype and chunks, the tables,
and the key metadata (instrument, detector, exposure type, filter, readout pattern, groups,
integrations, subarray).
"""

from __future__ import annotations

import argparse

import xarray as xr

from jwst_dask.meta import get_path

#: (label, meta path) shown under "metadata".
KEY_METADATA = (
    ("instrument", "instrument.name"),
    ("detector", "instrument.detector"),
    ("exp_type", "exposure.type"),
    ("filter", "instrument.filter"),
    ("pupil", "instrument.pupil"),
    ("readpatt", "exposure.readpatt"),
    ("ngroups", "exposure.ngroups"),
    ("nints", "exposure.nints"),
    ("subarray", "subarray.name"),
    ("xstart", "subarray.xstart"),
    ("ystart", "subarray.ystart"),
    ("xsize", "subarray.xsize"),
    ("ysize", "subarray.ysize"),
    ("date-obs", "observation.date"),
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``info`` on the ``jwst-dask`` sub-command parser."""
    parser = subparsers.add_parser(
        "info",
        help="describe a product (model, arrays, chunks, key metadata)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="FITS product or zarr store")
    parser.add_argument("--meta", action="store_true", help="also print every metadata value")
    parser.set_defaults(func=run)
    return parser


def describe(ds: xr.Dataset, *, all_meta: bool = False) -> str:
    """A plain-text description of a product Dataset."""
    from jwst_dask.meta import flatten

    meta = ds.attrs.get("meta") or {}
    lines = [
        f"file:    {ds.attrs.get('filename', '?')}",
        f"model:   {ds.attrs.get('model_type', '?')}",
        f"product: {ds.attrs.get('product', '?')}",
        "arrays:",
    ]
    tables = ds.attrs.get("tables") or {}
    table_vars = {f"{ext}.{c}" for ext, cols in tables.items() for c in cols}
    width = max((len(str(n)) for n in ds.data_vars if n not in table_vars), default=4)
    for name, var in ds.data_vars.items():
        if name in table_vars:
            continue
        chunks = "x".join(str(c[0]) for c in var.chunks) if var.chunks else "in memory"
        shape = "x".join(str(n) for n in var.shape)
        lines.append(
            f"  {name:<{width}}  ({', '.join(map(str, var.dims))})  {shape}  {var.dtype}  chunks {chunks}"
        )
    if tables:
        lines.append("tables:")
        for ext, cols in tables.items():
            first = f"{ext}.{cols[0]}" if cols else None
            nrows = ds[first].shape[0] if first in ds else 0
            lines.append(f"  {ext}: {nrows} rows, {len(cols)} columns ({', '.join(cols)})")
    lines.append("metadata:")
    for label, path in KEY_METADATA:
        value = get_path(meta, path)
        if value is not None:
            lines.append(f"  {label:<10} {value}")
    if all_meta:
        lines.append("all metadata:")
        lines += [f"  {k} = {v!r}" for k, v in sorted(flatten(meta).items())]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from jwst_dask.io import open_product

    for i, path in enumerate(args.files):
        if i:
            print()
        print(describe(open_product(path), all_meta=args.meta))
    return 0
