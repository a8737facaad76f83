"""Stage-3 (source-based) product names by the JWST file-naming rules.

``jw<ppppp>-<AC_ID>_<t<TTT>>_<instrument>_<optical elements>(-<subarray>)``, all lower case:
``_`` separates fields, ``-`` separates values within a field. The optical elements are the
filter and pupil values (sorted, e.g. ``clear-f200w``); a subarray other than FULL is appended to
that field (``clear-f210m-sub64p``).
"""

from __future__ import annotations

__all__ = ["level3_product_name", "optical_elements"]

_EMPTY = {"", "N/A", "NONE", "NULL", "ANY"}


def optical_elements(filter_: str | None, pupil: str | None = None) -> str:
    """The optical-element field: the filter and pupil values, lower case, sorted, ``-``-joined."""
    values = {
        str(v).strip().lower() for v in (filter_, pupil) if v is not None and str(v).upper() not in _EMPTY
    }
    return "-".join(sorted(values))


def level3_product_name(
    program: str | int,
    instrument: str,
    filter_: str | None = None,
    pupil: str | None = None,
    *,
    acid: str = "o001",
    target: str | int = 1,
    subarray: str | None = None,
) -> str:
    """A stage-3 product base name, e.g. ``jw01234-o001_t001_nircam_clear-f200w``."""
    try:
        program_text = f"{int(program):05d}"
    except (TypeError, ValueError):
        program_text = str(program).lower()
    try:
        target_text = f"t{int(target):03d}"
    except (TypeError, ValueError):
        target_text = f"t{str(target).lower()}"
    opt = optical_elements(filter_, pupil)
    if subarray and str(subarray).upper() not in _EMPTY | {"FULL"}:
        opt = f"{opt}-{str(subarray).lower()}" if opt else str(subarray).lower()
    fields = [f"jw{program_text}-{acid.lower()}", target_text, str(instrument).lower()]
    if opt:
        fields.append(opt)
    return "_".join(fields)
