"""The ``ds.jwst`` accessor: metadata, step bookkeeping and writing for JWST product Datasets.

An accessor rather than a Dataset subclass, so every xarray operation keeps working and returns
plain Datasets. Conventions (see docs/design.md, "Dataset contract"):

- ``ds.attrs["meta"]``: the metadata tree (nested dicts), as in the official data models.
- ``ds.attrs["model_type"]``: the data-model class name (``RampModel``, ``ImageModel``, ...).
- ``ds.attrs["product"]``: the product kind / file suffix (``uncal``, ``ramp``, ``rate`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from jwst_dask.meta import Meta, updated


@xr.register_dataset_accessor("jwst")
class JwstAccessor:
    """JWST helpers on any Dataset that follows the jwst-dask Dataset contract."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def meta(self) -> Meta:
        """The metadata tree with attribute access (``ds.jwst.meta.instrument.detector``).

        Treat it as read-only; use :meth:`update_meta` to change it.
        """
        return Meta(self._ds.attrs.setdefault("meta", {}))

    @property
    def model_type(self) -> str | None:
        return self._ds.attrs.get("model_type")

    @property
    def product(self) -> str | None:
        return self._ds.attrs.get("product")

    def update_meta(self, changes: Mapping[str, Any] | None = None, **attrs: Any) -> xr.Dataset:
        """A shallow copy of the Dataset with a deep-copied meta tree, dotted-path ``changes``
        applied, and other top-level ``attrs`` (e.g. ``product="rate"``) replaced."""
        out = self._ds.copy(deep=False)
        out.attrs = dict(self._ds.attrs)
        out.attrs["meta"] = updated(self._ds.attrs.get("meta", {}), changes or {})
        out.attrs.update(attrs)
        return out

    def set_cal_step(self, name: str, status: str = "COMPLETE") -> xr.Dataset:
        """Record a step status (``meta.cal_step.<name>`` = COMPLETE / SKIPPED)."""
        return self.update_meta({f"cal_step.{name}": status})

    def write(self, path, **kwargs) -> Any:
        """Write a JWST-format FITS product block by block (see :func:`jwst_dask.io.write_product`)."""
        from jwst_dask.io import write_product

        return write_product(self._ds, path, **kwargs)

    def to_zarr(self, store, **kwargs) -> Any:
        """Checkpoint to a zarr store that :func:`jwst_dask.open` reads back exactly."""
        from jwst_dask.io import write_zarr

        return write_zarr(self._ds, store, **kwargs)
