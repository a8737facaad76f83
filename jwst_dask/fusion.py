"""Stripe fusion: run each pixel stripe's chain of steps as a few tasks instead of a hundred.

Every step adds its own layers to the graph (one per variable it updates, one per reference block
it reads, the slices of a multi-output kernel), and Dask's own optimisation fuses only linear
chains. A full-frame exposure in 16 stripes was about 1,800 tasks; the per-task cost of the
distributed scheduler (about a millisecond, in the same process as the compute threads) then
weighed as much as the pixel maths. The steps stay separate graph nodes in the code; this pass
only changes how the optimised graph is cut into tasks.

The rule (:func:`fuse_exclusive`): walking from the outputs back, a task joins the group of its
dependents when **all** of its dependents are in one group, it is not a requested key, and it keeps
the group within one pixel stripe. A task's stripe is read off its key: the last two block
indices, the y and x block of every image array; an overlap's fractional slice counts for the
block it is cut for. (An overlap padded with a constant boundary would shift the block indices by
one and defeat this, so the steps' overlaps use ``boundary="none"``.) A plain block read used by
several groups of one stripe (a reference block two steps use) is copied into each. Each group
has one output, so it runs as one task (:meth:`dask._task_spec.Task.fuse`, which frees inner
results as soon as they are used). Tasks that several stripes use (the rows an overlap shares
with a neighbour, a frame-wide statistic, the gate of a two-pass statistic) stay tasks of their
own, so the parallelism over stripes and the memory bound per stripe are unchanged, and a
reduction never swallows the stripes it reduces.

The fused graph runs in the order of :func:`sweep_order` (stripes first to last, one output
finished before the next is started). Measured on four full-frame NIRCam exposures (16 stripes
each, with the block writes of a stripe in one task, see
:func:`jwst_dask.io.fits_write.store_blocks`): 1,803 tasks per exposure unfused, about 260 fused;
see docs/benchmarks.md for the time and memory.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

__all__ = ["barrier", "cheap", "fuse_exclusive", "fused_graph", "stripe_of", "sweep_order"]


def stripe_of(key: Hashable) -> tuple | None:
    """The pixel stripe a task key belongs to: its last two block indices, or None for a key that
    is not a block of an image array (delayed objects, 0-d/1-d blocks).

    An overlap's slices have fractional indices named after the block they are cut from:
    ``b + 0.1`` is cut from block ``b`` for block ``b + 1``, ``b - 0.1`` from ``b`` for ``b - 1``;
    they count for the block they are cut for (where they are used)."""
    if not isinstance(key, tuple) or len(key) < 3:
        return None
    idx = key[-2:]
    if not all(isinstance(v, (int, float)) for v in idx):
        return None
    return tuple(_destination(v) for v in idx)


def _destination(v: float) -> int:
    base = math.floor(v)
    frac = v - base
    return base + 1 if 0 < frac < 0.5 else base


def fuse_exclusive(dsk: Mapping[Hashable, Any], keys: set) -> tuple[dict[Hashable, Any], dict[Hashable, int]]:
    """Fuse every task into its dependents' group when that group is the only one using it.

    ``dsk`` maps keys to :class:`dask._task_spec.GraphNode` objects (an optimised graph),
    ``keys`` are the requested outputs (never fused away). Returns a new graph with one task per
    group, keyed by the group's output key, so every key other graphs or the caller refer to
    keeps its name, and the priority of each task (:func:`sweep_order`, ties broken by
    :func:`dask.order.order` of the unfused graph) for a scheduler that accepts priorities.
    """
    from dask._task_spec import DependenciesMapping, Task
    from dask.core import reverse_dict
    from dask.order import order

    dependencies = DependenciesMapping(dsk)
    dependents = reverse_dict(dependencies)
    priorities = order(dsk)
    group: dict[Hashable, Any] = {}  # task -> its group's output key (a frozenset if copied)
    # outputs before their inputs: dask.order is a topological order (inputs first)
    for key in sorted(dsk, key=lambda k: -priorities[k]):
        owners: set = set()
        for user in dependents.get(key, ()):
            owner = group[user]
            owners.update(owner) if isinstance(owner, frozenset) else owners.add(owner)
        s_key = stripe_of(key)
        if key in keys or dsk[key].block_fusion or not owners:
            group[key] = key
        elif _small_data(dsk[key]):
            # a constant (a reader object, a small array): copied into every task that uses it.
            # As a task of its own it would be a root that Dask's ordering may place late, and
            # every block waiting for it would wait in memory.
            group[key] = frozenset(owners)
        elif len(owners) == 1 and _may_join(s_key, stripe_of(next(iter(owners)))):
            group[key] = owners.pop()
        elif (
            s_key is not None
            and _reads_only(key, dsk, dependencies)
            and all(stripe_of(o) == s_key for o in owners)
        ):
            group[key] = frozenset(owners)  # a block read: copied into each of its stripe's tasks
        else:
            group[key] = key
    members: dict[Hashable, list] = defaultdict(list)
    for key, owner in group.items():
        for root in owner if isinstance(owner, frozenset) else (owner,):
            members[root].append(dsk[key])
    out: dict[Hashable, Any] = {}
    for root, tasks in members.items():
        out[root] = tasks[0] if len(tasks) == 1 else Task.fuse(*tasks, key=root)
    return out, sweep_order(DependenciesMapping(out), priorities)


def sweep_order(dependencies: Mapping[Hashable, Any], rank: Mapping[Hashable, int]) -> dict[Hashable, int]:
    """Priorities (lower runs first) that finish one output before starting the inputs of the next.

    A depth-first walk from the outputs (tasks nothing depends on) numbers every task once all its
    inputs are numbered. Of a task's inputs it enters next the one whose own inputs are most
    nearly all numbered already; ties go to the lowest place along the stripes, then to ``rank``
    (Dask's order of the unfused graph). On a stripe-fused graph this sweeps the stripes from the
    first to the last, each stripe's writes right after the tasks they need and a neighbour's halo
    read just before it is used, one exposure after another. Dask's order (of the fused graph, or
    of the unfused one at the groups' outputs) started in the middle of the frame, left the edge
    stripes to the end and interleaved exposures, holding several exposures' blocks at once.
    """
    users: set = set()
    for deps in dependencies.values():
        users.update(deps)
    order: dict[Hashable, int] = {}

    # where a task lies along the stripes: its own stripe when one of its inputs shares it (or it
    # has no placed input), else the lowest place of its inputs: the partial sums of a tree
    # reduction, whose block index counts partial sums, not stripes, lie where their inputs do
    place: dict[Hashable, tuple] = {}
    for key in sorted(dependencies, key=rank.__getitem__):  # Dask's order: inputs first
        own = stripe_of(key)
        inputs = [place[d] for d in dependencies[key] if d in place]
        if own is not None and (not inputs or any(stripe_of(d) == own for d in dependencies[key])):
            place[key] = own
        elif inputs:
            place[key] = min(inputs)

    def readiness(key: Hashable) -> tuple:
        deps = dependencies[key]
        done = sum(1 for d in deps if d in order)
        return (-(done / len(deps)) if deps else -1.0, place.get(key, ()), rank[key])

    def inputs_of(key: Hashable) -> tuple[bool, list]:
        """(greedy, the inputs still to enter). A task with many inputs takes them in rank order
        from a list sorted once (last = next), so each pick costs O(1), not a scan of them all."""
        deps = list(dependencies[key])
        if len(deps) > _GREEDY_LIMIT:
            return False, sorted(deps, key=rank.__getitem__, reverse=True)
        return True, deps

    def pick(greedy: bool, pending: list) -> Hashable | None:
        if not greedy:
            while pending and (pending[-1] in order or pending[-1] in entered):
                pending.pop()
            return pending.pop() if pending else None
        pending[:] = [d for d in pending if d not in order and d not in entered]
        return min(pending, key=readiness) if pending else None

    for top in sorted((k for k in dependencies if k not in users), key=rank.__getitem__):
        entered = {top}
        stack = [(top, *inputs_of(top))]
        while stack:
            node, greedy, pending = stack[-1]
            dep = pick(greedy, pending)
            if dep is None:
                stack.pop()
                order[node] = len(order)
            else:
                entered.add(dep)
                stack.append((dep, *inputs_of(dep)))
    return order


_GREEDY_LIMIT = 256  # inputs of one task above which sweep_order takes them in rank order


_SMALL = 1 << 20  # bytes: constants up to this size are copied into their users' tasks


def _small_data(node: Any) -> bool:
    """True for a constant of the graph (a DataNode) that is small enough to copy."""
    from dask._task_spec import DataNode

    if not isinstance(node, DataNode):
        return False
    value = node.value
    nbytes = getattr(value, "nbytes", None)
    if nbytes is None:
        nbytes = sys.getsizeof(value)
    return int(nbytes) <= _SMALL


def cheap(func: Callable) -> Callable:
    """Mark a block function as cheap enough to run once per task that uses its result (e.g. the
    translation of a reference DQ block): fusion may copy a block read followed by it into every
    group of the stripe that needs it, instead of keeping its result in memory as a task."""
    func._jwst_dask_cheap = True  # type: ignore[attr-defined]
    return func


def barrier(func: Callable) -> Callable:
    """Mark a task function whose result is only an ordering token (e.g. the gate of a two-pass
    statistic): a block read that waits for it is still a read fusion may copy."""
    func._jwst_dask_barrier = True  # type: ignore[attr-defined]
    return func


def _reads_only(key: Hashable, dsk: Mapping, dependencies: Mapping) -> bool:
    """True for a block read (dask's getter on constants, e.g. a reference file's lazy reader),
    possibly waiting for a :func:`barrier` and followed by functions marked :func:`cheap` (and
    dtype conversions): cheap to run twice, so several tasks of one stripe may each run it,
    instead of one task whose block stays in memory until the last of them has run. Anything
    else (even fused with a read) runs once."""
    from dask._task_spec import DataNode

    node = dsk.get(key)
    if isinstance(node, DataNode) or _is_barrier(node):
        return True
    return _only_cheap(node) and all(_reads_only(d, dsk, dependencies) for d in dependencies.get(key, ()))


def _is_barrier(node: Any) -> bool:
    """A :func:`barrier` task, or a cheap pass-through of one (a gate that waits for another)."""
    from dask._task_spec import Task

    func = getattr(node, "func", None)
    if getattr(func, "_jwst_dask_barrier", False):
        return True
    return getattr(func, "_jwst_dask_cheap", False) and any(
        _is_barrier(a) for a in node.args if isinstance(a, Task)
    )


def _only_cheap(node: Any) -> bool:
    from dask._task_spec import Alias, DataNode, Task, _execute_subgraph
    from dask.array.chunk import astype
    from dask.array.core import getter, getter_inline, getter_nofancy

    if isinstance(node, (DataNode, Alias)):
        return True
    if not isinstance(node, Task):
        return False
    if node.func is _execute_subgraph:
        inner = node.args[0]
        return isinstance(inner, dict) and all(_only_cheap(t) for t in inner.values())
    known = node.func in (getter, getter_inline, getter_nofancy, astype)
    if not (known or getattr(node.func, "_jwst_dask_cheap", False)):
        return False
    return all(_only_cheap(a) for a in node.args if isinstance(a, Task))  # tasks inlined as arguments


def _may_join(s_key: tuple | None, s_root: tuple | None) -> bool:
    """A whole-frame group (a statistic, a delayed object) takes only tasks that are not stripes;
    a stripe's group takes its own stripe's blocks and tasks that are not stripes."""
    if s_root is None:
        return s_key is None
    return s_key is None or s_key == s_root


def _cull(dsk: dict, keys: list) -> dict:
    """The tasks ``keys`` need. An optimised array graph may still hold layers no output uses
    (e.g. a statistic's graph copied with its array): every scheduler would run them."""
    from dask._task_spec import DependenciesMapping

    dependencies = DependenciesMapping(dsk)
    needed: set = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key not in needed:
            needed.add(key)
            stack.extend(dependencies[key])
    return dsk if len(needed) == len(dsk) else {k: v for k, v in dsk.items() if k in needed}


def fused_graph(*collections: Any) -> tuple[dict, list, Callable[[list], tuple], dict]:
    """The optimised, stripe-fused graph of ``collections``: ``(graph, keys, repack, priorities)``,
    where ``repack(results)`` turns the scheduler's results into what :func:`dask.compute` returns
    and ``priorities`` are those of :func:`fuse_exclusive`."""
    from dask._expr import FinalizeCompute
    from dask._task_spec import convert_legacy_graph
    from dask.base import collections_to_expr, unpack_collections
    from dask.core import flatten
    from dask.utils import ensure_dict

    found, repack = unpack_collections(*collections, traverse=True)
    if not found:
        return {}, [], lambda results: collections, {}
    expr = FinalizeCompute(collections_to_expr(found, True)).optimize()
    keys = list(flatten(expr.__dask_keys__()))
    dsk = _cull(convert_legacy_graph(ensure_dict(expr.__dask_graph__())), keys)
    fused, priorities = fuse_exclusive(dsk, set(keys))
    return fused, keys, repack, priorities
