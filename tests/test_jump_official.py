"""JumpStep against the official jwst 3.0 JumpStep (parameter translation included).

Needs the official pipeline in its own environment: set ``JWST_OFFICIAL_PYTHON`` to its
interpreter. The official step runs offline with overridden GAIN/READNOISE references.
"""

from __future__ import annotations

import json

import _official
import numpy as np
import pytest
from test_jump_kernel import make_ramps
from test_jump_step import make_step, ramp_dataset, run

from jwst_dask.dq import FLAGS

pytestmark = [
    pytest.mark.official,
    _official.requires_official,
]

SCRIPT = (
    _official.SCRIPT_PREAMBLE
    + r"""
import json, sys
import numpy as np
from stdatamodels.jwst import datamodels
from jwst.jump import JumpStep
inp, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
d = np.load(inp)
ny, nx = d["gain"].shape
def meta(m):
    m.meta.instrument.name = "NIRCAM"
    m.meta.instrument.detector = "NRCA1"
    m.meta.subarray.name = "FULL"
    m.meta.subarray.xstart, m.meta.subarray.ystart = 1, 1
    m.meta.subarray.xsize, m.meta.subarray.ysize = nx, ny
ramp = datamodels.RampModel(data=d["data"], groupdq=d["gdq"], pixeldq=d["pdq"])
meta(ramp)
e = ramp.meta.exposure
e.nframes, e.group_time = 1, float(d["group_time"])
e.nints, e.ngroups = d["data"].shape[:2]
e.type, e.readpatt = "NRC_IMAGE", "RAPID"
refs = {"gain": datamodels.GainModel(data=d["gain"]), "rn": datamodels.ReadnoiseModel(data=d["rn"])}
for name, model in refs.items():
    meta(model)
    model.save(str(_crds / f"{name}.fits"))
over = {"override_gain": str(_crds / "gain.fits"), "override_readnoise": str(_crds / "rn.fits")}
res = JumpStep.call(ramp, **over, **params)
np.savez(out, gdq=res.groupdq, pdq=res.pixeldq)
"""
)


def official_jump(tmp_path, data, gdq, pdq, gain, rn, group_time, params):
    np.savez(tmp_path / "in.npz", data=data, gdq=gdq, pdq=pdq, gain=gain, rn=rn, group_time=group_time)
    (tmp_path / "run.py").write_text(SCRIPT)
    _official.run_official(
        [str(tmp_path / "run.py"), str(tmp_path / "in.npz"), str(tmp_path / "out.npz"), json.dumps(params)]
    )
    res = np.load(tmp_path / "out.npz")
    return res["gdq"], res["pdq"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {
            "after_jump_flag_dn1": 50.0,
            "after_jump_flag_time1": 25.0,
            "after_jump_flag_dn2": 1000.0,
            "after_jump_flag_time2": 60.0,
            "min_jump_to_flag_neighbors": 5.0,
            "max_jump_to_flag_neighbors": 200.0,
        },
        {"expand_large_events": True, "rejection_threshold": 5.0},
    ],
)
def test_step_matches_official(tmp_path, params):
    data, gdq, pdq, gain, rn = make_ramps(61, 2, 6, 48, 48, cr_fraction=0.05, sat_fraction=0.0)
    yy, xx = np.mgrid[:48, :48]
    data[0, 3:, (yy - 24) ** 2 + (xx - 22) ** 2 <= 30] += 3000.0  # a snowball with a saturated core
    gdq[0, 3:, (yy - 24) ** 2 + (xx - 22) ** 2 <= 4] |= FLAGS["SATURATED"]
    g_ref, p_ref = official_jump(tmp_path, data, gdq, pdq, gain, rn, 10.0, params)
    _, g, p = run(make_step(gain, rn, min_diffs_single_pass=10, **params), ramp_dataset(data, gdq, pdq, 16))
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(p, p_ref)
