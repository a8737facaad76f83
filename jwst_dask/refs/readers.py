"""Open any JWST reference file (FITS or ASDF, real or generated) as a lazy ``xarray.Dataset``.

The Dataset follows the project's Dataset contract: one variable per FITS image extension
(``SCI``, ``DQ``, ``ERR``, ``COEFFS``, ...), backed by dask arrays that read their block straight
from the file (nothing is loaded at open time); one eager variable per table column, named
``"<EXT>.<column>"`` with dim ``"<EXT>_row"`` (``DQ_DEF.BIT``, ``PHOTOM.photmjsr``, ...), and
``attrs["tables"]`` keeping the column order. ``attrs["meta"]`` holds the reference's metadata
tree (``reftype``, ``instrument.detector``, ``subarray.xstart``, ...), ``attrs["header"]`` the
primary header. ASDF references become a Dataset whose ``attrs["tree"]`` is the ASDF tree and
``attrs["meta"]`` its ``meta`` node.

Dimension names by reference type and extension:

============================  =====================================================
2-D images                    ``("y", "x")``
``COEFFS`` (linearity)        ``("coeff", "y", "x")``
3-D darks / superbias cubes   ``("group", "y", "x")``
4-D darks, MIRI reset         ``("integration", "group", "y", "x")``
IPC kernel                    ``("ky", "kx")`` or ``("ky", "kx", "y", "x")``
other 3-D images              ``("plane", "y", "x")``
============================  =====================================================

With ``like=`` (a science Dataset) every ``(y, x)`` variable is cut to the science subarray
(science ``meta.subarray.xstart/ystart/xsize/ysize``, 1-based, against the reference's
``SUBSTRT1/2``) and chunked exactly like the science ``y``/``x`` dims, so blocks line up.

NaN rule per reference type (:data:`NAN_POLICY`): ``"reject"`` raises ReferenceFileError when the
file holds NaN (checked eagerly only where the array is small: the IPC kernel); ``"allowed"`` means
the step flags such pixels (GAIN, READNOISE, FLAT, ...). Integer arrays (DQ) cannot hold NaN: a
MASK whose DQ is not an integer array is rejected.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from astropy.io import fits
from dask.base import tokenize

from jwst_dask.errors import ReferenceFileError
from jwst_dask.fusion import cheap

__all__ = ["open_reference", "NAN_POLICY", "DEFAULT_TILE"]

#: default pixel tile of reference arrays opened without ``like``
DEFAULT_TILE = 512

#: NaN handling per reference type ("reject" or "allowed"; missing types: "allowed")
NAN_POLICY = {
    "ipc": "reject",
    "mask": "reject",
    "saturation": "allowed",
    "superbias": "allowed",
    "linearity": "allowed",
    "dark": "allowed",
    "gain": "allowed",
    "readnoise": "allowed",
    "flat": "allowed",
    "area": "allowed",
}

#: primary-header keyword -> metadata path of a reference file
_META_KEYWORDS = {
    "REFTYPE": "reftype",
    "DESCRIP": "description",
    "AUTHOR": "author",
    "USEAFTER": "useafter",
    "PEDIGREE": "pedigree",
    "TELESCOP": "telescope",
    "DATAMODL": "model_type",
    "INSTRUME": "instrument.name",
    "DETECTOR": "instrument.detector",
    "FILTER": "instrument.filter",
    "PUPIL": "instrument.pupil",
    "CHANNEL": "instrument.channel",
    "MODULE": "instrument.module",
    "BAND": "instrument.band",
    "SUBARRAY": "subarray.name",
    "SUBSTRT1": "subarray.xstart",
    "SUBSTRT2": "subarray.ystart",
    "SUBSIZE1": "subarray.xsize",
    "SUBSIZE2": "subarray.ysize",
    "FASTAXIS": "subarray.fastaxis",
    "SLOWAXIS": "subarray.slowaxis",
    "EXP_TYPE": "exposure.type",
    "READPATT": "exposure.readpatt",
    "NGROUPS": "exposure.ngroups",
    "NFRAMES": "exposure.nframes",
    "GROUPGAP": "exposure.groupgap",
    "NINTS": "exposure.nints",
    "NOUTPUTS": "exposure.noutputs",
}


class _FitsImage:
    """A lazily read window of one FITS image extension, sliced by dask block by block.

    Each block is read with a read-only ``np.memmap`` of the extension's data (only the bytes of
    the block's rows are touched) and converted from the FITS storage (big-endian, BZERO/BSCALE)
    to ``dtype``. Picklable (holds only the path and numbers), so Dask workers open the file
    themselves. ``offset`` shifts the last two axes: element ``[..., i, j]`` is file pixel
    ``[..., i + offset[0], j + offset[1]]``.
    """

    def __init__(self, path: str, data_offset: int, file_shape: tuple, bitpix: int, scaling: tuple,
                 shape: tuple, dtype: np.dtype, offset=(0, 0)):  # fmt: skip
        self.path, self.data_offset, self.file_shape = path, data_offset, tuple(file_shape)
        self.raw = np.dtype(_RAW[bitpix])
        self.bscale, self.bzero = scaling
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.offset = tuple(offset)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        full = []
        for axis, k in enumerate(key):
            start, stop, step = k.indices(self.shape[axis])
            shift = 0
            if self.ndim >= 2 and axis >= self.ndim - 2:
                shift = self.offset[axis - (self.ndim - 2)]
            full.append(slice(start + shift, stop + shift, step))
        mm = np.memmap(self.path, dtype=self.raw, mode="r", offset=self.data_offset, shape=self.file_shape)
        try:
            return np.asarray(_convert(mm[tuple(full)], self.dtype, self.bscale, self.bzero))  # one copy
        finally:
            del mm


#: FITS BITPIX -> on-disk dtype
_RAW = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _convert(block: np.ndarray, dtype: np.dtype, bscale: float, bzero: float) -> np.ndarray:
    """Stored FITS values -> a new array of logical values of ``dtype`` (unsigned via BZERO, or
    scaled); ``block`` may be a view of the file."""
    if dtype.kind == "u" and block.dtype.kind == "i" and bscale == 1:
        native = block.astype(f"i{block.dtype.itemsize}").view(dtype)
        native ^= np.array(1 << (8 * block.dtype.itemsize - 1), dtype=dtype)
        return native
    if bscale != 1 or bzero != 0:
        return (block.astype(np.float64) * bscale + bzero).astype(dtype)
    return block.astype(dtype)


def _image_dtype(header: fits.Header) -> np.dtype:
    bitpix = header["BITPIX"]
    bzero = header.get("BZERO", 0)
    bscale = header.get("BSCALE", 1)
    base = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32, -64: np.float64}[bitpix]
    if bscale == 1 and bitpix > 8 and bzero == 2 ** (bitpix - 1):
        return np.dtype(f"u{bitpix // 8}")
    if bscale != 1 or (bzero not in (0, None) and bitpix > 0):
        return np.dtype(np.float32 if bitpix in (8, 16) else np.float64)
    return np.dtype(base)


def _dims(reftype: str, extname: str, shape: tuple) -> tuple[str, ...]:
    ndim = len(shape)
    if reftype == "ipc" and extname == "SCI":
        return ("ky", "kx") if ndim == 2 else ("ky", "kx", "y", "x")[-ndim:]
    if ndim == 2:
        return ("y", "x")
    if ndim == 3:
        if extname == "COEFFS":
            return ("coeff", "y", "x")
        if reftype in ("dark", "superbias", "reset"):
            return ("group", "y", "x")
        return ("plane", "y", "x")
    if ndim == 4:
        return ("integration", "group", "y", "x")
    return tuple(f"{extname}_dim{i}" for i in range(ndim))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


#: data-model name (lower case, without "model") -> reference type, where they differ
_MODEL_REFTYPES = {
    "darkmiri": "dark",
    "persistencesat": "persat",
    "pixelarea": "area",
    "nrcimgphotom": "photom",
    "mirimgphotom": "photom",
    "trapparams": "trappars",
}


def _reftype(header: fits.Header) -> str:
    """The reference type: REFTYPE, else derived from the DATAMODL keyword."""
    if header.get("REFTYPE"):
        return str(header["REFTYPE"]).strip().lower()
    model = str(header.get("DATAMODL", "")).lower().removesuffix("model")
    return _MODEL_REFTYPES.get(model, model)


def _header_meta(header: fits.Header) -> dict:
    meta: dict = {}
    for key, path in _META_KEYWORDS.items():
        if key in header:
            node = meta
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = _jsonable(header[key])
    return meta


_NIR_SIZE = 2048


def _science_window(like: xr.Dataset) -> tuple[int, int, int, int, str]:
    """``(xstart, ystart, xsize, ysize, name)`` of the science subarray (1-based starts)."""
    sub = (like.attrs.get("meta") or {}).get("subarray") or {}
    xsize = int(sub.get("xsize") or like.sizes["x"])
    ysize = int(sub.get("ysize") or like.sizes["y"])
    if max(like.sizes.get("y", 0), like.sizes.get("x", 0)) > _NIR_SIZE:
        # NIRSpec IRS2: the subarray keywords describe the 2048 x 2048 normal pixels, the data (and
        # IRS2 references) also hold the interleaved reference pixels
        ysize, xsize = like.sizes["y"], like.sizes["x"]
    return int(sub.get("xstart") or 1), int(sub.get("ystart") or 1), xsize, ysize, str(sub.get("name", "?"))


def _like_chunks(like: xr.Dataset) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    for var in like.data_vars.values():
        if "y" in var.dims and "x" in var.dims and var.chunks is not None:
            chunks = dict(zip(var.dims, var.chunks))
            return chunks["y"], chunks["x"]
    return None


def _tile_chunks(size: int) -> tuple[int, ...]:
    return da.core.normalize_chunks((DEFAULT_TILE,), (size,))[0]


def _cut(
    name: str, ref_shape: tuple, ref_start: tuple[int, int], like: xr.Dataset
) -> tuple[int, int, int, int]:
    """``(y0, x0, ny, nx)``: the window of the reference that covers the science subarray."""
    xstart, ystart, xsize, ysize, subname = _science_window(like)
    ny, nx = ref_shape[-2:]
    y0, x0 = ystart - ref_start[1], xstart - ref_start[0]
    if y0 < 0 or x0 < 0 or y0 + ysize > ny or x0 + xsize > nx:
        raise ReferenceFileError(
            f"reference {name} of shape {ny}x{nx} (SUBSTRT1={ref_start[0]}, SUBSTRT2={ref_start[1]}) "
            f"cannot be cut to the science subarray {subname} of shape {ysize}x{xsize} at "
            f"xstart={xstart}, ystart={ystart}"
        )
    return y0, x0, ysize, xsize


def open_reference(
    path: str | Path, *, like: xr.Dataset | None = None, translate_dq: bool = True
) -> xr.Dataset:
    """Open a reference file as a lazy Dataset; with ``like``, cut and chunk it like that science data.

    With ``translate_dq`` (default), a DQ array whose file has a ``DQ_DEF`` table is translated
    from the file's bit assignments to the pipeline's flag values by flag name, as the official
    reference data models do (bits whose names are not pipeline flags are dropped).

    Raises :class:`ReferenceFileError` naming the file when it is missing or unreadable, when it
    cannot be cut to the science subarray (naming both shapes and the subarray), or when it
    breaks the NaN rule of its reference type.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"reference file {path} does not exist")
    if path.suffix.lower() == ".asdf":
        return _open_asdf(path)
    try:
        return _open_fits(path, like, translate_dq)
    except ReferenceFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReferenceFileError(f"reference file {path} is not a readable FITS file: {exc}") from exc


def _open_fits(path: Path, like: xr.Dataset | None, translate_dq: bool) -> xr.Dataset:
    with warnings.catch_warnings():
        # a truncated file gets our own one-line error below, not astropy's warning
        warnings.filterwarnings("ignore", message="File may have been truncated")
        hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
    with hdul:
        primary = hdul[0].header
        reftype = _reftype(primary)
        meta = _header_meta(primary)
        ref_start = (int(primary.get("SUBSTRT1", 1)), int(primary.get("SUBSTRT2", 1)))
        variables: dict[str, Any] = {}
        tables: dict[str, list[str]] = {}
        images = []
        for index, hdu in enumerate(hdul):
            name = (hdu.name or f"HDU{index}").upper()
            if isinstance(hdu, fits.BinTableHDU):
                if name == "ASDF":
                    continue
                data = hdu.data
                cols = list(hdu.columns.names) if data is not None else []
                tables[name] = cols
                for col in cols:
                    values = np.asarray(data[col])
                    if values.dtype.kind == "S":
                        values = np.char.decode(values, "ascii")
                    elif values.dtype.byteorder not in ("=", "|"):
                        values = values.astype(values.dtype.newbyteorder("="))
                    extra = tuple(f"{name}.{col}_dim{i}" for i in range(1, values.ndim))
                    variables[f"{name}.{col}"] = xr.Variable((f"{name}_row", *extra), values)
            elif hdu.is_image and hdu.header.get("NAXIS", 0) > 0:
                shape = tuple(hdu.header[f"NAXIS{i}"] for i in range(hdu.header["NAXIS"], 0, -1))
                scaling = (float(hdu.header.get("BSCALE", 1)), float(hdu.header.get("BZERO", 0)))
                layout = (hdu.fileinfo()["datLoc"], hdu.header["BITPIX"], scaling)
                images.append((index, name, shape, _image_dtype(hdu.header), layout))
    file_size = path.stat().st_size
    for _index, name, shape, _dtype, (data_offset, bitpix, _scaling) in images:
        end = data_offset + int(np.prod(shape)) * abs(int(bitpix)) // 8
        if end > file_size:
            raise ReferenceFileError(
                f"reference file {path}: truncated: extension {name} needs {end} bytes, "
                f"the file has {file_size}"
            )
    if like is not None:
        like_chunks = _like_chunks(like)
    mtime = path.stat().st_mtime_ns
    sizes: dict[str, int] = {}
    for _index, name, shape, dtype, (data_offset, bitpix, scaling) in images:
        dims = _dims(reftype, name, shape)
        # a leading axis whose length differs from the same axis of an earlier extension (the MIRI
        # dark DQ is (nints, 1, y, x)) gets its own name, e.g. "group_dq"
        dims = tuple(
            d if d in ("y", "x") or sizes.setdefault(d, n) == n else f"{d}_{name.lower()}"
            for d, n in zip(dims, shape)
        )
        offset, out_shape = (0, 0), shape
        if dims[-2:] == ("y", "x") and like is not None:
            y0, x0, ny, nx = _cut(path.name, shape, ref_start, like)
            offset, out_shape = (y0, x0), (*shape[:-2], ny, nx)
        chunks: tuple = tuple((n,) for n in out_shape)
        if dims[-2:] == ("y", "x"):
            if like is not None and like_chunks is not None:
                ych, xch = like_chunks
                if sum(ych) != out_shape[-2] or sum(xch) != out_shape[-1]:
                    raise ReferenceFileError(
                        f"reference {path.name} cut to {out_shape[-2]}x{out_shape[-1]} does not match "
                        f"the science data of shape {sum(ych)}x{sum(xch)}"
                    )
            else:
                ych, xch = _tile_chunks(out_shape[-2]), _tile_chunks(out_shape[-1])
            chunks = (*chunks[:-2], ych, xch)
        source = _FitsImage(str(path), data_offset, shape, bitpix, scaling, out_shape, dtype, offset)
        array = da.from_array(
            source,
            chunks=chunks,
            name=f"ref-{name.lower()}-{tokenize(str(path), mtime, name, offset, chunks)}",
            meta=np.empty((0,) * len(out_shape), dtype=dtype),
        )
        variables[name] = xr.Variable(dims, array)
    ds = xr.Dataset(variables)
    ds.attrs.update(
        meta=meta,
        header={k: _jsonable(v) for k, v in primary.items() if k not in ("COMMENT", "HISTORY", "")},
        tables=tables,
        reftype=reftype,
        filename=path.name,
        model_type=meta.get("model_type", ""),
    )
    _check_nan(ds, reftype, path)
    pairs = tuple(_dq_translation(ds))
    if translate_dq and pairs:
        for name in ("DQ", "PIXELDQ"):
            if name in ds and ds[name].dtype.kind in "iu":
                data = ds[name].data.map_blocks(_translate_block, pairs, dtype=np.uint32)
                ds[name] = (ds[name].dims, data)
    return ds


def _dq_translation(ds: xr.Dataset) -> list[tuple[int, int]]:
    """``[(file bit value, pipeline flag value)]`` from the DQ_DEF table (names not in the flag
    table are dropped, as the official data models do)."""
    from jwst_dask.dq import FLAGS

    if "DQ_DEF.VALUE" not in ds or "DQ_DEF.NAME" not in ds:
        return []
    pairs = []
    for value, name in zip(ds["DQ_DEF.VALUE"].values, ds["DQ_DEF.NAME"].values):
        flag = FLAGS.get(str(name).strip().upper())
        if flag is not None and int(value) != 0:
            pairs.append((int(value), int(flag)))
    return pairs


@cheap
def _translate_block(block: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Reference DQ -> pipeline flags. A single bit that keeps its value (the usual case) is
    copied with one mask for all such bits; any other pair costs a pass of its own."""
    block = block.astype(np.uint32, copy=False)
    same = 0
    others = []
    for value, flag in pairs:
        if value == flag and value & (value - 1) == 0:
            same |= value
        else:
            others.append((value, flag))
    out = block & np.uint32(same)
    for value, flag in others:
        hit = (block & np.uint32(value)) != 0
        out |= hit.astype(np.uint32) * np.uint32(flag)
    return out


def _check_nan(ds: xr.Dataset, reftype: str, path: Path) -> None:
    if NAN_POLICY.get(reftype, "allowed") != "reject":
        return
    if reftype == "mask":
        if "DQ" not in ds:
            raise ReferenceFileError(f"MASK reference {path.name} has no DQ extension")
        if ds["DQ"].dtype.kind not in "iu":
            raise ReferenceFileError(
                f"MASK reference {path.name} has a {ds['DQ'].dtype} DQ array (must be integer, no NaN)"
            )
    if reftype == "ipc" and "SCI" in ds and ds["SCI"].size <= 10_000:
        if not np.isfinite(ds["SCI"].values).all():
            raise ReferenceFileError(f"IPC reference {path.name} has NaN or infinite kernel values")


def _open_asdf(path: Path) -> xr.Dataset:
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = {k: v for k, v in af.tree.items() if k not in ("asdf_library", "history")}
            tree = _materialise(tree)
    except Exception as exc:
        raise ReferenceFileError(f"reference file {path} is not a readable ASDF file: {exc}") from exc
    meta = tree.get("meta", {}) if isinstance(tree.get("meta"), dict) else {}
    variables = {}
    for key, value in tree.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim in (1, 2):
            dims = ("y", "x") if value.ndim == 2 else (f"{key.upper()}_dim0",)
            variables[key.upper()] = (dims, value)
    ds = xr.Dataset(variables)
    reftype = str(meta.get("reftype", "")).lower()
    ds.attrs.update(
        meta=_json_tree(meta),
        tree=tree,
        reftype=reftype,
        filename=path.name,
        model_type=str(meta.get("model_type", "")),
        tables={},
    )
    return ds


def _materialise(node: Any) -> Any:
    """Copy an ASDF tree into plain containers with numpy arrays (usable after the file closes)."""
    if isinstance(node, dict):
        return {k: _materialise(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return type(node)(_materialise(v) for v in node)
    if (
        hasattr(node, "__array__")
        and not isinstance(node, np.ndarray)
        and type(node).__module__.startswith("asdf")
    ):
        return np.array(node)
    return node


def _json_tree(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _json_tree(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_json_tree(v) for v in node]
    return _jsonable(node)
