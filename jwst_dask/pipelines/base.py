"""The Pipeline base class: an ordered list of steps built from a definition in ``graphs/``.

A pipeline is a :class:`~jwst_dask.steps.Step` whose ``process`` chains its sub-steps lazily. The
definition (``graphs/<alias>.yaml``, see :mod:`jwst_dask.pipelines.graphs`) gives the step order per
exposure variant, pipeline-level parameters, per-step defaults and the products to save. Sub-steps
are attributes (``pipe.jump.rejection_threshold = 5``).

Parameter precedence (most significant first): ``steps={...}`` / keyword arguments (the command
line), the user parameter file (``config_file``), the definition's ``step_parameters`` /
``parameters``, the step's ``spec`` defaults.

All products of a run (the final ones, ``intermediate_products``, step-level ``save_results``
outputs, side products) are written in ONE compute.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from jwst_dask.errors import ParameterError, ReferenceFileError
from jwst_dask.pipelines import graphs
from jwst_dask.steps.base import Products, Step, known_parameters, resolve_class
from jwst_dask.steps.params import ParamSpec, read_parameter_file

__all__ = ["Pipeline"]


def _infer_spec(name: str, value: Any) -> ParamSpec:
    """A parameter declared only by its default value in a definition."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, list | tuple):
        kind, value = "list", list(value)
    else:
        kind = "string"
    return ParamSpec(name, kind, default=value, comment="pipeline parameter", source="definition")


class Pipeline(Step):
    """Base class of the pipelines. Subclasses set ``class_alias`` (the definition alias, e.g.
    ``calwebb_detector1``); ``definition`` may instead be a definition alias or mapping, and
    ``step_defs`` may map step names to Step classes (else graphs/steps.yaml is used)."""

    definition: ClassVar[str | Mapping[str, Any] | None] = None
    _kind: ClassVar[str] = "pipeline"
    step_defs: ClassVar[Mapping[str, type[Step] | str] | None] = None

    def __init__(
        self,
        name: str | None = None,
        parent: Step | None = None,
        config_file: str | os.PathLike | None = None,
        *,
        definition: str | Mapping[str, Any] | None = None,
        steps: Mapping[str, Mapping[str, Any]] | None = None,
        **params: Any,
    ):
        defn = self._resolve_definition(definition)
        object.__setattr__(self, "_definition", defn)
        object.__setattr__(self, "_step_names", graphs.all_step_names(defn))
        file_pars: dict[str, Any] = {"parameters": {}, "steps": {}}
        dropped: list[str] = []
        if config_file:
            file_pars = read_parameter_file(config_file)
            top, dropped = known_parameters(file_pars, file_pars["parameters"], self._definition_specs())
            file_pars["parameters"] = top
        super().__init__(name=name or type(self).__name__, parent=parent, **file_pars["parameters"])
        for key in dropped:
            self.log.warning("Parameter %r from an official parameter file does not apply here: ignored", key)
        self.config_file = os.fspath(config_file) if config_file else None
        self.log.info("%s instance created.", type(self).__name__)
        steps = dict(steps or {})
        official = str(file_pars.get("class") or "").startswith("jwst.")
        for step_name, pars in list(file_pars["steps"].items()):
            if official and step_name not in self._step_names and _is_true(pars.get("skip")):
                # a step of a newer jwst this pipeline does not have, switched off anyway
                self.log.warning(
                    "Parameter file step %r is not in %s; it is skipped there: ignored", step_name, self.name
                )
                del file_pars["steps"][step_name]
        for label, source in (("parameter file", file_pars["steps"]), ("steps", steps)):
            unknown = sorted(set(source) - set(self._step_names))
            if unknown:
                raise ParameterError(
                    f"pipeline {self.name}: unknown step(s) {', '.join(map(repr, unknown))} in {label} "
                    f"(steps: {', '.join(self._step_names)})"
                )
        for step_name in self._step_names:
            cls = self._step_class(step_name)
            from_file, dropped = known_parameters(
                file_pars, file_pars["steps"].get(step_name, {}), cls.merged_spec()
            )
            for key in dropped:
                self.log.warning(
                    "Parameter %r of step %s from an official parameter file does not apply here: ignored",
                    key,
                    step_name,
                )
            pars = {
                **defn["step_parameters"].get(step_name, {}),
                **from_file,
                **(steps.get(step_name) or {}),
            }
            sub = cls(name=step_name, parent=self, **pars)
            object.__setattr__(self, step_name, sub)
        self.set_parameters(params)

    # ---------------------------------------------------------------------------- definition
    def _resolve_definition(self, definition: str | Mapping[str, Any] | None) -> dict[str, Any]:
        source = definition or type(self).definition or type(self).class_alias
        if source is None:
            raise ParameterError(f"{type(self).__name__}: no pipeline definition (set class_alias)")
        if isinstance(source, Mapping):
            return graphs.normalise(source, chain=(str(source.get("alias", type(self).__name__)),))
        return graphs.load_definition(str(source))

    @property
    def pipeline_definition(self) -> dict[str, Any]:
        """The definition this instance was built from (after ``base`` inheritance)."""
        return self._definition

    @property
    def step_names(self) -> list[str]:
        """Every sub-step name (all variants)."""
        return list(self._step_names)

    def _step_class(self, step_name: str) -> type[Step]:
        table = type(self).step_defs or {}
        cls = table.get(step_name)
        if cls is None:
            return resolve_class(step_name)
        if isinstance(cls, str):
            return resolve_class(cls)
        return cls

    def parameter_specs(self) -> dict[str, ParamSpec]:
        """The universal parameters, the class spec, and the definition's ``parameters`` (whose
        values are the defaults)."""
        return self._definition_specs()

    def _definition_specs(self) -> dict[str, ParamSpec]:
        spec = dict(self.merged_spec())
        owner = f"pipeline {type(self).__name__}"
        for key, value in self._definition.get("parameters", {}).items():
            if key in spec:
                spec[key] = dataclasses.replace(spec[key], default=spec[key].convert(value, owner))
            else:
                spec[key] = _infer_spec(key, value)
        return spec

    def steps_in_order(self, ds: Products) -> list[Step]:
        """The sub-steps that apply to this exposure, in order (the matching variant)."""
        meta = _first(ds).attrs.get("meta", {})
        variant = graphs.select_variant(self._definition, meta)
        self.log.debug("Variant %s: %s", variant["name"], ", ".join(variant["order"]))
        return [getattr(self, n) for n in variant["order"]]

    # ------------------------------------------------------------------------------ parameters
    def parameter_tree(self) -> dict[str, Any]:
        """The parameter-file layout: the pipeline's parameters and one entry per sub-step."""
        tree = super().parameter_tree()
        tree["steps"] = {}
        for step_name in self._step_names:
            sub = getattr(self, step_name)
            cls = type(sub)
            tree["steps"][step_name] = {
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "parameters": sub.get_pars(),
            }
        return tree

    # -------------------------------------------------------------------------------- prefetch
    def prefetch(self, ds: Products, steps: list[Step]) -> dict[str, str]:
        """Select every reference file the non-skipped ``steps`` need, before any graph is built.
        Raises ONE ReferenceFileError listing all that are missing."""
        sample = _first(ds)
        wanted: list[str] = []
        missing: list[str] = []
        for step in steps:
            if step.skip:
                continue
            for reftype, path in step.reference_overrides().items():
                if str(path).upper() != "N/A" and not Path(path).expanduser().is_file():
                    missing.append(f"{reftype} (override_{reftype} of {step.name}: {path} not found)")
            wanted += [r for r in step.reference_file_types if r not in step.reference_overrides()]
        wanted = list(dict.fromkeys(wanted))
        found: dict[str, str] = {}
        if wanted:
            self.log.info(
                "Prefetching reference files for dataset: %r reftypes = %s",
                sample.attrs.get("filename", "<dataset>"),
                wanted,
            )
            from jwst_dask.refs import best_references

            try:
                found = dict(best_references(sample.jwst.meta, wanted))
            except ReferenceFileError:
                for reftype in wanted:  # one at a time, to name every missing reference
                    try:
                        found.update(best_references(sample.jwst.meta, [reftype]))
                    except ReferenceFileError as exc:
                        missing.append(f"{reftype} ({exc})")
            for reftype, path in found.items():
                if path != "N/A" and not Path(path).is_file():
                    missing.append(f"{reftype} ({path} not found)")
                else:
                    self.log.info("Prefetch for %s reference file is '%s'.", reftype.upper(), path)
        if missing:
            raise ReferenceFileError(
                f"pipeline {self.name}: {len(missing)} reference file(s) missing: " + "; ".join(missing)
            )
        for step in steps:
            step.set_prefetched({r: found[r] for r in step.reference_file_types if r in found})
        return found

    # -------------------------------------------------------------------------------- running
    def process(self, ds: Products) -> Products:
        """Chain the sub-steps lazily (no saving); see :meth:`run_all` for every product."""
        final, _, _ = self._execute(ds)
        return final

    def run(self, input: Any) -> Products:
        """Run on ``input``: the lazy final product (or ``{suffix: product}``). When saving is
        asked for, every product of the run is written in one compute."""
        return self._run(input)[0]

    def run_all(self, input: Any) -> dict[str, xr.Dataset]:
        """Like :meth:`run`, but return every product of the run keyed by suffix (the final
        products, intermediate and side products, step outputs keyed by step name)."""
        return self._run(input)[1]

    def _run(self, input: Any) -> tuple[Products, dict[str, xr.Dataset]]:
        ds = self.open_input(input)
        t0 = time.perf_counter()
        self.log.info("Step %s running with args (%s,).", self.name, _first(ds).attrs.get("filename", ""))
        for hook in self.pre_hooks or ():  # may replace the input
            out = self._run_hook(hook, ds)
            ds = ds if out is None else out
        final, products, targets = self._execute(ds)
        for hook in self.post_hooks or ():  # see the final product (what is saved is already set)
            self._run_hook(hook, final)
        self.log.info("Step %s done (graph built in %.3f s)", self.name, time.perf_counter() - t0)
        if self.parent is None and targets:
            self.save(targets)
        return final, products

    def _execute(self, ds: Products) -> tuple[Products, dict[str, xr.Dataset], list]:
        """(final, all products, save targets) for one run."""
        steps = self.steps_in_order(ds)
        self.prefetch(ds, steps)
        root = self._root
        out_dir = self.output_dir
        saving = self.wants_saving()
        products: dict[str, xr.Dataset] = {}
        targets: list[tuple[xr.Dataset, Path]] = []
        intermediate = self._definition.get("intermediate_products", {})
        current: Products = ds
        for step in steps:
            current = step.run_lazy(current)
            side = step.side_products
            products.update(side)
            if step.wants_saving() and not step.skip:
                targets += step.save_targets(current, root, out_dir)
                if isinstance(current, xr.Dataset):
                    products[step.name] = current
            elif saving and side:
                targets += [(p, self.output_path(k, root)) for k, p in side.items()]
            rule = intermediate.get(step.name)
            if rule and getattr(self, str(rule.get("when", "")), True):
                suffix = str(rule["suffix"])
                products[suffix] = current
                if saving:
                    targets += _pairs(current, suffix, lambda s: self.output_path(s, root))
        suffix = self._definition.get("output_suffix") or self.suffix or self.class_alias or self.name
        if isinstance(current, dict):
            products.update(current)
        else:
            products[suffix] = current
        if saving:
            targets += _pairs(current, suffix, lambda s: self.output_path(s, root))
        return current, products, targets


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def _pairs(result: Products, suffix: str, path_of) -> list[tuple[xr.Dataset, Path]]:
    if isinstance(result, dict):
        return [(v, path_of(k)) for k, v in result.items()]
    return [(result, path_of(suffix))]


def _first(ds: Products) -> xr.Dataset:
    if isinstance(ds, dict):
        return next(iter(ds.values()))
    return ds
