"""Stores at a URL: ``open("s3://bucket/ds.zarr")``, ``open("https://host/ds.h5store")``, ``hf://``;
``save``/``convert`` to ``s3://``; ``verify`` of a remote store.

Opening costs: one ``GET`` of ``eegbench.json`` (the header: format, options and the manifest
with every file's size, so no ``HEAD`` per file), then the metadata tables, fetched
concurrently: HDF5 keeps them all in ``tables.h5`` (one request for the whole file), Zarr and
NumPy+Parquet one object per table (``tables/<name>/c/0``, ``tables/<name>.parquet``). Nothing
else: a recording's chunk index is fetched (once, then cached) by the first read that touches
it, and a window then costs only its chunks' byte ranges (see :mod:`eegbench.io.remote`).

Writing to object storage (``save(ds, "s3://bucket/ds.zarr")``): the store is written locally
first (in a temporary folder, with every guarantee of the local path -- ``jobs``/``client``
included), then uploaded object by object with the header **last**. A reader decides "is this a
store" by the header alone, so while uploading (or after an upload was killed) the prefix is
not a store (:class:`~eegbench.errors.NotAStoreError`); with ``overwrite=True`` the old header
is deleted first, then the new files are uploaded, the new header written, and objects the new
manifest does not list are removed. Object stores have no rename, so there is no temporary
prefix to move: the header is the commit point.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import CorruptStoreError, EegbenchError, NotAStoreError, SchemaVersionError, StoreExistsError
from .io.remote import RemoteSource, is_remote

HEADER = "eegbench.json"
_UPLOAD_BATCH = 16  # objects put concurrently while uploading a store
_HEADER_PROBE = 1 << 20  # bytes asked for the header in the first request
_TABLES = ("recordings", "channels", "annotations", "history", "description", "windows")


def _source(url: str, storage_options: dict[str, Any] | None) -> RemoteSource:
    from .io.remote import register

    register()
    return RemoteSource(url, storage_options)


def read_header(src: RemoteSource) -> dict[str, Any]:
    """The store header at ``src`` (one request); typed errors like the local reader's."""
    from . import manifest as _manifest

    url, probe = src.url(HEADER), _HEADER_PROBE
    try:  # a ranged GET (a plain one costs s3fs a HEAD first); the rest if the header is larger
        raw = src._call(lambda: src.fs.cat_file(url, start=0, end=probe))
        while len(raw) == probe:
            src.stats.requests += 1
            more = src._call(lambda p=probe: src.fs.cat_file(url, start=p, end=2 * p))
            raw, probe = raw + more, 2 * probe
            if not more:
                break
    except FileNotFoundError:
        raise NotAStoreError(f"{src.root} is not an eegbench store (no {HEADER}); it may be incomplete "
                             "(an upload still running or killed) or the URL may be wrong") from None
    src.stats.requests += 1
    src.stats.bytes += len(raw)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptStoreError(f"{src.url(HEADER)}: unreadable store header ({exc})") from exc
    if not isinstance(header, dict) or "schema_version" not in header or "format" not in header:
        raise CorruptStoreError(f"{src.url(HEADER)}: store header lacks schema_version/format")
    version = header["schema_version"]
    if not isinstance(version, int) or version > _manifest.SCHEMA_VERSION:
        raise SchemaVersionError(f"{src.root} uses store schema {version}, newer than this eegbench reads "
                                 f"({_manifest.SCHEMA_VERSION}); upgrade eegbench")
    files = header.get("files", {})
    if not isinstance(files, dict):
        raise CorruptStoreError(f"{src.url(HEADER)}: the manifest is not a mapping")
    src.set_sizes({rel: int(e["size"]) for rel, e in files.items()})
    return header


def _fetch_many(src: RemoteSource, paths: list[str]) -> dict[str, bytes]:
    """Whole files, fetched concurrently (one request each)."""
    if not paths:
        return {}
    urls = [src.url(p) for p in paths]
    ends = [src.sizes[p] if p in src.sizes else None for p in paths]  # ranged GETs: no HEAD first
    if len(urls) == 1:
        out = {paths[0]: src._call(lambda: src.fs.cat_file(urls[0], start=0, end=ends[0]))}
    else:
        got = src._call(lambda: src.fs.cat_ranges(urls, [0] * len(urls), ends, on_error="raise"))
        for g in got:
            if isinstance(g, BaseException):
                raise g
        out = dict(zip(paths, got))
    src.stats.requests += len(paths)
    src.stats.bytes += sum(len(v) for v in out.values())
    for p, data in out.items():
        if len(data) != src.sizes.get(p, len(data)):
            raise CorruptStoreError(f"{src.url(p)} has {len(data)} bytes, the manifest says {src.sizes[p]} "
                                    "(truncated or modified); re-upload or re-convert the store")
    return out


def _read_tables(src: RemoteSource, fmt: str, files: dict[str, Any]) -> dict[str, bytes | None]:
    """Parquet bytes of every metadata table (None when the store has none of that name)."""
    import google_crc32c

    if fmt == "hdf5":
        import h5py

        if "tables.h5" not in files:
            raise CorruptStoreError(f"{src.root}: tables.h5 is missing from the manifest")
        raw = _fetch_many(src, ["tables.h5"])["tables.h5"]
        out: dict[str, bytes | None] = {}
        with h5py.File(io.BytesIO(raw), "r") as f:
            group = f.get("tables")
            for name in _TABLES:
                out[name] = None if group is None or name not in group else group[name][()].tobytes()
        return out
    if fmt == "zarr":
        paths = {name: f"tables/{name}/c/0" for name in _TABLES}
    elif fmt == "parquet":
        paths = {name: f"tables/{name}.parquet" for name in _TABLES}
    else:
        raise CorruptStoreError(f"{src.root}: format {fmt!r} cannot be read remotely by this eegbench")
    present = {name: p for name, p in paths.items() if p in files}
    if fmt == "zarr":  # an empty table has metadata but no chunk object
        empty = {name for name in _TABLES if name not in present and f"tables/{name}/zarr.json" in files}
    else:
        empty = set()
    got = _fetch_many(src, list(present.values()))
    out = {}
    for name in _TABLES:
        if name in empty:
            out[name] = b""
        elif name not in present:
            out[name] = None
        elif fmt == "zarr":  # bytes + crc32c (what ZarrBackend.write_table writes)
            raw = got[present[name]]
            if len(raw) < 4 or google_crc32c.value(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
                raise CorruptStoreError(f"{src.root}: table {name} fails its crc32c checksum")
            out[name] = raw[:-4]
        else:
            out[name] = got[present[name]]
    return out


def open_store(url: str, *, storage_options: dict[str, Any] | None = None, lazy: bool = True,
               verify: bool = False) -> Any:
    """:func:`eegbench.open` of a store at a URL (see the module docstring)."""
    import pandas as pd

    from .formats import get_backend
    from .model import Dataset
    from .store import _build_recordings_lazy
    from .tables import frame_from_parquet, from_json

    src = _source(url, storage_options)
    header = read_header(src)
    backend = get_backend(header["format"])
    files = header.get("files", {})
    if verify:
        verify_store(url, storage_options=storage_options, _src=src, _header=header)
    raw = _read_tables(src, backend.name, files)
    try:
        tables = {name: None if data is None else frame_from_parquet(data) for name, data in raw.items()}
    except EegbenchError:
        raise
    except Exception as exc:
        raise CorruptStoreError(f"{url}: cannot read metadata table ({exc})") from exc
    recordings = _build_recordings_lazy(src.root, backend, tables)
    for rec in recordings:  # every recording reads through this one source (options, cache, counters)
        _attach(rec.source, src)
    description = tables["description"]
    if description is None:
        description = pd.DataFrame(index=pd.RangeIndex(len(recordings)))
    dataset = Dataset(recordings, description, from_json(header.get("attrs", "{}")), tables["windows"])
    dataset.byte_source = src  # type: ignore[attr-defined]  # counters for benchmarks and tests
    if not lazy:
        dataset = Dataset([r.load() for r in dataset], dataset.description, dataset.attrs, dataset.windows)
    return dataset


def _attach(source: Any, src: RemoteSource) -> None:
    """Make a format's lazy source read through ``src`` (kept when pickled)."""
    if hasattr(source, "__dict__"):
        source.__dict__["_bytes"] = src


def byte_source(dataset: Any) -> RemoteSource | None:
    """The :class:`RemoteSource` a dataset opened from a URL reads through (None for local stores)."""
    return getattr(dataset, "byte_source", None)


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------
def verify_store(url: str, *, storage_options: dict[str, Any] | None = None, _src: RemoteSource | None = None,
                 _header: dict[str, Any] | None = None) -> None:
    """Fetch every file of the remote store and check its size and SHA-256 against the manifest."""
    src = _src or _source(url, storage_options)
    header = _header or read_header(src)
    for rel, entry in sorted(header.get("files", {}).items()):
        try:
            data = _fetch_many(src, [rel])[rel]
        except FileNotFoundError:
            raise CorruptStoreError(f"{src.root}: file {rel} is missing; the store is incomplete — "
                                    "re-upload or re-convert it") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CorruptStoreError(f"{src.root}: file {rel} does not match its SHA-256 in the manifest "
                                    "(modified or corrupted); re-upload or re-convert it")


# ---------------------------------------------------------------------------------------------
# save to object storage
# ---------------------------------------------------------------------------------------------
def save_store(dataset: Any, url: str, *, storage_options: dict[str, Any] | None = None, overwrite: bool = False,
               **kwargs: Any) -> str:
    """:func:`eegbench.save` to a URL: written locally, uploaded, header last (see the module docstring)."""
    from .store import save

    src = _source(url, storage_options)
    fs, header_url = src.fs, src.url(HEADER)
    fs.invalidate_cache()  # the file system is shared per process: never trust an old listing
    if fs.exists(header_url) and not overwrite:
        raise StoreExistsError(f"{url} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    work = Path(tempfile.mkdtemp(prefix="eegbench-upload-"))
    try:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        local = save(dataset, work / name, overwrite=False, **kwargs)
        publish(local, url, storage_options=storage_options, overwrite=overwrite, _src=src)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return url


def publish(local: str | os.PathLike, url: str, *, storage_options: dict[str, Any] | None = None,
            overwrite: bool = False, _src: RemoteSource | None = None, _after_file: Any = None) -> None:
    """Upload the finished local store ``local`` to ``url``, the header last.

    ``_after_file(rel)`` is called after each data file (tests use it to kill an upload)."""
    from . import manifest as _manifest

    local = Path(local)
    src = _src or _source(url, storage_options)
    fs = src.fs
    fs.invalidate_cache()
    header = _manifest.read_header(local)
    files = sorted(header.get("files", {}))
    old: list[str] = []
    if fs.exists(src.url(HEADER)):
        if not overwrite:
            raise StoreExistsError(f"{url} already exists; pass overwrite=True to replace it")
        old = [p for p in _list(fs, src.root) if p != HEADER]
        fs.rm_file(src.url(HEADER))  # from here on, readers see no store (never a mixed one)
    for i in range(0, len(files), _UPLOAD_BATCH):  # a batch of objects uploaded concurrently
        batch = files[i:i + _UPLOAD_BATCH]
        fs.put([str(local / rel) for rel in batch], [src.url(rel) for rel in batch])
        for rel in batch:
            if _after_file is not None:
                _after_file(rel)
    fs.put_file(str(local / HEADER), src.url(HEADER))  # the commit point
    stale = sorted(set(old) - set(files))
    if stale:
        fs.rm([src.url(p) for p in stale])


def _list(fs: Any, root: str) -> list[str]:
    """Relative paths of every object under ``root``."""
    prefix = fs._strip_protocol(root).rstrip("/") + "/"
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    return [p[len(prefix):] for p in found if p.startswith(prefix)]


__all__ = ["byte_source", "is_remote", "open_store", "publish", "save_store", "verify_store"]
