"""calwebb_detector1 (and calwebb_tso1): raw ramps (_uncal) to count rates (_rate, _rateints).

The step order per instrument (near-infrared or MIRI), the per-step defaults and the optional
``_ramp`` product (``save_calibrated_ramp``, after jump) are in ``graphs/calwebb_detector1.yaml``;
``graphs/calwebb_tso1.yaml`` is the time-series configuration. Before the first step the raw
exposure is converted to the RampModel layout (:func:`jwst_dask.steps.ramp_model.to_ramp`).
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from jwst_dask.pipelines.base import Pipeline
from jwst_dask.steps.base import Products
from jwst_dask.steps.ramp_model import to_ramp

__all__ = ["Detector1Pipeline", "Tso1Pipeline", "as_ramp"]


def as_ramp(ds: Products) -> Products:
    """A raw (uncal) Dataset converted to a ramp; ramps and other products pass through."""
    if isinstance(ds, dict):
        return {k: as_ramp(v) for k, v in ds.items()}
    if (
        isinstance(ds, xr.Dataset)
        and ds.attrs.get("model_type") != "RampModel"
        and "SCI" in ds
        and ds["SCI"].ndim == 4
    ):
        return to_ramp(ds)
    return ds


class _RampInput:
    """Mixin: convert the input exposure to a ramp before the first step."""

    def open_input(self, input: Any) -> Products:
        return as_ramp(super().open_input(input))  # type: ignore[misc]

    def process(self, ds: Products) -> Products:
        return super().process(as_ramp(ds))  # type: ignore[misc]


class Detector1Pipeline(_RampInput, Pipeline):
    """Stage 1 for every instrument: detector corrections, jump detection and ramp fitting.

    >>> Detector1Pipeline.call("jw..._uncal.fits", output_dir="out", save_results=True)  # doctest: +SKIP
    writes ``out/jw..._rate.fits`` and ``out/jw..._rateints.fits``.
    """

    class_alias = "calwebb_detector1"


class Tso1Pipeline(_RampInput, Pipeline):
    """calwebb_tso1: Detector1Pipeline configured for time series (persistence off for
    near-infrared; firstframe, lastframe and rscd off for MIRI)."""

    class_alias = "calwebb_tso1"
