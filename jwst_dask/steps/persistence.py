"""persistence: subtract the signal released by charge traps filled in earlier exposures, and
produce the trap state at the end of this exposure (the ``_trapsfilled`` product).

Near-infrared only (MIRI is skipped). With no ``input_trapsfilled`` the exposure starts with
empty traps; the correction of the first integration is then zero, and later integrations see
the traps filled by the earlier ones.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ReferenceFileError
from jwst_dask.kernels import persistence as kern
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import as_tiles, ref_array, subarray_origin

__all__ = ["PersistenceStep", "trap_parameters"]

_DNU = FLAGS["DO_NOT_USE"]
_PERS = FLAGS["PERSISTENCE"]


def trap_parameters(ref: xr.Dataset) -> np.ndarray:
    """(nfamilies, 4) float64: capture0, capture1, capture2, decay_param from the TRAPPARS table."""
    for ext, cols in ref.attrs.get("tables", {}).items():
        low = {c.lower(): c for c in cols}
        names = ("capture0", "capture1", "capture2", "decay_param")
        if all(n in low for n in names):
            return np.stack([np.asarray(ref[f"{ext}.{low[n]}"].values, dtype=np.float64) for n in names], 1)
    raise ReferenceFileError("trappars reference has no table with capture0, capture1, capture2, decay_param")


def _run(sci, gdq, traps, density, ddq, persat, pdq_sat, *, params, times, which):
    td = np.where(np.isnan(density) | ((ddq & _DNU) > 0), np.float32(0), density).astype(np.float32)
    ps = np.where(np.isnan(persat), np.float32(1.0e7), persat)
    bad = (pdq_sat & _DNU) > 0
    corr, pers, traps_out = kern.correct_persistence(sci, gdq, traps, td, ps, bad, params, *times)
    return {"sci": corr, "pers": pers, "traps": traps_out}[which]


def _flags(pdq, pers, *, cutoff):
    hit = (pers >= cutoff).any(axis=(0, 1))
    return np.where(hit, pdq | np.uint32(_PERS), pdq)


class PersistenceStep(Step):
    """Subtract trap-release persistence; flag PERSISTENCE where it is >= ``flag_pers_cutoff``."""

    class_alias = "persistence"
    spec = """
        input_trapsfilled = string(default="")  # traps-filled product of the previous exposure
        flag_pers_cutoff = float(default=40.0)  # flag PERSISTENCE where the correction is at least this (DN)
        save_persistence = boolean(default=False)  # also save the persistence subtracted (_output_pers)
        save_trapsfilled = boolean(default=True)  # save the trap state at the end (_trapsfilled)
        modify_input = boolean(default=False)  # accepted for compatibility (inputs are never modified)
    """
    reference_file_types = ("trapdensity", "trappars", "persat")

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        meta = ds.jwst.meta
        if str(meta.get_path("instrument.name") or "").upper() == "MIRI":
            self.log.info("persistence does not apply to MIRI; step skipped")
            return ds.jwst.set_cal_step("persistence", "SKIPPED")
        refs = {rt: self.get_reference_dataset(ds, rt) for rt in self.reference_file_types}
        missing = [rt for rt, r in refs.items() if r is None]
        if missing:
            self.log.warning("No %s reference file; step skipped", ", ".join(missing).upper())
            return ds.jwst.set_cal_step("persistence", "SKIPPED")
        params = trap_parameters(refs["trappars"])
        nfam = params.shape[0]
        density = ref_array(refs["trapdensity"], "SCI", ds, "trapdensity", np.float32)
        ddq = _dq(refs["trapdensity"], ds, density)
        persat = ref_array(refs["persat"], "SCI", ds, "persat", np.float32)
        psdq = _dq(refs["persat"], ds, persat)
        tgroup = float(meta.get_path("exposure.group_time") or 0.0)
        tframe = float(meta.get_path("exposure.frame_time") or 0.0)
        n_start = meta.get_path("exposure.nresets_at_start")
        n_between = meta.get_path("exposure.nresets_between_ints")
        times = (
            tgroup,
            tframe,
            int(1 if n_start is None else n_start),
            int(1 if n_between is None else n_between),
        )
        traps = self._input_traps(ds, nfam, params, density.chunks)
        sci, gdq = ds["SCI"].data, ds["GROUPDQ"].data
        args = (sci, "igyx", gdq, "igyx", traps, "fyx", density, "yx", ddq, "yx", persat, "yx", psdq, "yx")

        def part(which, ind, dtype):
            return da.blockwise(
                _run,
                ind,
                *args,
                dtype=dtype,
                concatenate=True,
                params=params,
                times=times,
                which=which,
            )

        out = ds
        if self.input_trapsfilled or ds.sizes["integration"] > 1:
            pers = part("pers", "igyx", np.float32)
            out = ds.copy()
            out["SCI"] = ds["SCI"].copy(data=part("sci", "igyx", np.float32))
            pdq = da.blockwise(
                _flags,
                "yx",
                ds["PIXELDQ"].data,
                "yx",
                pers,
                "igyx",
                dtype=np.uint32,
                concatenate=True,
                cutoff=float(self.flag_pers_cutoff),
            )
            out["PIXELDQ"] = ds["PIXELDQ"].copy(data=pdq)
            if self.save_persistence:
                self.add_side_product(
                    "output_pers",
                    _product(ds, {"SCI": (("integration", "group", "y", "x"), pers)}, "output_pers"),
                )
        if self.save_trapsfilled:
            tf = da.blockwise(
                _run,
                "fyx",
                *args,
                dtype=np.float32,
                concatenate=True,
                params=params,
                times=times,
                which="traps",
            )
            tf_ds = _product(
                ds, {"SCI": (("plane", "y", "x"), tf)}, "trapsfilled", model_type="TrapsFilledModel"
            )
            self.add_side_product("trapsfilled", tf_ds)
        return out.jwst.set_cal_step("persistence")

    def _input_traps(self, ds, nfam, params, chunks) -> da.Array:
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        if not self.input_trapsfilled:
            return da.zeros((nfam, ny, nx), dtype=np.float32, chunks=((nfam,), *chunks))
        from jwst_dask.io import open_product

        prev = open_product(self.input_trapsfilled)
        data = prev["SCI"].data
        if data.shape[0] != nfam:
            raise ReferenceFileError(
                f"input_trapsfilled has {data.shape[0]} trap families, the TRAPPARS table {nfam}"
            )
        if data.shape[-2:] != (ny, nx):
            y0, x0 = subarray_origin(ds)
            py, px = subarray_origin(prev)
            data = data[:, y0 - py : y0 - py + ny, x0 - px : x0 - px + nx]
            if data.shape[-2:] != (ny, nx):
                raise ReferenceFileError("input_trapsfilled does not cover the science subarray")
        data = da.where(da.isnan(data), 0, data).astype(np.float32)
        start = ds.jwst.meta.get_path("exposure.start_time")
        end = prev.jwst.meta.get_path("exposure.end_time")
        if start is not None and end is not None:
            dt = (float(start) - float(end)) * 86400.0
            planes = [data[k] - data[k] * np.float32(_decay_fraction(params[k, 3], dt)) for k in range(nfam)]
            data = da.stack(planes)
        return as_tiles(data, ds, np.float32)


def _decay_fraction(decay_param: float, dt: float) -> float:
    return float(kern.decay(np.ones(1), float(decay_param), dt)[0])


def _dq(ref: xr.Dataset, ds: xr.Dataset, like: da.Array) -> da.Array:
    if "DQ" in ref:
        return ref_array(ref, "DQ", ds, "reference", np.uint32)
    return da.zeros(like.shape, dtype=np.uint32, chunks=like.chunks)


def _product(ds: xr.Dataset, variables: dict, product: str, model_type: str = "RampModel") -> xr.Dataset:
    out = xr.Dataset(variables, attrs=dict(ds.attrs))
    return out.jwst.update_meta({"model_type": model_type}, product=product, model_type=model_type)
