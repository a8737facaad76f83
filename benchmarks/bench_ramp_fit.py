"""Ramp-fitting kernel speed against stcal's C fitter on a full-frame 10-group ramp.

    python benchmarks/bench_ramp_fit.py [--size 2048] [--ngroups 10] [--stcal-rows 256]

Times our kernel on the whole frame (one core, as a Dask thread would run it on one tile) and
stcal's OLS_C on a strip of ``--stcal-rows`` rows, scaled to the full frame (stcal is slower;
the strip keeps the run short). Reports wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jwst_dask.dq import FLAGS
from jwst_dask.kernels.ramp_fit import fit_ramps

TGROUP = 10.737


def make_ramp(size: int, ngroups: int, seed: int = 0):
    """A ramp with a spread of rates, read noise, a few jumps and saturated pixels."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.0, 20.0, (size, size)).astype(np.float32)
    data = np.empty((1, ngroups, size, size), np.float32)
    for g in range(ngroups):
        data[0, g] = 1000.0 + rate * (g + 1) * TGROUP + rng.standard_normal((size, size), np.float32) * 10
    gdq = np.zeros(data.shape, np.uint8)
    hits = rng.random((size, size)) < 0.01
    gdq[0, ngroups // 2][hits] = FLAGS["JUMP_DET"]
    sat = data > 60000
    gdq[sat] |= FLAGS["SATURATED"]
    pdq = np.zeros((size, size), np.uint32)
    gain = np.full((size, size), 2.0, np.float32)
    rn = np.full((size, size), 10.0, np.float32)
    return data, gdq, pdq, gain, rn


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_stcal(data, gdq, pdq, gain, rn):
    from stcal.ramp_fitting.ramp_fit import ramp_fit_data
    from stcal.ramp_fitting.ramp_fit_class import RampData

    rd = RampData()
    rd.algorithm = "OLS_C"
    rd.set_arrays(data, gdq, pdq, np.zeros(pdq.shape, np.float32))
    rd.set_meta(name="NIRCAM", frame_time=TGROUP, group_time=TGROUP, groupgap=0, nframes=1, drop_frames1=0)
    rd.set_dqflags(FLAGS)
    rd.start_row, rd.num_rows = 0, data.shape[2]
    rd.suppress_one_group_ramps = True
    return ramp_fit_data(rd, False, rn.copy(), gain.copy(), "OLS_C", "optimal", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--stcal-rows", type=int, default=256, help="rows fitted by stcal (0: skip)")
    parser.add_argument("--tile", type=int, default=512, help="Dask tile size for the tiled run (0: skip)")
    args = parser.parse_args()
    data, gdq, pdq, gain, rn = make_ramp(args.size, args.ngroups)
    kw = {"frame_time": TGROUP, "group_time": TGROUP, "nframes": 1}
    fit_ramps(data[:, :, :8, :8], gdq[:, :, :8, :8], pdq[:8, :8], gain[:8, :8], rn[:8, :8], **kw)  # compile
    for variant in ("seeds", "jwst3"):
        jw3 = variant == "jwst3"
        _, wall, cpu = timed(
            lambda jw3=jw3: fit_ramps(
                data, gdq, pdq, gain, rn, median_per_integration=jw3, weight_by_readnoise=jw3, **kw
            )
        )
        print(
            f"jwst-dask kernel ({variant}) {args.size}x{args.size}x{args.ngroups}: "
            f"wall {wall:.2f} s, cpu {cpu:.2f} s"
        )
    if args.tile:
        import dask
        import dask.array as da

        from jwst_dask.steps.ramp_fit import fit_tiles

        t = args.tile
        arrays = fit_tiles(
            da.from_array(data, chunks=(1, args.ngroups, t, t)),
            da.from_array(gdq, chunks=(1, args.ngroups, t, t)),
            da.from_array(pdq, chunks=(t, t)),
            da.from_array(gain, chunks=(t, t)),
            da.from_array(rn, chunks=(t, t)),
            **kw,
        )
        with dask.config.set(scheduler="threads"):
            _, wall, cpu = timed(lambda: dask.compute(arrays))
        print(f"tiled with Dask threads ({t}x{t} tiles, rate + rateints): wall {wall:.2f} s, cpu {cpu:.2f} s")
    if args.stcal_rows:
        rows = min(args.stcal_rows, args.size)
        sl = np.s_[:, :, :rows, :]
        _, wall, cpu = timed(
            lambda: run_stcal(data[sl].copy(), gdq[sl].copy(), pdq[:rows].copy(), gain[:rows], rn[:rows])
        )
        scale = args.size / rows
        print(
            f"stcal OLS_C on {rows} rows: wall {wall:.2f} s, cpu {cpu:.2f} s "
            f"-> full frame ~ wall {wall * scale:.2f} s, cpu {cpu * scale:.2f} s"
        )


if __name__ == "__main__":
    main()
