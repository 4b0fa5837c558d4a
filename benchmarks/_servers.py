"""Local remote-storage servers for tests and the remote benchmark suite, both on 127.0.0.1.

* :class:`RangeHTTPServer`: serves a folder over HTTP/1.1 with ``Range`` requests (``206 Partial
  Content``; single ranges ``a-b``, ``a-`` and suffix ``-n``), ``HEAD``, keep-alive;
* :class:`S3Server`: moto's S3 implementation (its server-mode WSGI app) behind the same
  counting/latency middleware: an S3-compatible endpoint for s3fs/obstore/boto3.

Both count what clients cost *at the server* (:class:`Traffic`: requests by method, bytes of
response bodies, and a log of ``(method, path, range)``) and can inject a fixed latency per request
(``latency`` seconds, slept before answering) and a bandwidth cap (``bandwidth`` bytes/s, the
body's transfer time slept too). Counting at the server is what makes "requests and bytes per
window" a measurement rather than an estimate.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Traffic:
    """Requests and response-body bytes seen by a server (thread-safe)."""

    requests: int = 0
    bytes: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    #: most requests being answered at the same time (counted while the injected latency is slept)
    max_in_flight: int = 0
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str, rng: str | None, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += nbytes
            self.by_method[method] = self.by_method.get(method, 0) + 1
            self.log.append((method, path, rng))

    def reset(self) -> None:
        with self._lock:
            self.requests, self.bytes, self.max_in_flight = 0, 0, 0
            self.by_method.clear()
            self.log.clear()

    def snapshot(self) -> tuple[int, int]:
        """``(requests, bytes)`` so far."""
        with self._lock:
            return self.requests, self.bytes


class _Shaping:
    """Latency and bandwidth shaping shared by both servers (settable while running)."""

    def __init__(self, latency: float = 0.0, bandwidth: float | None = None) -> None:
        self.latency = latency
        self.bandwidth = bandwidth
        self.traffic = Traffic()

    def delay(self, nbytes: int) -> None:
        wait = self.latency + (nbytes / self.bandwidth if self.bandwidth else 0.0)
        if wait > 0:
            t = self.traffic
            with t._lock:
                t.in_flight += 1
                t.max_in_flight = max(t.max_in_flight, t.in_flight)
            try:
                time.sleep(wait)
            finally:
                with t._lock:
                    t.in_flight -= 1


# ---------------------------------------------------------------------------------------------
# HTTP with ranges
# ---------------------------------------------------------------------------------------------
class _RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers and CDNs
    # TCP_NODELAY, as production servers set it: headers and body go out as separate writes, and
    # with Nagle's algorithm a small body then waits for the client's delayed ACK (~40-60 ms)
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _file(self) -> Path | None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        root = self.server.root
        path = (root / rel).resolve()
        if root not in path.parents and path != root:
            return None
        return path if path.is_file() else None

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool, rng: str | None) -> None:
        shaping = self.server.shaping
        shaping.traffic.add(self.command, urlsplit(self.path).path, rng, 0 if head else len(body))
        shaping.delay(0 if head else len(body))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _shaping_head(self, size: int, headers: dict[str, str]) -> None:
        shaping = self.server.shaping
        shaping.traffic.add("HEAD", urlsplit(self.path).path, None, 0)
        shaping.delay(0)
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(size))
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = self._file()
        rng = self.headers.get("Range")
        if path is None:
            self._send(404, b"not found", {"Content-Type": "text/plain"}, head, rng)
            return
        size = path.stat().st_size
        base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                "ETag": f'"{int(path.stat().st_mtime_ns)}-{size}"'}
        if rng is None:
            if head:  # HEAD announces the full length without a body
                self._shaping_head(size, base)
                return
            self._send(200, path.read_bytes(), base, head, None)
            return
        m = _RANGE.match(rng.strip())
        if not m or (not m.group(1) and not m.group(2)):
            self._send(416, b"", {**base, "Content-Range": f"bytes */{size}"}, head, rng)
            return
        if m.group(1):
            start = int(m.group(1))
            stop = min(int(m.group(2)) + 1, size) if m.group(2) else size
        else:  # suffix: the last n bytes
            start, stop = max(0, size - int(m.group(2))), size
        if start >= size or stop <= start:
            self._send(416, b"", {**base, "Content-Range": f"bytes */{size}"}, head, rng)
            return
        with open(path, "rb") as fh:
            body = os.pread(fh.fileno(), stop - start, start)
        self._send(206, body, {**base, "Content-Range": f"bytes {start}-{stop - 1}/{size}"}, head, rng)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog (socketserver's default 5 drops connections of 8 busy workers)
    root: Path
    shaping: _Shaping


class _Running:
    """Start/stop of a server thread; a context manager."""

    _server: Any
    _thread: threading.Thread | None = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._thread = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def traffic(self) -> Traffic:
        return self._shaping.traffic

    @property
    def latency(self) -> float:
        return self._shaping.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._shaping.latency = value

    @property
    def bandwidth(self) -> float | None:
        return self._shaping.bandwidth

    @bandwidth.setter
    def bandwidth(self, value: float | None) -> None:
        self._shaping.bandwidth = value


class RangeHTTPServer(_Running):
    """Serve ``root`` at ``http://127.0.0.1:PORT/`` (port chosen by the OS unless given)."""

    def __init__(self, root: str | os.PathLike, latency: float = 0.0, bandwidth: float | None = None,
                 port: int = 0) -> None:
        self._shaping = _Shaping(latency, bandwidth)
        self._server = _HTTPServer(("127.0.0.1", port), _RangeHandler)
        self._server.root = Path(root).resolve()
        self._server.shaping = self._shaping

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---------------------------------------------------------------------------------------------
# S3 (moto's server mode)
# ---------------------------------------------------------------------------------------------
class _Counting:
    """WSGI middleware: count each request and its response body, then shape it."""

    def __init__(self, app: Any, shaping: _Shaping) -> None:
        self.app, self.shaping = app, shaping

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = b"".join(self.app(environ, start_response))
        method = environ.get("REQUEST_METHOD", "?")
        path = environ.get("PATH_INFO", "")
        self.shaping.traffic.add(method, path, environ.get("HTTP_RANGE"), 0 if method == "HEAD" else len(body))
        self.shaping.delay(len(body))
        return [body]


class S3Server(_Running):
    """An S3-compatible endpoint (moto) at ``http://127.0.0.1:PORT``; credentials are ignored.

    ``storage_options`` gives what :func:`eegbench.open` / s3fs need to reach it."""

    def __init__(self, latency: float = 0.0, bandwidth: float | None = None, port: int = 0) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            disable_nagle_algorithm = True  # see _RangeHandler

            def log(self, *args: Any, **kwargs: Any) -> None:
                pass

        for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", "us-east-1")):
            os.environ.setdefault(var, value)
        self._shaping = _Shaping(latency, bandwidth)
        app = _Counting(DomainDispatcherApplication(create_backend_app), self._shaping)
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"key": "testing", "secret": "testing", "endpoint_url": self.endpoint_url}

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)
