"""The CRDS environment: the user's own CRDS configuration, or the project's offline local cache.

``crds`` reads its configuration from ``CRDS_*`` environment variables, part of it once at import
and part on every call, and caches results per process. This module decides, for each lookup,
which configuration applies and sets it up before ``crds`` is used:

* **user mode** - ``CRDS_PATH`` or ``CRDS_SERVER_URL`` is set in the environment (a real JWST cache,
  possibly with a server): it is used as it is.
* **project mode** - otherwise: the project's cache ``$JWST_DASK_CACHE/crds`` (default
  ``~/.cache/jwst-dask/crds``) in local, read-only, serverless mode. The ``CRDS_*`` variables are
  set only for the duration of the lookup (:func:`crds_session`) and the previous values restored,
  so subprocesses and later lookups never mistake the project cache for a user setting. ``crds``
  is pointed at a server-less URL, for which it raises before opening any socket: no network.

Whenever the effective configuration changes within a process (tests switching caches), the
``crds`` function caches are cleared so no stale rules or paths leak from one cache to another.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CrdsSetup",
    "current_setup",
    "crds_session",
    "project_cache_root",
    "reset_crds_state",
    "SERVERLESS_URL",
]

#: any URL containing "serverless" makes crds refuse network access before opening a socket
SERVERLESS_URL = "https://jwst-serverless-mode.stsci.edu"

_LOCK = threading.RLock()
_last_signature: tuple | None = None


def project_cache_root() -> Path:
    """The project's CRDS cache folder: ``$JWST_DASK_CACHE/crds`` (default ``~/.cache/jwst-dask/crds``)."""
    base = os.environ.get("JWST_DASK_CACHE") or str(Path("~/.cache/jwst-dask").expanduser())
    return Path(base).expanduser().resolve() / "crds"


@dataclass(frozen=True)
class CrdsSetup:
    """Which CRDS configuration a lookup uses.

    ``user`` is True when the user's own ``CRDS_PATH`` / ``CRDS_SERVER_URL`` apply; ``path`` is the
    cache root (None when the user relies on the crds default); ``context`` is a pinned context
    (``CRDS_CONTEXT``) or None.
    """

    user: bool
    path: Path | None
    server_url: str | None
    context: str | None

    @property
    def signature(self) -> tuple:
        return (self.user, str(self.path), self.server_url, self.context)


def current_setup() -> CrdsSetup:
    """The CRDS configuration that applies now, from the environment."""
    context = os.environ.get("CRDS_CONTEXT") or None
    if os.environ.get("CRDS_PATH") or os.environ.get("CRDS_SERVER_URL"):
        path = os.environ.get("CRDS_PATH")
        return CrdsSetup(
            user=True,
            path=Path(path).expanduser() if path else None,
            server_url=os.environ.get("CRDS_SERVER_URL") or None,
            context=context,
        )
    return CrdsSetup(user=False, path=project_cache_root(), server_url=None, context=context)


def _project_env(setup: CrdsSetup) -> dict[str, str | None]:
    return {
        "CRDS_PATH": str(setup.path),
        "CRDS_MODE": "local",
        "CRDS_READONLY_CACHE": "1",
        "CRDS_SERVER_URL": None,
        "CRDS_PATH_SINGLE": None,
        "CRDS_MAPPATH": None,
        "CRDS_REFPATH": None,
        "CRDS_CFGPATH": None,
    }


@contextlib.contextmanager
def crds_session(setup: CrdsSetup | None = None) -> Iterator[CrdsSetup]:
    """Configure ``crds`` for ``setup`` (default :func:`current_setup`) while the block runs.

    Serialised by a process-wide lock (crds keeps global state). In project mode the ``CRDS_*``
    variables are set for the block and restored after it.
    """
    with _LOCK:
        setup = setup or current_setup()  # under the lock: another session may have set CRDS_PATH
        saved: dict[str, str | None] = {}
        if not setup.user:
            for key, value in _project_env(setup).items():
                saved[key] = os.environ.get(key)
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        try:
            _prepare_crds(setup)
            yield setup
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def reset_crds_state() -> None:
    """Forget everything crds cached in this process (call after the rules on disk changed)."""
    global _last_signature
    import sys

    _last_signature = None
    if "crds" in sys.modules:
        from crds.core import config, utils

        utils.clear_function_caches()
        config.CRDS_REF_SUBDIR_MODE = "None"


def _prepare_crds(setup: CrdsSetup) -> None:
    """Import crds (with the environment in place) and reset its state if the setup changed."""
    global _last_signature
    import crds  # noqa: F401  (import with the environment set)
    from crds.client import api
    from crds.core import config, utils

    if setup.signature != _last_signature:
        utils.clear_function_caches()
        config.CRDS_REF_SUBDIR_MODE = "None"
        _last_signature = setup.signature
    if setup.user and setup.server_url:
        api.set_crds_server(setup.server_url)
    else:
        api.set_crds_server(SERVERLESS_URL)
    config.set_cache_readonly(not setup.user)
    if not setup.user:
        # no calibration software is installed beside the project cache: crds warns once per
        # process that it falls back to the latest context, which is the intended behaviour.
        logging.getLogger("CRDS").addFilter(_quiet_sw_warning)


def _quiet_sw_warning(record: logging.LogRecord) -> bool:
    return "Calibration SW not found" not in record.getMessage()
