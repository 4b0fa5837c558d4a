"""HDF5 backend: bitwise round trips, documented file layout, corruption, laziness, pickle/fork/spawn."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import google_crc32c
import h5py
import hdf5plugin
import numpy as np
import pytest

import eegbench
from eegbench import Quantization, Recording
from eegbench.codecs import resolve
from eegbench.errors import CorruptStoreError, UnsupportedCodecError
from eegbench.formats import SignalLayout, get_backend
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.formats.hdf5 import HDF5Backend, HDF5Source
from eegbench.io import FILES
from eegbench.io.layout import fanout
from eegbench.model import ArraySource
from eegbench.tables import frame_from_parquet

SFREQ = 250.0
N_CH, N_TIMES = 8, 1234  # 1234 is not a multiple of any chunk size used below
CODECS = sorted(HDF5Backend.compressions)
SIGNALS = "signals/000/rec-00000.h5"
Z = h5py.h5z
FILTERS = {  # codec -> HDF5 filter ids of /signals, in pipeline order
    "none": [Z.FILTER_FLETCHER32],
    "gzip": [Z.FILTER_SHUFFLE, Z.FILTER_DEFLATE, Z.FILTER_FLETCHER32],
    "lzf": [Z.FILTER_SHUFFLE, Z.FILTER_LZF, Z.FILTER_FLETCHER32],
    "zstd": [Z.FILTER_SHUFFLE, hdf5plugin.Zstd.filter_id, Z.FILTER_FLETCHER32],
    "blosc-zstd": [hdf5plugin.Blosc.filter_id, Z.FILTER_FLETCHER32],
    "blosc-lz4": [hdf5plugin.Blosc.filter_id, Z.FILTER_FLETCHER32],
    "jpegls": [hdf5plugin.FciDecomp.filter_id, Z.FILTER_FLETCHER32],  # archive codecs: integer counts only
    "htj2k": [hdf5plugin.Htj2k.filter_id, Z.FILTER_FLETCHER32],
}


def _signals(seed: int = 0) -> tuple[np.ndarray, Quantization, np.ndarray]:
    """Random-walk int16 counts, an MNE-like calibration, and the float32 volts they map to."""
    rng = np.random.default_rng(seed)
    counts = np.clip(np.cumsum(rng.integers(-40, 41, (N_CH, N_TIMES)), axis=1), -32768, 32767).astype(np.int16)
    q = Quantization(np.linspace(0.05, 0.2, N_CH), np.linspace(-3, 3, N_CH), np.full(N_CH, 1e-6), "int16")
    return counts, q, q.reconstruct(counts)


def _recording(x: np.ndarray, q: Quantization | None = None) -> Recording:
    # description must be non-empty: a zero-column description table loses its rows in Parquet
    return Recording(ArraySource(x, quantization=q), SFREQ, [f"c{i}" for i in range(x.shape[0])],
                     description={"subject": "01"})


def _save(tmp_path, x, q=None, name="s", **kw):
    kw.setdefault("chunk_seconds", 0.5)  # 125 samples: 10 chunks, the last one 109 samples
    kw.setdefault("integer", True if q is not None else "auto")  # counts even when uncompressed
    return eegbench.save(_recording(x, q), tmp_path / name, format="hdf5", **kw)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _flip_middle_of_chunk(path, chunk: int, chunk_samples: int) -> None:
    """Invert 8 bytes in the middle of a chunk's stored bytes; the file size is unchanged."""
    with h5py.File(path, "r") as f:
        info = f["signals"].id.get_chunk_info_by_coord((0, chunk * chunk_samples))
    pos = info.byte_offset + info.size // 2 - 4
    with open(path, "r+b") as fh:
        fh.seek(pos)
        data = fh.read(8)
        fh.seek(pos)
        fh.write(bytes(b ^ 0xFF for b in data))


# --- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_seconds", [0.5, 1.6, 10.0])  # 125 and 400 samples, one whole chunk
@pytest.mark.parametrize("stored", ["int16", "float32"])
@pytest.mark.parametrize("compression", CODECS)
def test_round_trip_is_bitwise(tmp_path, compression, stored, chunk_seconds):
    if stored == "float32" and resolve(compression).integer_only:
        pytest.skip("archive codecs store integer counts only (tests/test_archive_codecs.py)")
    counts, q, x = _signals()
    path = _save(tmp_path, x, q, compression=compression, chunk_seconds=chunk_seconds,
                 integer=stored == "int16")
    rec = eegbench.open(path)[0]
    src = rec.source
    assert isinstance(src, HDF5Source) and src.dtype == np.dtype(stored)
    assert src.chunk_samples == min(round(chunk_seconds * SFREQ), N_TIMES)
    np.testing.assert_array_equal(_bits(rec.get_data()), _bits(x))
    if stored == "int16":
        np.testing.assert_array_equal(src.read_counts(0, N_TIMES), counts)


def test_incompressible_chunks_skipped_by_blosc_still_decode(tmp_path):
    # HDF5 skips an optional filter that does not shrink a chunk and records it in the chunk's
    # filter mask; the direct reader must then skip it too
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, (N_CH, N_TIMES), dtype=np.uint32) & np.uint32(0xBFFFFFFF)  # finite floats
    x = bits.view(np.float32)
    path = _save(tmp_path, x, compression="blosc-lz4")
    with h5py.File(path / SIGNALS, "r") as f:
        ds = f["signals"]
        masks = [ds.id.get_chunk_info(i).filter_mask for i in range(ds.id.get_num_chunks())]
    assert any(masks)
    np.testing.assert_array_equal(_bits(eegbench.open(path)[0].get_data()), bits)


@pytest.mark.parametrize("compression", ["blosc-zstd", "lzf", "none"])
def test_slices_picks_windows_and_counts(tmp_path, compression):
    counts, q, x = _signals(1)
    rec = eegbench.open(_save(tmp_path, x, q, compression=compression))[0]
    for start, stop in [(0, 1), (120, 130), (124, 126), (125, 250), (10, 1234), (1200, 1234), (0, 1234), (333, 333)]:
        np.testing.assert_array_equal(_bits(rec.get_data(start=start, stop=stop)), _bits(x[:, start:stop]))
    np.testing.assert_array_equal(_bits(rec.get_data(start=100, stop=400, picks=["c3", "c0", "c7"])),
                                  _bits(x[[3, 0, 7], 100:400]))
    np.testing.assert_array_equal(_bits(rec.get_data(start=130, stop=140, picks=5)), _bits(x[5:6, 130:140]))
    np.testing.assert_array_equal(rec.source.read_counts(100, 400), counts[:, 100:400])
    np.testing.assert_array_equal(rec.source.read_counts(1230, 1234), counts[:, 1230:1234])
    starts = [0, 124, 900, 1034]
    np.testing.assert_array_equal(_bits(rec.get_windows(starts, 200, picks=["c1", "c2"])),
                                  _bits(np.stack([x[1:3, s:s + 200] for s in starts])))
    padded = rec.get_data(start=1200, stop=1300, pad=True)
    np.testing.assert_array_equal(_bits(padded[:, :34]), _bits(x[:, 1200:]))
    assert not padded[:, 34:].any()
    cropped = rec.crop_samples(200, 700).pick(["c6", "c2"])
    np.testing.assert_array_equal(_bits(cropped.get_data(start=100, stop=300)), _bits(x[[6, 2], 300:500]))


# --- layout --------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", CODECS)
def test_file_layout_is_documented_and_plain_h5py_reads_it(tmp_path, compression):
    counts, q, x = _signals(2)
    path = _save(tmp_path, x, q, compression=compression)
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert files == ["eegbench.json", SIGNALS, "tables.h5", "tables.pack"]
    codec = resolve(compression)
    with h5py.File(path / SIGNALS, "r") as f:
        ds = f["signals"]
        assert ds.shape == (N_CH, N_TIMES) and ds.dtype == np.int16 and ds.chunks == (N_CH, 125)
        dcpl = ds.id.get_create_plist()
        filters = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
        assert [flt[0] for flt in filters] == FILTERS[compression]
        opts = filters[0][2] if filters else ()
        if compression == "gzip":
            assert filters[1][2] == (codec.level,)
        elif compression == "zstd":
            assert filters[1][2] == (codec.level,)
        elif compression.startswith("blosc"):  # (..., clevel, shuffle, compressor code)
            assert opts[4:7] == (codec.level, 1, {"lz4": 1, "zstd": 5}[compression[6:]])
        # plain h5py (+ hdf5plugin) gets the same counts and can rebuild the volts from the attributes
        np.testing.assert_array_equal(ds[()], counts)
        a = ds.attrs
        assert a["chunk_samples"] == 125 and a["stored_dtype"] == "int16" and a["codec"] == codec.label
        assert "q_gain" in a["to_volts"]
        volts = (((ds[()].astype(np.float64) * a["q_scale"][:, None]) + a["q_offset"][:, None])
                 * a["q_gain"][:, None]).astype(np.float32)
        np.testing.assert_array_equal(_bits(volts), _bits(x))
        # the chunk index: where each chunk's stored bytes are, HDF5's filter mask, their CRC32C
        index = f["chunk_index"]
        assert index.dtype == np.uint64 and index.shape == (10, 4) and index.fletcher32
        assert list(index.attrs["columns"]) == ["byte_offset", "nbytes", "filter_mask", "crc32c"]
        for i in (0, 9):
            info = ds.id.get_chunk_info_by_coord((0, i * 125))
            _, data = ds.id.read_direct_chunk((0, i * 125))
            assert index[i].tolist() == [info.byte_offset, info.size, info.filter_mask, google_crc32c.value(data)]
    with h5py.File(path / "tables.h5", "r") as f:
        table = f["tables/recordings"]
        assert table.dtype == np.uint8 and table.ndim == 1 and table.fletcher32
        recordings = frame_from_parquet(table[()].tobytes())
    assert list(recordings["key"]) == ["rec-00000"]
    storage = eegbench.tables.from_json(recordings["storage"][0])
    assert {k: storage[k] for k in ("file", "dataset")} == {"file": SIGNALS, "dataset": "/signals"}
    with h5py.File(path / SIGNALS, "r") as f:  # where /chunk_index's bytes are (remote readers fetch them directly)
        info = f["chunk_index"].id.get_chunk_info(0)
        assert storage["index_at"][:3] == [info.byte_offset, info.size, info.filter_mask]


def test_float32_attributes_and_no_delta(tmp_path):
    _, _, x = _signals()
    path = _save(tmp_path, x, compression="zstd", level=3, integer=False)
    with h5py.File(path / SIGNALS, "r") as f:
        a = f["signals"].attrs
        assert f["signals"].dtype == np.float32 and a["stored_dtype"] == "float32" and a["codec"] == "zstd-3"
        assert "q_scale" not in a
    assert get_backend("h5") is get_backend("hdf5") and not HDF5Backend.supports_delta
    with pytest.raises(UnsupportedCodecError):
        _save(tmp_path, x, name="d", compression="zstd", delta=True)


# --- backend methods -----------------------------------------------------------------------------
def test_write_recording_overwrites_and_accepts_unaligned_blocks(tmp_path):
    backend = get_backend("hdf5")
    layout = SignalLayout(4, 1000, "float32", 100, resolve("gzip"))
    old, new = (np.random.default_rng(s).standard_normal((4, 1000)).astype(np.float32) for s in (0, 1))
    backend.write_recording(tmp_path, "k", ((s, old[:, s:s + 300]) for s in range(0, 1000, 300)), layout)
    # blocks that split chunks: a chunk's CRC must still be taken only once it is complete
    storage = backend.write_recording(tmp_path, "k", ((s, new[:, s:s + 250]) for s in range(0, 1000, 250)), layout)
    assert {k: storage[k] for k in ("file", "dataset")} == {"file": f"signals/{fanout('k')}/k.h5", "dataset": "/signals"}
    src = backend.open_signals(tmp_path, "k", layout, storage)
    np.testing.assert_array_equal(src.read_counts(0, 1000), new)
    with pytest.raises(ValueError, match="ended at sample 300"):
        backend.write_recording(tmp_path, "k", iter([(0, new[:, :300])]), layout)


def test_tables_round_trip(tmp_path):
    backend = HDF5Backend()
    assert backend.read_table(tmp_path, "recordings") is None  # no tables.h5 yet
    backend.write_table(tmp_path, "a", b"parquet" * 1000)
    backend.write_table(tmp_path, "b", b"")
    backend.write_table(tmp_path, "a", b"replaced")
    assert backend.read_table(tmp_path, "a") == b"replaced"
    assert backend.read_table(tmp_path, "b") == b""
    assert backend.read_table(tmp_path, "missing") is None
    (tmp_path / "tables.h5").write_bytes(b"\0" * 4096)
    with pytest.raises(CorruptStoreError, match="tables.h5"):
        backend.read_table(tmp_path, "a")


# --- corruption ----------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", CODECS)
def test_flipped_bytes_in_a_chunk_raise_never_wrong_data(tmp_path, compression):
    counts, q, x = _signals(4)
    path = _save(tmp_path, x, q, compression=compression)
    _flip_middle_of_chunk(path / SIGNALS, 3, 125)
    rec = eegbench.open(path)[0]  # same size: the open-time manifest check cannot see it
    np.testing.assert_array_equal(rec.source.read_counts(0, 375), counts[:, :375])  # chunks 0-2 intact
    with pytest.raises(CorruptStoreError, match=r"rec-00000: .*chunk 3"):
        rec.get_data(start=380, stop=390)
    with h5py.File(path / SIGNALS, "r") as f, pytest.raises(OSError):  # fletcher32: plain readers too
        f["signals"][:, 375:500]
    with pytest.raises(CorruptStoreError):
        eegbench.verify(path)


@pytest.mark.parametrize("compression", ["blosc-zstd", "lzf"])
def test_missing_truncated_or_garbage_file_raise(tmp_path, compression):
    _, q, x = _signals()
    path = _save(tmp_path, x, q, compression=compression)
    file = path / SIGNALS
    good = file.read_bytes()
    src = eegbench.open(path)[0].source  # opened before the damage: only reads can notice it
    file.unlink()
    with pytest.raises(CorruptStoreError, match=f"{SIGNALS} is missing"):
        src.read(0, 10, None)
    with pytest.raises(CorruptStoreError, match="missing"):  # the recording's file check on first use
        eegbench.open(path)[0]
    file.write_bytes(b"\x89garbage" * (len(good) // 8) + b"\0" * (len(good) % 8))
    with pytest.raises(CorruptStoreError, match="not a readable HDF5 file"):
        src.read(0, 10, None)
    file.write_bytes(good[: len(good) * 2 // 3])
    with pytest.raises(CorruptStoreError):
        src.read(0, 10, None)
    with pytest.raises(CorruptStoreError, match="bytes"):  # manifest size check when the recording is first used
        eegbench.open(path)[0]


# --- laziness, pickle, processes -----------------------------------------------------------------
def test_open_reads_no_signal_bytes(tmp_path, monkeypatch):
    _, q, x = _signals()
    path = _save(tmp_path, x, q, compression="blosc-lz4")
    opened: list[str] = []
    real_file = h5py.File

    def spy(name, *args, **kwargs):
        opened.append(str(getattr(name, "_path", None) or os.fspath(name)))
        return real_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    ds = eegbench.open(path)
    src = ds[0].source
    signal_file = str(path / src.storage["file"])
    assert not any("signals" in p for p in opened) and not FILES.is_open(signal_file)
    assert "_h_ready" not in vars(src) and src._h_index is None and src._h_file is None
    # building a source touches nothing at all: it works for a store that does not exist
    ghost = get_backend("hdf5").open_signals(tmp_path / "nowhere", "rec-00000", src.layout, src.storage)
    assert ghost.n_times == N_TIMES
    np.testing.assert_array_equal(_bits(ds[0].get_data(start=0, stop=50)), _bits(x[:, :50]))
    assert src._h_index is not None and src._h_file is None  # fast path: no h5py handle left open
    assert FILES.is_open(signal_file)  # the shared file manager holds the descriptor, not the source
    ds.close()
    assert src._h_index is None and "_h_ready" not in vars(src) and not FILES.is_open(signal_file)


@pytest.mark.parametrize("compression", ["zstd", "lzf"])
def test_pickled_source_reads_in_this_process_and_in_spawn(tmp_path, compression):
    _, q, x = _signals(5)
    src = eegbench.open(_save(tmp_path, x, q, compression=compression))[0].source
    src.read(0, 10, None)  # open handles in the parent: they must not travel
    clone = pickle.loads(pickle.dumps(src))
    assert clone._h_index is None and clone._h_file is None and "_h_ready" not in vars(clone)
    CHUNK_CACHE.clear()
    np.testing.assert_array_equal(_bits(clone.read(100, 700, None)), _bits(x[:, 100:700]))
    if compression == "zstd":  # one spawn round trip is enough (it costs ~1-2 s of imports)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            got = pool.submit(src.read, 100, 700, None).result()
        np.testing.assert_array_equal(_bits(got), _bits(x[:, 100:700]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("compression", ["blosc-lz4", "lzf"])  # pread fast path, h5py path
def test_forked_child_reopens_and_reads_identical_data(tmp_path, compression):
    _, q, x = _signals(6)
    src = eegbench.open(_save(tmp_path, x, q, compression=compression))[0].source
    expected = src.read(0, N_TIMES, None)  # the parent now holds open handles
    parent_file = src._h_file
    signal_file = str(src.root / src.storage["file"])
    result = tmp_path / "child.npz"
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            CHUNK_CACHE.clear()
            if compression != "lzf":  # fast path: the child needs a descriptor, never HDF5
                h5py.File = None
            data = src.read(0, N_TIMES, None)
            if compression == "lzf":  # its own h5py handle, opened in this process
                fresh = src._h_file is not parent_file and src._h_pid == os.getpid()
            else:  # the child's file manager started empty and opened its own descriptor
                fresh = FILES._pid == os.getpid() and FILES.is_open(signal_file)
            np.savez(result, data=data, fresh=fresh)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with np.load(result) as got:
        assert bool(got["fresh"])
        np.testing.assert_array_equal(_bits(got["data"]), _bits(expected))
    np.testing.assert_array_equal(_bits(expected), _bits(x))
    CHUNK_CACHE.clear()  # the parent's handles still work after the child exited
    np.testing.assert_array_equal(_bits(src.read(0, N_TIMES, None)), _bits(x))
