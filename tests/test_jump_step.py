"""JumpStep wiring: tiles give the whole-frame result, parameters, metadata, skips."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from test_jump_kernel import make_ramps, run_stcal

import jwst_dask  # noqa: F401  (registers the ds.jwst accessor)
from jwst_dask.dq import FLAGS
from jwst_dask.kernels import jump as jk
from jwst_dask.steps.jump import JumpStep

JUMP = FLAGS["JUMP_DET"]


def ramp_dataset(data, gdq, pdq, tile, nframes=1, group_time=10.0):
    ty, tx = (tile, tile) if np.isscalar(tile) else tile
    chunks = (data.shape[0], data.shape[1], ty, tx)
    ds = xr.Dataset(
        {
            "SCI": (("integration", "group", "y", "x"), da.from_array(data, chunks=chunks)),
            "GROUPDQ": (("integration", "group", "y", "x"), da.from_array(gdq, chunks=chunks)),
            "PIXELDQ": (("y", "x"), da.from_array(pdq, chunks=(ty, tx))),
        }
    )
    ds.attrs["meta"] = {"exposure": {"nframes": nframes, "group_time": group_time, "ngroups": data.shape[1]}}
    ds.attrs["model_type"] = "RampModel"
    ds.attrs["product"] = "ramp"
    return ds


def make_step(gain, rn, **params):
    step = JumpStep(**params)
    refs = {
        "gain": xr.Dataset({"SCI": (("y", "x"), gain)}),
        "readnoise": xr.Dataset({"SCI": (("y", "x"), rn)}),
    }
    step.get_reference_dataset = lambda ds, reftype: refs[reftype]
    return step


def run(step, ds):
    out = step.process(ds)
    with dask.config.set(scheduler="threads", num_workers=2):
        return out, out["GROUPDQ"].values, out["PIXELDQ"].values


@pytest.mark.parametrize("nints", [1, 2])
def test_tiles_equal_whole_frame_and_stcal(nints):
    data, gdq, pdq, gain, rn = make_ramps(30 + nints, nints, 7, 40, 40, cr_fraction=0.3)
    g_ref, p_ref = run_stcal(data, gdq, pdq, gain, rn)
    results = []
    for tile in (8, 16, 40):
        out, g, p = run(make_step(gain, rn), ramp_dataset(data, gdq, pdq, tile))
        results.append(g)
        np.testing.assert_array_equal(g, g_ref)
        np.testing.assert_array_equal(p, p_ref)
        assert out["GROUPDQ"].dtype == np.uint8
        assert out.attrs["meta"]["cal_step"]["jump"] == "COMPLETE"
    # neighbour flags cross tile edges: some jump flags sit on a tile border of the 8-px tiling
    border = np.zeros((40, 40), bool)
    border[7::8, :] = border[8::8, :] = border[:, 7::8] = border[:, 8::8] = True
    assert np.count_nonzero((results[0] & JUMP).any(axis=(0, 1)) & border) > 10


def test_after_jump_and_dnu_groups_through_step():
    data, gdq, pdq, gain, rn = make_ramps(41, 2, 10, 24, 24)
    gdq[:, 0] |= FLAGS["DO_NOT_USE"]  # a frame-wide DO_NOT_USE group: the lazy table path
    g_ref, _ = run_stcal(
        data,
        gdq,
        pdq,
        gain,
        rn,
        after_jump_flag_dn1=50.0,
        after_jump_flag_n1=2,
        after_jump_flag_dn2=1000.0,
        after_jump_flag_n2=5,
    )
    step = make_step(
        gain,
        rn,
        after_jump_flag_dn1=50.0,
        after_jump_flag_time1=25.0,
        after_jump_flag_dn2=1000.0,
        after_jump_flag_time2=50.0,
    )
    _, g, _ = run(step, ramp_dataset(data, gdq, pdq, 8, group_time=10.0))
    np.testing.assert_array_equal(g, g_ref)


@pytest.mark.parametrize("only_use_ints", [True, False])
def test_sigma_clip_through_step(only_use_ints):
    shape = (30, 3, 8, 8) if only_use_ints else (2, 30, 8, 8)
    data, gdq, pdq, gain, rn = make_ramps(43, *shape, cr_fraction=2.0)
    settings = dict(minimum_sigclip_groups=10, only_use_ints=only_use_ints)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, **settings)
    _, g, _ = run(make_step(gain, rn, **settings), ramp_dataset(data, gdq, pdq, 4))
    assert np.count_nonzero(g_ref & JUMP) > 10
    np.testing.assert_array_equal(g, g_ref)


def test_sigma_clip_tiles_finish_from_first_pass_edges():
    """In sigma-clip mode each tile is finished from its own per-pixel pass and the edge triggers
    its neighbours left in the first pass: any tiling gives stcal's whole-frame flags, including
    the neighbour flags that cross tile borders (rows, columns, 1-pixel-thin tiles)."""
    data, gdq, pdq, gain, rn = make_ramps(51, 40, 4, 12, 10, cr_fraction=1.0)
    settings = dict(minimum_sigclip_groups=20, min_jump_to_flag_neighbors=3.0)
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, **settings)
    # neighbour flags: jump flags on pixels whose own per-pixel pass did not flag that group
    own = jk.twopoint_block(
        data,
        gdq,
        gain,
        rn,
        jk.JumpParams(minimum_sigclip_groups=20, min_jump_to_flag_neighbors=3.0),
        jk.MODE_SIGMA_CLIP,
    )
    added = (g_ref & JUMP != 0) & (own & JUMP == 0)
    assert np.count_nonzero(added) > 20
    for tile in ((2, 10), (3, 4), (12, 1), (1, 5)):
        _, g, _ = run(make_step(gain, rn, **settings), ramp_dataset(data, gdq, pdq, tile))
        np.testing.assert_array_equal(g, g_ref)
    # and some of those cross the borders of the 3 x 4 tiling
    border = np.zeros((12, 10), bool)
    border[2::3, :] = border[3::3, :] = border[:, 3::4] = border[:, 4::4] = True
    assert np.count_nonzero(added & border) > 5


def test_skips_and_parameters():
    data, gdq, pdq, gain, rn = make_ramps(45, 1, 2, 8, 8)
    out = make_step(gain, rn).process(ramp_dataset(data, gdq, pdq, 8))
    assert out.attrs["meta"]["cal_step"]["jump"] == "SKIPPED"
    step = JumpStep()
    assert step.rejection_threshold == 4.0
    assert step.max_jump_to_flag_neighbors == 1000.0
    assert step.maximum_cores == "1"
    assert step.expand_large_events is False and step.find_showers is False
    assert JumpStep.reference_file_types == ("gain", "readnoise")
    assert JumpStep.class_alias == "jump"


def test_after_jump_needs_group_time():
    from jwst_dask.errors import ParameterError

    data, gdq, pdq, gain, rn = make_ramps(47, 1, 5, 8, 8)
    ds = ramp_dataset(data, gdq, pdq, 8)
    del ds.attrs["meta"]["exposure"]["group_time"]
    with pytest.raises(ParameterError, match="group_time"):
        make_step(gain, rn, after_jump_flag_time1=10.0).process(ds)


def test_kernel_mode_constants_distinct():
    assert len({jk.MODE_ITERATIVE, jk.MODE_SINGLE_PASS, jk.MODE_SKIP, jk.MODE_SIGMA_CLIP}) == 4


def test_snowballs_through_step():
    data, gdq, pdq, gain, rn = make_ramps(49, 2, 6, 64, 64, cr_fraction=0.02, sat_fraction=0.0)
    yy, xx = np.mgrid[:64, :64]
    event = (yy - 32) ** 2 + (xx - 30) ** 2 <= 36
    core = (yy - 32) ** 2 + (xx - 30) ** 2 <= 4
    data[0, 3:, event] += 3000.0
    gdq[0, 3:, core] |= FLAGS["SATURATED"]
    g_ref, _ = run_stcal(
        data,
        gdq,
        pdq,
        gain,
        rn,
        expand_large_events=True,
        min_jump_area=5.0,
        sat_expand=4,
        max_extended_width=400,
        persist_grps_flagged=400,
    )
    _, g, _ = run(make_step(gain, rn, expand_large_events=True), ramp_dataset(data, gdq, pdq, 16))
    np.testing.assert_array_equal(g, g_ref)
    plain, _ = run_stcal(data, gdq, pdq, gain, rn)
    assert np.count_nonzero(g & JUMP) > np.count_nonzero(plain & JUMP) + 50


def test_numpy_backed_dataset():
    data, gdq, pdq, gain, rn = make_ramps(51, 1, 5, 16, 16)
    ds = ramp_dataset(data, gdq, pdq, 16).compute()  # numpy-backed variables
    g_ref, p_ref = run_stcal(data, gdq, pdq, gain, rn)
    _, g, p = run(make_step(gain, rn), ds)
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(p, p_ref)


def test_showers_through_step():
    rng = np.random.default_rng(53)
    n, ngroups, gtime = 48, 12, 2.775
    data = np.cumsum(rng.normal(20, 10, (1, ngroups, n, n)), axis=1).astype(np.float32)
    yy, xx = np.mgrid[:n, :n]
    data[0, 6:, (yy - 24) ** 2 + (xx - 20) ** 2 <= 64] += 25.0  # faint extended shower
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((n, n), np.uint32)
    gain = np.full((n, n), 1.0, np.float32)
    rn = np.full((n, n), 14.0, np.float32)
    g_ref, _ = run_stcal(
        data,
        gdq,
        pdq,
        gain,
        rn,
        find_showers=True,
        extend_ellipse_expand_ratio=1.1,
        grps_masked_after_shower=int(15 // gtime),
        max_shower_amplitude=4 * gtime,
        max_extended_width=400,
    )
    step = make_step(gain, rn, find_showers=True, max_shower_amplitude=40.0)
    _, g, _ = run(step, ramp_dataset(data, gdq, pdq, 16, group_time=gtime))
    np.testing.assert_array_equal(g, g_ref)
    plain, _ = run_stcal(data, gdq, pdq, gain, rn)
    assert np.count_nonzero(g & JUMP) > np.count_nonzero(plain & JUMP) + 50


@pytest.mark.slow
def test_distributed_workers(cluster_client):
    """The graph pickles and runs on worker processes with the same result."""
    data, gdq, pdq, gain, rn = make_ramps(55, 2, 5, 16, 16)
    out = make_step(gain, rn, after_jump_flag_dn1=50.0, after_jump_flag_time1=20.0).process(
        ramp_dataset(data, gdq, pdq, 8)
    )
    g = cluster_client.compute(out["GROUPDQ"].data).result()
    g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, after_jump_flag_dn1=50.0, after_jump_flag_n1=2)
    np.testing.assert_array_equal(g, g_ref)


def test_one_integration_static_mode_equals_frame_rules():
    """One integration: no frame-wide reduction is built, and the result still equals stcal's
    (including a MIRI-like exposure that stcal skips, and after-jump flagging)."""
    for ngroups, settings in ((4, {}), (7, {"after_jump_flag_dn1": 40.0, "after_jump_flag_time1": 20.0})):
        data, gdq, pdq, gain, rn = make_ramps(57 + ngroups, 1, ngroups, 16, 16)
        gdq[:, 0] |= FLAGS["DO_NOT_USE"]
        gdq[:, -1] |= FLAGS["DO_NOT_USE"]
        gdq |= np.uint8(JUMP) * (np.random.default_rng(ngroups).random(gdq.shape) < 0.03).astype(np.uint8)
        ref_settings = {}
        if settings:
            ref_settings = {"after_jump_flag_dn1": 40.0, "after_jump_flag_n1": 2}
        g_ref, _ = run_stcal(data, gdq, pdq, gain, rn, **ref_settings)
        out = make_step(gain, rn, **settings).process(ramp_dataset(data, gdq, pdq, 8))
        names = " ".join(str(k) for k in dict(out["GROUPDQ"].data.dask))
        assert "all" not in names  # no frame-wide reduction in the graph
        with dask.config.set(scheduler="threads", num_workers=2):
            np.testing.assert_array_equal(out["GROUPDQ"].values, g_ref)


def test_bad_reference_shape():
    from jwst_dask.errors import ShapeMismatchError

    data, gdq, _, gain, rn = make_ramps(59, 1, 5, 8, 8)
    with pytest.raises(ShapeMismatchError, match="GAIN"):
        jk.twopoint_block(data, gdq, gain[:4], rn, jk.JumpParams(), jk.MODE_ITERATIVE)
