"""JWST data-quality flags: the full table, and helpers to combine and interpret them.

The table is the one in the JWST pipeline documentation ("Data Quality Flags"): 32 bits of
PIXELDQ/DQ (uint32), of which bits 0-7 also apply to GROUPDQ (uint8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

__all__ = [
    "FLAGS",
    "DESCRIPTIONS",
    "GROUP_FLAGS",
    "bitmask",
    "interpret",
    "combine",
    "parse_bit_spec",
    "dq_def_table",
]

#: name -> value, in bit order.
FLAGS: dict[str, int] = {
    "GOOD": 0,
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "UNRELIABLE_ERROR": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

DESCRIPTIONS: dict[str, str] = {
    "GOOD": "Good pixel",
    "DO_NOT_USE": "Bad pixel. Do not use.",
    "SATURATED": "Pixel saturated during exposure",
    "JUMP_DET": "Jump detected during exposure",
    "DROPOUT": "Data lost in transmission",
    "OUTLIER": "Flagged by outlier detection",
    "PERSISTENCE": "High persistence",
    "AD_FLOOR": "Below A/D floor",
    "CHARGELOSS": "Charge Migration",
    "UNRELIABLE_ERROR": "Uncertainty exceeds quoted error",
    "NON_SCIENCE": "Pixel not on science portion of detector",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "WARM": "Warm pixel",
    "LOW_QE": "Low quantum efficiency",
    "RC": "RC pixel",
    "TELEGRAPH": "Telegraph pixel",
    "NONLINEAR": "Pixel highly nonlinear",
    "BAD_REF_PIXEL": "Reference pixel cannot be used",
    "NO_FLAT_FIELD": "Flat field cannot be measured",
    "NO_GAIN_VALUE": "Gain cannot be measured",
    "NO_LIN_CORR": "Linearity correction not available",
    "NO_SAT_CHECK": "Saturation check not available",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large",
    "UNRELIABLE_SLOPE": "Slope variance large (i.e., noisy pixel)",
    "UNRELIABLE_FLAT": "Flat variance large",
    "OPEN": "Open pixel (counts move to adjacent pixels)",
    "ADJ_OPEN": "Adjacent to open pixel",
    "FLUX_ESTIMATED": "Pixel flux estimated due to missing/bad data",
    "MSA_FAILED_OPEN": "Pixel sees light from failed-open shutter",
    "OTHER_BAD_PIXEL": "A catch-all flag",
    "REFERENCE_PIXEL": "Pixel is a reference pixel",
}

#: The flags that GROUPDQ (uint8) can carry.
GROUP_FLAGS: dict[str, int] = {k: v for k, v in FLAGS.items() if v < 256}

# Other names of a flag: the documentation example's spelling, and the later data models' name
# for bit 8 (jwst 1.13 documents it as UNRELIABLE_ERROR).
_ALIASES = {"DROP_OUT": "DROPOUT", "RESERVED": "UNRELIABLE_ERROR"}


def _lookup(name: str) -> int:
    key = name.strip().upper()
    key = _ALIASES.get(key, key)
    if key not in FLAGS:
        raise ValueError(f"unknown DQ flag name {name!r}; known: {', '.join(FLAGS)}")
    return FLAGS[key]


def bitmask(names: str | Iterable[str]) -> int:
    """The OR of the named flags: ``bitmask("JUMP_DET, SATURATED") == 6``."""
    if isinstance(names, str):
        names = [n for n in re.split(r"[,+|\s]+", names) if n]
    value = 0
    for name in names:
        value |= _lookup(name)
    return value


def interpret(value: int) -> list[str]:
    """The names of the flags set in ``value``, in bit order (``[]`` for 0).

    >>> interpret(6)
    ['SATURATED', 'JUMP_DET']
    """
    value = int(value)
    return [name for name, bit in FLAGS.items() if bit and value & bit]


def combine(*arrays: np.ndarray, dtype=np.uint32) -> np.ndarray:
    """Bitwise OR of DQ arrays that broadcast together, as ``dtype``."""
    out = np.zeros(np.broadcast_shapes(*(np.shape(a) for a in arrays)), dtype=dtype)
    for a in arrays:
        out |= np.asarray(a).astype(dtype, copy=False)
    return out


def parse_bit_spec(spec: str | int | None) -> int | None:
    """Parse a DQ bit-spec parameter (good_bits, dqbits, bad_bits) into a mask of *good* bits.

    As in the pipeline documentation: an integer sum, ``"4,8"``/``"4+8"``, or flag names; a
    leading ``~`` inverts the meaning (the listed flags are bad, all others good). ``0`` means
    every non-zero DQ is bad; ``None`` (or ``"~0"``) means DQ is ignored (returns None).
    """
    if spec is None:
        return None
    if isinstance(spec, (int, np.integer)):
        return int(spec)
    text = str(spec).strip()
    if text.lower() in ("", "none"):
        return None
    invert = text.startswith("~")
    if invert:
        text = text[1:].strip()
    value = 0
    for token in re.split(r"[,+|\s]+", text):
        if not token:
            continue
        value |= int(token) if token.isdigit() else _lookup(token)
    if invert:
        if value == 0:
            return None
        return (~value) & 0xFFFFFFFF
    return value


def dq_def_table() -> np.ndarray:
    """The DQ_DEF table that JWST reference files carry (BIT, VALUE, NAME, DESCRIPTION).

    Bit 8 is left out: the jwst 1.13 documentation names it UNRELIABLE_ERROR, later data models
    RESERVED, and no reference file sets it; leaving it out keeps both readers from warning.
    """
    rows = [
        (bit.bit_length() - 1, bit, name, DESCRIPTIONS[name])
        for name, bit in FLAGS.items()
        if bit and name != "UNRELIABLE_ERROR"
    ]
    return np.array(rows, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])
