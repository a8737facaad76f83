"""Readout patterns and timing: frames per group, dropped frames, frame/group/integration times.

NIRCam patterns average ``nframes`` frames into a group and drop ``groupgap`` frames between groups
(the JWST documentation's readout-pattern table). The frame time of a NIRCam readout is
``((xsize / noutputs + 12) * (ysize + rowpad) + fullpad) * 10 us`` (12 extra pixel times per row,
one extra row for full frame and two for subarrays), which gives 10.73676 s for the full frame and
0.05016 s for SUB64P. MIRI FAST full frame is 2.77504 s. The GROUP and INT_TIMES tables of a raw
exposure follow from these times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jwst_dask.errors import ParameterError

__all__ = [
    "READOUT_PATTERNS",
    "Readout",
    "frame_time",
    "make_readout",
    "group_table",
    "int_times_table",
]

#: readout pattern -> (nframes, groupgap, maximum ngroups)
READOUT_PATTERNS: dict[str, tuple[int, int, int]] = {
    "RAPID": (1, 0, 10),
    "BRIGHT1": (1, 1, 10),
    "BRIGHT2": (2, 0, 10),
    "SHALLOW2": (2, 3, 10),
    "SHALLOW4": (4, 1, 10),
    "MEDIUM2": (2, 8, 10),
    "MEDIUM8": (8, 2, 10),
    "DEEP2": (2, 18, 20),
    "DEEP8": (8, 12, 20),
    # MIRI
    "FAST": (1, 0, 1000000),
    "SLOW": (1, 0, 1000000),
}

_MIRI_FULL_FRAME_TIME = {"FAST": 2.77504, "SLOW": 23.89119}
_SECONDS_PER_DAY = 86400.0


def frame_time(instrument: str, xsize: int, ysize: int, noutputs: int, readpatt: str = "RAPID") -> float:
    """Frame time in seconds of a readout of ``xsize`` x ``ysize`` pixels through ``noutputs`` amplifiers."""
    instrument = instrument.upper()
    if instrument == "NIRCAM":
        if noutputs == 4:
            rowpad, fullpad = 1, 0
        else:
            rowpad, fullpad = (3 if xsize <= 8 and ysize <= 8 else 2), 0
        return round(((xsize / noutputs + 12) * (ysize + rowpad) + fullpad) * 1e-5, 5)
    if instrument == "MIRI":
        full = _MIRI_FULL_FRAME_TIME.get(readpatt.upper())
        if full is None:
            raise ParameterError(f"MIRI readout pattern {readpatt!r} not supported (FAST, SLOW)")
        # MIRI reads 4 interleaved outputs; time scales with the number of pixels per output
        return round(full * (xsize * ysize) / (1032 * 1024), 5)
    raise ParameterError(f"instrument {instrument!r} not supported by the simulator (NIRCAM, MIRI)")


@dataclass(frozen=True)
class Readout:
    """The timing of one exposure (all times in seconds)."""

    readpatt: str
    nframes: int
    groupgap: int
    ngroups: int
    nints: int
    frame_time: float
    nresets_at_start: int = 1
    nresets_between_ints: int = 1
    drop_frames1: int = 0

    @property
    def group_time(self) -> float:
        """Time between the starts of consecutive groups: (nframes + groupgap) frames."""
        return (self.nframes + self.groupgap) * self.frame_time

    @property
    def frames_per_integration(self) -> int:
        """Frames read in an integration, from the first frame of group 1 to the last of the last group."""
        return self.ngroups * self.nframes + (self.ngroups - 1) * self.groupgap

    @property
    def integration_time(self) -> float:
        """Effective integration time (EFFINTTM): from the first to the last group, as in the keyword docs."""
        return ((self.ngroups * (self.nframes + self.groupgap)) - self.groupgap) * self.frame_time

    @property
    def exposure_time(self) -> float:
        """Effective exposure time (EFFEXPTM) = nints x integration time."""
        return self.nints * self.integration_time

    @property
    def integration_duration(self) -> float:
        """Wall time of one integration including its resets."""
        return (self.frames_per_integration + self.nresets_between_ints) * self.frame_time

    @property
    def duration(self) -> float:
        """Total wall time of the exposure (DURATION), resets included."""
        return (
            self.nresets_at_start - self.nresets_between_ints
        ) * self.frame_time + self.nints * self.integration_duration

    def frame_index(self) -> np.ndarray:
        """Array (ngroups, nframes) of the 0-based frame numbers averaged into each group."""
        g = np.arange(self.ngroups)[:, None] * (self.nframes + self.groupgap)
        return g + np.arange(self.nframes)[None, :]

    def group_mean_frame_time(self) -> np.ndarray:
        """Mean exposure time (s since the reset) of the frames averaged into each group."""
        return (self.frame_index().mean(axis=1) + 1.0) * self.frame_time

    def as_meta(self) -> dict:
        """The readout keywords of ``meta.exposure``."""
        return {
            "readpatt": self.readpatt,
            "nframes": self.nframes,
            "groupgap": self.groupgap,
            "ngroups": self.ngroups,
            "nints": self.nints,
            "frame_divisor": _frame_divisor(self.nframes),
            "frame_time": self.frame_time,
            "group_time": round(self.group_time, 6),
            "integration_time": round(self.integration_time, 6),
            "exposure_time": round(self.exposure_time, 6),
            "effective_exposure_time": round(self.exposure_time, 6),
            "measurement_time": round(self.nints * (self.ngroups - 1) * self.group_time, 6),
            "duration": round(self.duration, 6),
            "elapsed_exposure_time": round(self.duration, 6),
            "nresets_at_start": self.nresets_at_start,
            "nresets_between_ints": self.nresets_between_ints,
            "drop_frames1": self.drop_frames1,
            "drop_frames3": 0,
            "integration_start": 1,
            "integration_end": self.nints,
        }


def _frame_divisor(nframes: int) -> int:
    return 1 << int(np.ceil(np.log2(nframes))) if nframes > 1 else 1


def make_readout(
    instrument: str,
    readpatt: str,
    ngroups: int,
    nints: int,
    xsize: int,
    ysize: int,
    noutputs: int,
) -> Readout:
    """Readout timing for a pattern; raises ParameterError naming a bad pattern or group count."""
    readpatt = readpatt.upper()
    if readpatt not in READOUT_PATTERNS:
        raise ParameterError(f"unknown readout pattern {readpatt!r}; known: {', '.join(READOUT_PATTERNS)}")
    nircam_only = readpatt not in ("FAST", "SLOW")
    if (instrument.upper() == "MIRI") == nircam_only:
        raise ParameterError(f"readout pattern {readpatt!r} is not a {instrument.upper()} pattern")
    nframes, groupgap, maxgroups = READOUT_PATTERNS[readpatt]
    if not 1 <= int(ngroups) <= maxgroups:
        raise ParameterError(f"ngroups={ngroups} out of range 1..{maxgroups} for readout pattern {readpatt}")
    if int(nints) < 1:
        raise ParameterError(f"nints={nints} must be >= 1")
    tframe = frame_time(instrument, xsize, ysize, noutputs, readpatt)
    return Readout(readpatt, nframes, groupgap, int(ngroups), int(nints), tframe)


def group_table(readout: Readout, start_mjd: float, xsize: int, ysize: int) -> dict[str, np.ndarray]:
    """Columns of the GROUP table (one row per integration and group) in schema order and dtypes."""
    rows = []
    end_times = []
    for i in range(readout.nints):
        t0 = readout.nresets_at_start * readout.frame_time + i * readout.integration_duration
        for g in range(readout.ngroups):
            last_frame = g * (readout.nframes + readout.groupgap) + readout.nframes
            end_times.append(start_mjd + (t0 + last_frame * readout.frame_time) / _SECONDS_PER_DAY)
            rows.append((i + 1, g + 1))
    from astropy.time import Time

    end = np.array(end_times)
    iso = Time(end, format="mjd", scale="utc").isot if len(end) else np.array([], dtype="U26")
    day_of_year = np.array([Time(t, format="mjd").datetime.timetuple().tm_yday for t in end[:1]] * len(end))
    frac_ms = (end % 1.0) * _SECONDS_PER_DAY * 1000.0
    return {
        "integration_number": np.array([r[0] for r in rows], dtype=np.int32),
        "group_number": np.array([r[1] for r in rows], dtype=np.int16),
        "end_day": day_of_year.astype(np.int16),
        "end_milliseconds": np.floor(frac_ms).astype(np.int32),
        "end_submilliseconds": np.floor((frac_ms % 1.0) * 1000).astype(np.int16),
        "group_end_time": np.array([s[:26] for s in iso], dtype="S26"),
        "number_of_columns": np.full(len(rows), xsize, dtype=np.int16),
        "number_of_rows": np.full(len(rows), ysize, dtype=np.int16),
        "number_of_gaps": np.zeros(len(rows), dtype=np.int16),
        "completion_code_number": np.zeros(len(rows), dtype=np.int16),
        "completion_code_text": np.array(["Normal Completion"] * len(rows), dtype="S36"),
        "bary_end_time": end.copy(),
        "helio_end_time": end.copy(),
    }


def int_times_table(readout: Readout, start_mjd: float) -> dict[str, np.ndarray]:
    """Columns of the INT_TIMES table: start/mid/end MJD (UTC; TDB set equal) of each integration."""
    i = np.arange(readout.nints)
    t0 = readout.nresets_at_start * readout.frame_time + i * readout.integration_duration
    start = start_mjd + t0 / _SECONDS_PER_DAY
    end = start + readout.frames_per_integration * readout.frame_time / _SECONDS_PER_DAY
    mid = 0.5 * (start + end)
    return {
        "integration_number": (i + 1).astype(np.int32),
        "int_start_MJD_UTC": start,
        "int_mid_MJD_UTC": mid,
        "int_end_MJD_UTC": end,
        "int_start_BJD_TDB": start.copy(),
        "int_mid_BJD_TDB": mid.copy(),
        "int_end_BJD_TDB": end.copy(),
    }
