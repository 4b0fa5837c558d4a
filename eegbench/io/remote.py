"""Remote byte sources: HTTP(S) range requests, S3-compatible object stores and ``hf://``.

:class:`RemoteSource` implements the :class:`~eegbench.io.ByteSource` door (``size`` / ``get`` /
``get_ranges``) over an fsspec file system -- ``HTTPFileSystem`` (aiohttp), ``s3fs`` and
``HfFileSystem`` -- so every format's reader streams a remote store with the code it uses for
local files. ``http(s)://`` reads go through :class:`HTTPClient` (keep-alive connections, a request
written and its response read by the calling thread, all ranges of a call in flight at once;
``EEGBENCH_HTTP_CLIENT=fsspec`` for aiohttp), ``s3://`` reads through obstore when it is installed
(:func:`obstore_store`; Rust, less client time per request than s3fs), except in a fork of a process
that already used it. What a read costs is what the reader asks for:

* ``get_ranges`` coalesces neighbouring ranges (gap up to :attr:`RemoteSource.max_gap`, 64 KiB
  by default: a round trip costs far more than that many bytes) and fetches the merged ranges
  **concurrently** (:meth:`HTTPClient.get_many`, ``cat_ranges`` of the async file systems), one
  request each;
* sizes come from the store's manifest (:meth:`RemoteSource.set_sizes`, done by
  :func:`eegbench.open`), so no ``HEAD`` request is made per file;
* small reads (``get`` of at most :attr:`block_size` bytes: HDF5 metadata read by h5py, shard
  indexes, tables) go through a bounded local block cache (LRU, ``cache_bytes``) of aligned
  blocks; chunk data is fetched exactly (decoded chunks are cached above, in
  :data:`eegbench.formats._chunks.CHUNK_CACHE`).

Everything is counted in :attr:`RemoteSource.stats` (``requests``, ``bytes`` received,
``hits``/``misses`` of the block cache) so tests and benchmarks measure requests and bytes per
window. Transport errors (connection reset, 5xx, timeouts) are retried ``retries`` times; a
missing object is ``FileNotFoundError`` at once; data is never "repaired" here (checksums are
the readers' business). The file system object is created lazily per process and dropped when
pickled (DataLoader workers and dask workers build their own); storage options travel along.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

from .bytes import coalesce, split_reads

#: URL schemes served by :class:`RemoteSource`
SCHEMES = ("http", "https", "s3", "hf")


@dataclass
class RemoteStats:
    """Work done by a :class:`RemoteSource` (in this process)."""

    requests: int = 0  #: range requests sent (each merged range is one)
    bytes: int = 0  #: payload bytes received
    hits: int = 0  #: block-cache hits (small reads served locally)
    misses: int = 0  #: block-cache misses
    retries: int = 0  #: transport errors retried

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _transient(exc: BaseException) -> bool:
    """Transport trouble worth a retry (not a missing object, not a bad request)."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = type(exc).__name__
    return name in {"ClientConnectionError", "ServerDisconnectedError", "ClientOSError", "ClientPayloadError",
                    "ServerTimeoutError", "EndpointConnectionError", "ReadTimeoutError", "ConnectTimeoutError"} \
        or "503" in str(exc) or "500" in str(exc) or "SlowDown" in str(exc)


class RemoteSource:
    """A store's files at ``root`` (``https://host/ds.zarr``, ``s3://bucket/ds.zarr``,
    ``hf://datasets/org/name/ds.zarr``) through fsspec; see the module docstring.

    ``storage_options`` go to the file system (``endpoint_url``/``key``/``secret``/``anon`` for
    S3, ``headers`` or ``client_kwargs`` for HTTP, ``token``/``endpoint`` for the Hub);
    ``block_size`` is the block-cache unit (bytes), ``cache_bytes`` its bound, ``max_gap`` the
    largest hole two ranges may have to be fetched as one request.
    """

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None, *, block_size: int = 64 << 10,
                 cache_bytes: int = 32 << 20, max_gap: int = 64 << 10, retries: int = 2) -> None:
        self.root = root.rstrip("/")
        self.protocol = self.root.split("://", 1)[0].lower()
        self.storage_options = dict(storage_options or {})
        self.block_size, self.cache_bytes, self.max_gap, self.retries = block_size, cache_bytes, max_gap, retries
        self.sizes: dict[str, int] = {}
        self.stats = RemoteStats()
        self._init_process()

    # --- process-local state ------------------------------------------------------------------
    def _init_process(self) -> None:
        self._fs: Any = None
        self._pid = os.getpid()
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        self._obs: Any = None  # the obstore S3Store of this process (False: use s3fs)
        self._http: Any = None  # the HTTPClient of this process (False: use fsspec)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_fs", "_pid", "_blocks", "_cached", "_lock", "_obs", "_http")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stats = RemoteStats()
        self._init_process()

    def __repr__(self) -> str:
        return f"RemoteSource({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteSource) and (other.root, other.storage_options) == (
            self.root, self.storage_options)

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def fs(self) -> Any:
        """The fsspec file system of this process (created on first use, again after fork)."""
        if self._fs is None or self._pid != os.getpid():
            if self._pid != os.getpid():
                self._init_process()
            self._fs = filesystem(self.protocol, self.storage_options)
        return self._fs

    def url(self, path: str) -> str:
        return f"{self.root}/{path}"

    def set_sizes(self, sizes: dict[str, int]) -> None:
        """Known file sizes (from the manifest): no ``HEAD`` request for them."""
        self.sizes.update(sizes)

    # --- the door -----------------------------------------------------------------------------
    def size(self, path: str) -> int:
        size = self.sizes.get(path)
        if size is None:
            info = self._call(lambda: self.fs.info(self.url(path)))
            size = self.sizes[path] = int(info["size"])
        return size

    def get(self, path: str, start: int, stop: int) -> bytes:
        stop = min(stop, self.size(path))
        if stop <= start:
            return b""
        if stop - start > self.block_size:
            return self._fetch(path, [(start, stop)])[0]
        first, last = start // self.block_size, (stop - 1) // self.block_size
        blocks = [self._block(path, b) for b in range(first, last + 1)]
        data = blocks[0] if len(blocks) == 1 else b"".join(blocks)
        offset = start - first * self.block_size
        return bytes(data[offset:offset + stop - start])

    def get_ranges(self, path: str, ranges: Sequence[tuple[int, int]]) -> list[Any]:
        size = self.size(path)
        ranges = [(a, min(b, size)) for a, b in ranges]
        reads = coalesce([(a, max(a, b)) for a, b in ranges], self.max_gap)
        data = self._fetch(path, [(s, e) for s, e, _ in reads])
        return split_reads(reads, data, ranges)

    def get_whole(self, path: str) -> bytes:
        """The whole file in one request (small files: tables, metadata)."""
        return self._fetch(path, [(0, self.size(path))])[0] if self.size(path) else b""

    # --- one request per range ------------------------------------------------------------------
    def cat(self, url: str, start: int, end: int | None) -> bytes:
        """Bytes ``start:end`` of ``url`` in one ranged GET (not counted in :attr:`stats`)."""
        if self.protocol == "hf":
            return self._hf_range(url, start, end)
        if self.obstore is not None:
            return self._ob_range(url, start, end)
        if self.http is not None:
            return self._http_range(url, start, end)
        return self.fs.cat_file(url, start=start, end=end)

    def cat_ranges(self, urls: list[str], starts: list[int], ends: list[int | None]) -> list[bytes]:
        """Several ranges, one request each, sent concurrently."""
        if self.protocol == "hf":  # HfFileSystem is synchronous: a few threads
            return list(_leaf_pool().map(self._hf_range, urls, starts, ends))
        if self.obstore is not None:  # each range its own request (obstore.get_ranges merges up to 1 MiB apart)
            return list(_leaf_pool().map(self._ob_range, urls, starts, ends))
        if self.http is not None:  # all in flight at once from this thread (no thread hand-offs)
            ends = [self.size(u[len(self.root) + 1:]) if b is None else b for u, b in zip(urls, ends)]
            todo = [k for k in range(len(urls)) if ends[k] > starts[k]]
            got = self._http.get_many([urls[k] for k in todo], [starts[k] for k in todo], [ends[k] for k in todo])
            out: list[Any] = [b""] * len(urls)
            for k, g in zip(todo, got):
                out[k] = g
            return out
        got = self.fs.cat_ranges(urls, starts, ends, on_error="raise")
        for g in got:
            if isinstance(g, BaseException):
                raise g
        return got

    @property
    def obstore(self) -> Any:
        """The ``obstore`` S3 store this process reads ``s3://`` through (None: s3fs; see
        :func:`obstore_store`)."""
        if self.protocol != "s3":
            return None
        if self._pid != os.getpid():
            self._init_process()
        if self._obs is None:
            global _OB_PID
            if _OB_PID not in (None, os.getpid()):
                # a fork of a process that used obstore: its Rust runtime does not survive fork
                # (requests hang in the child), so this process reads through s3fs
                self._obs = False
            else:
                self._obs = obstore_store(self.root, self.storage_options) or False
                if self._obs:
                    _OB_PID = os.getpid()
        return self._obs or None

    @property
    def http(self) -> HTTPClient | None:
        """The keep-alive :class:`HTTPClient` this process reads ``http(s)://`` through (None:
        fsspec's ``HTTPFileSystem``, for options it alone understands; see :func:`http_client`)."""
        if self.protocol not in ("http", "https"):
            return None
        if self._pid != os.getpid():
            self._init_process()
        if self._http is None:
            self._http = http_client(self.root, self.storage_options) or False
        return self._http or None

    def _http_range(self, url: str, start: int, end: int | None) -> bytes:
        if end is None:
            end = self.size(url[len(self.root) + 1:])
        if end <= start:
            return b""
        return self._http.get(url, start, end)

    def _ob_range(self, url: str, start: int, end: int | None) -> bytes:
        import obstore

        rel = url[len(self.root) + 1:]
        if end is None:
            end = self.size(rel)
        if end <= start:
            return b""
        return bytes(obstore.get_range(self._obs, rel, start=start, end=end))

    def _hf_range(self, url: str, start: int, end: int | None) -> bytes:
        """One ranged GET on the Hub's ``resolve`` URL of ``url``. (``HfFileSystem.cat_file`` and its
        file objects first ask for the file's size or whether it is a folder -- a tree-listing API
        call per folder -- and its stream file reads to the end of the file.)"""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

        if end is None:
            end = self.size(url[len(self.root) + 1:])
        if end <= start:
            return b""
        repo_type, repo_id, revision = self._hf_repo()
        rel = url[len(self.root) + 1:]
        endpoint = self.storage_options.get("endpoint") or getattr(self.fs, "endpoint", None)
        target = hf_hub_url(repo_id, rel, repo_type=repo_type, revision=revision, endpoint=endpoint)
        headers = {**build_hf_headers(token=self.storage_options.get("token")), "range": f"bytes={start}-{end - 1}"}
        r = http_backoff("GET", target, headers=headers)
        try:
            hf_raise_for_status(r)
        except EntryNotFoundError as exc:
            raise FileNotFoundError(url) from exc
        return r.content

    def _hf_repo(self) -> tuple[str, str, str]:
        """(repo type, repo id, revision) of an ``hf://`` root: parsed when the revision is a commit,
        else resolved once by ``HfFileSystem`` (one API request per process)."""
        import re

        got = self.__dict__.get("_hf")
        if got is None:
            m = re.fullmatch(r"hf://(?:(datasets|spaces)/)?([^/@]+/[^/@]+)@([0-9a-f]{40})", self.root)
            if m:
                got = ({"datasets": "dataset", "spaces": "space", None: "model"}[m.group(1)], m.group(2), m.group(3))
            else:
                res = self.fs.resolve_path(self.root)
                got = (res.repo_type, res.repo_id, res.revision)
            self.__dict__["_hf"] = got
        return got

    # --- internals ----------------------------------------------------------------------------
    def _block(self, path: str, index: int) -> bytes:
        key = (path, index)
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
                self.stats.hits += 1
                return data
            self.stats.misses += 1
        start = index * self.block_size
        data = self._fetch(path, [(start, min(start + self.block_size, self.size(path)))])[0]
        with self._lock:
            if len(data) <= self.cache_bytes and key not in self._blocks:
                self._blocks[key] = data
                self._cached += len(data)
                while self._cached > self.cache_bytes:
                    _, dropped = self._blocks.popitem(last=False)
                    self._cached -= len(dropped)
        return data

    def _fetch(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """One request per range, sent concurrently; short only at the end of the file."""
        ranges = [(a, b) for a, b in ranges]
        todo = [i for i, (a, b) in enumerate(ranges) if b > a]
        out: list[bytes] = [b""] * len(ranges)
        if not todo:
            return out
        url = self.url(path)
        if len(todo) == 1:
            a, b = ranges[todo[0]]
            results = [self._call(lambda: self.cat(url, a, b))]
        else:
            results = self._call(lambda: self.cat_ranges([url] * len(todo), [ranges[i][0] for i in todo],
                                                         [ranges[i][1] for i in todo]))
        with self._lock:
            self.stats.requests += len(todo)
            self.stats.bytes += sum(len(r) for r in results)
        for i, r in zip(todo, results):
            if isinstance(r, BaseException):
                raise r
            a, b = ranges[i]
            if len(r) > b - a:  # a server that ignored Range sent the whole file
                r = r[a:b]
            out[i] = r
        return out

    def _call(self, fn: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except BaseException as exc:
                if attempt == self.retries or not _transient(exc):
                    raise
                self.stats.retries += 1
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")


#: which client reads ``s3://``: "obstore" (the default when it is installed; Rust, ~2x less client time
#: per request than s3fs here, and no ~1 s aiobotocore client creation) or "s3fs". Writes always use s3fs.
S3_CLIENT = os.environ.get("EEGBENCH_S3_CLIENT", "obstore")

#: the process that first read through obstore (its forks fall back to s3fs; see RemoteSource.obstore)
_OB_PID: int | None = None

#: s3fs storage options obstore has an equivalent for (any other option: the read goes through s3fs)
_OB_KEYS = {"key", "secret", "token", "endpoint_url", "anon", "region", "client_kwargs", "default_block_size"}


def obstore_store(root: str, storage_options: dict[str, Any] | None = None) -> Any:
    """An ``obstore.store.S3Store`` for the ``s3://bucket/prefix`` root with the s3fs-style
    ``storage_options`` translated (``key``/``secret``/``token``, ``endpoint_url`` -- plain
    ``http://`` allowed --, ``anon`` -> unsigned requests, ``region`` or
    ``client_kwargs.region_name``), or None when obstore is not installed, not wanted
    (``EEGBENCH_S3_CLIENT=s3fs``) or an option has no equivalent. Credentials not given come
    from the environment (``AWS_ACCESS_KEY_ID``...), as with s3fs."""
    if S3_CLIENT != "obstore":
        return None
    opts = dict(storage_options or {})
    client_kwargs = dict(opts.get("client_kwargs") or {})
    if set(opts) - _OB_KEYS or set(client_kwargs) - {"endpoint_url", "region_name"}:
        return None
    try:
        from obstore.store import S3Store
    except ImportError:
        return None
    bucket, _, prefix = root.split("://", 1)[1].partition("/")
    config: dict[str, Any] = {}
    for ours, theirs in (("key", "access_key_id"), ("secret", "secret_access_key"), ("token", "session_token")):
        if opts.get(ours):
            config[theirs] = opts[ours]
    endpoint = opts.get("endpoint_url") or client_kwargs.get("endpoint_url")
    client_options: dict[str, Any] = {}
    if endpoint:
        config["endpoint"] = endpoint
        client_options["allow_http"] = str(endpoint).startswith("http://")
    region = opts.get("region") or client_kwargs.get("region_name")
    if region:
        config["region"] = region
    elif endpoint and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        config["region"] = "us-east-1"  # an S3-compatible server: any region signs
    if opts.get("anon"):
        config["skip_signature"] = True
    return S3Store(bucket, prefix=prefix or None, client_options=client_options or None, **config)


#: which client reads ``http(s)://``: "stdlib" (the default: :class:`HTTPClient`, keep-alive
#: ``http.client`` connections) or "fsspec" (``HTTPFileSystem``, aiohttp on fsspec's event loop)
HTTP_CLIENT = os.environ.get("EEGBENCH_HTTP_CLIENT", "stdlib")

#: HTTP storage options :class:`HTTPClient` has an equivalent for (any other option: fsspec reads)
_HTTP_KEYS = {"headers", "block_size"}


class _Unusual(Exception):
    """A response the lean reader does not handle (no ``Content-Length``, a transfer coding, 1xx):
    the request is sent again through ``http.client``."""


class _Conn:
    """One keep-alive HTTP/1.1 connection: writes a request, reads status + headers and exactly
    ``Content-Length`` body bytes into one buffer."""

    def __init__(self, scheme: str, netloc: str, timeout: float, context: Any = None) -> None:
        import socket

        host, _, port = netloc.rpartition(":") if netloc.rpartition(":")[2].isdigit() else (netloc, "", "")
        host = host.strip("[]")
        sock = socket.create_connection((host, int(port) if port else (443 if scheme == "https" else 80)), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock: Any = sock
        self.buf = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, head: bytes) -> tuple[int, str, dict[str, str], bytearray]:
        """Send ``head`` (a whole GET request) and read its response (see :meth:`response`)."""
        self.sock.sendall(head)
        return self.response()

    def response(self) -> tuple[int, str, dict[str, str], bytearray]:
        """The next response: ``(status, reason, headers (lower-case names), body)`` (the body is
        the buffer it was received into: no copy)."""
        sock, buf = self.sock, self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            got = sock.recv(16384)  # the headers and a little body: the rest goes straight into its buffer
            if not got:
                raise ConnectionResetError("connection closed before the response" if not buf else
                                           "connection closed in the response headers")
            buf += got
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[:end + 4]
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ConnectionResetError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(code)
        length = headers.get("content-length", "")
        if status < 200 or "transfer-encoding" in headers or not length.isdigit():
            raise _Unusual(status)
        n = int(length)
        body = bytearray(n)
        have = min(len(buf), n)
        body[:have] = buf[:have]
        del buf[:have]
        view = memoryview(body)
        while have < n:
            got = sock.recv_into(view[have:])
            if not got:
                raise ConnectionResetError(f"connection closed after {have} of {n} body bytes")
            have += got
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.sock.close()
            self.sock = None
        return status, reason, headers, body


class HTTPClient:
    """Ranged ``GET`` requests to one scheme + host over keep-alive HTTP/1.1 connections, one
    connection per request in flight, kept for the next request (any thread).

    Why not fsspec's ``HTTPFileSystem`` (or ``http.client``) for these reads: a DataLoader worker
    sends hundreds of ranged GETs per second, and with 8 workers and the server on 2 cores the
    client's CPU per request is what limits the throughput (``benchmarks/remote_loader_cost.py``).
    Through fsspec a request hops to fsspec's event-loop thread and back and runs aiohttp's
    request machinery; ``http.client`` parses every response's headers with the ``email``
    package. Here a request is the calling thread's own: one ``sendall``, the status line and
    headers split by hand, exactly ``Content-Length`` body bytes received into one buffer. Anything
    else (no ``Content-Length``, a transfer coding, a 1xx answer) is sent again through
    ``http.client``, so an unusual server still works, only slower.

    A connection the server closed while idle (keep-alive timeout) fails on its next use: the
    request is sent once more on a fresh connection. Redirects (3xx with ``Location``) are
    followed up to 5 times; 404/410 raise ``FileNotFoundError``, 401/403 ``PermissionError``,
    other errors ``OSError`` naming the status (5xx are retried by :class:`RemoteSource`). A
    ``200`` answer (a server that ignored ``Range``) is cut to the range asked for."""

    #: idle connections kept per client
    MAX_IDLE = 32

    def __init__(self, scheme: str, netloc: str, headers: dict[str, str] | None = None,
                 timeout: float = 120.0) -> None:
        self.scheme, self.netloc = scheme, netloc
        self.headers = dict(headers or {})
        self.timeout = timeout
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()
                        if k.lower() not in ("host", "range", "connection"))
        self._head = f"Host: {netloc}\r\n{extra}"
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._ssl: Any = None

    def _request(self, url: str, start: int, end: int) -> tuple[str, bytes]:
        from urllib.parse import quote, urlsplit

        parts = urlsplit(url)
        target = quote(parts.path or "/", safe="/:@!$&'()*+,;=-._~%") + (f"?{parts.query}" if parts.query else "")
        head = f"GET {target} HTTP/1.1\r\n{self._head}Range: bytes={start}-{end - 1}\r\n\r\n".encode("latin-1")
        return target, head

    def _take(self) -> tuple[_Conn, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), False
        if self.scheme == "https" and self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()  # loads the CA certificates: once per client
        return _Conn(self.scheme, self.netloc, self.timeout, self._ssl), True

    def _give(self, conn: _Conn) -> None:
        if conn.sock is not None:
            with self._lock:
                if len(self._idle) < self.MAX_IDLE:
                    self._idle.append(conn)
                    return
        conn.close()

    def get(self, url: str, start: int, end: int, _redirects: int = 5) -> bytes | bytearray:
        """Bytes ``[start, end)`` of ``url`` (on this client's host) in one ranged GET (a
        ``bytearray``: the buffer received into)."""
        target, head = self._request(url, start, end)
        for attempt in range(2):
            conn = None
            try:
                conn, fresh = self._take()
                answer = conn.request(head)
            except _Unusual:
                conn.close()
                answer = self._stdlib(target, start, end)
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
                if conn is not None:
                    conn.close()
                if fresh or attempt:
                    raise ConnectionError(f"{url}: {type(exc).__name__}: {exc}") from exc
                continue  # a keep-alive connection the server had closed: once more on a new one
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            else:
                self._give(conn)
            return self._result(url, start, end, answer, _redirects)
        raise AssertionError("unreachable")

    def get_many(self, urls: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> list[bytes | bytearray]:
        """Several ranges, one request each, all in flight at once from the calling thread: every
        request is written on a connection of its own first, then the responses are read in turn
        (the server answers them concurrently; what arrives meanwhile waits in the sockets'
        buffers). A request that fails on a reused connection is sent again with :meth:`get`."""
        sent: list[tuple[_Conn | None, bool]] = []
        heads = [self._request(u, a, b) for u, a, b in zip(urls, starts, ends)]
        try:
            for _target, head in heads:
                conn, fresh = self._take()
                try:
                    conn.sock.sendall(head)
                except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                    conn.close()
                    if fresh:
                        raise
                    conn = None  # stale: this one is sent again below
                sent.append((conn, fresh))
            out: list[bytes | bytearray] = []
            for k, (conn, fresh) in enumerate(sent):
                url, a, b = urls[k], starts[k], ends[k]
                if conn is None:
                    out.append(self.get(url, a, b))
                    continue
                try:
                    answer = conn.response()
                except _Unusual:
                    conn.close()
                    sent[k] = (None, fresh)
                    answer = self._stdlib(heads[k][0], a, b)
                except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
                    conn.close()
                    sent[k] = (None, fresh)
                    if fresh:
                        raise ConnectionError(f"{url}: {type(exc).__name__}: {exc}") from exc
                    out.append(self.get(url, a, b))
                    continue
                sent[k] = (None, fresh)
                self._give(conn)
                out.append(self._result(url, a, b, answer, 5))
            return out
        finally:
            for conn, _ in sent:  # requests not read (an error above): their connections are unusable
                if conn is not None:
                    conn.close()

    def _result(self, url: str, start: int, end: int, answer: tuple[int, str, dict[str, str], Any],
                redirects: int) -> bytes | bytearray:
        from urllib.parse import urljoin, urlsplit

        status, reason, headers, body = answer
        if status == 206:
            return body
        if status == 200:  # the server ignored Range: the whole file came
            return body[start:end]
        location = headers.get("location")
        if status in (301, 302, 303, 307, 308) and location and redirects > 0:
            new = urljoin(url, location)
            loc = urlsplit(new)
            client = self if (loc.scheme, loc.netloc) == (self.scheme, self.netloc) else \
                HTTPClient(loc.scheme, loc.netloc, self.headers, self.timeout)
            return client.get(new, start, end, redirects - 1)
        if status == 416:
            return b""
        if status in (404, 410):
            raise FileNotFoundError(url)
        if status in (401, 403):
            raise PermissionError(f"{url}: HTTP {status}")
        raise OSError(f"{url}: HTTP {status} {reason}")

    def _stdlib(self, target: str, start: int, end: int) -> tuple[int, str, dict[str, str], bytes | bytearray]:
        """The same request through ``http.client`` on a connection of its own (closed after)."""
        import http.client

        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.netloc, timeout=self.timeout)
        try:
            conn.request("GET", target, headers={**self.headers, "Range": f"bytes={start}-{end - 1}",
                                                 "Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_http_clients: dict[tuple[Any, ...], HTTPClient] = {}
_http_pid = -1


def http_client(root: str, storage_options: dict[str, Any] | None = None) -> HTTPClient | None:
    """This process's :class:`HTTPClient` for the host of ``root`` (shared by every source on that
    host with the same headers), or None when fsspec should read (``EEGBENCH_HTTP_CLIENT=fsspec``,
    or a storage option other than ``headers``/``block_size``: aiohttp's ``client_kwargs``...).
    A forked process builds its own (connections are never shared across processes)."""
    global _http_clients, _http_pid
    opts = dict(storage_options or {})
    if HTTP_CLIENT != "stdlib" or set(opts) - _HTTP_KEYS:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(root)
    if "@" in parts.netloc:  # credentials in the URL: aiohttp's basic auth
        return None
    headers = {str(k): str(v) for k, v in (opts.get("headers") or {}).items()}
    key = (parts.scheme.lower(), parts.netloc, tuple(sorted(headers.items())))
    with _leaf_lock:
        if _http_pid != os.getpid():
            _http_clients, _http_pid = {}, os.getpid()
        client = _http_clients.get(key)
        if client is None:
            client = _http_clients[key] = HTTPClient(key[0], key[1], headers)
        return client


_leaf: ThreadPoolExecutor | None = None
_leaf_pid = -1
_leaf_lock = threading.Lock()


def _leaf_pool() -> ThreadPoolExecutor:
    """Threads for blocking single requests sent together (``hf://``, obstore): their tasks never
    wait on other tasks, so callers on any thread (a batch's) cannot deadlock the pool."""
    global _leaf, _leaf_pid
    with _leaf_lock:
        if _leaf is None or _leaf_pid != os.getpid():
            _leaf, _leaf_pid = ThreadPoolExecutor(max_workers=16, thread_name_prefix="eegbench-range"), os.getpid()
        return _leaf


def filesystem(protocol: str, storage_options: dict[str, Any] | None = None) -> Any:
    """An fsspec file system for ``protocol`` with eegbench's defaults (shared per process)."""
    import fsspec

    opts = dict(storage_options or {})
    if protocol == "s3":
        endpoint = opts.pop("endpoint_url", None)
        if endpoint is not None:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
        opts.setdefault("default_block_size", 64 << 10)
    elif protocol in ("http", "https"):
        opts.setdefault("block_size", 0)  # never read ahead: ranges are exactly what readers ask for
    elif protocol == "hf":
        opts.setdefault("block_size", 0)  # HfFileSystem reads 5 MiB ahead by default
    # fsspec's instance cache (per process: it is cleared after fork) reuses one client per
    # protocol + options: creating an s3fs/aiobotocore client costs ~1 s, more than a request
    return fsspec.filesystem(protocol, **opts)


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL this module serves (``http(s)://``, ``s3://``, ``hf://``)."""
    return isinstance(path, str) and "://" in path and path.split("://", 1)[0].lower() in SCHEMES


def _factory(root: str) -> RemoteSource:
    return RemoteSource(root)


def register() -> None:
    """Register :class:`RemoteSource` for every scheme in :data:`SCHEMES` (idempotent)."""
    from .bytes import register_scheme

    for scheme in SCHEMES:
        register_scheme(scheme, _factory)


# ---------------------------------------------------------------------------------------------
# fork safety of fsspec's event loop
# ---------------------------------------------------------------------------------------------
# A forked child (a DataLoader worker) inherits the parent's fsspec IO loop *object*, and with it
# the parent's epoll instance: the kernel object is shared, not copied. When the child drops the
# inherited aiohttp session (fsspec forgets its instances after a fork; garbage collection), each
# pooled connection's transport unregisters its socket -- from the *shared* epoll, so the parent's
# loop is never told again that a response arrived on it, and the parent's next request on that
# connection waits forever (seen: the remote DataLoader benchmark hanging in the parent's
# ``eegbench.open`` after a loader with workers; reproduced with one fork + ``gc.collect()``).
# The child therefore gives the inherited loop a private selector first: what it unregisters is
# its own. (fsspec itself starts a new loop in the child.)
_fork_loop: Any = None


def _before_fork() -> None:
    global _fork_loop
    import sys

    asyn = sys.modules.get("fsspec.asyn")
    _fork_loop = asyn.loop[0] if asyn is not None else None


def _after_fork_in_child() -> None:
    global _fork_loop
    loop, _fork_loop = _fork_loop, None
    if loop is not None and hasattr(loop, "_selector"):
        import selectors

        loop._selector = selectors.DefaultSelector()


def _after_fork_in_parent() -> None:
    global _fork_loop
    _fork_loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child,
                        after_in_parent=_after_fork_in_parent)
