"""The I/O layer: JWST products as lazy, chunked xarray Datasets, and back.

- :func:`open_product` (``jwst_dask.open``): a FITS product of any level, or a zarr checkpoint,
  opened without reading pixel data (each array is a dask array over its file section).
- :func:`write_product` / :func:`write_products`: JWST-format FITS written block by block from the
  graph (works on a distributed cluster), atomically (temporary name, renamed when complete);
  ``compute=False`` gives a :class:`PendingWrite` for several products of one graph.
- :func:`write_zarr`: an exact checkpoint.
- :mod:`.schema` (keyword <-> metadata mapping of each data model), :mod:`.naming` (output names
  by the suffix rules), :mod:`.chunks` (the ramp chunk policy).
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from jwst_dask.errors import InputFileError
from jwst_dask.io.chunks import pixel_tile, ramp_chunks
from jwst_dask.io.fits_read import FitsSection, open_fits
from jwst_dask.io.fits_write import FitsBlockTarget, PendingWrite, write_product, write_products
from jwst_dask.io.naming import KNOWN_SUFFIXES, output_name, split_suffix, strip_suffix, suffix_of
from jwst_dask.io.schema import ModelLayout, model_for_suffix, model_layout
from jwst_dask.io.zarr_io import is_zarr_store, open_zarr, write_zarr

__all__ = [
    "KNOWN_SUFFIXES",
    "FitsBlockTarget",
    "FitsSection",
    "ModelLayout",
    "PendingWrite",
    "is_zarr_store",
    "model_for_suffix",
    "model_layout",
    "open_fits",
    "open_product",
    "open_zarr",
    "output_name",
    "pixel_tile",
    "ramp_chunks",
    "split_suffix",
    "strip_suffix",
    "suffix_of",
    "write_product",
    "write_products",
    "write_zarr",
]


def open_product(
    path: str | os.PathLike,
    chunks: dict[str, int] | int | None = None,
    *,
    model_type: str | None = None,
) -> xr.Dataset:
    """Open a JWST product lazily as a Dataset following the Dataset contract (docs/design.md).

    Parameters
    ----------
    path
        A FITS file (uncal, ramp, rate, rateints, cal, calints, i2d, ...) or a zarr store written
        by :func:`write_zarr`.
    chunks
        Chunk size by dim name (``{"y": 256, "x": 256}``; ``-1`` for whole), or one int for a
        square pixel tile. By default ramps get
        all integrations and groups and the pixel tile of :func:`ramp_chunks` (512 x 512 or smaller
        to stay under 64 MiB per chunk), and every other array the same (y, x) tiles.
    model_type
        Force the data model (``"RampModel"``, ...) instead of detecting it from DATAMODL, the
        file-name suffix or the array shapes.

    Raises
    ------
    InputFileError
        Missing file, not FITS / zarr, truncated file.
    MissingKeywordError
        A ramp without INSTRUME, DETECTOR, EXP_TYPE, NGROUPS or NINTS.
    ShapeMismatchError
        Extensions that disagree in shape, or with NGROUPS / NINTS.
    """
    if is_zarr_store(path):
        return open_zarr(path, chunks=chunks)
    if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
        raise InputFileError(f"{path}: a folder that is not a zarr store")
    return open_fits(path, chunks=chunks, model_type=model_type)
