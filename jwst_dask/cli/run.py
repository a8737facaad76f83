"""``jwst-dask run``: run a pipeline or a step on one input, as ``strun`` does.

::

    jwst-dask run <pipeline alias | step alias | class path | parameter file | auto> <input>
        [--steps.<step>.<param>=<value> ...] [--<param>=<value> ...]
        [--output-dir DIR] [--output-file NAME] [--save-parameters FILE] [--logcfg FILE] [-v]
        [--scheduler ADDRESS | --workers N [--threads-per-worker T] [--memory-limit M]]
        [--chunks y=256,x=256]

``auto`` picks the stage-1 pipeline from the input's EXP_TYPE (graphs/exptypes.yaml). Values are
parsed by the parameters' spec types. The results are saved (``save_results`` is on, as with
strun). Without ``--scheduler``/``--workers`` the graph runs on an embedded local Dask cluster
sized to this machine (its dashboard address is logged), unless the Dask configuration names a
local scheduler (``DASK_SCHEDULER=threads``). Exit status: 0 success, 1 error (one line; a
traceback with ``-v``), 64 no science data.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jwst_dask.errors import JwstDaskError, ParameterError

__all__ = ["add_parser", "parse_overrides", "resolve_target", "run_command"]

_PARAM_FILE_EXTS = (".asdf", ".cfg")
_DESCRIPTION = """Run a pipeline or a step on one input, as strun does.

TARGET is a pipeline alias (calwebb_detector1), a step alias (jump), a class path, a parameter
file (.asdf or .cfg), or auto (the stage-1 pipeline for the input's EXP_TYPE). Set parameters with
--<param>=<value> and --steps.<step>.<param>=<value>; `jwst-dask run TARGET --help` lists them.
Results are saved (save_results is on). Without --scheduler / --workers the graph runs on an
embedded local Dask cluster sized to this machine (the dashboard address is logged).
Exit status: 0 success, 1 error, 64 no science data."""


class _RunParser(argparse.ArgumentParser):
    """Keeps the ``--<param>=<value>`` options it does not know in ``args.overrides``."""

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None):
        ns, extras = super().parse_known_args(args, namespace)
        ns.overrides = [*getattr(ns, "overrides", []), *extras]
        return ns, []


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``run`` sub-command."""
    previous = subparsers._parser_class
    subparsers._parser_class = _RunParser
    try:
        p = subparsers.add_parser(
            "run",
            help="run a pipeline or step (like strun)",
            description=_DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=False,
            allow_abbrev=False,
        )
    finally:
        subparsers._parser_class = previous
    p.add_argument("target", nargs="?", help="pipeline/step alias, class path, parameter file, or auto")
    p.add_argument("input", nargs="?", help="input FITS, zarr store or association (ASN json)")
    p.add_argument("-h", "--help", action="store_true", help="show the parameters of TARGET and exit")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", help="folder for the outputs")
    p.add_argument("--output-file", "--output_file", dest="output_file", help="output name base")
    p.add_argument("--save-parameters", "--save_parameters", dest="save_parameters", metavar="FILE")
    p.add_argument("--logcfg", metavar="FILE", help="log configuration file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on error")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler address or scheduler file")
    p.add_argument("--workers", type=int, metavar="N", help="start a local Dask cluster of N workers")
    p.add_argument("--threads-per-worker", type=int, metavar="T")
    p.add_argument("--memory-limit", metavar="M", help="memory per worker, e.g. 4GiB")
    p.add_argument("--chunks", metavar="DIM=N,...", help="input chunks, e.g. y=256,x=256")
    p.set_defaults(func=run_command, _parser=p, overrides=[])
    return p


# -------------------------------------------------------------------------------- arguments
def parse_overrides(tokens: Sequence[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``--name=value`` and ``--steps.<step>.<name>=value`` tokens -> (params, steps params).

    ``--name value`` works too; a bare ``--flag`` means ``True``. Dashes in names become
    underscores.
    """
    params: dict[str, str] = {}
    steps: dict[str, dict[str, str]] = {}
    items = list(tokens)
    i = 0
    while i < len(items):
        token = items[i]
        if not token.startswith("--") or token == "--":
            raise ParameterError(f"unexpected argument {token!r}")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(items) and not items[i + 1].startswith("--"):
                value = items[i + 1]
                i += 1
            else:
                value = "True"
        i += 1
        if key.startswith("steps."):
            _, _, rest = key.partition(".")
            step, dot, name = rest.rpartition(".")
            if not dot or not step or not name:
                raise ParameterError(f"option --{key}: expected --steps.<step>.<parameter>=<value>")
            steps.setdefault(step, {})[name.replace("-", "_")] = value
        else:
            params[key.replace("-", "_")] = value
    return params, steps


def _parse_chunks(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        dim, eq, size = part.partition("=")
        try:
            out[dim.strip()] = int(size)
        except ValueError:
            raise ParameterError(f"--chunks: expected DIM=N[,DIM=N], got {text!r}") from None
        if not eq or not dim.strip():
            raise ParameterError(f"--chunks: expected DIM=N[,DIM=N], got {text!r}")
    return out


def resolve_target(target: str, input_path: str | None = None) -> tuple[type, dict[str, Any]]:
    """The class to run for TARGET and the constructor arguments it implies (a parameter file
    gives ``config_file``; a pipeline alias gives ``definition``; ``auto`` reads the input's
    EXP_TYPE)."""
    from jwst_dask.pipelines import Pipeline, graphs
    from jwst_dask.steps.base import resolve_class
    from jwst_dask.steps.params import read_parameter_file

    if target == "auto":
        if not input_path:
            raise ParameterError("run auto: an input file is needed to choose the pipeline")
        alias = _auto_alias(input_path)
        return resolve_target(alias)
    path = Path(target)
    if path.suffix.lower() in _PARAM_FILE_EXTS:
        pars = read_parameter_file(path)
        if not pars.get("class"):
            raise ParameterError(f"parameter file {target!r} names no class")
        cls, kwargs = resolve_target(str(pars["class"]))
        return cls, {**kwargs, "config_file": str(path)}
    if target in graphs.definition_aliases():
        try:
            cls = resolve_class(target)
        except ParameterError:
            cls = Pipeline  # the pipeline's own module is not available: run the definition as is
        return cls, {"definition": target}
    return resolve_class(target), {}


def _auto_alias(input_path: str) -> str:
    from jwst_dask.io import open_product
    from jwst_dask.pipelines import graphs

    if str(input_path).lower().endswith(".json"):
        from jwst_dask.steps.base import _asn_first_member

        input_path = str(_asn_first_member(Path(input_path))[0])
    meta = open_product(input_path).jwst.meta
    exp_type = meta.get_path("exposure.type")
    if not exp_type:
        raise ParameterError(f"run auto: {input_path!r} has no EXP_TYPE (meta.exposure.type)")
    tso = meta.get_path("visit.tsovisit")
    if isinstance(tso, str):
        tso = tso.strip().upper() in ("T", "TRUE", "1")
    stage1 = graphs.pipelines_for_exposure(exp_type, bool(tso))["stage1"]
    if not stage1:
        raise ParameterError(f"run auto: no stage-1 pipeline for EXP_TYPE {exp_type!r}")
    return stage1


def _instantiate(cls: type, kwargs: dict[str, Any], params: dict, steps: dict):
    from jwst_dask.pipelines import Pipeline

    if issubclass(cls, Pipeline):
        return cls(steps=steps, **kwargs, **params)
    if steps:
        raise ParameterError(f"{cls.__name__} is a step, not a pipeline: --steps.* options do not apply")
    kwargs = {k: v for k, v in kwargs.items() if k != "definition"}
    return cls(**kwargs, **params)


# ------------------------------------------------------------------------------------ help
def describe_parameters(instance: Any) -> str:
    """The ``--help`` text: every parameter of the step/pipeline and of its sub-steps."""
    lines = [f"{type(instance).__name__} ({instance.class_alias or instance.name}) parameters:"]
    lines += _param_lines(instance, "--")
    for step_name in getattr(instance, "step_names", []):
        sub = getattr(instance, step_name)
        lines.append("")
        lines.append(f"step {step_name} ({type(sub).__name__}):")
        lines += _param_lines(sub, f"--steps.{step_name}.")
    return "\n".join(lines)


def _param_lines(step: Any, prefix: str) -> list[str]:
    out = []
    for name, spec in step.parameter_specs().items():
        current = getattr(step, name)
        comment = f"  # {spec.comment}" if spec.comment else ""
        out.append(f"  {prefix}{name}={current!r}  [{spec.describe()}]{comment}")
    return out


# -------------------------------------------------------------------------------------- run
def run_command(args: argparse.Namespace) -> int:
    """Carry out ``jwst-dask run`` (see module docs); returns the exit status."""
    try:
        return _run(args)
    except JwstDaskError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"jwst-dask: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"jwst-dask: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from jwst_dask import log

    if not args.target:
        args._parser.print_help()
        return 0 if args.help else 2
    log.configure(args.logcfg, verbose=args.verbose)
    params, steps = parse_overrides(args.overrides)
    for key in ("output_dir", "output_file"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    params.setdefault("save_results", "True")
    cls, kwargs = resolve_target(args.target, args.input)
    instance = _instantiate(cls, kwargs, params, steps)
    if args.help:
        print(describe_parameters(instance))
        return 0
    if not args.input:
        raise ParameterError(f"run {args.target}: no input file given")
    instance.input_chunks = _parse_chunks(args.chunks)
    if args.save_parameters:
        instance.export_config(args.save_parameters)
    import dask

    from jwst_dask import cluster

    if dask.config.get("scheduler", None) in ("threads", "threading", "sync", "synchronous", "processes"):
        instance.run(args.input)  # the user chose a local Dask scheduler in the Dask config
        return 0

    client = cluster.get_client(
        args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
    )
    try:
        instance.run(args.input)
    finally:
        if args.scheduler:
            client.close()  # the scheduler and its workers are not ours: leave them running
        elif client in (entry[1] for entry in cluster._LOCAL.values()):
            cluster.close_local_cluster()
    return 0
