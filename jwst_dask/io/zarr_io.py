"""zarr checkpoints: an exact round-trip of a product Dataset (values, dtypes, dims, chunks, attrs,
tables), for saving an intermediate product of a long graph and resuming from it.

Written as zarr format 3 without consolidated metadata (its consolidated form is not part of the
v3 specification); the Dataset attrs (meta tree, extra_fits, tables, model_type, product,
filename) are stored as the group's JSON attributes. Values are read back undecoded (no CF masking
or scaling), so integer arrays keep their dtypes. Metadata objects that have no JSON form
(``attrs["meta_objects"]``, e.g. a gwcs) are stored as an ASDF document in a group attribute.
"""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import xarray as xr

from jwst_dask.errors import InputFileError
from jwst_dask.io import asdf_tree

__all__ = ["is_zarr_store", "open_zarr", "write_zarr"]

_ATTRS_SKIP = ("meta_objects",)
_ORDER_KEY = "jwst_dask_variables"  # the variable order, which a zarr group does not keep
_OBJECTS_KEY = "jwst_dask_meta_objects_asdf"  # base64 ASDF document holding attrs["meta_objects"]


def is_zarr_store(path: Any) -> bool:
    """True for a folder that holds a zarr group (``zarr.json`` or ``.zgroup``) or ends in ``.zarr``."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    p = Path(path)
    return p.is_dir() and ((p / "zarr.json").exists() or (p / ".zgroup").exists() or p.suffix == ".zarr")


def _regular(arr: da.Array) -> da.Array:
    """zarr needs equal chunks along each axis (the last may be smaller)."""
    if all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in arr.chunks):
        return arr
    return arr.rechunk(tuple(max(c) for c in arr.chunks))


def write_zarr(ds: xr.Dataset, store: str | os.PathLike, *, compute: bool = True) -> Any:
    """Write ``ds`` to the zarr store ``store`` (replacing it); returns the store path, or a Dask
    ``Delayed`` with ``compute=False``."""
    out = ds.copy(deep=False)
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in _ATTRS_SKIP}
    out.attrs[_ORDER_KEY] = [str(n) for n in ds.data_vars]
    if ds.attrs.get("meta_objects"):
        raw = asdf_tree.write_meta({}, ds.attrs["meta_objects"])
        out.attrs[_OBJECTS_KEY] = base64.b64encode(raw).decode("ascii")
    for name in list(out.variables):
        var = out[name].variable
        var.encoding = {}
        if isinstance(var.data, da.Array):
            out[name] = var.copy(data=_regular(var.data))
    with warnings.catch_warnings():
        # fixed-width string columns have no v3 specification yet: fine for our own checkpoints
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        delayed = out.to_zarr(store, mode="w", zarr_format=3, consolidated=False, compute=compute)
    return Path(store) if compute else delayed


def open_zarr(store: str | os.PathLike, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Open a checkpoint written by :func:`write_zarr`: arrays lazy (dask), tables eager."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
            ds = xr.open_zarr(
                store,
                consolidated=False,
                chunks=chunks if chunks else {},
                mask_and_scale=False,
                decode_times=False,
                decode_timedelta=False,
            )
    except (FileNotFoundError, KeyError, ValueError, OSError) as exc:
        raise InputFileError(f"{store}: not a readable zarr store ({exc})") from exc
    order = ds.attrs.pop(_ORDER_KEY, None)
    packed = ds.attrs.pop(_OBJECTS_KEY, None)
    if packed:
        ds.attrs["meta_objects"] = asdf_tree.read_meta(base64.b64decode(packed))[1]
    if order:
        ds = ds[[n for n in order if n in ds.data_vars] + [n for n in ds.data_vars if n not in order]]
    tables = ds.attrs.get("tables") or {}
    eager = [f"{ext}.{col}" for ext, cols in tables.items() for col in cols if f"{ext}.{col}" in ds]
    if eager:
        ds = ds.assign({name: ds[name].load() for name in eager})
    for name in ds.variables:
        ds[name].encoding = {}
    return ds
