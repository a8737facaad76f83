"""Running the official JWST pipeline (a test-only dependency) offline, for parity tests.

Set ``JWST_OFFICIAL_PYTHON`` to the interpreter of an environment with the official ``jwst``
package; tests marked with :data:`requires_official` are skipped otherwise. The official pipeline
needs a CRDS configuration even when every reference file is overridden: :func:`offline_crds_env`
makes one for a subprocess, and :data:`SCRIPT_PREAMBLE` does the same inside a script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jwst_dask._paths import data_dir

OFFICIAL = os.environ.get("JWST_OFFICIAL_PYTHON", "")

requires_official = pytest.mark.skipif(
    not OFFICIAL or not Path(OFFICIAL).exists(), reason="JWST_OFFICIAL_PYTHON not set"
)

_SERVER_CONFIG = {
    "observatory": "jwst",
    "latest_context": "jwst_0001.pmap",
    "operational_context": "jwst_0001.pmap",
    "bad_files_list": [],
    "force_remote_mode": False,
    "last_synced": "2024-01-01 00:00:00",
}
_ENV = {
    "CRDS_MODE": "local",
    "CRDS_CONTEXT": "jwst_0001.pmap",
    "CRDS_SERVER_URL": "https://jwst-serverless-mode.stsci.edu",
    "STPIPE_DISABLE_CRDS_STEPPARS": "true",
}


def run_official(args: list[str], *, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the official interpreter with ``args`` (a script and its arguments, or ``-c CODE ...``);
    fail the test with the end of its stderr unless it succeeds. ``kwargs`` go to subprocess.run
    (``env``, ``cwd``)."""
    done = subprocess.run([OFFICIAL, *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def offline_crds_env(root: Path, *, with_mappings: bool = False) -> dict[str, str]:
    """A CRDS cache skeleton at ``root`` (and our rules, if asked) and the environment to use it."""
    cfg = root / "config" / "jwst"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "server_config").write_text(repr(_SERVER_CONFIG) + "\n")
    (cfg / "ref_cache_subdir_mode").write_text("instrument\n")
    if with_mappings:
        shutil.copytree(data_dir("stores") / "crds" / "mappings", root / "mappings", dirs_exist_ok=True)
    return dict(os.environ, CRDS_PATH=str(root), **_ENV)


#: The first lines of a script run by the official interpreter: a temporary offline CRDS
#: configuration (removed when the script ends), set before jwst or crds is imported.
SCRIPT_PREAMBLE = f"""
import atexit, os, shutil, tempfile
from pathlib import Path
_crds = Path(tempfile.mkdtemp(prefix="crds_"))
atexit.register(shutil.rmtree, _crds, True)
(_crds / "config" / "jwst").mkdir(parents=True)
(_crds / "config" / "jwst" / "server_config").write_text({repr(_SERVER_CONFIG)!r})
os.environ.update(CRDS_PATH=str(_crds), CRDS_READONLY_CACHE="1", **{_ENV!r})
"""
