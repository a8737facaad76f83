"""Region reads and writes run by run (jwst_dask.io.sections) against numpy's own indexing."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.io.sections import read_region, region_runs, write_region


def _random_key(rng, shape):
    key = []
    for n in shape:
        if rng.random() < 0.2:
            key.append(int(rng.integers(-n, n)))  # an integer (negative ones count from the end)
        else:
            a = int(rng.integers(0, n))
            key.append(slice(a, int(rng.integers(a, n + 1))))  # may be empty
    return tuple(key[: int(rng.integers(1, len(shape) + 1))])  # trailing axes left out = whole


def test_runs_cover_exactly_what_numpy_indexing_selects():
    rng = np.random.default_rng(5)
    shape = (3, 4, 5, 6)
    flat = np.arange(np.prod(shape))
    cube = flat.reshape(shape)
    single = 0
    for _ in range(3000):
        key = _random_key(rng, shape)
        starts, length, out_shape = region_runs(key, shape)
        expected = cube[key]
        assert out_shape == expected.shape, key
        got = np.concatenate([flat[s : s + length] for s in starts]) if len(starts) else np.zeros(0, int)
        np.testing.assert_array_equal(got, expected.ravel(), err_msg=str(key))
        single += len(starts) == 1 and expected.size > 1
    assert single > 100  # whole-row regions are one run
    assert region_runs((slice(0, 4, 2),), shape) is None  # steps and fancy keys: not runs
    assert region_runs(([0, 1],), shape) is None


@pytest.mark.parametrize("dtype", [">i2", ">f4", "u1", "<f8"])
def test_read_and_write_regions_of_a_file(tmp_path, dtype):
    """Values read equal a memory map's; values written land where a memory map puts them; the
    bytes around the array are untouched; a file that ends early is an OSError naming it."""
    rng = np.random.default_rng(3)
    shape, offset = (5, 3, 7, 9), 2880
    data = rng.integers(0, 100, size=shape).astype(dtype)
    path = tmp_path / "cube.bin"
    path.write_bytes(b"\x01" * offset + data.tobytes() + b"\x02" * 100)
    for _ in range(200):
        key = _random_key(rng, shape)
        np.testing.assert_array_equal(read_region(path, offset, shape, np.dtype(dtype), key), data[key])
    expected = data.copy()
    for _ in range(50):
        key = _random_key(rng, shape)
        block = rng.integers(100, 200, size=expected[key].shape).astype(dtype)
        assert write_region(path, offset, shape, np.dtype(dtype), key, block)
        expected[key] = block
    raw = path.read_bytes()
    assert raw[:offset] == b"\x01" * offset and raw[-100:] == b"\x02" * 100
    np.testing.assert_array_equal(np.frombuffer(raw[offset:-100], dtype=dtype).reshape(shape), expected)
    assert not write_region(path, offset, shape, np.dtype(dtype), (slice(0, 2),), np.zeros((3,), dtype))
    path.write_bytes(raw[: offset + data.nbytes // 2])
    with pytest.raises(OSError, match=r"cube\.bin"):
        read_region(path, offset, shape, np.dtype(dtype), (slice(None),))


def test_long_runs_are_left_to_a_memory_map(tmp_path):
    """With ``max_run_bytes``, a region of long runs is not read here (None: the caller maps it);
    one of short runs still is."""
    data = np.arange(4 * 8 * 8, dtype=">i2").reshape(4, 8, 8)
    path = tmp_path / "c.bin"
    path.write_bytes(data.tobytes())
    whole_rows = (slice(None), slice(2, 6))  # runs of 4 rows x 8 columns x 2 bytes = 64 bytes
    assert read_region(path, 0, data.shape, data.dtype, whole_rows, max_run_bytes=64) is None
    few = read_region(path, 0, data.shape, data.dtype, whole_rows, max_run_bytes=65)
    np.testing.assert_array_equal(few, data[whole_rows])
