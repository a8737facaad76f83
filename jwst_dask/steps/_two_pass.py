"""Two-pass frame statistics: a frame-wide reduction that does not hold the frame in memory.

A step that needs a few numbers computed from the whole frame (refpix's reference-pixel means,
jump's table of groups flagged in every pixel) before it can process any tile would, as a plain
graph reduction, make Dask compute every upstream tile for the reduction and keep them all until
the reduction's result lets the tile tasks consume them: the whole exposure is held at once.

Instead the statistic is computed from an independent copy of the upstream graph (its own tasks,
whose results are freed as soon as the reduction has used them), and the main chain is re-keyed
so that its source tasks (the file reads) wait for the statistic. The main chain then streams
tile by tile after the statistic is known. The cost is computing the upstream twice.

This is the pattern of :func:`dask.graph_manipulation.clone` and ``bind``, written here on the
task-spec graph because those functions leave the task objects of materialized layers with
their old keys and dependencies, which the graph optimizer rejects. Keys are derived from the
input keys and a seed, so the same input gives the same graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.array as da
import xarray as xr
from dask._task_spec import DataNode, Task, TaskRef, convert_legacy_graph
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask.utils import ensure_dict, key_split

from jwst_dask.fusion import barrier, cheap

__all__ = ["CONFIG_KEY", "after", "copy_graph", "frame_statistic"]

CONFIG_KEY = "jwst_dask.two_pass_statistics"


def _arrays(x: Any) -> list[da.Array]:
    """The dask arrays in ``x`` (an array, a Dataset's variables, nested lists/tuples)."""
    if isinstance(x, da.Array):
        return [x]
    if isinstance(x, xr.Dataset):
        return [v.data for v in x.data_vars.values() if isinstance(v.data, da.Array)]
    out: list[da.Array] = []
    if isinstance(x, (list, tuple)):
        for item in x:
            out += _arrays(item)
    return out


@cheap
def _second(_gate: Any, value: Any) -> Any:
    """Return ``value``; the first argument only orders the task after the gate. (Cheap: a gated
    block read stays a read that fusion may copy into each task of its stripe that needs it.)"""
    return value


@barrier
def _gate_value(*_parents: Any) -> None:
    """The single task the gated source tasks depend on (holds nothing: returns None)."""
    return None


def copy_graph(arrays: Sequence[da.Array], seed: Any, parents: Sequence[da.Array] = ()) -> list[da.Array]:
    """Independent copies of ``arrays``: the same tasks under new keys (shared tasks stay shared).

    With ``parents``, every source task of the copy (one that needs only constants, e.g. a block
    read from a file reader object) waits for one gate task that depends on every chunk of
    ``parents``.
    """
    arrays = list(arrays)
    if not arrays:
        return []
    hlg = HighLevelGraph.merge(*(a.__dask_graph__() for a in arrays))
    dsk = convert_legacy_graph(ensure_dict(hlg))
    token = tokenize(seed)
    names: dict[str, str] = {}

    def new_name(name: str) -> str:
        if name not in names:
            names[name] = f"{key_split(name)}-{tokenize(name, token)}"
        return names[name]

    def new_key(key):
        return (new_name(key[0]), *key[1:]) if isinstance(key, tuple) else new_name(key)

    frozen = _statistics_and_ancestors(dsk)
    renamed = {k: new_key(k) for k in dsk if k not in frozen}
    out: dict = {}
    gate_deps: list = []
    gate_key = None
    if parents:
        gate_key = f"gate-{tokenize(token, [p.name for p in parents])}"
        pg = HighLevelGraph.merge(*(p.__dask_graph__() for p in parents))
        out.update(ensure_dict(pg))
        gate_deps = [TaskRef(k) for p in parents for k in _flat(p.__dask_keys__())]
        out[gate_key] = Task(gate_key, _gate_value, *gate_deps)
    constants = {k for k, node in dsk.items() if isinstance(node, DataNode)}
    for k, node in dsk.items():
        if k in frozen:
            out[k] = node
            continue
        nk = renamed[k]
        if gate_key is not None and k not in constants and not (node.dependencies - frozen - constants):
            # a source (a block read from a constant reader object): waits for the gate. The
            # constants themselves stay constants, which the stripe fusion copies into their users.
            out[nk] = Task(nk, _second, TaskRef(gate_key), node.substitute(renamed, key=nk))
        else:
            out[nk] = node.substitute(renamed, key=nk)
    result = []
    for a in arrays:
        name = new_name(a.name)
        graph = HighLevelGraph.from_collections(name, out, dependencies=())
        result.append(da.Array(graph, name, a.chunks, meta=a._meta))
    return result


def _statistics_and_ancestors(dsk: dict) -> set:
    """The keys of earlier statistics (marked by :func:`_mark`) and of everything they need.

    Those are shared, never copied: a statistic is computed once, however many later passes
    copy the graph that contains it.
    """
    todo = [k for k in dsk if (k[0] if isinstance(k, tuple) else k).startswith(_STAT_PREFIX)]
    seen: set = set()
    while todo:
        k = todo.pop()
        if k in seen or k not in dsk:
            continue
        seen.add(k)
        todo.extend(dsk[k].dependencies)
    return seen


_STAT_PREFIX = "frame-statistic-"


def _identity(x: Any) -> Any:
    return x


def _mark(stat: Any) -> Any:
    """``stat`` with each dask array behind a marked layer (see :func:`_statistics_and_ancestors`)."""
    arrays = _arrays(stat)
    marked = []
    for a in arrays:
        name = _STAT_PREFIX + tokenize(a.name)
        layer = {
            (name, *k[1:]): Task((name, *k[1:]), _identity, TaskRef(k)) for k in _flat(a.__dask_keys__())
        }
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[a])
        marked.append(da.Array(graph, name, a.chunks, meta=a._meta))
    return _rebuild(stat, iter(marked))


def _flat(keys) -> list:
    if isinstance(keys, list):
        return [k for sub in keys for k in _flat(sub)]
    return [keys]


def after(children: Any, parents: Any) -> Any:
    """``children`` re-keyed so that their source tasks run only once ``parents`` are computed.

    ``children``: a dask array, a Dataset (its dask-backed variables) or nested lists/tuples of
    those; all are re-keyed together, so upstream tasks they share stay shared. ``parents``: a dask
    array or nested lists/tuples holding dask arrays (the statistic; other items are ignored).
    Returns the same kind as ``children``; numpy-backed variables are untouched.
    """
    arrays = _arrays(children)
    parent_list = _arrays(parents)
    if not arrays or not parent_list:
        return children
    seed = ("jwst_dask.after", [a.name for a in arrays], [p.name for p in parent_list])
    bound = iter(copy_graph(arrays, seed, parent_list))
    return _rebuild(children, bound)


def _rebuild(x: Any, new: Any) -> Any:
    """``x`` with its dask arrays replaced, in :func:`_arrays` order, by the next of ``new``."""
    if isinstance(x, da.Array):
        return next(new)
    if isinstance(x, xr.Dataset):
        out = x.copy()
        for name, var in x.data_vars.items():
            if isinstance(var.data, da.Array):
                out[name] = var.copy(data=next(new))
        return out
    if isinstance(x, (list, tuple)):
        return type(x)(_rebuild(item, new) for item in x)
    return x


def frame_statistic(
    upstream: Sequence[Any],
    reduce_fn: Callable[..., Any],
    gate: Any,
) -> tuple[Any, Any]:
    """Compute ``reduce_fn(*copies of upstream)`` in a pass of its own; return it and ``gate``
    made to wait for it.

    ``upstream``: the arrays the statistic is computed from; ``reduce_fn`` receives independent
    copies of the dask ones (same values, new keys; numpy ones as they are) and returns the
    statistic (dask arrays, possibly in nested tuples with other values). ``gate``: what the
    main chain goes on with (the step's input Dataset, or arrays), returned re-keyed by
    :func:`after` so that nothing upstream of it is computed before the statistic. Use the
    returned ``gate`` for everything downstream, never the original collections, or the
    upstream is computed a third time and held.

    Within ``reduce_fn``, let each upstream block have one consumer (reduce it, or copy the few
    pixels needed out of it, in one task per block): a block with several consumers waits in
    memory until Dask's priority order reaches all of them, which in a frame-wide pass can be
    after every other block has been computed.

    A statistic returned here is shared, not copied, by later passes that copy a graph holding
    it, so a chain of steps computes each statistic once.

    With the Dask configuration ``jwst_dask.two_pass_statistics`` set to False, the statistic is
    a plain reduction of ``upstream`` and ``gate`` is returned as it is (the one-pass graph:
    faster, but it holds the upstream blocks until the statistic is known). Dask's local
    schedulers run ready tasks last-in first-out rather than in priority order, and there the
    separate passes can hold more, not less (see docs/benchmarks.md).
    """
    upstream = list(upstream)
    if not dask.config.get(CONFIG_KEY, True):  # one pass: a plain reduction of the main chain
        return reduce_fn(*upstream), gate
    lazy = [i for i, a in enumerate(upstream) if isinstance(a, da.Array)]
    copies = list(upstream)
    seed = ("jwst_dask.frame_statistic", [upstream[i].name for i in lazy])
    for i, c in zip(lazy, copy_graph([upstream[i] for i in lazy], seed), strict=True):
        copies[i] = c
    stat = _mark(reduce_fn(*copies))
    return stat, after(gate, stat)
