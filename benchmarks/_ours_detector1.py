"""Run jwst-dask's Detector1Pipeline on several raw exposures in ONE graph, for parity and timing.

    python _ours_detector1.py --output-dir OUT [--refs refs.json] [--save-calibrated-ramp] \
        [--steps JSON] [--chunks Y,X] [--scheduler cluster|threads] [--workers N --threads-per-worker T] \
        [--report perf.html] FILE_uncal.fits [...]

Every exposure's products (``rate``, ``rateints`` and, with ``--save-calibrated-ramp``, ``ramp``)
are built lazily with :meth:`Pipeline.run_all`, then written together with one
:func:`jwst_dask.cluster.compute` on the embedded local cluster (``--scheduler threads``: Dask's
threaded scheduler instead, for comparison). The steps are configured as jwst
3.0 runs them (see :data:`JWST3_STEPS`); ``--refs`` overrides every reference type it names, as the
official benchmark does. Prints one JSON line: graph-build and compute seconds, and per-step
task times when ``--report`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: Step parameters that make the run comparable with jwst 3.0's Detector1Pipeline defaults.
JWST3_STEPS: dict[str, dict] = {
    "dq_init": {"propagate_do_not_use": True},
    "saturation": {"use_readpatt": True},
    "ipc": {"skip": True},
    "persistence": {"skip": True},
    "charge_migration": {"skip": True},
    "jump": {"min_diffs_single_pass": 10},
    "ramp_fit": {"variant": "jwst3"},
}


def build_steps(refs: dict[str, str], extra: dict[str, dict]) -> dict[str, dict]:
    """The per-step parameters: jwst 3.0 settings, reference overrides, then ``extra``."""
    from jwst_dask.pipelines.detector1 import Detector1Pipeline

    probe = Detector1Pipeline()
    steps: dict[str, dict] = {}
    for name in probe.step_names:
        pars = dict(JWST3_STEPS.get(name, {}))
        for reftype in getattr(probe, name).reference_file_types:
            if reftype in refs:
                pars[f"override_{reftype}"] = refs[reftype]
        pars.update(extra.get(name, {}))
        steps[name] = pars
    return steps


def main(argv: list[str] | None = None) -> int:
    """Build every exposure's products, write them all in one compute, print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--refs", help="JSON file: reference type -> path (overrides)")
    parser.add_argument("--save-calibrated-ramp", action="store_true")
    parser.add_argument("--steps", default="{}", help="JSON: extra per-step parameters")
    parser.add_argument(
        "--scheduler",
        choices=("cluster", "threads"),
        default="cluster",
        help="the embedded local Dask cluster (default, as `jwst-dask run`) or Dask's threaded scheduler",
    )
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads-per-worker", type=int)
    parser.add_argument("--chunks", help="pixel chunks of the input, 'Y,X' (default: the ramp chunk policy)")
    parser.add_argument("--report", help="write a Dask performance report (HTML) here")
    args = parser.parse_args(argv)

    from jwst_dask import cluster
    from jwst_dask.io import write_products
    from jwst_dask.pipelines.detector1 import Detector1Pipeline

    refs = json.loads(Path(args.refs).read_text()) if args.refs else {}
    steps = build_steps(refs, json.loads(args.steps))
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    client = None
    if args.scheduler == "cluster":
        client = cluster.get_client(workers=args.workers, threads_per_worker=args.threads_per_worker)
    t_cluster = time.perf_counter() - t0
    items = []
    for path in args.files:
        pipe = Detector1Pipeline(steps=steps, save_calibrated_ramp=args.save_calibrated_ramp)
        if args.chunks:
            ty, tx = (int(v) for v in args.chunks.split(","))
            pipe.input_chunks = {"y": ty, "x": tx}
        products = pipe.run_all(path)
        root = Path(path).name.removesuffix(".fits").removesuffix("_uncal")
        for suffix in ("ramp", "rate", "rateints"):
            if suffix in products:
                items.append((products[suffix], str(out_dir / f"{root}_{suffix}.fits")))
    t_build = time.perf_counter() - t0 - t_cluster
    pending = write_products(items, compute=False)
    t1 = time.perf_counter()
    if client is None:
        cluster.compute(pending.delayed, progress=False, scheduler="threads")
    elif args.report:
        from distributed import performance_report

        with performance_report(filename=args.report):
            cluster.compute(pending.delayed, progress=False)
    else:
        cluster.compute(pending.delayed, progress=False)
    pending.finalize()
    t_compute = time.perf_counter() - t1
    result = {
        "cluster_seconds": round(t_cluster, 3),
        "build_seconds": round(t_build, 3),
        "compute_seconds": round(t_compute, 3),
        "products": [p for _, p in items],
    }
    if args.report and client is not None:
        result["task_seconds"] = _task_seconds(client)
    print(json.dumps(result))
    cluster.close_local_cluster()
    return 0


def _task_seconds(client) -> dict[str, float]:
    """Summed compute seconds per task-name prefix, from the scheduler's task-prefix records."""
    try:
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: {
                name: float(sum(p.all_durations.values())) for name, p in dask_scheduler.task_prefixes.items()
            }
        )
    except Exception:  # diagnostics only
        return {}
    return {k: round(v, 2) for k, v in sorted(prefixes.items(), key=lambda kv: -kv[1]) if v > 0.05}


if __name__ == "__main__":
    from jwst_dask.cli import run_as_program

    run_as_program(main)  # as the jwst-dask command runs
