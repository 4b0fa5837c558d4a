"""The benchmark's HTTP range server answers large ranges with ``os.sendfile`` (as static file
servers do): the bytes are exactly the file's, also for ranges larger than the socket takes at once
(the rest is read and queued), with latency, and counted at the server like any other answer."""

from __future__ import annotations

import os

import pytest

from benchmarks._servers import SENDFILE_MIN, RangeHTTPServer
from eegbench.io.remote import HTTPClient

SIZE = 12 << 20


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sendfile")
    (root / "blob").write_bytes(os.urandom(SIZE))
    return root


@pytest.mark.parametrize("sendfile", [True, False])
def test_ranges_are_exact_whichever_way_they_are_sent(root, sendfile, monkeypatch):
    data = (root / "blob").read_bytes()
    calls = []
    real = os.sendfile
    monkeypatch.setattr(os, "sendfile", lambda *a: calls.append(a[3]) or real(*a))
    ranges = [(0, 100), (5, SENDFILE_MIN - 1), (1000, 1000 + SENDFILE_MIN), (7, 7 + 196608),
              (SIZE - 200000, SIZE), (123, 123 + (10 << 20))]  # the last: more than a socket buffer
    with RangeHTTPServer(root) as server:
        server.sendfile = sendfile
        client = HTTPClient("http", f"127.0.0.1:{server.port}")
        url = f"{server.url}/blob"
        for a, b in ranges:
            assert bytes(client.get(url, a, b)) == data[a:b]
        server.latency = 0.01
        got = client.get_many([url] * 3, [0, 50, 4096], [300000, 300050, 4096 + SENDFILE_MIN])
        assert [bytes(g) for g in got] == [data[0:300000], data[50:300050], data[4096:4096 + SENDFILE_MIN]]
        assert server.traffic.requests == len(ranges) + 3
        assert server.traffic.bytes == sum(b - a for a, b in ranges) + 600000 + SENDFILE_MIN
        client.close()
    if sendfile:
        assert len(calls) >= 6  # every range of >= SENDFILE_MIN bytes went through sendfile ...
    else:
        assert not calls  # ... and none when it is off
