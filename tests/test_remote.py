"""Remote stores over the local HTTP-range server and the local S3 server (moto), all formats.

Windows must be bitwise equal to local reads; requests and bytes are counted *at the server*.
"""

from __future__ import annotations

import numpy as np
import pytest

import eegbench
import eegbench.remote
from benchmarks._servers import RangeHTTPServer, S3Server
from conftest import FORMATS, make_recording
from eegbench.errors import CorruptStoreError, NotAStoreError, StoreExistsError
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.model import Dataset

pytest.importorskip("s3fs")
pytest.importorskip("moto")

BUCKET = "eegbench-test"
SFREQ, CHUNK = 100.0, 1.0  # 100-sample chunks
SUFFIX = {"hdf5": "h5", "zarr": "zarr", "parquet": "parquet"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    ds = Dataset([make_recording(8, 3000, SFREQ, seed=s, name=f"r{s}") for s in range(3)])
    out = {}
    for fmt in FORMATS:
        out[fmt] = eegbench.save(ds, root / f"ds.{SUFFIX[fmt]}", fmt, compression="blosc-zstd",
                                 chunk_seconds=CHUNK)
        out[f"{fmt} none"] = eegbench.save(ds, root / f"raw.{SUFFIX[fmt]}", fmt, compression="none",
                                           chunk_seconds=CHUNK)
    return root, out


@pytest.fixture(scope="module")
def http(stores):
    with RangeHTTPServer(stores[0]) as server:
        yield server


@pytest.fixture(scope="module")
def s3(stores):
    with S3Server() as server:
        server.create_bucket(BUCKET)
        for path in stores[1].values():
            eegbench.remote.publish(path, f"s3://{BUCKET}/{path.name}", storage_options=server.storage_options)
        yield server


def _url(kind, server, fmt):
    if kind == "http":
        return f"{server.url}/ds.{SUFFIX[fmt]}", None
    return f"s3://{BUCKET}/ds.{SUFFIX[fmt]}", server.storage_options


@pytest.mark.parametrize("kind", ["http", "s3"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_remote_windows_bitwise_and_counted(stores, http, s3, kind, fmt):
    server = http if kind == "http" else s3
    url, opts = _url(kind, server, fmt)
    local = eegbench.open(stores[1][fmt])
    server.traffic.reset()
    ds = eegbench.open(url, storage_options=opts)
    n_open, _ = server.traffic.snapshot()
    # open: the header + tables.pack (every table in one object), nothing else (goal: <= 3)
    assert n_open == 2, server.traffic.log
    assert [r.name for r in ds] == [r.name for r in local]

    src = ds.byte_source
    for rec_i, start in ((1, 250), (1, 1210), (2, 2750)):  # each crosses a chunk boundary
        CHUNK_CACHE.clear()
        server.traffic.reset()
        src.stats.reset()
        got = ds[rec_i].get_data(start=start, stop=start + 200)
        want = local[rec_i].get_data(start=start, stop=start + 200)
        assert got.tobytes() == want.tobytes()
        requests, nbytes = server.traffic.snapshot()
        first_touch = (rec_i, start) in ((1, 250), (2, 2750))
        # the window's chunks in one coalesced request, plus the recording's chunk index once
        assert requests <= (2 if first_touch else 1), server.traffic.log
        assert nbytes == src.stats.bytes  # the client received exactly what the server sent
        if not first_touch:
            # only chunk bytes: at most 3 chunks of 8 x 100 int16 (1600 raw bytes each, compressed)
            assert nbytes <= 3 * 1600 + 64, server.traffic.log


@pytest.mark.parametrize("kind", ["http", "s3"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_remote_uncompressed_window_is_one_request(stores, http, s3, kind, fmt):
    """Uncompressed stores (NumPy+Parquet's chunk-blocked .npy included): a window crossing chunk
    boundaries is one range request for exactly its chunks' bytes (was one per channel for the
    channel-major .npy), bitwise equal to the local read."""
    server = http if kind == "http" else s3
    base = server.url if kind == "http" else f"s3://{BUCKET}"
    local = eegbench.open(stores[1][f"{fmt} none"])
    ds = eegbench.open(f"{base}/raw.{SUFFIX[fmt]}", storage_options=None if kind == "http" else server.storage_options)
    src, rec = ds.byte_source, ds[1]
    rec.get_data(start=0, stop=10)  # the recording's metadata (.npy header, chunk/shard index) once
    block = rec.n_channels * 100 * local[1].source.dtype.itemsize  # one chunk's samples
    for start in (250, 1210, 2750):  # 3 chunks each
        CHUNK_CACHE.clear()
        server.traffic.reset()
        src.stats.reset()
        got = rec.get_data(start=start, stop=start + 200)
        assert got.tobytes() == local[1].get_data(start=start, stop=start + 200).tobytes()
        requests, nbytes = server.traffic.snapshot()
        assert requests == 1, server.traffic.log
        assert 3 * block <= nbytes == src.stats.bytes <= 3 * (block + 4), server.traffic.log  # + checksums


@pytest.mark.parametrize("fmt", FORMATS)
def test_remote_reads_whole_recordings_like_local(stores, http, fmt):
    url, _ = _url("http", http, fmt)
    remote, local = eegbench.open(url), eegbench.open(stores[1][fmt])
    for a, b in zip(remote, local):
        assert a.get_data().tobytes() == b.get_data().tobytes()
        assert a.annotations == b.annotations and a.ch_names == b.ch_names


def test_remote_source_pickles_for_workers(stores, http):
    import pickle

    url, _ = _url("http", http, "zarr")
    ds = pickle.loads(pickle.dumps(eegbench.open(url)))
    local = eegbench.open(stores[1]["zarr"])
    assert ds[0].get_data(start=10, stop=90).tobytes() == local[0].get_data(start=10, stop=90).tobytes()


def test_verify_remote_and_corruption(stores, s3):
    url, opts = f"s3://{BUCKET}/ds.parquet", s3.storage_options
    eegbench.verify(url, storage_options=opts)
    import s3fs

    fs = s3fs.S3FileSystem(**{"key": "testing", "secret": "testing",
                              "client_kwargs": {"endpoint_url": s3.endpoint_url}})
    path = f"{BUCKET}/bad.parquet"
    eegbench.remote.publish(stores[1]["parquet"], f"s3://{path}", storage_options=opts)
    victim = next(p for p in fs.find(path) if "signals" in p)
    data = bytearray(fs.cat_file(victim))
    data[len(data) // 2] ^= 0xFF
    fs.pipe_file(victim, bytes(data))
    with pytest.raises(CorruptStoreError, match="SHA-256"):
        eegbench.verify(f"s3://{path}", storage_options=opts)


def test_save_to_s3_header_last_and_killed_upload_is_never_a_store(stores, s3):
    opts = s3.storage_options
    ds = eegbench.open(stores[1]["zarr"])
    url = f"s3://{BUCKET}/written.zarr"
    eegbench.save(ds, url, "zarr", compression="blosc-zstd", chunk_seconds=CHUNK, storage_options=opts)
    back = eegbench.open(url, storage_options=opts)
    assert back[0].get_data().tobytes() == ds[0].get_data().tobytes()
    with pytest.raises(StoreExistsError):
        eegbench.save(ds, url, "zarr", storage_options=opts)

    class Killed(BaseException):
        pass

    def kill_after_two(rel, seen=[]):  # noqa: B006
        seen.append(rel)
        if len(seen) == 2:
            raise Killed

    # a fresh upload killed half-way: objects exist, but no header -> not a store
    with pytest.raises(Killed):
        eegbench.remote.publish(stores[1]["zarr"], f"s3://{BUCKET}/killed.zarr", storage_options=opts,
                                _after_file=kill_after_two)
    with pytest.raises(NotAStoreError):
        eegbench.open(f"s3://{BUCKET}/killed.zarr", storage_options=opts)
    # an overwrite killed half-way: the old store is withdrawn first, never mixed with the new one
    with pytest.raises(Killed):
        eegbench.remote.publish(stores[1]["zarr"], url, storage_options=opts, overwrite=True,
                                _after_file=lambda rel, seen=[]: kill_after_two(rel, seen))
    with pytest.raises(NotAStoreError):
        eegbench.open(url, storage_options=opts)


def test_missing_remote_store_is_typed(http):
    with pytest.raises(NotAStoreError):
        eegbench.open(f"{http.url}/nothing.zarr")


def test_window_requests_at_latency_are_concurrent(stores, http):
    """Two recordings' windows in a batch cost about one round trip each, not one per chunk."""
    url, _ = _url("http", http, "zarr")
    ds = eegbench.open(url)
    ds[0].get_data(start=0, stop=10)  # index fetched
    CHUNK_CACHE.clear()
    http.traffic.reset()
    x = ds[0].get_data(start=0, stop=2900)  # 30 chunks: one coalesced request
    assert x.shape == (8, 2900)
    assert http.traffic.requests == 1, http.traffic.log
    np.testing.assert_array_equal(x, eegbench.open(stores[1]["zarr"])[0].get_data(start=0, stop=2900))


@pytest.mark.parametrize("client", ["obstore", "s3fs"])
def test_s3_reads_through_either_client_counted(stores, s3, client, monkeypatch):
    """s3:// reads go through obstore when it is installed (EEGBENCH_S3_CLIENT=s3fs: s3fs); both
    give the same bytes at the same cost: open 2 requests, a window 1 (its chunk index cached)."""
    import eegbench.io.remote as io_remote

    if client == "obstore":
        pytest.importorskip("obstore")
    monkeypatch.setattr(io_remote, "S3_CLIENT", client)
    url, opts = _url("s3", s3, "hdf5")
    s3.traffic.reset()
    ds = eegbench.open(url, storage_options=opts)
    assert s3.traffic.requests == 2, s3.traffic.log
    assert (ds.byte_source.obstore is not None) == (client == "obstore")
    local = eegbench.open(stores[1]["hdf5"])
    ds[2].get_data(start=0, stop=1)
    CHUNK_CACHE.clear()
    s3.traffic.reset()
    ds.byte_source.stats.reset()
    assert ds[2].get_data(start=1234, stop=1534).tobytes() == local[2].get_data(start=1234, stop=1534).tobytes()
    assert s3.traffic.requests == 1, s3.traffic.log
    assert s3.traffic.bytes == ds.byte_source.stats.bytes <= 4 * 1600


def test_obstore_options_mapping():
    pytest.importorskip("obstore")
    from eegbench.io.remote import obstore_store

    store = obstore_store("s3://bucket/some/prefix", {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:1"})
    assert store is not None and store.prefix == "some/prefix"
    assert obstore_store("s3://bucket/x", {"anon": True, "client_kwargs": {"region_name": "eu-west-1"}}) is not None
    # an option obstore has no equivalent for: s3fs reads it
    assert obstore_store("s3://bucket/x", {"requester_pays": True}) is None


def _read_in_child(ds, conn):
    conn.send(ds[1].get_data(start=100, stop=700).tobytes())
    conn.close()


def test_s3_reads_in_a_fork_of_a_process_that_used_obstore(stores, s3):
    """obstore's runtime does not survive fork (a forked DataLoader worker's requests hung): a fork
    reads through s3fs instead, with the same bytes."""
    import multiprocessing

    url, opts = _url("s3", s3, "zarr")
    ds = eegbench.open(url, storage_options=opts)
    ds[0].get_data(start=0, stop=10)  # the parent has read (through obstore when installed)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_read_in_child, args=(ds, child))
    proc.start()
    got = parent.recv() if parent.poll(120) else None
    proc.join(10)
    if proc.is_alive():
        proc.kill()
    assert got is not None, "the forked reader hung"
    assert got == eegbench.open(stores[1]["zarr"])[1].get_data(start=100, stop=700).tobytes()
