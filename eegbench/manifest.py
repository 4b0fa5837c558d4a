"""Store header (``eegbench.json``): schema version, format, options, and a SHA-256 manifest.

The manifest lists every file of the store with its size and SHA-256, written at save time.
:func:`check_sizes` (a ``stat`` per file, done by every ``open``) catches truncated or missing
files; :func:`verify` re-hashes everything and catches any modified byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import CorruptStoreError, NotAStoreError, SchemaVersionError, StoreNotFoundError

HEADER = "eegbench.json"
SCHEMA_VERSION = 2
#: oldest schema this version reads; older stores must be converted again (nothing was published)
MIN_SCHEMA_VERSION = 2
_CHUNK = 1 << 20


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
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel != HEADER:
                out.append(rel)
    return sorted(out)


def build(root: Path, fsync: bool = True) -> dict[str, dict[str, Any]]:
    """Hash every file under ``root`` and make it durable, so a later rename publishes durable data.

    Durability: one ``syncfs`` of the file system holding ``root`` (Linux) instead of an
    ``fsync`` per file -- a store of 10,000 recordings otherwise spends seconds in 20,000 fsyncs;
    elsewhere, or if ``syncfs`` fails, an ``fsync`` per file."""
    manifest = {}
    rels = list_files(root)
    for rel in rels:
        path = root / rel
        manifest[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
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
    """Write ``eegbench.json`` (fsynced)."""
    path = root / HEADER
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(header, fh, indent=1, ensure_ascii=False, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def read_header(root: Path) -> dict[str, Any]:
    """Read and validate ``eegbench.json``; raises a typed error saying what to do."""
    root = Path(root)
    if not root.exists():
        raise StoreNotFoundError(f"{root}: no such file or directory")
    path = root / HEADER
    if not root.is_dir() or not path.is_file():
        raise NotAStoreError(f"{root} is not an eegbench store (no {HEADER}); convert recordings "
                             "with `eegbench convert SRC... DEST.zarr` (or DEST.h5, DEST.parquet) first")
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptStoreError(f"{path}: unreadable store header ({exc})") from exc
    if not isinstance(header, dict) or "schema_version" not in header or "format" not in header:
        raise CorruptStoreError(f"{path}: store header lacks schema_version/format")
    version = header["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SchemaVersionError(f"{root} uses store schema {version}, newer than this eegbench reads "
                                 f"({SCHEMA_VERSION}); upgrade eegbench (pip install -U eegbench)")
    if version < MIN_SCHEMA_VERSION:
        raise SchemaVersionError(f"{root} uses store schema {version}, older than this eegbench reads "
                                 f"({MIN_SCHEMA_VERSION}..{SCHEMA_VERSION}); convert the original recordings "
                                 "again (eegbench convert SRC... DEST)")
    return header


def check_sizes(root: Path, manifest: dict[str, dict[str, Any]]) -> None:
    """Cheap integrity check: every manifest file exists with its recorded size."""
    for rel, entry in manifest.items():
        path = root / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CorruptStoreError(f"{root}: file {rel} is missing; the store is incomplete — "
                                    "re-download or re-convert it") from None
        if size != entry["size"]:
            raise CorruptStoreError(f"{root}: file {rel} has {size} bytes, the manifest says "
                                    f"{entry['size']} (truncated or modified); re-download or re-convert it")


def verify(root: Path, manifest: dict[str, dict[str, Any]], files: list[str] | None = None) -> None:
    """Full integrity check: sizes and SHA-256 of every (or the given) manifest file."""
    check_sizes(root, manifest)
    for rel in files if files is not None else manifest:
        if rel not in manifest:
            raise CorruptStoreError(f"{root}: {rel} is not in the manifest")
        if sha256_file(root / rel) != manifest[rel]["sha256"]:
            raise CorruptStoreError(f"{root}: file {rel} does not match its SHA-256 in the manifest "
                                    "(modified or corrupted); re-download or re-convert it")
