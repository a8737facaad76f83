"""One way to get a Dask client, and one way to compute with a progress bar.

:func:`get_client` connects, in this order, to: a scheduler given by address (or scheduler file);
the cluster described in the Dask configuration under ``jwst_dask.cluster``, e.g.::

    jwst_dask:
      cluster:
        class: dask_jobqueue.SLURMCluster
        kwargs: {cores: 8, memory: 32GB, walltime: "02:00:00"}
        scale: 4

an already active client; or an embedded :class:`~distributed.LocalCluster` sized to this machine
(bound to 127.0.0.1; one in-process worker of several threads on a small machine, worker processes
on a larger one), created once per process and reused. The dashboard address is logged.

:func:`compute` is how products get computed: the graph is stripe-fused (:mod:`jwst_dask.fusion`),
then run on the current client when there is one, else on Dask's local threaded scheduler
(``dask.config.set(scheduler="threads")`` forces a local one), with a progress bar when stderr is
a terminal. ``jwst_dask.connect_timeout`` (Dask config, default 10 s)
bounds the wait for a scheduler given by address.

``jwst_dask.freeze_gc`` (Dask config, default False; the ``jwst-dask`` command sets it) makes
:func:`compute` call :func:`gc.freeze` first: the objects alive then (the imported libraries, the
graph) are left out of every later scan of Python's cyclic garbage collector. With numba, astropy
and distributed loaded these are millions of objects, and each full collection (triggered by the
scheduler's own allocations, with the interpreter lock held) walked them all. A process that ends
after its products are written loses nothing by it; a notebook, which lives on, keeps the default.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jwst_dask.errors import JwstDaskError

__all__ = ["FREEZE_GC_KEY", "close_local_cluster", "compute", "get_client"]

#: Dask config key: freeze the garbage collector's generations before computing (module docs).
FREEZE_GC_KEY = "jwst_dask.freeze_gc"

log = logging.getLogger("stpipe.cluster")
_LOCAL: dict[tuple, Any] = {}


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise JwstDaskError(f"cluster class {path!r} cannot be imported: {exc}") from None


def _machine_defaults() -> tuple[int, int, str | None]:
    """(workers, threads per worker, memory per worker) for this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    workers = max(1, min(cpus // 2, 8)) if cpus > 2 else 1
    threads = max(1, cpus // workers)
    return workers, threads, None


def get_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int | None = None,
    processes: bool | None = None,
):
    """A :class:`distributed.Client`, made the default for ``compute`` (see module docs).

    ``scheduler``: an address (``tcp://host:8786``) or a scheduler JSON file. The other arguments
    size the embedded LocalCluster (defaults from the machine's cores); when any is given, an
    already active client is not reused.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            if str(scheduler).endswith(".json") and Path(scheduler).is_file():
                client = Client(scheduler_file=str(scheduler), set_as_default=True)
            else:
                timeout = dask.config.get("jwst_dask.connect_timeout", "10s")
                _check_reachable(str(scheduler), timeout)
                client = Client(str(scheduler), set_as_default=True, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise JwstDaskError(f"cannot connect to Dask scheduler {scheduler!r}: {exc}") from None
        _announce(client)
        return client

    conf = dask.config.get("jwst_dask.cluster", default=None)
    if conf:
        if "class" not in conf:
            raise JwstDaskError(
                "dask config jwst_dask.cluster needs a 'class' (e.g. dask_jobqueue.SLURMCluster)"
            )
        key = ("config", conf["class"], repr(sorted((conf.get("kwargs") or {}).items())))
        if key not in _LOCAL:
            cluster = _import(conf["class"])(**(conf.get("kwargs") or {}))
            if conf.get("scale"):
                cluster.scale(int(conf["scale"]))
            _LOCAL[key] = (cluster, Client(cluster, set_as_default=True))
        client = _LOCAL[key][1]
        client.as_current()
        _announce(client)
        return client

    sized = any(v is not None for v in (workers, threads_per_worker, memory_limit, processes))
    if not sized:
        active = _active_client()
        if active is not None:
            return active
    d_workers, d_threads, d_memory = _machine_defaults()
    n_workers = int(workers) if workers is not None else d_workers
    threads = int(threads_per_worker) if threads_per_worker is not None else d_threads
    memory = memory_limit if memory_limit is not None else (d_memory or "auto")
    # One worker: threads in this process (no second copy of the libraries in memory; the
    # numba kernels release the GIL). Several workers: one process each.
    procs = (n_workers > 1) if processes is None else bool(processes)
    key = ("local", n_workers, threads, str(memory), procs)
    entry = _LOCAL.get(key)
    if entry is None or entry[1].status in ("closed", "closing"):
        t0 = time.perf_counter()
        where = {"host": "127.0.0.1"} if procs else {}  # in-process clusters bind no socket
        with dask.config.set(_ONE_WORKER_CONFIG if n_workers == 1 else {}):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads,
                memory_limit=memory,
                processes=procs,
                dashboard_address=f"127.0.0.1:{_free_port(8787)}",
                **where,
            )
        if not procs:  # the dashboard is bound to 127.0.0.1: say so in the link (in-process
            # schedulers otherwise name the machine's external address)
            dask.config.set({"distributed.dashboard.link": "http://127.0.0.1:{port}/status"})
        client = Client(cluster, set_as_default=True)
        _LOCAL[key] = (cluster, client)
        log.info(
            "Started a local Dask cluster: %d workers x %d threads in %.1f s",
            n_workers,
            threads,
            time.perf_counter() - t0,
        )
    client = _LOCAL[key][1]
    _announce(client)
    return client


#: Scheduler settings of an embedded cluster with one worker. The scheduler sends the worker
#: every ready task at once (it runs them in priority order, the stripe sweep, as it would
#: receive them): queuing them on the scheduler made each task wait for a round trip through the
#: event loop the compute threads share, about 2 ms of an idle thread per task. With one worker
#: there is nothing to steal.
_ONE_WORKER_CONFIG = {
    "distributed.scheduler.worker-saturation": "inf",
    "distributed.scheduler.work-stealing": False,
}


def _active_client():
    """The current distributed client if it is running, else None."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    return client if client.status == "running" else None


def _check_reachable(address: str, timeout: str | float) -> None:
    """Fail fast (OSError) when nothing listens at a ``tcp://host:port`` address."""
    import socket

    from dask.utils import parse_timedelta

    if not address.startswith("tcp://"):
        return
    host, _, port = address[len("tcp://") :].rpartition(":")
    if not port.isdigit():
        return
    with socket.create_connection((host.strip("[]"), int(port)), timeout=parse_timedelta(timeout)):
        pass


def _free_port(preferred: int) -> int:
    """``preferred`` when nothing listens on it, else 0 (any free port)."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def _announce(client) -> None:
    link = getattr(client, "dashboard_link", None)
    log.info("Dask scheduler %s; dashboard: %s", getattr(client.scheduler, "address", "?"), link or "none")


def close_local_cluster() -> None:
    """Close the clusters :func:`get_client` started in this process."""
    for cluster, client in _LOCAL.values():
        client.close()
        cluster.close()
    _LOCAL.clear()


def compute(*collections: Any, progress: bool | None = None, scheduler: str | None = None) -> tuple:
    """Compute Dask collections / delayed objects in ONE graph execution, with a progress bar when
    ``progress`` (default: stderr is a terminal). Returns the results like :func:`dask.compute`.

    The graph is stripe-fused first (:mod:`jwst_dask.fusion`): each pixel stripe's chain of
    steps runs as a few tasks. It runs on the current distributed client when there is one (and
    ``scheduler`` or the Dask config do not name a local scheduler), else on Dask's local
    scheduler (``scheduler``, else the configured one, else threads).
    """
    import dask
    import dask.threaded

    from jwst_dask.fusion import fused_graph

    if progress is None:
        progress = sys.stderr.isatty()
    if dask.config.get(FREEZE_GC_KEY, False):
        gc.freeze()
    dsk, keys, repack, priorities = fused_graph(*collections)
    if not keys:
        return tuple(collections)
    chosen = scheduler or dask.config.get("scheduler", None)
    local = chosen not in (None, "dask.distributed", "distributed")
    client = None if local else _active_client()
    if client is not None:
        futures = _submit(client, dsk, keys, priorities)
        try:
            if progress:
                from distributed import progress as dist_progress

                dist_progress(futures)
            return repack(client.gather(futures))
        finally:
            from dask.core import flatten

            for future in flatten(futures):  # the results are the caller's now: let the cluster forget them
                future.release()
    get = dask.base.get_scheduler(scheduler=chosen) if local else dask.threaded.get
    with _local_priorities(priorities):
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar(out=sys.stderr):
                return repack(get(dsk, keys))
        return repack(get(dsk, keys))


_PRIORITIES: list[dict] = []  # priorities of the graphs cluster.compute is running locally
_PRIORITIES_LOCK = threading.Lock()


@contextlib.contextmanager
def _local_priorities(priorities: dict):
    """Make Dask's local schedulers run the fused graph in ``priorities`` order.

    Dask's local schedulers (threads, processes, synchronous) order a graph with
    ``dask.order.order`` and take no priorities; this wraps the ``order`` they call so that a
    graph whose keys are exactly those of ``priorities`` gets them (any other graph, e.g. one a
    task computes inside, is ordered as usual). When that hook is not there, Dask orders the
    fused graph itself: the same products, a higher memory peak.
    """
    import dask.local

    with _PRIORITIES_LOCK:
        hooked = callable(getattr(dask.local, "order", None))
        if hooked:
            if not isinstance(dask.local.order, _OrderWithPriorities):
                dask.local.order = _OrderWithPriorities(dask.local.order)
            _PRIORITIES.append(priorities)
    try:
        yield
    finally:
        if hooked:
            with _PRIORITIES_LOCK:
                _PRIORITIES.remove(priorities)


class _OrderWithPriorities:
    """``dask.order.order`` unless the graph is one :func:`compute` gave priorities for."""

    def __init__(self, order):
        self.order = order

    def __call__(self, dsk, *args, **kwargs):
        with _PRIORITIES_LOCK:
            known = list(_PRIORITIES)
        for priorities in known:
            if len(priorities) == len(dsk) and all(k in priorities for k in dsk):
                return priorities
        return self.order(dsk, *args, **kwargs)


def _submit(client, dsk: dict, keys: list, priorities: dict):
    """Futures for ``keys`` of ``dsk`` on ``client``, run in the order ``priorities`` give (the
    stripe sweep, :func:`jwst_dask.fusion.sweep_order`). The distributed client takes priorities
    only through an internal method; when that is not there (another distributed version), the
    scheduler orders the graph itself, which gives the same products with a higher memory peak."""
    try:
        import uuid

        from dask._expr import LLGExpr
        from dask.core import flatten
        from distributed.client import pack_data
        from distributed.spans import SpanMetadata

        # the keys already name the graph: a random token spares tokenizing every task again
        futures = client._graph_to_futures(
            expr=LLGExpr(dsk, _determ_token=uuid.uuid4().hex),
            keys=set(flatten([keys])),
            internal_priority=priorities,
            span_metadata=SpanMetadata(collections=[{"type": "low-level-graph"}]),
        )
    except (ImportError, TypeError, AttributeError) as exc:
        log.debug("submitting without priorities (%s)", exc)
        return client.get(dsk, keys, sync=False)
    return pack_data(keys, futures)
