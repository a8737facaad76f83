"""refpix bit for bit against the official pipeline (jwst reference_pixels.correct_model).

Needs the official pipeline in its own environment: set ``JWST_OFFICIAL_PYTHON`` to its Python
interpreter; skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import _official
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from jwst_dask.steps.ramp_model import to_ramp
from jwst_dask.steps.refpix import RefPixStep

pytestmark = [pytest.mark.slow, _official.requires_official]

SCRIPT = r"""
import sys, json
import numpy as np
from stdatamodels.jwst import datamodels
from jwst.refpix import reference_pixels as rp
d = np.load(sys.argv[1])
m = json.loads(sys.argv[3])
model = datamodels.RampModel(data=d["sci"].copy(), pixeldq=d["pdq"].copy(),
                             groupdq=np.zeros(d["sci"].shape, np.uint8))
model.meta.instrument.name = m["inst"]
model.meta.instrument.detector = m["det"]
s = model.meta.subarray
s.xstart, s.ystart, s.fastaxis, s.slowaxis, s.name = m["xstart"], m["ystart"], m["fast"], m["slow"], m["name"]
s.xsize, s.ysize = d["sci"].shape[3], d["sci"].shape[2]
model.meta.exposure.noutputs = m["nout"]
model.meta.exposure.zero_frame = False
kernel = {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0, "gaussmooth": 1.0,
          "halfwidth": 30}
rp.correct_model(model, True, True, 11, 1.0, True, kernel, 3.0)
np.save(sys.argv[2], model.data)
"""


@pytest.mark.parametrize(
    ("shape", "conf"),
    [
        (
            (2, 2, 64, 2048),
            dict(inst="NIRCAM", det="NRCA1", xstart=1, ystart=1, fast=-1, slow=2, name="SUBGRISM64", nout=4),
        ),
        (
            (2, 3, 64, 64),
            dict(inst="NIRCAM", det="NRCA1", xstart=101, ystart=1, fast=1, slow=-2, name="SUB64P", nout=1),
        ),
        (
            (1, 3, 1024, 1032),
            dict(inst="MIRI", det="MIRIMAGE", xstart=1, ystart=1, fast=1, slow=2, name="FULL", nout=4),
        ),
    ],
)
def test_refpix_bit_identical(tmp_path, shape, conf):
    import json

    rng = np.random.default_rng(5)
    sci = (rng.normal(1000, 5, shape) + rng.normal(0, 20, (*shape[:2], 1, 1))).astype(np.float32)
    sci[..., ::2] += 3
    pdq = np.zeros(shape[2:], np.uint32)
    pdq[2, 5] = 1
    if conf["nout"] == 1:
        pdq[:4, :] |= 2**31
    np.savez(tmp_path / "in.npz", sci=sci, pdq=pdq)
    _official.run_official(
        ["-c", SCRIPT, str(tmp_path / "in.npz"), str(tmp_path / "out.npy"), json.dumps(conf)]
    )
    expected = np.load(tmp_path / "out.npy")
    meta = {
        "instrument": {"name": conf["inst"], "detector": conf["det"]},
        "subarray": {
            "xstart": conf["xstart"],
            "ystart": conf["ystart"],
            "fastaxis": conf["fast"],
            "slowaxis": conf["slow"],
        },
        "exposure": {"noutputs": conf["nout"]},
    }
    ds = xr.Dataset(
        {
            "SCI": (("integration", "group", "y", "x"), da.from_array(sci, chunks=(*shape[:2], 32, 256))),
            "PIXELDQ": (("y", "x"), pdq),
        },
        attrs={"meta": meta},
    )
    got = RefPixStep().run(to_ramp(ds)).SCI.values
    np.testing.assert_array_equal(got, expected)


IPC_SCRIPT = r"""
import sys
import numpy as np
from jwst.ipc import ipc_corr
d = np.load(sys.argv[1])
data = d["sci"].copy()
nref = ipc_corr.NumRefPixels(bottom_rows=4, top_rows=0, left_columns=4, right_columns=0)
for i in range(data.shape[0]):
    for j in range(data.shape[1]):
        ipc_corr.ipc_convolve(data[i, j], d["k"], nref)
np.save(sys.argv[2], data)
"""


@pytest.mark.parametrize("per_pixel", [False, True])
def test_ipc_bit_identical(tmp_path, per_pixel):
    from jwst_dask.kernels.ipc import ipc_convolve

    rng = np.random.default_rng(1)
    sci = rng.normal(1000, 30, (1, 2, 40, 40)).astype(np.float32)
    k = np.array([[0.001, 0.01, 0.002], [0.012, 0.95, 0.011], [0.002, 0.009, 0.003]], np.float32)
    if per_pixel:
        k = (k[:, :, None, None] * rng.uniform(0.9, 1.1, (3, 3, 40, 40))).astype(np.float32)
    np.savez(tmp_path / "ipc.npz", sci=sci, k=k)
    _official.run_official(["-c", IPC_SCRIPT, str(tmp_path / "ipc.npz"), str(tmp_path / "out.npy")])
    science = np.ones((40, 40), bool)
    science[:4] = False
    science[:, :4] = False
    np.testing.assert_array_equal(ipc_convolve(sci, k, science), np.load(tmp_path / "out.npy"))


CHAIN_SCRIPT = r"""
import sys, json
import numpy as np
from jwst.group_scale import GroupScaleStep
from jwst.dq_init import DQInitStep
from jwst.saturation import SaturationStep
from jwst.superbias import SuperBiasStep
from jwst.refpix import RefPixStep
from jwst.linearity import LinearityStep
refs = json.loads(sys.argv[2])
m = GroupScaleStep.call(sys.argv[1])
m = DQInitStep.call(m, override_mask=refs["mask"])
m = SaturationStep.call(m, override_saturation=refs["saturation"], override_superbias=refs["superbias"])
m = SuperBiasStep.call(m, override_superbias=refs["superbias"])
m = RefPixStep.call(m, override_refpix="N/A", override_sirskernel="N/A")
m = LinearityStep.call(m, override_linearity=refs["linearity"])
np.savez(sys.argv[3], SCI=m.data, GROUPDQ=m.groupdq, PIXELDQ=m.pixeldq, ZEROFRAME=m.zeroframe)
"""


def test_nircam_chain_bit_identical_on_simulated_exposure(tmp_path, project_cache):
    import json

    from jwst_dask.io import open_product
    from jwst_dask.refs import best_references
    from jwst_dask.simulate import simulate
    from jwst_dask.steps.dq_init import DQInitStep
    from jwst_dask.steps.group_scale import GroupScaleStep
    from jwst_dask.steps.linearity import LinearityStep
    from jwst_dask.steps.saturation import SaturationStep
    from jwst_dask.steps.superbias import SuperBiasStep

    path = simulate(
        "nircam-mosaic", tmp_path, nexp=1, size=64, ngroups=6, nints=1, zeroframe=True, write_asn=False
    )[0]
    ds = open_product(path)
    refs = best_references(ds.jwst.meta, ["mask", "saturation", "superbias", "linearity"])
    env = dict(
        os.environ,
        CRDS_MODE="local",
        STPIPE_DISABLE_CRDS_STEPPARS="true",
        CRDS_SERVER_URL="http://127.0.0.1:9",
        CRDS_PATH=str(Path(project_cache) / "crds"),
    )
    _official.run_official(
        ["-c", CHAIN_SCRIPT, str(path), json.dumps(refs), str(tmp_path / "off.npz")], timeout=900, env=env
    )
    expected = np.load(tmp_path / "off.npz")
    r = to_ramp(ds)
    chain = [
        GroupScaleStep(),
        DQInitStep(override_mask=refs["mask"], propagate_do_not_use=True),
        SaturationStep(override_saturation=refs["saturation"], use_readpatt=True),
        SuperBiasStep(override_superbias=refs["superbias"]),
        RefPixStep(),
        LinearityStep(override_linearity=refs["linearity"]),
    ]
    for step in chain:
        r = step.run(r)
    for name in ("SCI", "GROUPDQ", "PIXELDQ", "ZEROFRAME"):
        np.testing.assert_array_equal(r[name].values, expected[name], err_msg=name)
