"""Zarr v3 backend: bitwise round trips, the direct read path against zarr-python, sharding
layout, integrity errors, empty chunks, and lazy handles across pickle and fork."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

import eegbench
from conftest import make_recording
from eegbench import Quantization, Recording
from eegbench.errors import CorruptStoreError
from eegbench.formats import SignalLayout, get_backend
from eegbench.formats import zarr as zb
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.io import FILES
from eegbench.io.layout import fanout
from eegbench.model import ArraySource

CODECS = [("none", None), ("zstd", 3), ("blosc-zstd", 5), ("blosc-lz4", 5), ("gzip", 4)]
# (quantized samples, delta option): int16 counts with and without delta, float32 volts
VARIANTS = {"int16+delta": (True, True), "int16": (True, False), "float32": (False, False)}
EMPTY = 2**64 - 1

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # zarr: numcodecs codecs / consolidated metadata


def _rec(n_channels: int = 6, n_times: int = 1050, sfreq: float = 100.0, seed: int = 0,
         quantized: bool = True) -> Recording:
    return make_recording(n_channels, n_times, sfreq, seed=seed, quantized=quantized,
                          description={"subject": f"s{seed}"})


def _save(rec: Recording | list[Recording], path: Path, **kwargs) -> eegbench.Dataset:
    eegbench.save(eegbench.Dataset(rec if isinstance(rec, list) else [rec]), path, format="zarr", **kwargs)
    return eegbench.open(path)


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def _zarr_counts(path: Path, source) -> np.ndarray:
    return zarr.open_array(str(path / source.storage["array"]), mode="r")[...]


def _shard_index(path: Path, source, shard: int) -> np.ndarray:
    """Parse the shard index independently of the backend: n x (offset, nbytes) + crc32c at the end."""
    data = (path / source.storage["shard_path"].format(shard=shard)).read_bytes()
    n = source.storage["shard_samples"] // source.chunk_samples
    return np.frombuffer(data[-(16 * n + 4):-4], dtype="<u8").reshape(n, 2)


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of at most 4 chunks of a 6-channel int16/float32 recording (several shards per recording)."""
    def cap(n_channels: int, chunk_samples: int, itemsize: int, chunks: int = 4) -> None:
        monkeypatch.setattr(zb, "SHARD_MAX_BYTES", n_channels * chunk_samples * itemsize * chunks)
    return cap


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("compression,level", CODECS)
def test_round_trip_every_codec(tmp_path, monkeypatch, compression, level, variant):
    quantized, delta = VARIANTS[variant]
    rec = _rec(quantized=quantized)
    # 37-sample chunks (1050 is not a multiple), 4 chunks per shard: 8 shards, the last one short
    monkeypatch.setattr(zb, "SHARD_MAX_BYTES", 6 * 37 * 4 * 4 if not quantized else 6 * 37 * 2 * 4)
    ds = _save(rec, tmp_path / "s", compression=compression, level=level, chunk_seconds=0.37, delta=delta,
               integer=True if quantized else "auto")
    back = ds[0]
    src = back.source
    assert src.chunk_samples == 37 and src.storage["shard_samples"] == 148 and src.storage["n_shards"] == 8
    assert src.dtype == (np.int16 if quantized else np.float32)
    assert src.layout.codec.delta == (quantized and delta and compression != "none")
    names = [c["name"] for c in src.storage["codecs"]]
    assert names[-1] == "crc32c" and ("numcodecs.delta" in names) == src.layout.codec.delta
    _bitwise_equal(back.get_data(), rec.get_data())
    # the direct path returns exactly what zarr-python returns, whole and sliced
    expected = _zarr_counts(tmp_path / "s", src)
    CHUNK_CACHE.clear()
    _bitwise_equal(src.read_counts(0, rec.n_times), expected)
    CHUNK_CACHE.clear()
    for start, stop in [(0, 1), (36, 38), (140, 300), (147, 149), (1000, 1050), (1049, 1050), (5, 1045)]:
        _bitwise_equal(src.read_counts(start, stop), expected[:, start:stop])


@pytest.mark.parametrize("chunk_seconds", [0.1, 0.64, 2.5, 100.0])
def test_chunk_sizes(tmp_path, chunk_seconds):
    rec = _rec(5, 1003, 100.0, seed=3)
    ds = _save(rec, tmp_path / "s", chunk_seconds=chunk_seconds)
    src = ds[0].source
    assert src.chunk_samples == min(round(chunk_seconds * 100), 1003)
    assert src.storage["n_shards"] == 1  # small recording: one shard holds everything
    _bitwise_equal(ds[0].get_data(), rec.get_data())
    _bitwise_equal(src.read_counts(0, 1003), _zarr_counts(tmp_path / "s", src))


def test_int32_counts_with_delta(tmp_path):
    rng = np.random.default_rng(7)
    counts = np.cumsum(rng.integers(-50_000, 50_001, size=(3, 900)), axis=1).astype(np.int32)
    q = Quantization(np.full(3, 0.5), np.zeros(3), np.full(3, 1e-9), "int32")
    rec = Recording(ArraySource(q.reconstruct(counts), quantization=q), 100.0, ["a", "b", "c"],
                    description={"subject": "x"})
    ds = _save(rec, tmp_path / "s", compression="zstd", chunk_seconds=0.33, delta=True)
    src = ds[0].source
    assert src.dtype == np.int32 and src.layout.codec.delta
    _bitwise_equal(ds[0].get_data(), rec.get_data())
    _bitwise_equal(src.read_counts(0, 900), _zarr_counts(tmp_path / "s", src))


def test_slices_cross_chunk_and_shard_boundaries_with_picks(tmp_path, small_shards):
    rec = _rec(6, 1050, 100.0, seed=4)
    small_shards(6, 50, 2)  # 50-sample chunks, 200-sample shards
    ds = _save(rec, tmp_path / "s", chunk_seconds=0.5)
    back, full = ds[0], rec.get_data()
    assert back.source.storage["shard_samples"] == 200 and back.source.storage["n_shards"] == 6
    rng = np.random.default_rng(0)
    bounds = [0, 49, 50, 51, 199, 200, 201, 399, 400, 1000, 1049, 1050]
    cases = [(a, b) for a in bounds for b in bounds if a < b] + \
        [tuple(sorted(rng.integers(0, 1051, 2))) for _ in range(30)]
    for start, stop in cases:
        if start == stop:
            continue
        CHUNK_CACHE.clear()
        _bitwise_equal(back.get_data(start=start, stop=stop), full[:, start:stop])
    for picks in (["C1", "C4"], [5, 0, 2], "C2"):
        idx = rec.pick_indices(picks)
        _bitwise_equal(back.get_data(start=190, stop=410, picks=picks), full[idx, 190:410])
    windows = back.get_windows([0, 150, 199, 950], 100, picks=[3, 1])
    _bitwise_equal(windows, np.stack([full[[3, 1], s:s + 100] for s in (0, 150, 199, 950)]))


# --------------------------------------------------------------------------------------------
# layout on disk and interoperability
# --------------------------------------------------------------------------------------------
def test_few_files_per_recording(tmp_path, small_shards):
    recs = [_rec(4, 1000 + 37 * i, 100.0, seed=i) for i in range(3)]
    _save(recs, tmp_path / "one")
    for key in ("rec-00000", "rec-00001", "rec-00002"):
        files = sorted(p.relative_to(tmp_path / "one" / "signals" / fanout(key) / key).as_posix()
                       for p in (tmp_path / "one" / "signals" / fanout(key) / key).rglob("*") if p.is_file())
        # a group: the sharded signals (one shard file) + its channel and time coordinates
        assert files == ["channel/c/0", "channel/zarr.json", "signals/c/0/0", "signals/zarr.json",
                         "time/c/0", "time/zarr.json", "zarr.json"]
    small_shards(4, 100, 2, chunks=3)
    ds = _save(recs[:1], tmp_path / "capped")
    folder = tmp_path / "capped" / "signals" / "000" / "rec-00000" / "signals"
    n_files = sum(1 for p in folder.rglob("*") if p.is_file())
    assert n_files == 1 + ds[0].source.storage["n_shards"] == 1 + 4  # 10 chunks -> 4 balanced shards


def test_shard_planning_is_balanced_and_capped():
    from eegbench.codecs import CodecSpec

    layout = SignalLayout(129, 1_800_000, "float32", 500, CodecSpec("none"))  # 1 h at 500 Hz, 928 MB
    shard = zb.shard_samples_for(layout)
    assert shard % 500 == 0 and shard * 129 * 4 <= zb.SHARD_MAX_BYTES
    n_shards = -(-1_800_000 // shard)
    assert n_shards == 4 and n_shards * shard - 1_800_000 < n_shards * 500  # padding < a chunk per shard
    small = SignalLayout(4, 1000, "int16", 100, CodecSpec("none"))
    assert zb.shard_samples_for(small) == 1000


def test_plain_zarr_reads_the_store_consolidated(tmp_path):
    recs = [_rec(4, 600, 100.0, seed=1), _rec(3, 500, 100.0, seed=2, quantized=False)]
    ds = _save(recs, tmp_path / "s", compression="gzip")
    meta = json.loads((tmp_path / "s" / "zarr.json").read_text())
    consolidated = meta["consolidated_metadata"]["metadata"]
    assert {"signals", "tables", "signals/000/rec-00000", "signals/000/rec-00001", "tables/recordings"} <= set(consolidated)
    group = zarr.open_group(str(tmp_path / "s"), mode="r", use_consolidated=True)
    for rec, back in zip(recs, ds):
        array = group[back.source.storage["array"]]
        assert array.shape == (rec.n_channels, rec.n_times)
        assert array.chunks == (rec.n_channels, back.source.chunk_samples)  # inner chunk
        _bitwise_equal(array[...], back.source.read_counts(0, rec.n_times))
        attrs = array.attrs["eegbench"]
        assert attrs["chunk_samples"] == back.source.chunk_samples and attrs["codec"] == "gzip-4"
    q_attrs = group["signals/000/rec-00000/signals"].attrs["eegbench"]
    q = recs[0].quantization
    volts = Quantization(np.array(q_attrs["q_scale"]), np.array(q_attrs["q_offset"]),
                         np.array(q_attrs["q_gain"]), q_attrs["stored_dtype"]).reconstruct(group["signals/000/rec-00000/signals"][...])
    _bitwise_equal(volts, recs[0].get_data())  # the attributes alone reproduce the volts
    assert "formula" in q_attrs and np.array_equal(q_attrs["q_scale"], q.scale)
    backend = get_backend("zarr")
    assert group["tables/channels"][...].tobytes() == backend.read_table(tmp_path / "s", "channels")


def test_tables(tmp_path):
    backend = get_backend("zarr")
    payload = bytes(range(256)) * 7
    backend.write_table(tmp_path, "t", payload)
    backend.write_table(tmp_path, "t", payload[:100])  # overwrite
    assert backend.read_table(tmp_path, "t") == payload[:100]
    assert backend.read_table(tmp_path, "absent") is None
    chunk = tmp_path / "tables" / "t" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="table t fails its crc32c"):
        backend.read_table(tmp_path, "t")


def test_overwrite_existing_key_leaves_no_stale_shard(tmp_path, small_shards):
    backend = get_backend("zarr")
    from eegbench.codecs import CodecSpec

    def layout(n_times: int) -> SignalLayout:
        return SignalLayout(2, n_times, "int16", 10, CodecSpec("zstd", 3))

    small_shards(2, 10, 2, chunks=2)
    big = np.arange(2 * 100, dtype=np.int16).reshape(2, 100)
    blocks = [(0, big[:, :33]), (33, big[:, 33:71]), (71, big[:, 71:])]  # not chunk-aligned: carried over
    storage = backend.write_recording(tmp_path, "k", blocks, layout(100))
    assert len(list((tmp_path / "signals" / fanout("k") / "k" / "signals" / "c" / "0").iterdir())) == 5
    _bitwise_equal(backend.open_signals(tmp_path, "k", layout(100), storage).read_counts(0, 100), big)
    small = -big[:, :30]
    storage = backend.write_recording(tmp_path, "k", iter([(0, small)]), layout(30))
    assert sorted(p.name for p in (tmp_path / "signals" / fanout("k") / "k" / "signals" / "c" / "0").iterdir()) == ["0", "1"]
    src = backend.open_signals(tmp_path, "k", layout(30), storage)
    _bitwise_equal(src.read_counts(0, 30), small)


@pytest.mark.parametrize("index_location", ["end", "start"])
def test_fast_path_reads_shards_written_by_zarr_python(tmp_path, index_location):
    """Shards that zarr-python wrote itself (Morton-ordered chunks, either index location, a shard
    without file) read identically through the direct path."""
    from eegbench.codecs import CodecSpec

    q = Quantization(np.full(3, 0.5), np.zeros(3), np.ones(3), "int16")
    layout = SignalLayout(3, 1000, "int16", 40, CodecSpec("zstd", 3, delta=True), q)
    filters, serializer, compressors = zb._inner_codecs(layout)
    rng = np.random.default_rng(9)
    counts = np.cumsum(rng.integers(-9, 10, size=(3, 1000)), axis=1).astype(np.int16)
    counts[:, 320:640] = 0  # shard 1 (320..639) entirely empty: zarr writes no file for it
    counts[:, 700:740] = 0  # one empty inner chunk inside shard 2
    folder = tmp_path / "signals" / "k"
    array = zarr.create_array(str(folder), shape=counts.shape, dtype="int16", chunks=(3, 40),
                              shards={"shape": (3, 320), "index_location": index_location}, filters=filters,
                              serializer=serializer, compressors=compressors, fill_value=0)
    array[:, :] = counts
    assert not (folder / "c" / "0" / "1").exists()
    storage = {"array": "signals/k", "shard_path": "signals/k/c/0/{shard}", "shard_samples": 320,
               "index_location": index_location,
               "codecs": [c.to_dict() for c in (*filters, serializer, *compressors)]}
    src = get_backend("zarr").open_signals(tmp_path, "k", layout, storage)
    _bitwise_equal(src.read_counts(0, 320), counts[:, :320])
    _bitwise_equal(src.read_counts(640, 1000), counts[:, 640:])
    with pytest.raises(CorruptStoreError, match="shard file signals/k/c/0/1 is missing"):
        src.read_counts(300, 340)  # eegbench never omits a shard file: absent means damaged


def test_write_rejects_bad_blocks(tmp_path):
    backend = get_backend("zarr")
    from eegbench.codecs import CodecSpec

    layout = SignalLayout(2, 20, "int16", 10, CodecSpec("none"))
    with pytest.raises(ValueError, match="expected 10"):
        backend.write_recording(tmp_path, "k", [(0, np.zeros((2, 10), np.int16)), (15, np.zeros((2, 10), np.int16))],
                                layout)
    with pytest.raises(TypeError, match="losslessly"):
        backend.write_recording(tmp_path, "k", [(0, np.zeros((2, 20), np.float32))], layout)
    with pytest.raises(ValueError, match="cover 10 of 20"):
        backend.write_recording(tmp_path, "k", [(0, np.zeros((2, 10), np.int16))], layout)


def test_parallel_writers_produce_consolidated_store(tmp_path):
    recs = [_rec(3, 400 + 10 * i, 100.0, seed=i) for i in range(3)]
    ds = _save(recs, tmp_path / "s", jobs=2)
    group = zarr.open_group(str(tmp_path / "s"), mode="r")
    assert {f"signals/000/rec-0000{i}" for i in range(3)} <= set(group.metadata.consolidated_metadata.flattened_metadata)
    for rec, back in zip(recs, ds):
        _bitwise_equal(back.get_data(), rec.get_data())


# --------------------------------------------------------------------------------------------
# integrity
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["none", "blosc-zstd"])
def test_flipped_byte_in_chunk_is_detected(tmp_path, compression):
    rec = _rec(4, 500, 100.0)
    ds = _save(rec, tmp_path / "s", compression=compression, chunk_seconds=1.0)
    src = ds[0].source
    entries = _shard_index(tmp_path / "s", src, 0)
    off, nbytes = (int(v) for v in entries[2])
    shard = tmp_path / "s" / src.storage["shard_path"].format(shard=0)
    data = bytearray(shard.read_bytes())
    size = len(data)
    data[off + nbytes // 2] ^= 0x5A
    shard.write_bytes(bytes(data))
    assert shard.stat().st_size == size  # same size: the manifest's size check cannot see it
    ds = eegbench.open(tmp_path / "s")
    back = ds[0]
    _bitwise_equal(back.get_data(start=0, stop=200), rec.get_data(start=0, stop=200))  # other chunks still read
    with pytest.raises(CorruptStoreError, match=r"s: recording rec-00000: chunk 2 in signals/000/rec-00000/signals/c/0/0 "
                                                r"fails its crc32c"):
        back.get_data(start=150, stop=250)
    with pytest.raises(CorruptStoreError):
        back.get_data()


def test_uncompressed_chunks_are_rechecked_after_close(tmp_path):
    # uncompressed chunks are mmap views checked once per mapping; close() drops the mapping
    rec = _rec(4, 500, 100.0, quantized=False)
    ds = _save(rec, tmp_path / "s", compression="none", chunk_seconds=1.0)
    back = ds[0]
    _bitwise_equal(back.get_data(), rec.get_data())
    ds.close()
    CHUNK_CACHE.clear()
    off, nbytes = (int(v) for v in _shard_index(tmp_path / "s", back.source, 0)[1])
    with open(tmp_path / "s" / back.source.storage["shard_path"].format(shard=0), "r+b") as fh:
        fh.seek(off + 7)
        byte = fh.read(1)
        fh.seek(off + 7)
        fh.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(CorruptStoreError, match="chunk 1 .* fails its crc32c"):
        back.get_data(start=100, stop=200)


def test_flipped_byte_in_index_is_detected(tmp_path):
    ds = _save(_rec(4, 500, 100.0), tmp_path / "s")
    shard = tmp_path / "s" / ds[0].source.storage["shard_path"].format(shard=0)
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="chunk index of shard file .* fails its crc32c"):
        eegbench.open(tmp_path / "s")[0].get_data(start=0, stop=10)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_truncated_or_missing_shard_after_open(tmp_path, damage):
    ds = _save(_rec(4, 500, 100.0), tmp_path / "s")  # opened first: the manifest check already passed
    shard = tmp_path / "s" / ds[0].source.storage["shard_path"].format(shard=0)
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-100])
        match = "fails its crc32c|truncated"
    else:
        shard.unlink()
        match = "shard file signals/000/rec-00000/signals/c/0/0 is missing"
    with pytest.raises(CorruptStoreError, match=match):
        ds[0].get_data(start=0, stop=10)
    with pytest.raises(CorruptStoreError):  # and the core's manifest check on the next open's first use
        eegbench.open(tmp_path / "s")[0]


def test_index_pointing_outside_the_file_is_detected(tmp_path):
    import google_crc32c

    ds = _save(_rec(4, 500, 100.0), tmp_path / "s", compression="none")
    src = ds[0].source
    shard = tmp_path / "s" / src.storage["shard_path"].format(shard=0)
    data = bytearray(shard.read_bytes())
    entries = _shard_index(tmp_path / "s", src, 0).copy()
    entries[1, 1] += 10_000  # a valid checksum over a wrong index
    raw = entries.astype("<u8").tobytes()
    data[-(len(raw) + 4):] = raw + google_crc32c.value(raw).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="chunk 1 in signals/000/rec-00000/signals/c/0/0 points outside the file"):
        ds[0].get_data(start=0, stop=10)


def test_all_zero_region_reads_as_zeros(tmp_path, small_shards):
    rng = np.random.default_rng(5)
    counts = np.cumsum(rng.integers(-30, 31, size=(4, 1000)), axis=1).astype(np.int16)
    counts[:, 200:650] = 0  # chunks 4..12 all zero: shards 1 and 2 entirely, chunk 12 of shard 3
    q = Quantization(np.full(4, 0.25), np.zeros(4), np.full(4, 1e-6), "int16")
    rec = Recording(ArraySource(q.reconstruct(counts), quantization=q), 100.0, list("abcd"),
                    description={"subject": "z"})
    small_shards(4, 50, 2)  # 50-sample chunks, 200-sample shards
    ds = _save(rec, tmp_path / "s", compression="blosc-lz4", chunk_seconds=0.5)
    src = ds[0].source
    for shard in (1, 2):  # every chunk empty: the shard file is just its binding tag and an index of sentinels
        assert (_shard_index(tmp_path / "s", src, shard) == EMPTY).all()
        assert (tmp_path / "s" / src.storage["shard_path"].format(shard=shard)).stat().st_size == zb._TAG + 4 * 16 + 4
    entries = _shard_index(tmp_path / "s", src, 3)
    assert (entries[0] == EMPTY).all() and (entries[1] != EMPTY).all()  # chunk 12 not stored, 13 stored
    CHUNK_CACHE.clear()
    _bitwise_equal(src.read_counts(0, 1000), counts)
    _bitwise_equal(ds[0].get_data(start=180, stop=700), rec.get_data(start=180, stop=700))
    _bitwise_equal(src.read_counts(0, 1000), _zarr_counts(tmp_path / "s", src))


def test_float_negative_zero_is_kept(tmp_path):
    x = np.zeros((2, 300), np.float32)
    x[0, 100:200] = -0.0  # an all-"zero" chunk that is not the +0.0 fill value
    x[1, 250] = 1.5
    rec = Recording(x, 100.0, ["a", "b"], description={"subject": "n"})
    ds = _save(rec, tmp_path / "s", compression="zstd", chunk_seconds=1.0)
    _bitwise_equal(ds[0].get_data(), x)


# --------------------------------------------------------------------------------------------
# laziness, pickling, fork
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mapped", [True, False])
def test_open_does_no_signal_io(tmp_path, monkeypatch, mapped):
    _save(_rec(4, 500, 100.0), tmp_path / "s")
    calls = []
    real_pread, real_open = os.pread, os.open
    monkeypatch.setattr(os, "pread", lambda fd, n, off: calls.append("pread") or real_pread(fd, n, off))
    monkeypatch.setattr(os, "open", lambda path, *a, **k: calls.append(str(path)) or real_open(path, *a, **k))
    ds = eegbench.open(tmp_path / "s")
    src = ds[0].source
    assert not [c for c in calls if c == "pread" or "signals" in c]
    assert "_h_ready" not in vars(src) and not any(k.startswith("_h_") for k in vars(src))
    src._smapok = mapped  # False: the chunk path (pread of each chunk's stored bytes)
    ds[0].get_data(start=0, stop=10)
    # the shard index once, then the one chunk: decoded straight out of the map, or one pread
    assert calls.count("pread") == (1 if mapped else 2)
    ds[0].get_data(start=100, stop=110)
    assert calls.count("pread") == (1 if mapped else 3)  # index cached: nothing / one pread per new chunk


def test_pickled_source_reads_in_a_fresh_process(tmp_path):
    rec = _rec(4, 700, 100.0)
    ds = _save(rec, tmp_path / "s", compression="blosc-zstd")
    src = ds[0].source
    src.read(0, 50, None)  # handles open in the parent
    state = pickle.dumps(src)
    clone = pickle.loads(state)
    assert not any(k.startswith("_h_") for k in vars(clone))
    (tmp_path / "src.pkl").write_bytes(state)
    code = ("import pickle, sys, numpy as np; src = pickle.load(open(sys.argv[1], 'rb')); "
            "np.save(sys.argv[2], src.read(0, src.n_times, None))")
    env = {**os.environ, "PYTHONPATH": str(Path(eegbench.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "src.pkl"), str(tmp_path / "out.npy")],
                   check=True, env=env, timeout=60)
    _bitwise_equal(np.load(tmp_path / "out.npy"), rec.get_data())


def _child_read(source, conn) -> None:
    try:
        CHUNK_CACHE.clear()  # inherited decoded chunks would hide the child's own reads
        inherited = len(FILES)  # the child's file manager starts empty (the parent's stay the parent's)
        data = source.read(0, source.n_times, None)
        conn.send((inherited, FILES._pid, os.getpid(), data.tobytes()))
    finally:
        conn.close()


def test_fork_after_parent_read(tmp_path):
    rec = _rec(4, 700, 100.0)
    ds = _save(rec, tmp_path / "s", compression="zstd", chunk_seconds=0.5)
    src = ds[0].source
    expected = src.read(0, rec.n_times, None)  # parent opened fds and cached the index
    parent_fds = {k: h.fd for k, h in FILES._handles.items() if h.fd is not None}  # maps of earlier tests hold no fd
    assert parent_fds
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process fork" on 3.12+
        proc = ctx.Process(target=_child_read, args=(src, send))
        proc.start()
    send.close()
    inherited, child_pid_seen, child_pid, payload = recv.recv()
    proc.join(30)
    assert proc.exitcode == 0
    assert inherited == 0 and child_pid_seen == child_pid != os.getpid()
    _bitwise_equal(np.frombuffer(payload, np.float32).reshape(expected.shape), expected)
    assert {k: h.fd for k, h in FILES._handles.items() if h.fd is not None} == parent_fds  # the parent's handles are untouched
    for fd in parent_fds.values():
        os.fstat(fd)  # still open
    CHUNK_CACHE.clear()
    _bitwise_equal(src.read(0, rec.n_times, None), expected)


def test_close_and_reopen(tmp_path):
    rec = _rec(3, 300, 100.0)
    ds = _save(rec, tmp_path / "s")
    ds[0].get_data()
    handles = [h for (p, _), h in FILES._handles.items() if "rec-00000" in p and str(tmp_path) in p]
    fds = [h.fd for h in handles if h.fd is not None]  # descriptors; compressed chunks also come from a map
    assert fds
    ds.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    assert all(h.mm is None and h.fd is None for h in handles)  # maps unmapped too
    CHUNK_CACHE.clear()
    _bitwise_equal(ds[0].get_data(), rec.get_data())


def test_returned_array_is_a_private_writable_copy(tmp_path):
    rec = _rec(3, 300, 100.0, quantized=False)
    ds = _save(rec, tmp_path / "s", chunk_seconds=1.0)
    first = ds[0].get_data(start=0, stop=100)
    first += 1.0  # a caller may modify what it was given
    _bitwise_equal(ds[0].get_data(start=0, stop=100), rec.get_data(start=0, stop=100))
