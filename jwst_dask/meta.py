"""The metadata tree of a JWST product, as nested dictionaries.

A product's metadata lives in ``ds.attrs["meta"]`` as plain nested ``dict``s of JSON-compatible
values, laid out exactly as the official data models' ``meta`` tree (``meta.instrument.detector``
is ``ds.attrs["meta"]["instrument"]["detector"]``). Plain dictionaries survive pickling to Dask
workers and zarr round-trips; :class:`Meta` gives them attribute access.

The tree is treated as immutable by steps: a step that changes metadata calls
:func:`updated` (or ``ds.jwst.update_meta``), which deep-copies the tree first, so no two
datasets ever share a mutable subtree.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Meta", "get_path", "set_path", "updated", "flatten", "unflatten"]


class Meta(Mapping):
    """Attribute and item access over one node of a nested metadata dictionary.

    Reading a missing attribute returns an empty :class:`Meta` (so ``meta.a.b`` never raises
    in the middle of a path); ``bool(empty)`` is False and :meth:`get` returns a default.
    Assignment writes through to the underlying dictionary, creating intermediate nodes.

    >>> m = Meta({"instrument": {"name": "NIRCAM"}})
    >>> m.instrument.name
    'NIRCAM'
    >>> m.exposure.ngroups or 10
    10
    """

    __slots__ = ("_d",)

    def __init__(self, data: dict | None = None):
        object.__setattr__(self, "_d", {} if data is None else data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        d = object.__getattribute__(self, "_d")
        if name not in d:
            return Meta({})
        value = d[name]
        return Meta(value) if isinstance(value, dict) else value

    def __setattr__(self, name: str, value: Any) -> None:
        self._d[name] = value._d if isinstance(value, Meta) else value

    def __getitem__(self, key: str) -> Any:
        value = self._d[key]
        return Meta(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return f"Meta({self._d!r})"

    def to_dict(self) -> dict:
        """The underlying dictionary (not a copy)."""
        return self._d

    def get_path(self, path: str, default: Any = None) -> Any:
        """Value at a dotted path such as ``"exposure.ngroups"``, or ``default``."""
        return get_path(self._d, path, default)


def get_path(tree: Mapping, path: str, default: Any = None) -> Any:
    """Value at a dotted path in a nested mapping, or ``default`` when any part is missing."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def set_path(tree: dict, path: str, value: Any) -> None:
    """Set a dotted path in a nested dictionary in place, creating intermediate nodes."""
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def updated(tree: Mapping, changes: Mapping[str, Any]) -> dict:
    """A deep copy of ``tree`` with dotted-path ``changes`` applied.

    >>> updated({"a": {"b": 1}}, {"a.c": 2})
    {'a': {'b': 1, 'c': 2}}
    """
    new = copy.deepcopy(dict(tree))
    for path, value in changes.items():
        set_path(new, path, value)
    return new


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """Dotted-path view of the leaves of a nested mapping."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def unflatten(flat: Mapping[str, Any]) -> dict:
    """Inverse of :func:`flatten`."""
    tree: dict = {}
    for path, value in flat.items():
        set_path(tree, path, value)
    return tree
