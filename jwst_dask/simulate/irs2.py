"""NIRSpec IRS2 raw exposures (preset ``nirspec-irs2``) and the reference files that calibrate them.

An IRS2 full frame is 3200 science rows x 2048 columns: the reference output and four amplifier
outputs of 640 reads each, with interleaved reference reads (:mod:`jwst_dask.kernels.refpix_irs2`
has the geometry). The exposure is

    raw = bias + rate * (group + 1) + drift(integration, group, time of the read) + read noise

where the drift, common to the amplifier outputs (and seen by their interleaved reference reads),
is an offset, a slope in time and a slow sinusoid per group: what the IRS2 reference-pixel
correction removes. Detector reference rows and columns and every reference read have no signal.
A few reference reads are bad in the three ways the correction handles: flagged BAD_REF_PIXEL in
the MASK, marked in the REFPIX DQ table, and noisy (intermittently bad). The REFPIX reference's
``beta`` is a low-pass filter scaled by the inverse fraction of reference samples in the time series
(so that it interpolates the drift to the normal reads) and ``alpha`` a weak low-pass coupling to
the reference output.

Everything here is full frame and eager (numpy); keep ``ngroups`` small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits

from jwst_dask.dq import FLAGS
from jwst_dask.kernels.refpix_irs2 import NOUTPUTS, Irs2Layout

__all__ = [
    "IRS2_READPATTS",
    "simulate_irs2",
    "irs2_references",
    "read_times",
    "bad_reference_rows",
    "drift_model",
    "refpix_coefficients",
    "saturating_pixels",
    "build_irs2_reference",
    "IRS2_REFTYPES",
    "PRESET",
    "simulate_preset",
]

IRS2_READPATTS = ("NRSIRS2", "NRSIRS2RAPID")
_DATE = "2024-10-01T05:00:00.000"
_AXES = {"NRS1": (2, 1), "NRS2": (-2, -1)}
_BIAS = 12000.0
_READ_NOISE = 4.0
_DRIFT_PERIOD_FRAMES = 0.4  # sinusoid period, in frame times
_SAT = 55000.0
_GAIN = 1.0  # electrons/DN (GAIN reference; the ramps have read noise only)


def read_times(layout: Irs2Layout, detector: str) -> np.ndarray:
    """Time sample (float64) at which each science pixel (3200 x 2048) is read, counted from the
    start of the frame in pixel dwell times (a row of one output is ``layout.row`` samples)."""
    per_read = np.zeros(layout.sector, np.int64)
    per_read[layout.hnorm] = layout.hnorm1
    per_read[layout.href] = layout.href1
    ys = np.arange(layout.width)
    cols = layout.science_to_detector_column(ys, detector)
    t_col = per_read[layout.read_index[1][cols]]
    rows = layout.science_to_detector_row(np.arange(layout.ny), detector)
    return (rows[None, :] * layout.row + t_col[:, None]).astype(np.float64)


def bad_reference_rows(layout: Irs2Layout, detector: str) -> dict[str, np.ndarray]:
    """The science rows of the simulated bad reference reads: ``mask`` (BAD_REF_PIXEL in the MASK),
    ``dq_table`` (marked by the REFPIX DQ table: output 3, block 5, first pair) and ``noisy``
    (an intermittently bad pair of output 2)."""

    def to_sci(cols):
        cols = np.asarray(cols)
        return cols if detector == "NRS1" else layout.width - 1 - cols

    period = layout.n + layout.r
    first = layout.n // 2
    mask_cols = [layout.sector + first + 7 * period + 2, layout.sector + first + 7 * period + 3]
    dq_cols = [3 * layout.sector + first + 5 * period, 3 * layout.sector + first + 5 * period + 1]
    noisy = [2 * layout.sector + first + 11 * period, 2 * layout.sector + first + 11 * period + 1]
    return {"mask": to_sci(mask_cols), "dq_table": to_sci(dq_cols), "noisy": to_sci(noisy)}


def saturating_pixels(layout: Irs2Layout, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of the simulated pixels that saturate in the second group: normal pixels just before
    a block of interleaved reference rows (their grown flags must skip the reference rows)."""
    normal = layout.science_normal_rows(detector)
    before_ref = np.flatnonzero(normal[:-1] & ~normal[1:])
    return before_ref[[5, 40, 90]], np.array([1000, 1500, 300])


def _signal_free(layout: Irs2Layout, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) bool masks of science rows/columns without signal: every reference read and
    the detector's own reference rows and columns (4 at each edge)."""
    normal = layout.science_normal_rows(detector)
    kept = np.flatnonzero(normal)
    rows = ~normal
    rows[kept[:4]] = True
    rows[kept[-4:]] = True
    cols = np.zeros(layout.ny, bool)
    cols[:4] = True
    cols[-4:] = True
    return rows, cols


def _bias(layout: Irs2Layout, rng: np.random.Generator) -> np.ndarray:
    sector_level = np.repeat(rng.normal(0.0, 300.0, NOUTPUTS), layout.sector)
    return (_BIAS + sector_level[:, None] + rng.normal(0.0, 40.0, (layout.width, layout.ny))).astype(
        np.float32
    )


def _drift_params(nints: int, ngroups: int, rng: np.random.Generator) -> np.ndarray:
    """(nints, ngroups, 4): offset DN, slope DN per frame, sinusoid amplitude DN and phase."""
    offset = rng.normal(0.0, 30.0, (nints, ngroups))
    slope = rng.normal(0.0, 20.0, (nints, ngroups))
    amp = rng.uniform(10.0, 25.0, (nints, ngroups))
    phase = rng.uniform(0.0, 2 * np.pi, (nints, ngroups))
    return np.stack((offset, slope, amp, phase), axis=-1)


def drift_model(params: np.ndarray, t: np.ndarray, layout: Irs2Layout) -> np.ndarray:
    """The drift (DN) of one group with parameters ``params`` (offset, slope, amplitude, phase) at
    read times ``t`` (:func:`read_times`)."""
    o, s, a, p = params
    frame = float(layout.ny * layout.row)
    return o + s * (t / frame - 0.5) + a * np.sin(2 * np.pi * t / (frame * _DRIFT_PERIOD_FRAMES) + p)


def simulate_irs2(
    outdir: str | Path,
    *,
    seed: int = 0,
    ngroups: int = 4,
    nints: int = 1,
    detector: str = "NRS1",
    readpatt: str = "NRSIRS2RAPID",
) -> Path:
    """Write a NIRSpec IRS2 raw exposure (``<root>_uncal.fits``) and its truth (``<root>_truth.npz``:
    ``rate`` DN/group of the 2048 x 2048 normal pixels, ``drift`` the per-group drift parameters
    (offset, slope per frame, sinusoid amplitude and phase; :func:`drift_model`)) into
    ``outdir``; returns the uncal path. The matching references come from :func:`irs2_references`."""
    from jwst_dask.errors import ParameterError
    from jwst_dask.io import write_products

    if detector not in _AXES:
        raise ParameterError(f"IRS2 simulation: detector must be NRS1 or NRS2, not {detector!r}")
    if readpatt not in IRS2_READPATTS:
        raise ParameterError(f"IRS2 simulation: readpatt must be one of {IRS2_READPATTS}, not {readpatt!r}")
    if ngroups < 2 or nints < 1:
        raise ParameterError(f"IRS2 simulation: ngroups={ngroups} (>= 2) and nints={nints} (>= 1)")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    layout = Irs2Layout()
    rng = np.random.default_rng([seed, 2])
    bias = _bias(layout, np.random.default_rng([0, 1, 2]))  # the detector's: same as the SUPERBIAS
    t = read_times(layout, detector)
    free_rows, free_cols = _signal_free(layout, detector)
    rate = rng.uniform(2.0, 10.0, t.shape)
    rate[free_rows, :] = 0.0
    rate[:, free_cols] = 0.0
    rate[saturating_pixels(layout, detector)] = 30000.0  # saturate in the second group
    params = _drift_params(nints, ngroups, rng)
    refout = np.zeros(layout.width, bool)
    ref_out_rows = (
        slice(0, layout.sector) if detector == "NRS1" else slice(layout.width - layout.sector, None)
    )
    refout[ref_out_rows] = True
    bad = bad_reference_rows(layout, detector)
    normal = layout.science_normal_rows(detector)
    sci = np.empty((nints, ngroups, layout.width, layout.ny), np.uint16)
    for i in range(nints):
        for g in range(ngroups):
            drift = drift_model(params[i, g], t, layout)
            drift[refout] = params[i, g, 0]  # the reference output: an offset, no time drift
            frame = bias + rate * (g + 1) + drift + rng.normal(0.0, _READ_NOISE, t.shape)
            frame[bad["mask"]] += 900.0
            frame[bad["dq_table"]] += 700.0
            frame[bad["noisy"]] += 400.0 + rng.normal(0.0, 300.0, (2, layout.ny))
            sci[i, g] = np.clip(np.rint(frame), 0, 65535).astype(np.uint16)
    root = f"jw01234005001_01101_00001_{detector.lower()}"
    meta = _meta(detector, readpatt, nints, ngroups, f"{root}_uncal.fits")
    ds = xr.Dataset(
        {"SCI": (("integration", "group", "y", "x"), sci)},
        attrs={
            "meta": meta,
            "tables": {},
            "extra_fits": {},
            "model_type": "Level1bModel",
            "product": "uncal",
        },
    )
    ds.attrs["filename"] = f"{root}_uncal.fits"
    path = Path(write_products([(ds, outdir / f"{root}_uncal.fits")])[0])
    np.savez(
        outdir / f"{root}_truth.npz",
        rate=rate[normal].astype(np.float32),
        drift=params,
    )
    return path


#: the preset name of :func:`simulate_preset` (``jwst-dask simulate nirspec-irs2``)
PRESET = "nirspec-irs2"
_PRESET_OPTIONS = {"ngroups", "nints", "readpatt", "cosmic_rays", "write_asn", "truth", "tile", "detector"}


def simulate_preset(outdir: str | Path, *, seed: int = 0, **options) -> list[Path]:
    """The ``nirspec-irs2`` preset of :func:`jwst_dask.simulate.simulate`: one NRS1 (or
    ``detector``) full-frame IRS2 exposure, 4 groups and 1 integration unless ``ngroups``/``nints``
    say otherwise; options of the imaging presets that do not apply (size, nexp, filter, ZEROFRAME,
    noiseless) raise ParameterError. There are no cosmic rays."""
    from jwst_dask.errors import ParameterError

    defaults = {"noiseless": False, "zeroframe": False, "nexp": 1}
    given = {k: v for k, v in options.items() if v is not None and defaults.get(k, object()) != v}
    bad = sorted(set(given) - _PRESET_OPTIONS)
    if bad:
        raise ParameterError(f"simulate option(s) {', '.join(bad)} not supported by preset {PRESET}")
    return [
        simulate_irs2(
            outdir,
            seed=seed,
            ngroups=int(given.get("ngroups", 4)),
            nints=int(given.get("nints", 1)),
            detector=str(given.get("detector", "NRS1")).upper(),
            readpatt=str(given.get("readpatt", "NRSIRS2RAPID")).upper(),
        )
    ]


def _meta(detector: str, readpatt: str, nints: int, ngroups: int, filename: str) -> dict:
    fast, slow = _AXES[detector]
    frame_time = 14.5889
    return {
        "filename": filename,
        "model_type": "Level1bModel",
        "telescope": "JWST",
        "date": _DATE[:10] + "T00:00:00.000",
        "observation": {"date": _DATE[:10], "time": _DATE[11:23], "date_beg": _DATE[:23]},
        "instrument": {
            "name": "NIRSPEC",
            "detector": detector,
            "filter": "F290LP",
            "grating": "G395H",
            "fixed_slit": "S200A1",
        },
        "exposure": {
            "type": "NRS_FIXEDSLIT",
            "readpatt": readpatt,
            "nints": nints,
            "ngroups": ngroups,
            "nframes": 1,
            "groupgap": 0,
            "frame_divisor": 1,
            "nsamples": 1,
            "noutputs": 4,
            "nrs_normal": 16,
            "nrs_reference": 4,
            "frame_time": frame_time,
            "group_time": frame_time,
            "integration_time": frame_time * ngroups,
            "exposure_time": frame_time * ngroups * nints,
            "zero_frame": False,
            "start_time": 60584.2083,
            "mid_time": 60584.2084,
            "end_time": 60584.2085,
        },
        "subarray": {
            "name": "FULL",
            "xstart": 1,
            "ystart": 1,
            "xsize": 2048,
            "ysize": 2048,
            "fastaxis": fast,
            "slowaxis": slow,
        },
    }


# ------------------------------------------------------------------------------------ references
def _header(reftype: str, detector: str, readpatt: str | None, descrip: str, model: str) -> fits.Header:
    fast, slow = _AXES[detector]
    h = fits.Header()
    h["DATE"] = "2016-01-01T00:00:00"
    h["TELESCOP"] = "JWST"
    h["DATAMODL"] = model
    h["REFTYPE"] = reftype.upper()
    h["DESCRIP"] = descrip
    h["AUTHOR"] = "jwst-dask simulator"
    h["PEDIGREE"] = "DUMMY"
    h["USEAFTER"] = "2016-01-01T00:00:00"
    h["INSTRUME"] = "NIRSPEC"
    h["DETECTOR"] = detector
    if readpatt:
        h["READPATT"] = readpatt
    h["SUBARRAY"] = "FULL"
    h["SUBSTRT1"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"] = 1, 1, 2048, 2048
    h["FASTAXIS"], h["SLOWAXIS"] = fast, slow
    return h


def _lowpass(n: int, f1: float, f2: float) -> np.ndarray:
    f = np.abs(np.fft.fftfreq(n))
    h = np.where(f <= f1, 1.0, 0.0)
    roll = (f > f1) & (f < f2)
    h[roll] = 0.5 * (1 + np.cos(np.pi * (f[roll] - f1) / (f2 - f1)))
    return h


def refpix_coefficients(layout: Irs2Layout) -> tuple[np.ndarray, np.ndarray]:
    """The simulated ``alpha``, ``beta`` (4, ny * row) complex64 of the REFPIX reference."""
    n = layout.ny * layout.row
    h = _lowpass(n, 0.3 / layout.row, 0.6 / layout.row)
    gain = layout.row / (2.0 * layout.nref)  # the reference time series holds each read twice
    beta = np.tile((gain * h).astype(np.complex64), (4, 1))
    alpha = np.tile((0.02 * h * np.exp(0.1j)).astype(np.complex64), (4, 1))
    return alpha, beta


def _interleave(c: np.ndarray) -> np.ndarray:
    out = np.empty(2 * c.size, np.float32)
    out[0::2], out[1::2] = c.real, c.imag
    return out


def _build(reftype: str, detector: str, readpatt: str, path: Path) -> None:
    from jwst_dask.simulate.references import _dq_def, _image, _table, _write_fits

    layout = Irs2Layout()
    normal = layout.science_normal_rows(detector)
    if reftype == "mask":
        free_rows, free_cols = _signal_free(layout, detector)
        dq = np.zeros((layout.width, layout.ny), np.uint32)
        dq[~normal, :] |= FLAGS["REFERENCE_PIXEL"]
        dq[free_rows & normal, :] |= FLAGS["REFERENCE_PIXEL"]
        dq[:, free_cols] |= FLAGS["REFERENCE_PIXEL"]
        dq[bad_reference_rows(layout, detector)["mask"], :] |= FLAGS["BAD_REF_PIXEL"]
        rng = np.random.default_rng([0, 3])
        hot_y = rng.choice(np.flatnonzero(normal & ~free_rows), 30, replace=False)
        hot_x = rng.integers(4, layout.ny - 4, 30)
        dq[hot_y, hot_x] |= FLAGS["DO_NOT_USE"] | FLAGS["HOT"]
        header = _header("mask", detector, readpatt, "IRS2 bad pixel mask", "MaskModel")
        hdus = [_image(dq, "DQ"), _dq_def()]
    elif reftype == "superbias":
        bias = _bias(layout, np.random.default_rng([0, 1, 2]))
        header = _header("superbias", detector, readpatt, "IRS2 superbias", "SuperBiasModel")
        err = np.full(bias.shape, 2.0, np.float32)
        hdus = [
            _image(bias, "SCI", "DN"),
            _image(err, "ERR", "DN"),
            _image(np.zeros(bias.shape, np.uint32), "DQ"),
        ]
        hdus.append(_dq_def())
    elif reftype == "saturation":
        sat = np.full((layout.ny, layout.ny), _SAT, np.float32)
        sat[100, 200] = np.nan
        header = _header("saturation", detector, None, "saturation", "SaturationModel")
        hdus = [_image(sat, "SCI", "DN"), _image(np.zeros(sat.shape, np.uint32), "DQ"), _dq_def()]
    elif reftype == "refpix":
        alpha, beta = refpix_coefficients(layout)
        cols = {f"ALPHA_{k}": _interleave(alpha[k]) for k in range(4)}
        cols.update({f"BETA_{k}": _interleave(beta[k]) for k in range(4)})
        dqtab = {
            "OUTPUT": np.array([1, 1, 2, 2, 3, 3, 4, 4], np.int16),
            "ODD_EVEN": np.array([1, 2, 1, 2, 1, 2, 1, 2], np.int16),
            "MASK": np.array([0, 0, 0, 0, 1 << 5, 0, 0, 0], np.uint32),
        }
        header = _header("refpix", detector, readpatt, "IRS2 refpix coefficients", "IRS2Model")
        hdus = [_table(cols, "IRS2"), _table(dqtab, "DQ")]
    elif reftype in ("gain", "readnoise"):
        value, unit, model = (_GAIN, "electrons/DN", "GainModel") if reftype == "gain" else (
            _READ_NOISE, "DN", "ReadnoiseModel")  # fmt: skip
        header = _header(reftype, detector, None, reftype, model)
        hdus = [_image(np.full((layout.ny, layout.ny), value, np.float32), "SCI", unit)]
    else:
        from jwst_dask.errors import ParameterError

        raise ParameterError(
            f"NIRSpec reference type {reftype!r} cannot be generated; known: {', '.join(IRS2_REFTYPES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_fits(path, header, hdus)


#: the NIRSpec reference types this module builds
IRS2_REFTYPES = ("mask", "superbias", "saturation", "refpix", "gain", "readnoise")


def build_irs2_reference(reftype: str, selection: dict[str, str], path: Path) -> None:
    """Write the NIRSpec IRS2 ``reftype`` reference for a CRDS ``selection`` (META.* keys; the
    detector NRS1/NRS2 and read pattern are taken from it) to ``path``."""

    def first(key: str, default: str) -> str:
        value = str(selection.get(key) or "")
        parts = [p for p in value.split("|") if p and p.upper() not in ("ANY", "N/A")]
        return parts[0].upper() if parts else default

    detector = first("META.INSTRUMENT.DETECTOR", "NRS1")
    readpatt = first("META.EXPOSURE.READPATT", "NRSIRS2RAPID")
    _build(reftype.lower(), detector, readpatt, Path(path))


def irs2_references(outdir: str | Path, detector: str = "NRS1", readpatt: str = "NRSIRS2RAPID") -> dict:
    """Write the MASK, SUPERBIAS (IRS2 layout, 3200 x 2048), SATURATION, GAIN, READNOISE
    (2048 x 2048) and REFPIX references of the simulated IRS2 detector into ``outdir``; returns
    ``{reftype: path}``. (The project's CRDS cache builds the same files through
    :func:`build_irs2_reference`.)"""
    outdir = Path(outdir)
    paths = {}
    for reftype in IRS2_REFTYPES:
        path = outdir / f"jwst_nirspec_{reftype}_irs2_{detector.lower()}.fits"
        _build(reftype, detector, readpatt, path)
        paths[reftype] = path
    return paths
