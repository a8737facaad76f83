"""Pipelines: the :class:`Pipeline` base class and the calibration pipelines.

``Detector1Pipeline``, ``Tso1Pipeline`` and ``DarkPipeline`` are imported on first access, so
importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from jwst_dask.pipelines.base import Pipeline

__all__ = ["DarkPipeline", "Detector1Pipeline", "Pipeline", "Tso1Pipeline"]

_LAZY = {
    "Detector1Pipeline": "jwst_dask.pipelines.detector1",
    "Tso1Pipeline": "jwst_dask.pipelines.detector1",
    "DarkPipeline": "jwst_dask.pipelines.dark",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
