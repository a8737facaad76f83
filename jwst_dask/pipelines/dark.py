"""calwebb_dark: the detector1 corrections that precede dark subtraction, for dark exposures.

The order per instrument is in ``graphs/calwebb_dark.yaml``; the product is the corrected ramp,
written as ``_dark``.
"""

from __future__ import annotations

from jwst_dask.pipelines.base import Pipeline
from jwst_dask.pipelines.detector1 import _RampInput

__all__ = ["DarkPipeline"]


class DarkPipeline(_RampInput, Pipeline):
    """Stage 1 for dark exposures: stops before dark_current and writes ``_dark``."""

    class_alias = "calwebb_dark"
