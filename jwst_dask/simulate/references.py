"""Synthetic reference files in the JWST formats, consistent with the simulator's detector physics.

:func:`build_reference` writes one reference file (FITS or ASDF, the layout of the matching
stdatamodels reference model) for a CRDS selection: the rmap parkeys (``META.*`` names) and their
values, where ``"ANY"``, ``"N/A"`` and or-globs ``"A|B"`` are resolved to the first concrete value.
The content comes from :mod:`jwst_dask.simulate.detector` (and :mod:`~jwst_dask.simulate.wcs`), the
same functions the simulator uses, so calibrating a simulated exposure with these files recovers the
simulation's truth. Output is deterministic: the same arguments give the same bytes.

Sizes: full-frame NIRCam darks hold 10 frames (NFRAMES=1, GROUPGAP=0), enough for the RAPID
10-group case (and patterns whose groups end within 10 frames); subarray darks hold 50 frames; MIRI
darks and RESET hold 2 integrations x 10 groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from jwst_dask.errors import ParameterError
from jwst_dask.simulate.readout import frame_time

__all__ = ["build_reference", "cut_reference", "REFTYPES", "Selection", "SUBARRAYS"]

#: subarray name -> (xstart, ystart, xsize, ysize, noutputs) per detector (1-based starts)
SUBARRAYS: dict[str, dict[str, tuple[int, int, int, int, int]]] = {
    "NRCA1": {"FULL": (1, 1, 2048, 2048, 4), "SUB64P": (1, 1, 64, 64, 1)},
    "MIRIMAGE": {"FULL": (1, 1, 1032, 1024, 4)},
}

#: detector -> (fastaxis, slowaxis)
AXES = {"NRCA1": (-1, 2), "MIRIMAGE": (1, 2)}

_DEFAULTS = {
    "NIRCAM": {"detector": "NRCA1", "filter": "F200W", "pupil": "CLEAR", "readpatt": "RAPID",
               "exp_type": "NRC_IMAGE", "module": "A", "channel": "SHORT"},
    "MIRI": {"detector": "MIRIMAGE", "filter": "F770W", "pupil": "N/A", "readpatt": "FAST",
             "exp_type": "MIR_IMAGE", "module": "N/A", "channel": "N/A"},
}  # fmt: skip

_FULL_DARK_FRAMES = 10
_SUB_DARK_FRAMES = 50
_MIRI_REF_INTS = 2
_MIRI_REF_GROUPS = 10


class Selection:
    """Concrete values of a CRDS selection (first value of or-globs; ANY / N/A -> the default)."""

    def __init__(self, selection: dict[str, str], reftype: str):
        self.raw = {k.upper(): str(v) for k, v in selection.items()}
        self.reftype = reftype
        instr = self._get("META.INSTRUMENT.NAME")
        det = self._get("META.INSTRUMENT.DETECTOR")
        if instr is None and det is not None:
            instr = "MIRI" if det.startswith("MIR") else "NIRCAM"
        self.instrument = (instr or "NIRCAM").upper()
        if self.instrument not in _DEFAULTS:
            raise ParameterError(
                f"reference {reftype}: instrument {self.instrument!r} not supported (NIRCAM, MIRI)"
            )
        d = _DEFAULTS[self.instrument]
        self.detector = (det or d["detector"]).upper()
        if self.detector not in SUBARRAYS:
            raise ParameterError(f"reference {reftype}: detector {self.detector!r} not simulated")
        self.filter = (self._get("META.INSTRUMENT.FILTER") or d["filter"]).upper()
        self.pupil = (self._get("META.INSTRUMENT.PUPIL") or d["pupil"]).upper()
        self.readpatt = (self._get("META.EXPOSURE.READPATT") or d["readpatt"]).upper()
        self.exp_type = (self._get("META.EXPOSURE.TYPE") or d["exp_type"]).upper()
        self.module = self._get("META.INSTRUMENT.MODULE") or d["module"]
        self.channel = self._get("META.INSTRUMENT.CHANNEL") or d["channel"]
        self.subarray = (self._get("META.SUBARRAY.NAME") or "FULL").upper()
        subs = SUBARRAYS[self.detector]
        if self.subarray not in subs:
            if self.subarray == "GENERIC":
                self.subarray = "FULL"
            else:
                raise ParameterError(
                    f"reference {reftype}: subarray {self.subarray!r} not defined for {self.detector}; "
                    f"known: {', '.join(subs)}"
                )
        self.xstart, self.ystart, self.xsize, self.ysize, nout = subs[self.subarray]
        nout_sel = self._get("META.EXPOSURE.NOUTPUTS")
        self.noutputs = int(nout_sel) if nout_sel and nout_sel.isdigit() else nout
        self.tsovisit = (self._get("META.VISIT.TSOVISIT") or "").upper() in ("TRUE", "T", "1")

    def _get(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        for part in value.split("|"):
            part = part.strip()
            if part and part.upper() not in ("ANY", "N/A", "NONE", ""):
                return part
        return None

    @property
    def slices(self) -> tuple[slice, slice]:
        """Full-frame (rows, columns) of the subarray."""
        y0, x0 = self.ystart - 1, self.xstart - 1
        return slice(y0, y0 + self.ysize), slice(x0, x0 + self.xsize)

    @property
    def frame_time(self) -> float:
        """Frame time of this subarray's readout."""
        return frame_time(self.instrument, self.xsize, self.ysize, self.noutputs, self.readpatt)


#: reference type -> stdatamodels model name (DATAMODL); per instrument where they differ
MODEL_TYPES = {
    "mask": "MaskModel", "saturation": "SaturationModel", "superbias": "SuperBiasModel",
    "linearity": "LinearityModel", "dark": "DarkModel", "gain": "GainModel", "readnoise": "ReadnoiseModel",
    "ipc": "IPCModel", "trapdensity": "TrapDensityModel", "persat": "PersistenceSatModel",
    "trappars": "TrapParsModel", "reset": "ResetModel", "rscd": "RSCDModel", "emicorr": "EmiModel",
    "flat": "FlatModel", "photom": "NrcImgPhotomModel", "area": "PixelAreaModel",
    "distortion": "DistortionModel", "filteroffset": "FilteroffsetModel", "drizpars": "DrizParsModel",
    "apcorr": "NrcImgApcorrModel", "abvegaoffset": "ABVegaOffsetModel", "tsophot": "TsoPhotModel",
}  # fmt: skip
_MIRI_MODEL_TYPES = {"dark": "DarkMIRIModel", "photom": "MirImgPhotomModel", "apcorr": "MirImgApcorrModel"}


def model_type(reftype: str, instrument: str) -> str:
    """The data model (DATAMODL) of a reference type for an instrument."""
    if instrument.upper() == "MIRI" and reftype in _MIRI_MODEL_TYPES:
        return _MIRI_MODEL_TYPES[reftype]
    return MODEL_TYPES[reftype]


def _header(
    sel: Selection, reftype: str, useafter: str, descrip: str, *, imaging: bool = True
) -> fits.Header:
    """Primary header with the required reference keywords (and the subarray keywords for images)."""
    h = fits.Header()
    ua = _useafter(useafter)
    h["DATE"] = (ua, "file date (set to USEAFTER: deterministic)")
    h["ORIGIN"] = "jwst-dask"
    h["TELESCOP"] = "JWST"
    h["FILENAME"] = ""
    if reftype != "drizpars":  # no data model of its own in current stdatamodels
        h["DATAMODL"] = model_type(reftype, sel.instrument)
    h["REFTYPE"] = reftype.upper()
    h["DESCRIP"] = descrip[:68]
    h["AUTHOR"] = "jwst-dask simulator"
    h["PEDIGREE"] = "DUMMY"
    h["USEAFTER"] = ua
    h["INSTRUME"] = sel.instrument
    h["DETECTOR"] = sel.detector
    if sel.instrument == "NIRCAM":
        h["MODULE"] = sel.module
        h["CHANNEL"] = sel.channel
    if imaging:
        fast, slow = AXES[sel.detector]
        h["SUBARRAY"] = sel.subarray
        h["SUBSTRT1"] = sel.xstart
        h["SUBSTRT2"] = sel.ystart
        h["SUBSIZE1"] = sel.xsize
        h["SUBSIZE2"] = sel.ysize
        h["FASTAXIS"] = fast
        h["SLOWAXIS"] = slow
    h["HISTORY"] = "Generated by the jwst-dask simulator from its detector model."
    return h


def _useafter(useafter: str) -> str:
    s = str(useafter).strip().replace(" ", "T")
    if len(s) == 10:
        s += "T00:00:00"
    return s


def _image(data: np.ndarray, name: str, bunit: str | None = None) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data=np.ascontiguousarray(data), name=name)
    if bunit:
        hdu.header["BUNIT"] = bunit
    return hdu


def _dq_def() -> fits.BinTableHDU:
    from jwst_dask.dq import dq_def_table

    return fits.BinTableHDU(data=dq_def_table(), name="DQ_DEF")


def _table(columns: dict[str, np.ndarray], name: str) -> fits.BinTableHDU:
    cols = []
    for key, arr in columns.items():
        arr = np.asarray(arr)
        if arr.dtype.kind in "US":
            width = max(1, max((len(str(v)) for v in arr), default=1))
            cols.append(fits.Column(name=key, format=f"{width}A", array=arr.astype(f"S{width}")))
        elif arr.dtype.kind == "f":
            cols.append(fits.Column(name=key, format="D" if arr.dtype.itemsize == 8 else "E", array=arr))
        else:
            fmt = {1: "B", 2: "I", 4: "J", 8: "K"}[arr.dtype.itemsize]
            cols.append(fits.Column(name=key, format=fmt, array=arr))
    return fits.BinTableHDU.from_columns(cols, name=name)


def _write_fits(path: Path, header: fits.Header, hdus: list) -> None:
    header["FILENAME"] = path.name
    hdul = fits.HDUList([fits.PrimaryHDU(header=header), *hdus])
    tmp = path.with_name(path.name + ".tmp")
    hdul.writeto(tmp, overwrite=True)
    tmp.replace(path)


def _write_asdf(path: Path, tree: dict) -> None:
    import asdf

    tree["meta"]["filename"] = path.name
    tmp = path.with_name(path.name + ".tmp")
    af = asdf.AsdfFile(tree)
    af.write_to(tmp, all_array_storage="internal")
    tmp.replace(path)


def _asdf_meta(sel: Selection, reftype: str, useafter: str, descrip: str, model_type: str) -> dict:
    meta = {
        "date": _useafter(useafter),
        "origin": "jwst-dask",
        "telescope": "JWST",
        "reftype": reftype.upper(),
        "description": descrip,
        "author": "jwst-dask simulator",
        "pedigree": "DUMMY",
        "useafter": _useafter(useafter),
        "model_type": model_type,
        "instrument": {"name": sel.instrument, "detector": sel.detector},
        "exposure": {"type": sel.exp_type},
    }
    if sel.instrument == "NIRCAM":
        meta["instrument"].update(module=sel.module, channel=sel.channel)
    return meta


# --------------------------------------------------------------------------------------- registry
def _builders() -> dict:
    from jwst_dask.simulate import refs_calib, refs_detector

    return {**refs_detector.BUILDERS, **refs_calib.BUILDERS}


#: the reference types this module can build
REFTYPES = (
    "mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise", "ipc", "trapdensity",
    "persat", "trappars", "reset", "rscd", "emicorr", "flat", "photom", "area", "distortion",
    "filteroffset", "drizpars", "apcorr", "abvegaoffset", "tsophot",
)  # fmt: skip


def build_reference(reftype: str, selection: dict[str, str], path, *, useafter: str) -> None:
    """Write one reference file of type ``reftype`` for the CRDS ``selection`` to ``path``.

    Parameters
    ----------
    reftype
        CRDS reference type (lower case), one of :data:`REFTYPES`.
    selection
        The rmap parkey values, ``META.*`` names (e.g. ``{"META.INSTRUMENT.DETECTOR": "NRCA1",
        "META.SUBARRAY.NAME": "FULL"}``); ``ANY``/``N/A`` and or-globs ``"A|B"`` are allowed.
    path
        Output file (``.fits`` or ``.asdf`` as the type's format requires); written atomically.
    useafter
        USEAFTER date (``YYYY-MM-DD[ hh:mm:ss]``); also selects the detector epoch for flats.
    """
    reftype = reftype.lower()
    if str(selection.get("META.INSTRUMENT.NAME", "")).upper() == "NIRSPEC":
        from jwst_dask.simulate.irs2 import build_irs2_reference

        build_irs2_reference(reftype, selection, Path(path))
        return
    builders = _builders()
    if reftype not in builders:
        raise ParameterError(f"reference type {reftype!r} cannot be generated; known: {', '.join(REFTYPES)}")
    sel = Selection(selection, reftype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kind, payload = builders[reftype](sel, useafter)
    if kind == "fits":
        header, hdus = payload
        _write_fits(path, header, hdus)
    else:
        _write_asdf(path, payload)


def cut_reference(path, out, *, xstart: int, ystart: int, xsize: int, ysize: int) -> None:
    """Write a copy of a FITS reference file cut to a subarray (1-based ``xstart``/``ystart``).

    Every image extension whose last two axes span the file's own SUBSIZE1/SUBSIZE2 is cut, and the
    SUBSTRT/SUBSIZE keywords are updated. For pipelines that need references of the science size,
    such as the official dark step, when the science data are a ``size`` cut-out of a readout.
    """
    path, out = Path(path), Path(out)
    with fits.open(path) as hdul:
        h0 = hdul[0].header
        x0, y0 = int(h0.get("SUBSTRT1", 1)), int(h0.get("SUBSTRT2", 1))
        nx, ny = int(h0.get("SUBSIZE1", 0)), int(h0.get("SUBSIZE2", 0))
        if not (x0 <= xstart and y0 <= ystart and xstart + xsize <= x0 + nx and ystart + ysize <= y0 + ny):
            raise ParameterError(
                f"{path.name}: subarray x {xstart}+{xsize}, y {ystart}+{ysize} is not inside the file's "
                f"x {x0}+{nx}, y {y0}+{ny}"
            )
        ys = slice(ystart - y0, ystart - y0 + ysize)
        xs = slice(xstart - x0, xstart - x0 + xsize)
        hdus = [fits.PrimaryHDU(header=h0.copy())]
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.ImageHDU) and hdu.data is not None and hdu.data.shape[-2:] == (ny, nx):
                hdus.append(fits.ImageHDU(np.ascontiguousarray(hdu.data[..., ys, xs]), header=hdu.header))
            else:
                hdus.append(hdu.copy())
        hdus[0].header.update(SUBSTRT1=xstart, SUBSTRT2=ystart, SUBSIZE1=xsize, SUBSIZE2=ysize,
                              FILENAME=out.name)  # fmt: skip
        if xsize != nx or ysize != ny:
            hdus[0].header["SUBARRAY"] = "GENERIC"
        tmp = out.with_name(out.name + ".tmp")
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    tmp.replace(out)


def dark_frames(sel: Selection) -> int:
    """Number of frames in the dark reference for a selection (see the module notes)."""
    if sel.instrument == "MIRI":
        return _MIRI_REF_GROUPS
    return _FULL_DARK_FRAMES if sel.subarray == "FULL" else _SUB_DARK_FRAMES


def cut(array: np.ndarray, sel: Selection) -> np.ndarray:
    """The subarray of a full-frame (..., ny, nx) array."""
    ys, xs = sel.slices
    return np.ascontiguousarray(array[..., ys, xs])


# re-exported helpers for the builder modules
header = _header
image = _image
dq_def = _dq_def
table = _table
asdf_meta = _asdf_meta
MIRI_REF_INTS = _MIRI_REF_INTS
MIRI_REF_GROUPS = _MIRI_REF_GROUPS
