"""I/O benchmark: lazy open of a full-frame uncal exposure, and block-wise writes from a lazy graph.

1. Generates a 2048 x 2048, 10-group, 4-integration uncal file block by block (never in memory)
   through ``write_product``.
2. Times ``jwst_dask.open`` on it and shows how many bytes the open read (``rchar`` of
   /proc/self/io before and after) against the file size: the pixels are not read.
3. Writes a rate-sized product (2048 x 2048 float32, 5 extensions) and a ramp-sized product
   (2048 x 2048 x 10 x 4 float32 SCI + uint8 GROUPDQ + uint32 PIXELDQ) from lazy graphs over the
   uncal file, printing the wall time and this process's peak memory (RSS sampled in a thread)
   beside the array sizes and chunk size x workers.

Run: ``python benchmarks/bench_io.py [--workers 2] [--keep DIR]``. Takes well under a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import psutil
import xarray as xr

import jwst_dask
from jwst_dask.io import write_product

NINTS, NGROUPS, NY, NX = 4, 10, 2048, 2048
MiB = 2**20


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = self.base = 0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.005)

    def __enter__(self):
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def rchar() -> int:
    """Bytes this process has read through read()-like calls so far (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _ramp_block(block_info=None):
    """Synthetic uncal block: bias + a ramp in group + a pixel pattern (deterministic)."""
    info = block_info[None]
    (i0, i1), (g0, g1), (y0, y1), (x0, x1) = info["array-location"]
    ints = np.arange(i0, i1)[:, None, None, None]
    groups = np.arange(g0, g1)[None, :, None, None]
    yy = np.arange(y0, y1)[None, None, :, None]
    xx = np.arange(x0, x1)[None, None, None, :]
    return (10000 + 50 * groups + 3 * ints + (yy + 2 * xx) % 97).astype(np.uint16)


def make_uncal(path: Path) -> None:
    chunks = da.core.normalize_chunks((NINTS, NGROUPS, 512, 512), (NINTS, NGROUPS, NY, NX))
    sci = da.map_blocks(_ramp_block, chunks=chunks, dtype=np.uint16, meta=np.empty((0,) * 4, np.uint16))
    meta = {
        "instrument": {"name": "NIRCAM", "detector": "NRCA1", "filter": "F200W", "pupil": "CLEAR"},
        "exposure": {"type": "NRC_IMAGE", "ngroups": NGROUPS, "nints": NINTS, "readpatt": "RAPID"},
        "subarray": {"name": "FULL", "xstart": 1, "ystart": 1, "xsize": NX, "ysize": NY},
        "observation": {"date": "2024-03-01", "time": "12:00:00"},
    }
    ds = xr.Dataset(
        {"SCI": (("integration", "group", "y", "x"), sci)},
        attrs={"meta": meta, "model_type": "Level1bModel", "product": "uncal"},
    )
    write_product(ds, path)


def rate_graph(uncal: xr.Dataset) -> xr.Dataset:
    sci = uncal.SCI.data.astype(np.float32)
    slopes = (sci[:, -1] - sci[:, 0]) / np.float32(NGROUPS - 1)
    rate = slopes.mean(axis=0)
    var = da.maximum(rate, 0) / np.float32(NINTS * NGROUPS)
    dims = ("y", "x")
    return xr.Dataset(
        {
            "SCI": (dims, rate),
            "ERR": (dims, da.sqrt(var + 1.0)),
            "DQ": (dims, (rate < 0).astype(np.uint32)),
            "VAR_POISSON": (dims, var),
            "VAR_RNOISE": (dims, da.ones_like(var)),
        },
        attrs={**uncal.attrs, "model_type": "ImageModel", "product": "rate"},
    )


def ramp_graph(uncal: xr.Dataset) -> xr.Dataset:
    sci = uncal.SCI.data
    return xr.Dataset(
        {
            "SCI": (uncal.SCI.dims, sci.astype(np.float32) - np.float32(10000)),
            "PIXELDQ": (("y", "x"), da.zeros((NY, NX), dtype=np.uint32, chunks=sci.chunksize[2:])),
            "GROUPDQ": (uncal.SCI.dims, (sci > 10400).astype(np.uint8)),
        },
        attrs={**uncal.attrs, "model_type": "RampModel", "product": "ramp"},
    )


def _nbytes(ds: xr.Dataset) -> int:
    return sum(v.nbytes for v in ds.data_vars.values())


def _chunk_bytes(ds: xr.Dataset) -> int:
    return max(int(np.prod(v.data.chunksize)) * v.dtype.itemsize for v in ds.data_vars.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="threads of the local scheduler")
    parser.add_argument("--keep", type=Path, default=None, help="write into this folder and keep the files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_io_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with dask.config.set(scheduler="threads", num_workers=args.workers):
            uncal_path = folder / "jw01234001001_01101_00001_nrca1_uncal.fits"
            t0 = time.perf_counter()
            make_uncal(uncal_path)
            size = uncal_path.stat().st_size
            print(f"generated {uncal_path.name}: {size / MiB:.0f} MiB in {time.perf_counter() - t0:.2f} s")

            t0 = time.perf_counter()
            jwst_dask.open(
                uncal_path
            )  # first open: module imports (astropy.io.fits, ...) and the schema cache
            cold = time.perf_counter() - t0
            r0, t0 = rchar(), time.perf_counter()
            uncal = jwst_dask.open(uncal_path)
            dt, read = time.perf_counter() - t0, rchar() - r0
            print(
                f"open: {dt * 1000:.1f} ms, read {read / 1024:.1f} KiB of a {size / MiB:.0f} MiB file "
                f"({100 * read / size:.4f} %); SCI {uncal.SCI.shape} {uncal.SCI.dtype} "
                f"chunks {uncal.SCI.data.chunksize} (first open in this process: {cold:.2f} s)"
            )

            for label, ds in (("rate", rate_graph(uncal)), ("ramp", ramp_graph(uncal))):
                out = folder / f"jw01234001001_01101_00001_nrca1_{label}.fits"
                with PeakRSS() as mem:
                    t0 = time.perf_counter()
                    write_product(ds, out)
                    dt = time.perf_counter() - t0
                print(
                    f"write {label}: {len(ds.data_vars)} extensions, {_nbytes(ds) / MiB:.0f} MiB of arrays, "
                    f"{out.stat().st_size / MiB:.0f} MiB file in {dt:.2f} s; peak RSS +"
                    f"{(mem.peak - mem.base) / MiB:.0f} MiB (process {mem.peak / MiB:.0f} MiB); chunks: "
                    f"uncal input {_chunk_bytes(uncal) / MiB:.0f} MiB, largest output "
                    f"{_chunk_bytes(ds) / MiB:.0f} MiB, x {args.workers} workers = "
                    f"{max(_chunk_bytes(ds), _chunk_bytes(uncal)) * args.workers / MiB:.0f} MiB"
                )
            back = jwst_dask.open(folder / "jw01234001001_01101_00001_nrca1_ramp.fits")
            probe = back.SCI[3, 9, 1000:1002, 2000:2002].values
            expect = _ramp_block({None: {"array-location": [(3, 4), (9, 10), (1000, 1002), (2000, 2002)]}})
            assert np.array_equal(probe, expect[0, 0].astype(np.float32) - 10000), "ramp values"
            print("spot check of the written ramp: OK")


if __name__ == "__main__":
    main()
