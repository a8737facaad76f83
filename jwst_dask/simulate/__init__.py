"""Simulated JWST observations with known truth, and the synthetic reference files that calibrate them.

- :func:`simulate` (``jwst-dask simulate``): raw ``_uncal`` exposures of a preset (nircam-mosaic,
  nircam-tso, miri-image) generated tile by tile as Dask arrays, with truth files and associations;
  ``nirspec-irs2``: a NIRSpec IRS2 full frame with a reference-pixel drift (:mod:`.irs2`, eager).
- :func:`jwst_dask.simulate.references.build_reference`: one reference file in the JWST format,
  made from the same detector model, so that calibration inverts the simulation.

Modules: :mod:`.readout` (patterns and times), :mod:`.detector` (per-pixel physics),
:mod:`.scene` (sources), :mod:`.wcs` (aperture, distortion, pointing), :mod:`.exposure` (tile
renderer), :mod:`.metadata` (Level1b meta tree), :mod:`.presets`, :mod:`.observation`,
:mod:`.truth`, :mod:`.references` (+ :mod:`.refs_detector`, :mod:`.refs_calib`, and :mod:`.irs2`
for the NIRSpec IRS2 references).
"""

from __future__ import annotations

from jwst_dask.simulate.observation import simulate
from jwst_dask.simulate.presets import OPTIONS, PRESETS

__all__ = ["simulate", "PRESETS", "OPTIONS"]
