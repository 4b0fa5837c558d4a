"""Compressed chunks decoded straight out of a leased map (#9, ``ChunkedSource._read_stored``).

Exact data against the chunk path (``pread`` + CRC32C every read) and against h5py/zarr reading the
same store; no ``pread`` for a warm compressed window; each chunk's CRC32C checked once per process,
so a damaged chunk is still reported on its first read; a file truncated while open is a
CorruptStoreError, never SIGBUS; an evicted window is one disk request (a readahead, or one ``pread``:
see also ``tests/test_evicted_compressed.py``)."""

from __future__ import annotations

import os

import google_crc32c
import numpy as np
import pytest

import eegbench
import eegbench.formats._chunks as chunks_mod
from conftest import make_recording
from eegbench.errors import CorruptStoreError
from eegbench.formats._chunks import CHUNK_CACHE

FORMATS = ["hdf5", "zarr", "parquet"]

pytestmark = pytest.mark.usefixtures("no_chunk_cache")


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def _save(tmp_path, fmt, compression="blosc-zstd", quantized=True, delta=False, n_times=3_000):
    rec = make_recording(12, n_times, sfreq=250.0, quantized=quantized)
    path = eegbench.save(rec, tmp_path / f"{fmt}-{compression}", format=fmt, compression=compression,
                         chunk_seconds=0.4, delta=delta)
    return path, rec


def _count_preads(monkeypatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    real = os.pread

    def counting(fd, n, offset):
        calls.append((n, offset))
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting)
    return calls


def _chunk_file(src) -> str:
    """Absolute path of the file holding chunk 0's stored bytes."""
    return os.path.join(str(src.root), src._stored_chunk_at(0)[0])


CASES = [(fmt, comp, q, d) for fmt in FORMATS for comp, q, d in [
    ("blosc-zstd", True, False), ("blosc-zstd", False, False), ("blosc-lz4", True, False),
    ("blosc-lz4", False, False), ("zstd", True, False), ("gzip", False, False)]]
CASES += [("zarr", "blosc-zstd", True, True), ("parquet", "blosc-lz4", True, True)]


@pytest.mark.parametrize("fmt,compression,quantized,delta", CASES)
def test_map_path_is_bitwise_the_chunk_path(tmp_path, fmt, compression, quantized, delta):
    path, rec = _save(tmp_path, fmt, compression, quantized, delta)
    src = eegbench.open(path)[0].source
    ref = eegbench.open(path)[0].source
    ref._smapok = False  # the chunk path: pread of the stored bytes, CRC32C every read
    assert src._stored_mappable
    taken = []
    real = type(src)._read_stored

    def spy(self, *a):
        ok = real(self, *a)
        taken.append(ok)
        return ok

    rng = np.random.default_rng(1)
    chans = np.array([5, 0, 11, 3])
    for k in range(25):
        start = int(rng.integers(0, src.n_times - 1))
        stop = min(src.n_times, start + int(rng.integers(1, 400)))
        channels = chans if k % 3 == 0 else None
        type(src)._read_stored = spy
        try:
            got = src.read(start, stop, channels)
        finally:
            type(src)._read_stored = real
        want = ref.read(start, stop, channels)
        assert np.array_equal(_bits(got), _bits(want)), (start, stop, channels)
        full = rec.get_data(start=start, stop=stop)
        assert np.array_equal(_bits(got), _bits(full if channels is None else full[channels]))
    assert taken and all(taken)  # every read went through the map
    CHUNK_CACHE.max_bytes = 64 << 20  # with the decoded-chunk cache too (decoded chunks kept, never map views)
    for start in (0, 50, 2_900):
        a, b = src.read(start, min(src.n_times, start + 300), None), ref.read(start, min(src.n_times, start + 300), None)
        assert np.array_equal(_bits(a), _bits(b))
    for arr in list(CHUNK_CACHE._items.values()):
        assert not arr.flags.writeable


def test_hdf5_and_zarr_libraries_read_the_same_samples(tmp_path):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    import hdf5plugin  # noqa: F401  (Blosc filter for h5py)

    for fmt in ("hdf5", "zarr"):
        path, _ = _save(tmp_path, fmt, "blosc-zstd", quantized=True)
        src = eegbench.open(path)[0].source
        counts = src.read_counts(0, src.n_times)  # through the map
        if fmt == "hdf5":
            files = sorted(p for p in path.rglob("*.h5") if p.name != "tables.h5")
            with h5py.File(files[0], "r") as f:
                lib = f["/signals"][...]
        else:
            arrays = [zarr.open_array(str(p.parent), mode="r") for p in path.rglob("zarr.json")
                      if (p.parent / "c").is_dir() and "signals" in str(p)]
            lib = [a for a in arrays if a.shape == counts.shape][0][...]
        assert lib.dtype == counts.dtype and np.array_equal(lib, counts)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_warm_compressed_window_reads_nothing_and_checks_each_chunk_once(tmp_path, fmt, monkeypatch):
    path, rec = _save(tmp_path, fmt)
    src = eegbench.open(path)[0].source
    src.read(0, src.n_times, None)  # every chunk checked once (and its page cache warm)
    crcs = []
    real_value = google_crc32c.value
    monkeypatch.setattr(chunks_mod.google_crc32c, "value", lambda data: crcs.append(len(data)) or real_value(data))
    calls = _count_preads(monkeypatch)
    for start in (0, 123, 1_000, 2_500):
        x = src.read(start, start + 400, None)
        assert np.array_equal(_bits(x), _bits(rec.get_data(start=start, stop=start + 400)))
    assert calls == [] and crcs == []
    fresh = eegbench.open(path)[0].source  # a new source checks again (its own first read)
    fresh.read(0, 200, None)  # 0.4-s chunks of 100 samples: chunks 0 and 1 (and metadata at open)
    for ci in (0, 1):
        _rel, off, stop, crc = fresh._stored_chunk_at(ci)
        assert (stop - off - (4 if crc is None else 0)) in crcs


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_damaged_chunk_is_reported_on_its_first_read(tmp_path, fmt):
    path, _ = _save(tmp_path, fmt)
    src = eegbench.open(path)[0].source
    src.read(0, 100, None)  # chunk 0 read and checked: chunk 7 not yet
    _rel, off, stop, _crc = src._stored_chunk_at(7)
    with open(os.path.join(str(src.root), _rel), "r+b") as f:  # damage in place (what eegbench never does)
        f.seek((off + stop) // 2)
        byte = f.read(1)
        f.seek((off + stop) // 2)
        f.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(CorruptStoreError, match=r"chunk 7 .*(CRC32C|crc32c)"):
        src.read(7 * src.chunk_samples + 10, 7 * src.chunk_samples + 20, None)
    with pytest.raises(CorruptStoreError, match=r"chunk 7 .*(CRC32C|crc32c)"):  # and in a new process's open
        eegbench.open(path)[0].source.read(700, 720, None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_truncated_while_open_is_corrupt_not_sigbus(tmp_path, fmt):
    path, _ = _save(tmp_path, fmt)
    src = eegbench.open(path)[0].source
    src.read(0, src.n_times, None)  # mapped, every chunk checked
    name = _chunk_file(src)
    _rel, off, _stop, _crc = src._stored_chunk_at(20)
    os.truncate(name, off + 3)  # chunk 20 onwards gone
    with pytest.raises(CorruptStoreError):
        src.read(src.n_times - 300, src.n_times, None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_evicted_compressed_window_is_one_pread(tmp_path, fmt, monkeypatch):
    path, rec = _save(tmp_path, fmt)
    src = eegbench.open(path)[0].source
    src.ready()
    cs = src.chunk_samples
    spots = [src._stored_chunk_at(ci) for ci in range(4, 9)]  # Zarr: its shard index read here
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    monkeypatch.setattr(chunks_mod, "EVICTED_READAHEAD", False)  # the pread fallback (readahead: test_evicted_compressed)
    calls = _count_preads(monkeypatch)
    start, stop = 4 * cs + 10, 8 * cs + 10  # chunks 4..8
    x = src.read(start, stop, None)
    assert np.array_equal(_bits(x), _bits(rec.get_data(start=start, stop=stop)))
    assert calls == [(spots[-1][2] - spots[0][1], spots[0][1])]  # the covering bytes, once


def test_sources_without_maps_take_the_chunk_path(tmp_path, monkeypatch):
    path, rec = _save(tmp_path, "zarr")
    monkeypatch.setenv("EEGBENCH_MAP_COMPRESSED", "0")
    src = eegbench.open(path)[0].source
    assert not src._stored_mappable
    calls = _count_preads(monkeypatch)
    x = src.read(0, 300, None)
    assert np.array_equal(_bits(x), _bits(rec.get_data(start=0, stop=300)))
    assert len(calls) >= 2  # the shard index, then the chunks' stored bytes


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_decode_out_of_the_map_too(tmp_path, fmt, monkeypatch):
    path, rec = _save(tmp_path, fmt)
    src = eegbench.open(path)[0].source
    starts = np.array([0, 1_234, 2_000, 2_700])
    src.read(0, src.n_times, None)  # checked once, page cache warm
    calls = _count_preads(monkeypatch)
    out = src.read_batch(starts, 250, None)
    assert calls == []
    for i, s in enumerate(starts.tolist()):
        assert np.array_equal(_bits(out[i]), _bits(rec.get_data(start=s, stop=s + 250)))
    # evicted and not adjacent: the coalesced get_ranges of the chunk path, not page faults
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    out2 = src.read_batch(starts, 250, None)
    assert np.array_equal(_bits(out2), _bits(out)) and len(calls) >= 1
