"""Toy steps and a toy pipeline for the framework tests (importable by class path from the CLI).

They do trivial lazy arithmetic so the tests check the framework, not the calibration steps:
``toy_add`` adds ``value`` plus the number in its ``toyref`` reference file; ``toy_scale``
multiplies by ``factor``; ``toy_split`` returns ``{"rate": ..., "rateints": ...}`` (group means).
Every block a toy kernel processes is counted in ``CALLS``, to check nothing is computed twice.
"""

from __future__ import annotations

import collections
import threading

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.pipelines import Pipeline
from jwst_dask.steps import Step

CALLS: collections.Counter = collections.Counter()
_LOCK = threading.Lock()


def _count(name: str) -> None:
    with _LOCK:
        CALLS[name] += 1


def _meta(ds: xr.Dataset) -> np.ndarray:
    """An empty array of SCI's rank, so dask does not call the kernels to guess it."""
    return np.empty((0,) * ds["SCI"].ndim, dtype=np.float32)


def _add_block(block: np.ndarray, amount: float) -> np.ndarray:
    _count("toy_add")
    return block + np.float32(amount)


def _scale_block(block: np.ndarray, factor: float) -> np.ndarray:
    _count("toy_scale")
    return block * np.float32(factor)


class AddStep(Step):
    """Add ``value`` and the reference file's number to SCI."""

    class_alias = "toy_add"
    spec = """
        value = float(default=1.0, min=0)  # the constant to add
        mode = option('plain', 'fancy', default='plain')  # unused option parameter
        label = string(default='none given')  # a string parameter
    """
    reference_file_types = ("toyref",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        path = self.get_reference_file(ds, "toyref")
        amount = self.value + (0.0 if path == "N/A" else float(np.loadtxt(path)))
        sci = da.map_blocks(
            _add_block, ds["SCI"].data.astype(np.float32), amount, dtype=np.float32, meta=_meta(ds)
        )
        return ds.assign(SCI=(ds["SCI"].dims, sci)).jwst.set_cal_step("toy_add")


class ScaleStep(Step):
    """Multiply SCI by ``factor``."""

    class_alias = "toy_scale"
    cal_step_key = "toy_scale_key"
    spec = """
        factor = float(default=2.0)  # multiplier
        counts = int_list(default=None)  # an int_list parameter
        enabled_flags = boolean(default=True)  # a boolean parameter
    """

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        sci = da.map_blocks(_scale_block, ds["SCI"].data, self.factor, dtype=np.float32, meta=_meta(ds))
        out = ds.assign(SCI=(ds["SCI"].dims, sci))
        return out.jwst.set_cal_step(self.cal_step_key)


class SplitStep(Step):
    """Group means: ``rateints`` (integration, y, x) and ``rate`` (y, x)."""

    class_alias = "toy_split"

    def process(self, ds: xr.Dataset) -> dict[str, xr.Dataset]:
        sci = ds["SCI"].astype(np.float32)
        ints = sci.mean("group")
        rate = ints.mean("integration")
        base = ds.jwst.set_cal_step("toy_split")
        rateints = xr.Dataset(
            {"SCI": ints}, attrs=dict(base.attrs, model_type="CubeModel", product="rateints")
        )
        rate_ds = xr.Dataset({"SCI": rate}, attrs=dict(base.attrs, model_type="ImageModel", product="rate"))
        self.add_side_product("toyside", rate_ds)
        return {"rate": rate_ds, "rateints": rateints}


TOY_DEFINITION = {
    "alias": "toy_pipeline",
    "description": "A toy pipeline for the framework tests",
    "variants": [
        {"name": "miri", "when": {"instrument.name": "MIRI"}, "order": ["toy_add", "toy_split"]},
        {"name": "nir", "when": {}, "order": ["toy_add", "toy_scale", "toy_split", "toy_final"]},
    ],
    "parameters": {"save_scaled": False, "note": "n/a"},
    "step_parameters": {"toy_scale": {"factor": 3.0}, "toy_final": {"factor": 0.5}},
    "intermediate_products": {"toy_scale": {"suffix": "ramp", "when": "save_scaled"}},
}


class ToyPipeline(Pipeline):
    """toy_add -> toy_scale -> toy_split -> toy_final (near-infrared); toy_add -> toy_split (MIRI)."""

    class_alias = "toy_pipeline"
    definition = TOY_DEFINITION
    step_defs = {"toy_add": AddStep, "toy_scale": ScaleStep, "toy_split": SplitStep, "toy_final": ScaleStep}


def make_ramp(nints: int = 2, ngroups: int = 3, ny: int = 16, nx: int = 16, instrument: str = "NIRCAM"):
    """A small RampModel-like Dataset with known SCI values, chunked in 8x8 tiles."""
    sci = np.arange(nints * ngroups * ny * nx, dtype=np.float32).reshape(nints, ngroups, ny, nx) % 97
    meta = {
        "instrument": {"name": instrument, "detector": "NRCA1" if instrument == "NIRCAM" else "MIRIMAGE"},
        "exposure": {
            "type": "NRC_IMAGE" if instrument == "NIRCAM" else "MIR_IMAGE",
            "ngroups": ngroups,
            "nints": nints,
        },
    }
    data = da.from_array(sci, chunks=(nints, ngroups, 8, 8))
    ds = xr.Dataset(
        {"SCI": (("integration", "group", "y", "x"), data)},
        attrs={"meta": meta, "model_type": "RampModel", "product": "ramp", "filename": "toy_uncal.fits"},
    )
    return ds, sci


def test_toy_spec_parses():
    specs = AddStep.merged_spec()
    assert specs["value"].default == 1.0
    assert specs["mode"].options == ("plain", "fancy")
    assert "override_toyref" in specs
