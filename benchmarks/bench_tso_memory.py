"""Stage 1 memory on long time series: the same nircam-tso exposure with 100 and 1000 integrations.

Usage::

    python benchmarks/bench_tso_memory.py --workdir DIR [--nints 100 1000] [--save-ramp]

Simulates the nircam-tso preset (SUB64P, 64 x 64, 6 groups) once per integration count (reusing
files already in ``DIR``), runs our Detector1Pipeline on it in a subprocess (``_ours_detector1.py``,
the embedded local cluster, jwst 3.0 step settings) and prints the wall time and the peak memory of
the process tree. The ramp chunk policy (all integrations of a pixel tile in a chunk, tiles sized to
a byte budget) should keep the peak memory the same within noise: more integrations give smaller
tiles, not bigger chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_detector1 import run_ours, select_references, simulate_once  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--nints", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--save-ramp", action="store_true", help="also write the ramp after jump")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (the figures are the minimum)")
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    results = {}
    for nints in args.nints:
        files = simulate_once("nircam-tso", work / f"tso_{nints}", {"nints": nints, "write_asn": False})
        refs = work / "refs_tso.json"
        select_references(files[0], refs)
        runs = [
            run_ours(files, refs, work / f"ours_tso_mem_{nints}", ramp=args.save_ramp)
            for _ in range(args.repeat)
        ]
        wall = min(m.wall_seconds for m in runs)
        peak = min(m.peak_rss_bytes for m in runs)
        size = sum(f.stat().st_size for f in files)
        results[nints] = {"wall_seconds": wall, "peak_bytes": peak, "uncal_bytes": size}
        print(
            f"nircam-tso {nints:5d} integrations (uncal {size / 2**20:.0f} MiB): "
            f"wall {wall:.1f} s, peak memory {peak / 2**20:.0f} MiB",
            flush=True,
        )
    if len(results) >= 2:
        lo, hi = min(results), max(results)
        ratio = results[hi]["peak_bytes"] / results[lo]["peak_bytes"]
        print(f"peak memory {hi} / {lo} integrations: {ratio:.2f} (target: 1, within noise)")
        wall_ratio = results[hi]["wall_seconds"] / results[lo]["wall_seconds"]
        print(f"wall time {hi} / {lo} integrations: {wall_ratio:.2f}")
    (work / "bench_tso_memory.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
