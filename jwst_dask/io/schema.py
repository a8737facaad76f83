"""The FITS layout of each JWST data model, read from the official data-model schemas.

The official data models (``stdatamodels.jwst.datamodels``) describe in their schemas which metadata
path lives in which FITS keyword of which HDU (``fits_keyword``, ``fits_hdu``), and which arrays and
tables are stored in which extension (``fits_hdu``, ``datatype``, ``ndim``). We read those schemas
(only the schemas: no model class is ever instantiated) and reduce each to a :class:`ModelLayout`:

- ``keywords``: ``Keyword(path, hdu, keyword, type, title)`` for every mapped header keyword;
- ``arrays``: ``ArrayExt(name, attr, dtype, ndim)`` for every image extension;
- ``tables``: ``TableExt(name, attr, columns)`` for every binary-table extension.

Loading a schema costs a few tenths of a second, so layouts are cached in memory and on disk
(``$JWST_DASK_CACHE/schemas``, keyed by the stdatamodels version), which keeps ``open`` fast.

Product suffixes map to model classes with :func:`model_for_suffix` (``uncal`` -> ``Level1bModel``,
``rate`` -> ``ImageModel``, ``rateints`` -> ``CubeModel``, ...).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from jwst_dask.io.naming import STAGE1_STEP_SUFFIXES

__all__ = [
    "ArrayExt",
    "Keyword",
    "ModelLayout",
    "TableExt",
    "SUFFIX_MODELS",
    "model_for_suffix",
    "model_layout",
]

#: Product suffix -> data-model class name. Stage-1 step suffixes (intermediate products saved by
#: ``save_results``) are ramps.
SUFFIX_MODELS: dict[str, str] = {
    "uncal": "Level1bModel",
    "ramp": "RampModel",
    "dark": "RampModel",
    "rate": "ImageModel",
    "cal": "ImageModel",
    "i2d": "ImageModel",
    "bsub": "ImageModel",
    "crf": "ImageModel",
    "wfscmb": "ImageModel",
    "median": "ImageModel",
    "blot": "ImageModel",
    "outlier_i2d": "ImageModel",
    "flat": "ImageModel",
    "rateints": "CubeModel",
    "calints": "CubeModel",
    "crfints": "CubeModel",
    "bsubints": "CubeModel",
    "psfstack": "CubeModel",
    "psfsub": "CubeModel",
    "psfalign": "QuadModel",
    "trapsfilled": "TrapsFilledModel",
    "segm": "SegmentationMapModel",
    "s3d": "IFUCubeModel",
    "s2d": "SlitModel",
    "x1d": "MultiSpecModel",
    "x1dints": "TSOMultiSpecModel",
    "c1d": "MultiCombinedSpecModel",
    "fitopt": "RampFitOutputModel",
    "ami": "AmiLgFitModel",
    "amiavg": "AmiOIModel",
    "aminorm": "AmiOIModel",
}
for _step in STAGE1_STEP_SUFFIXES:  # stage-1 step outputs are ramps, except ramp fitting's
    if _step != "ramp_fit":
        SUFFIX_MODELS.setdefault(_step, "RampModel")


@dataclass(frozen=True)
class Keyword:
    """One header keyword: metadata ``path`` (dotted, below ``meta``), ``hdu`` name, ``keyword``."""

    path: str
    hdu: str
    keyword: str
    type: str | None = None
    title: str = ""


@dataclass(frozen=True)
class ArrayExt:
    """One image extension: EXTNAME ``name``, model attribute ``attr``, numpy ``dtype``, ``ndim``."""

    name: str
    attr: str
    dtype: str | None = None
    ndim: int | None = None


@dataclass(frozen=True)
class TableExt:
    """One table extension: EXTNAME ``name``, model attribute ``attr``, ``columns`` [(name, dtype)]."""

    name: str
    attr: str
    columns: tuple[tuple[str, str], ...] = ()


@dataclass
class ModelLayout:
    """The FITS layout of one data model (see the module docstring)."""

    model: str
    keywords: list[Keyword] = field(default_factory=list)
    arrays: list[ArrayExt] = field(default_factory=list)
    tables: list[TableExt] = field(default_factory=list)

    def array(self, name: str) -> ArrayExt | None:
        """The array extension called ``name`` (EXTNAME), or None."""
        return next((a for a in self.arrays if a.name == name), None)

    def table(self, name: str) -> TableExt | None:
        """The table extension called ``name`` (EXTNAME), or None."""
        return next((t for t in self.tables if t.name == name), None)

    def keywords_by_hdu(self) -> dict[str, dict[str, Keyword]]:
        """``{hdu: {KEYWORD: Keyword}}``; the first schema entry wins for a repeated keyword."""
        out: dict[str, dict[str, Keyword]] = {}
        for kw in self.keywords:
            out.setdefault(kw.hdu, {}).setdefault(kw.keyword, kw)
        return out

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ModelLayout:
        return cls(
            model=d["model"],
            keywords=[Keyword(**k) for k in d["keywords"]],
            arrays=[ArrayExt(**a) for a in d["arrays"]],
            tables=[
                TableExt(t["name"], t["attr"], tuple(tuple(c) for c in t["columns"])) for t in d["tables"]
            ],
        )


def model_for_suffix(suffix: str | None) -> str | None:
    """The data-model class name for a product suffix (``"rate"`` -> ``"ImageModel"``), or None."""
    if not suffix:
        return None
    return SUFFIX_MODELS.get(suffix.lower())


_lock = threading.Lock()


@lru_cache(maxsize=64)
def _cached_layout(model: str) -> ModelLayout:
    cache_file = _cache_dir() / f"{model}.json"
    try:
        return ModelLayout.from_json(json.loads(cache_file.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    layout = _layout_from_schema(model)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(layout.to_json()))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs time
    return layout


def model_layout(model: str) -> ModelLayout:
    """The FITS layout of data model ``model`` (a class name such as ``"RampModel"``).

    Raises ``ValueError`` for a name that is not a data model of stdatamodels.
    """
    with _lock:
        return _cached_layout(model)


def _cache_dir() -> Path:
    root = os.environ.get("JWST_DASK_CACHE") or str(Path.home() / ".cache" / "jwst-dask")
    try:
        version = metadata.version("stdatamodels")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    return Path(root) / "schemas" / f"stdatamodels-{version}"


def _layout_from_schema(model: str) -> ModelLayout:
    import asdf
    from stdatamodels.jwst import datamodels

    cls = getattr(datamodels, model, None)
    url = getattr(cls, "schema_url", None)
    if url is None:
        raise ValueError(f"unknown data model {model!r}")
    schema = asdf.schema.load_schema(url, resolve_references=True)
    layout = ModelLayout(model=model)
    _walk(schema, [], layout, set())
    return layout


def _walk(node: Any, path: list[str], layout: ModelLayout, seen: set) -> None:
    if not isinstance(node, dict):
        return
    if "fits_keyword" in node and path and path[0] == "meta":
        kw = Keyword(
            path=".".join(path[1:]),
            hdu=str(node.get("fits_hdu", "PRIMARY")).upper(),
            keyword=str(node["fits_keyword"]).upper(),
            type=node.get("type") if isinstance(node.get("type"), str) else None,
            title=str(node.get("title", "")).split("\n")[0],
        )
        if (kw.path, kw.keyword) not in seen:
            seen.add((kw.path, kw.keyword))
            layout.keywords.append(kw)
    elif "fits_hdu" in node and "fits_keyword" not in node and "[]" not in path:
        name = str(node["fits_hdu"]).upper()
        attr = ".".join(path)
        datatype = node.get("datatype")
        if isinstance(datatype, list) and datatype and isinstance(datatype[0], dict):
            if layout.table(name) is None:
                cols = tuple((str(c["name"]), _dtype_str(c.get("datatype"))) for c in datatype)
                layout.tables.append(TableExt(name, attr, cols))
        elif layout.array(name) is None and name != "ASDF":
            ndim = node.get("ndim")
            layout.arrays.append(ArrayExt(name, attr, _dtype_str(datatype), int(ndim) if ndim else None))
    for combiner in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combiner, []) or []:
            _walk(sub, path, layout, seen)
    for key, sub in (node.get("properties") or {}).items():
        _walk(sub, [*path, key], layout, seen)
    if isinstance(node.get("items"), dict):
        _walk(node["items"], [*path, "[]"], layout, seen)


def _dtype_str(datatype: Any) -> str | None:
    """numpy dtype string for an ASDF ``datatype`` (``"float32"``, ``["ascii", 26]`` -> ``"S26"``)."""
    if datatype is None:
        return None
    if isinstance(datatype, list):
        if len(datatype) == 2 and datatype[0] in ("ascii", "ucs4"):
            return f"{'S' if datatype[0] == 'ascii' else 'U'}{int(datatype[1])}"
        return None
    return str(datatype)
