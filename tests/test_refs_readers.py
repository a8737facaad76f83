"""open_reference: real-format reference files as lazy Datasets, subarray cuts, chunk alignment."""

from __future__ import annotations

import pickle
import warnings

import asdf
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from jwst_dask.errors import ReferenceFileError
from jwst_dask.refs import open_reference

RNG = np.random.default_rng(42)


def save_model(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(path))
    return path


def full_frame_flat(path, ny=64, nx=80, start=(1, 1)):
    """A FLAT written by the official data models (stdatamodels), with NaN and a DQ_DEF table."""
    from stdatamodels.jwst import datamodels as dm

    sci = RNG.normal(1.0, 0.05, (ny, nx)).astype(np.float32)
    sci[3, 5] = np.nan
    dq = RNG.integers(0, 2**20, (ny, nx)).astype(np.uint32)
    err = RNG.random((ny, nx)).astype(np.float32)
    model = dm.FlatModel(data=sci, dq=dq, err=err)
    model.meta.reftype = "FLAT"
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCA1"
    model.meta.subarray.name = "FULL"
    model.meta.subarray.xstart, model.meta.subarray.ystart = start
    model.meta.subarray.xsize, model.meta.subarray.ysize = nx, ny
    model.dq_def = np.array(
        [(0, 1, "DO_NOT_USE", "Bad pixel"), (1, 2, "NO_FLAT_FIELD", "No flat")],
        dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")],
    )
    save_model(model, path)
    return sci, dq, err


def science(xstart, ystart, xsize, ysize, chunks, name="SUBX"):
    data = da.zeros((ysize, xsize), dtype=np.float32, chunks=chunks)
    meta = {"subarray": {"name": name, "xstart": xstart, "ystart": ystart, "xsize": xsize, "ysize": ysize}}
    return xr.Dataset({"SCI": (("y", "x"), data)}, attrs={"meta": meta})


def test_open_flat_written_by_stdatamodels(tmp_path):
    from stdatamodels.jwst import datamodels as dm

    sci, _, err = full_frame_flat(tmp_path / "flat.fits")
    ds = open_reference(tmp_path / "flat.fits")
    assert ds.attrs["reftype"] == "flat"
    assert ds.attrs["meta"]["instrument"]["detector"] == "NRCA1"
    assert ds.attrs["meta"]["subarray"]["xsize"] == 80
    assert set(ds.data_vars) >= {"SCI", "DQ", "ERR", "DQ_DEF.BIT", "DQ_DEF.NAME"}
    for name in ("SCI", "DQ", "ERR"):
        assert isinstance(ds[name].data, da.Array) and ds[name].dims == ("y", "x")
    assert ds["DQ"].dtype == np.uint32
    np.testing.assert_array_equal(ds["SCI"].values, sci)  # NaN allowed in FLAT, kept
    # DQ translated through DQ_DEF to pipeline flags, as the official data models do
    official = dm.FlatModel(str(tmp_path / "flat.fits"))
    np.testing.assert_array_equal(ds["DQ"].values, official.dq)
    assert set(np.unique(official.dq)) <= {0, 1, 2**18, 1 + 2**18}
    raw = open_reference(tmp_path / "flat.fits", translate_dq=False)
    np.testing.assert_array_equal(raw["DQ"].values, fits.getdata(tmp_path / "flat.fits", "DQ"))
    np.testing.assert_array_equal(ds["ERR"].values, err)
    assert list(ds["DQ_DEF.NAME"].values) == ["DO_NOT_USE", "NO_FLAT_FIELD"]
    assert list(ds["DQ_DEF.VALUE"].values) == [1, 2]
    assert ds.attrs["tables"]["DQ_DEF"] == ["BIT", "VALUE", "NAME", "DESCRIPTION"]


def test_subarray_cut_values_and_chunks(tmp_path):
    sci, _, _ = full_frame_flat(tmp_path / "flat.fits")
    dq = fits.getdata(tmp_path / "flat.fits", "DQ")
    like = science(xstart=11, ystart=5, xsize=30, ysize=20, chunks=(8, 16))
    ds = open_reference(tmp_path / "flat.fits", like=like, translate_dq=False)
    assert ds["SCI"].shape == (20, 30)
    assert ds["SCI"].chunks == like["SCI"].chunks == ((8, 8, 4), (16, 14))
    assert ds["DQ"].chunks == like["SCI"].chunks
    np.testing.assert_array_equal(ds["SCI"].values, sci[4:24, 10:40])
    np.testing.assert_array_equal(ds["DQ"].values, dq[4:24, 10:40])
    # blocks line up: a blockwise op needs no rechunk and each block is the matching slice
    summed = da.map_blocks(np.add, like["SCI"].data, ds["SCI"].data, dtype=np.float32)
    assert summed.chunks == like["SCI"].chunks
    np.testing.assert_array_equal(summed.blocks[1, 1].compute(), sci[12:20, 26:40])


def test_reference_already_subarray_sized(tmp_path):
    sci, _, _ = full_frame_flat(tmp_path / "sub.fits", ny=64, nx=64, start=(1, 1))
    like = science(1, 1, 64, 64, chunks=(32, 32), name="SUB64P")
    ds = open_reference(tmp_path / "sub.fits", like=like)
    np.testing.assert_array_equal(ds["SCI"].values, sci)
    assert ds["SCI"].chunks == ((32, 32), (32, 32))


def test_subarray_reference_at_offset(tmp_path):
    """A reference that is itself a subarray (SUBSTRT 101, 201) covering the science window."""
    sci, _, _ = full_frame_flat(tmp_path / "sub.fits", ny=40, nx=50, start=(101, 201))
    like = science(xstart=111, ystart=206, xsize=20, ysize=16, chunks=(16, 10))
    ds = open_reference(tmp_path / "sub.fits", like=like)
    np.testing.assert_array_equal(ds["SCI"].values, sci[5:21, 10:30])


def test_cannot_cut_names_file_shapes_subarray(tmp_path):
    full_frame_flat(tmp_path / "small.fits", ny=32, nx=32)
    like = science(xstart=20, ystart=1, xsize=30, ysize=20, chunks=(20, 30), name="SUBBIG")
    with pytest.raises(ReferenceFileError) as err:
        open_reference(tmp_path / "small.fits", like=like)
    text = str(err.value)
    assert "small.fits" in text and "32x32" in text and "20x30" in text and "SUBBIG" in text


def test_linearity_dark_ipc_dims(tmp_path):
    from stdatamodels.jwst import datamodels as dm

    coeffs = RNG.random((3, 16, 16)).astype(np.float32)
    lin = dm.LinearityModel(coeffs=coeffs, dq=np.zeros((16, 16), np.uint32))
    lin.meta.reftype = "LINEARITY"
    save_model(lin, tmp_path / "lin.fits")
    ds = open_reference(tmp_path / "lin.fits", like=science(3, 5, 8, 10, chunks=(5, 4)))
    assert ds["COEFFS"].dims == ("coeff", "y", "x")
    assert ds["COEFFS"].chunks == ((3,), (5, 5), (4, 4))
    np.testing.assert_array_equal(ds["COEFFS"].values, coeffs[:, 4:14, 2:10])

    dark = RNG.random((5, 16, 16)).astype(np.float32)
    save_model(dm.DarkModel(data=dark), tmp_path / "dark.fits")  # no REFTYPE: from DATAMODL
    ds = open_reference(tmp_path / "dark.fits")
    assert ds["SCI"].dims == ("group", "y", "x")
    np.testing.assert_array_equal(ds["SCI"].values, dark)

    dark4 = RNG.random((2, 3, 8, 8)).astype(np.float32)
    dq4 = RNG.integers(0, 2, (2, 1, 8, 8)).astype(np.uint32)  # MIRI dark DQ: one plane per integration
    save_model(dm.DarkMIRIModel(data=dark4, dq=dq4), tmp_path / "dark4.fits")
    ds = open_reference(tmp_path / "dark4.fits", translate_dq=False)
    assert ds["SCI"].dims == ("integration", "group", "y", "x")
    assert ds["DQ"].dims == ("integration", "group_dq", "y", "x")
    np.testing.assert_array_equal(ds["SCI"].values, dark4)
    np.testing.assert_array_equal(ds["DQ"].values, fits.getdata(tmp_path / "dark4.fits", "DQ"))

    kernel = np.full((3, 3), 0.01, np.float32)
    kernel[1, 1] = 0.92
    save_model(dm.IPCModel(data=kernel), tmp_path / "ipc.fits")
    ds = open_reference(tmp_path / "ipc.fits")
    assert ds["SCI"].dims == ("ky", "kx")
    np.testing.assert_array_equal(ds["SCI"].values, kernel)


def test_nan_rules(tmp_path):
    from stdatamodels.jwst import datamodels as dm

    kernel = np.zeros((3, 3), np.float32)
    kernel[0, 0] = np.nan
    save_model(dm.IPCModel(data=kernel), tmp_path / "ipc.fits")
    with pytest.raises(ReferenceFileError, match=r"IPC reference ipc.fits has NaN"):
        open_reference(tmp_path / "ipc.fits")
    hdr = fits.Header({"REFTYPE": "MASK"})
    bad = np.zeros((4, 4), np.float32)
    bad[0, 0] = np.nan
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(bad, name="DQ")]).writeto(tmp_path / "m.fits")
    with pytest.raises(ReferenceFileError, match=r"MASK reference m.fits has a float32 DQ"):
        open_reference(tmp_path / "m.fits")


def test_unsigned_bzero_and_lazy_pickle(tmp_path):
    values = RNG.integers(0, 65535, (24, 24)).astype(np.uint16)
    hdr = fits.Header({"REFTYPE": "SUPERBIAS"})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(values, name="SCI")]).writeto(
        tmp_path / "u.fits"
    )
    ds = open_reference(tmp_path / "u.fits")
    assert ds["SCI"].dtype == np.uint16
    arr = pickle.loads(pickle.dumps(ds["SCI"].data))  # what a Dask worker receives
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(arr.compute(), values)


def test_asdf_reference(tmp_path):
    tree = {
        "meta": {"reftype": "distortion", "instrument": {"name": "NIRCAM", "detector": "NRCA1"}},
        "coeffs": np.arange(6.0).reshape(2, 3),
    }
    asdf.AsdfFile(tree).write_to(tmp_path / "jwst_nircam_distortion_0001.asdf")
    ds = open_reference(tmp_path / "jwst_nircam_distortion_0001.asdf")
    assert ds.attrs["reftype"] == "distortion"
    assert ds.attrs["meta"]["instrument"]["detector"] == "NRCA1"
    np.testing.assert_array_equal(ds.attrs["tree"]["coeffs"], tree["coeffs"])


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(ReferenceFileError, match=r"nope.fits does not exist"):
        open_reference(tmp_path / "nope.fits")
    (tmp_path / "junk.fits").write_text("not a fits file at all")
    with pytest.raises(ReferenceFileError, match=r"junk.fits is not a readable FITS file"):
        open_reference(tmp_path / "junk.fits")


def test_dq_translation_matches_official_models(tmp_path):
    """File DQ bits mapped to pipeline flags by DQ_DEF name, compared with stdatamodels' reading."""
    from stdatamodels.jwst import datamodels as dm

    dq = RNG.integers(0, 16, (12, 12)).astype(np.uint32)
    dq_def = fits.BinTableHDU.from_columns(
        [
            fits.Column("BIT", "J", array=[0, 1, 2, 3]),
            fits.Column("VALUE", "J", array=[1, 2, 4, 8]),
            fits.Column("NAME", "40A", array=["DO_NOT_USE", "NO_FLAT_FIELD", "HOT", "NOT_A_FLAG"]),
            fits.Column("DESCRIPTION", "80A", array=["a", "b", "c", "d"]),
        ],
        name="DQ_DEF",
    )
    hdr = fits.Header({"REFTYPE": "FLAT", "DATAMODL": "FlatModel", "TELESCOP": "JWST"})
    fits.HDUList(
        [
            fits.PrimaryHDU(header=hdr),
            fits.ImageHDU(np.ones((12, 12), np.float32), name="SCI"),
            fits.ImageHDU(dq, name="DQ"),
            dq_def,
        ]
    ).writeto(tmp_path / "flat.fits")
    ours = open_reference(tmp_path / "flat.fits")["DQ"].values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = dm.FlatModel(str(tmp_path / "flat.fits")).dq
    np.testing.assert_array_equal(ours, official)
    expected = (dq & 1) * 1 + ((dq & 2) != 0) * (1 << 18) + ((dq & 4) != 0) * (1 << 11)
    np.testing.assert_array_equal(ours, expected.astype(np.uint32))


def test_cut_reference_computes_on_distributed_workers(tmp_path, cluster_client):
    """Worker processes open the file themselves: the cut blocks arrive intact through pickling."""
    sci, _, _ = full_frame_flat(tmp_path / "flat.fits")
    like = science(xstart=9, ystart=17, xsize=48, ysize=32, chunks=(16, 16))
    ds = open_reference(tmp_path / "flat.fits", like=like)
    result = cluster_client.compute(ds["SCI"].data).result()
    np.testing.assert_array_equal(result, sci[16:48, 8:56])


def test_scaled_and_signed_storage(tmp_path):
    """BSCALE/BZERO-scaled and plain signed integer extensions read as astropy reads them."""
    scaled = fits.ImageHDU(RNG.normal(100, 10, (16, 20)).astype(np.float32), name="SCI")
    scaled.scale("int16", bscale=0.01, bzero=100.0)
    signed = fits.ImageHDU(RNG.integers(-30000, 30000, (16, 20)).astype(np.int16), name="ERR")
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"REFTYPE": "GAIN"})), scaled, signed]).writeto(
        tmp_path / "s.fits"
    )
    ds = open_reference(tmp_path / "s.fits")
    np.testing.assert_allclose(ds["SCI"].values, fits.getdata(tmp_path / "s.fits", "SCI"), rtol=1e-6)
    assert ds["ERR"].dtype == np.int16
    np.testing.assert_array_equal(ds["ERR"].values, fits.getdata(tmp_path / "s.fits", "ERR"))


def test_same_file_two_chunkings_in_one_graph(tmp_path):
    """Two openings with different chunks or windows never share dask keys."""
    sci, _, _ = full_frame_flat(tmp_path / "flat.fits")
    a = open_reference(tmp_path / "flat.fits", like=science(1, 1, 80, 64, chunks=(32, 40)))["SCI"].data
    b = open_reference(tmp_path / "flat.fits", like=science(1, 1, 80, 64, chunks=(16, 80)))["SCI"].data
    c = open_reference(tmp_path / "flat.fits", like=science(2, 1, 78, 64, chunks=(16, 78)))["SCI"].data
    assert len({a.name, b.name, c.name}) == 3
    total = (a.rechunk((16, 80)) + b).compute()
    np.testing.assert_array_equal(total, 2 * sci)
    np.testing.assert_array_equal(c.compute(), sci[:, 1:79])


def test_dq_translation_matches_a_pass_per_dq_def_row():
    """The fast DQ translation (one mask for bits that keep their value) against the plain rule:
    for each DQ_DEF row, pixels with any of its bits get its flag; including a bit listed twice
    with two flags, a multi-bit value and a bit mapped to another flag."""
    from jwst_dask.refs.readers import _translate_block

    rng = np.random.default_rng(7)
    block = rng.integers(0, 2**31, (50, 60)).astype(np.uint32)
    pairs = ((1, 1), (2, 2), (2, 8), (4, 16), (6, 6), (1 << 30, 1), (32, 32))
    expected = np.zeros(block.shape, np.uint32)
    for value, flag in pairs:
        expected[(block & value) != 0] |= flag
    np.testing.assert_array_equal(_translate_block(block, pairs), expected)
    np.testing.assert_array_equal(_translate_block(block.astype(np.int32), pairs), expected)
