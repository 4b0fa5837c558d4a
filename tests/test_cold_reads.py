"""Evicted uncompressed windows (#9): one disk request for the covering chunks (a readahead of their
span, then copies from the map; or, with ``EVICTED_READAHEAD`` off or no ``madvise``, one ``pread``)
instead of a page fault per 4 KiB of a map (HDF5/Zarr/NumPy+Parquet's chunk-blocked ``.npy``); exact
data either way. Residency comes from ``mincore``; tests force "not resident" where eviction cannot
be checked (tmpfs), and check a real eviction where it works. Also: the benchmarks' evicted-window
helper (``benchmarks._evicted``) leaves 0 resident bytes and keeps the store's metadata."""

from __future__ import annotations

import os

import numpy as np
import pytest

import eegbench
import eegbench.formats._chunks as chunks_mod
from benchmarks._fixtures import evict, resident_bytes
from conftest import count_signal_requests, make_recording


@pytest.fixture(params=["hdf5", "zarr", "parquet"])
def chunked(request, tmp_path):
    rec = make_recording(16, 20_000, sfreq=500.0, quantized=False)  # float32 storage, 0.5-s chunks
    path = eegbench.save(rec, tmp_path / "s", format=request.param, compression="none", chunk_seconds=0.5)
    return path, rec


def test_an_evicted_window_is_one_request_of_its_span_and_equals_the_warm_read(chunked, request_kind, monkeypatch):
    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    src.ready()
    src._raw_chunk_at(4)
    cs = src.chunk_samples
    start, stop = 4 * cs + 100, 7 * cs + 100  # chunks 4..7
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    kinds: list[str] = []
    calls = count_signal_requests(monkeypatch, kinds)
    evicted = ds[0].get_data(start=start, stop=stop)
    assert kinds == [request_kind], kinds  # exactly one request, of the expected kind
    spots = [src._raw_chunk_at(ci) for ci in range(4, 8)]
    end = max(s[2] + (4 if s[3] is None else 0) for s in spots)
    assert calls == [(end - spots[0][1], spots[0][1])]  # exactly the span of the window's chunks
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: True)
    warm = ds[0].get_data(start=start, stop=stop)
    assert len(calls) == 1  # the warm read asked for nothing
    assert evicted.tobytes() == warm.tobytes() == rec.get_data(start=start, stop=stop).tobytes()


def test_an_evicted_window_over_four_chunks_is_one_pread(chunked, monkeypatch):
    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    src.ready()
    src._raw_chunk_at(4)  # Zarr: the shard index, read once per shard and process
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    calls = count_signal_requests(monkeypatch)
    cs = src.chunk_samples
    start, stop = 4 * cs + 100, 8 * cs + 100  # chunks 4, 5, 6, 7, 8
    x = ds[0].get_data(start=start, stop=stop)
    np.testing.assert_array_equal(x, rec.get_data(start=start, stop=stop))
    assert len(calls) == 1, calls
    spots = [src._raw_chunk_at(ci) for ci in range(4, 9)]
    assert calls[0][1] == spots[0][1]  # from the first chunk's first byte ...
    assert 5 * 16 * cs * 4 <= calls[0][0] <= 1.25 * 5 * 16 * cs * 4  # ... over the five chunks (+ checksums)
    out = np.empty((3, 16, 600), dtype=np.float32)  # batches take the same path, window by window
    calls.clear()
    src.read_batch(np.array([0, 4_000, 19_400]), 600, None, out=out)
    assert len(calls) == 3
    for i, s in enumerate([0, 4_000, 19_400]):
        np.testing.assert_array_equal(out[i], rec.get_data(start=s, stop=s + 600))


def test_a_resident_window_is_copied_from_the_map_without_pread(chunked, monkeypatch):
    path, rec = chunked
    ds = eegbench.open(path)
    ds[0].get_data(start=0, stop=20_000)  # every page resident (and every chunk checked once)
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: True)
    calls = count_signal_requests(monkeypatch)
    np.testing.assert_array_equal(ds[0].get_data(start=1_100, stop=2_600), rec.get_data(start=1_100, stop=2_600))
    assert calls == []


def test_a_corrupt_chunk_read_by_pread_is_an_error(chunked, monkeypatch):
    path, _ = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    src.ready()
    rel, off, _, _ = src._raw_chunk_at(5)
    cs = src.chunk_samples
    with open(path / rel, "r+b") as fh:
        fh.seek(off + 100)
        b = fh.read(1)
        fh.seek(off + 100)
        fh.write(bytes([b[0] ^ 0x40]))
    ds.close()
    ds = eegbench.open(path)  # a fresh reader of the damaged file
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    with pytest.raises(eegbench.errors.CorruptStoreError, match="chunk 5"):
        ds[0].get_data(start=4 * cs + 100, stop=8 * cs + 100)


def test_real_eviction_reads_the_window_with_one_pread(chunked, monkeypatch):
    path, rec = chunked
    ds = eegbench.open(path)
    ds[0].get_data(start=0, stop=10)
    ds.close()
    files = [p for p in path.rglob("*") if p.is_file()]
    evict(files)
    if resident_bytes(files):
        pytest.skip("files stay in the page cache after eviction here (tmpfs?)")
    ds[0].source.ready()  # metadata first (Zarr: + the shard index): the window below is then one read
    ds[0].source._raw_chunk_at(0)
    calls = count_signal_requests(monkeypatch)
    np.testing.assert_array_equal(ds[0].get_data(start=7_010, stop=8_010), rec.get_data(start=7_010, stop=8_010))
    assert len(calls) == 1, calls


def test_real_eviction_is_one_readahead_and_no_major_fault(chunked, monkeypatch):
    """With the pages really gone, the readahead brings the span in and the copies from the map
    never wait on a disk read of their own (0 major faults); without it they fault page by page."""
    import resource

    from benchmarks._evicted import evict_pages

    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    ds[0].get_data(start=0, stop=10)
    files = [p for p in path.rglob("*") if p.is_file()]
    if evict_pages(files):
        pytest.skip("files stay in the page cache after eviction here (tmpfs?)")
    monkeypatch.setattr(type(src), "SLOW_NS_MIN", 10**12)
    kinds: list[str] = []
    calls = count_signal_requests(monkeypatch, kinds)
    faults = []
    for s in (3_000, 7_010, 12_000):
        handles = {e[0] for e in src._h_raw if e is not None}
        for h in handles:
            h.probe = 1  # a map of an evicted workload checks residency (see the tests above)
        assert evict_pages(files) == 0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
        x = ds[0].get_data(start=s, stop=s + 1_000)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_majflt - before)
        assert x.tobytes() == rec.get_data(start=s, stop=s + 1_000).tobytes()
    assert kinds == ["readahead"] * 3 and len(calls) == 3
    assert faults == [0, 0, 0]
    # the control: the same evicted window read through the map without the residency check faults
    for h in {e[0] for e in src._h_raw if e is not None}:
        h.probe = 0
    assert evict_pages(files) == 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    ds[0].get_data(start=15_000, stop=16_000)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_majflt - before > 0


def test_the_evicted_measurement_leaves_nothing_resident_and_keeps_the_store_open(chunked):
    """``benchmarks._evicted``: evict_pages really leaves 0 resident bytes while eegbench's maps are
    live; measure_evicted keeps the store's metadata, pairs every window with an O_DIRECT read of its
    chunks' span, and reads exactly that span from disk."""
    from benchmarks._evicted import chunk_span, evict_pages, measure_evicted
    from benchmarks._fixtures import resident_bytes as resident_now
    from benchmarks.cold_ratio import StoreAt

    path, rec = chunked
    target = StoreAt(path)
    target.open()
    ds = target._handles
    ds[0].get_data()  # every page resident, maps leased
    files = target.files
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT here")
    left = evict_pages(files)
    if left and resident_now(files):
        pytest.skip("files stay in the page cache after eviction here (tmpfs?)")
    assert left == 0 and resident_now(files) == 0
    cs = ds[0].source.chunk_samples
    f, a, b = chunk_span(ds[0], 4 * cs + 100, 6 * cs + 100)  # chunks 4, 5, 6
    spots = [ds[0].source._raw_chunk_at(ci) for ci in (4, 5, 6)]
    assert f == path / spots[0][0] and a == spots[0][1] and b == max(s[2] + (4 if s[3] is None else 0) for s in spots)
    windows = [(0, 1_000), (0, 7_010), (0, 15_000)]
    try:
        row = measure_evicted(target, windows, 1_000, window_bytes=16 * 1_000 * 4)
    except OSError as exc:  # a file system without O_DIRECT (tmpfs)
        pytest.skip(f"O_DIRECT refused: {exc}")
    assert row["evicted_resident_bytes_max"] == 0
    assert row["ms_evicted"] > 0 and row["ms_odirect_span"] > 0 and row["evicted_vs_odirect_span"] > 0
    assert row["ms_odirect_window"] > 0
    spans = [chunk_span(ds[r], s, s + 1_000) for r, s in windows]
    mean = sum(b - a for _, a, b in spans) / len(spans)  # 4-5 chunks of 16 ch x 250 samples x 4 B
    assert mean <= row["mb_read_evicted"] * 1e6 <= mean + 2 * 4096  # the span (in whole pages), nothing more
    assert ds[0].source.__dict__.get("_h_ready")  # metadata kept: the store was never closed


def _warm_map(src) -> object:
    """The leased map handle a source reads through (its residency probing finished)."""
    handles = {e[0] for e in src._h_raw if e is not None}
    assert len(handles) == 1
    return handles.pop()


def test_a_warm_map_reads_without_any_residency_syscall(chunked, monkeypatch):
    """Once a map's first read found it resident, reads trust it: no mincore, no pread."""
    from eegbench.io import files as files_mod

    path, rec = chunked
    ds = eegbench.open(path)
    # no read counts as slow (a preempted read would make the next one check: tested below)
    monkeypatch.setattr(type(ds[0].source), "SLOW_NS_MIN", 10**12)
    probes: list[int] = []
    real = chunks_mod.resident
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: probes.append(a) or True)
    ds[0].get_data(start=0, stop=2_000)  # a fresh map checks its first read only ...
    assert files_mod.FRESH_PROBE_READS == 1 and len(probes) == 1
    assert _warm_map(ds[0].source).probe == 0
    for k in range(1, 40):  # ... (a re-opened store's maps see few reads each: every one used to check)
        ds[0].get_data(start=100 * k, stop=100 * k + 2_000)
    assert len(probes) == 1
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: probes.append(a) or real(mm, a, b))
    probes.clear()
    calls = count_signal_requests(monkeypatch)
    rng = np.random.default_rng(0)
    for s in rng.integers(0, 18_000, 50).tolist():
        np.testing.assert_array_equal(ds[0].get_data(start=s, stop=s + 1_300), rec.get_data(start=s, stop=s + 1_300))
    picks = ds[0].get_data(picks=[3, 0], start=777, stop=2_777)
    np.testing.assert_array_equal(picks, rec.get_data(picks=[3, 0], start=777, stop=2_777))
    assert probes == [] and calls == []


def test_a_fresh_map_that_finds_pages_missing_keeps_checking(chunked, monkeypatch):
    """An evicted first window is one pread, and the next ``PROBE_READS`` reads check residency too
    (an evicted workload never faults through the map); then the map is trusted."""
    from eegbench.io import files as files_mod

    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    src.ready()
    src._raw_chunk_at(0)  # Zarr: the shard index first
    monkeypatch.setattr(type(src), "SLOW_NS_MIN", 10**12)
    answers = iter([False] + [True] * 100)
    probes: list[int] = []
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: probes.append(a) or next(answers))
    calls = count_signal_requests(monkeypatch)
    np.testing.assert_array_equal(ds[0].get_data(start=3_000, stop=4_000), rec.get_data(start=3_000, stop=4_000))
    assert len(probes) == 1 and len(calls) == 1
    assert _warm_map(src).probe == files_mod.PROBE_READS
    for k in range(files_mod.PROBE_READS + 5):
        s = 37 * k
        np.testing.assert_array_equal(ds[0].get_data(start=s, stop=s + 1_000), rec.get_data(start=s, stop=s + 1_000))
    assert len(probes) == 1 + files_mod.PROBE_READS and len(calls) == 1
    assert _warm_map(src).probe == 0


def test_a_slow_warm_read_turns_the_residency_check_back_on(chunked, monkeypatch):
    """A cold window after a warm streak faults once through the map (slow), then reads check
    residency again and an evicted window is one pread."""
    from eegbench.io import files as files_mod

    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    ds[0].get_data(start=0, stop=20_000)
    _warm_map(src).probe = 0
    monkeypatch.setattr(type(src), "SLOW_NS_MIN", -1)  # every read counts as slow
    monkeypatch.setattr(type(src), "SLOW_NS_PER_BYTE", 0.0)
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: False)
    calls = count_signal_requests(monkeypatch)
    np.testing.assert_array_equal(ds[0].get_data(start=5_000, stop=6_000), rec.get_data(start=5_000, stop=6_000))
    assert calls == [] and _warm_map(src).probe == 1  # through the map; the next read checks
    np.testing.assert_array_equal(ds[0].get_data(start=9_000, stop=10_000), rec.get_data(start=9_000, stop=10_000))
    assert len(calls) == 1  # checked: not resident -> one pread of the covering chunks ...
    assert _warm_map(src).probe == files_mod.PROBE_READS  # ... and the next reads check too
    # a slow read whose next read finds the pages resident (a preempted warm read) costs one check
    monkeypatch.setattr(type(src), "SLOW_NS_MIN", 10**12)
    monkeypatch.setattr(chunks_mod, "resident", lambda mm, a, b: True)
    _warm_map(src).probe = 1
    ds[0].get_data(start=0, stop=1_000)
    assert _warm_map(src).probe == 0


def test_leased_maps_close_with_the_manager_and_count_as_used(tmp_path):
    """A lease's view is dropped when the manager closes the map (its pages can then be evicted);
    a map read through its lease gets a second chance when the cap evicts."""
    from eegbench.io import FileManager

    paths = []
    for i in range(4):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(bytes(range(256)) * 64)
        paths.append(str(p))
    mgr = FileManager(maxsize=2)
    h0, view = mgr.lease(paths[0])
    assert bytes(view[:4]) == b"\x00\x01\x02\x03"
    del view
    h0.used = True
    mgr.lease(paths[1])
    mgr.lease(paths[2])  # over the cap: paths[1] goes, the used paths[0] stays
    assert mgr.is_open(paths[0]) and not mgr.is_open(paths[1])
    assert h0.view is not None and not h0.used
    mgr.lease(paths[3])  # not used since: now it goes
    assert not mgr.is_open(paths[0]) and h0.view is None and h0.mm is None
    h2, view = mgr.lease(paths[2])
    mgr.clear()  # a reader's own reference keeps the mapping valid until it lets go
    assert h2.view is None and bytes(view[4:6]) == b"\x04\x05"


def test_threads_reading_one_fresh_map_end_with_no_residency_checks(chunked):
    """Threads sharing a source through a fresh map's checked reads leave the map trusted, exact."""
    import threading

    path, rec = chunked
    ds = eegbench.open(path)
    src = ds[0].source
    expected = rec.get_data()
    errors: list[BaseException] = []

    def work(seed):
        try:
            for s in np.random.default_rng(seed).integers(0, 18_000, 60).tolist():
                np.testing.assert_array_equal(src.read(s, s + 1_500, None), expected[:, s:s + 1_500])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _warm_map(src).probe >= 0
