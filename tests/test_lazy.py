"""Lazy reading, format by format: open reads no signal, a window reads only its chunks (counted at
the store layer and as bytes from disk after eviction), and a store damaged while open is an error."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

import eegbench
from benchmarks._fixtures import disk_read_bytes, evict
from conftest import FORMATS, make_recording
from eegbench.errors import CorruptStoreError, SelectionError


@pytest.fixture(params=[(f, c) for f in FORMATS for c in ("none", "blosc-zstd")], ids=lambda p: "-".join(p))
def store(request, tmp_path):
    fmt, codec = request.param
    rec = make_recording(32, 60_000, sfreq=500.0)  # 2 min, 1-s chunks = 120 chunks
    return eegbench.save(rec, tmp_path / "s", format=fmt, compression=codec, chunk_seconds=1.0), rec


def test_a_window_decodes_only_the_chunks_it_overlaps(store, monkeypatch):
    path, rec = store
    loaded: list[int] = []
    ds = eegbench.open(path)
    source = ds[0].source
    one, many = type(source)._load_chunk, type(source)._load_chunks

    def counting(self, index):
        loaded.append(index)
        return one(self, index)

    def counting_many(self, indices):
        loaded.extend(indices)
        return many(self, indices)

    raw_at = type(source)._raw_chunk_at

    def counting_mapped(self, index):  # uncompressed stores (chunk-blocked .npy too): chunks read through a map
        loaded.append(index)
        return raw_at(self, index)

    decode_at = type(source)._decode_stored_bytes

    def counting_decoded(self, index, data):  # compressed stores: chunks decoded straight out of a map
        loaded.append(index)
        return decode_at(self, index, data)

    monkeypatch.setattr(type(source), "_decode_stored_bytes", counting_decoded)
    monkeypatch.setattr(type(source), "_load_chunk", counting)
    monkeypatch.setattr(type(source), "_load_chunks", counting_many)
    monkeypatch.setattr(type(source), "_raw_chunk_at", counting_mapped)
    x = ds[0].get_data(start=10_250, stop=11_250)  # samples 10250..11249 -> chunks 20, 21, 22
    assert sorted(set(loaded)) == [20, 21, 22]
    np.testing.assert_array_equal(x, rec.get_data(start=10_250, stop=11_250))
    loaded.clear()
    ds[0].slice(30.0, 31.0).get_data(start=0, stop=500)  # samples 15000..15499: exactly chunk 30
    assert sorted(set(loaded)) == [30]


def test_cold_window_reads_about_its_own_bytes_from_disk(store):
    path, rec = store
    ds = eegbench.open(path)
    ds[0].get_data(start=0, stop=10)  # open handles, read the chunk index
    files = [p for p in path.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    ds.close()
    evict(files)
    before = disk_read_bytes()
    ds[0].get_data(start=40_000, stop=41_000)  # 2 s of 120 s
    read = disk_read_bytes() - before
    if read == 0:
        pytest.skip("/proc/self/io does not count block-device reads on this kernel")
    # 3 chunks of 120 plus metadata, page granularity and kernel readahead: far below the file
    assert read < 0.25 * total, f"read {read} of {total} bytes for a 2-s window"


def test_open_reads_no_signal_bytes(store):
    path, _ = store
    signal_files = [p for p in path.rglob("*") if p.is_file() and "signals" in p.parts]
    evict(signal_files)
    before = disk_read_bytes()
    ds = eegbench.open(path)
    assert len(ds) == 1 and ds[0].n_times == 60_000
    assert disk_read_bytes() - before < 64 * 1024  # header and metadata tables only


def test_deleted_or_truncated_while_open_is_an_error_not_wrong_data(store):
    path, _ = store
    ds = eegbench.open(path)
    ds[0].get_data(start=0, stop=100)
    from eegbench.formats._chunks import CHUNK_CACHE

    CHUNK_CACHE.clear()
    biggest = max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    os.truncate(biggest, biggest.stat().st_size // 3)
    with pytest.raises(CorruptStoreError, match="rec-00000"):
        ds[0].get_data(start=50_000, stop=51_000)
    ds.close()
    shutil.rmtree(path)
    with pytest.raises(CorruptStoreError, match="rec-00000"):
        ds[0].get_data(start=50_000, stop=51_000)


def test_threads_read_identical_data(store):
    path, rec = store
    rec_open = eegbench.open(path)[0]
    starts = np.random.default_rng(0).integers(0, 59_000, 60)
    expected = {int(s): rec.get_data(start=int(s), stop=int(s) + 1000) for s in starts}
    errors: list[BaseException] = []

    def worker(part):
        try:
            for s in part:
                np.testing.assert_array_equal(rec_open.get_data(start=int(s), stop=int(s) + 1000), expected[int(s)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(starts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bad_requests_name_the_recording_and_request(store):
    path, _ = store
    rec = eegbench.open(path)[0]
    with pytest.raises(SelectionError, match=r"rec.*\[59500, 60500\)"):
        rec.get_data(start=59_500, stop=60_500)
    with pytest.raises(SelectionError, match="reversed"):
        rec.get_data(start=100, stop=50)
    with pytest.raises(KeyError, match="Zz"):
        rec.get_data(start=0, stop=10, picks=["Zz"])
    with pytest.raises(SelectionError, match="longer than the recording"):
        rec.get_windows([0], 60_001)
