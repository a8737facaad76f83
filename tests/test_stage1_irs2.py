"""NIRSpec IRS2 in stage 1: the simulated drift removed by refpix, the interleaved reference rows
trimmed from every array with the right flags, clear errors for bad input, and parity with the
official pipeline (dq_init, saturation, superbias, refpix) on the same exposure and references."""

from __future__ import annotations

import json
from pathlib import Path

import _official
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ParameterError, ReferenceFileError, ShapeMismatchError
from jwst_dask.io import open_product
from jwst_dask.kernels.refpix_irs2 import Irs2Layout
from jwst_dask.simulate import irs2 as sim
from jwst_dask.steps.dq_init import DQInitStep
from jwst_dask.steps.ramp_model import to_ramp
from jwst_dask.steps.refpix import RefPixStep
from jwst_dask.steps.saturation import SaturationStep
from jwst_dask.steps.superbias import SuperBiasStep

L = Irs2Layout()


class _Sims:
    def __init__(self, root):
        self.root = root
        self.done = {}

    def get(self, detector: str):
        if detector not in self.done:
            d = self.root / detector
            uncal = sim.simulate_irs2(d, ngroups=3, detector=detector, seed=1)
            self.done[detector] = (uncal, sim.irs2_references(d, detector))
        return self.done[detector]


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    return _Sims(tmp_path_factory.mktemp("irs2"))


def _chain(uncal, refs=None):
    """dq_init, saturation, superbias on ``uncal`` and then refpix; with ``refs`` as overrides,
    else the references CRDS selects."""

    def over(reftype):
        return {f"override_{reftype}": str(refs[reftype])} if refs else {}

    r = to_ramp(open_product(uncal))
    before = [
        DQInitStep(propagate_do_not_use=True, **over("mask")),
        SaturationStep(**over("saturation")),
        SuperBiasStep(**over("superbias")),
    ]
    for step in before:
        r = step.run(r)
    return r, RefPixStep(**over("refpix")).run(r)


def test_irs2_reference_selection(sims, project_cache):
    from jwst_dask.refs import best_references

    uncal, _ = sims.get("NRS1")
    meta = open_product(uncal).attrs["meta"]
    got = best_references(meta, ["refpix", "mask", "superbias", "saturation"])
    assert Path(got["refpix"]).name == "jwst_nirspec_refpix_0001.fits"
    assert fits.getdata(got["mask"], "DQ").shape == (3200, 2048)  # IRS2 layout
    assert fits.getdata(got["superbias"], "SCI").shape == (3200, 2048)
    assert fits.getdata(got["saturation"], "SCI").shape == (2048, 2048)
    traditional = {**meta, "exposure": {**meta["exposure"], "readpatt": "NRSRAPID"}}
    assert best_references(traditional, ["refpix"]) == {"refpix": "N/A"}
    nircam = {**meta, "instrument": {"name": "NIRCAM", "detector": "NRCA1", "filter": "F200W"}}
    assert best_references(nircam, ["refpix"]) == {"refpix": "N/A"}


def test_irs2_drift_removed_and_reference_rows_trimmed(sims, project_cache):
    uncal, refs = sims.get("NRS1")
    pre, out = _chain(uncal)  # the CRDS-selected references: the same files as ``refs``
    assert out.sizes["y"] == 2048 and out.sizes["x"] == 2048
    assert out.attrs["meta"]["cal_step"]["refpix"] == "COMPLETE"
    assert out.attrs["meta"]["subarray"]["ysize"] == 2048
    with dask.config.set(scheduler="threads"):
        got = out.compute()
        pre_sci = pre["SCI"].data.compute()
    normal = L.science_normal_rows("NRS1")
    truth = np.load(str(uncal).replace("_uncal.fits", "_truth.npz"))
    rate = truth["rate"]
    sat_y, sat_x = sim.saturating_pixels(L, "NRS1")
    usable = rate < 1000
    usable[:, :4] = usable[:, -4:] = False
    for g in (1, 2):
        resid = got.SCI.values[0, g] - got.SCI.values[0, 0] - rate * g
        before = (pre_sci[0, g] - pre_sci[0, 0])[normal] - rate * g
        assert np.std(before[usable]) > 15.0  # the injected drift
        assert np.std(resid[usable]) < 6.5  # ~ sqrt(2) x 4 DN read noise left
        assert abs(np.mean(resid[usable])) < 0.3
        # no drift left along the readout (detector rows are science columns)
        assert np.abs(np.mean(np.where(usable, resid, 0), axis=0)[4:-4]).max() < 1.5
    # PIXELDQ: the MASK flags of the normal pixels (+ NO_SAT_CHECK of the NaN threshold)
    mask = fits.getdata(refs["mask"], "DQ")[normal]
    expected = mask.astype(np.uint32)
    expected[100, 200] |= FLAGS["NO_SAT_CHECK"]
    np.testing.assert_array_equal(got.PIXELDQ.values, expected)
    # GROUPDQ: saturating in the second group, grown over the interleaved reference rows
    sat = FLAGS["SATURATED"]
    for y, x in zip(sat_y, sat_x, strict=True):
        yy = int(normal[:y].sum())  # its row once the reference rows are gone
        assert not got.GROUPDQ.values[0, 0, yy, x] & sat
        assert (got.GROUPDQ.values[0, 1:, yy - 1 : yy + 2, x - 1 : x + 2] & sat).all()
        assert not (got.GROUPDQ.values[0, 1, yy + 2, x] & sat)
    assert got.ERR.shape == got.SCI.shape


def _irs2_ramp(shape=(1, 2, 3200, 2048), **exposure):
    meta = {
        "instrument": {"name": "NIRSPEC", "detector": "NRS1"},
        "exposure": {"readpatt": "NRSIRS2RAPID", "nrs_normal": 16, "nrs_reference": 4, **exposure},
        "subarray": {"name": "FULL", "xstart": 1, "ystart": 1, "xsize": 2048, "ysize": 2048},
    }
    sci = da.zeros(shape, dtype=np.uint16, chunks=(*shape[:2], 128, shape[3]))
    return to_ramp(xr.Dataset({"SCI": (("integration", "group", "y", "x"), sci)}, attrs={"meta": meta}))


def test_irs2_bad_input(tmp_path):
    ramp = _irs2_ramp()
    no_table = tmp_path / "refpix_no_irs2.fits"
    dq_only = fits.BinTableHDU.from_columns(
        [fits.Column(name="OUTPUT", format="I", array=np.arange(8))], name="DQ"
    )
    fits.HDUList([fits.PrimaryHDU(), dq_only]).writeto(no_table)
    with pytest.raises(ReferenceFileError, match="no IRS2 table"):
        RefPixStep(override_refpix=str(no_table)).run(ramp)
    short = tmp_path / "refpix_short.fits"
    cols = [
        fits.Column(name=f"{n}_{k}", format="E", array=np.zeros(10))
        for n in ("ALPHA", "BETA")
        for k in range(4)
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="IRS2")]).writeto(short)
    with pytest.raises(ReferenceFileError, match="10 rows"):
        RefPixStep(override_refpix=str(short)).run(ramp)
    with pytest.raises(ShapeMismatchError, match="3200 x 2048"):
        RefPixStep(override_refpix=str(short)).run(_irs2_ramp((1, 2, 64, 64)))
    with pytest.raises(ParameterError, match="preserve_irs2_refpix"):
        RefPixStep(override_refpix=str(short), preserve_irs2_refpix=True).run(ramp)


OFFICIAL_SCRIPT = r"""
import sys, json
import numpy as np
from jwst.dq_init import DQInitStep
from jwst.saturation import SaturationStep
from jwst.superbias import SuperBiasStep
from jwst.refpix import RefPixStep
refs = json.loads(sys.argv[2])
m = DQInitStep.call(sys.argv[1], override_mask=refs["mask"])
m = SaturationStep.call(
    m, override_saturation=refs["saturation"], override_superbias=refs["superbias"], use_readpatt=False
)
m = SuperBiasStep.call(m, override_superbias=refs["superbias"])
m = RefPixStep.call(m, override_refpix=refs["refpix"])
np.savez(sys.argv[3], SCI=m.data, GROUPDQ=m.groupdq, PIXELDQ=m.pixeldq, status=m.meta.cal_step.refpix)
"""


@pytest.mark.slow
@_official.requires_official
@pytest.mark.parametrize("detector", ["NRS1", "NRS2"])
def test_irs2_parity_with_official(sims, tmp_path, detector):
    uncal, refs = sims.get(detector)
    script = tmp_path / "official_irs2.py"
    script.write_text(OFFICIAL_SCRIPT)
    refs_json = json.dumps({k: str(v) for k, v in refs.items()})
    env = _official.offline_crds_env(tmp_path / "crds", with_mappings=True)
    _official.run_official(
        [str(script), str(uncal), refs_json, str(tmp_path / "off.npz")], timeout=900, env=env
    )
    expected = np.load(tmp_path / "off.npz")
    assert str(expected["status"]) == "COMPLETE"
    _, out = _chain(uncal, refs)
    with dask.config.set(scheduler="threads"):
        got = out.compute()
    sci, ref = got.SCI.values, expected["SCI"]
    assert sci.shape == ref.shape == (1, 3, 2048, 2048)
    close = np.abs(sci - ref) <= 1e-4 * np.abs(ref) + 1e-3
    assert close.mean() >= 0.999, f"only {close.mean():.6f} of the pixels agree"
    np.testing.assert_array_equal(got.GROUPDQ.values, expected["GROUPDQ"])
    np.testing.assert_array_equal(got.PIXELDQ.values, expected["PIXELDQ"])
