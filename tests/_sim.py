"""Shared helpers for the stage-1 end-to-end tests: small simulated exposures and stage-1 runs,
each made once per test session and reused.

- ``sims`` fixture: ``sims.get(preset, **options)`` -> the ``_uncal.fits`` path of a simulated
  exposure (with its truth files beside it), cached by (preset, options).
- ``stage1`` fixture: ``stage1.get(uncal, **params)`` -> ``{suffix: path}`` of the products of
  the stage-1 pipeline for that exposure (calwebb_detector1, or calwebb_tso1 for time series),
  run once with the real CRDS-selected references of the session's project cache.
- Plain helpers to read products and truth files.

Use the fixtures in a test module with ``import _sim`` and ``sims, stage1 = _sim.sims, _sim.stage1``.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask
import numpy as np
import pytest
from astropy.io import fits

from jwst_dask.simulate import simulate

DEFAULT_SIM = {"nexp": 1, "write_asn": False}


def _key(*parts, **options) -> str:
    return json.dumps([parts, sorted(options.items())], default=str)


class _Simulations:
    """Simulated exposures made on demand in one session folder."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[str, Path] = {}

    def get(self, preset: str, *, seed: int = 0, **options) -> Path:
        """The ``_uncal.fits`` path of ``preset`` simulated with ``options`` (computed once)."""
        opts = {**DEFAULT_SIM, **options}
        key = _key(preset, seed, **opts)
        if key not in self._done:
            outdir = self.root / f"sim{len(self._done):02d}"
            with dask.config.set(scheduler="threads"):
                self._done[key] = simulate(preset, outdir, seed=seed, **opts)[0]
        return self._done[key]


class _Stage1Runs:
    """Stage-1 products made on demand, one folder per (exposure, parameters)."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[str, dict[str, Path]] = {}

    def get(self, uncal: Path, *, pipeline: str = "calwebb_detector1", **params) -> dict[str, Path]:
        """``{suffix: path}`` of every product saved by ``pipeline`` on ``uncal`` (run once)."""
        key = _key(str(uncal), pipeline, **params)
        if key not in self._done:
            outdir = self.root / f"run{len(self._done):02d}"
            with dask.config.set(scheduler="threads"):
                self._done[key] = run_stage1(uncal, outdir, pipeline=pipeline, **params)
        return self._done[key]


def run_stage1(
    uncal: Path, outdir: Path, *, pipeline: str = "calwebb_detector1", chunks: int | None = None, **params
) -> dict[str, Path]:
    """Run a stage-1 pipeline on ``uncal`` in this process with the active Dask scheduler (``chunks``:
    square input pixel tiles) and return ``{suffix: path}`` of the products it saved."""
    from jwst_dask.pipelines import Detector1Pipeline, Tso1Pipeline

    cls = {"calwebb_detector1": Detector1Pipeline, "calwebb_tso1": Tso1Pipeline}[pipeline]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    pipe = cls(output_dir=str(outdir), save_results=True, **params)
    if chunks:
        pipe.input_chunks = {"y": chunks, "x": chunks}
    pipe.run(str(uncal))
    return products(outdir)


def products(outdir: Path) -> dict[str, Path]:
    """``{suffix: path}`` of the FITS products in a folder (``..._rate.fits`` -> ``rate``)."""
    return {p.name.removesuffix(".fits").rsplit("_", 1)[-1]: p for p in sorted(Path(outdir).glob("*.fits"))}


def image_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every image extension of a FITS file, by EXTNAME."""
    with fits.open(path) as hdul:
        return {
            hdu.name: np.array(hdu.data)
            for hdu in hdul
            if hdu.is_image and hdu.data is not None and hdu.name != "PRIMARY"
        }


def truth_path(uncal: Path, suffix: str) -> Path:
    """A truth file beside the exposure: ``truth.fits``, ``cosmic_rays.ecsv``, ``truth.json``..."""
    return Path(str(uncal).replace("_uncal.fits", f"_{suffix}"))


def truth_image(uncal: Path, ext: str) -> np.ndarray:
    """One extension (RATE, SCENE, VARIABLE, ...) of the exposure's truth file, as float64."""
    return fits.getdata(truth_path(uncal, "truth.fits"), ext).astype(np.float64)


def ols_rounding_bound(ngood: np.ndarray, tgroup: float) -> np.ndarray:
    """Largest slope error (DN/s) that rounding every group of an ``ngood``-group ramp to an integer
    can cause in an unweighted least-squares slope: 0.5 * sum|t - mean t| / sum (t - mean t)^2."""
    ngood = np.asarray(ngood)
    out = np.full(ngood.shape, np.inf)
    for n in np.unique(ngood):
        if n < 2:
            continue
        a = np.arange(n) - (n - 1) / 2.0
        out[ngood == n] = 0.5 * np.abs(a).sum() / (a * a).sum() / tgroup
    return out


@pytest.fixture(scope="session")
def sims(tmp_path_factory, project_cache) -> _Simulations:
    """Simulated exposures, made once per session (see module docs)."""
    return _Simulations(tmp_path_factory.mktemp("sims"))


@pytest.fixture(scope="session")
def stage1(tmp_path_factory, project_cache) -> _Stage1Runs:
    """Stage-1 products, made once per session with the threaded scheduler (see module docs)."""
    return _Stage1Runs(tmp_path_factory.mktemp("stage1"))
