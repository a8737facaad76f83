"""jump: flag cosmic-ray jumps (JUMP_DET) in GROUPDQ with the two-point difference method.

Graph: one per-pixel kernel call per tile (:func:`jwst_dask.kernels.jump.twopoint_block`, all
integrations and groups of the tile), then the neighbour and after-jump flagging on the packed
result with a one-pixel halo (``dask.array.overlap`` depth 1 in y and x, zeros beyond the
detector), which reproduces the whole-frame result exactly for any tiling.

Frame-wide inputs are small lazy reductions fed to the tile tasks, each computed in a pass of
its own before the tiles stream (:mod:`jwst_dask.steps._two_pass`, so that no tile is held
waiting for them): the groups that are DO_NOT_USE in every pixel (which decide whether and how
the exposure is processed; only built when they can change the result, i.e. for several
integrations, after-jump flagging or the single-pass mode), the median gain (after-jump
thresholds), and in sigma-clip mode the groups that end up JUMP_DET or DO_NOT_USE everywhere.
Snowballs and showers (off by default) run as one whole-exposure task after the tiles
(:mod:`jwst_dask.kernels.large_events`).

``maximum_cores`` is accepted for parameter-file compatibility; parallelism comes from Dask.
"""

from __future__ import annotations

import dataclasses

import dask
import dask.array as da
import numpy as np
import xarray as xr

from jwst_dask.dq import FLAGS
from jwst_dask.errors import ParameterError
from jwst_dask.kernels import jump as kern
from jwst_dask.kernels import large_events as big
from jwst_dask.steps._two_pass import _flat, frame_statistic
from jwst_dask.steps.base import Step
from jwst_dask.steps.ramp_model import ref_array

__all__ = ["JumpStep", "jump_params"]

_DNU = FLAGS["DO_NOT_USE"]
_IJ = "ig"
_4D = "igyx"


def _stage_a(sci, gdq, gain, rn, table, e1, e2, *, params, static_mode):
    mode = static_mode if table is None else kern.frame_mode(table, params)
    if e1 is not None:
        params = dataclasses.replace(params, after_jump_flag_e1=float(e1), after_jump_flag_e2=float(e2))
    return kern.twopoint_block(sci, gdq, gain, rn, params, mode)


def _stage_b(packed_halo, full=None, *, params, block_info=None):
    # the halo comes without padding at the frame's edges (boundary "none", which keeps block
    # indices those of the frame); pad there with zeros, i.e. no flags beyond the frame
    where = block_info[0]["chunk-location"]
    count = block_info[0]["num-chunks"]
    pad = [(0, 0), (0, 0)] + [(int(where[ax] == 0), int(where[ax] == count[ax] - 1)) for ax in (2, 3)]
    if any(a or b for a, b in pad):
        packed_halo = np.pad(packed_halo, pad)
    if full is not None:
        full = full[:, :, 0, 0]
    return kern.finish_block(packed_halo, params, full)


def _one_per_block(arr: da.Array) -> tuple:
    """Chunks of an array with one element per block of ``arr``."""
    return tuple((1,) * n for n in arr.numblocks)


def _block_statistics(packed):
    """A tile's part of the first pass: (its fully flagged groups, its edge triggers)."""
    info = np.empty((1,) * packed.ndim, dtype=object)
    info[(0,) * packed.ndim] = (kern.full_jump_groups(packed), kern.edge_triggers(packed))
    return info


def _table_of(info):
    return info.item()[0][:, :, None, None]


def _finish_tile(packed, full, above, below, left, right, params):
    edges = [None if nb is None else nb.item()[1] for nb in (above, below, left, right)]
    return kern.finish_block(kern.halo_from_edges(packed, *edges), params, full)


def _finish_from_edges(packed: da.Array, full: da.Array, info: da.Array, params) -> da.Array:
    """Neighbour and after-jump flagging of each tile from its own per-pixel pass and its
    neighbours' edge triggers of the first pass (``info``): one task per tile, no halo exchange."""
    from dask._task_spec import Task, TaskRef
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = "finish_block-" + tokenize(packed.name, full.name, info.name, params)
    nby, nbx = packed.numblocks[2:]
    (full_key,) = _flat(full.__dask_keys__())

    def ref(a, b):
        if 0 <= a < nby and 0 <= b < nbx:
            return TaskRef((info.name, 0, 0, a, b))
        return None

    layer = {}
    for a in range(nby):
        for b in range(nbx):
            key = (name, 0, 0, a, b)
            layer[key] = Task(
                key,
                _finish_tile,
                TaskRef((packed.name, 0, 0, a, b)),
                TaskRef(full_key),
                ref(a - 1, b),
                ref(a + 1, b),
                ref(a, b - 1),
                ref(a, b + 1),
                params,
            )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[packed, full, info])
    return da.Array(graph, name, packed.chunks, dtype=np.uint8)


def _whole(arr: da.Array) -> da.Array:
    return arr.rechunk(arr.shape)


def jump_params(step: JumpStep, meta, ngroups: int) -> kern.JumpParams:
    """The kernel parameters from the step's parameters and the exposure metadata."""
    nframes = int(meta.get_path("exposure.nframes") or 1)
    n1 = n2 = 0
    if step.after_jump_flag_time1 > 0 or step.after_jump_flag_time2 > 0:
        gtime = meta.get_path("exposure.group_time")
        if not gtime:
            raise ParameterError(
                "jump: after_jump_flag_time1/2 need meta.exposure.group_time (keyword TGROUP), absent"
            )
        n1 = int(step.after_jump_flag_time1 // float(gtime))
        n2 = int(step.after_jump_flag_time2 // float(gtime))
    return kern.JumpParams(
        nframes=nframes,
        rejection_threshold=float(step.rejection_threshold),
        three_group_rejection_threshold=float(step.three_group_rejection_threshold),
        four_group_rejection_threshold=float(step.four_group_rejection_threshold),
        flag_4_neighbors=bool(step.flag_4_neighbors),
        max_jump_to_flag_neighbors=float(step.max_jump_to_flag_neighbors),
        min_jump_to_flag_neighbors=float(step.min_jump_to_flag_neighbors),
        after_jump_flag_n1=n1,
        after_jump_flag_n2=n2,
        min_diffs_single_pass=int(step.min_diffs_single_pass),
        minimum_groups=int(step.minimum_groups),
        minimum_sigclip_groups=int(step.minimum_sigclip_groups),
        only_use_ints=bool(step.only_use_ints),
    )


def _table_needed(nints: int, ngroups: int, p: kern.JumpParams, dn1: float, dn2: float) -> bool:
    """Can the fully-DO_NOT_USE groups change the result? (If not, skip that reduction.)

    With one integration, a skipped exposure and an iterative run give the same flags (no pixel
    has two usable differences, so every jump amplitude is 0 or NaN): only the single pass, the
    sigma-clip count over all groups and after-jump flagging with a threshold <= 0 DN (which can
    act on JUMP_DET flags already in the input) need it.
    """
    if p.only_use_ints and nints >= p.minimum_sigclip_groups:
        return False
    if nints > 1:
        return True
    if (p.after_jump_flag_n1 > 0 and dn1 <= 0) or (p.after_jump_flag_n2 > 0 and dn2 <= 0):
        return True
    if p.min_diffs_single_pass >= 0 and ngroups - 1 >= p.min_diffs_single_pass:
        return True
    return not p.only_use_ints and nints * ngroups >= p.minimum_sigclip_groups


class JumpStep(Step):
    """Detect jumps (cosmic rays) in each ramp with the two-point difference method."""

    class_alias = "jump"
    spec = """
        rejection_threshold = float(default=4.0,min=0) # CR sigma rejection threshold
        three_group_rejection_threshold = float(default=6.0,min=0) # CR sigma rejection threshold
        four_group_rejection_threshold = float(default=5.0,min=0) # CR sigma rejection threshold
        maximum_cores = string(default='1') # accepted for compatibility; Dask's workers set parallelism
        flag_4_neighbors = boolean(default=True) # flag the four perpendicular neighbors of each CR
        max_jump_to_flag_neighbors = float(default=1000) # maximum jump sigma that will trigger neighbor flagging
        min_jump_to_flag_neighbors = float(default=10) # minimum jump sigma that will trigger neighbor flagging
        after_jump_flag_dn1 = float(default=0) # 1st flag groups after jump above DN threshold
        after_jump_flag_time1 = float(default=0) # 1st flag groups after jump groups within specified time
        after_jump_flag_dn2 = float(default=0) # 2nd flag groups after jump above DN threshold
        after_jump_flag_time2 = float(default=0) # 2nd flag groups after jump groups within specified time
        expand_large_events = boolean(default=False) # Turns on Snowball detector for NIR detectors
        min_sat_area = float(default=1.0) # minimum required area for the central saturation of snowballs
        min_jump_area = float(default=5.0) # minimum area to trigger large events processing
        expand_factor = float(default=2.0) # The expansion factor for the enclosing circles or ellipses
        use_ellipses = boolean(default=False) # deprecated
        sat_required_snowball = boolean(default=True) # Require the center of snowballs to be saturated
        min_sat_radius_extend = float(default=2.5) # The min radius of the sat core to trigger the extension of the core
        sat_expand = integer(default=2) # Number of pixels to add to the radius of the saturated core of snowballs
        edge_size = integer(default=25) # Size of region on the edges of NIR detectors where a sat core is not required
        mask_snowball_core_next_int = boolean(default=True) # Flag saturated cores of snowballs in the next integration?
        snowball_time_masked_next_int = integer(default=4000) # Seconds over which snowball cores are flagged in the next integration
        find_showers = boolean(default=False) # Turn on shower flagging for MIRI
        max_shower_amplitude = float(default=4) # Maximum MIRI shower amplitude in DN/s
        extend_snr_threshold = float(default=1.2) # The SNR minimum for detection of extended showers in MIRI
        extend_min_area = integer(default=90) # Min area of emission after convolution for the detection of showers
        extend_inner_radius = float(default=1) # Inner radius of the ring_2D_kernel used for convolution
        extend_outer_radius = float(default=2.6) # Outer radius of the ring_2D_Kernel used for convolution
        extend_ellipse_expand_ratio = float(default=1.1) # Expand the radius of the ellipse fit to the extended emission
        time_masked_after_shower = float(default=15) # Seconds to flag as jump after a detected extended emission
        min_diffs_single_pass = integer(default=-1) # differences needed to flag all outliers in one pass (-1: always iterate; jwst 3.x uses 10)
        max_extended_radius = integer(default=200) # The maximum radius of an extended snowball or shower
        minimum_groups = integer(default=3) # The minimum number of groups to perform jump detection using sigma clipping
        minimum_sigclip_groups = integer(default=100) # The minimum number of groups to switch to sigma clipping
        only_use_ints = boolean(default=True) # In sigclip only compare the same group across ints, if False compare all groups
    """  # noqa: E501
    reference_file_types = ("gain", "readnoise")

    def process(self, ds: xr.Dataset) -> xr.Dataset:
        """Flag jumps; returns the Dataset with new GROUPDQ and PIXELDQ (SCI and ERR untouched)."""
        nints, ngroups = ds.sizes["integration"], ds.sizes["group"]
        if ngroups <= 2:
            self.log.warning("Cannot apply jump detection when NGROUPS<=2; jump step will be skipped")
            return ds.jwst.set_cal_step("jump", "SKIPPED")
        gref = self.get_reference_dataset(ds, "gain")
        rref = self.get_reference_dataset(ds, "readnoise")
        if gref is None or rref is None:
            self.log.warning("No GAIN or READNOISE reference file; jump step skipped")
            return ds.jwst.set_cal_step("jump", "SKIPPED")
        self.log.info("CR rejection threshold = %g sigma", self.rejection_threshold)
        meta = ds.jwst.meta
        params = jump_params(self, meta, ngroups)
        gain = ref_array(gref, "SCI", ds, "gain", np.float32)
        rn = ref_array(rref, "SCI", ds, "readnoise", np.float32)
        sci, gdq = _ramp_arrays(ds, gain)
        table = None
        static_mode = kern.frame_mode(np.zeros((nints, ngroups), bool), params)
        if _table_needed(nints, ngroups, params, self.after_jump_flag_dn1, self.after_jump_flag_dn2):
            # a pass of its own, then the tiles stream (see steps._two_pass)
            table, ds = frame_statistic([gdq], _dnu_table, ds)
            sci, gdq = _ramp_arrays(ds, gain)
        e1 = e2 = None
        if params.after_jump_flag_n1 > 0 or params.after_jump_flag_n2 > 0:
            g_whole = _whole(gain)
            e1 = da.from_delayed(
                dask.delayed(kern.after_jump_threshold)(self.after_jump_flag_dn1, g_whole), (), float
            )
            e2 = da.from_delayed(
                dask.delayed(kern.after_jump_threshold)(self.after_jump_flag_dn2, g_whole), (), float
            )
        args = [sci, _4D, gdq, _4D, gain, "yx", rn, "yx"]
        args += [table, _IJ if table is not None else None]
        args += [e1, "" if e1 is not None else None, e2, "" if e2 is not None else None]
        packed = da.blockwise(
            _stage_a,
            _4D,
            *args,
            dtype=np.uint16,
            params=params,
            static_mode=static_mode,
            concatenate=True,
        )
        full = None
        if static_mode == kern.MODE_SIGMA_CLIP:
            # the first pass computes every tile's per-pixel pass anyway: it also keeps what each
            # tile's edges tell its neighbours, so the tiles of the second pass are finished on
            # their own and none waits in memory for a neighbour's per-pixel pass
            def statistics(packed_copy):
                info = da.map_blocks(
                    _block_statistics, packed_copy, dtype=object, chunks=_one_per_block(packed_copy)
                )
                tables = da.map_blocks(
                    _table_of, info, dtype=bool, chunks=((nints,), (ngroups,), *_one_per_block(info)[2:])
                )
                return _whole(tables.all(axis=(2, 3))), info

            (full, info), (ds, packed) = frame_statistic([packed], statistics, (ds, packed))
            sci, _ = _ramp_arrays(ds, gain)
            new_gdq = _finish_from_edges(packed, full, info, params)
        elif (
            table is not None
            and not params.only_use_ints
            and nints * ngroups >= params.minimum_sigclip_groups
        ):

            def fully_flagged(packed_copy):
                f = _whole(da.all((packed_copy & np.uint16(FLAGS["JUMP_DET"] | _DNU)) != 0, axis=(2, 3)))
                if static_mode != kern.MODE_SIGMA_CLIP:
                    # only a sigma-clip run un-flags lone jumps in fully flagged groups
                    f = da.map_blocks(_only_if_sigclip, f, table, params=params, dtype=bool)
                return f

            # a pass of its own (recomputing the per-pixel pass), then the tiles stream
            full, (ds, packed) = frame_statistic([packed], fully_flagged, (ds, packed))
            sci, _ = _ramp_arrays(ds, gain)
        if static_mode != kern.MODE_SIGMA_CLIP:
            halo = da.overlap.overlap(packed, depth={0: 0, 1: 0, 2: 1, 3: 1}, boundary="none")
            extra = [] if full is None else [full[:, :, None, None]]  # broadcast to every tile
            new_gdq = da.map_blocks(
                _stage_b, halo, *extra, chunks=packed.chunks, dtype=np.uint8, params=params
            )
        pdq_in = ds["PIXELDQ"].data
        if not isinstance(pdq_in, da.Array):
            pdq_in = da.from_array(np.asarray(pdq_in), chunks=gain.chunks)
        pdq = da.map_blocks(kern.flag_bad_gain, pdq_in.rechunk(gain.chunks), gain, dtype=np.uint32)
        if self.expand_large_events or self.find_showers:
            new_gdq = self._large_events(ds, sci, new_gdq, pdq, gain, rn, params)
        out = ds.copy()
        out["GROUPDQ"] = ds["GROUPDQ"].copy(data=new_gdq)
        out["PIXELDQ"] = ds["PIXELDQ"].copy(data=pdq)
        return out.jwst.set_cal_step("jump")

    def _large_events(self, ds, sci, gdq, pdq, gain, rn, params) -> da.Array:
        """Snowballs / showers: one whole-exposure task, then back to the tiles."""
        meta = ds.jwst.meta
        gtime = meta.get_path("exposure.group_time")
        if not gtime:
            raise ParameterError(
                "jump: snowball/shower flagging needs meta.exposure.group_time (keyword TGROUP), absent"
            )
        lp = big.LargeEventParams.from_step(self, float(gtime), params.nframes)
        chunks = gdq.chunks
        whole = _whole(gdq)
        if self.expand_large_events:
            whole = da.map_blocks(big.flag_snowballs, whole, params=lp, dtype=np.uint8)
        if self.find_showers:
            whole = da.map_blocks(
                big.flag_showers_block,
                _whole(sci),
                whole,
                _whole(pdq),
                _whole(gain),
                _whole(rn),
                params=lp,
                dtype=np.uint8,
            )
        return whole.rechunk(chunks)


def _ramp_arrays(ds: xr.Dataset, gain: da.Array) -> tuple[da.Array, da.Array]:
    """SCI and GROUPDQ as dask arrays with every integration and group of a tile in a block."""
    sci = ds["SCI"].data
    gdq = ds["GROUPDQ"].data
    if not isinstance(sci, da.Array):
        sci = _as_dask(sci, gain)
        gdq = _as_dask(gdq, gain)
    # every integration and group of a pixel in one block (ramp chunks already are)
    sci = sci.rechunk({0: -1, 1: -1, 2: gain.chunks[0], 3: gain.chunks[1]})
    return sci, gdq.rechunk(sci.chunks)


def _dnu_table(gdq: da.Array) -> da.Array:
    """The (nints, ngroups) table of groups that are DO_NOT_USE in every pixel."""
    return _whole(da.all((gdq & np.uint8(_DNU)) != 0, axis=(2, 3)))


def _only_if_sigclip(full, table, *, params):
    if kern.frame_mode(table, params) == kern.MODE_SIGMA_CLIP:
        return full
    return np.zeros_like(full)


def _as_dask(arr, like: da.Array) -> da.Array:
    """A numpy ramp-shaped array as dask, tiled like the (y, x) reference array ``like``."""
    chunks = (*((n,) for n in arr.shape[:-2]), like.chunks[0], like.chunks[1])
    return da.from_array(np.asarray(arr), chunks=chunks)
