"""Group-scale kernel: rescale frame-averaged groups whose on-board divisor differs from NFRAMES.

When the flight software divides the sum of NFRAMES frames by FRMDIVSR (a power of two) instead of
NFRAMES, every group is off by FRMDIVSR/NFRAMES; multiplying by that factor restores the mean.
"""

from __future__ import annotations

import numpy as np

__all__ = ["scale_groups"]


def scale_groups(sci: np.ndarray, factor: float) -> np.ndarray:
    """``sci * factor`` as float32 (the factor is FRMDIVSR / NFRAMES)."""
    return (sci * np.float32(factor)).astype(np.float32, copy=False)
