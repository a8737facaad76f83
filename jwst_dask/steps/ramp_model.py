"""The uncal -> ramp conversion, and helpers shared by the stage-1 steps.

:func:`to_ramp` turns a raw exposure (Level1bModel: SCI uint16) into the RampModel layout that
every detector1 step works on: SCI float32 (integration, group, y, x), GROUPDQ uint8 and ERR
float32 of the same shape, PIXELDQ uint32 (y, x), ZEROFRAME float32 (integration, y, x) when the
exposure has one, tables and metadata carried over. Everything stays lazy; the chunks hold every
integration and group of a pixel tile (docs/design.md, "Chunks").
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.errors import MissingKeywordError, ShapeMismatchError
from jwst_dask.io.chunks import ramp_chunks

__all__ = ["to_ramp", "tile_chunks", "as_tiles", "ref_array", "subarray_origin", "RAMP_DIMS"]

RAMP_DIMS = ("integration", "group", "y", "x")
_IMAGE_DIMS = ("y", "x")


def tile_chunks(ds: xr.Dataset) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (y, x) chunks of the ramp's SCI array."""
    data = ds["SCI"].data
    if isinstance(data, da.Array):
        return data.chunks[-2], data.chunks[-1]
    ty, tx = ramp_chunks(data.shape, 4)[-2:]
    return da.core.normalize_chunks((ty, tx), data.shape[-2:])


def as_tiles(arr: Any, ds: xr.Dataset, dtype=None) -> da.Array:
    """``arr`` (any leading axes, then y, x) as a dask array tiled like ``ds`` SCI, leading axes whole."""
    a = arr if isinstance(arr, da.Array) else da.asarray(np.asarray(arr))
    if dtype is not None and a.dtype != np.dtype(dtype):
        a = a.astype(dtype)
    cy, cx = tile_chunks(ds)
    if a.shape[-2:] != (sum(cy), sum(cx)):
        raise ShapeMismatchError(
            f"array of shape {a.shape} does not match the science pixels {(sum(cy), sum(cx))}"
        )
    chunks = (*tuple((n,) for n in a.shape[:-2]), cy, cx)
    return a.rechunk(chunks) if a.chunks != chunks else a


def ref_array(ref: xr.Dataset, name: str, ds: xr.Dataset, reftype: str, dtype=None) -> da.Array:
    """Reference variable ``name`` as a dask array tiled like ``ds`` (ReferenceFileError if absent)."""
    from jwst_dask.errors import ReferenceFileError

    if name not in ref:
        raise ReferenceFileError(f"{reftype} reference has no {name} extension")
    try:
        return as_tiles(ref[name].data, ds, dtype)
    except ShapeMismatchError:
        raise ReferenceFileError(
            f"{reftype} reference {name} shape {ref[name].shape} does not match the science "
            f"data {ds['SCI'].shape[-2:]} (subarray not extractable)"
        ) from None


def subarray_origin(ds: xr.Dataset) -> tuple[int, int]:
    """Zero-based full-frame (row, column) of the data's first pixel (SUBSTRT2-1, SUBSTRT1-1)."""
    meta = ds.jwst.meta
    ystart = meta.get_path("subarray.ystart") or 1
    xstart = meta.get_path("subarray.xstart") or 1
    return int(ystart) - 1, int(xstart) - 1


def _check_input(ds: xr.Dataset) -> None:
    if "SCI" not in ds:
        raise MissingKeywordError("input has no SCI extension: not a raw (uncal) or ramp exposure")
    if ds["SCI"].ndim != 4:
        raise ShapeMismatchError(
            f"SCI of a raw exposure must be 4-D (integration, group, y, x), got shape {ds['SCI'].shape}"
        )


def to_ramp(ds: xr.Dataset) -> xr.Dataset:
    """A lazy RampModel Dataset from a raw exposure (Level1bModel) Dataset.

    SCI -> float32; GROUPDQ (uint8 zeros) and PIXELDQ (uint32 zeros) are created unless present;
    ERR is lazy float32 zeros; ZEROFRAME becomes float32; REFOUT and tables pass through. A
    Dataset that is already a ramp is returned re-chunked but otherwise unchanged.
    """
    _check_input(ds)
    sci = ds["SCI"].data
    if not isinstance(sci, da.Array):
        sci = da.from_array(np.asarray(sci), chunks=ramp_chunks(sci.shape, 4))
    nints, ngroups, ny, nx = sci.shape
    sci = sci.rechunk((nints, ngroups, sci.chunks[2], sci.chunks[3]))
    cy, cx = sci.chunks[2:]
    ch4 = ((nints,), (ngroups,), cy, cx)
    out = xr.Dataset(attrs=dict(ds.attrs))
    out["SCI"] = (RAMP_DIMS, sci.astype(np.float32))
    if "PIXELDQ" in ds:
        pdq = ds["PIXELDQ"].data
        pdq = da.asarray(pdq) if not isinstance(pdq, da.Array) else pdq
        out["PIXELDQ"] = (_IMAGE_DIMS, pdq.astype(np.uint32).rechunk((cy, cx)))
    else:
        out["PIXELDQ"] = (_IMAGE_DIMS, da.zeros((ny, nx), dtype=np.uint32, chunks=(cy, cx)))
    if "GROUPDQ" in ds:
        gdq = ds["GROUPDQ"].data
        gdq = da.asarray(gdq) if not isinstance(gdq, da.Array) else gdq
        out["GROUPDQ"] = (RAMP_DIMS, gdq.astype(np.uint8).rechunk(ch4))
    else:
        out["GROUPDQ"] = (RAMP_DIMS, da.zeros(sci.shape, dtype=np.uint8, chunks=ch4))
    if "ERR" in ds and ds["ERR"].ndim == 4:
        err = ds["ERR"].data
        err = da.asarray(err) if not isinstance(err, da.Array) else err
        out["ERR"] = (RAMP_DIMS, err.astype(np.float32).rechunk(ch4))
    else:
        out["ERR"] = (RAMP_DIMS, da.zeros(sci.shape, dtype=np.float32, chunks=ch4))
    if "ZEROFRAME" in ds:
        z = ds["ZEROFRAME"].data
        z = da.asarray(z) if not isinstance(z, da.Array) else z
        out["ZEROFRAME"] = (("integration", "y", "x"), z.astype(np.float32).rechunk(((nints,), cy, cx)))
    for name, var in ds.variables.items():
        if name in out or name in ("SCI", "PIXELDQ", "GROUPDQ", "ERR", "ZEROFRAME"):
            continue
        if name in ds.dims:
            continue
        out[name] = var
    return out.jwst.update_meta({"model_type": "RampModel"}, model_type="RampModel", product="ramp")
