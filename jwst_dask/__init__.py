"""jwst-dask: the JWST calibration pipeline as distributed computation on Dask.

Products open lazily as chunked :class:`xarray.Dataset` objects (``jwst_dask.open``); steps and
pipelines add nodes to one Dask graph; products are written block by block in the JWST formats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jwst_dask import accessor as _accessor  # noqa: F401  (registers ds.jwst)
from jwst_dask.errors import JwstDaskError
from jwst_dask.meta import Meta

if TYPE_CHECKING:
    import xarray as xr

__version__ = "0.1.0"
__all__ = ["JwstDaskError", "Meta", "__version__", "open"]


def open(path, chunks=None, **kwargs) -> xr.Dataset:
    """Open a JWST FITS product or a zarr checkpoint lazily as a chunked Dataset.

    See :func:`jwst_dask.io.open_product` for the parameters.
    """
    from jwst_dask.io import open_product

    return open_product(path, chunks=chunks, **kwargs)
