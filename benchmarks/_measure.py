"""Shared benchmark helpers: run a command while sampling the memory of its whole process tree,
and compare two sets of products with the parity criteria the project holds itself to."""

from __future__ import annotations

import resource
import subprocess
import threading
import time
from dataclasses import dataclass

import numpy as np
import psutil


@dataclass
class Measured:
    wall_seconds: float
    peak_rss_bytes: int  # the largest sum of RSS over the process and all its descendants
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system CPU of the process and its waited-for descendants


def run_measured(cmd: list[str], *, env: dict | None = None, interval: float = 0.02) -> Measured:
    """Run ``cmd`` to completion, sampling the summed RSS of its process tree every ``interval`` s;
    also the CPU seconds it used (less sensitive than wall time to other load on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    done.set()
    thread.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, peak, proc.returncode, out, err, cpu)


def fraction_close(a, b, *, rtol: float, atol=None, mask=None) -> float:
    """Fraction of (masked) elements with |a - b| <= rtol * |b| (or <= atol where given)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.abs(a - b) <= rtol * np.abs(b)
    if atol is not None:
        ok |= np.abs(a - b) <= atol
    ok |= np.isnan(a) & np.isnan(b)
    if mask is not None:
        ok = ok[mask]
    return float(ok.mean()) if ok.size else 1.0


def rate_parity(ours: dict, official: dict) -> dict[str, float]:
    """The parity figures for one rate product: arrays keyed by extension name on both sides.

    - SCI within 1e-4 relative, or 1e-3 of ERR, on pixels good (no DO_NOT_USE) in both;
    - ERR, VAR_POISSON, VAR_RNOISE within 1e-3 relative;
    - DQ identical.
    """
    good = ((ours["DQ"] & 1) == 0) & ((official["DQ"] & 1) == 0)
    figures = {
        "SCI": fraction_close(
            ours["SCI"], official["SCI"], rtol=1e-4, atol=1e-3 * np.abs(official["ERR"]), mask=good
        ),
        "DQ": float((ours["DQ"] == official["DQ"]).mean()),
        "good_pixels": float(good.mean()),
    }
    for name in ("ERR", "VAR_POISSON", "VAR_RNOISE"):
        figures[name] = fraction_close(ours[name], official[name], rtol=1e-3, mask=good)
    return figures


def jump_parity(ours_groupdq: np.ndarray, official_groupdq: np.ndarray) -> float:
    """Fraction of pixels whose set of JUMP_DET groups is identical (4-D GROUPDQ, any integration)."""
    a = (ours_groupdq & 4) != 0
    b = (official_groupdq & 4) != 0
    same = (a == b).all(axis=(0, 1))
    return float(same.mean())
