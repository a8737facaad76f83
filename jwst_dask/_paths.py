"""Where the project's data folders (graphs/, stores/) are, in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The ``graphs`` or ``stores`` folder: beside the package in a checkout, inside it when installed."""
    for candidate in (_PKG.parent / name, _PKG / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"jwst-dask data folder {name!r} not found (broken installation?)")
