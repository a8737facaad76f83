"""Charge-migration kernel: flag groups at and after the first one above a signal threshold.

Charge of a bright pixel migrates into its neighbours well before hard saturation, so from the
first group above ``signal_threshold`` on, the pixel's groups and those of its four nearest
neighbours are CHARGELOSS | DO_NOT_USE (a tile needs a 1-pixel halo).
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS

__all__ = ["flag_charge_migration"]

_FLAG = np.uint8(FLAGS["CHARGELOSS"] | FLAGS["DO_NOT_USE"])


def flag_charge_migration(data: np.ndarray, gdq: np.ndarray, signal_threshold: float) -> np.ndarray:
    """GROUPDQ with CHARGELOSS | DO_NOT_USE from each pixel's first group > threshold onwards,
    on the pixel and its 4 neighbours (up, down, left, right).

    Integrations of 1 or 2 groups are not flagged (``min_groups``). A group whose GROUPDQ is
    exactly DO_NOT_USE does not trigger it.
    """
    out = np.array(gdq, dtype=np.uint8, copy=True)
    if data.shape[1] < 3:
        return out
    above = (data > signal_threshold) & (out != np.uint8(FLAGS["DO_NOT_USE"]))
    after = np.maximum.accumulate(above, axis=1)
    grown = after.copy()
    grown[..., 1:, :] |= after[..., :-1, :]
    grown[..., :-1, :] |= after[..., 1:, :]
    grown[..., :, 1:] |= after[..., :, :-1]
    grown[..., :, :-1] |= after[..., :, 1:]
    out[grown] |= _FLAG
    return out
