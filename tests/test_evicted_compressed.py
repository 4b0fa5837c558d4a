"""Evicted compressed windows (#9): the window's stored chunks come in with one disk request (a
readahead of their span, then the decoders read the map; or, with ``EVICTED_READAHEAD`` off or no
``madvise``, one ``pread`` of the span), bit for bit what the warm read, h5py/zarr-independent
chunk path and the source give; each chunk's CRC32C is still checked on its first read, so damage is a
CorruptStoreError; a file truncated while open is a CorruptStoreError, never SIGBUS; a source reuses
the map handle it leased last (no file-manager round trip per read) until the manager closes it."""

from __future__ import annotations

import os

import numpy as np
import pytest

import eegbench
import eegbench.formats._chunks as chunks_mod
from conftest import count_signal_requests, make_recording
from eegbench.errors import CorruptStoreError
from eegbench.io import files as files_mod

FORMATS = ["hdf5", "zarr", "parquet"]
pytestmark = pytest.mark.usefixtures("no_chunk_cache")


@pytest.fixture(params=FORMATS)
def store(request, tmp_path):
    rec = make_recording(12, 4_000, sfreq=250.0, quantized=True)  # int16 counts, 0.4-s chunks
    path = eegbench.save(rec, tmp_path / request.param, format=request.param, compression="blosc-zstd",
                         chunk_seconds=0.4)
    return path, rec


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def _span(src, first: int, last: int) -> tuple[int, int]:
    spots = [src._stored_chunk_at(ci) for ci in range(first, last + 1)]
    return spots[-1][2] - spots[0][1], spots[0][1]


def test_an_evicted_compressed_window_is_one_request_of_its_span(store, request_kind, monkeypatch):
    path, rec = store
    src = eegbench.open(path)[0].source
    src.ready()
    cs = src.chunk_samples
    span = _span(src, 3, 6)  # Zarr: the shard index is read here, not in the counted read
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    kinds: list[str] = []
    calls = count_signal_requests(monkeypatch, kinds)
    start, stop = 3 * cs + 7, 6 * cs + 7  # chunks 3..6
    evicted = src.read(start, stop, None)
    assert kinds == [request_kind]  # exactly one request, of the expected kind ...
    assert calls == [span]  # ... for exactly the stored bytes of the window's chunks
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: True)
    warm = src.read(start, stop, None)
    assert len(calls) == 1  # the warm read asked for nothing
    monkeypatch.setenv("EEGBENCH_MAP_COMPRESSED", "0")  # the chunk path: pread + CRC32C of every chunk
    plain = eegbench.open(path)[0].source
    assert not plain._stored_mappable
    chunk_path = plain.read(start, stop, None)
    want = _bits(rec.get_data(start=start, stop=stop))
    assert np.array_equal(_bits(evicted), want) and np.array_equal(_bits(warm), want)
    assert np.array_equal(_bits(chunk_path), want)


def test_real_eviction_is_one_readahead_and_no_major_fault(store, monkeypatch):
    import resource

    from benchmarks._evicted import evict_pages

    path, rec = store
    ds = eegbench.open(path)
    src = ds[0].source
    ds[0].get_data(start=0, stop=10)
    files = [p for p in path.rglob("*") if p.is_file()]
    if evict_pages(files):
        pytest.skip("files stay in the page cache after eviction here (tmpfs?)")
    kinds: list[str] = []
    calls = count_signal_requests(monkeypatch, kinds)
    cs = src.chunk_samples
    faults = []
    for s in (cs + 5, 4 * cs + 11, 7 * cs + 3):
        assert evict_pages(files) == 0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
        x = ds[0].get_data(start=s, stop=s + 2 * cs)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_majflt - before)
        assert np.array_equal(_bits(x), _bits(rec.get_data(start=s, stop=s + 2 * cs)))
    assert kinds == ["readahead"] * 3 and len(calls) == 3
    assert faults == [0, 0, 0]  # the decoders never waited on a 4 KiB disk read of their own


def test_a_damaged_chunk_fetched_by_readahead_is_corrupt(store, monkeypatch):
    path, _ = store
    src = eegbench.open(path)[0].source
    src.read(0, 10, None)  # the map leased (damage in place keeps it: what eegbench never does)
    rel, off, stop, _crc = src._stored_chunk_at(5)
    with open(os.path.join(str(src.root), rel), "r+b") as fh:
        fh.seek(off + (stop - off) // 2)
        b = fh.read(1)
        fh.seek(off + (stop - off) // 2)
        fh.write(bytes([b[0] ^ 0x10]))
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    kinds: list[str] = []
    count_signal_requests(monkeypatch, kinds)
    cs = src.chunk_samples
    with pytest.raises(CorruptStoreError, match=r"chunk 5 .*(CRC32C|crc32c)"):
        src.read(4 * cs + 10, 6 * cs + 10, None)
    assert kinds == ["readahead"]
    src.read(0, 4 * cs, None)  # the intact chunks still read


def test_a_file_truncated_while_open_is_corrupt_on_the_evicted_path(store, monkeypatch):
    path, _ = store
    src = eegbench.open(path)[0].source
    src.read(0, 100, None)
    rel, off, _stop, _crc = src._stored_chunk_at(6)
    os.truncate(os.path.join(str(src.root), rel), off + 3)
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    with pytest.raises(CorruptStoreError):
        src.read(6 * src.chunk_samples, 8 * src.chunk_samples, None)


def test_a_source_reuses_its_leased_map_until_the_manager_closes_it(store, monkeypatch):
    path, rec = store
    src = eegbench.open(path)[0].source
    cs = src.chunk_samples
    src.read(0, 2 * cs, None)
    leases = []
    real = files_mod.FileManager.lease

    def counting(self, p, seen=None):
        leases.append(p)
        return real(self, p, seen)

    monkeypatch.setattr(files_mod.FileManager, "lease", counting)
    for s in (cs, 3 * cs + 1, 5 * cs + 2):  # warm and evicted reads alike
        monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b, _e=s % 2: bool(_e))
        x = src.read(s, s + 2 * cs, None)
        assert np.array_equal(_bits(x), _bits(rec.get_data(start=s, stop=s + 2 * cs)))
    assert leases == []  # the handle leased by the first read, no manager round trip
    h = src._h_lease[1]
    files_mod.FILES.release(os.path.join(str(src.root), src._stored_chunk_at(0)[0]))
    assert h.view is None  # closed by the manager: never used again
    x = src.read(2 * cs, 4 * cs, None)
    assert leases and src._h_lease[1] is not h and src._h_lease[1].view is not None  # a new lease
    assert np.array_equal(_bits(x), _bits(rec.get_data(start=2 * cs, stop=4 * cs)))
