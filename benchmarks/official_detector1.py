"""Run the official JWST Detector1Pipeline offline on raw exposures, for parity and timing.

Run it with the interpreter of an environment that has the official ``jwst`` package (it is a
benchmark dependency only, never imported by jwst_dask):

    python official_detector1.py --refs refs.json --output-dir OUT [--max-cores all] \
        [--skip persistence ipc] [--save-calibrated-ramp] FILE_uncal.fits [...]

``refs.json`` maps reference types to files (``{"dark": "/path/..fits", ...}``); every reference type
of every step that runs is overridden (a type missing from the map is overridden with "N/A"), so no
CRDS server or cache content is needed. The environment recipe (server_config, serverless CRDS,
STPIPE_DISABLE_CRDS_STEPPARS) follows the official pipeline's documented offline use. Prints one JSON
line with the wall time of each exposure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _offline_crds_env() -> None:
    """A minimal CRDS cache and serverless settings, set before jwst/crds are imported."""
    root = Path(tempfile.mkdtemp(prefix="official_crds_"))
    cfg = root / "config" / "jwst"
    cfg.mkdir(parents=True)
    (cfg / "server_config").write_text(
        repr(
            {
                "observatory": "jwst",
                "latest_context": "jwst_0001.pmap",
                "operational_context": "jwst_0001.pmap",
                "bad_files_list": [],
                "force_remote_mode": False,
                "last_synced": "2024-01-01 00:00:00",
            }
        )
    )
    (cfg / "ref_cache_subdir_mode").write_text("instrument")
    os.environ.update(
        CRDS_PATH=str(root),
        CRDS_MODE="local",
        CRDS_CONTEXT="jwst_0001.pmap",
        CRDS_SERVER_URL="https://jwst-serverless-mode.stsci.edu",
        CRDS_READONLY_CACHE="1",
        STPIPE_DISABLE_CRDS_STEPPARS="true",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--refs", required=True, help="JSON file: reference type -> path")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-cores", default="all", help="maximum_cores for jump and ramp_fit")
    parser.add_argument("--skip", nargs="*", default=["persistence", "ipc"], help="steps to skip")
    parser.add_argument("--steps", default="{}", help="JSON: extra per-step parameters")
    parser.add_argument("--save-calibrated-ramp", action="store_true", help="also save the _ramp product")
    args = parser.parse_args(argv)

    _offline_crds_env()
    from jwst.pipeline import Detector1Pipeline  # after the CRDS environment is set

    refs = json.loads(Path(args.refs).read_text())
    extra = json.loads(args.steps)
    probe = Detector1Pipeline()
    steps: dict[str, dict] = {}
    for name in probe.step_defs:
        step = getattr(probe, name)
        pars: dict = {"skip": name in args.skip or step.skip}
        if name in args.skip:
            pars["skip"] = True
        if not pars["skip"]:
            for reftype in step.reference_file_types:
                pars[f"override_{reftype}"] = refs.get(reftype, "N/A")
        if name in ("jump", "ramp_fit"):
            pars["maximum_cores"] = args.max_cores
        pars.update(extra.get(name, {}))
        steps[name] = pars

    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    timings = {}
    for path in args.files:
        t0 = time.perf_counter()
        Detector1Pipeline.call(
            path,
            output_dir=args.output_dir,
            save_results=True,
            save_calibrated_ramp=args.save_calibrated_ramp,
            steps=steps,
        )
        timings[Path(path).name] = time.perf_counter() - t0
    print(json.dumps({"wall_seconds": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
