"""The metadata tree wrapper and the DQ flag table."""

import numpy as np
import pytest
import xarray as xr

import jwst_dask  # noqa: F401  (registers the accessor)
from jwst_dask import dq
from jwst_dask.meta import Meta, flatten, get_path, unflatten, updated


def test_meta_attribute_access_and_missing_paths():
    m = Meta({"instrument": {"name": "NIRCAM", "detector": "NRCA1"}, "exposure": {"ngroups": 10}})
    assert m.instrument.detector == "NRCA1"
    assert m.exposure.ngroups == 10
    assert not m.subarray  # missing node is empty, not an error
    assert m.subarray.name or "FULL" == "FULL"
    assert m.get_path("exposure.ngroups") == 10
    assert m.get_path("exposure.nints", 1) == 1


def test_meta_assignment_writes_through():
    tree = {}
    m = Meta(tree)
    m.exposure = {"nints": 2}
    m.exposure.ngroups = 5
    assert tree == {"exposure": {"nints": 2, "ngroups": 5}}


def test_updated_deep_copies():
    tree = {"cal_step": {"dq_init": "COMPLETE"}}
    new = updated(tree, {"cal_step.jump": "COMPLETE"})
    assert tree == {"cal_step": {"dq_init": "COMPLETE"}}
    assert new["cal_step"] == {"dq_init": "COMPLETE", "jump": "COMPLETE"}
    assert new["cal_step"] is not tree["cal_step"]


def test_flatten_unflatten_roundtrip():
    tree = {"a": {"b": 1, "c": {"d": "x"}}, "e": 2.5}
    flat = flatten(tree)
    assert flat == {"a.b": 1, "a.c.d": "x", "e": 2.5}
    assert unflatten(flat) == tree
    assert get_path(tree, "a.c.d") == "x"
    assert get_path(tree, "a.z.d", "dflt") == "dflt"


def test_accessor_update_meta_does_not_touch_source():
    ds = xr.Dataset({"SCI": (("y", "x"), np.zeros((2, 2), np.float32))}, attrs={"meta": {"a": {"b": 1}}})
    out = ds.jwst.set_cal_step("jump")
    assert out.jwst.meta.cal_step.jump == "COMPLETE"
    assert "cal_step" not in ds.attrs["meta"]
    out2 = ds.jwst.update_meta(product="rate")
    assert out2.jwst.product == "rate" and ds.jwst.product is None


def test_dq_table_matches_documented_bits():
    # the 32 documented flags are exactly the 32 bits, each once
    values = [v for k, v in dq.FLAGS.items() if k != "GOOD"]
    assert sorted(values) == [1 << i for i in range(32)]
    assert dq.FLAGS["JUMP_DET"] == 4 and dq.FLAGS["REFERENCE_PIXEL"] == 2**31
    assert set(dq.GROUP_FLAGS) == {
        "GOOD",
        "DO_NOT_USE",
        "SATURATED",
        "JUMP_DET",
        "DROPOUT",
        "OUTLIER",
        "PERSISTENCE",
        "AD_FLOOR",
        "CHARGELOSS",
    }


def test_dq_bitmask_and_interpret_are_inverse():
    assert dq.bitmask("JUMP_DET, SATURATED") == 6
    assert dq.bitmask(["DO_NOT_USE", "NO_GAIN_VALUE"]) == 1 + 524288
    assert dq.bitmask("DROP_OUT") == 8  # the alias the documentation example uses
    for value in (0, 1, 6, 2**31 + 1024, 0xFFFFFFFF):
        assert dq.bitmask(dq.interpret(value)) == value
    with pytest.raises(ValueError, match="NOT_A_FLAG"):
        dq.bitmask("NOT_A_FLAG")


def test_dq_combine_ors_with_broadcast():
    a = np.array([[1, 0], [4, 0]], np.uint32)
    b = np.array([2, 8], np.uint8)
    out = dq.combine(a, b)
    assert out.dtype == np.uint32
    assert out.tolist() == [[3, 8], [6, 8]]


@pytest.mark.parametrize(
    ("spec", "good"),
    [
        ("~DO_NOT_USE", 0xFFFFFFFF & ~1),
        ("~DO_NOT_USE+NON_SCIENCE", 0xFFFFFFFF & ~(1 | 512)),
        ("4,8", 12),
        ("JUMP_DET, DROPOUT", 12),
        (0, 0),
        ("0", 0),
        (None, None),
        ("~0", None),
    ],
)
def test_parse_bit_spec(spec, good):
    assert dq.parse_bit_spec(spec) == good


def test_dq_def_table_lists_every_flag_but_bit_8():
    table = dq.dq_def_table()
    assert len(table) == 31
    assert table["VALUE"][2] == 4 and table["NAME"][2] == b"JUMP_DET"
    assert all(int(v) == 1 << int(b) for b, v in zip(table["BIT"], table["VALUE"]))
    assert 8 not in table["BIT"] and 31 in table["BIT"]
    assert dq.bitmask("RESERVED") == dq.FLAGS["UNRELIABLE_ERROR"]


def test_dq_def_names_are_known_to_the_data_models():
    dqflags = pytest.importorskip("stdatamodels.jwst.datamodels.dqflags")
    for row in dq.dq_def_table():
        name = row["NAME"].decode()
        assert dqflags.pixel[name] == int(row["VALUE"])
