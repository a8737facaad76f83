"""The Step base class on toy steps: parameters, skip, references and overrides, hooks, saving."""

from __future__ import annotations

import json

import dask
import dask.array as da
import numpy as np
import pytest
import test_framework_toys as toys
from test_framework_toys import AddStep, ScaleStep, SplitStep, make_ramp

import jwst_dask.refs
from jwst_dask.errors import InputFileError, ParameterError, ReferenceFileError
from jwst_dask.io import open_product, write_product


@pytest.fixture(autouse=True)
def local_scheduler():
    """Compute in this process even when a distributed client exists."""
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture
def fake_crds(monkeypatch, tmp_path):
    """best_references answering for the toy reference type from a file holding 10.0."""
    ref = tmp_path / "jwst_toy_toyref_0001.txt"
    ref.write_text("10.0\n")
    calls = []

    def best_references(meta, reftypes):
        calls.append(list(reftypes))
        return {r: str(ref) if r == "toyref" else "N/A" for r in reftypes}

    monkeypatch.setattr(jwst_dask.refs, "best_references", best_references)
    return calls


def test_call_is_lazy_and_applies_parameters_and_reference(fake_crds):
    ds, sci = make_ramp()
    toys.CALLS.clear()
    out = AddStep.call(ds, value="2.5")
    assert isinstance(out["SCI"].data, da.Array)
    assert toys.CALLS["toy_add"] == 0  # nothing computed yet
    np.testing.assert_allclose(out["SCI"].values, sci + 2.5 + 10.0)
    assert out.attrs["meta"]["cal_step"]["toy_add"] == "COMPLETE"
    assert out.attrs["meta"]["ref_file"]["toyref"]["name"] == "crds://jwst_toy_toyref_0001.txt"
    assert "ref_file" not in ds.attrs["meta"]  # the input's metadata is untouched
    assert fake_crds == [["toyref"]]


def test_override_reference_wins_over_crds(fake_crds, tmp_path):
    mine = tmp_path / "my_toyref.txt"
    mine.write_text("100.0\n")
    ds, sci = make_ramp()
    out = AddStep.call(ds, override_toyref=str(mine), value=0)
    np.testing.assert_allclose(out["SCI"].values, sci + 100.0)
    assert out.attrs["meta"]["ref_file"]["toyref"]["name"] == "my_toyref.txt"
    assert fake_crds == []  # CRDS never asked


def test_override_missing_file_is_a_reference_error(fake_crds):
    ds, _ = make_ramp()
    with pytest.raises(ReferenceFileError, match="override_toyref"):
        AddStep.call(ds, override_toyref="/nonexistent/ref.fits")


def test_not_applicable_reference_is_recorded(monkeypatch):
    monkeypatch.setattr(jwst_dask.refs, "best_references", lambda meta, r: dict.fromkeys(r, "N/A"))
    ds, sci = make_ramp()
    out = AddStep.call(ds, value=1.0)
    np.testing.assert_allclose(out["SCI"].values, sci + 1.0)
    assert out.attrs["meta"]["ref_file"]["toyref"]["name"] == "N/A"


def test_skip_marks_cal_step_and_leaves_data():
    ds, sci = make_ramp()
    out = ScaleStep.call(ds, skip=True)
    assert out.attrs["meta"]["cal_step"]["toy_scale_key"] == "SKIPPED"  # the cal_step_key
    np.testing.assert_array_equal(out["SCI"].values, sci)


def test_unknown_parameter_names_step_parameter_and_value():
    ds, _ = make_ramp()
    with pytest.raises(ParameterError) as exc:
        ScaleStep.call(ds, facter=3)
    assert "toy_scale" in str(exc.value) and "'facter'" in str(exc.value) and "3" in str(exc.value)


def test_attribute_assignment_is_type_checked():
    step = ScaleStep()
    step.factor = "4.5"
    assert step.factor == 4.5
    with pytest.raises(ParameterError, match="factor"):
        step.factor = "four"


def test_universal_and_override_parameters_exist():
    pars = AddStep().get_pars()
    for name in (
        "skip",
        "save_results",
        "output_dir",
        "output_file",
        "suffix",
        "input_dir",
        "search_output_file",
        "pre_hooks",
        "post_hooks",
        "override_toyref",
    ):
        assert name in pars
    assert "override_toyref" not in ScaleStep().get_pars()


def _bump(ds):
    return ds.assign(SCI=ds["SCI"] + 1000)


def test_hooks_callables_step_classes_and_import_paths():
    ds, sci = make_ramp()
    seen = []
    out = ScaleStep.call(
        ds,
        factor=2.0,
        pre_hooks=[lambda d: seen.append(d.attrs["filename"])],
        post_hooks=["test_framework_step._bump", ScaleStep],
    )
    assert seen == ["toy_uncal.fits"]
    # scale by 2, then +1000 (import-path hook), then the ScaleStep hook's default factor 2
    np.testing.assert_allclose(out["SCI"].values, (sci * 2 + 1000) * 2)
    # a pre-hook that returns a product replaces the input
    out = ScaleStep.call(ds, factor=3.0, pre_hooks=[_bump])
    np.testing.assert_allclose(out["SCI"].values, (sci + 1000) * 3)


def test_bad_hook_is_a_parameter_error():
    ds, _ = make_ramp()
    with pytest.raises(ParameterError, match="hook"):
        ScaleStep.call(ds, post_hooks=["no_such_module.nothing"])


def test_standalone_step_saves_as_root_alias(tmp_path):
    ds, sci = make_ramp()
    out = ScaleStep.call(ds, factor=3.0, output_dir=str(tmp_path))  # output_dir implies saving
    path = tmp_path / "toy_toy_scale.fits"
    assert path.is_file()
    np.testing.assert_allclose(open_product(path)["SCI"].values, sci * 3.0)
    np.testing.assert_allclose(out["SCI"].values, sci * 3.0)


def test_output_file_names_the_product(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, _ = make_ramp()
    ScaleStep.call(ds, output_file="final_result.fits")
    assert (tmp_path / "final_result_toy_scale.fits").is_file()


def test_dict_of_products_step_saves_each_with_its_suffix(tmp_path):
    ds, sci = make_ramp()
    out = SplitStep.call(ds, save_results=True, output_dir=str(tmp_path))
    assert set(out) == {"rate", "rateints"}
    ints = sci.mean(axis=1)
    np.testing.assert_allclose(open_product(tmp_path / "toy_rateints.fits")["SCI"].values, ints, rtol=1e-6)
    np.testing.assert_allclose(
        open_product(tmp_path / "toy_rate.fits")["SCI"].values, ints.mean(0), rtol=1e-6
    )
    assert (tmp_path / "toy_toyside.fits").is_file()  # the side product


def test_path_and_association_inputs(tmp_path):
    ds, sci = make_ramp()
    write_product(ds, tmp_path / "jw01_nrca1_uncal.fits")
    out = ScaleStep.call(str(tmp_path / "jw01_nrca1_uncal.fits"), factor=2.0, output_dir=str(tmp_path / "o"))
    np.testing.assert_allclose(out["SCI"].values, sci * 2.0)
    assert (tmp_path / "o" / "jw01_nrca1_toy_scale.fits").is_file()
    asn = {
        "asn_type": "image2",
        "products": [
            {"name": "jw01_product", "members": [{"expname": "jw01_nrca1_uncal.fits", "exptype": "science"}]}
        ],
    }
    (tmp_path / "asn.json").write_text(json.dumps(asn))
    ScaleStep.call(str(tmp_path / "asn.json"), save_results=True, output_dir=str(tmp_path / "a"))
    assert (tmp_path / "a" / "jw01_product_toy_scale.fits").is_file()


def test_missing_input_file_is_an_input_error():
    with pytest.raises(InputFileError, match=r"nope_uncal\.fits"):
        ScaleStep.call("nope_uncal.fits")


def test_raw_exposure_input_becomes_a_ramp():
    ds, sci = make_ramp()
    raw = ds.assign(SCI=ds["SCI"].astype(np.uint16))
    raw.attrs = dict(ds.attrs, model_type="Level1bModel", product="uncal")
    seen = []
    out = ScaleStep.call(raw, factor=1.0, pre_hooks=[seen.append])
    got = seen[0]
    assert got.attrs["model_type"] == "RampModel"
    assert got["GROUPDQ"].dtype == np.uint8 and got["GROUPDQ"].shape == sci.shape
    assert not got["GROUPDQ"].values.any() and not got["PIXELDQ"].values.any()
    assert out["SCI"].dtype == np.float32
    np.testing.assert_array_equal(out["SCI"].values, sci.astype(np.uint16).astype(np.float32))
