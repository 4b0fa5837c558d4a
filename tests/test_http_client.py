"""eegbench.io.remote.HTTPClient: the keep-alive client ``http(s)://`` stores are read through.

Counted at the server: one connection reused for sequential requests, every range of a
``get_many`` in flight at once from one thread; a connection the server closed while idle is
replaced without an error; unusual answers (chunked, no length, Range ignored, redirects, error
statuses) give the right bytes or a typed error; ``EEGBENCH_HTTP_CLIENT=fsspec`` still reads."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import eegbench
from benchmarks._servers import RangeHTTPServer
from conftest import make_recording
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.io import remote as io_remote
from eegbench.io.remote import HTTPClient, http_client
from eegbench.model import Dataset

DATA = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("httpclient")
    ds = Dataset([make_recording(8, 2000, 100.0, seed=s, name=f"r{s}") for s in range(2)])
    path = eegbench.save(ds, root / "ds.zarr", "zarr", compression="blosc-zstd", chunk_seconds=1.0)
    (root / "blob").write_bytes(DATA)
    return root, path


@pytest.fixture
def http(store):
    with RangeHTTPServer(store[0]) as server:
        yield server


def test_sequential_reads_reuse_one_connection(store, http):
    client = HTTPClient("http", f"127.0.0.1:{http.port}")
    for k in range(20):
        assert client.get(f"{http.url}/blob", 100 * k, 100 * k + 300) == DATA[100 * k:100 * k + 300]
    assert http.traffic.requests == 20
    assert http.traffic.connections == 1


def test_get_many_sends_every_range_at_once_from_one_thread(store, http):
    client = HTTPClient("http", f"127.0.0.1:{http.port}")
    ranges = [(0, 10), (5000, 9000), (16000, 16384), (300, 301)]
    http.latency = 0.1
    got = client.get_many([f"{http.url}/blob"] * 4, [a for a, _ in ranges], [b for _, b in ranges])
    assert [bytes(g) for g in got] == [DATA[a:b] for a, b in ranges]
    assert http.traffic.requests == 4
    assert http.traffic.max_in_flight == 4  # all four waited at the server together


def test_connection_closed_by_the_server_while_idle_is_replaced(store, http):
    root, path = store
    local = eegbench.open(path)
    ds = eegbench.open(f"{http.url}/ds.zarr")
    CHUNK_CACHE.clear()
    assert ds[0].get_data(start=0, stop=300).tobytes() == local[0].get_data(start=0, stop=300).tobytes()
    client = HTTPClient("http", f"127.0.0.1:{http.port}")
    assert client.get(f"{http.url}/blob", 0, 50) == DATA[:50]
    for _ in range(2):
        http.drop_connections()  # a keep-alive timeout at the server
        CHUNK_CACHE.clear()
        assert ds[1].get_data(start=500, stop=900).tobytes() == local[1].get_data(start=500, stop=900).tobytes()
        got = client.get_many([f"{http.url}/blob"] * 2, [0, 70], [10, 80])
        assert [bytes(g) for g in got] == [DATA[:10], DATA[70:80]]
        assert client.get(f"{http.url}/blob", 60, 90) == DATA[60:90]


class _Odd(BaseHTTPRequestHandler):
    """Answers the lean reader does not parse itself, and error statuses."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range", "")
        a, b = (int(x) for x in rng.split("=")[1].split("-")) if rng else (0, len(DATA) - 1)
        if self.path == "/chunked":
            self.send_response(206)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            body = DATA[a:b + 1]
            for k in range(0, len(body), 7):
                part = body[k:k + 7]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/no-length":
            self.send_response(206)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(DATA[a:b + 1])
            self.close_connection = True
        elif self.path == "/ignores-range":
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)
        elif self.path == "/close":  # a length, then the connection closed
            self.send_response(206)
            self.send_header("Content-Length", str(b - a + 1))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(DATA[a:b + 1])
            self.close_connection = True
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ignores-range")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            status = {"/forbidden": 403, "/broken": 500}.get(self.path, 404)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")


@pytest.fixture(scope="module")
def odd():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/chunked", "/no-length", "/close", "/ignores-range", "/moved"])
def test_unusual_answers_give_the_range(odd, path):
    client = HTTPClient("http", odd)
    for a, b in [(3, 40), (1000, 1001)]:
        assert bytes(client.get(f"http://{odd}{path}", a, b)) == DATA[a:b]
    got = client.get_many([f"http://{odd}{path}"] * 2, [0, 50], [20, 99])
    assert [bytes(g) for g in got] == [DATA[:20], DATA[50:99]]


def test_error_statuses_are_typed(odd):
    client = HTTPClient("http", odd)
    with pytest.raises(FileNotFoundError):
        client.get(f"http://{odd}/missing", 0, 10)
    with pytest.raises(PermissionError):
        client.get(f"http://{odd}/forbidden", 0, 10)
    with pytest.raises(OSError, match="500"):  # RemoteSource retries it (transient)
        client.get(f"http://{odd}/broken", 0, 10)
    assert io_remote._transient(OSError("http://x: HTTP 500 Internal Server Error"))
    assert client.get(f"http://{odd}/ignores-range", 0, 4) == DATA[:4]  # the connection still works


def test_fsspec_client_reads_the_same(store, http, monkeypatch):
    monkeypatch.setattr(io_remote, "HTTP_CLIENT", "fsspec")
    root, path = store
    ds = eegbench.open(f"{http.url}/ds.zarr")
    assert ds.byte_source.http is None
    ds[0].get_data(start=0, stop=10)
    CHUNK_CACHE.clear()
    http.traffic.reset()
    x = ds[0].get_data(start=250, stop=650)
    assert x.tobytes() == eegbench.open(path)[0].get_data(start=250, stop=650).tobytes()
    assert http.traffic.requests == 1


def test_lean_client_only_for_options_it_understands(http):
    assert http_client(http.url) is not None
    assert http_client(http.url, {"headers": {"Authorization": "Bearer x"}}).headers == {"Authorization": "Bearer x"}
    assert http_client(http.url, {"client_kwargs": {"trust_env": True}}) is None  # aiohttp's: fsspec reads
    assert http_client(http.url.replace("://", "://user:pw@")) is None  # basic auth in the URL: fsspec reads


def test_headers_reach_the_server(odd):
    seen = []

    class Echo(_Odd):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HTTPClient("http", f"127.0.0.1:{server.server_address[1]}", {"Authorization": "Bearer t"})
        assert client.get(f"http://127.0.0.1:{server.server_address[1]}/ignores-range", 0, 8) == DATA[:8]
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Bearer t"]


def test_window_over_lean_client_bitwise_and_one_request(store, http):
    root, path = store
    ds = eegbench.open(f"{http.url}/ds.zarr")
    assert isinstance(ds.byte_source.http, HTTPClient)
    local = eegbench.open(path)
    ds[1].get_data(start=0, stop=10)
    rng = np.random.default_rng(3)
    for s in rng.integers(0, 1700, 5).tolist():
        CHUNK_CACHE.clear()
        http.traffic.reset()
        assert ds[1].get_data(start=s, stop=s + 250).tobytes() == local[1].get_data(start=s, stop=s + 250).tobytes()
        assert http.traffic.requests == 1, http.traffic.log
