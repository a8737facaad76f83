"""refpix for NIRSpec IRS2 exposures: graph wiring of :mod:`jwst_dask.kernels.refpix_irs2`.

The correction of a group is frame-wide (Fourier filters over the whole frame's time series), so
it runs in two passes (docs/design.md, "Frame-wide statistics"):

(a) from a copy of the upstream graph, one task per stripe copies out the stripe's reference rows
    (every interleaved reference read and the reference output, ~36% of the frame) and its eight
    edge columns (detector rows 0-3 and 2044-2047); one task flags the intermittently bad
    reference pairs over all integrations; then one task per integration computes the correction
    of the normal pixels of every group of that integration (ngroups x 2048 x 2048 float32) and
    the fitted lines;
(b) each stripe then drops its reference rows and subtracts its part of the correction.

Memory: pass (a) holds the reference rows of the exposure and the corrections of the integrations
until the stripes have used them (about the size of the exposure in float32 for one integration);
IRS2 exposures are full frame with few integrations.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
from astropy.io import fits

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ParameterError, ReferenceFileError, ShapeMismatchError
from jwst_dask.kernels import refpix_irs2 as kern
from jwst_dask.steps._two_pass import frame_statistic

__all__ = [
    "is_irs2",
    "correct_irs2",
    "drop_empty_chunks",
    "read_refpix",
    "trim_reference_rows",
    "irs2_layout",
]

_NROWS = 2 * 712 * 2048
_COLUMNS = tuple(f"{name}_{k}" for name in ("ALPHA", "BETA") for k in range(4))


def is_irs2(ds: xr.Dataset) -> bool:
    """True for data in the IRS2 layout: an IRS2 read pattern, or a frame axis longer than 2048
    (the official test)."""
    readpatt = str(ds.jwst.meta.get_path("exposure.readpatt") or "").upper()
    return "IRS2" in readpatt or max(ds.sizes.get("y", 0), ds.sizes.get("x", 0)) > kern.Irs2Layout().ny


def irs2_layout(ds: xr.Dataset, log=None) -> tuple[kern.Irs2Layout, str]:
    """The IRS2 geometry (NRS_NORM, NRS_REF; 16 and 4 when absent) and the detector of ``ds``;
    ShapeMismatchError unless it is a NIRSpec NRS1/NRS2 full frame of 3200 x 2048 pixels."""
    meta = ds.jwst.meta
    n = meta.get_path("exposure.nrs_normal")
    r = meta.get_path("exposure.nrs_reference")
    if (n is None or r is None) and log is not None:
        log.warning("Keywords NRS_NORM/NRS_REF not found; using 16 and 4")
    layout = kern.Irs2Layout(n=int(n or 16), r=int(r or 4))
    detector = str(meta.get_path("instrument.detector") or "").upper()
    if detector not in kern.DETECTORS:
        raise ShapeMismatchError(
            f"IRS2 data: detector {detector or '(none)'} is not NRS1 or NRS2 (IRS2 is a NIRSpec readout)"
        )
    shape = (ds.sizes.get("y"), ds.sizes.get("x"))
    if shape != (layout.width, layout.ny):
        raise ShapeMismatchError(
            f"IRS2 data must be {layout.width} x {layout.ny} pixels (y, x; full frame with interleaved "
            f"reference pixels), got {shape[0]} x {shape[1]}"
        )
    return layout, detector


def read_refpix(path: str | Path) -> None:
    """Check a REFPIX reference: an ``IRS2`` table with ALPHA_0..3 and BETA_0..3 of 2 x 712 x 2048
    rows, and if present a ``DQ`` table with OUTPUT, ODD_EVEN and MASK. ReferenceFileError naming
    the file and what is wrong otherwise."""
    try:
        with fits.open(path, memmap=True) as hdul:
            names = [h.name.upper() for h in hdul]
            if "IRS2" not in names:
                raise ReferenceFileError(f"REFPIX reference {Path(path).name} has no IRS2 table extension")
            hdu = hdul["IRS2"]
            cols = [c.upper() for c in hdu.columns.names]
            missing = [c for c in _COLUMNS if c not in cols]
            if missing:
                raise ReferenceFileError(
                    f"REFPIX reference {Path(path).name}: IRS2 table lacks column(s) {', '.join(missing)}"
                )
            if hdu.header["NAXIS2"] != _NROWS:
                raise ReferenceFileError(
                    f"REFPIX reference {Path(path).name}: IRS2 table has {hdu.header['NAXIS2']} rows, "
                    f"expected {_NROWS} (2 x 712 x 2048: real and imaginary parts)"
                )
            if "DQ" in names:
                dcols = [c.upper() for c in hdul["DQ"].columns.names]
                lacking = [c for c in ("OUTPUT", "ODD_EVEN", "MASK") if c not in dcols]
                if lacking:
                    raise ReferenceFileError(
                        f"REFPIX reference {Path(path).name}: DQ table lacks column(s) {', '.join(lacking)}"
                    )
    except OSError as exc:
        raise ReferenceFileError(f"REFPIX reference {path} is not a readable FITS file: {exc}") from None


@functools.lru_cache(maxsize=2)
def _coefficients(path: str, layout: kern.Irs2Layout) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """(alpha, beta, DQ-table columns) of a REFPIX reference (read once per process)."""
    with fits.open(path, memmap=False) as hdul:
        table = hdul["IRS2"].data
        alpha = np.stack([kern.complex_from_rows(table[f"ALPHA_{k}"]) for k in range(4)])
        beta = np.stack([kern.complex_from_rows(table[f"BETA_{k}"]) for k in range(4)])
        dq = []
        if "DQ" in [h.name.upper() for h in hdul] and hdul["DQ"].data is not None and len(hdul["DQ"].data):
            t = hdul["DQ"].data
            dq = kern.dq_table_bad_columns(t["OUTPUT"], t["ODD_EVEN"], t["MASK"], layout)
    return alpha, beta, dq


def _correction(refs, edges, bad, path, layout, detector):
    alpha, beta, dq = _coefficients(path, layout)
    rows = layout.science_reference_rows(detector)
    return kern.integration_correction(refs, rows, edges, bad, dq, alpha, beta, layout, detector)


def _apply_block(sci, gy, gx, corr, lines, *, layout, detector):
    return kern.apply_tile(sci, int(gy[0]), int(gx[0]), corr, lines, layout, detector)


def trim_reference_rows(arr: da.Array, axis: int, normal: np.ndarray) -> da.Array:
    """``arr`` without the IRS2 reference rows (``normal`` False) along ``axis``, block by block."""
    from jwst_dask.steps.refpix import _take

    return _take(arr, axis, np.flatnonzero(normal))


def drop_empty_chunks(arr: da.Array, axis: int) -> da.Array:
    """``arr`` with the empty chunks along ``axis`` merged away (a stripe of reference rows only
    has none left after :func:`trim_reference_rows`; halos and later steps need non-empty blocks)."""
    chunks = list(arr.chunks)
    kept = tuple(c for c in chunks[axis] if c)
    if kept == chunks[axis]:
        return arr
    chunks[axis] = kept or (0,)
    return arr.rechunk(tuple(chunks))


def correct_irs2(step, ds: xr.Dataset) -> xr.Dataset:
    """The IRS2 reference-pixel correction of ``ds`` (RefPixStep parameters from ``step``): the
    corrected normal pixels, every variable with the 1152 reference rows removed (2048 x 2048)."""
    from jwst_dask.steps.refpix import _take

    layout, detector = irs2_layout(ds, step.log)
    if step.preserve_irs2_refpix:
        raise ParameterError(
            "refpix: preserve_irs2_refpix=True (keeping the interleaved reference pixels) is not supported"
        )
    if step.irs2_mean_subtraction:
        raise ParameterError("refpix: irs2_mean_subtraction=True is not supported")
    path = step.get_reference_file(ds, "refpix")
    if path == "N/A":
        step.log.warning("No refpix reference file found; RefPix step will be skipped")
        return ds.jwst.set_cal_step("refpix", "SKIPPED")
    read_refpix(path)
    step.log.info(f"Using refpix reference file: {Path(path).name}")
    rows = layout.science_reference_rows(detector)
    nints, ngroups, _, nx = ds["SCI"].shape
    n_sigma = float(step.ovr_corr_mitigation_ftr)
    normal = layout.science_normal_rows(detector)
    bad_ref = np.uint32(FLAGS["BAD_REF_PIXEL"])

    def statistics(sci, pdq):
        refs = _take(sci, 2, rows)
        edges = _take(sci, 3, kern.EDGE_X)
        flagged = ((pdq & bad_ref) != 0).any(axis=1)
        bad = dask.delayed(kern.flag_intermittent)(refs, rows, flagged, layout, n_sigma)
        corrs, lines = [], []
        for i in range(nints):
            res = dask.delayed(_correction, nout=2)(refs[i], edges[i], bad, str(path), layout, detector)
            corrs.append(da.from_delayed(res[0], (ngroups, int(normal.sum()), nx), dtype=np.float32))
            lines.append(da.from_delayed(res[1], (ngroups, kern.NOUTPUTS, 2), dtype=np.float32))
        return da.stack(corrs), da.stack(lines)

    (corr, lines), ds = frame_statistic([ds["SCI"].data, ds["PIXELDQ"].data], statistics, ds)
    sci = ds["SCI"].data
    bounds = np.cumsum((0, *sci.chunks[2]))
    out_cy = tuple(int(normal[a:b].sum()) for a, b in itertools.pairwise(bounds))
    corr = corr.rechunk((sci.chunks[0], sci.chunks[1], out_cy, sci.chunks[3]))
    lines = lines.rechunk((sci.chunks[0], sci.chunks[1], -1, -1))
    gy = da.arange(0, layout.width, chunks=(sci.chunks[2],))
    gx = da.arange(0, nx, chunks=(sci.chunks[3],))
    new = da.blockwise(
        _apply_block,
        "igyx",
        sci,
        "igyx",
        gy,
        "y",
        gx,
        "x",
        corr,
        "igyx",
        lines,
        "igab",
        dtype=np.float32,
        concatenate=True,
        align_arrays=False,
        adjust_chunks={"y": out_cy},
        layout=layout,
        detector=detector,
    )
    out = xr.Dataset(attrs=dict(ds.attrs))
    for name, var in ds.variables.items():
        if name in ds.dims and name not in ds.data_vars:
            continue
        if name == "SCI":
            out[name] = (var.dims, drop_empty_chunks(new, 2), var.attrs)
        elif "y" in var.dims:
            axis = var.dims.index("y")
            data = var.data if isinstance(var.data, da.Array) else da.asarray(var.data)
            trimmed = trim_reference_rows(data, axis, normal)
            out[name] = (var.dims, drop_empty_chunks(trimmed, axis), var.attrs)
        else:
            out[name] = var
    step.log.info(f"IRS2: {int((~normal).sum())} reference rows removed; output {layout.ny} x {nx}")
    return out.jwst.set_cal_step("refpix")
