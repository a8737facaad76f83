"""The ``jwst-dask`` command: one module per sub-command, each exposing ``add_parser(subparsers)``
which registers its arguments and sets ``func`` (a callable taking the parsed args, returning an
exit status)."""

from __future__ import annotations

import argparse
import importlib
import sys

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
    sys.exit(main())
