"""The spec grammar, value conversion, and ASDF / cfg parameter files written and read back."""

from __future__ import annotations

import asdf
import pytest
from configobj import ConfigObj
from test_framework_toys import AddStep, ScaleStep, ToyPipeline

from jwst_dask.errors import ParameterError
from jwst_dask.steps.params import parse_spec, read_parameter_file, write_parameter_file

SPEC = """
    rejection_threshold = float(default=4.0, min=0, max=100)  # sigma # with a hash
    n_pix = integer(default=1, min=0)
    algorithm = option('OLS', 'OLS_C', default='OLS_C')  # fitting algorithm
    bkg_fit = option("poly", "mean", None, default=None)
    flag_4 = boolean(default=False)
    center = float_list(min=2, max=2, default=None)
    orders = int_list(default=None)
    hooks = list(default=list())
    dark_output = output_file(default = None)
    good_bits = string(default="~DO_NOT_USE")
    maybe = is_string_or_none(default=None)
"""


def test_parse_spec_reads_types_defaults_bounds_and_comments():
    p = parse_spec(SPEC)
    assert list(p) == [
        "rejection_threshold",
        "n_pix",
        "algorithm",
        "bkg_fit",
        "flag_4",
        "center",
        "orders",
        "hooks",
        "dark_output",
        "good_bits",
        "maybe",
    ]
    assert p["rejection_threshold"].kind == "float"
    assert p["rejection_threshold"].default == 4.0 and isinstance(p["rejection_threshold"].default, float)
    assert p["rejection_threshold"].comment == "sigma # with a hash"
    assert p["n_pix"].default == 1 and isinstance(p["n_pix"].default, int)
    assert p["algorithm"].options == ("OLS", "OLS_C") and p["algorithm"].default == "OLS_C"
    assert p["bkg_fit"].options == ("poly", "mean", None) and p["bkg_fit"].default is None
    assert p["flag_4"].default is False
    assert p["center"].default is None and p["hooks"].default == []
    assert p["dark_output"].kind == "output_file" and p["dark_output"].default is None
    assert p["good_bits"].default == "~DO_NOT_USE"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("rejection_threshold", "12.5", 12.5),
        ("rejection_threshold", 7, 7.0),
        ("n_pix", "3", 3),
        ("n_pix", 2.0, 2),
        ("algorithm", "OLS", "OLS"),
        ("bkg_fit", "None", None),
        ("flag_4", "true", True),
        ("flag_4", "False", False),
        ("flag_4", 1, True),
        ("center", "1.5, 2", [1.5, 2.0]),
        ("center", [3, 4], [3.0, 4.0]),
        ("orders", "1,2,3", [1, 2, 3]),
        ("good_bits", "JUMP_DET, DROPOUT", "JUMP_DET, DROPOUT"),
        ("maybe", None, None),
    ],
)
def test_values_convert_to_the_declared_type(name, raw, expected):
    out = parse_spec(SPEC)[name].convert(raw)
    assert out == expected
    assert type(out) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("rejection_threshold", "abc"),
        ("rejection_threshold", -1),
        ("rejection_threshold", 101),
        ("n_pix", "1.5"),
        ("n_pix", True),
        ("algorithm", "LIKELY"),
        ("flag_4", "maybe"),
        ("center", "1,2,3"),
        ("orders", "a,b"),
        ("good_bits", 5),
    ],
)
def test_wrong_type_raises_parameter_error_naming_everything(name, raw):
    with pytest.raises(ParameterError) as exc:
        parse_spec(SPEC)[name].convert(raw, owner="step jump")
    msg = str(exc.value)
    assert "step jump" in msg and repr(name) in msg and repr(raw) in msg


def test_unparseable_spec_line_is_a_parameter_error():
    with pytest.raises(ParameterError, match="bad_line"):
        parse_spec("bad_line = integer(default=1", source="MyStep")


def _pipeline_pars():
    return {
        "class": "test_framework_toys.ToyPipeline",
        "name": "ToyPipeline",
        "parameters": {"save_scaled": True, "note": "hello"},
        "steps": {
            "toy_add": {"value": 2.5, "label": "from file"},
            "toy_scale": {"factor": 7.0, "counts": [1, 2], "enabled_flags": False},
        },
    }


@pytest.mark.parametrize("ext", [".asdf", ".cfg"])
def test_parameter_file_round_trip(tmp_path, ext):
    path = write_parameter_file(tmp_path / f"pars{ext}", _pipeline_pars())
    back = read_parameter_file(path)
    assert back["class"] == "test_framework_toys.ToyPipeline"
    assert back["name"] == "ToyPipeline"
    # values from a cfg file come back as strings: the step specs convert them
    pipe = ToyPipeline(config_file=path)
    assert pipe.save_scaled is True and pipe.note == "hello"
    assert pipe.toy_add.value == 2.5 and pipe.toy_add.label == "from file"
    assert pipe.toy_scale.factor == 7.0
    assert pipe.toy_scale.counts == [1, 2]
    assert pipe.toy_scale.enabled_flags is False


def test_asdf_layout_is_the_official_one(tmp_path):
    path = write_parameter_file(tmp_path / "p.asdf", _pipeline_pars())
    with asdf.open(path) as af:
        tree = af.tree
        assert tree["class"] == "test_framework_toys.ToyPipeline"
        assert tree["parameters"]["note"] == "hello"
        steps = {s["name"]: s for s in tree["steps"]}
        assert steps["toy_scale"]["parameters"]["factor"] == 7.0
    assert path.read_text(errors="replace").startswith("#ASDF 1.0.0")


def test_cfg_layout_has_steps_sections(tmp_path):
    path = write_parameter_file(tmp_path / "p.cfg", _pipeline_pars())
    cfg = ConfigObj(str(path))
    assert cfg["class"] == "test_framework_toys.ToyPipeline"
    assert cfg["steps"]["toy_add"]["value"] == "2.5"


def test_official_style_cfg_with_nested_config_file(tmp_path):
    (tmp_path / "scale.cfg").write_text("name = toy_scale\nfactor = 9.0\nenabled_flags = False\n")
    (tmp_path / "pipe.cfg").write_text(
        "name = ToyPipeline\nclass = test_framework_toys.ToyPipeline\nsave_scaled = True\n"
        "[steps]\n  [[toy_scale]]\n    config_file = scale.cfg\n    enabled_flags = True\n"
    )
    pipe = ToyPipeline(config_file=tmp_path / "pipe.cfg")
    assert pipe.toy_scale.factor == 9.0  # from the referenced file
    assert pipe.toy_scale.enabled_flags is True  # the pipeline file's own value wins
    assert pipe.save_scaled is True


@pytest.mark.parametrize("ext", [".asdf", ".cfg"])
def test_export_config_writes_the_parameters_in_use(tmp_path, ext):
    step = AddStep(value=4.0, override_toyref="N/A")
    path = step.export_config(tmp_path / f"add{ext}")
    again = AddStep(config_file=path)
    assert again.value == 4.0 and again.override_toyref == "N/A"
    assert again.get_pars() == step.get_pars()


def test_pipeline_export_includes_every_step(tmp_path):
    pipe = ToyPipeline(steps={"toy_final": {"factor": 1.25}})
    path = pipe.export_config(tmp_path / "all.asdf")
    back = read_parameter_file(path)
    assert set(back["steps"]) == {"toy_add", "toy_scale", "toy_split", "toy_final"}
    assert back["steps"]["toy_final"]["factor"] == 1.25
    assert back["steps"]["toy_scale"]["factor"] == 3.0  # the definition's step_parameters


def test_unknown_parameter_in_file_is_reported(tmp_path):
    path = write_parameter_file(
        tmp_path / "bad.asdf", {"class": None, "name": "x", "parameters": {"valu": 1}}
    )
    with pytest.raises(ParameterError, match="valu"):
        ScaleStep(config_file=path)


def test_official_parameter_files_tolerate_newer_jwst_entries(tmp_path, caplog):
    pars = {
        "class": "jwst.toy.ToyPipeline",
        "name": "ToyPipeline",
        "parameters": {"save_scaled": True, "new_in_jwst3": 1},
        "steps": {
            "toy_scale": {"factor": 6.0, "new_param": "x", "enabled_flags": None},
            "clean_flicker_noise": {"skip": True},
        },
    }
    path = write_parameter_file(tmp_path / "official.asdf", pars)
    pipe = ToyPipeline(config_file=path)
    assert pipe.save_scaled is True and pipe.toy_scale.factor == 6.0
    assert pipe.toy_scale.enabled_flags is True  # a value of another type is dropped, not applied
    # the same entries in one of our own files are errors
    pars["class"] = "test_framework_toys.ToyPipeline"
    with pytest.raises(ParameterError, match="new_in_jwst3"):
        ToyPipeline(config_file=write_parameter_file(tmp_path / "ours.asdf", pars))
    del pars["parameters"]["new_in_jwst3"]
    pars["steps"]["toy_scale"] = {"factor": 6.0}
    with pytest.raises(ParameterError, match="clean_flicker_noise"):
        ToyPipeline(config_file=write_parameter_file(tmp_path / "ours2.asdf", pars))
    # an unknown step that is not switched off is an error even in an official file
    pars["class"] = "jwst.toy.ToyPipeline"
    pars["steps"]["clean_flicker_noise"]["skip"] = False
    with pytest.raises(ParameterError, match="clean_flicker_noise"):
        ToyPipeline(config_file=write_parameter_file(tmp_path / "official2.asdf", pars))
