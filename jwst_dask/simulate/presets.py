"""The observation presets (nircam-mosaic, nircam-tso, miri-image) and their options.

A preset fixes the instrument configuration agreed with the reference-file rules; options change
the size of the run (exposures, groups, integrations, a smaller square cut-out of the readout for
tests), the readout pattern and the physics switches (noiseless, cosmic rays, ZEROFRAME).

The ``size`` cut-out is the lower-left corner of the preset's readout: it keeps the SUBARRAY name,
NOUTPUTS and frame time (so CRDS selects the preset's references, which are cut to SUBSTRT/SUBSIZE
like any subarray), holds reference pixels on its bottom and left edges, and its pixels are the
same detector pixels (bias, gain, flat, ...) as in the full readout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from jwst_dask.errors import ParameterError

__all__ = ["Preset", "PRESETS", "get_preset", "OPTIONS"]


@dataclass(frozen=True)
class Preset:
    """One observation configuration (defaults of every option)."""

    name: str
    instrument: str
    detector: str
    exp_type: str
    filter: str
    pupil: str
    module: str | None
    channel: str | None
    subarray: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    noutputs: int
    readpatt: str
    ngroups: int
    nints: int
    nexp: int
    tsovisit: bool
    date: str
    target: tuple[float, float, str]
    roll: float
    background: float  # DN/s (flat-fielded)
    n_stars: int  # over the full readout
    n_galaxies: int
    refout: bool = False
    zeroframe: bool = False
    dither_pixels: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    pointing_error_arcsec: float = 0.0  # rms of the true-minus-commanded pointing offsets
    roll_error_deg: float = 0.0
    transit: bool = False
    program: str = "01234"
    observation: str = "001"
    visit: str = "001"
    int_chunk: int = 0
    filters: tuple[str, ...] = ()


PRESETS: dict[str, Preset] = {
    "nircam-mosaic": Preset(
        "nircam-mosaic", "NIRCAM", "NRCA1", "NRC_IMAGE", "F200W", "CLEAR", "A", "SHORT", "FULL",
        1, 1, 2048, 2048, 4, "RAPID", 10, 1, 4, False, "2024-07-15T03:00:00.000",
        (53.1625, -27.7914, "SIM-DEEP-FIELD"), 45.0, 0.35, 260, 140,
        dither_pixels=((0.0, 0.0), (62.3, 41.7), (-47.9, 76.1), (33.4, -58.6), (-71.2, -30.5), (15.8, 90.2)),
        pointing_error_arcsec=0.06, roll_error_deg=0.0008, filters=("F200W", "F150W"),
    ),
    "nircam-tso": Preset(
        "nircam-tso", "NIRCAM", "NRCA1", "NRC_TSIMAGE", "F210M", "CLEAR", "A", "SHORT", "SUB64P",
        1, 1, 64, 64, 1, "RAPID", 6, 200, 1, True, "2024-08-02T11:30:00.000",
        (261.6415, 65.7831, "SIM-TRANSIT-HOST"), 120.0, 0.2, 3, 0,
        transit=True, observation="002", int_chunk=64, filters=("F210M",),
    ),
    "miri-image": Preset(
        "miri-image", "MIRI", "MIRIMAGE", "MIR_IMAGE", "F770W", "N/A", None, None, "FULL",
        1, 1, 1032, 1024, 4, "FAST", 10, 2, 1, False, "2024-09-10T20:15:00.000",
        (150.1163, 2.2011, "SIM-MIRI-FIELD"), 290.0, 6.0, 70, 50,
        refout=True, dither_pixels=((0.0, 0.0), (11.3, 7.9), (-8.6, 12.2), (6.1, -10.4)),
        pointing_error_arcsec=0.05, roll_error_deg=0.0005, observation="003",
        filters=("F770W", "F560W", "F1000W"),
    ),
}  # fmt: skip

#: option -> (type, help) accepted by ``simulate(preset, outdir, **options)``
OPTIONS = {
    "nexp": (int, "number of (dithered) exposures"),
    "ngroups": (int, "groups per integration"),
    "nints": (int, "integrations per exposure"),
    "readpatt": (str, "readout pattern"),
    "size": (
        int,
        "only a size x size corner (SUBSTRT1=SUBSTRT2=1) of the readout, for tests; it keeps "
        "the preset's SUBARRAY name, NOUTPUTS and frame time (a cut-out of that readout)",
    ),
    "noiseless": (bool, "no read or Poisson noise"),
    "cosmic_rays": (bool, "inject cosmic rays (default True)"),
    "zeroframe": (bool, "write the ZEROFRAME extension"),
    "filter": (str, "filter (one the preset supports)"),
    "date": (str, "observation start (ISO, UTC)"),
    "tile": (int, "pixel tile of the generated blocks (default 512)"),
    "write_asn": (bool, "write level-2 and level-3 associations (default True)"),
    "truth": (bool, "write the truth files (default True)"),
    "transit_depth": (float, "TSO transit depth (default 0.01)"),
}


def get_preset(name: str) -> Preset:
    """The preset of a name; ParameterError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(f"unknown simulation preset {name!r}; known: {', '.join(PRESETS)}") from None


def configure(preset: Preset, options: dict) -> tuple[Preset, dict]:
    """Apply the options to a preset; returns (preset with the readout/size fields replaced, remaining
    physics switches). Unknown options or bad values raise ParameterError naming them."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ParameterError(f"unknown simulate option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    changes: dict = {}
    for key in ("nexp", "ngroups", "nints"):
        if options.get(key) is not None:
            value = int(options[key])
            if value < 1:
                raise ParameterError(f"simulate option {key}={value} must be >= 1")
            changes[key] = value
    if options.get("readpatt"):
        changes["readpatt"] = str(options["readpatt"]).upper()
    if options.get("filter"):
        f = str(options["filter"]).upper()
        if f not in preset.filters:
            raise ParameterError(
                f"filter {f!r} not supported by preset {preset.name}; use {', '.join(preset.filters)}"
            )
        changes["filter"] = f
    if options.get("date"):
        from astropy.time import Time

        try:
            changes["date"] = Time(str(options["date"]), format="isot", scale="utc").isot
        except ValueError:
            raise ParameterError(
                f"simulate option date={options['date']!r} is not an ISO date (YYYY-MM-DD[Thh:mm:ss])"
            ) from None
    if options.get("zeroframe") is not None:
        changes["zeroframe"] = bool(options["zeroframe"])
    size = options.get("size")
    if size is not None:
        size = int(size)
        if not 16 <= size <= min(preset.xsize, preset.ysize):
            raise ParameterError(
                f"size={size} out of range 16..{min(preset.xsize, preset.ysize)} for preset {preset.name}"
            )
        if preset.refout and size % 4:
            raise ParameterError(
                f"size={size} must be a multiple of 4 for {preset.name} (REFOUT has xsize/4 columns)"
            )
        changes.update(xsize=size, ysize=size)
    switches = {
        "noiseless": bool(options.get("noiseless", False)),
        "cosmic_rays": bool(options.get("cosmic_rays", True)),
        "tile": int(options.get("tile") or 512),
        "write_asn": bool(options.get("write_asn", True)),
        "truth": bool(options.get("truth", True)),
        "transit_depth": float(options.get("transit_depth") or 0.01),
    }
    return replace(preset, **changes), switches
