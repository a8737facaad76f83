"""The shipped CRDS rules, as a table, and their rendering to CRDS mapping text (pmap/imap/rmap).

The rules in ``stores/crds/mappings/jwst/`` are plain CRDS mapping files that the stock ``crds``
client reads as they are. This module is where they come from: :data:`RULES` lists, per instrument
and reference type, the real JWST selection keywords (parkeys, as in the rmap "specs" that ``crds``
ships) and the Match/UseAfter entries naming the reference files of the project's reference set.
:func:`write_mappings` renders them with valid ``sha1sum`` checksums; :func:`checksum_text` and
:func:`update_checksum` compute and repair checksums exactly as ``crds`` does (sha1 over the text
with every line that contains ``sha1sum`` removed).

The rules cover the NIRCam (NRCA1) and MIRI imager (MIRIMAGE) observation modes the simulator
produces (every reference type that stage 1, 2 and 3 imaging/TSO steps ask for), the NIRSpec IRS2
stage-1 references (MASK, SUPERBIAS, SATURATION, REFPIX, GAIN, READNOISE), and ``'N/A'`` for the
types that do not apply (spectroscopic ``assign_wcs`` types, NIRSpec-only types, ...).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RULES",
    "NOT_APPLICABLE",
    "CONTEXT",
    "Rule",
    "checksum_text",
    "update_checksum",
    "render_rmap",
    "render_imap",
    "render_pmap",
    "write_mappings",
]

#: the pipeline context the shipped rules define
CONTEXT = "jwst_0001.pmap"

DATE = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
DETECTOR = "META.INSTRUMENT.DETECTOR"
FILTER = "META.INSTRUMENT.FILTER"
PUPIL = "META.INSTRUMENT.PUPIL"
BAND = "META.INSTRUMENT.BAND"
CHANNEL = "META.INSTRUMENT.CHANNEL"
MODULE = "META.INSTRUMENT.MODULE"
SUBARRAY = "META.SUBARRAY.NAME"
READPATT = "META.EXPOSURE.READPATT"
EXP_TYPE = "META.EXPOSURE.TYPE"
NOUTPUTS = "META.EXPOSURE.NOUTPUTS"
NGROUPS = "META.EXPOSURE.NGROUPS"
TSOVISIT = "META.VISIT.TSOVISIT"

#: the first USEAFTER of every shipped reference
FIRST = "2016-01-01 00:00:00"

NRC_FILTERS = "F150W|F200W|F210M"
NRC_IMAGING = "NRC_IMAGE|NRC_TSIMAGE"
MIR_FILTERS = "F560W|F770W|F1000W|F1500W|F2100W"
TRUE = "TRUE|T"
FALSE = "FALSE|F"


@dataclass(frozen=True)
class Rule:
    """One rmap: the Match parkeys and, per Match tuple, either ``{useafter: filename}`` or ``'N/A'``."""

    parkey: tuple[str, ...]
    entries: dict[tuple[str, ...], dict[str, str] | str]
    file_ext: str = ".fits"
    text_descr: str = ""
    extra_header: dict = field(default_factory=dict)


def _one(name: str, first: str = FIRST) -> dict[str, str]:
    return {first: name}


#: reference types that do not apply to NIRCam or MIRI imaging/TSO (imap value 'N/A')
#: types every instrument map lists as 'N/A' here: spectroscopic assign_wcs types, the NIRSpec
#: flat-field parts, and the parameter-reference types (parameters come from graphs/, not CRDS)
_SHARED_NA = (
    "specwcs", "regions", "wavelengthrange", "camera", "collimator", "disperser", "fore", "fpa",
    "ifufore", "ifupost", "ifuslicer", "msa", "ote", "fflat", "sflat", "dflat", "psfmask", "bkg",
    "extract1d", "wcsregions", "pathloss", "barshadow", "wfssbkg",
    "pars-detector1pipeline", "pars-darkpipeline", "pars-image2pipeline", "pars-image3pipeline",
    "pars-tso3pipeline", "pars-jumpstep", "pars-rampfitstep", "pars-darkcurrentstep",
    "pars-outlierdetectionstep", "pars-resamplestep", "pars-sourcecatalogstep", "pars-tweakregstep",
    "pars-tsophotometrystep", "pars-whitelightstep",
)  # fmt: skip

#: reference types that do not apply to NIRCam or MIRI imaging/TSO (imap value 'N/A')
NOT_APPLICABLE: dict[str, tuple[str, ...]] = {
    "NIRCAM": ("refpix", "reset", "rscd", "emicorr", "sirskernel", *_SHARED_NA),
    "MIRI": (
        "superbias",
        "refpix",
        "trapdensity",
        "persat",
        "trappars",
        "fringe",
        "straymask",
        "cubepar",
        "resol",
        "mrsxartcorr",
        "mrsptcorr",
        "fringefreq",
        "pars-emicorrstep",
        *_SHARED_NA,
    ),
}


#: NIRSpec: only the IRS2 stage-1 references the simulator makes (MASK, SUPERBIAS, SATURATION,
#: REFPIX, GAIN, READNOISE); the other types are 'N/A' here (their steps skip)
NOT_APPLICABLE["NIRSPEC"] = (
    "linearity", "dark", "ipc", "trapdensity", "persat", "trappars", "reset",
    "rscd", "emicorr", "sirskernel", "flat", "photom", "area", "distortion", "filteroffset",
    "drizpars", "apcorr", "abvegaoffset", "tsophot", *_SHARED_NA,
)  # fmt: skip

NRS_IRS2 = "NRSIRS2|NRSIRS2RAPID"
NRS_TRADITIONAL = "NRSRAPID|NRS|NRSN16R4|NRSN32R8|NRSN8R2|NRSRAPIDD1|NRSRAPIDD2|NRSRAPIDD6"


def _nirspec(n: str, reftype: str) -> str:
    return f"jwst_nirspec_{reftype}_{n}.fits"


def _nircam(n: str, reftype: str, ext: str = "fits") -> str:
    return f"jwst_nircam_{reftype}_{n}.{ext}"


def _miri(n: str, reftype: str, ext: str = "fits") -> str:
    return f"jwst_miri_{reftype}_{n}.{ext}"


#: instrument -> reftype -> Rule
RULES: dict[str, dict[str, Rule]] = {
    "NIRCAM": {
        "mask": Rule(
            (DETECTOR, FILTER),
            {
                ("NRCA1", "F150W|F200W"): _one(_nircam("0001", "mask")),
                ("NRCA1", "F210M"): _one(_nircam("0002", "mask")),
            },
            text_descr="Bad Pixel Mask",
        ),
        "saturation": Rule(
            (DETECTOR, FILTER),
            {("NRCA1", NRC_FILTERS): _one(_nircam("0001", "saturation"))},
            text_descr="Saturation",
        ),
        "superbias": Rule(
            (DETECTOR, READPATT, SUBARRAY),
            {
                ("NRCA1", "ANY", "FULL"): _one(_nircam("0001", "superbias")),
                ("NRCA1", "ANY", "SUB64P"): _one(_nircam("0002", "superbias")),
            },
            text_descr="Super Bias",
        ),
        "linearity": Rule(
            (DETECTOR, FILTER),
            {("NRCA1", NRC_FILTERS): _one(_nircam("0001", "linearity"))},
            text_descr="Linearity",
        ),
        "dark": Rule(
            (EXP_TYPE, DETECTOR, SUBARRAY, NOUTPUTS),
            {
                (NRC_IMAGING, "NRCA1", "FULL", "4"): _one(_nircam("0001", "dark")),
                (NRC_IMAGING, "NRCA1", "SUB64P", "1"): _one(_nircam("0002", "dark")),
            },
            text_descr="Dark Frame",
        ),
        "gain": Rule(
            (DETECTOR, FILTER),
            {
                ("NRCA1", "F150W|F200W"): _one(_nircam("0001", "gain")),
                ("NRCA1", "F210M"): _one(_nircam("0002", "gain")),
            },
            text_descr="Gain",
        ),
        "readnoise": Rule(
            (DETECTOR, FILTER),
            {("NRCA1", NRC_FILTERS): _one(_nircam("0001", "readnoise"))},
            text_descr="Read Noise",
        ),
        "ipc": Rule((DETECTOR,), {("NRCA1",): _one(_nircam("0001", "ipc"))}, text_descr="IPC kernel"),
        "trapdensity": Rule(
            (DETECTOR,), {("NRCA1",): _one(_nircam("0001", "trapdensity"))}, text_descr="Trap Density"
        ),
        "persat": Rule(
            (DETECTOR,),
            {("NRCA1",): _one(_nircam("0001", "persat"))},
            text_descr="Persistence Saturation",
        ),
        "trappars": Rule(
            (DETECTOR,), {("NRCA1",): _one(_nircam("0001", "trappars"))}, text_descr="Trap Parameters"
        ),
        "flat": Rule(
            (DETECTOR, FILTER, PUPIL),
            {
                ("NRCA1", "F200W", "CLEAR"): {
                    FIRST: _nircam("0001", "flat"),
                    "2024-06-01 00:00:00": _nircam("0002", "flat"),
                },
                ("NRCA1", "F150W", "CLEAR"): _one(_nircam("0003", "flat")),
                ("NRCA1", "F210M", "CLEAR"): _one(_nircam("0004", "flat")),
            },
            text_descr="Flat Field",
        ),
        "photom": Rule(
            (DETECTOR, FILTER),
            {("NRCA1", NRC_FILTERS): _one(_nircam("0001", "photom"))},
            text_descr="Photometric Calibration",
        ),
        "area": Rule(
            (DETECTOR, FILTER, PUPIL),
            {("NRCA1", NRC_FILTERS, "CLEAR"): _one(_nircam("0001", "area"))},
            text_descr="Pixel Area Map",
        ),
        "distortion": Rule(
            (EXP_TYPE, DETECTOR, CHANNEL),
            {(NRC_IMAGING, "NRCA1", "SHORT"): _one(_nircam("0001", "distortion", "asdf"))},
            file_ext=".asdf",
            text_descr="Distortion",
        ),
        "filteroffset": Rule(
            (CHANNEL, MODULE),
            {("SHORT", "A"): _one(_nircam("0001", "filteroffset", "asdf"))},
            file_ext=".asdf",
            text_descr="Filter Offsets",
        ),
        "drizpars": Rule((), {(): _one(_nircam("0001", "drizpars"))}, text_descr="Drizzle Parameters"),
        "apcorr": Rule(
            (EXP_TYPE,),
            {(NRC_IMAGING,): _one(_nircam("0001", "apcorr"))},
            text_descr="Aperture Correction",
        ),
        "abvegaoffset": Rule(
            (),
            {(): _one(_nircam("0001", "abvegaoffset", "asdf"))},
            file_ext=".asdf",
            text_descr="AB to Vega magnitude offset",
        ),
        "tsophot": Rule(
            (EXP_TYPE, TSOVISIT),
            {
                ("NRC_TSIMAGE", TRUE): _one(_nircam("0001", "tsophot", "asdf")),
                ("NRC_TSIMAGE", FALSE): "N/A",
                ("NRC_IMAGE", "ANY"): "N/A",
            },
            file_ext=".asdf",
            text_descr="TSO Aperture Photometry Parameters",
        ),
    },
    "MIRI": {
        "mask": Rule(
            (DETECTOR, FILTER, SUBARRAY, READPATT, NGROUPS),
            {("MIRIMAGE", MIR_FILTERS, "FULL", "FAST|SLOW", "ANY"): _one(_miri("0001", "mask"))},
            text_descr="Bad Pixel Mask",
        ),
        "saturation": Rule(
            (DETECTOR, FILTER),
            {("MIRIMAGE", MIR_FILTERS): _one(_miri("0001", "saturation"))},
            text_descr="Saturation",
        ),
        "linearity": Rule(
            (DETECTOR, FILTER),
            {("MIRIMAGE", MIR_FILTERS): _one(_miri("0001", "linearity"))},
            text_descr="Linearity",
        ),
        "dark": Rule(
            (DETECTOR, FILTER, READPATT, SUBARRAY),
            {("MIRIMAGE", MIR_FILTERS, "FAST", "FULL"): _one(_miri("0001", "dark"))},
            text_descr="Dark Frame",
        ),
        "gain": Rule(
            (DETECTOR, FILTER, BAND, SUBARRAY),
            {("MIRIMAGE", MIR_FILTERS, "N/A", "FULL"): _one(_miri("0001", "gain"))},
            text_descr="Gain",
        ),
        "readnoise": Rule(
            (DETECTOR, FILTER),
            {("MIRIMAGE", MIR_FILTERS): _one(_miri("0001", "readnoise"))},
            text_descr="Read Noise",
        ),
        "ipc": Rule(
            (DETECTOR, SUBARRAY),
            {("MIRIMAGE", "ANY"): _one(_miri("0001", "ipc"))},
            text_descr="IPC kernel",
        ),
        "reset": Rule(
            (DETECTOR, SUBARRAY, READPATT),
            {("MIRIMAGE", "FULL", "FAST"): _one(_miri("0001", "reset"))},
            text_descr="Reset Anomaly",
        ),
        "rscd": Rule((DETECTOR,), {("MIRIMAGE",): _one(_miri("0001", "rscd"))}, text_descr="RSCD"),
        "emicorr": Rule(
            (),
            {(): _one(_miri("0001", "emicorr", "asdf"))},
            file_ext=".asdf",
            text_descr="EMI correction",
        ),
        "flat": Rule(
            (DETECTOR, FILTER, BAND, READPATT, SUBARRAY),
            {
                ("MIRIMAGE", "F770W", "N/A", "FAST|SLOW", "FULL"): _one(_miri("0001", "flat")),
                ("MIRIMAGE", "F560W", "N/A", "FAST|SLOW", "FULL"): _one(_miri("0002", "flat")),
                ("MIRIMAGE", "F1000W|F1500W|F2100W", "N/A", "FAST|SLOW", "FULL"): _one(_miri("0003", "flat")),
            },
            text_descr="Flat Field",
        ),
        "photom": Rule(
            (DETECTOR, FILTER),
            {("MIRIMAGE", MIR_FILTERS): _one(_miri("0001", "photom"))},
            text_descr="Photometric Calibration",
        ),
        "area": Rule(
            (DETECTOR, FILTER),
            {("MIRIMAGE", MIR_FILTERS): _one(_miri("0001", "area"))},
            text_descr="Pixel Area Map",
        ),
        "distortion": Rule(
            (DETECTOR, CHANNEL, BAND),
            {("MIRIMAGE", "N/A", "N/A"): _one(_miri("0001", "distortion", "asdf"))},
            file_ext=".asdf",
            text_descr="Distortion",
        ),
        "filteroffset": Rule(
            (DETECTOR, EXP_TYPE, SUBARRAY),
            {("MIRIMAGE", "MIR_IMAGE", "ANY"): _one(_miri("0001", "filteroffset", "asdf"))},
            file_ext=".asdf",
            text_descr="Filter Offsets",
        ),
        "drizpars": Rule((), {(): _one(_miri("0001", "drizpars"))}, text_descr="Drizzle Parameters"),
        "apcorr": Rule(
            (EXP_TYPE, CHANNEL),
            {("MIR_IMAGE", "N/A"): _one(_miri("0001", "apcorr"))},
            text_descr="Aperture Correction",
        ),
        "abvegaoffset": Rule(
            (),
            {(): _one(_miri("0001", "abvegaoffset", "asdf"))},
            file_ext=".asdf",
            text_descr="AB to Vega magnitude offset",
        ),
        "tsophot": Rule(
            (EXP_TYPE, TSOVISIT),
            {
                ("MIR_IMAGE", TRUE): _one(_miri("0001", "tsophot", "asdf")),
                ("MIR_IMAGE", FALSE): "N/A",
            },
            file_ext=".asdf",
            text_descr="TSO Aperture Photometry Parameters",
        ),
    },
    "NIRSPEC": {
        "mask": Rule(
            (DETECTOR, READPATT),
            {
                ("NRS1", NRS_IRS2): _one(_nirspec("0001", "mask")),
                ("NRS2", NRS_IRS2): _one(_nirspec("0002", "mask")),
                ("NRS1|NRS2", NRS_TRADITIONAL): "N/A",
            },
            text_descr="Bad Pixel Mask",
        ),
        "superbias": Rule(
            (DETECTOR, READPATT, SUBARRAY),
            {
                ("NRS1", NRS_IRS2, "FULL"): _one(_nirspec("0001", "superbias")),
                ("NRS2", NRS_IRS2, "FULL"): _one(_nirspec("0002", "superbias")),
                ("NRS1|NRS2", NRS_TRADITIONAL, "ANY"): "N/A",
            },
            text_descr="Super Bias",
        ),
        "saturation": Rule(
            (DETECTOR,),
            {
                ("NRS1",): _one(_nirspec("0001", "saturation")),
                ("NRS2",): _one(_nirspec("0002", "saturation")),
            },
            text_descr="Saturation",
        ),
        "refpix": Rule(
            (DETECTOR, READPATT),
            {
                ("NRS1", NRS_IRS2): _one(_nirspec("0001", "refpix")),
                ("NRS2", NRS_IRS2): _one(_nirspec("0002", "refpix")),
                ("NRS1|NRS2", NRS_TRADITIONAL): "N/A",
            },
            text_descr="IRS2 Reference Pixel Coefficients",
        ),
        "gain": Rule(
            (DETECTOR,),
            {("NRS1",): _one(_nirspec("0001", "gain")), ("NRS2",): _one(_nirspec("0002", "gain"))},
            text_descr="Gain",
        ),
        "readnoise": Rule(
            (DETECTOR,),
            {("NRS1",): _one(_nirspec("0001", "readnoise")), ("NRS2",): _one(_nirspec("0002", "readnoise"))},
            text_descr="Read Noise",
        ),
    },
}


def checksum_text(text: str) -> str:
    """The CRDS mapping checksum: sha1 of ``text`` without the lines that contain ``sha1sum``."""
    body = "".join(line for line in text.splitlines(True) if "sha1sum" not in line)
    return hashlib.sha1(body.encode("utf-8")).hexdigest()


def _with_checksum(text: str) -> str:
    return text.replace("'sha1sum' : '0',", f"'sha1sum' : '{checksum_text(text)}',")


def update_checksum(path: str | Path) -> str:
    """Rewrite the ``sha1sum`` line of a mapping file in place; return the new checksum."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines(True)
    new = checksum_text("".join(lines))
    out = [f"    'sha1sum' : '{new}',\n" if "'sha1sum'" in line else line for line in lines]
    path.write_text("".join(out), encoding="utf-8")
    return new


def _q(value: str) -> str:
    return repr(value)


def _tuple(items: tuple[str, ...]) -> str:
    if len(items) == 1:
        return f"({_q(items[0])},)"
    return "(" + ", ".join(_q(i) for i in items) + ")"


def _header(fields: dict[str, str]) -> str:
    lines = ["header = {"]
    lines += [f"    {_q(k)} : {v}," for k, v in sorted(fields.items())]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_rmap(instrument: str, reftype: str, rule: Rule, serial: str = "0001") -> str:
    """The text of ``jwst_<instr>_<reftype>_<serial>.rmap`` for ``rule``, checksum included."""
    name = f"jwst_{instrument.lower()}_{reftype}_{serial}.rmap"
    parkey = f"({_tuple(rule.parkey) if rule.parkey else '()'}, {_tuple(DATE)})"
    fields = {
        "classes": "('Match', 'UseAfter')",
        "derived_from": _q("jwst-dask reference set"),
        "file_ext": _q(rule.file_ext),
        "filekind": _q(reftype.upper()),
        "filetype": _q(reftype.upper()),
        "instrument": _q(instrument),
        "mapping": _q("REFERENCE"),
        "name": _q(name),
        "observatory": _q("JWST"),
        "parkey": parkey,
        "sha1sum": "'0'",
        "suffix": _q(reftype),
        "text_descr": _q(rule.text_descr or reftype),
    }
    fields.update(rule.extra_header)
    lines = ["selector = Match({"]
    for key, value in rule.entries.items():
        key_text = _tuple(key) if key else "()"
        if isinstance(value, str):
            lines.append(f"    {key_text} : {_q(value)},")
            continue
        lines.append(f"    {key_text} : UseAfter({{")
        lines += [f"        {_q(date)} : {_q(fname)}," for date, fname in sorted(value.items())]
        lines.append("    }),")
    lines.append("})")
    return _with_checksum(_header(fields) + "\n" + "\n".join(lines) + "\n")


def render_imap(instrument: str, serial: str = "0001") -> str:
    """The text of ``jwst_<instr>_<serial>.imap``: every ruled reftype, plus 'N/A' ones."""
    fields = {
        "derived_from": _q("jwst-dask reference set"),
        "instrument": _q(instrument),
        "mapping": _q("INSTRUMENT"),
        "name": _q(f"jwst_{instrument.lower()}_{serial}.imap"),
        "observatory": _q("JWST"),
        "parkey": "('REFTYPE',)",
        "sha1sum": "'0'",
    }
    selector = {t: f"jwst_{instrument.lower()}_{t}_{serial}.rmap" for t in RULES[instrument]}
    selector.update({t: "N/A" for t in NOT_APPLICABLE[instrument]})
    lines = ["selector = {"] + [f"    {_q(k)} : {_q(v)}," for k, v in sorted(selector.items())] + ["}"]
    return _with_checksum(_header(fields) + "\n" + "\n".join(lines) + "\n")


def render_pmap(serial: str = "0001") -> str:
    """The text of ``jwst_<serial>.pmap`` selecting the instrument maps by META.INSTRUMENT.NAME."""
    fields = {
        "derived_from": _q("jwst-dask reference set"),
        "mapping": _q("PIPELINE"),
        "name": _q(f"jwst_{serial}.pmap"),
        "observatory": _q("JWST"),
        "parkey": "('META.INSTRUMENT.NAME',)",
        "sha1sum": "'0'",
    }
    selector = {i: f"jwst_{i.lower()}_{serial}.imap" for i in sorted(RULES)}
    lines = ["selector = {"] + [f"    {_q(k)} : {_q(v)}," for k, v in selector.items()] + ["}"]
    return _with_checksum(_header(fields) + "\n" + "\n".join(lines) + "\n")


def write_mappings(folder: str | Path) -> list[Path]:
    """Write the pmap, the imaps and every rmap of :data:`RULES` into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    texts = {CONTEXT: render_pmap()}
    for instrument, rules in RULES.items():
        texts[f"jwst_{instrument.lower()}_0001.imap"] = render_imap(instrument)
        for reftype, rule in rules.items():
            texts[f"jwst_{instrument.lower()}_{reftype}_0001.rmap"] = render_rmap(instrument, reftype, rule)
    for name, text in texts.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
