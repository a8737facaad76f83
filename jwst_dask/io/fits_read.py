"""Open a JWST FITS product lazily as an xarray Dataset (the Dataset contract of docs/design.md).

Only headers, the small table extensions and the ASDF extension are read at open. Each image
extension becomes a dask array over a :class:`FitsSection`: a small picklable object holding the
file path, the byte offset of the data section, its shape and on-disk dtype. Whichever worker runs a
task memory-maps just that section and slices it, converting big-endian data to native order and
FITS pseudo-unsigned integers (BZERO = 2**(bits-1)) back to unsigned ones. So opening is cheap,
and reading scales out on a cluster with a shared file system.

Metadata: the ``meta`` tree of the ASDF extension (if any), overlaid with every header keyword that
the data-model schema maps to a metadata path (keywords win, as in stdatamodels). Other
non-structural keywords go to ``attrs["extra_fits"]``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from jwst_dask.errors import InputFileError, MissingKeywordError, ShapeMismatchError
from jwst_dask.io import _common, asdf_tree
from jwst_dask.io.chunks import DEFAULT_TILE, ramp_chunks
from jwst_dask.io.naming import suffix_of
from jwst_dask.io.schema import ModelLayout, model_for_suffix, model_layout
from jwst_dask.io.sections import read_region
from jwst_dask.meta import get_path, set_path

__all__ = ["FitsSection", "open_fits", "REQUIRED_RAMP_KEYWORDS"]

#: Keywords a ramp (uncal / ramp) must carry: (FITS keyword, meta path).
REQUIRED_RAMP_KEYWORDS = (
    ("INSTRUME", "instrument.name"),
    ("DETECTOR", "instrument.detector"),
    ("EXP_TYPE", "exposure.type"),
    ("NGROUPS", "exposure.ngroups"),
    ("NINTS", "exposure.nints"),
)


class FitsSection:
    """A lazily indexed view of one image extension's data section (picklable, tiny).

    ``section[key]`` memory-maps the section, slices it and returns a native-order numpy array of
    ``dtype`` (the logical dtype: uint16 for BITPIX 16 with BZERO 32768, ...).
    """

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], disk_dtype: str, bzero=0, bscale=1):
        self.path = str(path)
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.disk_dtype = np.dtype(disk_dtype)
        self.bzero = bzero
        self.bscale = bscale
        self.dtype = _logical_dtype(self.disk_dtype, bzero, bscale)
        self.ndim = len(self.shape)

    def __repr__(self) -> str:
        return (
            f"FitsSection({Path(self.path).name!r}, offset={self.offset}, shape={self.shape}, {self.dtype})"
        )

    def __getitem__(self, key) -> np.ndarray:
        if 0 in self.shape:
            return np.zeros(self.shape, dtype=self.dtype)[key]
        disk = read_region(self.path, self.offset, self.shape, self.disk_dtype, key, max_run_bytes=_MAP_RUNS)
        if disk is not None:  # short runs read one by one: no mapped file pages in memory
            native_order = self.disk_dtype.newbyteorder("=")
            if native_order != self.disk_dtype:
                disk = disk.byteswap(inplace=True).view(native_order)
            return _to_logical(disk, self.dtype, self.bzero, self.bscale)
        mm = np.memmap(self.path, dtype=self.disk_dtype, mode="r", offset=self.offset, shape=self.shape)
        try:
            view = mm[key]
            native = np.empty(view.shape, dtype=self.disk_dtype.newbyteorder("="))
            native[...] = view  # the one copy, byte-swapped on the way
        finally:
            del mm, view
        return _to_logical(native, self.dtype, self.bzero, self.bscale)


#: Regions whose runs are at least this long are read through a memory map (one pass that
#: copies and byte-swaps; the pages it maps are the data's own); shorter runs, e.g. a 4-row block
#: of every frame of a long time series, one by one (:mod:`jwst_dask.io.sections`).
_MAP_RUNS = 1 << 16


def _logical_dtype(disk: np.dtype, bzero, bscale) -> np.dtype:
    if disk.kind == "i" and bscale == 1 and disk.itemsize > 1 and bzero == 2 ** (8 * disk.itemsize - 1):
        return np.dtype(f"u{disk.itemsize}")
    if disk.kind == "u" and disk.itemsize == 1 and bscale == 1 and bzero == -128:
        return np.dtype("i1")
    if bzero == 0 and bscale == 1:
        return disk.newbyteorder("=")
    return np.dtype("f8") if disk.itemsize >= 4 else np.dtype("f4")


def _to_logical(native: np.ndarray, dtype: np.dtype, bzero, bscale) -> np.ndarray:
    """Apply BZERO/BSCALE to a native-order array (in place for the pseudo-unsigned case)."""
    if dtype.kind == "u" and native.dtype.kind == "i":
        out = native.view(dtype)
        out ^= np.array(1 << (8 * dtype.itemsize - 1), dtype=dtype)
        return out
    if dtype.kind == "i" and native.dtype.kind == "u":
        out = native.view(dtype)
        out ^= np.array(-128, dtype=dtype)
        return out
    if bzero == 0 and bscale == 1:
        return native
    return (native * bscale + bzero).astype(dtype)


_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def open_fits(
    path: str | os.PathLike,
    chunks: dict[str, int] | None = None,
    *,
    model_type: str | None = None,
) -> xr.Dataset:
    """Open FITS product ``path`` as a lazy Dataset (see :func:`jwst_dask.io.open_product`)."""
    from astropy.io import fits

    path = Path(path)
    fname = str(path)
    if not path.exists():
        raise InputFileError(f"{fname}: no such file")
    if path.is_dir():
        raise InputFileError(f"{fname}: is a folder, not a FITS file or zarr store")
    filesize = path.stat().st_size
    with Path(fname).open("rb") as fh:
        start = fh.read(9)
    if start[:2] == b"\x1f\x8b":
        raise InputFileError(
            f"{fname}: a gzip-compressed file; decompress it first (pixels are memory-mapped)"
        )
    if start != b"SIMPLE  =":
        raise InputFileError(f"{fname}: not a FITS file (no SIMPLE card at the start)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(fname, memmap=False, lazy_load_hdus=False, do_not_scale_image_data=True)
        except Exception as exc:  # astropy raises OSError / ValueError / VerifyError
            raise InputFileError(f"{fname}: not a readable FITS file ({exc})") from exc
    try:
        for w in caught:
            if "truncated" in str(w.message):
                raise InputFileError(f"{fname}: truncated FITS file ({w.message})")
        return _build_dataset(hdul, fname, filesize, chunks, model_type)
    finally:
        hdul.close()


def _build_dataset(hdul, fname: str, filesize: int, chunks, model_type: str | None) -> xr.Dataset:
    from astropy.io import fits

    images: list[tuple[str, Any]] = []
    tables: list[tuple[str, Any]] = []
    asdf_hdu = None
    for i, hdu in enumerate(hdul):
        name = (hdu.name or ("PRIMARY" if i == 0 else f"HDU{i}")).upper()
        if hdu.ver and hdu.ver > 1:
            name = f"{name}_{hdu.ver}"
        nbytes = _data_nbytes(hdu.header)
        if nbytes and hdu._data_offset + nbytes > filesize:
            raise InputFileError(
                f"{fname}: truncated FITS file: extension {name} needs {nbytes} data bytes at offset "
                f"{hdu._data_offset}, the file has {filesize} bytes"
            )
        if name == "ASDF":
            asdf_hdu = hdu
        elif isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
            tables.append((name, hdu))
        elif i > 0 and hdu.header.get("NAXIS", 0) > 0:
            images.append((name, hdu))

    primary = hdul[0].header
    sci = next((h for n, h in images if n == "SCI"), None)
    sci_shape = _hdu_shape(sci.header) if sci is not None else None
    sci_dtype = _section(sci, fname).dtype if sci is not None else None

    model = model_type or primary.get("DATAMODL") or model_for_suffix(suffix_of(fname))
    layout: ModelLayout | None = None
    if model:
        try:
            layout = model_layout(str(model))
        except (ValueError, ImportError):
            layout = None
    if layout is None:
        model = _common.guess_model(len(sci_shape) if sci_shape else None, sci_dtype)
        layout = model_layout(model)
    model = layout.model

    meta, objects = _asdf_meta(asdf_hdu, fname)
    extra_fits = _apply_keywords(hdul, layout, meta)

    product = suffix_of(fname) or _common.MODEL_PRODUCTS.get(model)

    if model in ("Level1bModel", "RampModel"):
        for keyword, mpath in REQUIRED_RAMP_KEYWORDS:
            if get_path(meta, mpath) is None:
                raise MissingKeywordError(f"{fname}: required keyword {keyword} ({mpath}) is missing")

    # arrays
    sections = {name: _section(hdu, fname) for name, hdu in images}
    _check_shapes(fname, sections, meta, per_integration=bool(product and product.endswith("ints")))
    tile_chunks = _default_chunks(sections, chunks)
    data_vars: dict[str, Any] = {}
    dim_sizes: dict[str, int] = {}
    token_base = (fname, Path(fname).stat().st_mtime_ns, filesize)
    for name, sec in sections.items():
        dims = list(_common.dims_for(name, sec.ndim, model))
        for i, d in enumerate(dims):  # a dim name must mean one size across the Dataset
            if dim_sizes.setdefault(d, sec.shape[i]) != sec.shape[i]:
                dims[i] = f"{d}_{name.lower()}"
                dim_sizes.setdefault(dims[i], sec.shape[i])
        ch = tuple(_chunk_for(d, n, tile_chunks) for d, n in zip(dims, sec.shape))
        arr = da.from_array(
            sec,
            chunks=ch,
            name=f"fits-{name.lower()}-" + tokenize(*token_base, sec.offset, sec.shape, str(sec.dtype), ch),
            lock=False,
            asarray=False,
            meta=np.empty((0,) * sec.ndim, dtype=sec.dtype),
        )
        data_vars[name] = (tuple(dims), arr)

    table_cols: dict[str, list[str]] = {}
    for name, hdu in tables:
        data = hdu.data
        cols = list(hdu.columns.names) if hdu.columns is not None else []
        table_cols[name] = cols
        for col in cols:
            values = np.asarray(data[col]) if data is not None else np.zeros(0)
            values = values.astype(values.dtype.newbyteorder("="), copy=False)
            data_vars[f"{name}.{col}"] = (
                (f"{name}_row", *(f"{name}.{col}_dim{i}" for i in range(1, values.ndim))),
                values,
            )

    set_path(meta, "model_type", model)
    attrs = {
        "meta": meta,
        "extra_fits": extra_fits,
        "model_type": model,
        "product": product,
        "filename": Path(fname).name,
        "tables": table_cols,
    }
    if objects:
        attrs["meta_objects"] = objects
    return xr.Dataset(data_vars, attrs=attrs)


def _data_nbytes(header) -> int:
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    n = 1
    for i in range(1, naxis + 1):
        n *= int(header.get(f"NAXIS{i}", 0))
    n = abs(int(header.get("BITPIX", 8))) // 8 * n * int(header.get("GCOUNT", 1))
    return n + int(header.get("PCOUNT", 0))


def _hdu_shape(header) -> tuple[int, ...]:
    naxis = int(header.get("NAXIS", 0))
    return tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))


def _section(hdu, fname: str) -> FitsSection:
    h = hdu.header
    bitpix = int(h["BITPIX"])
    if bitpix not in _BITPIX:
        raise InputFileError(f"{fname}: extension {hdu.name}: unsupported BITPIX {bitpix}")
    return FitsSection(
        fname,
        hdu._data_offset,
        _hdu_shape(h),
        _BITPIX[bitpix],
        bzero=h.get("BZERO", 0),
        bscale=h.get("BSCALE", 1),
    )


def _asdf_meta(asdf_hdu, fname: str) -> tuple[dict, dict]:
    """The ``meta`` tree of the ASDF extension as plain dicts, and the objects that have no plain
    form (by dotted path)."""
    if asdf_hdu is None:
        return {}, {}
    try:
        raw = np.asarray(asdf_hdu.data["ASDF_METADATA"][0]).tobytes()
        return asdf_tree.read_meta(raw)
    except Exception as exc:
        raise InputFileError(f"{fname}: unreadable ASDF extension ({exc})") from exc


def _apply_keywords(hdul, layout: ModelLayout, meta: dict) -> dict[str, list[list]]:
    """Overlay the mapped header keywords on ``meta``; return the unmapped ones as extra_fits."""
    by_hdu = layout.keywords_by_hdu()
    extra: dict[str, list[list]] = {}
    for i, hdu in enumerate(hdul):
        hname = "PRIMARY" if i == 0 else (hdu.name or f"HDU{i}").upper()
        if hname == "ASDF":
            continue
        mapped = by_hdu.get(hname, {})
        for card in hdu.header.cards:
            key = card.keyword
            if _common.is_structural(key):
                continue
            value = card.value
            if key in ("HISTORY", "COMMENT"):
                extra.setdefault(hname, []).append([key, str(value), ""])
                continue
            kw = mapped.get(key)
            if kw is None:
                if not isinstance(value, (str, int, float, bool)):
                    continue
                extra.setdefault(hname, []).append([key, value, card.comment])
                continue
            if not isinstance(value, (str, int, float, bool)):  # undefined value
                continue
            set_path(meta, kw.path, _coerce(value, kw.type))
    return extra


def _coerce(value, typ: str | None):
    if typ == "string" and not isinstance(value, str):
        return str(value)
    if typ == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if typ == "number" and isinstance(value, bool):
        return float(value)
    return value


def _check_shapes(
    fname: str, sections: dict[str, FitsSection], meta: dict, *, per_integration: bool = False
) -> None:
    sci = sections.get("SCI")
    if sci is None:
        return
    shape = sci.shape
    for name, sec in sections.items():
        if name == "SCI":
            continue
        if name in _common.SAME_AS_SCI and sec.ndim == sci.ndim and sec.shape != shape:
            raise ShapeMismatchError(f"{fname}: extension {name} has shape {sec.shape}, SCI has {shape}")
        if name == "REFOUT":
            # a quarter of the pixels of each frame (ncols/4 x nrows; some files store nrows/4 x ncols)
            if (
                sec.ndim != 4
                or sec.shape[:2] != shape[:2]
                or 4 * sec.shape[2] * sec.shape[3] != shape[2] * shape[3]
            ):
                raise ShapeMismatchError(
                    f"{fname}: extension REFOUT has shape {sec.shape}, which does not match SCI {shape}"
                )
            continue
        if sec.ndim >= 2 and sci.ndim >= 2 and sec.shape[-2:] != shape[-2:]:
            raise ShapeMismatchError(
                f"{fname}: extension {name} has {sec.shape[-2:]} pixels (ny, nx), SCI has {shape[-2:]}"
            )
        if name == "ZEROFRAME" and sci.ndim == 4 and sec.ndim == 3 and sec.shape[0] != shape[0]:
            raise ShapeMismatchError(
                f"{fname}: extension ZEROFRAME has {sec.shape[0]} integrations, SCI has {shape[0]}"
            )
    ngroups = get_path(meta, "exposure.ngroups")
    nints = _expected_nints(meta)
    if sci.ndim == 4:
        if isinstance(ngroups, int) and shape[1] != ngroups:
            raise ShapeMismatchError(f"{fname}: SCI has {shape[1]} groups but NGROUPS = {ngroups}")
        if nints is not None and shape[0] != nints[0]:
            raise ShapeMismatchError(f"{fname}: SCI has {shape[0]} integrations but {nints[1]}")
    elif sci.ndim == 3 and nints is not None and per_integration:
        if shape[0] != nints[0]:
            raise ShapeMismatchError(f"{fname}: SCI has {shape[0]} integrations but {nints[1]}")


def _expected_nints(meta: dict) -> tuple[int, str] | None:
    """Integrations the SCI array must hold (a segment holds INTSTART..INTEND), and why."""
    start = get_path(meta, "exposure.integration_start")
    end = get_path(meta, "exposure.integration_end")
    if isinstance(start, int) and isinstance(end, int) and end >= start:
        return end - start + 1, f"INTSTART..INTEND = {start}..{end}"
    nints = get_path(meta, "exposure.nints")
    if isinstance(nints, int):
        return nints, f"NINTS = {nints}"
    return None


def _default_chunks(sections: dict[str, FitsSection], chunks) -> dict[str, int]:
    """Chunk size per dim name: the ramp policy for SCI's tiles, then the caller's overrides."""
    out: dict[str, int] = {}
    sci = sections.get("SCI")
    if sci is not None and sci.ndim >= 2:
        ty, tx = ramp_chunks(sci.shape, sci.dtype.itemsize)[-2:]
        out.update(y=ty, x=tx)
    else:
        out.update(y=DEFAULT_TILE, x=DEFAULT_TILE)
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        chunks = {"y": chunks, "x": chunks}
    if chunks:
        if not isinstance(chunks, dict):
            raise TypeError("chunks must be a dict {dim name: size} or an int pixel tile")
        out.update({k: int(v) for k, v in chunks.items()})
    return out


def _chunk_for(dim: str, size: int, chunks: dict[str, int]) -> int:
    c = chunks.get(dim)
    if c is None and "_" in dim:
        c = chunks.get(dim.split("_")[0]) if dim.split("_")[0] in ("y", "x") else None
    if c is None or c <= 0:
        return max(size, 1)
    return max(min(c, size), 1)
