"""The ASDF extension of a JWST FITS product: its tree's ``meta``, read and written quickly.

stdatamodels stores the whole model tree as an ASDF document in a one-row FITS table (EXTNAME
``ASDF``, column ``ASDF_METADATA``). Loading the asdf library's extensions costs seconds the first
time in a process, far more than the rest of ``open``. The ``meta`` tree of a product is almost
always plain YAML, so:

- reading parses the YAML document with PyYAML (tags kept as markers, no timestamp guessing, as
  asdf does), and falls back to the asdf library only when ``meta`` holds tagged objects (a gwcs);
- writing emits the ASDF 1.0.0 document itself (``--- !core/asdf-1.1.0`` with a ``meta`` mapping),
  and uses the asdf library only when there are non-plain objects to serialise.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import yaml

from jwst_dask.io import _common

__all__ = ["read_meta", "write_meta"]

_HEADER = "#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n--- !core/asdf-1.1.0\n"
_ROOT_TAG = "tag:stsci.edu:asdf/core/asdf-1.1.0"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Tagged:
    """A node with an application tag (kept opaque)."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any):
        self.tag, self.value = tag, value


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return value if node.tag == _ROOT_TAG else _Tagged(node.tag, value)


_Loader.add_multi_constructor("", _construct_tagged)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    pass


def _has_tagged(node: Any) -> bool:
    if isinstance(node, _Tagged):
        return True
    if isinstance(node, dict):
        return any(_has_tagged(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_tagged(v) for v in node)
    return False


def _yaml_part(raw: bytes) -> bytes:
    end = raw.find(b"\n...")
    return raw[: end + 1] if end >= 0 else raw


def read_meta(raw: bytes) -> tuple[dict, dict[str, Any]]:
    """The ``meta`` tree of an ASDF document as plain dicts, and the objects without a plain form
    (by dotted path; only filled on the asdf-library path)."""
    objects: dict[str, Any] = {}
    try:
        tree = yaml.load(_yaml_part(raw), Loader=_Loader)
        meta = tree.get("meta", {}) if isinstance(tree, dict) else {}
        if isinstance(meta, dict) and not _has_tagged(meta):
            plain = _common.to_plain(meta, "", objects)
            return (plain if isinstance(plain, dict) else {}), objects
    except yaml.YAMLError:
        pass
    return _read_with_asdf(raw)


def _read_with_asdf(raw: bytes) -> tuple[dict, dict[str, Any]]:
    import asdf

    objects: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with asdf.open(
            io.BytesIO(raw),
            lazy_load=True,
            memmap=False,
            ignore_unrecognized_tag=True,
            ignore_missing_extensions=True,
        ) as af:
            meta = af.tree.get("meta", {}) or {}
            plain = _common.to_plain(meta, "", objects)
    return (plain if isinstance(plain, dict) else {}), objects


def write_meta(meta: dict, objects: dict[str, Any] | None = None) -> bytes:
    """An ASDF document whose tree is ``{"meta": meta}`` (plus ``objects`` put back at their
    dotted paths, serialised by the asdf library)."""
    objects = dict(objects or {})
    plain = _common.to_plain(meta, "", objects)  # numpy scalars etc. become plain values
    if objects:
        return _write_with_asdf(plain, objects)
    body = yaml.dump(
        {"meta": plain},
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=False,
        width=100,
    )
    return (_HEADER + body + "...\n").encode("ascii", "backslashreplace")


def _write_with_asdf(meta: dict, objects: dict[str, Any]) -> bytes:
    import copy

    import asdf

    from jwst_dask.meta import set_path

    tree_meta = copy.deepcopy(meta)
    for path, obj in objects.items():
        if "[" not in path:
            set_path(tree_meta, path, obj)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asdf.AsdfFile({"meta": tree_meta}).write_to(buf)
    return buf.getvalue()
