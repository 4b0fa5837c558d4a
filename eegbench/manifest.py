"""Store header (``eegbench.json``): schema version, format, options, and a SHA-256 manifest.

The manifest lists every file of the store with its size and SHA-256, written at save time; the
header itself is covered by ``header_sha256`` (the digest of its canonical JSON without that
field, see :mod:`eegbench.validate`) and names the store by a random ``store_id``.
:func:`check_sizes` (an ``lstat`` per file; ``open`` makes it per recording on first use, see
:class:`eegbench.validate.LazyTree`) catches truncated, missing,
symlinked or special files; :func:`verify` re-hashes everything and also reports files that are
not in the manifest, never following a path out of the store and never blocking on a FIFO or
device.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from . import validate as _validate
from .errors import CorruptStoreError, EegbenchError

HEADER = "eegbench.json"
SCHEMA_VERSION = 2
#: oldest schema this version reads; older stores must be converted again (nothing was published)
MIN_SCHEMA_VERSION = 2
_CHUNK = 1 << 20
#: files a Hub repository holds beside the store; not part of it (verify ignores them)
HUB_FILES = ("README.md", ".gitattributes", "format_info.json", "croissant.json", "description.parquet")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` except the header, as sorted POSIX relative paths."""
    out = []
    base = os.fspath(root)
    for dirpath, _dirs, files in os.walk(base):  # strings, not pathlib: 70,000 files at 10,000 recordings
        rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        out.extend(prefix + name for name in files if prefix or name != HEADER)
    return sorted(out)


# SHA-256 of files this process wrote whole through :func:`write_file` / :class:`HashingWriter`
# (hashed while writing): (st_dev, st_ino) -> (path, size, mtime_ns, ctime_ns, sha256). :func:`build`
# takes a file's digest from here only for the same path whose lstat still shows that inode, size,
# mtime and ctime (a later write, truncation, rename or replacement changes one of them); otherwise
# it reads the file back. Every file eegbench writes in a store is written once per save.
_WRITTEN: dict[tuple[int, int], tuple[str, int, int, int, str]] = {}
_MAX_WRITTEN = 1 << 20


def _remember(path: str | os.PathLike, st: os.stat_result, sha256: str) -> None:
    if len(_WRITTEN) >= _MAX_WRITTEN:  # saves that failed before build() left theirs: forget all
        _WRITTEN.clear()
    _WRITTEN[st.st_dev, st.st_ino] = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, sha256)


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` as the new file ``path``; its SHA-256 is computed here, so the store's
    manifest (:func:`build`) need not read the file back."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        st = os.fstat(fh.fileno())
    _remember(path, st, hashlib.sha256(data).hexdigest())


class HashingWriter:
    """A new file written in pieces (``write``), hashed as it goes; ``close`` records its SHA-256
    for :func:`build`, ``abort`` closes it without (the caller discards the file)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.fh = open(path, "wb")
        self.path = path
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)

    def close(self) -> None:
        self.fh.flush()
        st = os.fstat(self.fh.fileno())
        self.fh.close()
        _remember(self.path, st, self.digest.hexdigest())

    def abort(self) -> None:
        self.fh.close()


def _known(base: str, rel: str) -> dict[str, Any] | None:
    """``{size, sha256}`` of a file hashed while it was written, if it is unchanged since."""
    path = os.path.join(base, rel)
    st = os.lstat(path)
    rec = _WRITTEN.pop((st.st_dev, st.st_ino), None)
    if rec is None or not stat.S_ISREG(st.st_mode) or rec[:4] != (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
        return None
    return {"size": st.st_size, "sha256": rec[4]}


def _entry(base: str, rel: str) -> dict[str, Any]:
    """``{size, sha256}`` of one file: one open, the size from ``fstat``."""
    digest = hashlib.sha256()
    with open(os.path.join(base, rel), "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        while block := fh.read(_CHUNK):
            digest.update(block)
    return {"size": size, "sha256": digest.hexdigest()}


def build(root: Path, fsync: bool = True) -> dict[str, dict[str, Any]]:
    """Hash every file under ``root`` and make it durable, so a later rename publishes durable data.

    Durability: one ``syncfs`` of the file system holding ``root`` (Linux) instead of an
    ``fsync`` per file -- a store of 10,000 recordings otherwise spends seconds in 20,000 fsyncs;
    elsewhere, or if ``syncfs`` fails, an ``fsync`` per file."""
    rels = list_files(root)
    base = os.fspath(root)
    known = {}
    if _WRITTEN:  # hashed while written (one lstat each instead of reading them back)
        for rel in rels:
            entry = _known(base, rel)
            if entry is not None:
                known[rel] = entry
    todo = [rel for rel in rels if rel not in known]
    # threads overlap the reads and the hashing (hashlib releases the GIL on large buffers)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        known.update(zip(todo, pool.map(lambda rel: _entry(base, rel), todo)))
    manifest = {rel: known[rel] for rel in rels}
    if fsync and not _syncfs(root):
        for rel in rels:
            fd = os.open(root / rel, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return manifest


def _syncfs(root: Path) -> bool:
    """``syncfs(2)`` on the file system of ``root``; False where unavailable or failing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(root, os.O_RDONLY)
        try:
            return libc.syncfs(fd) == 0
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        return False


def write_header(root: Path, header: dict[str, Any]) -> None:
    """Write ``eegbench.json`` (fsynced), sealed with ``header_sha256``."""
    header = dict(header)
    header["header_sha256"] = _validate.header_digest(header)
    path = root / HEADER
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(header, fh, indent=1, ensure_ascii=False, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def read_header(root: Path) -> dict[str, Any]:
    """Read and validate ``eegbench.json`` (typed, bounded, digest checked); raises a typed error
    saying what to do. Returns the header as a plain dict (``parse`` gives typed values)."""
    root = Path(root)
    try:
        data = _validate.read_header_bytes(root)
    except EegbenchError:
        raise
    except OSError as exc:
        raise CorruptStoreError(f"{root / HEADER}: unreadable store header ({exc})") from exc
    return _validate.parse_header(root, data, SCHEMA_VERSION, full=False).raw


def parse(root: Path) -> _validate.Header:
    """The typed header of the store at ``root`` (see :mod:`eegbench.validate`)."""
    root = Path(root)
    try:
        data = _validate.read_header_bytes(root)
    except EegbenchError:
        raise
    except OSError as exc:
        raise CorruptStoreError(f"{root / HEADER}: unreadable store header ({exc})") from exc
    return _validate.parse_header(root, data, SCHEMA_VERSION)


def check_sizes(root: Path, manifest: dict[str, Any]) -> None:
    """Cheap integrity check: every manifest file a regular file (no symlink) of its recorded size."""
    _validate.check_tree(Path(root), _entries(root, manifest))


def _entries(root: Path, manifest: dict[str, Any]) -> dict[str, _validate.FileEntry]:
    if isinstance(manifest, _validate.Files):  # a parsed header's manifest: checked already
        return manifest  # type: ignore[return-value]
    out = {}
    for rel, e in manifest.items():
        if isinstance(e, _validate.FileEntry):
            out[rel] = e
        else:
            rel = _validate.relpath(rel, root, "files")
            out[rel] = _validate.FileEntry(int(e["size"]), str(e["sha256"]))
    return out


def _sha256_regular(path: Path) -> str | None:
    """SHA-256 of a regular file opened without following symlinks or blocking; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        while block := os.read(fd, _CHUNK):
            digest.update(block)
        return digest.hexdigest()
    finally:
        os.close(fd)


def audit(root: Path, manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Compare the store's tree with its manifest: ``missing``, ``extra``, ``changed`` (size or
    SHA-256) and ``special`` (symlinks, FIFOs, devices, sockets) paths. Walks without following
    symlinks and opens only regular files, non-blocking."""
    root = Path(root)
    entries = _entries(root, manifest)
    found: dict[str, str] = {}  # rel -> "file" | "special"
    stack = [""]
    while stack:
        sub = stack.pop()
        try:
            with os.scandir(root / sub if sub else root) as it:
                items = list(it)
        except OSError:
            found[sub] = "special"
            continue
        for e in items:
            rel = f"{sub}/{e.name}" if sub else e.name
            if e.is_symlink():
                found[rel] = "link" if _validate.blob_link(root, root / rel) else "special"
            elif e.is_dir(follow_symlinks=False):
                stack.append(rel)
            elif e.is_file(follow_symlinks=False):
                found[rel] = "file"
            else:
                found[rel] = "special"
    found.pop(HEADER, None)
    for name in HUB_FILES:  # a Hugging Face repository's card and attributes beside the store
        found.pop(name, None)
    report: dict[str, list[str]] = {"missing": [], "extra": [], "changed": [], "special": []}
    for rel, kind in sorted(found.items()):
        if kind == "special":
            report["special"].append(rel)
        elif rel not in entries:
            report["extra"].append(rel)
    for rel, entry in sorted(entries.items()):
        kind = found.get(rel)
        if kind is None:
            report["missing"].append(rel)
        elif kind in ("file", "link"):
            real = Path(os.path.realpath(root / rel)) if kind == "link" else root / rel
            try:
                size = os.lstat(real).st_size
            except OSError:
                report["missing"].append(rel)
                continue
            if size != entry.size or _sha256_regular(real) != entry.sha256:
                report["changed"].append(rel)
    return report


def verify(root: Path, manifest: dict[str, Any], files: list[str] | None = None) -> None:
    """Full integrity check: every file present, regular and matching its SHA-256, and nothing
    else in the store; raises :class:`CorruptStoreError` listing what is wrong."""
    root = Path(root)
    if files is not None:
        entries = _entries(root, manifest)
        _validate.check_tree(root, {r: entries[r] for r in files if r in entries})
        for rel in files:
            if rel not in entries:
                raise CorruptStoreError(f"{root}: {rel} is not in the manifest")
            if _sha256_regular(root / rel) != entries[rel].sha256:
                raise CorruptStoreError(f"{root}: file {rel} does not match its SHA-256 in the manifest "
                                        "(modified or corrupted); re-download or re-convert it")
        return
    report = audit(root, manifest)
    problems = [f"{kind} {', '.join(paths[:5])}{' ...' if len(paths) > 5 else ''} ({len(paths)})"
                for kind, paths in report.items() if paths]
    if problems:
        raise CorruptStoreError(f"{root}: the store does not match its manifest: {'; '.join(problems)}; "
                                "re-download or re-convert it")
