"""Shared fixtures: a real 2-worker Dask cluster, an isolated project cache, a socket guard."""

from __future__ import annotations

import os
import socket

import pytest

# crds reads its configuration at import: keep every test offline and away from any real cache.
os.environ.pop("CRDS_SERVER_URL", None)
os.environ.setdefault("CRDS_MODE", "local")


@pytest.fixture(scope="session")
def project_cache(tmp_path_factory):
    """A project cache folder (JWST_DASK_CACHE) private to this test session."""
    path = tmp_path_factory.mktemp("jwst_dask_cache")
    old = os.environ.get("JWST_DASK_CACHE")
    os.environ["JWST_DASK_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("JWST_DASK_CACHE", None)
    else:
        os.environ["JWST_DASK_CACHE"] = old


@pytest.fixture(scope="session")
def cluster_client():
    """A real distributed LocalCluster with 2 single-threaded worker processes."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit="4GiB",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to open a network connection other than loopback."""

    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return real_connect(self, address)
        raise AssertionError(f"network access attempted: {address!r}")

    def guarded_getaddrinfo(host, *args, **kwargs):
        raise AssertionError(f"DNS lookup attempted: {host!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
