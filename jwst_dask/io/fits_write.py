"""Write a Dataset as a JWST-format FITS product, block by block from the Dask graph.

Layout (as stdatamodels writes it): a primary HDU with no data holding the primary keywords mapped
from ``meta`` (and the primary ``extra_fits`` cards); one image HDU per array variable, SCI first,
with the data model's dtype (unsigned ints as FITS pseudo-unsigned, BZERO = 2**(bits-1)) and the
keywords that the schema puts in that HDU (BUNIT, WCS, ...); one binary table per table (GROUP,
INT_TIMES, ...); last the ``ASDF`` table HDU (one row, one byte-array column ``ASDF_METADATA``)
holding the ASDF tree ``{"meta": ...}``.

How: the headers, tables and ASDF extension are written first into a pre-sized file whose image
data sections are left as holes; then ``da.store(..., lock=False)`` hands every block to a small
picklable :class:`FitsBlockTarget` that writes it in place on whichever worker computed the block
(one ``pwrite`` for a block of whole rows, a memory map of its section otherwise). Nothing is
gathered in the client, so this works on a distributed cluster (the output folder must be visible
to the workers). The file is written under a temporary
name in the output folder and renamed into place only when every block is written; on any error the
temporary file is removed, so a failed write leaves nothing.

Deferred writes (several products from one graph, e.g. ``_rate`` and ``_rateints`` from one
ramp-fitting pass)::

    pending = write_products([(rate, "x_rate.fits"), (rateints, "x_rateints.fits")], compute=False)
    with dask.diagnostics.ProgressBar():     # or distributed.progress(...)
        pending.compute()                    # writes every block, then renames all files into place

``pending.delayed`` is the single Dask ``Delayed`` of all the block writes, if a caller wants to
compute it itself; it must then call ``pending.finalize()`` on success (renames, returns the paths)
or ``pending.abort()`` on failure (removes the temporary files). With a distributed client::

    future = client.compute(pending.delayed)
    distributed.progress(future)
    try:
        future.result()
    except BaseException:
        pending.abort()
        raise
    pending.finalize()
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import math
import os
import uuid
import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed

from jwst_dask.errors import InputFileError, JwstDaskError
from jwst_dask.io import _common, asdf_tree
from jwst_dask.io.naming import suffix_of
from jwst_dask.io.schema import ModelLayout, model_for_suffix, model_layout
from jwst_dask.io.sections import write_region
from jwst_dask.meta import get_path, set_path

__all__ = ["FitsBlockTarget", "PendingWrite", "store_blocks", "write_product", "write_products"]

_BLOCK = 2880


class FitsBlockTarget:
    """``target[region] = block`` writes a block into one image data section of a pre-sized file.

    Picklable and tiny (a path, an offset, a shape and the on-disk dtype): ``da.store`` ships it to
    the workers, each of which writes its block run by run (:mod:`jwst_dask.io.sections`).
    Unsigned integers are stored FITS-style (sign bit flipped, signed big-endian). With
    ``fresh=True`` (the section is a hole of a newly sized file, so it already reads as zero
    bytes) blocks whose bytes are all zero are not written: a ramp's lazy-zero ERR costs no I/O.
    """

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], dtype: str, fresh: bool = False):
        self.path = str(path)
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)  # the logical dtype (uint16, float32, ...)
        self.disk_dtype = _disk_dtype(self.dtype)
        self.fresh = bool(fresh)

    def __repr__(self) -> str:
        return f"FitsBlockTarget({Path(self.path).name!r}, offset={self.offset}, shape={self.shape})"

    def __setitem__(self, key, value) -> None:
        value = np.asarray(value).astype(self.dtype, copy=False)
        if value.dtype.kind == "u" and value.dtype.itemsize > 1:
            flip = np.array(1 << (8 * value.dtype.itemsize - 1), dtype=value.dtype)
            value = (value ^ flip).view(f"i{value.dtype.itemsize}")
        elif value.dtype.kind == "b":
            value = value.view("u1")
        if self.fresh and value.flags.c_contiguous and not value.view(np.uint8).any():
            return  # all zero bytes (in any byte order): the hole already reads so
        if write_region(self.path, self.offset, self.shape, self.disk_dtype, key, value):
            return  # run by run: no mapped file pages in the process's memory
        mm = np.memmap(self.path, dtype=self.disk_dtype, mode="r+", offset=self.offset, shape=self.shape)
        try:
            mm[key] = value  # numpy swaps to big-endian
        finally:
            # no msync: the pages are in the shared page cache, and the kernel writes them back;
            # closing the mapping is enough for the renamed file to be complete on a POSIX FS
            del mm


def store_blocks(
    sources: list[da.Array], targets: list[FitsBlockTarget], labels: list[Hashable] | None = None
) -> Delayed:
    """One Delayed that writes every block of every source into its target.

    Unlike ``da.store`` (one task per block of each array), the blocks of the arrays of one
    ``label`` (one exposure: its ``_rate`` and ``_rateints`` arrays) that cover the same pixel
    stripe (the last two block indices) and the same blocks of any further axis split in several
    chunks (an integration chunk of a time series) are written by one task: the ten image arrays
    of a stripe are one task, not ten, and stripe fusion (:mod:`jwst_dask.fusion`) can run that
    stripe's chain, from the raw read to the writes, as one task. Without labels every source is
    its own label.
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = "store-stripe-" + tokenize(*(s.name for s in sources), *(repr(t) for t in targets))
    groups: dict[tuple, list] = defaultdict(list)
    labels = list(range(len(sources))) if labels is None else list(labels)
    for n, (src, tgt, label) in enumerate(zip(sources, targets, labels, strict=True)):
        if src.shape != tgt.shape:
            raise JwstDaskError(f"{tgt!r}: the array to write has shape {src.shape}")
        starts = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in src.chunks]
        for idx in np.ndindex(*src.numblocks):
            region = tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(starts, idx))
            if src.ndim >= 2:  # leading axes split in chunks count; a single chunk does not
                lead = tuple(i for d, i in enumerate(idx[:-2]) if src.numblocks[d] > 1)
                gkey = (label, lead, *idx[-2:])
            else:
                gkey = (("flat", n, idx), (), 0, 0)
            groups[gkey].append((tgt, region, (src.name, *idx)))
    layer: dict = {}
    for g, (gkey, writes) in enumerate(groups.items()):
        layer[(name, g, *gkey[2:])] = (
            _write_blocks,
            [t for t, _, _ in writes],
            [r for _, r, _ in writes],
            [k for _, _, k in writes],
        )
    done = "store-done-" + name.removeprefix("store-stripe-")
    layer[done] = (_done, list(k for k in layer))
    graph = HighLevelGraph.from_collections(done, layer, dependencies=sources)
    return Delayed(done, graph)


def _write_blocks(targets: list[FitsBlockTarget], regions: list[tuple], blocks: list[np.ndarray]) -> None:
    for target, region, block in zip(targets, regions, blocks, strict=True):
        target[region] = block


def _done(_results: list) -> None:
    return None


def _disk_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.dtype("u1")
    if dtype.kind == "u" and dtype.itemsize > 1:
        return np.dtype(f">i{dtype.itemsize}")
    if dtype.kind == "i" and dtype.itemsize == 1:
        raise JwstDaskError("int8 arrays are not supported in FITS products")
    return dtype.newbyteorder(">")


@dataclass
class PendingWrite:
    """Block writes not yet computed, and the renames that complete them (see module docstring)."""

    delayed: Any
    files: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary, final)

    @property
    def paths(self) -> list[Path]:
        """The final paths."""
        return [final for _, final in self.files]

    def compute(self, scheduler: str | None = None) -> list[Path]:
        """Write every block (:func:`jwst_dask.cluster.compute`: the current client, else Dask's
        local ``scheduler``), then rename; clean up on error."""
        from jwst_dask import cluster

        try:
            cluster.compute(self.delayed, progress=False, scheduler=scheduler)
        except BaseException:
            self.abort()
            raise
        return self.finalize()

    def finalize(self) -> list[Path]:
        """Rename the completed temporary files into place; return the final paths."""
        try:
            for tmp, final in self.files:
                Path(tmp).replace(final)
        except BaseException:
            self.abort()
            raise
        return self.paths

    def abort(self) -> None:
        """Remove the temporary files (nothing is left of a failed write)."""
        for tmp, _ in self.files:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


def write_product(
    ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = True, compute: bool = True
) -> Path | PendingWrite:
    """Write ``ds`` as a JWST-format FITS product at ``path``, block by block.

    Returns the path written, or with ``compute=False`` a :class:`PendingWrite` whose
    ``compute()`` writes it. Raises ``InputFileError`` when ``path`` exists and not ``overwrite``.
    """
    result = write_products([(ds, path)], compute=compute, overwrite=overwrite)
    return result[0] if compute else result


def write_products(
    items: Iterable[tuple[xr.Dataset, str | os.PathLike]],
    compute: bool = True,
    *,
    overwrite: bool = True,
) -> list[Path] | PendingWrite:
    """Write several products whose arrays may share one graph, in one ``da.store`` pass.

    Returns the paths written, or with ``compute=False`` one :class:`PendingWrite` for them all.
    """
    pending = PendingWrite(delayed=None)
    sources: list[da.Array] = []
    targets: list[FitsBlockTarget] = []
    labels: list[Hashable] = []
    try:
        for n, (ds, path) in enumerate(items):
            final = Path(path).absolute()
            if final.exists() and not overwrite:
                raise InputFileError(f"{final}: exists and overwrite is False")
            if not final.parent.is_dir():
                raise InputFileError(f"{final.parent}: output folder does not exist")
            tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.part"
            pending.files.append((tmp, final))
            src, tgt = _presize(ds, tmp, final.name)
            sources += src
            targets += tgt
            # the products of one exposure (same input file) share their block-write tasks
            labels += [get_path(ds.attrs.get("meta") or {}, "filename") or n] * len(src)
        pending.delayed = store_blocks(sources, targets, labels) if sources else None
    except BaseException:
        pending.abort()
        raise
    if pending.delayed is None:
        pending.delayed = dask.delayed(None)
    if not compute:
        return pending
    return pending.compute()


# ----------------------------------------------------------------------------------------------
# layout


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _model_of(ds: xr.Dataset, filename: str) -> str:
    model = ds.attrs.get("model_type")
    if model:
        return str(model)
    model = model_for_suffix(ds.attrs.get("product")) or model_for_suffix(suffix_of(filename))
    if model:
        return model
    sci = ds.get("SCI")
    return _common.guess_model(sci.ndim if sci is not None else None, sci.dtype if sci is not None else None)


def _array_names(ds: xr.Dataset, layout: ModelLayout) -> list[str]:
    names = [str(n) for n in ds.data_vars if "." not in str(n)]
    order = {a.name: i for i, a in enumerate(layout.arrays)}
    return sorted(names, key=lambda n: (n != "SCI", order.get(n, len(order)), n))


def _table_columns(ds: xr.Dataset) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {k: list(v) for k, v in (ds.attrs.get("tables") or {}).items()}
    for n in ds.data_vars:
        n = str(n)
        if "." in n:
            ext, col = n.split(".", 1)
            cols = tables.setdefault(ext, [])
            if col not in cols:
                cols.append(col)
    out = {ext: [c for c in cols if f"{ext}.{c}" in ds.data_vars] for ext, cols in tables.items()}
    return {ext: cols for ext, cols in out.items() if cols}


_DIM_ORDER = ("integration", "group", "plane", "y", "x", "x_refout")


def _canonical(var: xr.DataArray) -> xr.DataArray:
    """The array in FITS (numpy) axis order, should a step have transposed it."""
    rank = {d: i for i, d in enumerate(_DIM_ORDER)}
    if all(d in rank for d in var.dims):
        order = sorted(var.dims, key=rank.__getitem__)
        if list(order) != list(var.dims):
            return var.transpose(*order)
    return var


def _header_value(value: Any) -> Any:
    if isinstance(value, (bool, int)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (np.bool_, np.integer)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.encode("ascii", "replace").decode("ascii")
    return None


def _headers(meta: dict, layout: ModelLayout, extra_fits: dict, hdu_names: list[str]):
    from astropy.io import fits

    headers = {name: fits.Header() for name in ["PRIMARY", *hdu_names]}
    for kw in layout.keywords:
        hdr = headers.get(kw.hdu)
        if hdr is None or kw.keyword in hdr:
            continue
        value = _header_value(get_path(meta, kw.path))
        if value is None:
            continue
        hdr[kw.keyword] = (value, kw.title[:46])
    for hname, cards in (extra_fits or {}).items():
        hdr = headers.get(str(hname).upper())
        if hdr is None:
            continue
        for card in cards or []:
            key, value = str(card[0]).upper(), card[1] if len(card) > 1 else ""
            comment = str(card[2]) if len(card) > 2 and card[2] is not None else ""
            if key == "HISTORY":
                hdr.add_history(str(value))
            elif key == "COMMENT":
                hdr.add_comment(str(value))
            elif not _common.is_structural(key) and key not in hdr:
                value = _header_value(value)
                if value is not None:
                    hdr.append((key, value, comment[:46]), end=True)
    return headers


def _hdu_bytes(hdu) -> bytes:
    """The bytes of one extension HDU exactly as astropy writes it (header, data, padding)."""
    from astropy.io import fits

    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    return raw[len(fits.PrimaryHDU().header.tostring()) :]


def _table_hdu(ds: xr.Dataset, ext: str, cols: list[str], layout: ModelLayout, header):
    from astropy.io import fits

    schema_cols = dict(layout.table(ext).columns) if layout.table(ext) is not None else {}
    arrays = []
    for col in cols:
        values = np.asarray(ds[f"{ext}.{col}"].values)
        want = schema_cols.get(col)
        if values.dtype.kind == "U":
            width = max(values.dtype.itemsize // 4, 1)
            values = np.char.encode(values, "ascii", "replace").astype(f"S{width}")
        if want and want[0] == "S" and values.dtype.kind == "S":
            values = values.astype(want)
        elif want and want[0] not in ("S", "U") and values.dtype.kind in "iufb":
            values = values.astype(want)
        arrays.append(values)
    nrows = len(arrays[0]) if arrays else 0
    rec = np.zeros(nrows, dtype=[(c, v.dtype, v.shape[1:]) for c, v in zip(cols, arrays)])
    for col, values in zip(cols, arrays):
        rec[col] = values
    hdu = fits.BinTableHDU(data=rec, name=ext)
    for card in header.cards:
        if card.keyword not in hdu.header:
            hdu.header.append(card, end=True)
    return hdu


def _presize(ds: xr.Dataset, tmp: Path, final_name: str) -> tuple[list[da.Array], list[FitsBlockTarget]]:
    """Write headers, tables and the ASDF extension of ``ds`` to ``tmp`` with holes for the image
    data; return the (source, target) pairs that fill the holes."""
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    model = _model_of(ds, final_name)
    layout = model_layout(model)
    meta = copy.deepcopy(ds.attrs.get("meta") or {})
    set_path(meta, "model_type", model)
    set_path(meta, "filename", final_name)
    set_path(meta, "date", _now())

    arrays = _array_names(ds, layout)
    if "SCI" not in arrays:
        raise JwstDaskError(f"{final_name}: the Dataset has no SCI array to write")
    tables = _table_columns(ds)
    headers = _headers(meta, layout, ds.attrs.get("extra_fits") or {}, [*arrays, *tables])

    sources: list[da.Array] = []
    targets: list[FitsBlockTarget] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        with tmp.open("wb") as f:
            primary = fits.PrimaryHDU(header=headers["PRIMARY"])
            f.write(primary.header.tostring().encode("ascii"))
            for name in arrays:
                var = _canonical(ds[name])
                ext = layout.array(name)
                dtype = np.dtype(ext.dtype) if ext is not None and ext.dtype else var.dtype
                if dtype.kind == "b":
                    dtype = np.dtype("u1")
                shape = tuple(int(n) for n in var.shape)
                hdu = fits.ImageHDU(data=np.zeros((1,) * max(len(shape), 1), dtype=dtype), name=name)
                for i, n in enumerate(reversed(shape)):
                    hdu.header[f"NAXIS{i + 1}"] = n
                for card in headers[name].cards:
                    if card.keyword in ("HISTORY", "COMMENT"):
                        hdu.header.append(card, end=True)
                    elif card.keyword not in hdu.header:
                        hdu.header.append(card, end=True)
                f.write(hdu.header.tostring().encode("ascii"))
                offset = f.tell()
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                f.seek(offset + -(-nbytes // _BLOCK) * _BLOCK)
                if nbytes == 0:
                    continue
                data = var.data
                # the target casts each block to ``dtype`` as it writes it (no cast task per block)
                sources.append(data if isinstance(data, da.Array) else da.from_array(np.asarray(data)))
                targets.append(FitsBlockTarget(str(tmp), offset, shape, dtype.str, fresh=True))
            for ext, cols in tables.items():
                f.write(_hdu_bytes(_table_hdu(ds, ext, cols, layout, headers[ext])))
            payload = np.frombuffer(
                asdf_tree.write_meta(meta, ds.attrs.get("meta_objects") or {}), dtype=np.uint8
            )
            column = fits.Column(name="ASDF_METADATA", format=f"{payload.size}B", array=payload[None, :])
            f.write(_hdu_bytes(fits.BinTableHDU.from_columns([column], name="ASDF")))
            f.truncate()
    return sources, targets
