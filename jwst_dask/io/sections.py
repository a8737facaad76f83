"""Read and write a rectangular region of an array stored C-ordered in a file, run by run.

A block of a ramp (all integrations and groups of a few rows) is, in the file, one contiguous run
per (integration, group). Reading it through a memory map maps every page the runs touch, and the
process's resident memory counts those pages while the map is open: a 4-row block of a
1000-integration 64 x 64 exposure touches 6,000 pages (24 MiB) for 3 MiB of data, so memory grew
with the number of integrations. :func:`read_region` and :func:`write_region` move each run with
one ``preadv`` / ``pwrite`` into or out of the block's own buffer instead: the resident memory is
the block, whatever the file's layout.

:func:`region_runs` gives the runs: every axis after the last one the region cuts is whole, so
each run covers those axes, and the runs, taken in C order of the axes before, fill the block's
buffer one after the other.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["MAX_RUNS", "read_region", "region_runs", "write_region"]

#: Above this many runs (e.g. a one-column block of a large cube) a caller is better served by a
#: memory map: the regions functions return None.
MAX_RUNS = 1 << 17


def region_runs(key: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, int, tuple[int, ...]] | None:
    """``(run offsets, run length, region shape)`` of ``array[key]`` for a C-ordered ``array`` of
    ``shape``, in elements; None unless ``key`` is integers and step-1 slices (one per axis at
    most) and the region has at most :data:`MAX_RUNS` runs. The region shape drops the axes
    indexed by an integer, as numpy does. An empty region has no runs."""
    if not isinstance(key, tuple):
        key = (key,)
    if len(key) > len(shape) or any(k is Ellipsis or k is None for k in key):
        return None
    bounds: list[tuple[int, int]] = []
    kept: list[int] = []
    for axis, n in enumerate(shape):
        k = key[axis] if axis < len(key) else slice(None)
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                return None
            bounds.append((start, max(start, stop)))
            kept.append(max(0, stop - start))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            i = int(k) + n if int(k) < 0 else int(k)
            if not 0 <= i < n:
                return None
            bounds.append((i, i + 1))
        else:
            return None
    if not shape:
        return np.zeros(1, np.int64), 1, ()
    extents = [b - a for a, b in bounds]
    if 0 in extents:
        return np.zeros(0, np.int64), 0, tuple(kept)
    partial = [axis for axis, ((a, b), n) in enumerate(zip(bounds, shape)) if (a, b) != (0, n)]
    last = partial[-1] if partial else 0
    strides = np.ones(len(shape), np.int64)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    length = int(extents[last] * strides[last])
    count = int(np.prod(extents[:last], dtype=np.int64))
    if count > MAX_RUNS:
        return None
    offsets = np.array([bounds[last][0] * strides[last]], np.int64)
    for axis in range(last - 1, -1, -1):  # outer axes vary slowest: C order of the runs
        steps = np.arange(bounds[axis][0], bounds[axis][1], dtype=np.int64) * strides[axis]
        offsets = (steps[:, None] + offsets[None, :]).ravel()
    return offsets, length, tuple(kept)


def read_region(
    path: str | os.PathLike,
    offset: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    key: Any,
    max_run_bytes: int | None = None,
) -> np.ndarray | None:
    """``array[key]`` of the ``dtype`` array of ``shape`` stored at byte ``offset`` of ``path``,
    read run by run into a new array (in the file's byte order); None when :func:`region_runs`
    gives None, or when the runs are ``max_run_bytes`` or longer (a memory map then maps little
    besides the region, and copies and byte-swaps it in one pass). OSError when the file ends
    before the region does."""
    found = region_runs(key, shape)
    if found is None:
        return None
    starts, length, out_shape = found
    dtype = np.dtype(dtype)
    if max_run_bytes is not None and len(starts) and length * dtype.itemsize >= max_run_bytes:
        return None
    out = np.empty(len(starts) * length, dtype=dtype)
    _move_runs(path, offset, starts, length, out, writing=False)
    return out.reshape(out_shape)


def write_region(
    path: str | os.PathLike, offset: int, shape: tuple[int, ...], dtype: np.dtype, key: Any, value: np.ndarray
) -> bool:
    """Write ``value`` (already in the file's ``dtype`` and the region's shape) into ``array[key]``
    of the ``dtype`` array of ``shape`` stored at byte ``offset`` of ``path``, run by run. False
    (nothing written) when :func:`region_runs` gives None or the shapes differ."""
    found = region_runs(key, shape)
    if found is None or found[2] != np.shape(value):
        return False
    starts, length, _ = found
    dtype = np.dtype(dtype)
    _move_runs(
        path, offset, starts, length, np.ascontiguousarray(value, dtype=dtype).reshape(-1), writing=True
    )
    return True


def _move_runs(
    path: str | os.PathLike, offset: int, starts: np.ndarray, length: int, flat: np.ndarray, writing: bool
) -> None:
    """Move run ``n`` of the 1-D contiguous ``flat`` (``length`` elements each, one after the other)
    to (``writing``) or from element ``starts[n]`` of the array at byte ``offset`` of ``path``.
    OSError naming the file when a run is not moved whole (a file that ends inside the data)."""
    if not flat.size:
        return
    buf = memoryview(flat).cast("B")
    step = length * flat.itemsize
    fd = os.open(path, os.O_WRONLY if writing else os.O_RDONLY)
    try:
        for n, start in enumerate(starts.tolist()):
            piece, at = buf[n * step : (n + 1) * step], offset + start * flat.itemsize
            moved = os.pwrite(fd, piece, at) if writing else os.preadv(fd, [piece], at)
            if moved != step:
                what = "short write" if writing else "file ends inside the data"
                raise OSError(f"{os.fspath(path)}: {what} ({moved} of {step} bytes)")
    finally:
        os.close(fd)
