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

import asyncio
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
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
    #: client connections accepted (HTTP range server only; keep-alive reuse shows as few)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str, rng: str | None, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += nbytes
            self.by_method[method] = self.by_method.get(method, 0) + 1
            self.log.append((method, path, rng))

    def waiting(self, delta: int) -> None:
        """One more (``+1``) or one fewer (``-1``) request held back by the injected delay."""
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def reset(self) -> None:
        with self._lock:
            self.requests, self.bytes, self.max_in_flight, self.connections = 0, 0, 0, 0
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

    def wait_s(self, nbytes: int) -> float:
        """Seconds to hold back an answer of ``nbytes`` body bytes: the latency plus the bandwidth cap."""
        return self.latency + (nbytes / self.bandwidth if self.bandwidth else 0.0)

    def delay(self, nbytes: int) -> None:
        """Sleep :meth:`wait_s` (the thread-per-request S3 server)."""
        wait = self.wait_s(nbytes)
        if wait > 0:
            self.traffic.waiting(+1)
            try:
                time.sleep(wait)
            finally:
                self.traffic.waiting(-1)


# ---------------------------------------------------------------------------------------------
# HTTP with ranges
# ---------------------------------------------------------------------------------------------
#: range answers of at least this many bytes are sent with ``os.sendfile`` (page cache -> socket in
#: the kernel, as nginx's ``sendfile on`` and most static file servers do) instead of ``pread`` +
#: ``write`` (two copies through this process); smaller ones, and the rest of a body the socket
#: would not take at once, are read and written
SENDFILE_MIN = 16384


class _FileBody:
    """A range of an open file, answered with ``os.sendfile`` (owns ``fd``)."""

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd, self.offset, self.count = fd, offset, count

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found",
            416: "Range Not Satisfiable", 501: "Not Implemented"}


class _RangeProtocol(asyncio.Protocol):
    """One client connection of :class:`RangeHTTPServer`: HTTP/1.1 keep-alive, ``GET``/``HEAD``,
    one request answered at a time (in order), the injected latency waited with ``call_later`` (a
    timer of the event loop: no thread and no CPU per waiting request)."""

    def __init__(self, server: RangeHTTPServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # asyncio sets TCP_NODELAY on it
        self.server._conns.add(self)
        t = self.server._shaping.traffic
        with t._lock:
            t.connections += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self.server._conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536 and self.transport is not None:
                self.transport.close()
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split()
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.busy = True
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._answer(400, b"bad request", {}, False, None, "?", "", close=True)
            return
        method, target, version = parts
        conn = headers.get("connection", "").lower()
        close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
        if method not in ("GET", "HEAD") or int(headers.get("content-length", "0") or 0):
            self._answer(501, b"", {}, method == "HEAD", None, method, target, close=True)
            return
        status, body, extra, length = self.server._resolve(target, headers.get("range"), method == "HEAD")
        self._answer(status, body, extra, method == "HEAD", headers.get("range"), method, target, close, length)

    def _answer(self, status: int, body: bytes, extra: dict[str, str], head: bool, rng: str | None, method: str,
                target: str, close: bool = False, length: int | None = None) -> None:
        shaping = self.server._shaping
        sent = 0 if head else len(body)
        shaping.traffic.add(method, urlsplit(target).path, rng, sent)
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, _FileBody):
            data = (data, body)  # type: ignore[assignment]
        elif not head:
            data += body
        wait = shaping.wait_s(sent)
        if wait > 0:
            shaping.traffic.waiting(+1)
            asyncio.get_running_loop().call_later(wait, self._send, data, close, True)
        else:
            self._send(data, close, False)

    def _send(self, data: bytes, close: bool, counted: bool) -> None:
        if counted:
            self.server._shaping.traffic.waiting(-1)
        if self.transport is None:
            if isinstance(data, tuple):
                data[1].close()
            return
        if isinstance(data, tuple):
            self._sendfile(*data)
        else:
            self.transport.write(data)
        self.busy = False
        if close:
            self.transport.close()
        elif self.buf:
            self._next()


    def _sendfile(self, head: bytes, body: _FileBody) -> None:
        """Write ``head``, then as much of ``body`` as the socket takes with ``os.sendfile``, the
        rest (if any) read and queued on the transport."""
        transport = self.transport
        try:
            transport.write(head)
            off, left = body.offset, body.count
            sock = transport.get_extra_info("socket")
            if sock is not None and not transport.get_write_buffer_size():
                fileno = sock.fileno()
                while left:
                    try:
                        n = os.sendfile(fileno, body.fd, off, left)
                    except (BlockingIOError, InterruptedError):
                        break
                    if n <= 0:
                        break
                    off, left = off + n, left - n
            if left:
                transport.write(os.pread(body.fd, left, off))
        finally:
            body.close()


class _Shaped:
    """Traffic counters and the injected latency / bandwidth cap of a server, settable while it runs."""

    _shaping: _Shaping

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


class RangeHTTPServer(_Shaped):
    """Serve ``root`` at ``http://127.0.0.1:PORT/`` (port chosen by the OS unless given): HTTP/1.1
    with ``Range`` (``206 Partial Content``; single ranges ``a-b``, ``a-`` and suffix ``-n``),
    ``HEAD``, keep-alive; an asyncio server on an event loop in a thread of its own.

    Why asyncio: the remote DataLoader benchmark sends hundreds of requests per second from 8
    worker processes that share this VM's 2 cores with the server, so the server's CPU per request
    is part of what is measured. ``http.server``'s thread per connection, ``email``-based header
    parsing and a sleeping thread per delayed request cost ~0.4-0.9 ms of CPU per request here;
    this one parses the request line and headers itself, sends a range of >= ``SENDFILE_MIN``
    bytes with ``os.sendfile`` as static file servers do (smaller ones: one ``pread``) and waits
    the injected latency on a loop timer. (Served files are expected to stay put while
    served: file sizes and ETags are looked up per request, the content is not cached.)"""

    def __init__(self, root: str | os.PathLike, latency: float = 0.0, bandwidth: float | None = None,
                 port: int = 0) -> None:
        self._shaping = _Shaping(latency, bandwidth)
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self._want_port = port
        #: answer ranges of >= SENDFILE_MIN bytes with os.sendfile (EEGBENCH_SERVER_SENDFILE=0: pread + write)
        self.sendfile = os.environ.get("EEGBENCH_SERVER_SENDFILE", "1") != "0"
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[_RangeProtocol] = set()

    def __enter__(self) -> RangeHTTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> RangeHTTPServer:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                self._server = loop.run_until_complete(loop.create_server(
                    lambda: _RangeProtocol(self), "127.0.0.1", self._want_port, backlog=128))
                self._port = int(self._server.sockets[0].getsockname()[1])
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                for conn in list(self._conns):  # client connections still open
                    if conn.transport is not None:
                        conn.transport.abort()
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="range-http")
        self._thread.start()
        ready.wait()
        if failed:
            self._thread.join()
            self._thread = None
            raise failed[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def drop_connections(self) -> None:
        """Close every client connection now (as a server's keep-alive timeout does)."""
        done = threading.Event()

        def drop() -> None:
            for conn in list(self._conns):
                if conn.transport is not None:
                    conn.transport.close()
            done.set()

        if self._loop is not None:
            self._loop.call_soon_threadsafe(drop)
            done.wait(10)

    def _resolve(self, target: str, rng: str | None, head: bool) -> tuple[int, bytes, dict[str, str], int | None]:
        """``(status, body, headers, Content-Length if not len(body))`` for a GET/HEAD of ``target``."""
        rel = unquote(urlsplit(target).path).lstrip("/")
        path = os.path.realpath(os.path.join(self._root, rel))
        if not path.startswith(self._root + os.sep):
            return 404, b"not found", {"Content-Type": "text/plain"}, None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return 404, b"not found", {"Content-Type": "text/plain"}, None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return 404, b"not found", {"Content-Type": "text/plain"}, None
            size = st.st_size
            base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                    "ETag": f'"{st.st_mtime_ns}-{size}"'}
            if rng is None:
                if head:  # HEAD announces the full length without a body
                    return 200, b"", base, size
                return 200, os.pread(fd, size, 0), base, None
            m = _RANGE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                return 416, b"", {**base, "Content-Range": f"bytes */{size}"}, None
            if m.group(1):
                start = int(m.group(1))
                stop = min(int(m.group(2)) + 1, size) if m.group(2) else size
            else:  # suffix: the last n bytes
                start, stop = max(0, size - int(m.group(2))), size
            if start >= size or stop <= start:
                return 416, b"", {**base, "Content-Range": f"bytes */{size}"}, None
            extra = {**base, "Content-Range": f"bytes {start}-{stop - 1}/{size}"}
            if head:
                return 206, b"", extra, stop - start
            if stop - start >= SENDFILE_MIN and self.sendfile:
                body = _FileBody(os.dup(fd), start, stop - start)  # sent from the page cache (os.sendfile)
                return 206, body, extra, body.count  # type: ignore[return-value]
            return 206, os.pread(fd, stop - start, start), extra, None
        finally:
            os.close(fd)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"



class _Running(_Shaped):
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
            # TCP_NODELAY, as production servers set it: headers and body go out as separate writes, and
            # with Nagle's algorithm a small body then waits for the client's delayed ACK (~40-60 ms)
            disable_nagle_algorithm = True

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


# ---------------------------------------------------------------------------------------------
# a server in its own process
# ---------------------------------------------------------------------------------------------
_KINDS = {"http": "RangeHTTPServer", "s3": "S3Server"}
_TRAFFIC_FIELDS = ("requests", "bytes", "by_method", "log", "max_in_flight", "in_flight", "connections")


def _serve_child(kind: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Child side of :class:`ServerProcess` (``python -m benchmarks._servers``): run the server and
    answer the parent's JSON-line calls on stdin until it says stop or goes away (EOF)."""
    import json
    import sys

    server = globals()[_KINDS[kind]](*args, **kwargs).start()
    out = sys.stdout

    def reply(ok: bool, value: Any) -> None:
        out.write(json.dumps([ok, value]) + "\n")
        out.flush()

    reply(True, {"port": server.port, "pid": os.getpid()})
    try:
        for line in sys.stdin:
            op, *rest = json.loads(line)
            try:
                if op == "stop":
                    break
                if op == "traffic":  # one attribute of the Traffic, copied under its lock
                    t = server.traffic
                    with t._lock:
                        value = getattr(t, rest[0]) if rest[0] in _TRAFFIC_FIELDS else None
                        value = list(value) if isinstance(value, list) else dict(value) \
                            if isinstance(value, dict) else value
                    reply(True, value)
                elif op == "reset":
                    server.traffic.reset()
                    reply(True, None)
                elif op == "snapshot":
                    reply(True, server.traffic.snapshot())
                elif op == "set" and rest[0] in ("latency", "bandwidth"):
                    setattr(server, rest[0], rest[1])
                    reply(True, None)
                elif op == "get" and rest[0] in ("latency", "bandwidth"):
                    reply(True, getattr(server, rest[0]))
                elif op == "create_bucket":
                    server.create_bucket(rest[0])
                    reply(True, None)
                else:
                    reply(False, f"unknown operation {op!r}")
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                reply(False, f"{type(exc).__name__}: {exc}")
    finally:
        server.stop()


class _TrafficProxy:
    """The child server's :class:`Traffic`, read over the pipe (same attributes and methods)."""

    def __init__(self, owner: ServerProcess) -> None:
        self._owner = owner

    def reset(self) -> None:
        self._owner._call("reset")

    def snapshot(self) -> tuple[int, int]:
        requests, nbytes = self._owner._call("snapshot")
        return requests, nbytes

    def __getattr__(self, name: str) -> Any:
        if name not in _TRAFFIC_FIELDS:
            raise AttributeError(name)
        value = self._owner._call("traffic", name)
        return [tuple(e) for e in value] if name == "log" else value


class ServerProcess:
    """A :class:`RangeHTTPServer` (``kind="http"``, args: the folder) or :class:`S3Server` (``"s3"``)
    in a Python process of its own, with the same interface (``traffic``, ``latency``, ``bandwidth``,
    ``url``, ``storage_options``, ``create_bucket``, ``start``/``stop``, context manager). Requests
    are still counted at the server (``traffic`` asks the child, one pipe round trip per figure);
    the client's process no longer shares its interpreter lock and CPU time slices with the server's
    request handling (moto parses every request in Python and copies the whole object to answer a
    range), so a window's time is the client's plus the server's, as against a real server."""

    def __init__(self, kind: str, *args: Any, **kwargs: Any) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {kind!r}")
        self.kind = kind
        self._args = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in args]
        self._kwargs = kwargs
        self._proc: Any = None
        self._lock = threading.Lock()
        self.pid: int | None = None
        self._port = 0

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> ServerProcess:
        import json
        import subprocess
        import sys

        repo = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._servers", json.dumps([self.kind, self._args, self._kwargs])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=repo, env=env)
        info = self._recv()
        self._port, self.pid = info["port"], info["pid"]
        return self

    def _recv(self) -> Any:
        import json

        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait(10)
            raise RuntimeError(f"the {self.kind} server process exited (code {code})")
        ok, value = json.loads(line)
        if not ok:
            raise RuntimeError(f"{self.kind} server process: {value}")
        return value

    def _call(self, op: str, *args: Any) -> Any:
        import json

        with self._lock:
            self._proc.stdin.write(json.dumps([op, *args]) + "\n")
            self._proc.stdin.flush()
            return self._recv()

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            self._proc.stdin.write('["stop"]\n')
            self._proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self._proc.wait(10)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._proc = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def traffic(self) -> _TrafficProxy:
        return _TrafficProxy(self)

    @property
    def latency(self) -> float:
        return float(self._call("get", "latency"))

    @latency.setter
    def latency(self, value: float) -> None:
        self._call("set", "latency", value)

    @property
    def bandwidth(self) -> float | None:
        return self._call("get", "bandwidth")

    @bandwidth.setter
    def bandwidth(self, value: float | None) -> None:
        self._call("set", "bandwidth", value)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    endpoint_url = url

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"key": "testing", "secret": "testing", "endpoint_url": self.url}

    def create_bucket(self, name: str) -> None:
        self._call("create_bucket", name)


if __name__ == "__main__":  # the child of ServerProcess
    import json
    import sys

    _kind, _args, _kwargs = json.loads(sys.argv[1])
    _serve_child(_kind, _args, _kwargs)
