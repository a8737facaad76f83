"""The Step base class: parameters, reference files, logging, saving (docs/design.md "Step contract").

A step subclass declares ``class_alias``, a configobj ``spec``, ``reference_file_types`` and
implements :meth:`Step.process`, which turns a Dataset into a lazy Dataset (or a dict of lazy
products keyed by suffix, e.g. ``{"rate": ..., "rateints": ...}``). The base class supplies the
universal parameters, parameter files, skipping, hooks, reference-file lookup with
``override_<reftype>``, the ``meta.ref_file`` / ``meta.cal_step`` bookkeeping, and saving (one
compute for all the products of a run)::

    result = SaturationStep.call("jw..._uncal.fits", n_pix_grow_sat=0)  # lazy Dataset
    step = SaturationStep(n_pix_grow_sat=0)
    step.n_pix_grow_sat = 2  # type-checked against the spec
    out = step.run(ds)
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from jwst_dask import log as _log
from jwst_dask.errors import AssociationError, InputFileError, ParameterError, ReferenceFileError
from jwst_dask.steps.params import ParamSpec, parse_spec, read_parameter_file, write_parameter_file

__all__ = ["Step", "known_parameters", "output_root", "resolve_class"]

#: the universal parameters every step and pipeline has (the official stpipe set).
UNIVERSAL_SPEC = """
    pre_hooks = list(default=list())  # callables, Step classes or import paths run before the step
    post_hooks = list(default=list())  # callables, Step classes or import paths run after the step
    output_file = output_file(default=None)  # file name for the output (the suffix is appended)
    output_dir = string(default=None)  # directory for the outputs
    output_ext = string(default='.fits')  # output file type
    output_use_model = boolean(default=False)  # name outputs after the model's filename
    output_use_index = boolean(default=True)  # append an index to names of list outputs
    save_results = boolean(default=False)  # save the results
    skip = boolean(default=False)  # skip this step
    suffix = string(default=None)  # the output file suffix (default: the step alias)
    search_output_file = boolean(default=True)  # use the output_file name of the input
    input_dir = string(default=None)  # directory of the input files
"""

Products = xr.Dataset | dict[str, xr.Dataset]


def output_root(name: str | os.PathLike) -> str:
    """The product name base: the file's basename without extension and without a known suffix
    (``jw01_nrca1_uncal.fits`` -> ``jw01_nrca1``); an unknown suffix is kept."""
    from jwst_dask.io.naming import strip_suffix

    return strip_suffix(name)


def resolve_class(name: str) -> type[Step]:
    """A Step or Pipeline class from an alias (graphs/steps.yaml, graphs/<alias>.yaml), a class
    path (``jwst_dask.steps.jump.JumpStep``), or an official class path (``jwst.pipeline.
    Detector1Pipeline``), which maps to ours by class name."""
    from jwst_dask.pipelines import graphs

    table = graphs.class_table()
    if name in table:
        return _import_class(table[name], name)
    if "." in name and not name.startswith("jwst."):
        return _import_class(name, name)
    short = name.rpartition(".")[2]
    for path in table.values():
        if path.rpartition(".")[2] == short:
            return _import_class(path, name)
    raise ParameterError(f"unknown step or pipeline {name!r} (not an alias, class path or parameter file)")


def _import_class(path: str, label: str) -> type[Step]:
    module, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        raise ParameterError(f"step {label!r}: module {exc.name!r} not found (class {path})") from None
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"step {label!r}: cannot import {path}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise ParameterError(f"step {label!r}: {path} is not a Step class")
    return cls


class Step:
    """Base class of every step (and, through :class:`~jwst_dask.pipelines.Pipeline`, pipelines).

    Subclasses set ``class_alias``, ``spec``, ``reference_file_types`` and implement :meth:`process`.
    ``cal_step_key`` is the ``meta.cal_step`` entry the step owns (defaults to the alias).
    """

    class_alias: ClassVar[str | None] = None
    spec: ClassVar[str] = ""
    reference_file_types: ClassVar[tuple[str, ...]] = ()
    cal_step_key: ClassVar[str | None] = None
    _kind: ClassVar[str] = "step"

    _spec_cache: ClassVar[dict[type, dict[str, ParamSpec]]] = {}

    # ----------------------------------------------------------------------------- construction
    def __init__(
        self,
        name: str | None = None,
        parent: Step | None = None,
        config_file: str | os.PathLike | None = None,
        **params: Any,
    ):
        object.__setattr__(self, "_ready", False)
        _log.ensure_configured()
        self.name = name or self.class_alias or type(self).__name__
        self.parent = parent
        self.config_file = os.fspath(config_file) if config_file else None
        self.input_chunks: Mapping[str, int] | None = None
        self._refs: dict[str, str] = {}
        self._refs_used: dict[str, str] = {}
        self._side_products: dict[str, xr.Dataset] = {}
        self._root: str | None = None
        spec = self.parameter_specs()
        for key, p in spec.items():
            object.__setattr__(self, key, p.default if not isinstance(p.default, list) else list(p.default))
        object.__setattr__(self, "_ready", True)
        file_params: dict[str, Any] = {}
        dropped: list[str] = []
        if config_file:
            pars = read_parameter_file(config_file)
            file_params, dropped = known_parameters(pars, pars["parameters"], spec)
        self.set_parameters({**file_params, **params})
        self.log = _log.get_logger(*self._log_path())
        self.log.debug("%s instance created.", type(self).__name__)
        for key in dropped:
            self.log.warning("Parameter %r from an official parameter file does not apply here: ignored", key)

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self._nondefault_pars().items())
        return f"<{type(self).__name__} {self.name}{': ' + changed if changed else ''}>"

    def _log_path(self) -> tuple[str, ...]:
        if self.parent is not None:
            return (*self.parent._log_path(), self.name)
        return (type(self).__name__,)

    @classmethod
    def merged_spec(cls) -> dict[str, ParamSpec]:
        """All parameters of this class: universal ones, ``override_<reftype>``, then ``spec``."""
        cached = Step._spec_cache.get(cls)
        if cached is None:
            cached = dict(parse_spec(UNIVERSAL_SPEC, "universal"))
            for reftype in cls.reference_file_types:
                cached[f"override_{reftype}"] = ParamSpec(
                    f"override_{reftype}",
                    "is_string_or_none",
                    comment=f"a {reftype} reference file to use instead of the CRDS selection",
                )
            cached.update(parse_spec(cls.spec, cls.__name__))
            cached.update(cls._extra_spec())
            Step._spec_cache[cls] = cached
        return cached

    @classmethod
    def _extra_spec(cls) -> dict[str, ParamSpec]:
        """Hook for subclasses that declare parameters elsewhere (pipeline definitions)."""
        return {}

    def parameter_specs(self) -> dict[str, ParamSpec]:
        """The parameters of this instance (the class's :meth:`merged_spec` for a step)."""
        return self.merged_spec()

    def __setattr__(self, key: str, value: Any) -> None:
        if getattr(self, "_ready", False) and not key.startswith("_"):
            spec = self.parameter_specs()
            if key in spec:
                value = spec[key].convert(
                    value, owner=f"{self._kind} {getattr(self, 'name', type(self).__name__)}"
                )
        object.__setattr__(self, key, value)

    def set_parameters(self, params: Mapping[str, Any]) -> None:
        """Set parameters by name, converting values to their declared types. An unknown name
        raises ParameterError naming the step."""
        spec = self.parameter_specs()
        for key, value in params.items():
            if key not in spec:
                raise ParameterError(
                    f"{self._kind} {self.name}: unknown parameter {key!r} (value {value!r}); "
                    f"see `jwst-dask run {self.class_alias or type(self).__name__} --help`"
                )
            setattr(self, key, value)

    def get_pars(self) -> dict[str, Any]:
        """The current value of every parameter, by name."""
        return {key: getattr(self, key) for key in self.parameter_specs()}

    def parameter_tree(self) -> dict[str, Any]:
        """The normalised parameter-file layout for this step (see :mod:`jwst_dask.steps.params`)."""
        cls = type(self)
        return {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "name": self.name,
            "parameters": self.get_pars(),
            "steps": {},
        }

    def export_config(self, path: str | os.PathLike) -> Path:
        """Write the parameters in use to an ASDF (``.asdf``) or cfg parameter file."""
        path = write_parameter_file(path, self.parameter_tree())
        self.log.info("Saved parameters to %s", path)
        return path

    @classmethod
    def from_config_file(cls, config_file: str | os.PathLike, **params: Any) -> Step:
        """An instance configured by a parameter file; ``params`` win over the file."""
        return cls(config_file=config_file, **params)

    # ------------------------------------------------------------------------------- running
    @classmethod
    def call(
        cls,
        input: Any,
        config_file: str | os.PathLike | None = None,
        logcfg: str | os.PathLike | None = None,
        **params: Any,
    ) -> Products:
        """Configure a new instance (spec defaults < ``config_file`` < ``params``) and run it on
        ``input`` (a path, an association, or a Dataset). Returns the lazy result; files are
        written only when ``save_results``, ``output_file`` or ``output_dir`` ask for it."""
        if logcfg is not None:
            _log.configure(logcfg)
        return cls(config_file=config_file, **params).run(input)

    def process(self, ds: xr.Dataset) -> Products:
        """The step's work on a Dataset: return a lazy Dataset or ``{suffix: Dataset}``."""
        raise NotImplementedError(f"{type(self).__name__}.process")

    def run(self, input: Any) -> Products:
        """Run the step on ``input`` (path, association, Dataset or dict of products): the lazy
        result. A standalone step saves when asked to (in a pipeline, the pipeline saves)."""
        ds = self.open_input(input)
        result = self.run_lazy(ds)
        if self.parent is None and self.wants_saving() and not self.skip:
            self.save(self.save_targets(result))
        return result

    def run_lazy(self, ds: Products) -> Products:
        """Run without saving: hooks, skip, process and the metadata bookkeeping."""
        t0 = time.perf_counter()
        self._side_products = {}
        self.log.info("Step %s running with args (%s,).", self.name, _describe(ds))
        self.log.debug("Step %s parameters are: %s", self.name, self._nondefault_pars())
        if self.skip:
            self.log.info("Step skipped.")
            result = _each(ds, self._mark_skipped)
        else:
            for hook in self.pre_hooks or ():  # a hook returning a product replaces the input
                out = self._run_hook(hook, ds)
                if out is not None:
                    ds = out
            self._refs_used = {}
            if isinstance(ds, dict):
                result = {k: self.process(v) for k, v in ds.items()}
            else:
                result = self.process(ds)
            result = _each(result, self._record_refs)
            for hook in self.post_hooks or ():
                out = self._run_hook(hook, result)
                if out is not None:
                    result = out
        self.log.info("Step %s done (graph built in %.3f s)", self.name, time.perf_counter() - t0)
        return result

    def _nondefault_pars(self) -> dict[str, Any]:
        spec = self.parameter_specs()
        return {k: getattr(self, k) for k, p in spec.items() if getattr(self, k) != p.default}

    def _mark_skipped(self, ds: xr.Dataset) -> xr.Dataset:
        key = self.cal_step_key or self.class_alias
        if key and isinstance(ds, xr.Dataset):
            return ds.jwst.set_cal_step(key, "SKIPPED")
        return ds

    def _record_refs(self, ds: xr.Dataset) -> xr.Dataset:
        if not self._refs_used or not isinstance(ds, xr.Dataset):
            return ds
        return ds.jwst.update_meta({f"ref_file.{r}.name": n for r, n in self._refs_used.items()})

    def _run_hook(self, hook: Any, data: Any) -> Any:
        """Run a hook: a callable, a Step class/instance, or an import path to one of those."""
        if isinstance(hook, str):
            module, _, attr = hook.rpartition(".")
            try:
                hook = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError, ValueError):
                raise ParameterError(f"step {self.name}: hook {hook!r} cannot be imported") from None
        self.log.info("Running hook %s", getattr(hook, "__name__", hook))
        if isinstance(hook, type) and issubclass(hook, Step):
            return hook(parent=None).run_lazy(data)
        if isinstance(hook, Step):
            return hook.run_lazy(data)
        if callable(hook):
            return hook(data)
        raise ParameterError(f"step {self.name}: hook {hook!r} is not callable")

    def add_side_product(self, suffix: str, ds: xr.Dataset) -> None:
        """Called from :meth:`process` for an extra product saved beside the main one
        (e.g. persistence's ``trapsfilled``) whenever the step's outputs are saved."""
        self._side_products[suffix] = ds

    @property
    def side_products(self) -> dict[str, xr.Dataset]:
        """Extra products registered by the last run (``{suffix: Dataset}``)."""
        return dict(self._side_products)

    # ----------------------------------------------------------------------------- input
    def open_input(self, input: Any) -> Products:
        """A Dataset (or dict of them) from a Dataset, a FITS/zarr path or an association file,
        passed through :meth:`prepare_input`."""
        return _each(self._open_input(input), self.prepare_input)

    def prepare_input(self, ds: xr.Dataset) -> xr.Dataset:
        """The input as the step takes it. Default: a raw exposure (Level1bModel) becomes a ramp
        (RampModel), as every official step that accepts ``_uncal`` files does."""
        if isinstance(ds, xr.Dataset) and ds.attrs.get("model_type") == "Level1bModel":
            from jwst_dask.steps.ramp_model import to_ramp

            return to_ramp(ds)
        return ds

    def _open_input(self, input: Any) -> Products:
        if isinstance(input, xr.Dataset | dict):
            self._root = _root_of(input)
            return input
        if isinstance(input, str | os.PathLike):
            path = Path(input)
            if self.input_dir and not path.is_absolute() and not path.exists():
                path = Path(self.input_dir) / path
            if path.suffix.lower() == ".json":
                member, product_name = _asn_first_member(path)
                self._root = output_root(product_name) if product_name else None
                ds = self._open_path(member)
                if self._root is None:
                    self._root = output_root(member.name)
                return ds
            if not path.exists():
                raise InputFileError(f"input file {str(path)!r} not found")
            self._root = output_root(path.name)
            return self._open_path(path.absolute())  # workers may run in another folder
        raise InputFileError(f"step {self.name}: cannot use input of type {type(input).__name__}")

    def _open_path(self, path: Path) -> xr.Dataset:
        from jwst_dask.io import open_product

        if self.input_chunks:
            return open_product(path, chunks=dict(self.input_chunks))
        return open_product(path)

    # ------------------------------------------------------------------------------ references
    def get_reference_file(self, ds: xr.Dataset, reftype: str) -> str:
        """Path of the ``reftype`` reference for ``ds``, or ``"N/A"``: ``override_<reftype>``
        first, then the prefetched / CRDS selection. The choice is recorded in the output's
        ``meta.ref_file.<reftype>.name``."""
        override = getattr(self, f"override_{reftype}", None)
        if override:
            path = Path(override).expanduser()
            if str(override).upper() != "N/A" and not path.is_file():
                raise ReferenceFileError(f"step {self.name}: override_{reftype} file {override!r} not found")
            self.log.info("Override for %s reference file is '%s'.", reftype.upper(), override)
            result = "N/A" if str(override).upper() == "N/A" else str(path.resolve())
            self._refs_used[reftype] = "N/A" if result == "N/A" else path.name
            return result
        if reftype in self._refs:
            result = self._refs[reftype]
        else:
            from jwst_dask.refs import best_references

            result = best_references(ds.jwst.meta, [reftype])[reftype]
            self._refs[reftype] = result
        again = reftype in self._refs_used  # a dict of products asks once per product
        self._refs_used[reftype] = "N/A" if result == "N/A" else f"crds://{Path(result).name}"
        level = logging.DEBUG if again else logging.INFO
        if result == "N/A":
            self.log.log(level, "No %s reference file found (N/A).", reftype.upper())
        else:
            self.log.log(level, "Using %s reference file %s", reftype.upper(), result)
        return result

    def get_reference_dataset(self, ds: xr.Dataset, reftype: str) -> xr.Dataset | None:
        """The ``reftype`` reference opened like ``ds`` (subarray cut, chunks), or None for N/A."""
        path = self.get_reference_file(ds, reftype)
        if path == "N/A":
            return None
        from jwst_dask.refs import open_reference

        return open_reference(path, like=ds)

    def reference_overrides(self) -> dict[str, str]:
        """``{reftype: override}`` for the references the user overrode."""
        out = {}
        for reftype in self.reference_file_types:
            value = getattr(self, f"override_{reftype}", None)
            if value:
                out[reftype] = value
        return out

    def set_prefetched(self, refs: Mapping[str, str]) -> None:
        """Give the step references already selected (by a pipeline's prefetch)."""
        self._refs.update(refs)

    # ---------------------------------------------------------------------------------- saving
    def wants_saving(self) -> bool:
        """save_results, output_file or output_dir ask for this step's output to be written."""
        return bool(self.save_results or self.output_file or self.output_dir)

    def output_path(self, suffix: str, root: str | None = None, default_dir: str | None = None) -> Path:
        """``<output_dir>/<root>_<suffix><output_ext>``; ``output_file`` (without a known suffix
        or extension) replaces the root; the folder defaults to ``default_dir``, then the CWD."""
        base = output_root(self.output_file) if self.output_file else (root or self._root or self.name)
        folder = Path(self.output_dir or default_dir or Path.cwd())
        ext = self.output_ext or ".fits"
        if not ext.startswith("."):
            ext = "." + ext
        return folder / f"{base}_{suffix}{ext}"

    def save_targets(
        self, result: Products, root: str | None = None, default_dir: str | None = None
    ) -> list[tuple[xr.Dataset, Path]]:
        """``(Dataset, path)`` pairs for this step's output and side products."""
        suffix = self.suffix or self.name
        items = list(result.items()) if isinstance(result, dict) else [(suffix, result)]
        items += list(self._side_products.items())
        return [(ds, self.output_path(key, root, default_dir)) for key, ds in items]

    def save(self, pairs: list[tuple[xr.Dataset, Path]]) -> list[Path]:
        """Write all ``(Dataset, path)`` pairs in ONE compute (current client, progress bar)."""
        if not pairs:
            return []
        from jwst_dask import cluster
        from jwst_dask.io import write_products

        for _, path in pairs:
            path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        pending = write_products([(ds, str(path)) for ds, path in pairs], compute=False)
        if hasattr(pending, "finalize"):  # a PendingWrite: blocks to store, then renames
            try:
                cluster.compute(pending.delayed)
            except BaseException:
                pending.abort()
                raise
            pending.finalize()
        else:
            cluster.compute(pending)
        elapsed = time.perf_counter() - t0
        for _, path in pairs:
            self.log.info("Saved model in %s", path)
        self.log.info("Computed and wrote %d product(s) in %.2f s", len(pairs), elapsed)
        return [path for _, path in pairs]


# ------------------------------------------------------------------------------ internal functions
def known_parameters(
    pars_file: Mapping[str, Any], params: Mapping[str, Any], spec: Mapping[str, ParamSpec]
) -> tuple[dict[str, Any], list[str]]:
    """The parameters of a file section, minus, when the file was written by the official pipeline
    (``class: jwst....``, maybe a newer jwst version), those ``spec`` does not know or whose value
    does not fit it; their names are the second item. Our own files keep every entry (so unknown
    names and wrong types fail)."""
    params = dict(params)
    if not str(pars_file.get("class") or "").startswith("jwst."):
        return params, []
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in params.items():
        try:
            kept[key] = spec[key].convert(value)
        except (KeyError, ParameterError):
            dropped.append(key)
    return kept, dropped


def _each(result: Products, fn: Callable[[xr.Dataset], xr.Dataset]) -> Products:
    if isinstance(result, dict):
        return {k: fn(v) for k, v in result.items()}
    return fn(result)


def _describe(ds: Products) -> str:
    if isinstance(ds, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in ds.items()) + "}"
    if isinstance(ds, xr.Dataset):
        return ds.attrs.get("filename") or f"<{ds.attrs.get('model_type', 'Dataset')}>"
    return repr(ds)


def _root_of(ds: Products) -> str | None:
    if isinstance(ds, dict):
        ds = next(iter(ds.values()), None)
    if isinstance(ds, xr.Dataset) and ds.attrs.get("filename"):
        return output_root(ds.attrs["filename"])
    return None


def _asn_first_member(path: Path) -> tuple[Path, str | None]:
    """The first science member of an association's first product, and the product name."""
    try:
        asn = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AssociationError(f"association {str(path)!r} is not readable JSON: {exc}") from None
    try:
        product = asn["products"][0]
        members = [m for m in product["members"] if m.get("exptype", "science").lower() == "science"]
        member = members[0]["expname"]
    except (KeyError, IndexError, TypeError):
        raise AssociationError(f"association {str(path)!r} has no product with a science member") from None
    member_path = path.parent / Path(member).name
    if not member_path.exists():
        raise AssociationError(f"association {path.name!r}: member {member!r} not found")
    return member_path.absolute(), product.get("name")
