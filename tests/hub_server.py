"""A local stand-in for the Hugging Face Hub's download endpoints (stdlib http.server, 127.0.0.1).

It answers the requests the real ``huggingface_hub`` client makes for dataset repositories, so its
download and cache code runs unchanged against it (``HF_ENDPOINT=http://127.0.0.1:PORT``):

* ``GET /api/datasets/{ns}/{name}[/revision/{rev}]``: ``id``, ``sha``, ``siblings``
* ``GET /api/datasets/{ns}/{name}/tree/{rev}[/{dir}]?recursive=...``: ``{type, oid, size, path}``
* ``HEAD``/``GET /datasets/{ns}/{name}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Accept-Ranges`` and real ``Range`` support (206)
* 404 with ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``

Every request is recorded in :attr:`HubServer.requests` (method, decoded path, status) so tests can
assert exactly which files were served.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


class HubServer:
    """Serve dataset repositories from memory. ``add_folder`` publishes a commit on a branch."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, dict[str, bytes]]] = {}   # repo -> sha -> {path: bytes}
        self.refs: dict[str, dict[str, str]] = {}                   # repo -> branch -> sha
        self.requests: list[tuple[str, str, int]] = []
        self.bytes_sent = 0  # body bytes of every response (range requests: the range only)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content ---------------------------------------------------------------------------
    def add_folder(self, repo_id: str, folder: Path, branch: str = "main") -> str:
        files = {}
        for dirpath, dirs, names in os.walk(folder):
            rel_dir = Path(dirpath).relative_to(folder).as_posix()
            if rel_dir.split("/")[0] == ".cache":
                dirs[:] = []
                continue
            for name in names:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                files[rel] = Path(dirpath, name).read_bytes()
        digest = hashlib.sha1()
        for rel in sorted(files):
            digest.update(rel.encode() + b"\0" + git_oid(files[rel]).encode())
        sha = digest.hexdigest()
        self.commits.setdefault(repo_id, {})[sha] = files
        self.refs.setdefault(repo_id, {})[branch] = sha
        return sha

    def served_files(self) -> list[str]:
        """Repository paths whose bytes were sent (GET on resolve with 200/206)."""
        out = []
        for method, path, status in self.requests:
            if method == "GET" and "/resolve/" in path and status in (200, 206):
                out.append(path.split("/resolve/", 1)[1].split("/", 1)[1])
        return out

    # -- server ----------------------------------------------------------------------------
    def start(self) -> str:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                hub._handle(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                hub._handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- handling --------------------------------------------------------------------------
    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None,
              head: bool = False, log: str = "") -> None:
        self._record(h.command, log, status)
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head and body:
            with self._lock:
                self.bytes_sent += len(body)
            h.wfile.write(body)

    def _error(self, h, code: str, message: str, head: bool, log: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(h, 404, body, {"X-Error-Code": code, "X-Error-Message": message,
                                  "Content-Type": "application/json"}, head, log)

    def _json(self, h, obj, head: bool, log: str) -> None:
        self._send(h, 200, json.dumps(obj).encode(), {"Content-Type": "application/json"}, head, log)

    def _resolve_rev(self, repo: str, rev: str) -> str | None:
        if rev in self.commits.get(repo, {}):
            return rev
        return self.refs.get(repo, {}).get(rev)

    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        raw, _, query = h.path.partition("?")
        parts = [unquote(p) for p in raw.strip("/").split("/")]
        log = "/".join(parts)
        params = parse_qs(query)
        if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
            repo = f"{parts[2]}/{parts[3]}"
            if repo not in self.commits:
                return self._error(h, "RepoNotFound", f"repository {repo} not found", head, log)
            rest = parts[4:]
            rev = rest[1] if len(rest) >= 2 and rest[0] in ("revision", "tree") else "main"
            sha = self._resolve_rev(repo, rev)
            if sha is None:
                return self._error(h, "RevisionNotFound", f"revision {rev} not found", head, log)
            files = self.commits[repo][sha]
            if not rest or rest[0] == "revision":
                return self._json(h, {"id": repo, "sha": sha, "private": False,
                                      "siblings": [{"rfilename": p} for p in sorted(files)]}, head, log)
            if rest[0] == "tree":
                prefix = "/".join(rest[2:])
                recursive = params.get("recursive", ["false"])[0].lower() in ("true", "1")
                entries, dirs = [], set()
                for p in sorted(files):
                    if prefix and not p.startswith(prefix + "/"):
                        continue
                    sub = p[len(prefix) + 1:] if prefix else p
                    if not recursive and "/" in sub:
                        dirs.add((prefix + "/" if prefix else "") + sub.split("/", 1)[0])
                        continue
                    if recursive:
                        segs = sub.split("/")[:-1]
                        for i in range(1, len(segs) + 1):
                            dirs.add((prefix + "/" if prefix else "") + "/".join(segs[:i]))
                    entries.append({"type": "file", "oid": git_oid(files[p]), "size": len(files[p]), "path": p})
                entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)]
                return self._json(h, entries, head, log)
            return self._error(h, "EntryNotFound", f"unknown API path {log}", head, log)
        if parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
            repo = f"{parts[1]}/{parts[2]}"
            if repo not in self.commits:
                return self._error(h, "RepoNotFound", f"repository {repo} not found", head, log)
            sha = self._resolve_rev(repo, parts[4])
            if sha is None:
                return self._error(h, "RevisionNotFound", f"revision {parts[4]} not found", head, log)
            path = "/".join(parts[5:])
            data = self.commits[repo][sha].get(path)
            if data is None:
                return self._error(h, "EntryNotFound", f"{path} not found", head, log)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{git_oid(data)}"', "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
            rng = h.headers.get("Range")
            if rng and rng.startswith("bytes=") and not head:
                start_s, _, stop_s = rng[6:].partition("-")
                start = int(start_s)
                stop = int(stop_s) + 1 if stop_s else len(data)
                body = data[start:stop]
                headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
                headers["Content-Length"] = str(len(body))
                return self._send(h, 206, body, headers, head, log)
            headers["Content-Length"] = str(len(data))
            return self._send(h, 200, data, headers, head, log)
        return self._error(h, "RepoNotFound", f"unknown path {log}", head, log)
