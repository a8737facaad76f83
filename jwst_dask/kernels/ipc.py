"""IPC kernel: convolve each group with the inter-pixel-capacitance deconvolution kernel.

The kernel is a small odd-sized 2-D array (the same for every pixel) or a 4-D array holding one
small kernel per pixel (kh, kw, y, x). Reference pixels are neither changed nor contribute to
the convolution (they are treated as 0). The term order follows the official implementation
(all off-centre terms, then the centre), so float32 results agree bit for bit. A tile needs a
halo of the kernel half-width.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ipc_convolve", "halo_depth"]


def halo_depth(kernel_shape: tuple[int, ...]) -> int:
    """Pixels of neighbouring tiles needed: the larger kernel half-width."""
    return max(int(kernel_shape[0]) // 2, int(kernel_shape[1]) // 2)


def ipc_convolve(data: np.ndarray, kernel: np.ndarray, science: np.ndarray) -> np.ndarray:
    """IPC-corrected ``data`` (..., y, x) float32.

    ``kernel`` (kh, kw) or (kh, kw, y, x) (per-pixel, aligned with ``data``); ``science`` (y, x)
    bool marks the non-reference pixels, the only ones changed or used.
    """
    kh, kw = kernel.shape[:2]
    b_b, l_b = kh // 2, kw // 2
    t_b, r_b = kh - b_b - 1, kw - l_b - 1
    ny, nx = data.shape[-2:]
    temp = np.where(science, data, np.float32(0)).astype(np.float32, copy=False)
    pad = [(0, 0)] * (data.ndim - 2) + [(b_b, t_b), (l_b, r_b)]
    temp = np.pad(temp, pad)
    acc = np.zeros(data.shape, dtype=np.float32)
    mj, mi = kh // 2, kw // 2
    terms = [(j, i) for j in range(kh) for i in range(kw) if (j, i) != (mj, mi)] + [(mj, mi)]
    for j, i in terms:
        js, is_ = kh - j - 1, kw - i - 1
        shifted = temp[..., js : js + ny, is_ : is_ + nx]
        k = kernel[j, i].astype(np.float32, copy=False)
        acc += k * shifted
    return np.where(science, acc, data).astype(np.float32, copy=False)
