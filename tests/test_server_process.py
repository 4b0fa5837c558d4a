"""benchmarks._servers.ServerProcess: the remote benchmark's servers in a process of their own, still
counting every request and byte at the server, with latency injected there."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import eegbench
from benchmarks._servers import ServerProcess
from conftest import make_recording
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.model import Dataset


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc")
    ds = Dataset([make_recording(8, 2000, 100.0, seed=s, name=f"r{s}") for s in range(2)])
    return root, eegbench.save(ds, root / "ds.parquet", "parquet", compression="none", chunk_seconds=1.0)


def test_http_server_process_counts_and_delays(store):
    root, path = store
    local = eegbench.open(path)
    with ServerProcess("http", root) as server:
        assert server.pid != os.getpid()
        ds = eegbench.open(f"{server.url}/ds.parquet")
        assert server.traffic.requests == 2  # header + tables.pack, counted in the child
        ds[1].get_data(start=0, stop=10)  # the .npy header
        CHUNK_CACHE.clear()
        server.traffic.reset()
        server.latency = 0.05
        assert server.latency == 0.05
        t0 = time.perf_counter()
        got = ds[1].get_data(start=150, stop=350)
        elapsed = time.perf_counter() - t0
        assert got.tobytes() == local[1].get_data(start=150, stop=350).tobytes()
        requests, nbytes = server.traffic.snapshot()
        assert requests == 1 and nbytes == 3 * 8 * 100 * 4  # chunks 1..3 (float32), counted in the child
        method, _path, rng = server.traffic.log[0]
        assert method == "GET" and rng.startswith("bytes=")
        assert elapsed >= 0.05  # the latency is slept at the server
    assert server._proc is None


def test_s3_server_process_publish_and_read(store):
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    import eegbench.remote

    _root, path = store
    local = eegbench.open(path)
    with ServerProcess("s3") as server:
        server.create_bucket("proc")
        eegbench.remote.publish(path, "s3://proc/ds.parquet", storage_options=server.storage_options)
        server.traffic.reset()
        ds = eegbench.open("s3://proc/ds.parquet", storage_options=server.storage_options)
        assert server.traffic.requests == 2, server.traffic.log
        x = ds[0].get_data(start=1234, stop=1634)
        np.testing.assert_array_equal(x, local[0].get_data(start=1234, stop=1634))
        assert server.traffic.by_method.get("GET", 0) >= 3


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        ServerProcess("ftp")
