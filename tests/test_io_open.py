"""Opening FITS: lazy (no pixel data read), chunk policy, BZERO/endianness from files written by
astropy directly, and one clear error for each kind of bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from astropy.io import fits

import jwst_dask
from jwst_dask.errors import InputFileError, JwstDaskError, MissingKeywordError, ShapeMismatchError
from jwst_dask.io import FitsSection, open_product, ramp_chunks

NINTS, NGROUPS, NY, NX = 2, 3, 40, 48


@pytest.fixture(autouse=True)
def _cache(project_cache):
    return project_cache


def _uncal(path, *, drop=(), pixeldq_shape=None, ngroups=NGROUPS, nints=NINTS, seed=0, suffix_model=True):
    """An uncal-like file written with astropy only (independent of jwst_dask's writer)."""
    rng = np.random.default_rng(seed)
    sci = rng.integers(0, 65535, (nints, NGROUPS, NY, NX), endpoint=True).astype(np.uint16)
    primary = fits.PrimaryHDU()
    cards = {
        "DATAMODL": "Level1bModel",
        "INSTRUME": "NIRCAM",
        "DETECTOR": "NRCA3",
        "EXP_TYPE": "NRC_IMAGE",
        "NGROUPS": ngroups,
        "NINTS": NINTS,
        "READPATT": "BRIGHT2",
        "FILTER": "F150W",
    }
    for key, value in cards.items():
        if key not in drop:
            primary.header[key] = value
    hdus = [primary, fits.ImageHDU(sci, name="SCI")]
    if pixeldq_shape is not None:
        hdus.append(fits.ImageHDU(np.zeros(pixeldq_shape, np.uint32), name="PIXELDQ"))
    fits.HDUList(hdus).writeto(path)
    return sci


def test_open_values_bzero_and_metadata(tmp_path):
    path = tmp_path / "jw01_nrca3_uncal.fits"
    sci = _uncal(path)
    ds = jwst_dask.open(path)
    assert ds.SCI.dtype == np.uint16
    assert ds.SCI.dims == ("integration", "group", "y", "x")
    np.testing.assert_array_equal(ds.SCI.values, sci)
    # a sub-block read through the lazy backend
    np.testing.assert_array_equal(ds.SCI[1, 2, 5:17, 30:41].values, sci[1, 2, 5:17, 30:41])
    m = ds.jwst.meta
    assert (m.instrument.detector, m.exposure.readpatt, m.instrument.filter) == ("NRCA3", "BRIGHT2", "F150W")
    assert ds.attrs["model_type"] == "Level1bModel" and ds.attrs["product"] == "uncal"


def test_open_float_big_endian_and_signed(tmp_path):
    path = tmp_path / "thing_rate.fits"
    rng = np.random.default_rng(3)
    sci = rng.normal(size=(NY, NX)).astype(">f4")
    con = rng.integers(-5, 5, (2, NY, NX)).astype(">i4")
    dq = np.array(rng.integers(0, 2**32 - 1, (NY, NX), dtype=np.uint64), dtype=np.uint32)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci, name="SCI"),
            fits.ImageHDU(dq, name="DQ"),
            fits.ImageHDU(con, name="CON"),
        ]
    ).writeto(path)
    ds = open_product(path)
    assert ds.attrs["model_type"] == "ImageModel"  # from the suffix
    assert ds.SCI.dtype == np.float32 and ds.SCI.dtype.byteorder in "=|<"
    np.testing.assert_array_equal(ds.SCI.values, sci.astype(np.float32))
    assert ds.DQ.dtype == np.uint32
    np.testing.assert_array_equal(ds.DQ.values, dq)
    assert ds.CON.dims == ("plane", "y", "x") and ds.CON.dtype == np.int32
    np.testing.assert_array_equal(ds.CON.values, con)


def test_open_reads_no_pixel_data(tmp_path, monkeypatch):
    path = tmp_path / "lazy_uncal.fits"
    _uncal(path)
    # garbage in the whole data section: opening must not notice
    with fits.open(path) as hdul:
        offset, size = hdul["SCI"]._data_offset, hdul["SCI"]._data_size
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(0).bytes(size))
    reads = []
    monkeypatch.setattr(FitsSection, "__getitem__", lambda self, key: reads.append(key))
    ds = jwst_dask.open(path)
    assert reads == []
    assert isinstance(ds.SCI.data, da.Array)
    graph = dict(ds.SCI.data.__dask_graph__())
    backends = [v for v in graph.values() if isinstance(v, FitsSection)]
    assert len(backends) == 1 and backends[0].offset == offset
    assert not any(isinstance(v, np.ndarray) and v.size > 1 for v in graph.values())


def test_default_and_explicit_chunks(tmp_path):
    path = tmp_path / "c_uncal.fits"
    _uncal(path, pixeldq_shape=(NY, NX))
    ds = jwst_dask.open(path)
    assert ds.SCI.data.chunksize == ramp_chunks((NINTS, NGROUPS, NY, NX), 2)
    assert ds.SCI.data.chunksize == (NINTS, NGROUPS, NY, NX)  # small: one chunk, all groups/ints
    ds = jwst_dask.open(path, chunks={"y": 16, "x": 32})
    assert ds.SCI.data.chunks == ((NINTS,), (NGROUPS,), (16, 16, 8), (32, 16))
    assert ds.PIXELDQ.data.chunks == ((16, 16, 8), (32, 16))  # lined up with the science tiles


def test_ramp_chunks_policy():
    mib = 2**20
    # one integration: full-width stripes with the pixel count of a 512 x 512 tile
    assert ramp_chunks((1, 10, 2048, 2048), 2) == (1, 10, 128, 2048)
    assert ramp_chunks((1, 10, 1024, 1032), 4) == (1, 10, 254, 1032)
    # several integrations of a full frame: stripes of one integration's 512 x 512 tile (5 MiB)
    multi = ramp_chunks((2, 10, 2048, 2048), 2)
    one_int_tile = 512 * 512 * 10 * 2
    assert multi[3] == 2048 and 2 * 10 * multi[2] * 2048 * 2 <= one_int_tile < 4 * 10 * multi[2] * 2048 * 2
    # a time series of a small subarray: chunks of the same size (<= 2 MiB, more than 0.5 MiB)
    # whatever its length; stripes keep 2 rows before they lose columns
    for nints in (100, 300, 1000, 3000, 10000):
        c = ramp_chunks((nints, 6, 64, 64), 2)
        nbytes = nints * 6 * c[2] * c[3] * 2
        assert c[:2] == (nints, 6) and 0.5 * mib < nbytes <= 2 * mib, (nints, c)
        assert c[2] >= 2 and (c[3] == 64 or c[2] == 2), (nints, c)
    assert ramp_chunks((100, 6, 64, 64), 2) == (100, 6, 16, 64)
    assert ramp_chunks((1000, 6, 64, 64), 2) == (1000, 6, 2, 64)
    # an explicit budget below the stream budget wins; rows go below 2 only after the columns
    tiny = ramp_chunks((500, 8, 64, 2048), 4, budget_bytes=2**18)
    assert 500 * 8 * tiny[2] * tiny[3] * 4 <= 2**18 and tiny[2] == 2 and tiny[3] < 2048
    assert ramp_chunks((500, 8, 64, 2048), 4, budget_bytes=1)[2:] == (1, 1)
    assert ramp_chunks((2, 3, 40, 48), np.dtype("u2")) == (2, 3, 40, 48)


# ---------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"nope_uncal\.fits: no such file"):
        jwst_dask.open(tmp_path / "nope_uncal.fits")


def test_not_fits(tmp_path):
    path = tmp_path / "notes_uncal.fits"
    path.write_text("just some text\n")
    with pytest.raises(InputFileError, match=r"notes_uncal\.fits: not a FITS file"):
        jwst_dask.open(path)


def test_truncated(tmp_path):
    path = tmp_path / "cut_uncal.fits"
    _uncal(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 5000])
    with pytest.raises(InputFileError, match=r"cut_uncal\.fits: truncated"):
        jwst_dask.open(path)


@pytest.mark.parametrize("keyword", ["INSTRUME", "DETECTOR", "EXP_TYPE", "NGROUPS", "NINTS"])
def test_missing_required_keyword(tmp_path, keyword):
    path = tmp_path / "k_uncal.fits"
    _uncal(path, drop=(keyword,))
    with pytest.raises(MissingKeywordError, match=rf"k_uncal\.fits: required keyword {keyword}\b"):
        jwst_dask.open(path)


def test_ngroups_mismatch(tmp_path):
    path = tmp_path / "g_uncal.fits"
    _uncal(path, ngroups=NGROUPS + 2)
    with pytest.raises(ShapeMismatchError, match=r"g_uncal\.fits: SCI has 3 groups but NGROUPS = 5"):
        jwst_dask.open(path)


def test_nints_mismatch(tmp_path):
    path = tmp_path / "i_uncal.fits"
    _uncal(path, nints=NINTS + 1)
    with pytest.raises(ShapeMismatchError, match=r"i_uncal\.fits: SCI has 3 integrations but NINTS = 2"):
        jwst_dask.open(path)


def test_extension_shape_mismatch(tmp_path):
    path = tmp_path / "s_uncal.fits"
    _uncal(path, pixeldq_shape=(NY, NX - 1))
    with pytest.raises(ShapeMismatchError, match=r"s_uncal\.fits: extension PIXELDQ"):
        jwst_dask.open(path)


def test_errors_are_one_line_jwst_dask_errors(tmp_path):
    path = tmp_path / "k_uncal.fits"
    _uncal(path, drop=("NINTS",))
    with pytest.raises(JwstDaskError) as info:
        jwst_dask.open(path)
    assert "\n" not in str(info.value)


def test_read_on_distributed_cluster(tmp_path, cluster_client):
    path = tmp_path / "d_uncal.fits"
    sci = _uncal(path, seed=4)
    ds = jwst_dask.open(path, chunks=16)
    assert ds.SCI.data.chunks[2:] == ((16, 16, 8), (16, 16, 16))
    total = cluster_client.compute(ds.SCI.data.astype(np.int64).sum(axis=(0, 1))).result()
    np.testing.assert_array_equal(total, sci.astype(np.int64).sum(axis=(0, 1)))


def test_gzip_is_refused_clearly(tmp_path):
    import gzip

    path = tmp_path / "z_uncal.fits"
    _uncal(path)
    gz = tmp_path / "z_uncal.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(InputFileError, match=r"z_uncal\.fits\.gz: a gzip-compressed file"):
        jwst_dask.open(gz)
