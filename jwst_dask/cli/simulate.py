"""``jwst-dask simulate PRESET OUTDIR``: simulated raw exposures with truth files and associations.

Presets: nircam-mosaic, nircam-tso, miri-image. Prints the exposures written and the time taken.
"""

from __future__ import annotations

import argparse
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``simulate`` sub-command."""
    from jwst_dask.simulate.irs2 import PRESET as IRS2_PRESET
    from jwst_dask.simulate.presets import PRESETS

    p = subparsers.add_parser(
        "simulate",
        help="simulate raw JWST exposures with known truth",
        description="Simulate the raw (_uncal) exposures of an observation preset, with truth files "
        "(true rates, sources, cosmic rays, saturated pixels, pointing errors) and the level-2/3 "
        "associations.",
    )
    names = sorted([*PRESETS, IRS2_PRESET])
    p.add_argument("preset", choices=names, metavar="PRESET", help=", ".join(names))
    p.add_argument("outdir", metavar="OUTDIR", help="output folder (created if needed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, help="simulate only a SIZE x SIZE corner of the readout")
    p.add_argument("--ngroups", type=int, help="groups per integration")
    p.add_argument("--nints", type=int, help="integrations per exposure")
    p.add_argument("--nexp", type=int, help="number of (dithered) exposures")
    p.add_argument("--readpatt", help="readout pattern (e.g. RAPID, BRIGHT2, DEEP8; FAST for MIRI)")
    p.add_argument("--filter", help="filter (one the preset supports)")
    p.add_argument("--date", help="observation start, ISO UTC (e.g. 2024-03-01T00:00:00)")
    p.add_argument("--noiseless", action="store_true", help="no read or Poisson noise")
    p.add_argument("--no-cosmic-rays", action="store_true", help="no cosmic rays")
    p.add_argument("--zeroframe", action="store_true", help="write the ZEROFRAME extension")
    p.add_argument("--workers", type=int, default=0, help="threads for the generation (default: all cores)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the simulation described by the parsed arguments."""
    import dask

    from jwst_dask.simulate import simulate

    options = {
        "size": args.size,
        "ngroups": args.ngroups,
        "nints": args.nints,
        "nexp": args.nexp,
        "readpatt": args.readpatt,
        "filter": args.filter,
        "date": args.date,
        "noiseless": args.noiseless,
        "cosmic_rays": not args.no_cosmic_rays,
        "zeroframe": args.zeroframe or None,
    }
    options = {k: v for k, v in options.items() if v is not None}
    t0 = time.perf_counter()
    config = {"scheduler": "threads"}
    if args.workers:
        config["num_workers"] = args.workers
    with dask.config.set(config):
        paths = simulate(args.preset, args.outdir, seed=args.seed, **options)
    for path in paths:
        print(path)
    print(f"simulated {len(paths)} exposure(s) of {args.preset} in {time.perf_counter() - t0:.1f} s")
    return 0
