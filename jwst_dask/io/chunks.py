"""Chunk sizes for ramps and the arrays that go with them.

Policy (see docs/design.md, "Chunks"): a ramp chunk holds every integration and every group of a
tile of pixels, because ramp fitting and jump detection need all of them for each pixel. The pixel
tile is square-ish (default 512 x 512) and shrinks until one chunk fits a byte budget (default
64 MiB), so a 1000-integration TSO exposure runs in the same memory per task as a short one, only
with smaller tiles. Thin subarrays (fewer rows than a tile) are tiled along x only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TILE", "pixel_tile", "ramp_chunks"]

DEFAULT_BUDGET = 64 * 2**20
DEFAULT_TILE = 512


def _itemsize(itemsize_or_dtype) -> int:
    if isinstance(itemsize_or_dtype, (int, np.integer)):
        return int(itemsize_or_dtype)
    return np.dtype(itemsize_or_dtype).itemsize


def ramp_chunks(
    shape: Sequence[int],
    itemsize: int | np.dtype | str = 4,
    budget_bytes: int = DEFAULT_BUDGET,
    tile: int = DEFAULT_TILE,
) -> tuple[int, ...]:
    """Chunk sizes (one int per axis) for an array whose last two axes are (y, x).

    Every leading axis (integrations, groups) is whole; the (y, x) tile starts at ``tile`` x
    ``tile`` (for a thin subarray, all rows and about ``tile**2`` pixels' worth of columns) and is
    halved, larger side first, until a chunk holds at most ``budget_bytes`` (or a tile is 1 x 1).
    ``itemsize`` may be a byte count or a dtype.

    >>> ramp_chunks((2, 10, 2048, 2048), 2)
    (2, 10, 512, 512)
    >>> ramp_chunks((1000, 5, 64, 2048), 4)
    (1000, 5, 64, 32)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        return shape
    lead = int(np.prod(shape[:-2], dtype=np.int64)) * _itemsize(itemsize)
    ny, nx = shape[-2:]
    tile = max(int(tile), 1)
    thin = ny <= tile
    if thin:
        ty = ny
        tx = min(nx, max(tile, -(-tile * tile // max(ny, 1))))
    else:
        ty, tx = min(tile, ny), min(tile, nx)
    budget = max(int(budget_bytes), 1)
    while lead * ty * tx > budget and (ty > 1 or tx > 1):
        if thin and tx > 1:
            tx = -(-tx // 2)
        elif tx >= ty and tx > 1:
            tx = -(-tx // 2)
        else:
            ty = -(-ty // 2)
    return (*shape[:-2], max(ty, 1), max(tx, 1))


def pixel_tile(
    shape: Sequence[int],
    itemsize: int | np.dtype | str = 4,
    budget_bytes: int = DEFAULT_BUDGET,
    tile: int = DEFAULT_TILE,
) -> tuple[int, int]:
    """The (y, x) tile :func:`ramp_chunks` picks for ``shape``."""
    ty, tx = ramp_chunks(shape, itemsize, budget_bytes, tile)[-2:]
    return ty, tx
