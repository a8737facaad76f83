"""Chunk sizes for ramps and the arrays that go with them.

Policy (see docs/design.md, "Chunks"): a ramp chunk holds every integration and every group of a
block of pixels, because ramp fitting and jump detection need all of them for each pixel. The
block is a full-width stripe of rows with as many pixels as a ``tile`` x ``tile`` square (default
512: 128 rows of a 2048-wide frame): FITS stores each group row by row, so a stripe reads and
writes contiguous runs of the file, where a square tile would be hundreds of short pieces
(measured: block writes 40% faster, lower peak memory; docs/benchmarks.md). The stripe loses rows,
then columns, until one chunk fits a byte budget (default 64 MiB), so a 1000-integration TSO
exposure runs in the same memory per task as a short one, only with smaller blocks. An exposure
with several integrations is also cut into at least ``MIN_CHUNKS`` (16) chunks unless that would
make them smaller than ``STREAM_FLOOR`` (2 MiB), so that a long time series of a small subarray
(a 1000-integration SUB64P exposure is 48 MiB) streams through stage 1 in blocks about as large
as those of a short one instead of in a few large tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TILE", "MIN_CHUNKS", "STREAM_FLOOR", "pixel_tile", "ramp_chunks"]

DEFAULT_BUDGET = 64 * 2**20
DEFAULT_TILE = 512
MIN_CHUNKS = 16
STREAM_FLOOR = 2 * 2**20


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

    Every leading axis (integrations, groups) is whole; the (y, x) block is a full-width stripe of
    ``tile**2 // nx`` rows (at least one, at most all), halved in rows and then, once it is a single
    row, in columns, until a chunk holds at most ``budget_bytes`` (or the block is 1 x 1) and,
    with several integrations (``shape[0] > 1`` for a 3-D or 4-D array), at most the larger of
    ``STREAM_FLOOR`` and 1 / ``MIN_CHUNKS`` of the whole array.
    ``itemsize`` may be a byte count or a dtype.

    >>> ramp_chunks((2, 10, 2048, 2048), 2)
    (2, 10, 128, 2048)
    >>> ramp_chunks((1000, 5, 64, 2048), 4)
    (1000, 5, 1, 2048)
    >>> ramp_chunks((1000, 6, 64, 64), 2)  # SUB64P, 1000 integrations (48 MiB): 16 chunks
    (1000, 6, 4, 64)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        return shape
    lead = int(np.prod(shape[:-2], dtype=np.int64)) * _itemsize(itemsize)
    ny, nx = shape[-2:]
    tile = max(int(tile), 1)
    ty, tx = min(ny, max(1, tile * tile // max(nx, 1))), nx
    budget = int(budget_bytes)
    if len(shape) >= 3 and shape[0] > 1:  # a time series: stream it in several blocks
        budget = min(budget, max(lead * ny * nx // MIN_CHUNKS, STREAM_FLOOR))
    budget = max(budget, 1)
    while lead * ty * tx > budget and (ty > 1 or tx > 1):
        if ty > 1:
            ty = -(-ty // 2)
        else:
            tx = -(-tx // 2)
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
