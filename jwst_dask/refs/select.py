"""Best-reference selection with the stock ``crds`` client.

:func:`best_references` turns a product's metadata tree into the ``META.*`` matching parameters
CRDS uses (``meta.instrument.detector`` -> ``META.INSTRUMENT.DETECTOR``), asks ``crds`` for the
best reference of each type and returns absolute paths, ``"N/A"`` where the rules say the type does
not apply. In the project cache, selected files that do not exist yet are generated on the spot
(:mod:`jwst_dask.refs.cache`); with a user CRDS configuration, ``crds.getreferences`` resolves
(and, if the user configured a server, downloads) them as usual.

Every failure is one :class:`~jwst_dask.errors.ReferenceFileError` line naming the reference type
and the selection keywords: no matching rule, a file missing from the cache, a malformed rule file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from jwst_dask.errors import MissingKeywordError, ReferenceFileError
from jwst_dask.meta import Meta, flatten
from jwst_dask.refs.environment import crds_session

__all__ = ["best_references", "crds_parameters"]

_NA = "NOT FOUND n/a"


def crds_parameters(meta: Any) -> dict[str, Any]:
    """The CRDS matching parameters (``META.*`` -> value) for a metadata tree.

    ``meta`` may be an ``xarray.Dataset`` (its ``attrs["meta"]``), a :class:`~jwst_dask.meta.Meta`,
    a nested ``meta`` dict, or a flat dict already keyed by ``META.*`` names or FITS keywords
    (passed through). Booleans, numbers and strings are kept; other values are dropped.
    """
    if isinstance(meta, xr.Dataset):
        meta = meta.attrs.get("meta", {})
    if isinstance(meta, Meta):
        meta = meta.to_dict()
    if not isinstance(meta, Mapping):
        raise TypeError(f"metadata must be a mapping or a Dataset, not {type(meta).__name__}")
    if any(str(k).startswith("META.") or str(k).isupper() for k in meta):
        params = dict(meta)
    else:
        params = {"META." + path.upper(): value for path, value in flatten(meta).items()}
    params = {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    if not any(k in params for k in ("META.INSTRUMENT.NAME", "INSTRUME")):
        raise MissingKeywordError("metadata has no instrument name (meta.instrument.name / INSTRUME)")
    if "META.OBSERVATION.DATE" in params:
        params.setdefault("META.OBSERVATION.TIME", "00:00:00")
    return params


#: META.* parameter -> the FITS keyword shown in messages
_KEYWORDS = {
    "META.INSTRUMENT.NAME": "INSTRUME",
    "META.INSTRUMENT.DETECTOR": "DETECTOR",
    "META.INSTRUMENT.FILTER": "FILTER",
    "META.INSTRUMENT.PUPIL": "PUPIL",
    "META.INSTRUMENT.CHANNEL": "CHANNEL",
    "META.INSTRUMENT.MODULE": "MODULE",
    "META.INSTRUMENT.BAND": "BAND",
    "META.EXPOSURE.TYPE": "EXP_TYPE",
    "META.EXPOSURE.READPATT": "READPATT",
    "META.EXPOSURE.NOUTPUTS": "NOUTPUTS",
    "META.EXPOSURE.NGROUPS": "NGROUPS",
    "META.SUBARRAY.NAME": "SUBARRAY",
    "META.VISIT.TSOVISIT": "TSOVISIT",
    "META.OBSERVATION.DATE": "DATE-OBS",
}
_DEFAULT_KEYS = (
    "META.INSTRUMENT.NAME",
    "META.INSTRUMENT.DETECTOR",
    "META.EXPOSURE.TYPE",
    "META.INSTRUMENT.FILTER",
    "META.INSTRUMENT.PUPIL",
    "META.SUBARRAY.NAME",
    "META.EXPOSURE.READPATT",
    "META.OBSERVATION.DATE",
)


def _selection_text(params: Mapping[str, Any], keys: Iterable[str] | None = None) -> str:
    """``INSTRUME=NIRCAM DETECTOR=NRCA1 ...`` for the given parameters (default: the usual ones)."""
    keys = [k for k in (keys or _DEFAULT_KEYS) if k in params or keys is not None]
    shown = []
    for key in keys:
        short = _KEYWORDS.get(key, key.removeprefix("META."))
        shown.append(f"{short}={params.get(key, 'UNDEFINED')}")
    return " ".join(shown)


def _rule_keys(context: str, params: Mapping[str, Any], reftype: str) -> list[str] | None:
    """The parkeys of the rmap for ``reftype`` (None when unknown)."""
    import crds

    try:
        pmap = crds.get_cached_mapping(context)
        instrument = str(params.get("META.INSTRUMENT.NAME", params.get("INSTRUME", ""))).lower()
        rmap = pmap.get_imap(instrument).get_rmap(reftype)
        keys = ["META.INSTRUMENT.NAME"]
        for group in rmap.parkey:
            keys.extend(group)
        return [k for k in keys if k != "META.OBSERVATION.TIME"]
    except Exception:
        return None


def _error(reftype: str, context: str, params: Mapping[str, Any], detail: str) -> ReferenceFileError:
    keys = _rule_keys(context, params, reftype)
    return ReferenceFileError(
        f"no {reftype} reference for {_selection_text(params, keys)} in {context}: {detail}"
    )


def _short(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):  # crds's fatal_error(): it logged the reason and exited
        import os

        where = os.environ.get("CRDS_PATH", "(crds default)")
        return f"CRDS found no usable cache at {where} (config/jwst/server_config) and no server"
    text = " ".join(str(exc).split())
    return text if len(text) < 300 else text[:297] + "..."


def _recommend(params: dict, reftypes: list[str], context: str | None) -> tuple[str, dict[str, str]]:
    """``(final context, {reftype: basename | 'N/A'})``, raising one clear error per failure."""
    import crds
    from crds.core import heavy_client

    try:
        final = heavy_client.get_processing_mode("jwst", context)[1]
    except (Exception, SystemExit) as exc:  # crds calls sys.exit when it finds no usable cache
        raise ReferenceFileError(
            f"CRDS rules not usable (context {context or 'default'}): {_short(exc)}"
        ) from exc
    try:
        crds.get_cached_mapping(final)
    except (Exception, SystemExit) as exc:
        raise ReferenceFileError(f"CRDS rules {final} cannot be loaded: {_short(exc)}") from exc
    names: dict[str, str] = {}
    for reftype in reftypes:
        try:
            found = crds.getrecommendations(
                params, reftypes=[reftype], observatory="jwst", context=final, fast=True
            )
        except (Exception, SystemExit) as exc:  # CrdsLookupError, bad rmaps, checksums; crds may sys.exit
            raise _error(reftype, final, params, _short(exc)) from exc
        name = found.get(reftype, "NOT FOUND no result")
        if name.startswith(_NA):
            names[reftype] = "N/A"
        elif name.startswith("NOT FOUND"):
            raise _error(reftype, final, params, name.removeprefix("NOT FOUND ").strip())
        else:
            names[reftype] = name
    return final, names


def best_references(meta: Any, reftypes: Iterable[str], *, context: str | None = None) -> dict[str, str]:
    """Absolute path (or ``"N/A"``) of the best reference of each type for a product.

    Parameters
    ----------
    meta
        The product's metadata: an ``xarray.Dataset``, a :class:`~jwst_dask.meta.Meta`, a nested
        ``meta`` dict, or a flat dict of ``META.*`` parameters / FITS keywords.
    reftypes
        Reference types, e.g. ``("mask", "dark", "flat")``.
    context
        A pinned CRDS context (``jwst_0001.pmap``); default ``CRDS_CONTEXT`` or the cache's latest.

    Uses the user's CRDS configuration when ``CRDS_PATH`` / ``CRDS_SERVER_URL`` are set, otherwise
    the project's offline cache (built on first use, reference files generated when selected).
    """
    params = crds_parameters(meta)
    reftypes = [str(t).lower() for t in reftypes]
    if not reftypes:
        return {}
    with crds_session() as setup:
        from jwst_dask.refs.cache import ensure_local_cache, ensure_reference

        if not setup.user:
            ensure_local_cache(setup.path)
        final, names = _recommend(params, reftypes, context or setup.context)
        found = [t for t, n in names.items() if n != "N/A"]
        result = {t: "N/A" for t, n in names.items() if n == "N/A"}
        if not setup.user:
            for reftype in found:
                result[reftype] = str(ensure_reference(setup.path, final, names[reftype]))
        elif found:
            result.update(_user_references(params, found, final, names))
    return {t: result[t] for t in reftypes}


def _user_references(params: dict, reftypes: list[str], context: str, names: dict) -> dict[str, str]:
    """Paths from ``crds.getreferences`` in the user's CRDS cache (downloads if a server is set)."""
    import os

    import crds

    out = {}
    for reftype in reftypes:
        try:
            path = crds.getreferences(params, reftypes=[reftype], observatory="jwst", context=context)[
                reftype
            ]
        except (Exception, SystemExit) as exc:
            sel = _selection_text(params, _rule_keys(context, params, reftype))
            raise ReferenceFileError(
                f"{reftype} reference {names[reftype]} for {sel} is missing from "
                f"the CRDS cache {os.environ.get('CRDS_PATH', '(crds default)')}: {_short(exc)}"
            ) from exc
        out[reftype] = str(Path(path).resolve())
    return out
