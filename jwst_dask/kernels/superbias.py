"""Superbias kernel: subtract the bias level of every pixel from every group (and frame zero).

NaN bias values are treated as zero so that a missing calibration never poisons the science data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["subtract_bias", "clean_bias"]


def clean_bias(bias: np.ndarray) -> np.ndarray:
    """The bias as float32 with NaN replaced by 0."""
    bias = np.asarray(bias, dtype=np.float32)
    return np.where(np.isnan(bias), np.float32(0.0), bias)


def subtract_bias(sci: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``sci - bias`` in float32; ``bias`` (y, x) broadcasts over integrations and groups.

    Use :func:`clean_bias` first; for ZEROFRAME pass a (nints, y, x) block.
    """
    return np.subtract(sci, clean_bias(bias), dtype=np.float32)
