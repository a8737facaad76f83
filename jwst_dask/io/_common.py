"""Pieces shared by the FITS reader and writer: dims of each extension, structural keywords,
model/product guesses, and the conversion of metadata values to JSON-compatible ones."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Keywords that describe the FITS structure itself; never metadata, never copied from extra_fits.
STRUCTURAL = frozenset(
    {
        "SIMPLE",
        "BITPIX",
        "NAXIS",
        "EXTEND",
        "XTENSION",
        "PCOUNT",
        "GCOUNT",
        "EXTNAME",
        "EXTVER",
        "EXTLEVEL",
        "BZERO",
        "BSCALE",
        "BLANK",
        "TFIELDS",
        "THEAP",
        "CHECKSUM",
        "DATASUM",
        "END",
        "",
    }
)
_STRUCTURAL_PREFIXES = ("NAXIS", "TTYPE", "TFORM", "TUNIT", "TDIM", "TNULL", "TSCAL", "TZERO", "TDISP")

#: Model -> product kind used when a file name carries no known suffix.
MODEL_PRODUCTS = {
    "Level1bModel": "uncal",
    "RampModel": "ramp",
    "ImageModel": "rate",
    "CubeModel": "rateints",
}

#: Extensions shaped exactly like SCI.
SAME_AS_SCI = frozenset({"ERR", "DQ", "GROUPDQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "WHT"})


def is_structural(keyword: str) -> bool:
    """True for a keyword that describes FITS structure (BITPIX, NAXISn, TFORMn, ...)."""
    key = keyword.upper()
    return key in STRUCTURAL or (
        key.startswith(_STRUCTURAL_PREFIXES) and key.rstrip("0123456789") in _STRUCTURAL_PREFIXES
    )


def dims_for(name: str, ndim: int, model: str | None) -> tuple[str, ...]:
    """The Dataset dims of an array extension (see the Dataset contract in docs/design.md)."""
    if ndim == 4:
        return ("integration", "group", "y", "x_refout" if name == "REFOUT" else "x")
    if ndim == 3:
        plane = name == "CON" or model in ("IFUCubeModel", "TrapsFilledModel", "ImageModel")
        return ("plane" if plane else "integration", "y", "x")
    if ndim == 2:
        return ("y", "x")
    if ndim == 1:
        return (f"{name}_x",)
    return tuple(f"{name}_dim{i}" for i in range(ndim))


def guess_model(sci_ndim: int | None, sci_dtype: np.dtype | None) -> str:
    """A model from the SCI array alone: 4-D uint16 -> Level1bModel, 4-D -> RampModel, 3-D ->
    CubeModel, else ImageModel."""
    if sci_ndim == 4:
        return "Level1bModel" if sci_dtype is not None and np.dtype(sci_dtype) == np.uint16 else "RampModel"
    if sci_ndim == 3:
        return "CubeModel"
    return "ImageModel"


def to_plain(value: Any, path: str, objects: dict[str, Any]) -> Any:
    """A JSON-compatible copy of ``value``; objects that have no JSON form (a gwcs, ...) are put in
    ``objects[path]`` and dropped from the copy (returned as ``_DROP``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            plain = to_plain(v, f"{path}.{k}" if path else str(k), objects)
            if plain is not _DROP:
                out[str(k)] = plain
        return out
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{path}[{i}]", objects) for i, v in enumerate(value)]
        if any(v is _DROP for v in items):
            objects[path] = value
            return _DROP
        return items
    if isinstance(value, np.ndarray) and value.size <= 10000:
        return to_plain(value.tolist(), path, objects)
    try:  # astropy Time and friends
        from astropy.time import Time

        if isinstance(value, Time):
            return value.isot
    except ImportError:  # pragma: no cover
        pass
    objects[path] = value
    return _DROP


class _Drop:
    def __repr__(self) -> str:
        return "<drop>"


_DROP = _Drop()
