"""``jwst-dask refs FILE [--types t1,t2] [--context C]``: the reference files a product would use.

Prints, for each reference type the stage-1 and stage-2 steps need (or the ``--types`` given),
the absolute path of the file CRDS selects, or ``N/A``. Uses the project's offline cache unless
``CRDS_PATH`` / ``CRDS_SERVER_URL`` are set.

``jwst-dask refs --build-cache`` generates every reference file of the project cache at once (for
example before sharing the cache read-only with cluster workers).
"""

from __future__ import annotations

import argparse

#: reference types of the stage-1 and stage-2 steps, per instrument family, in step order
STAGE1_NIR = (
    "mask",
    "saturation",
    "ipc",
    "superbias",
    "refpix",
    "linearity",
    "persat",
    "trapdensity",
    "trappars",
    "dark",
    "gain",
    "readnoise",
)
STAGE1_MIRI = (
    "mask",
    "emicorr",
    "saturation",
    "ipc",
    "reset",
    "linearity",
    "rscd",
    "dark",
    "refpix",
    "gain",
    "readnoise",
)
STAGE2_IMAGE = (
    "distortion",
    "filteroffset",
    "specwcs",
    "regions",
    "wavelengthrange",
    "flat",
    "photom",
    "area",
)


def default_reftypes(instrument: str) -> tuple[str, ...]:
    """The reference types of stages 1 and 2 for ``instrument`` (no duplicates, in step order)."""
    stage1 = STAGE1_MIRI if instrument.upper() == "MIRI" else STAGE1_NIR
    return tuple(dict.fromkeys(stage1 + STAGE2_IMAGE))


def pipeline_reftypes(meta: dict) -> tuple[str, ...]:
    """The reference types of the steps the stage-1 and stage-2 pipelines run on this exposure,
    from the pipeline definitions (graphs/) and each step's ``reference_file_types``; the fixed
    lists of :func:`default_reftypes` for a stage whose definition is not available."""
    from jwst_dask.meta import get_path

    instrument = str(get_path(meta, "instrument.name", ""))
    try:
        from jwst_dask.pipelines.graphs import load_definition, pipelines_for_exposure, select_variant
        from jwst_dask.steps.base import resolve_class

        aliases = pipelines_for_exposure(
            get_path(meta, "exposure.type", ""), get_path(meta, "visit.tsovisit", None)
        )
    except Exception:
        return default_reftypes(instrument)
    found: list[str] = []
    for stage, fallback in (("stage1", STAGE1_MIRI if instrument.upper() == "MIRI" else STAGE1_NIR),
                            ("stage2", STAGE2_IMAGE)):  # fmt: skip
        try:
            variant = select_variant(load_definition(aliases[stage]), meta)
            types = [t for step in variant["order"] for t in resolve_class(step).reference_file_types]
        except Exception:
            types = list(fallback)
        found.extend(types)
    return tuple(dict.fromkeys(found))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "refs",
        help="show the CRDS reference files selected for a product",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("file", nargs="?", help="a JWST product (FITS or zarr)")
    p.add_argument("--types", default=None, help="comma-separated reference types (default: stages 1 and 2)")
    p.add_argument("--context", default=None, help="pinned CRDS context, e.g. jwst_0001.pmap")
    p.add_argument(
        "--build-cache", action="store_true", help="generate every reference file of the project cache"
    )
    p.set_defaults(func=run)


def _product_meta(path: str) -> dict:
    from jwst_dask.io import open_product

    return open_product(path).attrs.get("meta", {})


def _build_cache() -> int:
    from jwst_dask.errors import ParameterError
    from jwst_dask.refs import ensure_all_references
    from jwst_dask.refs.environment import current_setup

    setup = current_setup()
    if setup.user:
        raise ParameterError("--build-cache fills the project cache: unset CRDS_PATH / CRDS_SERVER_URL")
    paths = ensure_all_references(setup.path)
    print(f"{len(paths)} reference files in {setup.path}")
    return 0


def run(args: argparse.Namespace) -> int:
    from jwst_dask.errors import ParameterError
    from jwst_dask.refs import best_references

    if args.build_cache:
        return _build_cache()
    if not args.file:
        raise ParameterError("jwst-dask refs: give a product FILE (or --build-cache)")
    meta = _product_meta(args.file)
    if args.types:
        reftypes = [t.strip().lower() for t in args.types.split(",") if t.strip()]
    else:
        reftypes = list(pipeline_reftypes(meta))
    refs = best_references(meta, reftypes, context=args.context)
    width = max(len(t) for t in reftypes)
    for reftype in reftypes:
        print(f"{reftype:<{width}}  {refs[reftype]}")
    return 0
