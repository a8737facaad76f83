"""Best-reference selection with the stock crds client on the project's offline cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import jwst_dask.refs.cache as refcache
from jwst_dask.errors import ReferenceFileError
from jwst_dask.meta import Meta
from jwst_dask.refs import best_references, ensure_local_cache


class StandInBuilder:
    """Writes a tiny FITS reference and records each call (reftype, selection, useafter)."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, dict, str, str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, reftype, selection, path, *, useafter):
        with self.lock:
            self.calls.append((reftype, dict(selection), Path(path).name, useafter))
        if self.fail:
            raise RuntimeError("no generator for this file")
        hdr = fits.Header()
        hdr["REFTYPE"] = reftype.upper()
        hdr["USEAFTER"] = useafter
        hdr["INSTRUME"] = selection["META.INSTRUMENT.NAME"]
        if Path(path).suffix == ".fits":
            fits.HDUList(
                [fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.ones((8, 8), np.float32), name="SCI")]
            ).writeto(path)
        else:
            Path(path).write_text("#ASDF stand-in\n")


def nircam_meta(**changes) -> dict:
    meta = {
        "instrument": {
            "name": "NIRCAM",
            "detector": "NRCA1",
            "filter": "F200W",
            "pupil": "CLEAR",
            "channel": "SHORT",
            "module": "A",
        },
        "exposure": {"type": "NRC_IMAGE", "readpatt": "RAPID", "noutputs": 4, "ngroups": 10},
        "subarray": {"name": "FULL"},
        "visit": {"tsovisit": False},
        "observation": {"date": "2024-03-01", "time": "12:00:00"},
    }
    for path, value in changes.items():
        node = meta
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return meta


def miri_meta() -> dict:
    return {
        "instrument": {"name": "MIRI", "detector": "MIRIMAGE", "filter": "F770W"},
        "exposure": {"type": "MIR_IMAGE", "readpatt": "FAST", "noutputs": 4, "ngroups": 10},
        "subarray": {"name": "FULL"},
        "visit": {"tsovisit": False},
        "observation": {"date": "2024-03-01", "time": "00:00:00"},
    }


@pytest.fixture
def builder(monkeypatch):
    stand_in = StandInBuilder()
    monkeypatch.setattr(refcache, "get_builder", lambda: stand_in)
    return stand_in


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty project cache private to one test, with no user CRDS settings."""
    for var in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JWST_DASK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "crds"


def names(refs: dict) -> dict:
    return {k: (v if v == "N/A" else Path(v).name) for k, v in refs.items()}


def test_nircam_full_and_sub64p_selection(no_network, project_cache, builder):
    full = best_references(nircam_meta(), ["mask", "superbias", "dark", "flat", "gain", "refpix"])
    assert names(full) == {
        "mask": "jwst_nircam_mask_0001.fits",
        "superbias": "jwst_nircam_superbias_0001.fits",
        "dark": "jwst_nircam_dark_0001.fits",
        "flat": "jwst_nircam_flat_0001.fits",
        "gain": "jwst_nircam_gain_0001.fits",
        "refpix": "N/A",
    }
    root = project_cache / "crds"
    for path in (p for p in full.values() if p != "N/A"):
        assert Path(path).is_absolute() and Path(path).is_file()
        assert Path(path).parent == root / "references" / "jwst" / "nircam"
    tso = nircam_meta(
        **{
            "exposure.type": "NRC_TSIMAGE",
            "subarray.name": "SUB64P",
            "exposure.noutputs": 1,
            "instrument.filter": "F210M",
            "visit.tsovisit": True,
        }
    )
    sub = names(best_references(tso, ["superbias", "dark", "mask", "gain", "tsophot", "flat"]))
    assert sub == {
        "superbias": "jwst_nircam_superbias_0002.fits",
        "dark": "jwst_nircam_dark_0002.fits",
        "mask": "jwst_nircam_mask_0002.fits",
        "gain": "jwst_nircam_gain_0002.fits",
        "tsophot": "jwst_nircam_tsophot_0001.asdf",
        "flat": "jwst_nircam_flat_0004.fits",
    }


def test_selection_by_filter(no_network, project_cache, builder):
    by_filter = {
        f: names(best_references(nircam_meta(**{"instrument.filter": f}), ["flat", "mask"]))
        for f in ("F150W", "F200W", "F210M")
    }
    assert by_filter["F150W"] == {"flat": "jwst_nircam_flat_0003.fits", "mask": "jwst_nircam_mask_0001.fits"}
    assert by_filter["F200W"] == {"flat": "jwst_nircam_flat_0001.fits", "mask": "jwst_nircam_mask_0001.fits"}
    assert by_filter["F210M"] == {"flat": "jwst_nircam_flat_0004.fits", "mask": "jwst_nircam_mask_0002.fits"}


def test_selection_by_useafter(no_network, project_cache, builder):
    before = best_references(nircam_meta(**{"observation.date": "2024-05-31"}), ["flat"])
    after = best_references(nircam_meta(**{"observation.date": "2024-06-02"}), ["flat"])
    assert Path(before["flat"]).name == "jwst_nircam_flat_0001.fits"
    assert Path(after["flat"]).name == "jwst_nircam_flat_0002.fits"
    with pytest.raises(ReferenceFileError, match=r"flat.*DATE-OBS=2010-01-01"):
        best_references(nircam_meta(**{"observation.date": "2010-01-01"}), ["flat"])


def test_not_applicable_types(no_network, project_cache, builder):
    nrc = best_references(nircam_meta(), ["refpix", "reset", "rscd", "specwcs", "tsophot"])
    assert set(nrc.values()) == {"N/A"}  # tsophot: NRC_IMAGE is 'N/A' inside the rmap
    miri = best_references(miri_meta(), ["superbias", "persat", "reset", "rscd", "flat"])
    assert miri["superbias"] == miri["persat"] == "N/A"
    assert names(miri)["reset"] == "jwst_miri_reset_0001.fits"
    assert names(miri)["flat"] == "jwst_miri_flat_0001.fits"


def test_builder_gets_match_tuple_and_useafter(no_network, fresh_cache, builder):
    best_references(nircam_meta(**{"observation.date": "2024-07-01"}), ["flat", "dark"])
    calls = {c[2]: c for c in builder.calls}
    reftype, selection, _, useafter = calls["jwst_nircam_flat_0002.fits"]
    assert reftype == "flat" and useafter == "2024-06-01T00:00:00"
    assert selection == {
        "META.INSTRUMENT.NAME": "NIRCAM",
        "META.INSTRUMENT.DETECTOR": "NRCA1",
        "META.INSTRUMENT.FILTER": "F200W",
        "META.INSTRUMENT.PUPIL": "CLEAR",
    }
    reftype, selection, _, useafter = calls["jwst_nircam_dark_0001.fits"]
    assert selection["META.SUBARRAY.NAME"] == "FULL" and selection["META.EXPOSURE.NOUTPUTS"] == "4"
    assert useafter == "2016-01-01T00:00:00"
    # built once, then served from the cache
    best_references(nircam_meta(**{"observation.date": "2024-07-01"}), ["flat", "dark"])
    assert len(builder.calls) == 2


def test_concurrent_lookups_build_each_file_once(no_network, fresh_cache, builder):
    results, errors = [], []

    def lookup():
        try:
            results.append(best_references(nircam_meta(), ["flat", "gain"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert len({tuple(sorted(r.items())) for r in results}) == 1
    assert sorted(c[2] for c in builder.calls) == ["jwst_nircam_flat_0001.fits", "jwst_nircam_gain_0001.fits"]


def test_meta_forms(no_network, project_cache, builder):
    meta = nircam_meta(**{"instrument.filter": "F150W"})
    ds = xr.Dataset(attrs={"meta": meta})
    flat = {
        "META.INSTRUMENT.NAME": "NIRCAM",
        "META.INSTRUMENT.DETECTOR": "NRCA1",
        "META.INSTRUMENT.FILTER": "F150W",
        "META.INSTRUMENT.PUPIL": "CLEAR",
        "META.OBSERVATION.DATE": "2024-03-01",
        "META.OBSERVATION.TIME": "00:00:00",
    }
    expected = "jwst_nircam_flat_0003.fits"
    for form in (meta, Meta(meta), ds, flat):
        assert Path(best_references(form, ["flat"])["flat"]).name == expected


def test_no_matching_rule_names_reftype_and_keywords(no_network, project_cache, builder):
    with pytest.raises(ReferenceFileError) as err:
        best_references(nircam_meta(**{"instrument.filter": "F999W"}), ["flat"])
    text = str(err.value)
    assert "flat" in text and "FILTER=F999W" in text and "DETECTOR=NRCA1" in text and "\n" not in text
    with pytest.raises(ReferenceFileError, match="Unknown reference type 'nosuchtype'"):
        best_references(nircam_meta(), ["nosuchtype"])


def test_missing_file_that_cannot_be_built(no_network, fresh_cache, monkeypatch):
    failing = StandInBuilder(fail=True)
    monkeypatch.setattr(refcache, "get_builder", lambda: failing)
    with pytest.raises(ReferenceFileError, match=r"flat reference jwst_nircam_flat_0001.fits is missing"):
        best_references(nircam_meta(), ["flat"])
    assert not list((fresh_cache / "references" / "jwst" / "nircam").glob("*.fits"))


def test_user_crds_path_cache_missing_file(no_network, tmp_path, monkeypatch, builder):
    """A user cache (CRDS_PATH) is used as it is: a missing reference is an error, never a download."""
    user = ensure_local_cache(tmp_path / "user_crds")
    for var in ("CRDS_SERVER_URL", "CRDS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(user))
    monkeypatch.setenv("CRDS_MODE", "local")
    nrc = user / "references" / "jwst" / "nircam"
    nrc.mkdir(parents=True, exist_ok=True)
    builder("flat", {"META.INSTRUMENT.NAME": "NIRCAM"}, nrc / "jwst_nircam_flat_0003.fits", useafter="x")
    refs = best_references(nircam_meta(**{"instrument.filter": "F150W"}), ["flat", "refpix"])
    assert refs == {"flat": str(nrc / "jwst_nircam_flat_0003.fits"), "refpix": "N/A"}
    with pytest.raises(ReferenceFileError, match=r"flat reference jwst_nircam_flat_0004.fits .*FILTER=F210M"):
        best_references(nircam_meta(**{"instrument.filter": "F210M"}), ["flat"])
    assert len(builder.calls) == 1  # the user cache is never filled by the builder


def test_pinned_context(no_network, project_cache, builder, monkeypatch):
    ref = best_references(nircam_meta(), ["flat"], context="jwst_0001.pmap")
    assert Path(ref["flat"]).name == "jwst_nircam_flat_0001.fits"
    monkeypatch.setenv("CRDS_CONTEXT", "jwst_0001.pmap")
    assert best_references(nircam_meta(), ["flat"]) == ref
    with pytest.raises(ReferenceFileError, match=r"jwst_0999\.pmap"):
        best_references(nircam_meta(), ["flat"], context="jwst_0999.pmap")


def test_malformed_rmap(no_network, fresh_cache, builder, monkeypatch, tmp_path):
    stores = tmp_path / "stores"
    stores.mkdir()
    for path in refcache.stores_mappings().glob("*.?map"):
        (stores / path.name).write_text(path.read_text())
    broken = stores / "jwst_nircam_flat_0001.rmap"
    broken.write_text(broken.read_text().replace("selector = Match({", "selector = Match({{"))
    monkeypatch.setattr(refcache, "stores_mappings", lambda: stores)
    with pytest.raises(ReferenceFileError, match=r"jwst_nircam_flat_0001.rmap"):
        best_references(nircam_meta(), ["flat"])


def test_missing_instrument_name(no_network, project_cache):
    from jwst_dask.errors import MissingKeywordError

    with pytest.raises(MissingKeywordError, match="instrument name"):
        best_references({"instrument": {"detector": "NRCA1"}}, ["flat"])


def test_no_crds_variables_left_behind(no_network, fresh_cache, builder):
    import os

    best_references(nircam_meta(), ["gain"])
    assert "CRDS_PATH" not in os.environ and "CRDS_READONLY_CACHE" not in os.environ


def _lookup_in_child(queue):
    try:
        queue.put(best_references(nircam_meta(), ["flat", "mask"]))
    except Exception as exc:  # pragma: no cover - reported by the parent
        queue.put(repr(exc))


def test_concurrent_processes_build_each_file_once(no_network, fresh_cache, monkeypatch, tmp_path):
    """Forked processes share the file lock: each reference is built once, all get the same paths."""
    import multiprocessing
    import os

    log = tmp_path / "builds.log"

    def logging_builder(reftype, selection, path, *, useafter):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{Path(path).name}\n".encode())
        os.close(fd)
        threading.Event().wait(0.3)  # widen the race window
        Path(path).write_bytes(b"stand-in")

    monkeypatch.setattr(refcache, "get_builder", lambda: logging_builder)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_lookup_in_child, args=(queue,)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(isinstance(r, dict) for r in results), results
    assert results[0] == results[1] == results[2]
    assert sorted(log.read_text().split()) == ["jwst_nircam_flat_0001.fits", "jwst_nircam_mask_0001.fits"]


def test_ensure_all_references_then_read_only_use(no_network, fresh_cache, builder):
    """Prebuilding fills the cache with every file the rules name; lookups then build nothing."""
    from jwst_dask.refs.cache import ensure_all_references
    from jwst_dask.refs.rules import RULES

    expected = set()
    for rules in RULES.values():
        for rule in rules.values():
            for value in rule.entries.values():
                if isinstance(value, dict):
                    expected.update(value.values())
    paths = ensure_all_references(fresh_cache, builder=builder)
    assert {p.name for p in paths} == expected
    assert all(p.is_file() for p in paths)
    n_built = len(builder.calls)
    assert n_built == len(expected)
    best_references(nircam_meta(), ["flat", "dark", "mask"])
    assert len(builder.calls) == n_built


def test_user_crds_path_without_cache(no_network, tmp_path, monkeypatch):
    """An empty CRDS_PATH and no server: one clear error (crds itself would exit the process)."""
    for var in ("CRDS_SERVER_URL", "CRDS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "empty"))
    with pytest.raises(ReferenceFileError, match=r"no usable cache at .*empty"):
        best_references(nircam_meta(), ["flat"])
