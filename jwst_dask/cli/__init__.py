"""The ``jwst-dask`` command: one module per sub-command, each exposing ``add_parser(subparsers)``
which registers its arguments and sets ``func`` (a callable taking the parsed args, returning an
exit status)."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable
from typing import NoReturn

from jwst_dask.cluster import FREEZE_GC_KEY
from jwst_dask.errors import JwstDaskError

#: sub-command name -> module (relative to this package) that defines it.
SUBCOMMANDS = {
    "run": "run",
    "info": "info",
    "simulate": "simulate",
    "refs": "refs",
    "demo": "demo",
    "asn": "asn",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jwst-dask", description="The JWST calibration pipeline on Dask.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        try:
            mod = importlib.import_module(f"jwst_dask.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"jwst_dask.cli.{module}":
                continue  # sub-command not built yet
            raise
        mod.add_parser(sub)
    return parser


def _version() -> str:
    from jwst_dask import __version__

    return f"jwst-dask {__version__}"


def entry() -> None:
    """The ``jwst-dask`` program: :func:`main` as a process (:func:`run_as_program`)."""
    run_as_program(main)


def run_as_program(func: Callable[[], int]) -> NoReturn:
    """Exit with ``func()``'s status, run as a process that ends when it returns.

    Such a process may leave the objects alive when a graph is computed out of the garbage
    collector's scans (``jwst_dask.freeze_gc``, see :mod:`jwst_dask.cluster`), and everything
    alive at the end out of the interpreter's final collection (about 1 s after a 4-exposure
    run, docs/benchmarks.md). :func:`main` itself, which tests and other programs call, does
    neither."""
    import dask

    with dask.config.set({FREEZE_GC_KEY: dask.config.get(FREEZE_GC_KEY, True)}):
        status = func()
    gc.freeze()
    sys.exit(status)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except JwstDaskError as exc:
        print(f"jwst-dask: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("jwst-dask: interrupted", file=sys.stderr)
        return 130
    finally:
        from jwst_dask import cluster

        # an embedded cluster this command started is closed before the interpreter exits (its
        # shutdown at exit races with the release of the last results and warns of lost tasks)
        cluster.close_local_cluster()


if __name__ == "__main__":  # pragma: no cover
    entry()
