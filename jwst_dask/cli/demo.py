"""``jwst-dask demo``: the whole system on simulated data, on an embedded local Dask cluster.

It simulates a small dithered NIRCam imaging set and a short NIRCam time series (raw ``_uncal``
files with their truth, and the local reference files CRDS selects for them), runs stage 1
(``calwebb_detector1`` and ``calwebb_tso1``) on the cluster with a progress bar, writes the
products, and prints where everything is and the Dask dashboard address.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_parser", "run_demo"]

DEFAULT_OUTDIR = "jwst_dask_demo"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="simulate a small NIRCam set and a time series, and run stage 1 on them",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "outdir", nargs="?", default=DEFAULT_OUTDIR, help=f"output folder (default {DEFAULT_OUTDIR})"
    )
    p.add_argument(
        "--size", type=int, default=512, help="pixels on a side of the imaging cut-out (default 512)"
    )
    p.add_argument("--nexp", type=int, default=4, help="dithered imaging exposures (default 4)")
    p.add_argument("--ngroups", type=int, default=10, help="groups per integration (default 10)")
    p.add_argument("--tso-nints", type=int, default=100, help="integrations of the time series (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask scheduler instead")
    p.set_defaults(func=_main)


def run_demo(
    outdir: str | Path = DEFAULT_OUTDIR,
    *,
    size: int = 512,
    nexp: int = 4,
    ngroups: int = 10,
    tso_nints: int = 100,
    seed: int = 1,
    scheduler: str | None = None,
) -> dict[str, list[Path]]:
    """Simulate, calibrate (stage 1) and return ``{"raw": [...], "products": [...]}``."""
    from jwst_dask import cluster
    from jwst_dask.log import ensure_configured
    from jwst_dask.pipelines import Detector1Pipeline, Tso1Pipeline
    from jwst_dask.simulate import simulate

    ensure_configured()
    outdir = Path(outdir)
    raw_dir, out_dir = outdir / "raw", outdir / "stage1"
    client = cluster.get_client(scheduler)
    print(f"Dask dashboard: {client.dashboard_link}")

    t0 = time.perf_counter()
    print(f"Simulating {nexp} dithered NIRCam exposures ({size}x{size}, {ngroups} groups) ...")
    mosaic = simulate("nircam-mosaic", raw_dir, seed=seed, nexp=nexp, ngroups=ngroups, size=size)
    print(f"Simulating a NIRCam time series ({tso_nints} integrations) ...")
    tso = simulate("nircam-tso", raw_dir, seed=seed + 1, nints=tso_nints)
    print(f"  raw exposures written in {time.perf_counter() - t0:.1f} s")

    t1 = time.perf_counter()
    for path in mosaic:
        print(f"calwebb_detector1 {path.name}")
        Detector1Pipeline.call(str(path), output_dir=str(out_dir), save_results=True)
    for path in tso:
        print(f"calwebb_tso1 {path.name}")
        Tso1Pipeline.call(str(path), output_dir=str(out_dir), save_results=True)
    print(f"  stage 1 done in {time.perf_counter() - t1:.1f} s")

    products = sorted(out_dir.glob("*.fits"))
    return {"raw": [*mosaic, *tso], "products": products}


def _main(args: argparse.Namespace) -> int:
    result = run_demo(
        args.outdir,
        size=args.size,
        nexp=args.nexp,
        ngroups=args.ngroups,
        tso_nints=args.tso_nints,
        seed=args.seed,
        scheduler=args.scheduler,
    )
    print(f"\nRaw exposures (with truth files and associations): {Path(args.outdir, 'raw').resolve()}")
    print(f"Stage-1 products: {Path(args.outdir, 'stage1').resolve()}")
    for path in result["products"]:
        print(f"  {path.name}")
    print("Inspect one with: jwst-dask info " + str(result["products"][0]) if result["products"] else "")
    return 0
