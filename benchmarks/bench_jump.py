"""Jump detection speed: our kernel vs stcal on one integration of a full-frame ramp.

Usage: ``python benchmarks/bench_jump.py [--size 2048] [--groups 10] [--repeats 5] [--no-stcal]``

Times the per-pixel pass and the neighbour pass of :mod:`jwst_dask.kernels.jump` on the whole
frame in one thread; the per-pixel pass on 128-row stripes as the step's tiles (the minimum over
``--repeats`` runs, in ns per pixel: less sensitive to other load on the machine); the tiled Dask
graph of the step's kernels (threads); and stcal's ``detect_jumps_data`` (single process); checks
that the flags agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jwst_dask.dq import FLAGS
from jwst_dask.kernels import jump as jk


def make_ramp(size: int, ngroups: int, seed: int = 0):
    """A ramp in DN with read noise, a 0-50 DN/group rate, and cosmic rays in 2% of pixels."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0, 50, (size, size)).astype(np.float32)
    steps = rate + np.sqrt(rate) * rng.standard_normal((1, ngroups, size, size), dtype=np.float32)
    data = np.cumsum(steps, axis=1, dtype=np.float32)
    data += rng.normal(0, 5, data.shape).astype(np.float32)
    n_cr = size * size // 50
    g = rng.integers(1, ngroups, n_cr)
    y, x = rng.integers(0, size, n_cr), rng.integers(0, size, n_cr)
    amp = rng.choice(np.array([30.0, 200.0, 5000.0], np.float32), n_cr)
    for k in range(1, ngroups):
        sel = g == k
        data[0, k:, y[sel], x[sel]] += amp[sel][:, None]
    gdq = np.zeros(data.shape, np.uint8)
    gain = np.full((size, size), 2.0, np.float32)
    rn = np.full((size, size), 8.0, np.float32)
    return data, gdq, gain, rn


def main() -> None:
    """Run the benchmark and print the timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-stcal", action="store_true")
    args = ap.parse_args()
    data, gdq, gain, rn = make_ramp(args.size, args.groups)
    pdq = np.zeros(gain.shape, np.uint32)
    params = jk.JumpParams()
    jk.detect_jumps(data[..., :8, :8], gdq[..., :8, :8], pdq[:8, :8], gain[:8, :8], rn[:8, :8], params)

    t0 = time.perf_counter()
    packed = jk.twopoint_block(data, gdq, gain, rn, params, jk.MODE_ITERATIVE)
    t1 = time.perf_counter()
    ours = jk.finish_block(np.pad(packed, ((0, 0), (0, 0), (1, 1), (1, 1))), params)
    t2 = time.perf_counter()
    print(f"ours, 1 thread: per-pixel {t1 - t0:.2f} s + neighbours {t2 - t1:.2f} s = {t2 - t0:.2f} s")

    rows = min(128, args.size)
    stripes = [
        tuple(np.ascontiguousarray(a[..., y : y + rows, :]) for a in (data, gdq, gain, rn))
        for y in range(0, args.size - rows + 1, rows)
    ]
    best = np.inf
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for s in stripes:
            jk.twopoint_block(*s, params, jk.MODE_ITERATIVE)
        best = min(best, time.perf_counter() - t0)
    npix = len(stripes) * rows * args.size
    print(
        f"ours, 1 thread, {rows}-row stripes: per-pixel pass {best:.2f} s, {best / npix * 1e9:.0f} ns/pixel"
    )

    import dask
    import dask.array as da

    from jwst_dask.steps.jump import _stage_a, _stage_b

    sci_d = da.from_array(data, chunks=(1, args.groups, 512, 512))
    gdq_d = da.from_array(gdq, chunks=sci_d.chunks)
    g_d, r_d = da.from_array(gain, chunks=(512, 512)), da.from_array(rn, chunks=(512, 512))
    packed_d = da.blockwise(
        _stage_a,
        "igyx",
        sci_d,
        "igyx",
        gdq_d,
        "igyx",
        g_d,
        "yx",
        r_d,
        "yx",
        None,
        None,
        None,
        None,
        None,
        None,
        dtype=np.uint16,
        params=params,
        static_mode=jk.MODE_ITERATIVE,
    )
    halo = da.overlap.overlap(packed_d, depth={0: 0, 1: 0, 2: 1, 3: 1}, boundary="none")
    final = da.map_blocks(_stage_b, halo, chunks=packed_d.chunks, dtype=np.uint8, params=params)
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        tiled = final.compute()
    print(f"ours, dask 2 threads, 512 tiles: {time.perf_counter() - t0:.2f} s")
    assert np.array_equal(tiled, ours), "tiled result differs from the whole frame"

    if not args.no_stcal:
        from stcal.jump.jump import detect_jumps_data
        from stcal.jump.jump_class import JumpData

        jd = JumpData(gain2d=gain, rnoise2d=rn, dqflags=FLAGS)
        jd.init_arrays_from_arrays(data.copy(), gdq.copy(), pdq.copy())
        jd.nframes, jd.dt_group, jd.n_reads_groupdiff, jd.max_cores = 1, np.ones(1), np.ones(1) * 2, "1"
        jd.min_diffs_single_pass = 1000
        t0 = time.perf_counter()
        ref, _, _, _ = detect_jumps_data(jd)
        print(f"stcal 1 process: {time.perf_counter() - t0:.2f} s")
        print("flags identical:", bool(np.array_equal(ref, ours)))
    print("jump-flagged groups:", int(np.count_nonzero(ours & FLAGS["JUMP_DET"])))


if __name__ == "__main__":
    main()
