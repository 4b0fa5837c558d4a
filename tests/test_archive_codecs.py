"""Archive codecs (jpegls, jpeg2k, jpegxl, htj2k): bit-exact round trips per format x codec,
24-bit counts, partial last chunks, refusals (float32, too-wide counts, formats without a filter,
levels, delta, lossy configurations), portability to plain zarr-python / h5py + hdf5plugin, and
every shipped real recording compared bit for bit with MNE's float32 reading."""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pytest

import eegbench
from conftest import make_recording, real_data_dir
from eegbench import Quantization, Recording
from eegbench.codecs import IMAGE_CODEC_BITS, resolve
from eegbench.errors import CorruptStoreError, UnsupportedCodecError
from eegbench.model import ArraySource

ARCHIVE = sorted(IMAGE_CODEC_BITS)  # htj2k, jpeg2k, jpegls, jpegxl
CARRIED = [(fmt, c) for fmt in ("hdf5", "zarr", "parquet") for c in ARCHIVE
           if c in eegbench.formats.get_backend(fmt).compressions]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _recording_24bit(n_channels: int = 5, n_times: int = 777, lo: int = -(1 << 23), hi: int = (1 << 23) - 1) -> Recording:
    """int32 counts spanning the whole 24-bit range (BDF-like), with a random-walk body."""
    rng = np.random.default_rng(3)
    counts = np.cumsum(rng.integers(-3000, 3001, size=(n_channels, n_times)), axis=1)
    counts = np.clip(counts, lo, hi).astype(np.int32)
    counts[0, 0], counts[-1, -1] = lo, hi
    q = Quantization(np.full(n_channels, 0.03125), np.zeros(n_channels), np.full(n_channels, 1e-6), "int32")
    return Recording(ArraySource(q.reconstruct(counts), quantization=q), 256.0, [f"E{i}" for i in range(n_channels)],
                     name="bdf-like")


def test_every_format_carries_the_archive_codecs_it_can():
    assert set(CARRIED) == {("hdf5", "jpegls"), ("hdf5", "htj2k"),
                            *((f, c) for f in ("zarr", "parquet") for c in ARCHIVE)}


@pytest.mark.parametrize(("fmt", "codec"), CARRIED)
def test_round_trip_partial_last_chunk(fmt, codec, tmp_path):
    # 1050 samples at 100 Hz in 0.64-s chunks: 16 whole chunks + a 26-sample one
    rec = make_recording(8, 1050, 100.0)
    path = eegbench.save(rec, tmp_path / f"s.{fmt}", format=fmt, compression=codec, chunk_seconds=0.64)
    with eegbench.open(path) as ds:
        r = ds[0]
        assert r.source.dtype == np.int16 and r.source.layout.codec.compression == codec
        assert r.source.chunk_samples == 64 and 1050 % 64
        np.testing.assert_array_equal(_bits(r.get_data()), _bits(rec.get_data()))
        np.testing.assert_array_equal(_bits(r.get_data(start=1000, stop=1050)), _bits(rec.get_data(start=1000, stop=1050)))
        np.testing.assert_array_equal(_bits(r.get_data(start=60, stop=70, picks=[2, 5])),
                                      _bits(rec.get_data(start=60, stop=70, picks=[2, 5])))
        assert eegbench.info(path)["codec"] == codec


@pytest.mark.parametrize("fmt", ["zarr", "parquet"])
def test_jpeg2k_holds_24_bit_counts(fmt, tmp_path):
    rec = _recording_24bit()
    path = eegbench.save(rec, tmp_path / f"s.{fmt}", format=fmt, compression="jpeg2k", chunk_seconds=1.0)
    with eegbench.open(path) as ds:
        assert ds[0].source.dtype == np.int32
        np.testing.assert_array_equal(ds[0].source.read_counts(0, 777), rec.quantization.to_counts(rec.get_data()))
        np.testing.assert_array_equal(_bits(ds[0].get_data()), _bits(rec.get_data()))


@pytest.mark.parametrize(("fmt", "codec"), [c for c in CARRIED if c[1] != "jpeg2k"])
def test_16_bit_codecs_refuse_24_bit_counts_before_writing(fmt, codec, tmp_path):
    with pytest.raises(UnsupportedCodecError, match=r"at most 16-bit counts.*int32.*jpeg2k"):
        eegbench.save(_recording_24bit(), tmp_path / "s", format=fmt, compression=codec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["zarr", "parquet"])
def test_jpeg2k_refuses_counts_wider_than_24_bits(fmt, tmp_path):
    # OpenJPEG silently loses bits above 24: such counts must be refused, never stored wrong
    rec = _recording_24bit(lo=-(1 << 25), hi=(1 << 25) - 1)
    with pytest.raises(UnsupportedCodecError, match="24 signed bits"):
        eegbench.save(rec, tmp_path / "s", format=fmt, compression="jpeg2k")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fmt", "codec"), CARRIED)
def test_float32_storage_is_refused(fmt, codec, tmp_path):
    with pytest.raises(UnsupportedCodecError, match="integer ADC counts only"):
        eegbench.save(make_recording(quantized=False), tmp_path / "a", format=fmt, compression=codec)
    with pytest.raises(UnsupportedCodecError, match="integer ADC counts only"):
        eegbench.save(make_recording(), tmp_path / "b", format=fmt, compression=codec, integer=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec", ["jpeg2k", "jpegxl"])
def test_hdf5_refuses_codecs_without_an_hdf5plugin_filter(codec, tmp_path):
    with pytest.raises(UnsupportedCodecError, match=r"hdf5plugin has no .*formats that can: parquet, zarr"):
        eegbench.save(make_recording(), tmp_path / "s", format="hdf5", compression=codec)


@pytest.mark.parametrize("codec", ARCHIVE)
def test_no_lossy_setting_can_be_chosen(codec, tmp_path):
    with pytest.raises(UnsupportedCodecError, match="takes no level"):
        resolve(codec, 1)
    with pytest.raises(UnsupportedCodecError, match="delta"):
        eegbench.save(make_recording(), tmp_path / "s", format="zarr", compression=codec, delta=True)


def test_lossy_configuration_in_a_store_is_refused(tmp_path):
    from eegbench.formats import _zarr_imagecodecs as zi

    assert zi.lossless_config("imagecodecs_jpegxl", {"lossless": True}) == "jpegxl"
    for name, cfg in [("imagecodecs_jpegxl", {"lossless": False, "distance": 1.0}),
                      ("imagecodecs_jpeg2k", {"level": 30, "reversible": False}),
                      ("imagecodecs_jpegls", {"level": 2}), ("imagecodecs_htj2k", {"level": 0.5, "reversible": True}),
                      ("imagecodecs_jpegls", {"level": False}), ("imagecodecs_webp", {})]:
        with pytest.raises(ValueError):
            zi.lossless_config(name, cfg)
    # a store whose codec description was edited to a lossy one is reported, not decoded
    path = eegbench.save(make_recording(), tmp_path / "s.zarr", format="zarr", compression="jpegxl")
    ds = eegbench.open(path)
    storage = dict(ds[0].source.storage)
    storage["codecs"] = [dict(c) for c in storage["codecs"]]
    storage["codecs"][1] = {"name": "imagecodecs_jpegxl", "configuration": {"lossless": False}}
    with pytest.raises(CorruptStoreError):
        type(ds[0].source)(ds[0].source.root, "rec-00000", ds[0].source.layout, storage)


def test_plain_zarr_python_and_h5py_read_the_stores(tmp_path):
    import h5py
    import hdf5plugin  # noqa: F401  (registers FCIDECOMP and HTJ2K with HDF5)
    import zarr

    from eegbench.formats import _zarr_imagecodecs

    rec = make_recording(6, 500, 100.0)
    counts = rec.quantization.to_counts(rec.get_data())
    _zarr_imagecodecs.register()  # or the imagecodecs-zarr entry points (imagecodecs >= 2026.5.10)
    for codec in ARCHIVE:
        path = eegbench.save(rec, tmp_path / f"{codec}.zarr", format="zarr", compression=codec, chunk_seconds=0.7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = zarr.open_array(path / "signals" / "000" / "rec-00000" / "signals", mode="r")
            np.testing.assert_array_equal(arr[:], counts)
    for codec in ("jpegls", "htj2k"):
        path = eegbench.save(rec, tmp_path / f"{codec}.h5store", format="hdf5", compression=codec, chunk_seconds=0.7)
        with h5py.File(path / "signals" / "000" / "rec-00000.h5", "r") as f:
            np.testing.assert_array_equal(f["signals"][()], counts)


# ---------------------------------------------------------------------------------------------
# every shipped real recording, bit for bit against MNE's float32 reading
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real():
    root = real_data_dir()
    edf = sorted((root / "eegbci_S001").glob("*.edf"))
    bv = root / "brainvision" / "test.vhdr"
    ds = eegbench.from_files([*edf, bv])
    refs = [mne.io.read_raw_edf(p, preload=True, verbose="error").get_data().astype(np.float32) for p in edf]
    refs.append(mne.io.read_raw_brainvision(bv, preload=True, verbose="error").get_data().astype(np.float32))
    return ds, refs


@pytest.mark.parametrize(("fmt", "codec"), CARRIED)
def test_real_recordings_bitwise_equal_to_mne(real, fmt, codec, tmp_path):
    ds, refs = real
    # every recording through NumPy+Parquet with the fast coders; two EEGBCI runs + BrainVision
    # otherwise (JPEG XL / JPEG 2000 encode slowly; `python -m benchmarks.compression_table --profile
    # real` checks all of them, every format x codec). 2-s chunks: EEGBCI runs (19680/20000 samples
    # at 160 Hz) and BrainVision (7900 at 1 kHz) end mid-chunk.
    every = fmt == "parquet" and codec in ("jpegls", "htj2k")
    pick = list(range(len(refs))) if every else [0, 7, len(refs) - 1]
    path = eegbench.save(eegbench.Dataset([ds[i] for i in pick]), tmp_path / "s", format=fmt, compression=codec,
                         chunk_seconds=2.0)
    with eegbench.open(path) as got:
        assert len(got) == len(pick)
        for rec, i in zip(got, pick):
            assert rec.source.dtype == np.int16
            np.testing.assert_array_equal(_bits(rec.get_data()), _bits(refs[i]), err_msg=rec.name)


def test_float_fif_is_refused_with_a_clear_error(tmp_path):
    fif = real_data_dir() / "fif" / "data_resting_EO_200Hz_raw.fif"
    rec = eegbench.from_files(fif)[0]
    assert rec.quantization is None  # float FIF: no integer grid to code
    with pytest.raises(UnsupportedCodecError, match="integer ADC counts only"):
        eegbench.save(rec, tmp_path / "s", format="zarr", compression="jpegxl")

