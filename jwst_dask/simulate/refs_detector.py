"""Stage-1 (detector) reference files: mask, saturation, superbias, linearity, dark, gain, readnoise,
ipc, trapdensity, persat, trappars, MIRI reset, rscd and emicorr.

Each builder takes a resolved :class:`~jwst_dask.simulate.references.Selection` and the USEAFTER date
and returns ``("fits", (primary_header, [hdus]))`` or ``("asdf", tree)``.
"""

from __future__ import annotations

import numpy as np

from jwst_dask.dq import FLAGS
from jwst_dask.simulate import detector as phys
from jwst_dask.simulate import references as R


def _mask(sel, useafter):
    h = R.header(sel, "mask", useafter, "Bad pixel mask: dead, hot, low QE; reference pixels")
    h["EXP_TYPE"] = sel.exp_type if sel.instrument == "NIRCAM" else "ANY"
    h["READPATT"] = "ANY"
    dq = phys.bad_pixel_dq(sel.detector, *sel.slices)
    return "fits", (h, [R.image(dq, "DQ"), R.dq_def()])


def _saturation(sel, useafter):
    h = R.header(sel, "saturation", useafter, "Saturation threshold (raw DN)")
    thr = phys.saturation_threshold(sel.detector, *sel.slices)
    dq = np.zeros(thr.shape, dtype=np.uint32)
    return "fits", (h, [R.image(thr, "SCI", "DN"), R.image(dq, "DQ"), R.dq_def()])


def _superbias(sel, useafter):
    h = R.header(sel, "superbias", useafter, "Superbias: zero-signal level of every pixel")
    h["READPATT"] = "ANY"
    h["NOUTPUTS"] = sel.noutputs
    h["BUNIT"] = "DN"
    bias = phys.field(sel.detector, "bias", *sel.slices)
    dq = np.zeros(bias.shape, dtype=np.uint32)
    err = np.full(bias.shape, 1.0, dtype=np.float32)
    return "fits", (h, [R.image(bias, "SCI", "DN"), R.image(err, "ERR", "DN"), R.image(dq, "DQ"), R.dq_def()])


def _linearity(sel, useafter):
    h = R.header(sel, "linearity", useafter, "Linearity: coefficients of the inverse detector response")
    beta = phys.field(sel.detector, "beta", *sel.slices)
    coeffs = phys.linearity_coefficients(beta).astype(np.float32)
    dq = np.zeros(beta.shape, dtype=np.uint32)
    dead = phys.field(sel.detector, "dead", *sel.slices)
    dq[dead] = FLAGS["NO_LIN_CORR"]
    return "fits", (h, [R.image(coeffs, "COEFFS"), R.image(dq, "DQ"), R.dq_def()])


def _dark(sel, useafter):
    tframe = sel.frame_time
    nfr = R.dark_frames(sel)
    h = R.header(sel, "dark", useafter, "Dark: accumulated dark signal per frame (DN)")
    h["EXP_TYPE"] = sel.exp_type if sel.instrument == "NIRCAM" else "ANY"
    h["READPATT"] = sel.readpatt
    h["NOUTPUTS"] = sel.noutputs
    h["NFRAMES"] = 1
    h["GROUPGAP"] = 0
    h["NGROUPS"] = nfr
    h["TFRAME"] = tframe
    h["BUNIT"] = "DN"
    gain = phys.field(sel.detector, "gain", *sel.slices).astype(np.float64)
    rate = phys.field(sel.detector, "dark_e", *sel.slices).astype(np.float64) / gain  # DN/s
    hot = phys.field(sel.detector, "hot", *sel.slices)
    t = (np.arange(nfr) + 1.0) * tframe
    avg = rate.astype(np.float32)
    if sel.instrument == "MIRI":
        nint = R.MIRI_REF_INTS
        h["NINTS"] = nint
        data = np.broadcast_to(t[None, :, None, None] * rate[None, None], (nint, nfr, *rate.shape))
        data = data.astype(np.float32)
        err = np.full(data.shape, 0.05, dtype=np.float32)
        dq = np.zeros((nint, 1, *rate.shape), dtype=np.uint32)
        dq[:, 0][:, hot] = FLAGS["HOT"]
    else:
        data = (t[:, None, None] * rate[None]).astype(np.float32)
        err = np.full(data.shape, 0.05, dtype=np.float32)
        dq = np.zeros(rate.shape, dtype=np.uint32)
        dq[hot] = FLAGS["HOT"]
    hdus = [R.image(data, "SCI", "DN"), R.image(err, "ERR", "DN"), R.image(dq, "DQ")]
    return "fits", (h, [*hdus, R.image(avg, "AVDRKCUR", "DN/s"), R.dq_def()])


def _gain(sel, useafter):
    h = R.header(sel, "gain", useafter, "Gain (electrons per DN)")
    h["BUNIT"] = "electrons/DN"
    return "fits", (h, [R.image(phys.field(sel.detector, "gain", *sel.slices), "SCI", "electrons/DN")])


def _readnoise(sel, useafter):
    h = R.header(sel, "readnoise", useafter, "Read noise: CDS noise = sqrt(2) x single-frame sigma (DN)")
    h["READPATT"] = "ANY"
    h["NOUTPUTS"] = sel.noutputs
    h["BUNIT"] = "DN"
    cds = (np.sqrt(2.0) * phys.field(sel.detector, "read_noise", *sel.slices)).astype(np.float32)
    return "fits", (h, [R.image(cds, "SCI", "DN")])


def _ipc(sel, useafter):
    h = R.header(sel, "ipc", useafter, "IPC kernel: identity (the simulator has no IPC)")
    kernel = np.zeros((3, 3), dtype=np.float32)
    kernel[1, 1] = 1.0
    return "fits", (h, [R.image(kernel, "SCI")])


def _trapdensity(sel, useafter):
    h = R.header(sel, "trapdensity", useafter, "Trap density per pixel")
    rng = np.random.default_rng(phys.stable_seed("trapdensity", sel.detector))
    det = phys.detector_spec(sel.detector)
    full = (0.04 + 0.01 * rng.random(det.shape)).astype(np.float32)
    full[phys.reference_pixel_mask(det)] = 0.0
    data = R.cut(full, sel)
    return "fits", (h, [R.image(data, "SCI"), R.image(np.zeros(data.shape, np.uint32), "DQ"), R.dq_def()])


def _persat(sel, useafter):
    h = R.header(sel, "persat", useafter, "Persistence saturation (linear DN above bias)")
    det = phys.detector_spec(sel.detector)
    sat = phys.field(sel.detector, "sat_signal", *sel.slices).astype(np.float64)
    beta = phys.field(sel.detector, "beta", *sel.slices)
    # linear signal at full well: the root of S = L - beta L^2
    lin = ((1.0 - np.sqrt(np.maximum(1.0 - 4.0 * beta * sat, 0.0))) / (2.0 * beta)).astype(np.float32)
    del det
    return "fits", (h, [R.image(lin, "SCI", "DN"), R.image(np.zeros(lin.shape, np.uint32), "DQ"), R.dq_def()])


def _trappars(sel, useafter):
    h = R.header(sel, "trappars", useafter, "Trap capture and decay parameters (3 families)", imaging=False)
    cols = {
        "capture0": np.array([1.5e-3, 9.0e-4, 4.0e-4]),
        "capture1": np.array([-9.0e-4, -3.0e-4, -1.0e-4]),
        "capture2": np.array([2.0e-5, 1.0e-5, 5.0e-6]),
        "decay_param": np.array([-1.2e-3, -4.0e-4, -1.0e-4]),
    }
    return "fits", (h, [R.table(cols, "TRAPPARS")])


def _reset(sel, useafter):
    nint, ngrp = R.MIRI_REF_INTS, R.MIRI_REF_GROUPS
    h = R.header(sel, "reset", useafter, "MIRI reset anomaly (DN) per integration and group")
    h["READPATT"] = sel.readpatt
    h["NGROUPS"] = ngrp
    h["NINTS"] = nint
    ys, xs = sel.slices
    data = phys.reset_anomaly(sel.detector, nint, ngrp, ys, xs).astype(np.float32)
    err = np.full(data.shape, 0.5, dtype=np.float32)
    dq = np.zeros(data.shape[-2:], dtype=np.uint32)
    return "fits", (h, [R.image(data, "SCI", "DN"), R.image(err, "ERR", "DN"), R.image(dq, "DQ"), R.dq_def()])


def _rscd(sel, useafter):
    from jwst_dask.simulate.exposure import MIRI_RSCD_GROUPS

    h = R.header(sel, "rscd", useafter, "MIRI RSCD: groups to skip in integrations 2+", imaging=False)
    names = np.array(
        ["FULL", "BRIGHTSKY", "SUB256", "SUB128", "SUB64", "MASK1065", "MASK1140", "MASK1550", "MASKLYOT"]
    )
    cols = {
        "subarray": np.repeat(names, 2),
        "readpatt": np.array(["FAST", "SLOW"] * len(names)),
        "group_skip1": np.ones(2 * len(names), dtype=np.int32),  # the first-frame effect
        "group_skip": np.full(2 * len(names), MIRI_RSCD_GROUPS, dtype=np.int32),
    }
    return "fits", (h, [R.table(cols, "RSCD_GROUP_SKIP")])


def _emicorr(sel, useafter):
    meta = R.asdf_meta(
        sel, "emicorr", useafter, "MIRI EMI frequencies (the simulator adds no EMI)", "EmiModel"
    )
    phase = np.linspace(0.0, 2.0 * np.pi, 500, endpoint=False)
    freqs = {
        "Hz390": {"frequency": 390.625, "phase_amplitudes": (0.5 * np.sin(phase)).astype(np.float32)},
        "Hz218a": {"frequency": 218.52055, "phase_amplitudes": (0.2 * np.sin(phase)).astype(np.float32)},
    }
    # The MIRI readout clocks per subarray case (full frame split by readout speed), as in the
    # flight EMICORR references; each case lists the frequencies to correct.
    clocks = {
        "FULL_FAST": (271, 277504), "FULL_SLOW": (2333, 2388992), "BRIGHTSKY": (162, 86528),
        "SUB256": (96, 29952), "SUB128": (44, 11904), "SUB64": (28, 8512),
        "SLITLESSPRISM": (28, 15904), "MASK1065": (82, 23968), "MASK1140": (82, 23968),
        "MASK1550": (82, 23968), "MASKLYOT": (90, 32400),
    }  # fmt: skip
    detectors = ("MIRIMAGE", "MIRIFULONG", "MIRIFUSHORT")
    cases = {
        name: {
            "rowclocks": row,
            "frameclocks": frame,
            "freqs": {"FAST": ["Hz390", "Hz218a"], "SLOW": {d: ["Hz390"] for d in detectors}},
        }
        for name, (row, frame) in clocks.items()
    }
    return "asdf", {"meta": meta, "frequencies": freqs, "subarray_cases": cases}


BUILDERS = {
    "mask": _mask,
    "saturation": _saturation,
    "superbias": _superbias,
    "linearity": _linearity,
    "dark": _dark,
    "gain": _gain,
    "readnoise": _readnoise,
    "ipc": _ipc,
    "trapdensity": _trapdensity,
    "persat": _persat,
    "trappars": _trappars,
    "reset": _reset,
    "rscd": _rscd,
    "emicorr": _emicorr,
}
