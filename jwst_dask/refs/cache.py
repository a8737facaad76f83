"""The project's default CRDS cache: built on first use from ``stores/`` and the reference builder.

Layout (a standard CRDS cache in "instrument" sub-directory mode, read by the stock client)::

    <root>/config/jwst/server_config           the minimal offline server info
    <root>/config/jwst/ref_cache_subdir_mode   "instrument"
    <root>/mappings/jwst/*.pmap|imap|rmap      copied from stores/crds/mappings/jwst
    <root>/references/jwst/<instr>/<name>      reference files, generated lazily

:func:`ensure_local_cache` copies the rules (again whenever ``stores/`` changed) and writes the
config. Reference files are generated one at a time, only when a lookup selects them
(:func:`ensure_reference`), by ``jwst_dask.simulate.references.build_reference`` called with the
selection keywords of the rmap Match tuple that names the file and its USEAFTER date
(:func:`ensure_all_references` builds them all at once, e.g. for a read-only shared cache). A file lock
per reference makes concurrent processes and Dask workers safe: one builds, the others wait; the
file appears atomically (written aside, then renamed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from jwst_dask._paths import data_dir
from jwst_dask.errors import ReferenceFileError
from jwst_dask.refs.environment import project_cache_root, reset_crds_state
from jwst_dask.refs.rules import CONTEXT

__all__ = [
    "Builder",
    "ensure_all_references",
    "ensure_local_cache",
    "ensure_reference",
    "reference_selection",
    "stores_mappings",
    "get_builder",
]

#: ``build_reference(reftype, selection, path, *, useafter)``
Builder = Callable[..., None]

_SERVER_CONFIG = (
    "{'observatory': 'jwst', 'latest_context': '%s', 'operational_context': '%s', "
    "'bad_files_list': [], 'force_remote_mode': False, 'last_synced': '2024-01-01 00:00:00'}\n"
)


def stores_mappings() -> Path:
    """The folder of the shipped CRDS mapping files (``stores/crds/mappings/jwst``)."""
    return data_dir("stores") / "crds" / "mappings" / "jwst"


_STAMPS: dict[tuple, str] = {}


def _stamp(folder: Path) -> str:
    """A digest of the mapping files in ``folder`` (recomputed only when their stat changes)."""
    entries = sorted(
        (e.name, e.stat().st_mtime_ns, e.stat().st_size)
        for e in os.scandir(folder)
        if e.name.endswith((".pmap", ".imap", ".rmap"))
    )
    key = (str(folder), tuple(entries))
    if key not in _STAMPS:
        digest = hashlib.sha1()
        for name, _, _ in entries:
            digest.update(name.encode())
            digest.update((folder / name).read_bytes())
        _STAMPS[key] = digest.hexdigest()
    return _STAMPS[key]


def ensure_local_cache(root: str | Path | None = None) -> Path:
    """Create or refresh the project cache at ``root`` (default ``$JWST_DASK_CACHE/crds``).

    Copies the mappings from ``stores/`` when they are new or changed and writes the offline
    ``server_config``; reference files are left to :func:`ensure_reference`. Returns the root.
    """
    root = Path(root) if root is not None else project_cache_root()
    source = stores_mappings()
    stamp = _stamp(source)
    stamp_file = root / "mappings" / "jwst" / ".stores-stamp"
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".cache.lock")):
            if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
                return root
            mappings = root / "mappings" / "jwst"
            mappings.mkdir(parents=True, exist_ok=True)
            for old in mappings.glob("*.?map"):
                old.unlink()
            for path in sorted(source.glob("*.?map")):
                shutil.copyfile(path, mappings / path.name)
            config = root / "config" / "jwst"
            config.mkdir(parents=True, exist_ok=True)
            (config / "server_config").write_text(_SERVER_CONFIG % (CONTEXT, CONTEXT))
            (config / "ref_cache_subdir_mode").write_text("instrument\n")
            (root / "references" / "jwst").mkdir(parents=True, exist_ok=True)
            stamp_file.write_text(stamp + "\n")
            reset_crds_state()
    except OSError as exc:
        raise ReferenceFileError(f"cannot create the CRDS cache at {root}: {exc}") from exc
    return root


def get_builder() -> Builder:
    """The reference-file builder: ``jwst_dask.simulate.references.build_reference``."""
    try:
        from jwst_dask.simulate.references import build_reference
    except ImportError as exc:
        raise ReferenceFileError(
            f"the reference-file builder jwst_dask.simulate.references is not available: {exc}"
        ) from exc
    return build_reference


def reference_selection(context: str, filename: str) -> tuple[str, dict[str, str], str]:
    """``(reftype, selection, useafter)`` for the reference ``filename`` in ``context``.

    ``selection`` maps the rmap's Match parkeys (META.* names, plus META.INSTRUMENT.NAME) to the
    values of the first Match tuple that leads to the file; ``useafter`` is its date
    ``YYYY-MM-DDThh:mm:ss``. Call inside :func:`jwst_dask.refs.environment.crds_session`.
    """
    import crds

    pmap = crds.get_cached_mapping(context)
    for instrument, imap in pmap.selections.items():
        for reftype, rmap in imap.selections.normal_items():
            matches = rmap.file_matches(filename)
            if not matches:
                continue
            _ids, match, dates = matches[0]
            selection = {"META.INSTRUMENT.NAME": instrument.upper()}
            selection.update({k: str(v) for k, v in match})
            date = dict(dates)
            useafter = f"{date.get('META.OBSERVATION.DATE', '2016-01-01')}T"
            useafter += date.get("META.OBSERVATION.TIME", "00:00:00")
            return reftype, selection, useafter
    raise ReferenceFileError(f"reference file {filename} is named by no rule of {context}")


def ensure_reference(root: Path, context: str, filename: str, *, builder: Builder | None = None) -> Path:
    """The path of ``filename`` in the project cache, generating the file first if it is missing.

    Call inside a project-mode :func:`~jwst_dask.refs.environment.crds_session`. Raises
    :class:`ReferenceFileError` naming the file when it cannot be built.
    """
    instrument = filename.split("_")[1]
    path = root / "references" / "jwst" / instrument / filename
    if path.is_file():
        return path
    reftype, selection, useafter = reference_selection(context, filename)
    locks = root / "references" / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{filename}.lock")):
        if path.is_file():
            return path
        build = builder or get_builder()
        tmpdir = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
        try:
            build(reftype, dict(selection), tmpdir / filename, useafter=useafter)
            if not (tmpdir / filename).is_file():
                raise ReferenceFileError(f"builder wrote no file {filename}")
            (tmpdir / filename).replace(path)
        except ReferenceFileError as exc:
            raise ReferenceFileError(
                f"{reftype} reference {filename} is missing from the cache {root} and could not be "
                f"built: {exc}"
            ) from exc
        except Exception as exc:
            raise ReferenceFileError(
                f"{reftype} reference {filename} is missing from the cache {root} and could not be "
                f"built ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def ensure_all_references(
    root: str | Path | None = None, *, context: str = CONTEXT, builder: Builder | None = None
) -> list[Path]:
    """Build every reference file the rules of ``context`` name (e.g. to prepare a read-only shared
    cache for a cluster); return their paths. Files already present are kept."""
    from jwst_dask.refs.environment import CrdsSetup, crds_session

    root = ensure_local_cache(root)
    setup = CrdsSetup(user=False, path=root, server_url=None, context=None)
    with crds_session(setup):
        import crds

        names = sorted(crds.get_cached_mapping(context).reference_names())
        return [ensure_reference(root, context, name, builder=builder) for name in names]
