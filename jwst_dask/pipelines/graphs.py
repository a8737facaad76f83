"""Reading the pipeline definitions in ``graphs/``.

- ``graphs/steps.yaml``: step alias -> step class path.
- ``graphs/<alias>.yaml``: one pipeline definition::

      alias: calwebb_detector1
      class: jwst_dask.pipelines.detector1.Detector1Pipeline
      base: <another alias>          # optional: inherit everything below, then override
      variants:                      # the first whose `when` matches the exposure meta
        - {name: miri, when: {instrument.name: MIRI}, order: [group_scale, dq_init, ...]}
        - {name: near-infrared, when: {}, order: [...]}
      parameters: {save_calibrated_ramp: false}        # pipeline-level parameters and defaults
      step_parameters: {ipc: {skip: true}}             # per-step defaults (over the step spec)
      intermediate_products:         # optional: save a step's output under a suffix when the
        jump: {suffix: ramp, when: save_calibrated_ramp}   # pipeline parameter is true
      output_suffix: rate            # suffix of the final product (a dict of products: its keys)

- ``graphs/exptypes.yaml``: EXP_TYPE (+ TSOVISIT) -> the pipeline alias of each stage.

A ``when`` maps dotted meta paths to a value or a list of values (any of), compared
case-insensitively as strings; an empty ``when`` always matches.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from jwst_dask._paths import data_dir
from jwst_dask.errors import ParameterError
from jwst_dask.meta import get_path

__all__ = [
    "class_table",
    "definition_aliases",
    "load_definition",
    "matches",
    "pipelines_for_exposure",
    "select_variant",
    "step_table",
]


def _read_yaml(path: Path) -> Any:
    try:
        with open(path) as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"pipeline definition {path.name!r} is not readable: {exc}") from None


@functools.lru_cache(maxsize=1)
def step_table() -> dict[str, str]:
    """Step alias -> class path (graphs/steps.yaml)."""
    return dict(_read_yaml(data_dir("graphs") / "steps.yaml") or {})


@functools.lru_cache(maxsize=1)
def definition_aliases() -> dict[str, Path]:
    """Pipeline alias -> definition file, for every graphs/*.yaml that defines a pipeline."""
    out = {}
    for path in sorted(data_dir("graphs").glob("*.yaml")):
        if path.name in ("steps.yaml", "exptypes.yaml"):
            continue
        raw = _read_yaml(path) or {}
        out[str(raw.get("alias", path.stem))] = path
    return out


def class_table() -> dict[str, str]:
    """Alias -> class path for steps and pipelines (a pipeline alias maps to its class)."""
    table = dict(step_table())
    for alias in definition_aliases():
        cls = load_definition(alias).get("class")
        if cls:
            table[alias] = cls
    return table


@functools.lru_cache(maxsize=64)
def _load(alias: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    paths = definition_aliases()
    if alias in paths:
        raw = _read_yaml(paths[alias]) or {}
    else:
        path = Path(alias)
        if not (path.suffix in (".yaml", ".yml") and path.is_file()):
            raise ParameterError(f"unknown pipeline definition {alias!r} (known: {', '.join(sorted(paths))})")
        raw = _read_yaml(path) or {}
    return normalise(raw, chain=(*chain, alias))


def load_definition(alias: str) -> dict[str, Any]:
    """The definition of pipeline ``alias`` (or a .yaml path), with ``base`` inheritance applied.

    Returns a new dict with keys ``alias``, ``class``, ``description``, ``variants``,
    ``parameters``, ``step_parameters``, ``intermediate_products``, ``output_suffix``.
    """
    return copy.deepcopy(_load(alias))


def normalise(raw: Mapping[str, Any], chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fill a raw definition mapping (from YAML or Python) with its base and defaults."""
    raw = dict(raw)
    base_alias = raw.get("base")
    if base_alias:
        if base_alias in chain:
            raise ParameterError(f"pipeline definition {chain[0]!r}: circular base {base_alias!r}")
        base = copy.deepcopy(_load(base_alias, chain))
    else:
        base = {
            "class": None,
            "description": "",
            "variants": [],
            "parameters": {},
            "step_parameters": {},
            "intermediate_products": {},
            "output_suffix": None,
        }
    out = dict(base)
    out["alias"] = raw.get("alias", chain[-1] if chain else None)
    for key in ("class", "description", "output_suffix"):
        if key in raw:
            out[key] = raw[key]
    if "variants" in raw:
        out["variants"] = [dict(v) for v in raw["variants"] or []]
    if "order" in raw:  # a single-variant shorthand
        out["variants"] = [{"name": "default", "when": {}, "order": list(raw["order"])}]
    out["parameters"] = {**base.get("parameters", {}), **(raw.get("parameters") or {})}
    steps = copy.deepcopy(base.get("step_parameters", {}))
    for name, pars in (raw.get("step_parameters") or {}).items():
        steps[name] = {**steps.get(name, {}), **(pars or {})}
    out["step_parameters"] = steps
    out["intermediate_products"] = {
        **base.get("intermediate_products", {}),
        **(raw.get("intermediate_products") or {}),
    }
    for variant in out["variants"]:
        if not isinstance(variant.get("order"), list):
            raise ParameterError(f"pipeline definition {out['alias']!r}: variant without an 'order' list")
        variant.setdefault("when", {})
        variant.setdefault("name", "default")
    if not out["variants"]:
        raise ParameterError(f"pipeline definition {out['alias']!r} has no step order (variants)")
    return out


def matches(when: Mapping[str, Any] | None, meta: Mapping[str, Any]) -> bool:
    """Whether the exposure metadata satisfies a ``when`` mapping (see module docs)."""
    for path, wanted in (when or {}).items():
        value = get_path(meta, path)
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(value, opt) for opt in options):
            return False
    return True


def _same(value: Any, wanted: Any) -> bool:
    if value is None or wanted is None:
        return value is None and wanted is None
    return str(value).strip().lower() == str(wanted).strip().lower()


def select_variant(definition: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The first variant of ``definition`` whose ``when`` matches ``meta``."""
    for variant in definition["variants"]:
        if matches(variant.get("when"), meta):
            return variant
    raise ParameterError(
        f"pipeline {definition.get('alias')!r}: no variant matches this exposure "
        f"(instrument {get_path(meta, 'instrument.name')!r}, exp_type {get_path(meta, 'exposure.type')!r})"
    )


def all_step_names(definition: Mapping[str, Any]) -> list[str]:
    """Every step name used by any variant, in first-seen order."""
    names: list[str] = []
    for variant in definition["variants"]:
        for name in variant["order"]:
            if name not in names:
                names.append(name)
    return names


@functools.lru_cache(maxsize=1)
def _exptype_rules() -> list[dict[str, Any]]:
    raw = _read_yaml(data_dir("graphs") / "exptypes.yaml") or {}
    return list(raw.get("rules") or [])


def pipelines_for_exposure(exp_type: str, tsovisit: bool | None = None) -> dict[str, str | None]:
    """``{"stage1": alias, "stage2": alias | None, "stage3": alias | None}`` for an EXP_TYPE
    (graphs/exptypes.yaml). Raises ParameterError for an EXP_TYPE not in the table."""
    exp = str(exp_type).strip().upper()
    tso = bool(tsovisit) if tsovisit is not None else False
    for rule in _exptype_rules():
        if exp not in [str(e).upper() for e in rule.get("exp_types", [])]:
            continue
        if "tsovisit" in rule and bool(rule["tsovisit"]) != tso:
            continue
        return {k: rule.get(k) for k in ("stage1", "stage2", "stage3")}
    raise ParameterError(f"no pipeline known for EXP_TYPE {exp_type!r} (graphs/exptypes.yaml)")
