"""Step parameters: the ``spec`` grammar, value conversion, and parameter files (ASDF and cfg).

A step declares its parameters in the official pipeline's configobj grammar, one per line::

    rejection_threshold = float(default=4.0, min=0)  # sigma threshold for a jump
    algorithm = option('OLS', 'OLS_C', default='OLS_C')
    extract_orders = int_list(default=None)

so parameter files written for the official pipeline, and ``--steps.<step>.<param>=<value>`` on the
command line, behave the same here. Values coming from the command line or a cfg file are strings;
:meth:`ParamSpec.convert` turns them (and Python values) into the declared type, or raises one
:class:`~jwst_dask.errors.ParameterError` naming the step, the parameter and the value.

Parameter files are normalised to one layout whatever their format::

    {"class": "jwst_dask.pipelines.detector1.Detector1Pipeline" | None,
     "name": "Detector1Pipeline" | None,
     "parameters": {param: value, ...},
     "steps": {step_name: {param: value, ...}, ...}}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwst_dask.errors import InputFileError, ParameterError

__all__ = [
    "ParamSpec",
    "parse_spec",
    "read_parameter_file",
    "write_parameter_file",
]

_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}
_LIST_KINDS = {"list", "float_list", "int_list", "string_list", "force_list", "mixed_list", "tuple"}
_CHECK_RE = re.compile(r"^[A-Za-z_]\w*\s*(\(.*\))?$", re.DOTALL)
_STRING_KINDS = {"string", "output_file", "input_file"}


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its configobj type (``kind``), arguments, default and comment."""

    name: str
    kind: str
    default: Any = None
    options: tuple = ()
    min: Any = None
    max: Any = None
    comment: str = ""
    source: str = field(default="", compare=False)

    def convert(self, value: Any, owner: str = "step") -> Any:
        """``value`` converted to this parameter's type; ParameterError if it does not fit."""
        try:
            return self._convert(value)
        except (TypeError, ValueError) as exc:
            reason = str(exc) or f"expected {self.kind}"
            raise ParameterError(
                f"{owner}: invalid value {value!r} for parameter {self.name!r} ({self.kind}): {reason}"
            ) from None

    def _convert(self, value: Any) -> Any:
        kind = self.kind
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            if kind == "boolean" and self.default is not None:
                raise ValueError("expected a boolean")
            if kind == "option" and self.options and None not in self.options and value is None:
                if self.default is not None:
                    raise ValueError(f"expected one of {list(self.options)}")
            if kind == "option" and isinstance(value, str) and value in self.options:
                return value
            return None
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError("expected a boolean (True/False)")
        if kind == "integer":
            return self._bounded(_to_int(value))
        if kind == "float":
            return self._bounded(_to_float(value))
        if kind in _STRING_KINDS or kind in ("is_string_or_none", "string_or_none"):
            if isinstance(value, str):
                return value
            raise TypeError("expected a string")
        if kind == "option":
            for opt in self.options:
                if value == opt or (opt is not None and str(value) == str(opt)):
                    return opt
            raise ValueError(f"expected one of {[o for o in self.options]}")
        if kind in _LIST_KINDS:
            if kind == "list" and not isinstance(value, str | list | tuple) and not hasattr(value, "tolist"):
                value = [value]  # a single hook / item
            items = _to_list(value)
            if kind == "float_list":
                items = [_to_float(v) for v in items]
            elif kind == "int_list":
                items = [_to_int(v) for v in items]
            n = len(items)
            if self.min is not None and n < int(self.min):
                raise ValueError(f"expected at least {self.min} items")
            if self.max is not None and n > int(self.max):
                raise ValueError(f"expected at most {self.max} items")
            return items
        return value  # 'pass' and types we do not know: as given

    def _bounded(self, number: Any) -> Any:
        if self.min is not None and number < float(self.min):
            raise ValueError(f"must be >= {self.min}")
        if self.max is not None and number > float(self.max):
            raise ValueError(f"must be <= {self.max}")
        return number

    def describe(self) -> str:
        """The declaration as written in a spec, for ``--help``."""
        args = [repr(o) for o in self.options]
        if self.min is not None:
            args.append(f"min={self.min}")
        if self.max is not None:
            args.append(f"max={self.max}")
        args.append(f"default={self.default!r}")
        return f"{self.kind}({', '.join(args)})"


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("expected an integer")
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError("expected an integer") from None
    raise TypeError("expected an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf":
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError("expected a number") from None
    raise TypeError("expected a number")


def _to_list(value: Any) -> list:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "(")) and text.endswith(("]", ")")):
            text = text[1:-1]
        return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        out = value.tolist()
        return out if isinstance(out, list) else [out]
    raise TypeError("expected a list")


# --------------------------------------------------------------------------------------------- spec
def _literal(text: str | None) -> Any:
    """A configobj argument string as a Python value (validate hands them over as strings)."""
    if text is None:
        return None
    if isinstance(text, list):
        return [_literal(t) for t in text]
    low = text.strip().lower()
    if low == "none":
        return None
    if low in ("true", "false"):
        return low == "true"
    return text


def _default_value(kind: str, text: Any) -> Any:
    value = _literal(text)
    if value is None:
        return None
    probe = ParamSpec("default", kind)
    try:
        return probe._convert(value)
    except (TypeError, ValueError):
        return value


def parse_spec(text: str, source: str = "spec") -> dict[str, ParamSpec]:
    """Parse a configobj ``spec`` block into ``{name: ParamSpec}`` (in declaration order).

    >>> p = parse_spec("n_pix_grow_sat = integer(default=1, min=0)  # pixels to grow")
    >>> p["n_pix_grow_sat"].default, p["n_pix_grow_sat"].min, p["n_pix_grow_sat"].comment
    (1, '0', 'pixels to grow')
    """
    from configobj import validate

    parser = validate.Validator()
    out: dict[str, ParamSpec] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ParameterError(f"{source}: cannot parse spec line {raw.strip()!r}")
        name, rest = (part.strip() for part in line.split("=", 1))
        check, comment = _split_comment(rest)
        if not _CHECK_RE.match(check):
            raise ParameterError(f"{source}: cannot parse spec for {name!r}: {check!r}")
        try:
            kind, args, kwargs, default = parser._parse_with_caching(check)
        except Exception as exc:  # validate raises its own exception types
            raise ParameterError(f"{source}: cannot parse spec for {name!r}: {check!r} ({exc})") from None
        kind = kind.strip()
        options = tuple(_literal(a) for a in args) if kind == "option" else ()
        out[name] = ParamSpec(
            name=name,
            kind=kind,
            default=_default_value(kind, default),
            options=options,
            min=kwargs.get("min"),
            max=kwargs.get("max"),
            comment=comment,
            source=source,
        )
    return out


def _split_comment(text: str) -> tuple[str, str]:
    """Split ``check(...)  # comment`` at the first ``#`` outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return text[:i].strip(), text[i + 1 :].strip()
    return text.strip(), ""


# ---------------------------------------------------------------------------------- parameter files
def read_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read an ASDF or legacy cfg parameter file into the normalised layout (see module docs).

    A ``config_file`` entry inside a step section is resolved relative to the file's folder and
    merged under that section's own values (the local values win).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"parameter file {str(path)!r} not found")
    if path.suffix.lower() == ".asdf":
        pars = _read_asdf(path)
    else:
        pars = _read_cfg(path)
    for name, values in list(pars["steps"].items()):
        sub = values.pop("config_file", None)
        if sub:
            sub_path = Path(sub) if Path(sub).is_absolute() else path.parent / sub
            inner = read_parameter_file(sub_path)
            pars["steps"][name] = {**inner["parameters"], **values}
    return pars


def _read_asdf(path: Path) -> dict[str, Any]:
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = _plain(dict(af.tree))
    except Exception as exc:
        raise InputFileError(f"parameter file {str(path)!r} is not readable ASDF: {exc}") from None
    steps: dict[str, dict] = {}
    for entry in tree.get("steps") or []:
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ParameterError(f"parameter file {path.name!r}: each 'steps' entry needs a 'name'")
        steps[str(entry["name"])] = dict(entry.get("parameters") or {})
    return {
        "class": tree.get("class"),
        "name": tree.get("name"),
        "parameters": dict(tree.get("parameters") or {}),
        "steps": steps,
    }


def _plain(obj: Any) -> Any:
    """ASDF tree nodes as plain Python containers and scalars."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, str):
        return obj.tolist()
    return obj


def _read_cfg(path: Path) -> dict[str, Any]:
    from configobj import ConfigObj, ConfigObjError

    try:
        cfg = ConfigObj(str(path), file_error=True, interpolation=False)
    except (ConfigObjError, OSError) as exc:
        raise InputFileError(f"parameter file {str(path)!r} is not a readable cfg file: {exc}") from None
    top = {k: v for k, v in cfg.items() if k not in cfg.sections}
    steps = {}
    if "steps" in cfg.sections:
        for name in cfg["steps"].sections:
            section = cfg["steps"][name]
            steps[name] = {k: v for k, v in section.items() if k not in section.sections}
    cls = top.pop("class", None)
    name = top.pop("name", None)
    return {"class": cls or None, "name": name or None, "parameters": top, "steps": steps}


def write_parameter_file(path: str | os.PathLike, pars: Mapping[str, Any]) -> Path:
    """Write the normalised layout as ASDF (``.asdf``) or as a cfg file (any other extension)."""
    path = Path(path)
    if path.suffix.lower() == ".asdf":
        import asdf

        tree = {
            "class": pars.get("class"),
            "name": pars.get("name"),
            "parameters": _serialisable(pars.get("parameters", {})),
        }
        if pars.get("steps"):
            tree["steps"] = [
                {"class": sub.get("class"), "name": name, "parameters": _serialisable(sub["parameters"])}
                for name, sub in _step_entries(pars["steps"]).items()
            ]
        asdf.AsdfFile(tree).write_to(path)
        return path
    from configobj import ConfigObj

    cfg = ConfigObj(interpolation=False)
    if pars.get("name"):
        cfg["name"] = pars["name"]
    if pars.get("class"):
        cfg["class"] = pars["class"]
    for key, value in pars.get("parameters", {}).items():
        cfg[key] = _cfg_value(value)
    if pars.get("steps"):
        cfg["steps"] = {}
        for name, sub in _step_entries(pars["steps"]).items():
            cfg["steps"][name] = {k: _cfg_value(v) for k, v in sub["parameters"].items()}
    with open(path, "wb") as fh:
        cfg.write(fh)
    return path


def _step_entries(steps: Mapping[str, Any]) -> dict[str, dict]:
    """Accept ``{name: params}`` or ``{name: {"class": ..., "parameters": params}}``."""
    out = {}
    for name, sub in steps.items():
        if isinstance(sub, Mapping) and "parameters" in sub and isinstance(sub["parameters"], Mapping):
            out[name] = {"class": sub.get("class"), "parameters": dict(sub["parameters"])}
        else:
            out[name] = {"class": None, "parameters": dict(sub)}
    return out


def _serialisable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list):
            value = [
                v if isinstance(v, str | int | float | bool) or v is None else _hook_name(v) for v in value
            ]
        elif not (isinstance(value, str | int | float | bool) or value is None):
            value = _hook_name(value)
        out[key] = value
    return out


def _hook_name(obj: Any) -> str:
    """Callables (hooks) are written as their import path."""
    mod = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod}.{qual}" if mod else str(qual)


def _cfg_value(value: Any) -> Any:
    if value is None:
        return "None"
    if isinstance(value, list | tuple):
        return [_cfg_value(v) for v in value]
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return _hook_name(value)
