"""emicorr: remove MIRI electromagnetic-interference (EMI) waves from the ramps (off by default).

Repeated for each frequency the EMICORR reference lists for the exposure's subarray, read speed
and detector (kernels in :mod:`jwst_dask.kernels.emicorr`). The EMI phase of a pixel depends on
its read time, so the correction is not tile-local; per frequency the graph has a small
frame-wide reduction, then a per-tile subtraction that computes each pixel's phase from the
tile's global offsets. The next frequency's reduction reads the data already corrected for the
previous ones.

- ``algorithm="sequential"`` (the seeds'): each tile of the *phasing* integrations (the first
  ``nints_to_phase``; by default just enough for ``use_n_cycles`` periods, usually one) is cleaned
  and quad-averaged per tile; one task gathers those quarter-width frames
  (``nphase * ngroups * ny * nx / 4`` float32, never the whole exposure), bins them by phase and
  returns the noise table (one value per pixel clock of a period).
- ``algorithm="joint"`` (jwst 3.x): a scatter limit (twice the median of the per-pixel scatter
  along the groups: one task holds ``nints * ny * nx`` float32), per-tile sums of the usable reads
  by phase, added pairwise per integration chunk, and one small fit of the reference wave's phase
  and amplitude.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.errors import ParameterError, ReferenceFileError, ShapeMismatchError
from jwst_dask.kernels import emicorr as kern
from jwst_dask.steps.base import Step, output_root

__all__ = ["EmiCorrStep", "read_emicorr_reference", "select_frequencies"]

_READPATTS = ("FAST", "FASTR1", "SLOW", "SLOWR1")


def read_emicorr_reference(path: str | Path) -> dict[str, Any]:
    """The ``frequencies`` and ``subarray_cases`` trees of an EMICORR (ASDF) reference, as plain
    dicts and numpy arrays."""
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = _plain(af.tree)
    except Exception as exc:  # an unreadable file: one clear error naming it
        raise ReferenceFileError(f"emicorr reference {Path(path).name}: cannot read ({exc})") from None
    for key in ("frequencies", "subarray_cases"):
        if not isinstance(tree.get(key), dict):
            raise ReferenceFileError(f"emicorr reference {Path(path).name} has no {key!r} dictionary")
    return {"frequencies": tree["frequencies"], "subarray_cases": tree["subarray_cases"]}


def _plain(node: Any) -> Any:
    if isinstance(node, dict) or hasattr(node, "items"):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if hasattr(node, "__array__") and not isinstance(node, str | int | float):
        return np.array(node)
    return node


def select_frequencies(
    ref: dict[str, Any], subarray: str, readpatt: str, detector: str
) -> tuple[int, int, list[tuple[str, float, np.ndarray]]] | None:
    """``(rowclocks, frameclocks, [(name, frequency, phase_amplitudes), ...])`` for the
    configuration, or None when the reference has no case for it. Full-frame cases are named
    ``FULL_FAST`` / ``FULL_SLOW`` (a plain ``FULL`` case is accepted too); FAST lists the
    frequency names directly, SLOW per detector."""
    readpatt = str(readpatt).upper()
    speed = "SLOW" if "SLOW" in readpatt else "FAST" if "FAST" in readpatt else None
    if speed is None:
        return None
    subarray = str(subarray).upper()
    cases = ref["subarray_cases"]
    names = [f"{subarray}_{speed}", subarray] if "FULL" in subarray else [subarray]
    case = next((cases[n] for n in names if n in cases), None)
    if case is None:
        return None
    try:
        listed = case["freqs"][speed]
        if speed == "SLOW":
            listed = listed[str(detector).upper()]
        rowclocks, frameclocks = int(case["rowclocks"]), int(case["frameclocks"])
    except (KeyError, TypeError):
        return None
    out = []
    for name in listed:
        entry = ref["frequencies"].get(name)
        if entry is None:
            raise ReferenceFileError(f"emicorr reference lists frequency {name!r} but does not define it")
        out.append((str(name), float(entry["frequency"]), np.asarray(entry["phase_amplitudes"])))
    return rowclocks, frameclocks, out


def _quad_aligned(chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of the same total whose boundaries fall on multiples of 4."""
    if all(c % 4 == 0 for c in chunks[:-1]):
        return chunks
    size = max(4, max(chunks) // 4 * 4)
    total = sum(chunks)
    return tuple(min(size, total - s) for s in range(0, total, size))


def _lut_task(quads, timing, period, nbins, wave, scale_reference):
    phases = kern.quad_phases(np.arange(quads.shape[0]), timing, period)
    pa = kern.phased_wave(quads, phases, nbins)
    return kern.noise_lut(pa, period, wave, scale_reference), pa


def _subtract_block(block, gi, gy, gx, lut, *, period, timing):
    return kern.subtract_noise(block, int(gi[0]), int(gy[0]), int(gx[0]), lut, period, timing)


def _scatter_limit(std):
    return np.float32(2) * np.median(std)


def _tree_sum(parts: list) -> Any:
    """Pairwise sum of delayed arrays (no task holds more than two partial sums)."""
    while len(parts) > 1:
        parts = [dask.delayed(np.add)(a, b) for a, b in zip(parts[::2], parts[1::2], strict=False)] + (
            [parts[-1]] if len(parts) % 2 else []
        )
    return parts[0]


def _joint_block(block, gi, gy, gx, fit, *, wave, dphase, nsamples, rowclocks, period):
    return kern.subtract_joint(
        block, int(gi[0]), int(gy[0]), int(gx[0]), wave, fit, dphase, nsamples, rowclocks, period
    )


class EmiCorrStep(Step):
    """MIRI EMI correction: per EMI frequency, fold the data on the pixel read phase, fit the
    reference wave's phase (and amplitude) to it, and subtract it (sequential or joint fit)."""

    class_alias = "emicorr"
    spec = """
        algorithm = option('sequential', 'joint', default='sequential')  # the seeds' or jwst 3.x's joint fit
        nints_to_phase = integer(default=None)  # number of integrations to phase
        nbins = integer(default=None)  # number of bins in one phased wave
        scale_reference = boolean(default=True)  # scale the reference wave to the data amplitude
        onthefly_corr_freq = float_list(default=None)  # frequencies to self-correct (no reference)
        use_n_cycles = integer(default=3)  # phase over enough integrations for N cycles (None: all)
        fit_ints_separately = boolean(default=False)  # joint: fit each integration separately
        user_supplied_reffile = string(default=None)  # an EMICORR reference to use (ASDF)
        save_intermediate_results = boolean(default=False)  # save the on-the-fly phased waves
        skip = boolean(default=True)
    """
    reference_file_types = ("emicorr",)

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        meta = ds.jwst.meta
        instrument = str(meta.get_path("instrument.name") or "").upper()
        if instrument != "MIRI":
            self.log.warning("EMI correction not implemented for instrument: %s", instrument or "?")
            return ds.jwst.set_cal_step("emicorr", "SKIPPED")
        readpatt = str(meta.get_path("exposure.readpatt") or "").upper()
        if readpatt not in _READPATTS:
            self.log.warning("EMI correction not implemented for read pattern: %s", readpatt or "?")
            return ds.jwst.set_cal_step("emicorr", "SKIPPED")
        nints, ngroups, ny, nx = ds["SCI"].shape
        if ngroups < 3:
            self.log.warning("EMI correction cannot be performed for ngroups=%d", ngroups)
            return ds.jwst.set_cal_step("emicorr", "SKIPPED")
        if nx % 4:
            raise ShapeMismatchError(
                f"emicorr: {nx} columns is not a multiple of the 4 MIRI amplifiers (SCI {ds['SCI'].shape})"
            )
        selected = self._frequencies(ds, readpatt)
        if selected is None:
            return ds.jwst.set_cal_step("emicorr", "SKIPPED")
        rowclocks, frameclocks, freqs = selected
        timing = kern.Timing.for_exposure(
            ngroups,
            ny,
            nx,
            int(meta.get_path("exposure.nsamples") or 1),
            rowclocks,
            frameclocks,
            readpatt,
            int(meta.get_path("subarray.xstart") or 1),
            int(meta.get_path("subarray.xsize") or nx),
        )
        self.log.info(
            "Will correct data for the following %d frequencies: %s", len(freqs), [f[0] for f in freqs]
        )
        sci = ds["SCI"].data
        if not isinstance(sci, da.Array):
            sci = da.from_array(np.asarray(sci), chunks=(nints, ngroups, ny, nx))
        sci = sci.astype(np.float32)
        if len(sci.chunks[1]) > 1:  # all groups of a pixel in one chunk (docs/design.md)
            sci = sci.rechunk({1: -1})
        algorithm = self.algorithm
        if algorithm == "joint" and self.onthefly_corr_freq is not None:
            self.log.warning("The joint algorithm needs reference waves: using the sequential algorithm")
            algorithm = "sequential"
        self.log.info("Running EMI fit with algorithm = %r.", algorithm)
        if algorithm == "joint":
            pdq = da.asarray(ds["PIXELDQ"].data).rechunk(sci.chunks[2:])
            for name, freq, wave in freqs:
                self.log.info("Correcting for frequency: %s Hz (%s), joint fit", freq, name)
                sci = self._joint(sci, pdq, timing, rowclocks, frameclocks, readpatt, freq, wave)
        else:
            sci = self._sequential(ds, sci, timing, rowclocks, frameclocks, readpatt, freqs)
        out = ds.copy()
        out["SCI"] = ds["SCI"].copy(data=sci)
        return out.jwst.set_cal_step("emicorr")

    # ------------------------------------------------------------------------------ pieces
    def _frequencies(self, ds: xr.Dataset, readpatt: str):
        """(rowclocks, frameclocks, [(name, frequency, wave or None)]) or None (skip)."""
        meta = ds.jwst.meta
        subarray = str(meta.get_path("subarray.name") or "FULL").upper()
        detector = str(meta.get_path("instrument.detector") or "")
        if self.onthefly_corr_freq is not None:
            key = f"{subarray}_{'SLOW' if 'SLOW' in readpatt else 'FAST'}" if subarray == "FULL" else subarray
            if key not in kern.SUBARRAY_CLOCKS:
                self.log.warning("No correction match for this configuration (subarray %s)", subarray)
                return None
            if not self.onthefly_corr_freq or any(f <= 0 for f in self.onthefly_corr_freq):
                raise ParameterError(f"emicorr: onthefly_corr_freq must list positive frequencies, got "
                                     f"{self.onthefly_corr_freq}")  # fmt: skip
            rowclocks, frameclocks = kern.SUBARRAY_CLOCKS[key]
            self.log.info("Correcting with reference waves made on the fly.")
            return rowclocks, frameclocks, [(repr(f), float(f), None) for f in self.onthefly_corr_freq]
        if self.user_supplied_reffile is not None:
            path = Path(self.user_supplied_reffile).expanduser()
            if not path.is_file():
                raise ReferenceFileError(f"step {self.name}: user_supplied_reffile {str(path)!r} not found")
            self.log.info("Using the user-supplied EMICORR reference file %s", path)
            self._refs_used["emicorr"] = path.name
        else:
            path = self.get_reference_file(ds, "emicorr")
            if path == "N/A":
                self.log.warning("No EMICORR reference file found: step skipped")
                return None
        selected = select_frequencies(read_emicorr_reference(path), subarray, readpatt, detector)
        if selected is None or not selected[2]:
            self.log.warning(
                "No correction match for this configuration (subarray %s, read pattern %s, detector %s)",
                subarray,
                readpatt,
                detector,
            )
            return None
        return selected

    def _sequential(self, ds, sci, timing, rowclocks, frameclocks, readpatt, freqs):
        """The sequential algorithm, one frequency after the other (each on the corrected data)."""
        nints, ngroups = sci.shape[:2]
        if ngroups < 10:
            self.log.warning("ngroups=%d: the sequential EMI fit works best with 10 or more groups", ngroups)
        nphase = None
        waves = {}
        for name, freq, wave in freqs:
            period = kern.period_in_pixels(freq)
            if nphase is None:  # the first frequency's count serves them all (as the official code)
                nphase = kern.phasing_integrations(
                    nints, ngroups, period, frameclocks, self.nints_to_phase, self.use_n_cycles
                )
            nbins = kern.default_nbins(period, self.nbins)
            self.log.info(
                "Correcting for frequency: %s Hz (%s): %d bins, %d phasing integration(s)",
                freq,
                name,
                nbins,
                nphase,
            )
            sci, waves[name] = self._correct(sci, nphase, timing, period, nbins, wave)
        if self.save_intermediate_results and self.onthefly_corr_freq is not None:
            self._save_waves(ds, waves, freqs, rowclocks, frameclocks, readpatt)
        return sci

    def _correct(self, sci, nphase, timing, period, nbins, wave):
        """The graph of one frequency: reduction over the phasing integrations, then subtraction."""
        phase_part = sci[:nphase]
        xchunks = _quad_aligned(phase_part.chunks[3])
        if xchunks != phase_part.chunks[3]:
            phase_part = phase_part.rechunk({3: xchunks})
        quads = phase_part.map_blocks(
            kern.clean_quads,
            dtype=np.float32,
            chunks=(*phase_part.chunks[:3], tuple(c // 4 for c in xchunks)),
        )
        result = dask.delayed(_lut_task, nout=2)(
            quads, timing, period, nbins, wave, bool(self.scale_reference)
        )
        size = kern.lut_size(nbins, period, None if wave is None else len(wave))
        lut = da.from_delayed(result[0], (size,), dtype=np.float64)
        nints, _, ny, nx = sci.shape
        gi = da.arange(0, nints, chunks=(sci.chunks[0],))
        gy = da.arange(0, ny, chunks=(sci.chunks[2],))
        gx = da.arange(0, nx, chunks=(sci.chunks[3],))
        new = da.blockwise(
            _subtract_block,
            "igyx",
            sci,
            "igyx",
            gi,
            "i",
            gy,
            "y",
            gx,
            "x",
            lut,
            "l",
            dtype=np.float32,
            concatenate=True,
            period=period,
            timing=timing,
        )
        return new, result[1]

    def _joint(self, sci, pdq, timing, rowclocks, frameclocks, readpatt, freq, wave):
        """The graph of one frequency, joint fit: a scatter limit (median over the whole
        exposure's per-pixel scatter), per-tile phase sums added up per integration chunk, one
        small fit, then a per-tile subtraction."""
        period = kern.period_in_pixels(freq)
        nints, ngroups, ny, nx = sci.shape
        reset = frameclocks if readpatt in ("FASTR1", "SLOWR1") else 0
        dphase, dphase_frame = kern.joint_phase_steps(ny, ngroups, rowclocks, reset, period)
        nphases = len(wave)
        std = sci.map_blocks(kern.pixel_scatter, drop_axis=1, dtype=np.float32)
        limit = dask.delayed(_scatter_limit)(std)
        blocks, pblocks = sci.to_delayed(), pdq.to_delayed()
        ystarts, xstarts = np.cumsum((0, *sci.chunks[2])), np.cumsum((0, *sci.chunks[3]))
        per_int = []
        for bi in range(len(sci.chunks[0])):
            parts = [
                dask.delayed(kern.joint_sums)(
                    blocks[bi, 0, by, bx],
                    pblocks[by, bx],
                    int(ystarts[by]),
                    int(xstarts[bx]),
                    limit,
                    nphases,
                    timing.nsamples,
                    rowclocks,
                    period,
                )
                for by in range(len(sci.chunks[2]))
                for bx in range(len(sci.chunks[3]))
            ]
            per_int.append(_tree_sum(parts))
        sums = dask.delayed(np.concatenate)(per_int, axis=0)
        fit = dask.delayed(kern.joint_fit)(sums, wave, dphase, dphase_frame, bool(self.fit_ints_separately))
        fit_arr = da.from_delayed(fit, (nints, 2), dtype=np.float64)
        gi = da.arange(0, nints, chunks=(sci.chunks[0],))
        gy = da.arange(0, ny, chunks=(sci.chunks[2],))
        gx = da.arange(0, nx, chunks=(sci.chunks[3],))
        return da.blockwise(
            _joint_block, "igyx", sci, "igyx", gi, "i", gy, "y", gx, "x", fit_arr, "ab",
            dtype=np.float32, concatenate=True, wave=wave, dphase=dphase, nsamples=timing.nsamples,
            rowclocks=rowclocks, period=period,
        )  # fmt: skip

    def _save_waves(self, ds, waves, freqs, rowclocks, frameclocks, readpatt) -> None:
        """Write the phased waves made on the fly as an EMICORR-format ASDF file (this computes
        the small phasing reductions once more)."""
        import asdf

        (values,) = dask.compute(list(waves.values()))
        names = [f[0] for f in freqs]
        detector = str(ds.jwst.meta.get_path("instrument.detector") or "")
        subarray = str(ds.jwst.meta.get_path("subarray.name") or "FULL")
        tree = {
            "frequencies": {
                n: {"frequency": f[1], "phase_amplitudes": np.asarray(v)}
                for n, f, v in zip(names, freqs, values, strict=True)
            },
            "subarray_cases": {
                subarray: {
                    "rowclocks": rowclocks,
                    "frameclocks": frameclocks,
                    "freqs": {readpatt: names if "FAST" in readpatt else {detector: names}},
                }
            },
        }
        root = self._root or (output_root(ds.attrs["filename"]) if ds.attrs.get("filename") else None)
        path = self.output_path("emi_ref_waves", root=root).with_suffix(".asdf")
        asdf.AsdfFile(tree).write_to(path)
        self.log.info("Wrote the on-the-fly EMI reference waves to %s", path)
