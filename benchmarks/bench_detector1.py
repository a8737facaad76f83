"""Stage 1 against the official pipeline: wall time, peak memory and parity of the products.

Usage::

    python benchmarks/bench_detector1.py --workdir DIR [--official-python PY] [--quick]
        [--no-tso] [--tso-nints 100] [--report]

1. Simulates the nircam-mosaic preset (4 full-frame 2048x2048 exposures, 10 groups, 1 integration;
   ``--quick``: 2 exposures cut to 256x256) into ``DIR/mosaic``, reusing files already there.
2. Selects the reference files with :func:`jwst_dask.refs.best_references` and writes them to
   ``DIR/refs.json``; both pipelines override every reference type with them.
3. Runs, each as a subprocess measured with :func:`_measure.run_measured` (wall time, peak RSS
   summed over the process tree): the official Detector1Pipeline on all exposures in one process
   (``maximum_cores='all'``), and ours on all exposures in one graph on the embedded local cluster
   (``_ours_detector1.py``); once saving the ramp after jump (for the JUMP_DET comparison) and once
   without it.
4. Prints the ratios ours / official (targets: time <= 1/5, memory <= 1/3) and the parity figures
   of each exposure (:func:`_measure.rate_parity`, :func:`_measure.jump_parity`).
5. The same parity on one nircam-tso exposure (``--tso-nints`` integrations), rate and rateints.

The official interpreter (an environment with ``jwst`` installed) comes from ``--official-python``
or ``$JWST_OFFICIAL_PYTHON``. Both pipelines run with the steps configured alike: persistence and
ipc skipped, jwst 3.0's defaults on our side (``_ours_detector1.JWST3_STEPS``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import Measured, jump_parity, rate_parity, run_measured  # noqa: E402

#: Reference types the official Detector1Pipeline prefetches for near-infrared exposures.
OFFICIAL_REFTYPES = (
    "mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise",
    "ipc", "refpix", "sirskernel", "rscd", "reset",
)  # fmt: skip

TARGETS = {
    "SCI": 0.999,
    "ERR": 0.999,
    "VAR_POISSON": 0.999,
    "VAR_RNOISE": 0.999,
    "DQ": 0.999,
    "JUMP_DET": 0.995,
}


def simulate_once(preset: str, outdir: Path, options: dict) -> list[Path]:
    """The preset's ``_uncal`` files in ``outdir``: reused when a previous run made them with the
    same options, else simulated (in a subprocess, so this process stays small)."""
    stamp = outdir / "simulate_options.json"
    wanted = json.dumps({"preset": preset, **options}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == wanted:
        files = sorted(outdir.glob("*_uncal.fits"))
        if files:
            return files
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob("*_uncal.fits"):
        old.unlink()
    code = (
        "import sys, json; from jwst_dask.simulate import simulate; "
        "simulate(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]))"
    )
    print(f"simulating {preset} {options} ...", flush=True)
    m = run_measured([sys.executable, "-c", code, preset, str(outdir), json.dumps(options)])
    if m.returncode:
        raise SystemExit(f"simulation failed:\n{m.stderr[-3000:]}")
    print(f"  simulated in {m.wall_seconds:.1f} s", flush=True)
    stamp.write_text(wanted)
    return sorted(outdir.glob("*_uncal.fits"))


def _cut_dark(refs_file: Path, size: int) -> None:
    """A ``size`` cut-out keeps the full-frame readout but the official dark step does not cut the
    DARK reference to the science subarray (it expects one per subarray): write a cut-out copy."""
    refs = json.loads(refs_file.read_text())
    src = Path(refs["dark"])
    out = refs_file.with_name(f"dark_cut{size}.fits")
    with fits.open(src) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.is_image and hdu.data.ndim >= 2:
                hdu.data = hdu.data[..., :size, :size].copy()
        hdul[0].header.update(SUBARRAY="GENERIC", SUBSIZE1=size, SUBSIZE2=size)
        hdul.writeto(out, overwrite=True)
    refs["dark"] = str(out)
    refs_file.write_text(json.dumps(refs, indent=1))


def select_references(uncal: Path, out: Path) -> dict[str, str]:
    """Every reference type the official pipeline asks for, selected by our CRDS layer."""
    from jwst_dask.errors import ReferenceFileError
    from jwst_dask.io import open_product
    from jwst_dask.refs import best_references

    ds = open_product(uncal)
    refs: dict[str, str] = {}
    for reftype in OFFICIAL_REFTYPES:
        try:
            refs.update(best_references(ds, [reftype]))
        except ReferenceFileError:
            refs[reftype] = "N/A"
    out.write_text(json.dumps(refs, indent=1))
    return refs


def run_official(python: str, files: list[Path], refs: Path, outdir: Path, ramp: bool) -> Measured:
    """The official Detector1Pipeline on all ``files`` in one process."""
    cmd = [python, str(HERE / "official_detector1.py"), "--refs", str(refs), "--output-dir", str(outdir)]
    cmd += ["--max-cores", "all", "--skip", "persistence", "ipc"]
    cmd += ["--steps", json.dumps({"jump": {"min_diffs_single_pass": 10}})]
    if ramp:
        cmd.append("--save-calibrated-ramp")
    return _checked(run_measured(cmd + [str(f) for f in files]), "official")


def run_ours(
    files: list[Path],
    refs: Path,
    outdir: Path,
    ramp: bool,
    report: Path | None = None,
    chunks: str = "",
    scheduler: str = "cluster",
) -> Measured:
    """Ours on all ``files`` in one graph."""
    cmd = [sys.executable, str(HERE / "_ours_detector1.py"), "--refs", str(refs), "--output-dir", str(outdir)]
    cmd += ["--scheduler", scheduler]
    if chunks:
        cmd += ["--chunks", chunks]
    if ramp:
        cmd.append("--save-calibrated-ramp")
    if report:
        cmd += ["--report", str(report)]
    return _checked(run_measured(cmd + [str(f) for f in files]), "ours")


def _checked(m: Measured, label: str) -> Measured:
    if m.returncode:
        raise SystemExit(f"{label} run failed (exit {m.returncode}):\n{m.stderr[-4000:]}")
    return m


def _arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    with fits.open(path, memmap=False) as hdul:
        return {n: np.asarray(hdul[n].data) for n in names if n in hdul}


RATE_EXT = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")


def parity(ours_dir: Path, official_dir: Path, root: str, suffixes: tuple[str, ...]) -> dict:
    """Parity figures of one exposure's products (rate / rateints / JUMP_DET from the ramp)."""
    figures: dict = {}
    for suffix in suffixes:
        ours, off = ours_dir / f"{root}_{suffix}.fits", official_dir / f"{root}_{suffix}.fits"
        if not (ours.is_file() and off.is_file()):
            figures[suffix] = f"missing ({'ours' if not ours.is_file() else 'official'})"
            continue
        if suffix == "ramp":
            figures["JUMP_DET"] = jump_parity(
                _arrays(ours, ("GROUPDQ",))["GROUPDQ"], _arrays(off, ("GROUPDQ",))["GROUPDQ"]
            )
        else:
            figures[suffix] = rate_parity(_arrays(ours, RATE_EXT), _arrays(off, RATE_EXT))
    return figures


def _fmt_parity(name: str, figures: dict) -> str:
    parts = [name]
    for key, value in figures.items():
        if isinstance(value, dict):
            parts.append(
                f"{key}: "
                + " ".join(
                    f"{k}={v * 100:.3f}%{'' if k not in TARGETS or v >= TARGETS[k] else '(!)'}"
                    for k, v in value.items()
                )
            )
        elif isinstance(value, float):
            parts.append(f"{key}={value * 100:.3f}%{'' if value >= TARGETS.get(key, 0) else '(!)'}")
        else:
            parts.append(f"{key}: {value}")
    return "  " + " | ".join(parts)


def _line(label: str, ours: Measured, official: Measured) -> str:
    return (
        f"{label}: official {official.wall_seconds:.1f} s ({official.cpu_seconds:.1f} CPU-s), "
        f"{official.peak_rss_bytes / 2**30:.2f} GiB; ours {ours.wall_seconds:.1f} s "
        f"({ours.cpu_seconds:.1f} CPU-s), {ours.peak_rss_bytes / 2**30:.2f} GiB; "
        f"time ratio ours/official {ours.wall_seconds / official.wall_seconds:.3f} (target <= 0.2), "
        f"CPU ratio {ours.cpu_seconds / official.cpu_seconds:.3f}, "
        f"memory ratio {ours.peak_rss_bytes / official.peak_rss_bytes:.3f} (target <= 0.333)"
    )


def _ours_json(m: Measured) -> dict:
    for line in reversed(m.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--official-python", default=os.environ.get("JWST_OFFICIAL_PYTHON"))
    ap.add_argument("--quick", action="store_true", help="2 exposures of 256x256 instead of 4 full frames")
    ap.add_argument("--no-mosaic", action="store_true", help="only the TSO parity")
    ap.add_argument("--no-tso", action="store_true", help="skip the nircam-tso parity")
    ap.add_argument("--tso-nints", type=int, default=100)
    ap.add_argument("--no-plain", action="store_true", help="skip the runs without the saved ramp")
    ap.add_argument(
        "--chunks", default="128,2048", help="our input pixel chunks 'Y,X' ('' for the default policy)"
    )
    ap.add_argument("--report", action="store_true", help="write a Dask performance report of our run")
    args = ap.parse_args(argv)
    if not args.official_python:
        ap.error("give --official-python or set JWST_OFFICIAL_PYTHON")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {}

    if not args.no_mosaic:
        options = {"nexp": 2, "size": 256} if args.quick else {"nexp": 4}
        options.update(write_asn=False)
        files = simulate_once("nircam-mosaic", work / ("mosaic_quick" if args.quick else "mosaic"), options)
        refs = work / ("refs_mosaic_quick.json" if args.quick else "refs_mosaic.json")
        select_references(files[0], refs)
        if args.quick:
            _cut_dark(refs, options["size"])
        tag = "quick" if args.quick else "full"
        chunks = args.chunks if not args.quick else ""
        print(f"nircam-mosaic: {len(files)} exposures, {tag}", flush=True)
        off_r = run_official(args.official_python, files, refs, work / f"official_{tag}_ramp", ramp=True)
        report = work / f"ours_{tag}_report.html" if args.report else None
        ours_r = run_ours(files, refs, work / f"ours_{tag}_ramp", ramp=True, report=report, chunks=chunks)
        print(_line("with the ramp saved", ours_r, off_r), flush=True)
        tasks = _ours_json(ours_r).get("task_seconds")
        if tasks:
            print("  ours, task seconds by kind:", json.dumps(tasks)[:600], flush=True)
        summary["with_ramp"] = _summary(ours_r, off_r)
        if not args.no_plain:
            off_p = run_official(args.official_python, files, refs, work / f"official_{tag}", ramp=False)
            ours_p = run_ours(files, refs, work / f"ours_{tag}", ramp=False, chunks=chunks)
            print(_line("rate only", ours_p, off_p), flush=True)
            summary["rate_only"] = _summary(ours_p, off_p)
            ours_t = run_ours(
                files, refs, work / f"ours_{tag}_threads", ramp=False, chunks=chunks, scheduler="threads"
            )
            print(_line("rate only, ours on the threaded scheduler", ours_t, off_p), flush=True)
            summary["rate_only_threads"] = _summary(ours_t, off_p)
        print("parity (targets: SCI, ERR, VAR_*, DQ >= 99.9%; JUMP_DET >= 99.5%):")
        summary["parity"] = {}
        for f in files:
            root = f.name.removesuffix("_uncal.fits")
            fig = parity(work / f"ours_{tag}_ramp", work / f"official_{tag}_ramp", root, ("rate", "ramp"))
            summary["parity"][root] = fig
            print(_fmt_parity(root, fig), flush=True)

    if not args.no_tso:
        nints = args.tso_nints
        files = simulate_once("nircam-tso", work / f"tso_{nints}", {"nints": nints, "write_asn": False})
        refs = work / "refs_tso.json"
        select_references(files[0], refs)
        off = run_official(args.official_python, files, refs, work / f"official_tso_{nints}", ramp=True)
        ours = run_ours(files, refs, work / f"ours_tso_{nints}", ramp=True)
        print(f"nircam-tso, {nints} integrations (64x64):")
        print(_line("  tso with the ramp saved", ours, off), flush=True)
        summary["tso"] = _summary(ours, off)
        for f in files:
            root = f.name.removesuffix("_uncal.fits")
            fig = parity(
                work / f"ours_tso_{nints}", work / f"official_tso_{nints}", root, ("rate", "rateints", "ramp")
            )
            summary["tso"]["parity"] = fig
            print(_fmt_parity(root, fig), flush=True)
    (work / "bench_detector1.json").write_text(json.dumps(summary, indent=1))
    return 0


def _summary(ours: Measured, official: Measured) -> dict:
    return {
        "official_seconds": official.wall_seconds,
        "ours_seconds": ours.wall_seconds,
        "official_cpu_seconds": official.cpu_seconds,
        "ours_cpu_seconds": ours.cpu_seconds,
        "official_peak_bytes": official.peak_rss_bytes,
        "ours_peak_bytes": ours.peak_rss_bytes,
        "time_ratio": ours.wall_seconds / official.wall_seconds,
        "memory_ratio": ours.peak_rss_bytes / official.peak_rss_bytes,
        "ours_detail": _ours_json(ours),
    }


if __name__ == "__main__":
    sys.exit(main())
