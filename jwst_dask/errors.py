"""The exceptions jwst-dask raises for bad input. Each carries one line naming the thing at fault.

The command line turns any :class:`JwstDaskError` into that line on stderr and a non-zero exit
status (``exit_code``), with no traceback.
"""

from __future__ import annotations

__all__ = [
    "JwstDaskError",
    "InputFileError",
    "MissingKeywordError",
    "ShapeMismatchError",
    "ParameterError",
    "ReferenceFileError",
    "AssociationError",
    "NoScienceDataError",
]


class JwstDaskError(Exception):
    """Base class: a problem with the user's input, reported in one line."""

    exit_code = 1


class InputFileError(JwstDaskError, OSError):
    """A file is missing, unreadable, not FITS/zarr, or truncated."""


class MissingKeywordError(JwstDaskError, KeyError):
    """A required header keyword / metadata entry is absent."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain line
        return str(self.args[0]) if self.args else ""


class ShapeMismatchError(JwstDaskError, ValueError):
    """Arrays that must agree in shape (extensions, references) do not."""


class ParameterError(JwstDaskError, ValueError):
    """An unknown step or parameter, or a value of the wrong type."""


class ReferenceFileError(JwstDaskError):
    """A reference file cannot be selected, found or read, or its content is invalid."""


class AssociationError(JwstDaskError):
    """An association file is malformed or names members that do not exist."""


class NoScienceDataError(JwstDaskError):
    """No science data on the detector (strun exit status 64)."""

    exit_code = 64
