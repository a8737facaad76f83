"""DQ-initialisation kernel: fold the MASK reference flags into the pixel DQ.

The MASK reference marks dead, hot, reference and other pixels; every later step reads those
flags from PIXELDQ (or DQ for the FGS guide modes), so they are OR-ed in first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_mask"]


def apply_mask(pixeldq: np.ndarray, mask_dq: np.ndarray) -> np.ndarray:
    """``pixeldq | mask_dq`` as uint32 (the mask broadcasts over leading axes)."""
    return np.bitwise_or(pixeldq.astype(np.uint32, copy=False), mask_dq.astype(np.uint32, copy=False))
