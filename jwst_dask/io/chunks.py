"""Chunk sizes for ramps and the arrays that go with them.

Policy (see docs/design.md, "Chunks"): a ramp chunk holds every integration and every group of a
block of pixels, because ramp fitting and jump detection need all of them for each pixel. The
block is a full-width stripe of rows with as many pixels as a ``tile`` x ``tile`` square (default
512: 128 rows of a 2048-wide frame): FITS stores each group row by row, so a stripe reads and
writes contiguous runs of the file, where a square tile would be hundreds of short pieces
(measured: block writes 40% faster, lower peak memory; docs/benchmarks.md). The stripe loses rows
(down to ``MIN_ROWS``), then columns, until one chunk fits a byte budget (default 64 MiB).

An exposure with several integrations has a tighter budget that does not depend on how many
integrations it has: the larger of ``STREAM_BUDGET`` (2 MiB) and one integration of a ``tile`` x
``tile`` block. A long time series of a small subarray then streams through stage 1 in blocks as
large as those of a short one (SUB64P, 6 groups: 16-row stripes of 1.2 MiB at 100 integrations,
2-row stripes of 1.5 MiB at 1000, 2 x 16 blocks of 1.1 MiB at 3000), so the memory of a task is
the same whatever the length of the series; a multi-integration full frame keeps stripes of a few
MiB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TILE", "MIN_ROWS", "STREAM_BUDGET", "pixel_tile", "ramp_chunks"]

DEFAULT_BUDGET = 64 * 2**20
DEFAULT_TILE = 512
#: Bytes of a time-series chunk (at least one integration of a tile): constant, so that the
#: memory of a task does not grow with the number of integrations.
STREAM_BUDGET = 2 * 2**20
#: Stripes keep this many rows before they lose columns: thinner ones are thinner than the
#: halos of saturation's growth and jump's neighbour flagging.
MIN_ROWS = 2


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
    ``tile**2 // nx`` rows (at least one, at most all), halved in rows down to :data:`MIN_ROWS`,
    then in columns, then in rows again, until a chunk holds at most ``budget_bytes`` (or the block
    is 1 x 1). With several integrations (``shape[0] > 1`` for a 3-D or 4-D array) the budget is
    at most the larger of :data:`STREAM_BUDGET` and one integration of a ``tile`` x ``tile`` block.
    ``itemsize`` may be a byte count or a dtype.

    >>> ramp_chunks((2, 10, 2048, 2048), 2)
    (2, 10, 64, 2048)
    >>> ramp_chunks((1, 10, 2048, 2048), 2)
    (1, 10, 128, 2048)
    >>> ramp_chunks((100, 6, 64, 64), 2)  # SUB64P, 100 integrations (4.7 MiB): 1.2 MiB chunks
    (100, 6, 16, 64)
    >>> ramp_chunks((1000, 6, 64, 64), 2)  # 1000 integrations (47 MiB): 1.5 MiB chunks
    (1000, 6, 2, 64)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        return shape
    size = _itemsize(itemsize)
    lead = int(np.prod(shape[:-2], dtype=np.int64)) * size
    ny, nx = shape[-2:]
    tile = max(int(tile), 1)
    ty, tx = min(ny, max(1, tile * tile // max(nx, 1))), nx
    budget = int(budget_bytes)
    if len(shape) >= 3 and shape[0] > 1:  # a time series: the same chunk bytes at any length
        per_int = int(np.prod(shape[1:-2], dtype=np.int64)) * size * min(tile * tile, ny * nx)
        budget = min(budget, max(STREAM_BUDGET, per_int))
    budget = max(budget, 1)
    floor = min(MIN_ROWS, ny)
    while lead * ty * tx > budget and ty > floor:
        ty = max(-(-ty // 2), floor)
    while lead * ty * tx > budget and tx > 1:
        tx = -(-tx // 2)
    while lead * ty * tx > budget and ty > 1:
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
