"""Snowballs and showers against stcal 1.20 (best-effort parity: same flags on these cases)."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_dask.dq import FLAGS
from jwst_dask.kernels import large_events as le

stcal_jump = pytest.importorskip("stcal.jump.jump")
from stcal.jump.jump_class import JumpData  # noqa: E402

JUMP, SAT, DNU = FLAGS["JUMP_DET"], FLAGS["SATURATED"], FLAGS["DO_NOT_USE"]


def stcal_data(p: le.LargeEventParams) -> JumpData:
    jd = JumpData(dqflags=FLAGS)
    jd.min_jump_area = p.min_jump_area
    jd.min_sat_area = p.min_sat_area
    jd.expand_factor = p.expand_factor
    jd.sat_required_snowball = p.sat_required_snowball
    jd.min_sat_radius_extend = p.min_sat_radius_extend
    jd.sat_expand = p.sat_expand
    jd.edge_size = p.edge_size
    jd.max_extended_width = p.max_extended_width
    jd.mask_persist_grps_next_int = p.mask_persist_next_int
    jd.persist_grps_flagged = p.persist_groups
    jd.extend_snr_threshold = p.extend_snr_threshold
    jd.extend_min_area = p.extend_min_area
    jd.extend_inner_radius = p.extend_inner_radius
    jd.extend_outer_radius = p.extend_outer_radius
    jd.extend_ellipse_expand_ratio = p.extend_ellipse_expand_ratio
    jd.grps_masked_after_shower = p.groups_masked_after_shower
    jd.max_shower_amplitude = p.max_shower_amplitude
    jd.minimum_sigclip_groups = p.minimum_sigclip_groups
    jd.nframes = p.nframes
    return jd


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def snowball_gdq(nints=2, ngroups=5, n=96):
    gdq = np.zeros((nints, ngroups, n, n), np.uint8)
    # a snowball: jump disk with a saturated core appearing in group 2
    gdq[0, 2][disk((n, n), 40, 50, 7)] |= JUMP
    gdq[0, 2:][:, disk((n, n), 40, 50, 4)] = SAT
    # a jump cluster without a core (not a snowball), and one near the edge (kept)
    gdq[0, 3][disk((n, n), 70, 30, 4)] |= JUMP
    gdq[1, 1][disk((n, n), 5, 60, 4)] |= JUMP
    # an elongated cluster with a core appearing in the next group
    gdq[1, 2][(np.abs(np.mgrid[:n, :n][0] - 50) < 3) & (np.abs(np.mgrid[:n, :n][1] - 45) < 9)] |= JUMP
    gdq[1, 3:][:, disk((n, n), 50, 45, 1)] = SAT
    return gdq


@pytest.mark.parametrize("required", [True, False])
def test_snowballs_match_stcal(required):
    p = le.LargeEventParams(sat_required_snowball=required, persist_groups=3)
    gdq = snowball_gdq()
    ref, n_ref = stcal_jump.flag_large_events(gdq.copy(), JUMP, SAT, stcal_data(p))
    out = le.flag_snowballs(gdq, p)
    assert n_ref >= 2
    np.testing.assert_array_equal(out, ref)
    assert np.count_nonzero(out & JUMP) > np.count_nonzero(gdq & JUMP)  # expansion flagged more


def test_snowball_expansion_by_hand():
    """A round cluster with a saturated core is flagged out to about expand_factor times its radius."""
    n = 80
    gdq = np.zeros((1, 4, n, n), np.uint8)
    gdq[0, 2][disk((n, n), 40, 40, 6)] |= JUMP
    gdq[0, 2:][:, disk((n, n), 40, 40, 2)] = SAT
    out = le.flag_snowballs(gdq, le.LargeEventParams(mask_persist_next_int=False))
    flagged = (out[0, 2] & JUMP) != 0
    assert flagged[40, 40 + 10] and flagged[40 + 10, 40]  # well beyond the 6-pixel cluster
    assert not flagged[40, 40 + 16]
    assert not (out[0, 3] & JUMP).any()  # only the group of the event


def test_showers_match_stcal():
    rng = np.random.default_rng(5)
    nints, ngroups, n = 1, 12, 64
    rn = np.full((n, n), 10.0, np.float32)
    data = np.cumsum(rng.normal(20, 10, (nints, ngroups, n, n)), axis=1).astype(np.float32)
    shower = disk((n, n), 30, 30, 9)
    data[0, 6:, shower] += 15.0  # faint extended emission below the jump threshold
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((n, n), np.uint32)
    p = le.LargeEventParams(groups_masked_after_shower=2, max_shower_amplitude=50.0)
    ref, n_ref = stcal_jump.find_faint_extended(data, gdq, pdq, rn, stcal_data(p))
    out = le.flag_showers(data, gdq, pdq, rn, p)
    assert n_ref >= 1
    np.testing.assert_array_equal(out, ref)
    flagged = (out[0] & JUMP) != 0
    assert flagged[6][shower].sum() > 100  # most of the shower, in its group ...
    assert flagged[6:9].any(axis=(1, 2)).all()  # ... and the 2 groups after it
    assert not flagged[:6].any() and not flagged[9:].any()
    assert not flagged[6][~disk((n, n), 30, 30, 12)].any()  # nothing far from it


def test_find_ellipses_circle():
    mask = disk((50, 50), 20, 30, 8)
    (ell,) = le.find_ellipses(mask, 5)
    (cx, cy), (minor, major), _ = ell
    assert abs(cx - 30) < 1e-9 and abs(cy - 20) < 1e-9
    assert abs(minor - 16) < 1.5 and abs(major - 16) < 1.5
    assert le.find_ellipses(mask, mask.sum() + 1) == []
