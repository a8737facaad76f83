"""The Pipeline base on a toy pipeline: variants, precedence, sub-step access, products, one compute,
prefetch; and the real graphs/*.yaml definitions."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import test_framework_toys as toys
import xarray as xr
from test_framework_toys import AddStep, ScaleStep, ToyPipeline, make_ramp

import jwst_dask.cluster
import jwst_dask.refs
from jwst_dask.errors import ParameterError, ReferenceFileError
from jwst_dask.io import open_product
from jwst_dask.pipelines import Pipeline, graphs
from jwst_dask.steps import Step
from jwst_dask.steps.params import write_parameter_file


@pytest.fixture(autouse=True)
def no_crds(monkeypatch):
    """The toy reference type is not applicable (CRDS answers N/A); compute in this process (the
    kernels count their calls here) even when a distributed client exists."""
    monkeypatch.setattr(jwst_dask.refs, "best_references", lambda meta, r: dict.fromkeys(r, "N/A"))
    with dask.config.set(scheduler="threads"):
        yield


def _expected_nir(sci, add=1.0, scale=3.0, final=0.5):
    ints = ((sci + add) * scale).mean(axis=1) * final
    return ints.mean(axis=0) * 1.0, ints


def test_near_infrared_variant_chains_steps_lazily():
    ds, sci = make_ramp()
    toys.CALLS.clear()
    out = ToyPipeline.call(ds)
    assert set(out) == {"rate", "rateints"}
    assert toys.CALLS["toy_add"] == 0
    # toy_final ran on each product: x 0.5 after the split
    _, ints = _expected_nir(sci)
    np.testing.assert_allclose(out["rateints"]["SCI"].values, ints, rtol=1e-6)
    np.testing.assert_allclose(out["rate"]["SCI"].values, ints.mean(0), rtol=1e-6)
    cal = out["rate"].attrs["meta"]["cal_step"]
    assert cal == {"toy_add": "COMPLETE", "toy_scale_key": "COMPLETE", "toy_split": "COMPLETE"}


def test_miri_variant_uses_its_own_order():
    ds, sci = make_ramp(instrument="MIRI")
    out = ToyPipeline.call(ds)
    np.testing.assert_allclose(out["rate"]["SCI"].values, (sci + 1.0).mean(axis=(0, 1)), rtol=1e-6)
    assert "toy_scale_key" not in out["rate"].attrs["meta"]["cal_step"]


def test_parameter_precedence_all_four_levels(tmp_path):
    assert ScaleStep().factor == 2.0  # step spec default
    assert ToyPipeline().toy_scale.factor == 3.0  # pipeline definition step_parameters
    pars = {"class": None, "name": "ToyPipeline", "parameters": {}, "steps": {"toy_scale": {"factor": 7.0}}}
    cfg = write_parameter_file(tmp_path / "p.asdf", pars)
    assert ToyPipeline(config_file=cfg).toy_scale.factor == 7.0  # user parameter file
    pipe = ToyPipeline(config_file=cfg, steps={"toy_scale": {"factor": "9"}})
    assert pipe.toy_scale.factor == 9.0  # command line / call arguments
    assert pipe.toy_scale.counts is None  # untouched parameters keep the spec default
    ds, sci = make_ramp()
    out = ToyPipeline.call(ds, config_file=cfg, steps={"toy_scale": {"factor": 9.0}})
    np.testing.assert_allclose(out["rateints"]["SCI"].values, _expected_nir(sci, scale=9.0)[1], rtol=1e-6)


def test_pipeline_level_parameters_from_definition_and_overrides():
    pipe = ToyPipeline()
    assert pipe.save_scaled is False and pipe.note == "n/a"
    assert ToyPipeline(save_scaled="true").save_scaled is True
    with pytest.raises(ParameterError, match="save_scaled"):
        ToyPipeline(save_scaled="perhaps")
    with pytest.raises(ParameterError, match="no_such_param"):
        ToyPipeline(no_such_param=1)


def test_unknown_step_is_reported():
    with pytest.raises(ParameterError, match="'toy_jump'"):
        ToyPipeline(steps={"toy_jump": {"skip": True}})


def test_sub_step_attribute_access_changes_the_run():
    ds, sci = make_ramp()
    pipe = ToyPipeline()
    pipe.toy_add.value = 5
    pipe.toy_scale.skip = True
    out = pipe.run(ds)
    ints = (sci + 5.0).mean(axis=1) * 0.5
    np.testing.assert_allclose(out["rateints"]["SCI"].values, ints, rtol=1e-6)
    pipe.toy_add.skip = True
    out = pipe.run(ds)
    np.testing.assert_allclose(out["rateints"]["SCI"].values, sci.mean(axis=1) * 0.5, rtol=1e-6)
    assert out["rate"].attrs["meta"]["cal_step"]["toy_add"] == "SKIPPED"
    with pytest.raises(ParameterError, match="value"):
        pipe.toy_add.value = "lots"


def test_all_products_are_written_in_one_compute(tmp_path, monkeypatch):
    computes = []
    real = jwst_dask.cluster.compute
    monkeypatch.setattr(jwst_dask.cluster, "compute", lambda *a, **k: computes.append(1) or real(*a, **k))
    ds, sci = make_ramp()
    toys.CALLS.clear()
    pipe = ToyPipeline(
        save_results=True,
        save_scaled=True,
        output_dir=str(tmp_path),
        steps={"toy_add": {"save_results": True}},
    )
    products = pipe.run_all(ds)
    assert len(computes) == 1
    # 16x16 pixels in 8x8 tiles: each toy kernel ran once per tile, although five files use it
    assert toys.CALLS["toy_add"] == 4
    assert toys.CALLS["toy_scale"] == 4 + 4 + 4  # toy_scale, then toy_final on rate and rateints
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "toy_ramp.fits",
        "toy_rate.fits",
        "toy_rateints.fits",
        "toy_toy_add.fits",
        "toy_toyside.fits",
    ]
    assert set(products) >= {"rate", "rateints", "ramp", "toyside", "toy_add"}
    _, ints = _expected_nir(sci)
    np.testing.assert_allclose(open_product(tmp_path / "toy_rateints.fits")["SCI"].values, ints, rtol=1e-6)
    np.testing.assert_allclose(
        open_product(tmp_path / "toy_ramp.fits")["SCI"].values, (sci + 1) * 3, rtol=1e-6
    )
    np.testing.assert_allclose(open_product(tmp_path / "toy_toy_add.fits")["SCI"].values, sci + 1, rtol=1e-6)


def test_intermediate_product_only_when_its_parameter_is_set(tmp_path):
    ds, _ = make_ramp()
    # a skipped step saves nothing even when asked to
    ToyPipeline.call(ds, output_dir=str(tmp_path), steps={"toy_scale": {"skip": True, "save_results": True}})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "toy_rate.fits",
        "toy_rateints.fits",
        "toy_toyside.fits",
    ]


def test_pipeline_output_file_names_the_products(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, _ = make_ramp()
    ToyPipeline.call(ds, output_file="detector_1_final_result")
    assert (tmp_path / "detector_1_final_result_rate.fits").is_file()
    assert (tmp_path / "detector_1_final_result_rateints.fits").is_file()


class TwoRefStep(Step):
    class_alias = "toy_tworef"
    reference_file_types = ("toyref2", "toyref3")

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        for reftype in self.reference_file_types:
            self.get_reference_file(ds, reftype)
        return ds


class RefPipeline(Pipeline):
    definition = {"alias": "toy_refs", "order": ["toy_add", "toy_tworef"]}
    step_defs = {"toy_add": AddStep, "toy_tworef": TwoRefStep}


def test_prefetch_reports_every_missing_reference_before_building(monkeypatch, tmp_path):
    calls = []

    def best_references(meta, reftypes):
        calls.append(list(reftypes))
        bad = [r for r in reftypes if r in ("toyref", "toyref3")]
        if bad:
            raise ReferenceFileError(f"no match for {bad[0]}")
        return {r: "N/A" for r in reftypes}

    monkeypatch.setattr(jwst_dask.refs, "best_references", best_references)
    ds, _ = make_ramp()
    toys.CALLS.clear()
    with pytest.raises(ReferenceFileError) as exc:
        RefPipeline.call(ds)
    msg = str(exc.value)
    assert "toyref3" in msg and "toyref " in msg and "2 reference file(s) missing" in msg
    # a skipped step's references are not needed
    calls.clear()
    with pytest.raises(ReferenceFileError, match="1 reference file"):
        RefPipeline.call(ds, steps={"toy_tworef": {"skip": True}})
    # an override stands in for CRDS; a missing override file is reported too
    ref = tmp_path / "r.txt"
    ref.write_text("0\n")
    with pytest.raises(ReferenceFileError) as exc:
        RefPipeline.call(
            ds,
            steps={"toy_add": {"override_toyref": str(ref)}, "toy_tworef": {"override_toyref2": "/no/file"}},
        )
    assert "override_toyref2" in str(exc.value) and "toyref3" in str(exc.value)


def test_prefetch_selects_once_and_steps_reuse_it(monkeypatch):
    calls = []

    def best_references(meta, reftypes):
        calls.append(list(reftypes))
        return {r: "N/A" for r in reftypes}

    monkeypatch.setattr(jwst_dask.refs, "best_references", best_references)
    ds, _ = make_ramp()
    out = RefPipeline.call(ds)
    assert calls == [["toyref", "toyref2", "toyref3"]]
    assert out.attrs["meta"]["ref_file"]["toyref3"]["name"] == "N/A"


# --------------------------------------------------------------------- the real definitions
def test_real_definitions_load_with_inheritance():
    det1 = graphs.load_definition("calwebb_detector1")
    tso1 = graphs.load_definition("calwebb_tso1")
    assert tso1["variants"] == det1["variants"]
    assert tso1["step_parameters"]["persistence"] == {"skip": True}
    assert tso1["step_parameters"]["ipc"] == {"skip": True}  # inherited
    assert tso1["intermediate_products"] == det1["intermediate_products"]
    miri = graphs.select_variant(det1, {"instrument": {"name": "MIRI"}})
    nir = graphs.select_variant(det1, {"instrument": {"name": "NIRCAM"}})
    assert miri["order"][:3] == ["group_scale", "dq_init", "emicorr"]
    assert "persistence" in nir["order"] and "emicorr" not in nir["order"]
    assert graphs.load_definition("calwebb_dark")["output_suffix"] == "dark"


def test_when_matching_rules():
    meta = {"instrument": {"name": "MIRI"}, "exposure": {"type": "MIR_IMAGE"}, "visit": {"tsovisit": True}}
    assert graphs.matches({}, meta)
    assert graphs.matches({"instrument.name": "miri"}, meta)
    assert graphs.matches({"exposure.type": ["NRC_IMAGE", "MIR_IMAGE"]}, meta)
    assert graphs.matches({"visit.tsovisit": True}, meta)
    assert not graphs.matches({"instrument.name": "NIRCAM"}, meta)
    assert not graphs.matches({"exposure.readpatt": "FAST"}, meta)


def test_exptype_table():
    assert graphs.pipelines_for_exposure("NRC_DARK")["stage1"] == "calwebb_dark"
    assert graphs.pipelines_for_exposure("NRC_IMAGE") == {
        "stage1": "calwebb_detector1",
        "stage2": "calwebb_image2",
        "stage3": "calwebb_image3",
    }
    assert graphs.pipelines_for_exposure("MIR_IMAGE", True)["stage3"] == "calwebb_tso3"
    assert graphs.pipelines_for_exposure("MIR_IMAGE", False)["stage3"] == "calwebb_image3"
    assert graphs.pipelines_for_exposure("NIS_SOSS", False)["stage3"] == "calwebb_spec3"
    assert graphs.pipelines_for_exposure("NRC_TSGRISM", True)["stage1"] == "calwebb_tso1"
    with pytest.raises(ParameterError, match="NRC_BOGUS"):
        graphs.pipelines_for_exposure("NRC_BOGUS")


def test_circular_base_is_reported():
    with pytest.raises(ParameterError, match="circular"):
        graphs.normalise(
            {"alias": "calwebb_detector1", "base": "calwebb_detector1"}, chain=("calwebb_detector1",)
        )


def test_pipeline_hooks():
    ds, _ = make_ramp()
    seen = []
    out = ToyPipeline.call(
        ds,
        pre_hooks=[lambda d: d.assign(SCI=d["SCI"] * 0 + 1)],
        post_hooks=[lambda f: seen.append(sorted(f))],
    )
    assert seen == [["rate", "rateints"]]
    np.testing.assert_allclose(out["rate"]["SCI"].values, (1 + 1.0) * 3.0 * 0.5)
