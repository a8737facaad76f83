"""Benchmark: ``jwst-dask simulate nircam-mosaic`` (4 full-frame RAPID 10-group exposures).

Runs the command line in a child process and samples the resident memory of it and all its
descendants every 50 ms; prints the wall time and the peak total RSS. Targets: < 60 s and < 2 GiB
on a 2-core machine.

    python benchmarks/bench_simulate.py [--size N] [--nexp N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="cut-out size (default: full frame)")
    parser.add_argument("--nexp", type=int, default=4)
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--keep", help="write here and keep the files")
    args = parser.parse_args()

    outdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    cmd = [sys.executable, "-m", "jwst_dask", "simulate", "nircam-mosaic", str(outdir),
           "--nexp", str(args.nexp), "--ngroups", str(args.ngroups)]  # fmt: skip
    if args.size:
        cmd += ["--size", str(args.size)]
    peak = 0
    done = threading.Event()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(child.pid)

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    size_mb = sum(p.stat().st_size for p in outdir.glob("*_uncal.fits")) / 2**20
    print(out.strip())
    print(f"exit status      : {child.returncode}")
    frame = "full frame" if not args.size else f"{args.size}x{args.size}"
    print(f"exposures        : {args.nexp} x {frame}, {args.ngroups} groups")
    print(f"uncal written    : {size_mb:.0f} MiB")
    print(f"wall time        : {wall:.1f} s   (target < 60 s)")
    print(f"peak RSS (tree)  : {peak / 2**30:.2f} GiB   (target < 2 GiB)")
    if not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
