"""RampFitStep (ramp_fit): the ramp Dataset -> the ``rate`` and ``rateints`` products.

One kernel call per pixel tile (:func:`jwst_dask.kernels.ramp_fit.fit_ramps`) produces every
output array of the tile; cheap getters split that result into the variables of the ``rate``
(y, x) and ``rateints`` (integration, y, x) Datasets, and of the optional ``fitopt`` product.
The tiles hold all integrations and groups (the Poisson slope estimate uses every integration
of a pixel), so the input is rechunked along those axes only if it arrives split.

``maximum_cores`` is accepted for compatibility with the official parameter files and ignored:
the parallelism comes from Dask (one task per tile).
"""

from __future__ import annotations

import operator
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.dq import FLAGS
from jwst_dask.errors import MissingKeywordError, ReferenceFileError, ShapeMismatchError
from jwst_dask.kernels.ramp_fit import RampFitResult, fit_ramps, max_crs, max_segments
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["RampFitStep", "gain_factor_of", "fit_tiles"]

_IMAGE = ("y", "x")
_CUBE = ("integration", "y", "x")
_IFU_TYPES = ("NRS_IFU", "MIR_MRS")


def gain_factor_of(ds: xr.Dataset | None) -> float | None:
    """GAINFACT of a Dataset (``meta.exposure.gain_factor``, else a GAINFACT keyword of a
    reference's primary ``header`` or of ``extra_fits``), or None when absent."""
    if ds is None:
        return None
    value = ds.jwst.meta.get_path("exposure.gain_factor")
    if value is None:
        value = (ds.attrs.get("header") or {}).get("GAINFACT")
    if value is None:
        for cards in (ds.attrs.get("extra_fits") or {}).values():
            for card in cards:
                if card and str(card[0]).upper() == "GAINFACT":
                    value = card[1]
                    break
            if value is not None:
                break
    return None if value is None else float(value)


def _timing(ds: xr.Dataset) -> dict[str, Any]:
    meta = ds.jwst.meta
    out = {}
    for key, path in (
        ("frame_time", "exposure.frame_time"),
        ("group_time", "exposure.group_time"),
        ("nframes", "exposure.nframes"),
    ):
        value = meta.get_path(path)
        if value is None:
            raise MissingKeywordError(f"ramp_fit needs meta.{path} ({key}) in the input")
        out[key] = value
    out["groupgap"] = int(meta.get_path("exposure.groupgap") or 0)
    out["dropframes1"] = int(meta.get_path("exposure.drop_frames1") or 0)
    out["nframes"] = int(out["nframes"])
    out["frame_time"] = float(out["frame_time"])
    out["group_time"] = float(out["group_time"])
    return out


def _miri_group_range(all_dnu: np.ndarray) -> tuple[int, int]:
    """First and last group kept for MIRI: leading groups DO_NOT_USE in every pixel are dropped,
    then the last group if it is DO_NOT_USE everywhere (the official pipeline's rule)."""
    n = len(all_dnu)
    first = 0
    while first < n and all_dnu[first]:
        first += 1
    last = n - 1
    if first <= last and all_dnu[last]:
        last -= 1
    if last - first + 1 < 2:
        raise ShapeMismatchError(
            "ramp_fit: MIRI data need at least 2 groups that are not DO_NOT_USE in every pixel"
        )
    return first, last


def _tile(sci, gdq, pdq, gain, rn, zf, dark, all_dnu, **kw) -> RampFitResult:
    """Fit one tile (block function for dask)."""
    first, last = 0, None
    if all_dnu is not None:
        first, last = _miri_group_range(np.asarray(all_dnu).ravel())
    return fit_ramps(
        sci, gdq, pdq, gain, rn, zeroframe=zf, dark_current=dark, first_group=first, last_group=last, **kw
    )


def fit_tiles(
    sci: da.Array,
    gdq: da.Array,
    pdq: da.Array,
    gain: da.Array,
    rn: da.Array,
    *,
    zeroframe: da.Array | None = None,
    dark_current: da.Array | None = None,
    all_dnu: da.Array | None = None,
    **kernel_kwargs: Any,
) -> dict[str, da.Array]:
    """Lazy ramp fitting of dask arrays tiled in (y, x) with whole integration and group axes.

    Returns ``{name: dask array}`` with the fields of :class:`RampFitResult`, all taken from ONE
    kernel task per tile. ``all_dnu`` (ngroups,) bool, if given, selects the MIRI group range.
    """
    nints, ngroups = sci.shape[:2]
    cy, cx = sci.chunks[2], sci.chunks[3]
    args: list[Any] = [sci, "ijyx", gdq, "ijyx", pdq, "yx", gain, "yx", rn, "yx"]
    args += [zeroframe, "iyx"] if zeroframe is not None else [None, None]
    args += [dark_current, "yx"] if dark_current is not None else [None, None]
    args += [all_dnu.rechunk(-1), "j"] if all_dnu is not None else [None, None]
    packed = da.blockwise(
        _tile,
        "yx",
        *args,
        concatenate=True,
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
        token="ramp_fit-tile",
        **kernel_kwargs,
    )
    save_opt = bool(kernel_kwargs.get("save_opt"))
    nseg = max_segments(ngroups)
    ncr = max_crs(ngroups)
    out: dict[str, da.Array] = {}
    for k, field in enumerate(RampFitResult._fields):
        dtype = np.uint32 if field.endswith("_dq") else np.float32
        get = operator.itemgetter(k)
        if field.startswith("rate_"):
            arr = packed.map_blocks(get, dtype=dtype, meta=np.empty((0, 0), dtype), token=f"ramp_fit-{field}")
        elif field.startswith("ints_") or field == "pedestal":
            if field == "pedestal" and not save_opt:
                continue
            arr = packed.map_blocks(
                get,
                dtype=dtype,
                new_axis=[0],
                chunks=((nints,), cy, cx),
                meta=np.empty((0, 0, 0), dtype),
                token=f"ramp_fit-{field}",
            )
        else:
            if not save_opt:
                continue
            depth = ncr if field == "crmag" else nseg
            arr = packed.map_blocks(
                get,
                dtype=dtype,
                new_axis=[0, 1],
                chunks=((nints,), (depth,), cy, cx),
                meta=np.empty((0, 0, 0, 0), dtype),
                token=f"ramp_fit-{field}",
            )
        out[field] = arr
    return out


class RampFitStep(Step):
    """Fit the ramps: optimally weighted least-squares slopes per pixel (the ``rate`` product)
    and per integration (the ``rateints`` product), with Poisson and read-noise variances."""

    class_alias = "ramp_fit"
    spec = """
        int_name = string(default='')  # name of the rateints product (default: the usual naming)
        save_opt = boolean(default=False)  # save the optional per-segment fit results (_fitopt)
        opt_name = string(default='')  # name of the optional results product
        suppress_one_group = boolean(default=True)  # suppress ramps whose only good group is the first
        firstgroup = integer(default=None)  # ignore groups before this one (zero-based)
        lastgroup = integer(default=None)  # ignore groups after this one (zero-based)
        maximum_cores = string(default='1')  # accepted for compatibility; Dask provides the parallelism
        variant = option('seeds', 'jwst3', default='seeds')  # seeds (jwst 1.13) or jwst3 (stcal 1.20) rules
    """
    reference_file_types = ("readnoise", "gain")

    def process(self, ds: xr.Dataset) -> dict[str, xr.Dataset]:
        if "SCI" not in ds or ds["SCI"].ndim != 4:
            raise ShapeMismatchError("ramp_fit needs a 4-D SCI (integration, group, y, x) ramp")
        if "GROUPDQ" not in ds or "PIXELDQ" not in ds:
            raise MissingKeywordError("ramp_fit needs GROUPDQ and PIXELDQ in the ramp (run dq_init first)")
        timing = _timing(ds)
        gain_ref = self.get_reference_dataset(ds, "gain")
        rn_ref = self.get_reference_dataset(ds, "readnoise")
        if gain_ref is None or rn_ref is None:
            missing = "gain" if gain_ref is None else "readnoise"
            raise ReferenceFileError(f"ramp_fit needs a {missing} reference file (CRDS returned N/A)")

        sci = _whole_ramp(ds["SCI"].data)
        nints, ngroups, ny, nx = sci.shape
        cy, cx = sci.chunks[2:]
        gdq = _whole_ramp(ds["GROUPDQ"].data).rechunk(sci.chunks)
        gdq = self._group_selection(gdq, ngroups)
        pdq = da.asarray(ds["PIXELDQ"].data).astype(np.uint32).rechunk((cy, cx))
        gain = ref_array(gain_ref, "SCI", ds, "gain", np.float32).rechunk((cy, cx))
        rn = ref_array(rn_ref, "SCI", ds, "readnoise", np.float32).rechunk((cy, cx))
        zf = None
        if "ZEROFRAME" in ds and ds["ZEROFRAME"].shape == (nints, ny, nx):
            zf = da.asarray(ds["ZEROFRAME"].data).astype(np.float32).rechunk(((nints,), cy, cx))
        dark = None
        if "AVERAGE_DARK_CURRENT" in ds and ds["AVERAGE_DARK_CURRENT"].shape == (ny, nx):
            dark = da.asarray(ds["AVERAGE_DARK_CURRENT"].data).astype(np.float32).rechunk((cy, cx))
        all_dnu = None
        if str(ds.jwst.meta.get_path("instrument.name") or "").upper() == "MIRI" and ngroups > 1:
            all_dnu = da.all((gdq & FLAGS["DO_NOT_USE"]) != 0, axis=(0, 2, 3))

        jwst3 = self.variant == "jwst3"
        arrays = fit_tiles(
            sci,
            gdq,
            pdq,
            gain,
            rn,
            zeroframe=zf,
            dark_current=dark,
            all_dnu=all_dnu,
            suppress_one_group=bool(self.suppress_one_group),
            save_opt=bool(self.save_opt),
            median_per_integration=jwst3,
            weight_by_readnoise=jwst3,
            **timing,
        )
        changes: dict[str, Any] = {
            "cal_step.ramp_fit": "COMPLETE",
            "bunit_data": "DN/s",
            "bunit_err": "DN/s",
        }
        gainfact = gain_factor_of(gain_ref)
        if gainfact is not None:
            changes["exposure.gain_factor"] = gainfact
        base = ds.jwst.update_meta(changes)
        exp_type = str(ds.jwst.meta.get_path("exposure.type") or "").upper()
        lamp = str(ds.jwst.meta.get_path("instrument.lamp_mode") or "").upper()
        ifu = exp_type in _IFU_TYPES or (exp_type in ("NRS_AUTOWAVE", "NRS_LAMP") and lamp == "IFU")

        rate = _product(base, arrays, "rate", _IMAGE, "IFUImageModel" if ifu else "ImageModel", "rate")
        rateints = _product(base, arrays, "ints", _CUBE, "CubeModel", "rateints")
        for name in [n for n in ds.variables if str(n).startswith("INT_TIMES")]:
            rateints[name] = ds[name]
        tables = {k: v for k, v in (ds.attrs.get("tables") or {}).items() if k.startswith("INT_TIMES")}
        rate.attrs["tables"] = {}
        rateints.attrs["tables"] = tables
        if self.save_opt:
            self.add_side_product("fitopt", _fitopt(base, arrays))
        return {"rate": rate, "rateints": rateints}

    def _group_selection(self, gdq: da.Array, ngroups: int) -> da.Array:
        """DO_NOT_USE on groups outside ``firstgroup``..``lastgroup`` (the official rule)."""
        first = self.firstgroup
        last = self.lastgroup
        if first is None and last is None:
            return gdq
        first = max(0, 0 if first is None else int(first))
        last = ngroups - 1 if last is None else min(int(last), ngroups - 1)
        if first >= last:
            self.log.warning(
                "firstgroup (%s) cannot be >= lastgroup (%s); group selectors ignored", first, last
            )
            return gdq
        mask = np.zeros(ngroups, dtype=np.uint8)
        mask[:first] = FLAGS["DO_NOT_USE"]
        mask[last + 1 :] = FLAGS["DO_NOT_USE"]
        return gdq | mask[None, :, None, None]


def _whole_ramp(arr: Any) -> da.Array:
    a = arr if isinstance(arr, da.Array) else da.asarray(np.asarray(arr))
    if len(a.chunks[0]) > 1 or len(a.chunks[1]) > 1:
        a = a.rechunk({0: -1, 1: -1})
    return a


def _product(
    base: xr.Dataset, arrays: dict[str, da.Array], prefix: str, dims: tuple, model: str, product: str
) -> xr.Dataset:
    variables = {
        "SCI": (dims, arrays[f"{prefix}_sci"]),
        "ERR": (dims, arrays[f"{prefix}_err"]),
        "DQ": (dims, arrays[f"{prefix}_dq"]),
        "VAR_POISSON": (dims, arrays[f"{prefix}_var_poisson"]),
        "VAR_RNOISE": (dims, arrays[f"{prefix}_var_rnoise"]),
    }
    attrs = dict(base.attrs)
    attrs["model_type"] = model
    attrs["product"] = product
    return xr.Dataset(variables, attrs=attrs)


def _fitopt(base: xr.Dataset, arrays: dict[str, da.Array]) -> xr.Dataset:
    seg = ("integration", "segment", "y", "x")
    variables = {
        "SLOPE": (seg, arrays["seg_slope"]),
        "SIGSLOPE": (seg, arrays["seg_sigslope"]),
        "YINT": (seg, arrays["seg_yint"]),
        "SIGYINT": (seg, arrays["seg_sigyint"]),
        "PEDESTAL": (_CUBE, arrays["pedestal"]),
        "WEIGHTS": (seg, arrays["seg_weights"]),
        "CRMAG": (("integration", "cr", "y", "x"), arrays["crmag"]),
        "VAR_POISSON": (seg, arrays["seg_var_poisson"]),
        "VAR_RNOISE": (seg, arrays["seg_var_rnoise"]),
    }
    attrs = dict(base.attrs)
    attrs["model_type"] = "RampFitOutputModel"
    attrs["product"] = "fitopt"
    attrs["tables"] = {}
    return xr.Dataset(variables, attrs=attrs)
