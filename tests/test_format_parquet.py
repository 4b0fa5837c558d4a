"""NumPy+Parquet backend: bitwise round trips, chunk reads, integrity, laziness, processes."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import pickle
import threading
from pathlib import Path

import google_crc32c
import numcodecs
import numpy as np
import pyarrow.parquet as pq
import pytest

import eegbench
from eegbench.codecs import CodecSpec, decode_chunk, numcodecs_pipeline, undelta
from eegbench.errors import CorruptStoreError
from eegbench.formats import SignalLayout, get_backend
from eegbench.formats import parquet as pqfmt
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.model import ArraySource, Dataset, Recording
from eegbench.quantization import Quantization

SFREQ = 100.0
N_CH, N_TIMES = 5, 1037  # not a multiple of any chunk size used below
CODECS = ["none", "zstd", "blosc-zstd", "blosc-lz4", "gzip"]
COMPRESSED = CODECS[1:]
KEY = "rec-00000"


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _counts(n_ch: int = N_CH, n_times: int = N_TIMES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.integers(-40, 41, (n_ch, n_times)), axis=1)
    return np.clip(walk, -32768, 32767).astype(np.int16)


def _quant(kind: str, n_ch: int = N_CH) -> Quantization:
    rng = np.random.default_rng(1)
    if kind == "edf":  # general affine map: offset and a volts gain, like MNE's EDF reader
        return Quantization(rng.uniform(0.05, 0.5, n_ch), rng.normal(0, 3, n_ch), np.full(n_ch, 1e-6), "int16")
    return Quantization(rng.uniform(0.5e-7, 2e-7, n_ch), np.zeros(n_ch), np.ones(n_ch), "int16")


def _recording(variant: str) -> tuple[Recording, np.ndarray, np.ndarray | None]:
    """(recording, float32 samples, int16 counts or None) for variant int16/int16-edf/float32."""
    names = [f"C{i}" for i in range(N_CH)]
    # a description column: zero-column description tables did not survive Parquet (core bug, since fixed)
    desc = {"subject": "01"}
    if variant == "float32":
        x = np.random.default_rng(2).normal(0, 2e-5, (N_CH, N_TIMES)).astype(np.float32)
        return Recording(ArraySource(x), SFREQ, names, description=desc), x, None
    counts = _counts()
    q = _quant("edf" if variant == "int16-edf" else "simple")
    x = q.reconstruct(counts)
    return Recording(ArraySource(x, quantization=q), SFREQ, names, description=desc), x, counts


def _save(tmp_path: Path, variant: str, compression: str, *, delta: bool = False,
          chunk_seconds: float = 1.0, level: int | None = None, name: str = "s") -> Path:
    rec, _, _ = _recording(variant)
    return eegbench.save(Dataset([rec]), tmp_path / name, format="parquet", compression=compression,
                         level=level, chunk_seconds=chunk_seconds, delta=delta,
                         integer=True if variant.startswith("int") else "auto")


def _source(path: Path):
    return eegbench.open(path)[0].source


@pytest.fixture(autouse=True)
def _cold_cache():
    CHUNK_CACHE.clear()
    yield
    CHUNK_CACHE.clear()


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_seconds", [1.0, 0.37, 50.0])  # 100, 37 and n_times samples
@pytest.mark.parametrize("variant,delta", [("int16", False), ("int16", True), ("int16-edf", True),
                                           ("float32", None)])
@pytest.mark.parametrize("compression", CODECS)
def test_round_trip_bitwise(tmp_path, compression, variant, delta, chunk_seconds):
    _, x, counts = _recording(variant)
    level = {"zstd": 1, "gzip": 1, "blosc-zstd": 9, "blosc-lz4": 1}.get(compression)  # non-default levels
    path = _save(tmp_path, variant, compression, delta=delta, chunk_seconds=chunk_seconds, level=level)
    rec = eegbench.open(path)[0]
    src = rec.source
    assert src.layout.dtype == ("float32" if counts is None else "int16")
    assert src.layout.codec.delta == (bool(delta) and compression != "none")
    assert src.layout.codec.level == level
    np.testing.assert_array_equal(_bits(rec.get_data()), _bits(x))
    if counts is not None:
        got = src.read_counts(0, N_TIMES)
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, counts)
    CHUNK_CACHE.clear()
    for start, stop in [(0, 1), (N_TIMES - 1, N_TIMES), (13, 517), (0, N_TIMES)]:
        np.testing.assert_array_equal(_bits(rec.get_data(start=start, stop=stop)), _bits(x[:, start:stop]))


@pytest.mark.parametrize("compression", ["none", "blosc-lz4"])
def test_int32_counts_round_trip(tmp_path, compression):
    """int32 counts (24-bit BDF-like): stored as int32, reconstructed bit for bit."""
    counts = _counts().astype(np.int32) * 4096  # up to ~2**22: float32 samples still identify their count
    q = Quantization(np.full(N_CH, 3e-9), np.zeros(N_CH), np.ones(N_CH), "int32")
    x = q.reconstruct(counts)
    rec = Recording(ArraySource(x, quantization=q), SFREQ, [f"C{i}" for i in range(N_CH)],
                    description={"subject": "01"})
    path = eegbench.save(Dataset([rec]), tmp_path / "s", format="parquet", compression=compression, delta=True,
                         integer=True)
    src = _source(path)
    assert src.layout.dtype == "int32"
    np.testing.assert_array_equal(src.read_counts(0, N_TIMES), counts)
    np.testing.assert_array_equal(_bits(src.read(0, N_TIMES, None)), _bits(x))


@pytest.mark.parametrize("compression", CODECS)
@pytest.mark.parametrize("variant", ["int16-edf", "float32"])
def test_slices_picks_and_windows(tmp_path, compression, variant):
    _, x, _ = _recording(variant)
    rec = eegbench.open(_save(tmp_path, variant, compression, delta=True, chunk_seconds=0.5))[0]  # 50-sample chunks
    ranges = [(0, 50), (50, 100), (49, 51), (10, 40), (25, 175), (0, 1000), (990, N_TIMES), (1000, 1037),
              (333, 333)]
    for picks in [None, [3], [4, 0, 2], [1, 1]]:
        sel = slice(None) if picks is None else picks
        for start, stop in ranges:
            CHUNK_CACHE.clear()
            got = rec.get_data(start=start, stop=stop, picks=picks)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_array_equal(_bits(got), _bits(x[sel, start:stop]))
        starts = np.array([0, 7, 49, 50, 500, N_TIMES - 120])
        wins = rec.get_windows(starts, 120, picks=picks)
        expected = np.stack([x[sel, s:s + 120] for s in starts])
        np.testing.assert_array_equal(_bits(wins), _bits(expected))


def test_picks_by_name_on_view(tmp_path):
    _, x, _ = _recording("int16")
    rec = eegbench.open(_save(tmp_path, "int16", "zstd"))[0]
    sub = rec.pick(["C4", "C1"]).crop_samples(95, 310)
    np.testing.assert_array_equal(_bits(sub.get_data()), _bits(x[[4, 1], 95:310]))


# ---------------------------------------------------------------------------------------------
# files on disk are plain NumPy / Parquet
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["int16", "float32"])
def test_npy_is_plain_numpy(tmp_path, variant):
    _, x, counts = _recording(variant)
    path = _save(tmp_path, variant, "none")
    files = sorted(p.relative_to(path).as_posix() for p in (path / "signals").rglob("*") if p.is_file())
    assert files == [f"signals/000/{KEY}.npy"]
    arr = np.load(path / "signals" / "000" / f"{KEY}.npy", allow_pickle=False)
    n_chunks, cs = -(-N_TIMES // 100), 100
    assert arr.shape == (n_chunks, N_CH, cs) and arr.flags.c_contiguous  # blocked by chunk
    assert arr.dtype == np.dtype("<i2" if counts is not None else "<f4")
    # the README's one-liner: (n_channels, n_times); the last block is zero-padded
    np.testing.assert_array_equal(arr.transpose(1, 0, 2).reshape(N_CH, -1)[:, :N_TIMES],
                                  counts if counts is not None else x)
    assert not arr[-1, :, N_TIMES - (n_chunks - 1) * cs:].any()
    mm = np.load(path / "signals" / "000" / f"{KEY}.npy", mmap_mode="r")  # memory-maps as any .npy
    assert isinstance(mm, np.memmap) and mm.shape == arr.shape
    np.testing.assert_array_equal(mm[3], arr[3])


def test_tables_are_parquet(tmp_path):
    path = _save(tmp_path, "int16", "blosc-zstd")
    names = sorted(p.name for p in (path / "tables").iterdir())
    assert {"recordings.parquet", "channels.parquet", "annotations.parquet", "history.parquet",
            "description.parquet"} <= set(names)
    for name in names:
        table = pq.read_table(path / "tables" / name)
        assert table.num_columns > 0
    backend = get_backend("parquet")
    assert backend.read_table(path, "recordings") == (path / "tables/recordings.parquet").read_bytes()
    assert backend.read_table(path, "windows") is None


@pytest.mark.parametrize("compression", COMPRESSED)
def test_chunk_file_and_index_layout(tmp_path, compression):
    """The index is a labelled Parquet table (offset, size, crc32c, first_sample) whose metadata holds
    the numcodecs pipeline; chunks decode with it and with the shared pipeline alike."""
    import json

    import pyarrow.parquet as pq

    _, _, counts = _recording("int16")
    path = _save(tmp_path, "int16", compression, delta=True, chunk_seconds=1.0)
    table = pq.read_table(path / "signals" / "000" / f"{KEY}.index.parquet")
    assert table.column_names == ["offset", "size", "crc32c", "first_sample"]
    meta = json.loads(table.schema.metadata[b"eegbench"])
    assert meta["chunks_file"] == f"{KEY}.chunks" and meta["dtype"] == "<i2" and meta["shape"] == [N_CH, N_TIMES]
    stored = [numcodecs.get_codec(c) for c in meta["codecs"]]
    index = np.stack([table.column(c).to_numpy().astype(np.int64) for c in ("offset", "size", "crc32c")], axis=1)
    blob = (path / "signals" / "000" / f"{KEY}.chunks").read_bytes()
    n_chunks = -(-N_TIMES // 100)
    assert index.shape == (n_chunks, 3) and table.column("first_sample").to_pylist() == list(range(0, N_TIMES, 100))
    assert index[0, 0] == 0 and np.all(index[1:, 0] == index[:-1, 0] + index[:-1, 1])
    assert index[-1, 0] + index[-1, 1] == len(blob)
    pipeline = numcodecs_pipeline(CodecSpec(compression, _source(path).layout.codec.level, True), np.int16)
    for i, (offset, nbytes, crc) in enumerate(index.tolist()):
        data = blob[offset:offset + nbytes]
        assert google_crc32c.value(data) == crc
        width = min(100, N_TIMES - i * 100)
        np.testing.assert_array_equal(decode_chunk(data, pipeline, np.int16, (N_CH, width)),
                                      counts[:, i * 100:i * 100 + width])
        buf = data
        for codec in reversed(stored):  # numcodecs alone, from the stored configs
            buf = codec.decode(buf)
        np.testing.assert_array_equal(np.frombuffer(buf, dtype=meta["dtype"]).reshape(N_CH, -1),
                                      counts[:, i * 100:i * 100 + width])


# ---------------------------------------------------------------------------------------------
# integrity
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", COMPRESSED)
def test_flipped_byte_in_chunk_raises(tmp_path, compression):
    _, x, _ = _recording("int16")
    path = _save(tmp_path, "int16", compression, chunk_seconds=1.0)
    index = pqfmt.read_chunk_index((path / "signals" / "000" / f"{KEY}.index.parquet").read_bytes())
    chunks = path / "signals" / "000" / f"{KEY}.chunks"
    data = bytearray(chunks.read_bytes())
    offset, nbytes, _, _ = index[3].tolist()
    data[offset + nbytes // 2] ^= 0x01
    chunks.write_bytes(bytes(data))  # same size: the manifest's size check at open passes
    rec = eegbench.open(path)[0]
    with pytest.raises(CorruptStoreError, match=r"recording rec-00000: chunk 3 .*CRC32C") as info:
        rec.get_data(start=250, stop=420)
    assert str(path) in str(info.value)
    np.testing.assert_array_equal(_bits(rec.get_data(start=0, stop=300)), _bits(x[:, :300]))  # other chunks still read
    with pytest.raises(CorruptStoreError):
        eegbench.open(path, verify=True)


def _reopen(path: Path):
    """A factory of fresh sources for ``path``, made before the files are damaged (it bypasses
    eegbench.open's manifest size check, to exercise the source's own checks)."""
    src = _source(path)
    backend = get_backend("parquet")
    return lambda: backend.open_signals(path, KEY, src.layout, src.storage)


@pytest.mark.parametrize("cut", [10, 1000, 3])  # inside the header, inside the data, last bytes
def test_truncated_npy_is_corrupt(tmp_path, cut):
    path = _save(tmp_path, "float32", "none")
    npy = path / "signals" / "000" / f"{KEY}.npy"
    src = _reopen(path)()
    size = npy.stat().st_size
    os.truncate(npy, cut if cut < 100 else size - cut)
    with pytest.raises(CorruptStoreError, match=r"rec-00000.*truncated"):
        src.read(0, 10, None)
    with pytest.raises(CorruptStoreError, match=r"has \d+ bytes"):  # and the core's stat check on first use
        eegbench.open(path)[0]


def test_npy_with_wrong_shape_or_extra_bytes_is_corrupt(tmp_path):
    path = _save(tmp_path, "int16", "none")
    npy = path / "signals" / "000" / f"{KEY}.npy"
    fresh = _reopen(path)
    with open(npy, "ab") as fh:
        fh.write(b"\0" * 8)
    with pytest.raises(CorruptStoreError, match="expected"):
        fresh().read(0, 10, None)
    n_chunks = -(-N_TIMES // 100)
    for wrong in [np.zeros((N_CH, N_TIMES), np.int16),  # the channel-major layout of earlier versions
                  np.zeros((n_chunks - 1, N_CH, 100), np.int16), np.zeros((n_chunks, N_CH, 99), np.int16),
                  np.zeros((n_chunks, N_CH, 100), np.int32), np.zeros((n_chunks, N_CH, 100), ">i2"),
                  np.asfortranarray(np.zeros((n_chunks, N_CH, 100), np.int16))]:
        np.save(npy, wrong)
        with pytest.raises(CorruptStoreError, match="expected C-ordered"):
            fresh().read(0, 10, None)


@pytest.mark.filterwarnings("ignore:Reading `.npy`")  # NumPy's Python 2 fallback for the "[" header
def test_crafted_npy_header_is_corrupt(tmp_path):
    """A header that lies (a huge or negative shape, another dtype, an absurd header length, an
    object array) is refused before anything is mapped or allocated: CorruptStoreError, never data."""
    path = _save(tmp_path, "int16", "none")
    npy = path / "signals" / "000" / f"{KEY}.npy"
    good = npy.read_bytes()
    fresh = _reopen(path)
    hlen = int.from_bytes(good[8:10], "little")
    header = good[10:10 + hlen].decode("latin1")
    n_chunks = -(-N_TIMES // 100)
    for crafted in [header.replace(f"({n_chunks}, {N_CH}, 100)", f"({n_chunks}, {N_CH}, 10000000000)"),
                    header.replace(f"({n_chunks}, {N_CH}, 100)", f"({n_chunks}, -{N_CH}, 100)"),
                    header.replace("'<i2'", "'|O'"),
                    header.replace("'<i2'", "'<f2'"),
                    header.replace("False", "True"),
                    header.replace("{", "[")]:
        crafted = crafted.ljust(hlen)[:hlen].encode("latin1")
        npy.write_bytes(good[:10] + crafted + good[10 + hlen:])
        with pytest.raises(CorruptStoreError, match=r"rec-00000.*(expected|not a valid)"):
            fresh().read(0, 10, None)
    npy.write_bytes(good[:8] + (60000).to_bytes(2, "little") + good[10:])  # header length past the data
    with pytest.raises(CorruptStoreError, match="rec-00000"):
        fresh().read(0, 10, None)
    npy.write_bytes(b"\x93NUMPY\x03\x00" + good[8:])  # a format version eegbench never writes
    with pytest.raises(CorruptStoreError, match="not a valid"):
        fresh().read(0, 10, None)
    npy.write_bytes(good)
    np.testing.assert_array_equal(fresh().read_counts(0, N_TIMES), _counts())


@pytest.mark.parametrize("where", ["data", "padding"])
def test_flipped_byte_in_npy_block_raises(tmp_path, where):
    """A flipped byte in a block (its samples or the zero padding of the last block) fails the
    block's CRC32C on the first read of that block; other blocks still read."""
    _, x, _ = _recording("float32")
    path = _save(tmp_path, "float32", "none")
    npy = path / "signals" / "000" / f"{KEY}.npy"
    data = bytearray(npy.read_bytes())
    offset = len(data) - 11 * N_CH * 100 * 4  # data start
    block = 3 if where == "data" else 10
    at = offset + block * N_CH * 100 * 4 + (N_CH * 100 * 4 - 1 if where == "padding" else 777)
    data[at] ^= 0x20
    npy.write_bytes(bytes(data))
    rec = eegbench.open(path)[0]
    first = block * 100
    with pytest.raises(CorruptStoreError, match=rf"chunk {block} .*(CRC32C|crc32c)"):
        rec.get_data(start=first + 5, stop=min(first + 50, N_TIMES))
    np.testing.assert_array_equal(_bits(rec.get_data(start=0, stop=300)), _bits(x[:, :300]))


@pytest.mark.parametrize("damage", ["truncate", "remove-chunks", "remove-index", "bad-index"])
def test_damaged_chunk_files_are_corrupt(tmp_path, damage):
    path = _save(tmp_path, "int16", "zstd")
    src = _reopen(path)()
    chunks, index = path / "signals" / "000" / f"{KEY}.chunks", path / "signals" / "000" / f"{KEY}.index.parquet"
    if damage == "truncate":
        os.truncate(chunks, chunks.stat().st_size - 5)
    elif damage == "remove-chunks":
        chunks.unlink()
    elif damage == "remove-index":
        index.unlink()
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({c: np.zeros(2, np.int64) for c in ("offset", "size", "crc32c", "first_sample")}), index)
    with pytest.raises(CorruptStoreError, match="rec-00000"):
        src.read(0, N_TIMES, None)


def test_open_signals_rejects_bad_storage(tmp_path):
    path = _save(tmp_path, "int16", "zstd")
    src = _source(path)
    backend = get_backend("parquet")
    with pytest.raises(CorruptStoreError):
        backend.open_signals(path, "../../etc/passwd", src.layout, src.storage)
    with pytest.raises(CorruptStoreError):
        backend.open_signals(path, KEY, src.layout, {**src.storage, "kind": "zip"})
    with pytest.raises(CorruptStoreError):  # a codec this format never writes
        backend.open_signals(path, KEY, dataclasses.replace(src.layout, codec=CodecSpec("lzf")), src.storage)
    with pytest.raises(CorruptStoreError):  # compressed layout but an .npy storage
        backend.open_signals(path, KEY, src.layout, {"version": 1, "kind": "npy", "files": {"npy": "x"}})


# ---------------------------------------------------------------------------------------------
# returned arrays, laziness, processes, threads
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["int16", "float32"])
@pytest.mark.parametrize("compression", ["none", "blosc-lz4"])
def test_reads_return_new_arrays(tmp_path, compression, variant):
    _, x, _ = _recording(variant)
    rec = eegbench.open(_save(tmp_path, variant, compression, chunk_seconds=1.0))[0]
    src = rec.source
    outs = [rec.get_data(start=100, stop=200), rec.get_data(start=5, stop=60), rec.get_data(start=0, stop=N_TIMES), rec.get_data(start=0, stop=50, picks=[2]),
            rec.get_windows([0, 100], 100), src.read_counts(100, 200)]
    held = [getattr(src, "_h_arr", None)] + [src.chunk(i) for i in (0, 1)]
    for out in outs:
        assert type(out) is np.ndarray and out.flags.writeable and out.flags.owndata
        assert not any(h is not None and np.shares_memory(out, h) for h in held)
    outs[0][:] = 0  # writing a result changes nothing stored or cached
    np.testing.assert_array_equal(_bits(rec.get_data(start=100, stop=200)), _bits(x[:, 100:200]))


def test_open_does_no_signal_io(tmp_path, monkeypatch):
    paths = [_save(tmp_path, "int16", c, name=c) for c in ("none", "zstd")]

    def boom(self):
        raise AssertionError("signal file opened")

    monkeypatch.setattr(pqfmt.NpySource, "_prepare", boom)
    monkeypatch.setattr(pqfmt.ChunkFileSource, "_prepare", boom)
    monkeypatch.setattr(np, "load", boom)
    for path in paths:
        rec = eegbench.open(path)[0]
        assert rec.n_times == N_TIMES
        assert not [k for k in vars(rec.source) if k.startswith("_h_")]
    monkeypatch.undo()
    _, x, _ = _recording("int16")
    for path in paths:
        np.testing.assert_array_equal(_bits(eegbench.open(path)[0].get_data(start=0, stop=10)), _bits(x[:, :10]))


def _read_pickled(blob: bytes) -> np.ndarray:
    src = pickle.loads(blob)
    return src.read(0, N_TIMES, None)


def test_pickled_source_reads_in_spawned_child(tmp_path):
    _, x, _ = _recording("int16")
    blobs = []
    for compression in ("none", "blosc-zstd"):
        src = _source(_save(tmp_path, "int16", compression, name=compression, delta=True))
        src.read(0, 10, None)  # handles open in the parent; pickling must drop them
        state = src.__getstate__()
        assert not [k for k in state if k.startswith("_h_")]
        blobs.append(pickle.dumps(src))
    with mp.get_context("spawn").Pool(1) as pool:
        for got in pool.map(_read_pickled, blobs):
            np.testing.assert_array_equal(_bits(got), _bits(x))


def _forked_reads(src, windows, queue) -> None:
    CHUNK_CACHE.clear()  # read from disk in the child, through handles it opened itself
    queue.put([src.read(a, b, None) for a, b in windows])


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_forked_child_reads_identical_data(tmp_path, compression):
    rec = eegbench.open(_save(tmp_path, "int16", compression, chunk_seconds=0.5))[0]
    src = rec.source
    windows = [(0, 120), (377, 912), (990, N_TIMES)]
    parent = [src.read(a, b, None) for a, b in windows]  # the parent's handles are open before fork
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_reads, args=(src, windows, queue))
    child.start()
    got = queue.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    for a, b in zip(parent, got):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    CHUNK_CACHE.clear()
    np.testing.assert_array_equal(_bits(src.read(0, 120, None)), _bits(parent[0]))  # parent handles intact


def test_threads_share_a_source(tmp_path):
    _, x, _ = _recording("int16-edf")
    src = _source(_save(tmp_path, "int16-edf", "blosc-zstd", chunk_seconds=0.2))
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for s in rng.integers(0, N_TIMES - 64, 60).tolist():
                if s % 7 == 0:
                    src.close()  # closing under other readers must not break them
                np.testing.assert_array_equal(_bits(src.read(s, s + 64, None)), _bits(x[:, s:s + 64]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# ---------------------------------------------------------------------------------------------
# backend API directly
# ---------------------------------------------------------------------------------------------
def _layout(compression: str, chunk: int = 100, delta: bool = False) -> SignalLayout:
    level = None if compression == "none" else 3
    return SignalLayout(N_CH, N_TIMES, "int16", chunk, CodecSpec(compression, level, delta), _quant("simple"))


def _blocks(counts: np.ndarray, block: int):
    for start in range(0, counts.shape[1], block):
        yield start, counts[:, start:start + block]


def test_write_recording_overwrites_previous_files(tmp_path):
    backend = get_backend("parquet")
    counts = _counts()
    for compression in ("zstd", "none", "gzip"):
        layout = _layout(compression, delta=compression != "none")
        storage = backend.write_recording(tmp_path, KEY, _blocks(counts, 300), layout)
        kept = sorted(p.name for p in (tmp_path / "signals" / "000").iterdir())
        assert kept == ([f"{KEY}.npy"] if compression == "none" else [f"{KEY}.chunks", f"{KEY}.index.parquet"])
        src = backend.open_signals(tmp_path, KEY, layout, storage)
        np.testing.assert_array_equal(src.read_counts(0, N_TIMES), counts)
        src.close()


def _write_in_child(root: Path, key: str, seed: int) -> None:
    get_backend("parquet").write_recording(root, key, _blocks(_counts(seed=seed), 200), _layout("blosc-lz4"))


def test_concurrent_writers_in_one_store(tmp_path):
    """joblib workers write different recordings into one (not yet existing) signals folder."""
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_write_in_child, args=(tmp_path, f"rec-{i:05d}", i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    backend = get_backend("parquet")
    for i in range(3):
        storage = {"version": 1, "kind": "chunks", "files": {"chunks": "", "index": ""}, "checksum": "crc32c"}
        src = backend.open_signals(tmp_path, f"rec-{i:05d}", _layout("blosc-lz4"), storage)
        np.testing.assert_array_equal(src.read_counts(0, N_TIMES), _counts(seed=i))


def test_int32_extremes_with_delta(tmp_path):
    """Differences of extreme int32 counts overflow; the delta filter must wrap losslessly."""
    counts = np.random.default_rng(5).integers(-(2**31), 2**31, (N_CH, N_TIMES), endpoint=False).astype(np.int32)
    counts[0, :3] = [2**31 - 1, -(2**31), 2**31 - 1]
    q = Quantization(np.ones(N_CH), np.zeros(N_CH), np.ones(N_CH), "int32")
    layout = SignalLayout(N_CH, N_TIMES, "int32", 128, CodecSpec("zstd", 3, True), q)
    backend = get_backend("parquet")
    storage = backend.write_recording(tmp_path, KEY, _blocks(counts, 256), layout)
    src = backend.open_signals(tmp_path, KEY, layout, storage)
    np.testing.assert_array_equal(src.read_counts(0, N_TIMES), counts)
    np.testing.assert_array_equal(src.read_counts(100, 900), counts[:, 100:900])


def test_write_recording_checks_blocks(tmp_path):
    backend = get_backend("parquet")
    counts = _counts()
    with pytest.raises(TypeError, match="dtype"):
        backend.write_recording(tmp_path, KEY, _blocks(counts.astype(np.float32), 300), _layout("zstd"))
    with pytest.raises(ValueError, match="cover"):
        backend.write_recording(tmp_path, KEY, _blocks(counts[:, :500], 300), _layout("none"))
    with pytest.raises(ValueError, match="continue"):
        backend.write_recording(tmp_path, KEY, iter([(100, counts)]), _layout("zstd"))
    with pytest.raises(ValueError, match="inside a chunk"):
        backend.write_recording(tmp_path, KEY, _blocks(counts, 150), _layout("zstd"))
    with pytest.raises(ValueError, match="invalid recording key"):
        backend.write_recording(tmp_path, "a/b", _blocks(counts, 300), _layout("zstd"))


# ---------------------------------------------------------------------------------------------
# exact fast kernels
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["<i2", "<i4"])
def test_undelta_matches_numcodecs(dtype):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    arr = rng.integers(info.min, info.max, (7, 333), endpoint=True).astype(dtype)  # overflowing differences
    arr[0, :3] = [info.max, info.min, info.max]
    codec = numcodecs.Delta(dtype=dtype)
    enc = np.frombuffer(codec.encode(arr), dtype=dtype).reshape(arr.shape)
    np.testing.assert_array_equal(undelta(enc), np.asarray(codec.decode(enc)).reshape(arr.shape))
    np.testing.assert_array_equal(undelta(enc), arr)


@pytest.mark.parametrize("case", ["simple", "edf", "neg-scale", "neg-zero-offset", "mixed", "shared-edf",
                                  "shared-simple", "shared-but-signed-zero"])
def test_fast_reconstruct_matches_the_contract(case):
    n = 6
    rng = np.random.default_rng(4)
    scale, offset, gain = rng.uniform(1e-8, 1e-6, n), np.zeros(n), np.ones(n)
    if case == "edf":
        scale, offset, gain = rng.uniform(0.01, 1, n), rng.normal(0, 5, n), np.full(n, 1e-6)
    elif case == "neg-scale":
        scale[2] = -scale[2]  # 0 * -s = -0.0; + 0.0 makes it +0.0: the offset step must stay
    elif case == "neg-zero-offset":
        scale[2], offset[:] = -scale[2], -0.0
    elif case == "mixed":
        gain[1], offset[4] = 2.5, 1e-7
    elif case == "shared-edf":  # one calibration for every channel (EEGBCI): applied as scalars
        scale, offset, gain = np.full(n, 0.137), np.full(n, -1.5), np.full(n, 1e-6)
    elif case == "shared-simple":
        scale = np.full(n, 3e-8)
    elif case == "shared-but-signed-zero":  # 0.0 and -0.0 compare equal but are not the same offset
        scale, offset[1] = np.full(n, -3e-8), -0.0
    q = Quantization(scale, offset, gain, "int16")
    counts = rng.integers(-32768, 32767, (n, 4000), endpoint=True).astype(np.int16)
    counts[:, :3] = 0
    assert q._shared == (case.startswith("shared-") and case != "shared-but-signed-zero")

    def reference(c: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:  # the contract, verbatim
        sl = slice(None) if rows is None else rows
        return (((c.astype(np.float64) * scale[sl, None]) + offset[sl, None]) * gain[sl, None]).astype(np.float32)

    np.testing.assert_array_equal(_bits(q.reconstruct(counts)), _bits(reference(counts)))
    ch = np.array([2, 0, 2, 5])
    np.testing.assert_array_equal(_bits(q.reconstruct(counts[ch], ch)), _bits(reference(counts[ch], ch)))
