"""Output file names by the JWST suffix rules.

A product name is ``<base>_<suffix>.fits``. When a step or pipeline writes a product, a known suffix
at the end of the input's base name is **replaced** (``jw..._nrca1_uncal.fits`` + ``rate`` ->
``jw..._nrca1_rate.fits``); an unknown one is kept and the new suffix **appended**. An explicit
``output_file`` gives the base name, to which the suffix is appended. ``output_dir`` defaults to the
current folder. Re-runs overwrite (no versioning).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "KNOWN_SUFFIXES",
    "STAGE1_STEP_SUFFIXES",
    "output_name",
    "split_suffix",
    "strip_suffix",
    "suffix_of",
]

#: Stage-1 step aliases, which are also the suffixes of the steps' saved outputs.
STAGE1_STEP_SUFFIXES: tuple[str, ...] = (
    "group_scale",
    "dq_init",
    "emicorr",
    "saturation",
    "ipc",
    "superbias",
    "refpix",
    "rscd",
    "firstframe",
    "lastframe",
    "linearity",
    "dark_current",
    "darkcurrent",
    "reset",
    "persistence",
    "charge_migration",
    "jump",
    "clean_flicker_noise",
    "picture_frame",
    "ramp_fit",
    "gain_scale",
)

#: Product suffixes (data products and the stage-1/2/3 step outputs), longest matched first.
KNOWN_SUFFIXES: frozenset[str] = frozenset(
    {
        # data products
        "uncal",
        "ramp",
        "rate",
        "rateints",
        "fitopt",
        "bsub",
        "bsubints",
        "cal",
        "calints",
        "crf",
        "crfints",
        "i2d",
        "s2d",
        "s3d",
        "x1d",
        "x1dints",
        "c1d",
        "cat",
        "segm",
        "phot",
        "whtlt",
        "psfstack",
        "psfalign",
        "psfsub",
        "ami",
        "amiavg",
        "aminorm",
        "dark",
        "trapsfilled",
        "output_pers",
        "esec",
        "flat",
        "wfscmb",
        "psf-amiavg",
        "outlier_i2d",
        "median",
        "blot",
        # step outputs saved with save_results (the step alias is the suffix)
        *STAGE1_STEP_SUFFIXES,
        "assign_wcs",
        "background",
        "imprint",
        "msa_flagging",
        "extract_2d",
        "srctype",
        "wavecorr",
        "flat_field",
        "straylight",
        "fringe",
        "pathloss",
        "barshadow",
        "photom",
        "resample",
        "resample_spec",
        "cube_build",
        "extract_1d",
        "tweakreg",
        "skymatch",
        "outlier_detection",
        "source_catalog",
        "tso_photometry",
        "white_light",
        "pixel_replace",
        "residual_fringe",
        "bkg",
    }
)

_FITS_EXTS = (".fits", ".fits.gz", ".fit", ".fts", ".zarr", ".asdf", ".ecsv", ".json")
_SUFFIX_RE = re.compile(
    "_(" + "|".join(re.escape(s) for s in sorted(KNOWN_SUFFIXES, key=len, reverse=True)) + ")$"
)


def _split_ext(name: str) -> tuple[str, str]:
    lower = name.lower()
    for ext in _FITS_EXTS:
        if lower.endswith(ext):
            return name[: -len(ext)], name[-len(ext) :]
    p = Path(name)
    return (p.stem, p.suffix) if p.suffix else (name, "")


def split_suffix(path: str | os.PathLike) -> tuple[str, str | None]:
    """Split a file name into (base, known suffix or None); the folder and extension are dropped.

    >>> split_suffix("/data/jw01234001001_01101_00001_nrca1_uncal.fits")
    ('jw01234001001_01101_00001_nrca1', 'uncal')
    >>> split_suffix("mystery_file.fits")
    ('mystery_file', None)
    """
    stem, _ = _split_ext(Path(path).name)
    m = _SUFFIX_RE.search(stem)
    if m is None:
        return stem, None
    return stem[: m.start()], m.group(1)


def strip_suffix(path: str | os.PathLike) -> str:
    """The base name of a product file, without folder, extension and known suffix."""
    return split_suffix(path)[0]


def suffix_of(path: str | os.PathLike) -> str | None:
    """The known product suffix of a file name (``"rate"``), or None."""
    return split_suffix(path)[1]


def output_name(
    input_path: str | os.PathLike | None,
    suffix: str | None,
    *,
    output_dir: str | os.PathLike | None = None,
    output_file: str | os.PathLike | None = None,
    ext: str = ".fits",
) -> Path:
    """The output path for a product with ``suffix`` made from ``input_path``.

    - a known suffix on the input is replaced, an unknown one kept and ``suffix`` appended;
    - ``output_file`` (if given) is the base name: its folder and extension are dropped and
      ``suffix`` is appended (a known suffix on it is replaced, as the official pipeline does);
    - ``output_dir`` (default: the current folder) holds the file; ``suffix=None`` adds none.

    >>> str(output_name("in/jw01_nrca1_uncal.fits", "rate", output_dir="out"))
    'out/jw01_nrca1_rate.fits'
    >>> str(output_name("x/myraw.fits", "rate"))
    'myraw_rate.fits'
    >>> str(output_name("jw01_nrca1_uncal.fits", "rate", output_file="run7"))
    'run7_rate.fits'
    """
    if output_file is not None:
        base = strip_suffix(output_file)
    elif input_path is not None:
        base = strip_suffix(input_path)
    else:
        raise ValueError("output_name needs an input path or an output_file")
    name = f"{base}_{suffix}{ext}" if suffix else f"{base}{ext}"
    return Path(output_dir or ".") / name if output_dir else Path(name)
