"""gain_scale: rescale count-rate arrays taken with a non-standard detector gain setting.

SCI and ERR are multiplied by GAINFACT and the variances by GAINFACT squared, in float32 as the
official pipeline does (the factor is rounded to float32 first, so results are bit-identical).
"""

from __future__ import annotations

import numpy as np

__all__ = ["scale_values", "scale_variance"]


def scale_values(block: np.ndarray, gain_factor: float) -> np.ndarray:
    """SCI or ERR block times GAINFACT (float32 arithmetic)."""
    return (block * np.float32(gain_factor)).astype(block.dtype, copy=False)


def scale_variance(block: np.ndarray, gain_factor: float) -> np.ndarray:
    """VAR_POISSON / VAR_RNOISE / VAR_FLAT block times GAINFACT**2 (float32 arithmetic)."""
    return (block * np.float32(float(gain_factor) ** 2)).astype(block.dtype, copy=False)
