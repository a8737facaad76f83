"""Readout patterns and times of the simulator against the documented values."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.errors import ParameterError
from jwst_dask.simulate.readout import (
    READOUT_PATTERNS,
    frame_time,
    group_table,
    int_times_table,
    make_readout,
)

# (nframes, groupgap) of the NIRCam readout patterns, as tabulated in the JWST documentation
DOCUMENTED = {
    "RAPID": (1, 0), "BRIGHT1": (1, 1), "BRIGHT2": (2, 0), "SHALLOW2": (2, 3), "SHALLOW4": (4, 1),
    "MEDIUM2": (2, 8), "MEDIUM8": (8, 2), "DEEP2": (2, 18), "DEEP8": (8, 12),
}  # fmt: skip


@pytest.mark.parametrize("patt", sorted(DOCUMENTED))
def test_nircam_patterns(patt):
    assert READOUT_PATTERNS[patt][:2] == DOCUMENTED[patt]


def test_frame_times():
    assert frame_time("NIRCAM", 2048, 2048, 4) == pytest.approx(10.73676, abs=1e-5)
    assert frame_time("NIRCAM", 64, 64, 1) == pytest.approx(0.05016, abs=1e-5)
    assert frame_time("MIRI", 1032, 1024, 4, "FAST") == pytest.approx(2.77504, abs=1e-5)


def test_group_and_integration_times():
    r = make_readout("NIRCAM", "MEDIUM8", 5, 3, 2048, 2048, 4)
    tf = 10.73676
    assert r.group_time == pytest.approx(10 * tf, rel=1e-9)
    # frames averaged into group g start at g * (nframes + groupgap)
    np.testing.assert_array_equal(r.frame_index()[1], np.arange(10, 18))
    # EFFINTTM = (ngroups * (nframes + groupgap) - groupgap) * tframe
    assert r.integration_time == pytest.approx((5 * 10 - 2) * tf, rel=1e-9)
    assert r.exposure_time == pytest.approx(3 * (5 * 10 - 2) * tf, rel=1e-9)
    meta = r.as_meta()
    assert meta["nframes"] == 8 and meta["groupgap"] == 2 and meta["frame_divisor"] == 8


def test_tables():
    r = make_readout("NIRCAM", "RAPID", 4, 2, 64, 64, 1)
    g = group_table(r, 60000.0, 64, 64)
    assert list(g["integration_number"]) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert list(g["group_number"]) == [1, 2, 3, 4] * 2
    # consecutive groups of an integration end one group time apart
    dt = np.diff(g["bary_end_time"][:4]) * 86400.0
    np.testing.assert_allclose(dt, r.group_time, rtol=1e-6)
    it = int_times_table(r, 60000.0)
    assert np.all(it["int_start_MJD_UTC"] < it["int_mid_MJD_UTC"])
    assert np.all(it["int_mid_MJD_UTC"] < it["int_end_MJD_UTC"])
    assert it["int_start_MJD_UTC"][1] > it["int_end_MJD_UTC"][0]


def test_bad_readout():
    with pytest.raises(ParameterError, match="DEEP9"):
        make_readout("NIRCAM", "DEEP9", 5, 1, 64, 64, 1)
    with pytest.raises(ParameterError, match="ngroups=11"):
        make_readout("NIRCAM", "RAPID", 11, 1, 64, 64, 1)
    with pytest.raises(ParameterError, match="not a MIRI"):
        make_readout("MIRI", "RAPID", 5, 1, 1032, 1024, 4)
