"""MIRI EMI correction kernel: not implemented.

The algorithm (phase-folding each pixel's readout time at the EMI frequencies, binning, and
subtracting the fitted or reference wave) needs the detector clocking model; calling it raises
a clear error so that turning the step on never silently does nothing.
"""

from __future__ import annotations

from jwst_dask.errors import ParameterError

__all__ = ["emicorr"]


def emicorr(*_args, **_kwargs):
    """Always raises :class:`~jwst_dask.errors.ParameterError` (not implemented)."""
    raise ParameterError("emicorr: the MIRI EMI correction is not implemented; run with skip=True")
