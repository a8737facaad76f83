"""get_client (address, dask config, embedded LocalCluster), compute with a progress bar, and the
toy pipeline and CLI run on a real distributed cluster."""

from __future__ import annotations

import os

import dask
import numpy as np
import pytest
import test_framework_toys as toys
from test_framework_toys import ToyPipeline, make_ramp

import jwst_dask.refs
from jwst_dask import cluster
from jwst_dask.cli import main
from jwst_dask.errors import JwstDaskError
from jwst_dask.io import open_product, write_product


@pytest.fixture(autouse=True)
def no_crds(monkeypatch):
    monkeypatch.setattr(jwst_dask.refs, "best_references", lambda meta, r: dict.fromkeys(r, "N/A"))


def test_get_client_by_address_runs_on_the_workers(cluster_client):
    client = cluster.get_client(cluster_client.scheduler.address)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        (pid,) = cluster.compute(dask.delayed(os.getpid)(), progress=False)
        assert pid != os.getpid()  # computed in a worker process
    finally:
        client.close()


def test_unreachable_scheduler_is_one_clear_error():
    with (
        dask.config.set({"jwst_dask.connect_timeout": "1s"}),
        pytest.raises(JwstDaskError, match=r"127\.0\.0\.1:9"),
    ):
        cluster.get_client("tcp://127.0.0.1:9")


def test_cluster_from_dask_config():
    conf = {
        "class": "distributed.LocalCluster",
        "kwargs": {
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": False,
            "dashboard_address": "127.0.0.1:0",
        },
    }
    try:
        with dask.config.set({"jwst_dask.cluster": conf}):
            client = cluster.get_client()
            assert type(client.cluster).__name__ == "LocalCluster"
            assert len(client.scheduler_info()["workers"]) == 1
            assert cluster.get_client() is client  # created once, reused
            assert cluster.compute(dask.array.ones(10, chunks=5).sum(), progress=False) == (10.0,)
        with dask.config.set({"jwst_dask.cluster": {"class": "no_such_module.Cluster"}}):
            with pytest.raises(JwstDaskError, match=r"no_such_module\.Cluster"):
                cluster.get_client()
    finally:
        cluster.close_local_cluster()


def test_embedded_local_cluster_is_created_once():
    try:
        client = cluster.get_client(workers=1, threads_per_worker=1, processes=False)
        assert cluster.get_client(workers=1, threads_per_worker=1, processes=False) is client
        assert client.scheduler.address.startswith(("tcp://127.0.0.1", "inproc://"))
        assert len(client.scheduler_info()["workers"]) == 1
        # one worker: every ready task goes to it at once, nothing is stolen
        saturation, extensions = client.run_on_scheduler(
            lambda dask_scheduler: (dask_scheduler.WORKER_SATURATION, set(dask_scheduler.extensions))
        )
        assert saturation == float("inf") and "stealing" not in extensions
    finally:
        cluster.close_local_cluster()
    assert dask.config.get("distributed.scheduler.worker-saturation") != "inf"  # only that cluster's


def test_compute_shows_a_progress_bar_on_the_local_scheduler(capsys):
    with dask.config.set(scheduler="threads"):
        (total,) = cluster.compute(dask.array.arange(100, chunks=10).sum(), progress=True)
    assert total == 4950
    assert "100% Completed" in capsys.readouterr().err


def test_toy_pipeline_saves_on_the_cluster(cluster_client, tmp_path):
    ds, sci = make_ramp()
    toys.CALLS.clear()
    with dask.config.set(scheduler="dask.distributed"), cluster_client.as_current():
        ToyPipeline.call(ds, output_dir=str(tmp_path))
    assert toys.CALLS["toy_add"] == 0  # the kernels ran in the worker processes, not here
    ints = ((sci + 1.0) * 3.0).mean(axis=1) * 0.5
    np.testing.assert_allclose(open_product(tmp_path / "toy_rateints.fits")["SCI"].values, ints, rtol=1e-6)


def test_cli_with_scheduler_address(cluster_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, sci = make_ramp()
    write_product(ds, tmp_path / "jw02_nrca1_uncal.fits")
    address = cluster_client.scheduler.address
    status = main(["run", "test_framework_toys.ScaleStep", "jw02_nrca1_uncal.fits", "--scheduler", address])
    assert status == 0
    np.testing.assert_allclose(open_product(tmp_path / "jw02_nrca1_toy_scale.fits")["SCI"].values, sci * 2.0)


def test_cli_with_an_embedded_local_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, sci = make_ramp()
    write_product(ds, tmp_path / "jw03_nrca1_uncal.fits")
    argv = ["run", "test_framework_toys.ScaleStep", "jw03_nrca1_uncal.fits", "--factor=1.5"]
    assert main([*argv, "--workers", "1", "--threads-per-worker", "1", "--memory-limit", "1GiB"]) == 0
    np.testing.assert_allclose(open_product(tmp_path / "jw03_nrca1_toy_scale.fits")["SCI"].values, sci * 1.5)
    assert not cluster._LOCAL  # closed after the run


def test_freeze_gc_config_freezes_before_computing():
    """With jwst_dask.freeze_gc (what the jwst-dask program sets), the objects alive when a graph
    is computed leave the collector's generations; without it, compute leaves them alone."""
    import gc

    gc.unfreeze()
    try:
        (total,) = cluster.compute(dask.delayed(sum)([1, 2, 3]), progress=False, scheduler="sync")
        assert total == 6 and gc.get_freeze_count() == 0
        with dask.config.set({cluster.FREEZE_GC_KEY: True}):
            cluster.compute(dask.delayed(sum)([1, 2]), progress=False, scheduler="sync")
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_program_entry_exits_with_the_status(tmp_path):
    """``python -m jwst_dask`` (the console script's entry) exits with main's status."""
    import subprocess
    import sys

    bad = subprocess.run(
        [sys.executable, "-m", "jwst_dask", "run", "no_such_step", str(tmp_path / "x.fits")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "no_such_step" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "jwst_dask", "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and "jwst-dask" in ok.stdout
