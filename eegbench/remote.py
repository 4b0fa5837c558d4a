"""Stores at a URL: ``open("s3://bucket/ds.zarr")``, ``open("https://host/ds.h5store")``, ``hf://``;
``save``/``convert`` to ``s3://``; ``verify`` of a remote store.

Opening costs 2 requests in every format: one ``GET`` of ``eegbench.json`` (the header: format,
options and the manifest with every file's size, so no ``HEAD`` per file), then one of
``tables.pack`` (every metadata table, see :mod:`eegbench.pack`). The header and the tables go
through :mod:`eegbench.validate` exactly as a local store's (digest, bounds, storage descriptions
against the manifest). Nothing else: a recording's chunk index is fetched (once, then cached) by
the first read that touches it, and a window then costs only its chunks' byte ranges (see
:mod:`eegbench.io.remote`).

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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import CorruptStoreError, NotAStoreError, StoreExistsError
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
    """The store header at ``src`` (one request), validated like a local one (typed, bounded,
    ``header_sha256`` checked) by :mod:`eegbench.validate`; returns the raw dict."""
    return _parse_header(src).raw


def _parse_header(src: RemoteSource) -> Any:
    from . import manifest as _manifest
    from . import validate as _validate

    url, probe = src.url(HEADER), _HEADER_PROBE
    try:  # a ranged GET (a plain one costs s3fs a HEAD first); the rest if the header is larger
        raw = src._call(lambda: src.cat(url, 0, probe))
        while len(raw) == probe and probe <= _validate.MAX_HEADER_BYTES:
            src.stats.requests += 1
            more = src._call(lambda p=probe: src.cat(url, p, 2 * p))
            raw, probe = raw + more, 2 * probe
            if not more:
                break
    except FileNotFoundError:
        raise NotAStoreError(f"{src.root} is not an eegbench store (no {HEADER}); it may be incomplete "
                             "(an upload still running or killed) or the URL may be wrong") from None
    src.stats.requests += 1
    src.stats.bytes += len(raw)
    header = _validate.parse_header(_Where(src.root), raw, _manifest.SCHEMA_VERSION)
    src.set_sizes({rel: e.size for rel, e in header.files.items()})
    return header


class _Where(str):
    """A URL that error messages join with a file name like a local path (``url / "eegbench.json"``)."""

    def __truediv__(self, other: str) -> _Where:
        return _Where(f"{self.rstrip('/')}/{other}")

    def __fspath__(self) -> str:
        return str(self)


def _fetch_many(src: RemoteSource, paths: list[str]) -> dict[str, bytes]:
    """Whole files, fetched concurrently (one request each)."""
    if not paths:
        return {}
    urls = [src.url(p) for p in paths]
    ends = [src.sizes[p] if p in src.sizes else None for p in paths]  # ranged GETs: no HEAD first
    if len(urls) == 1:
        out = {paths[0]: src._call(lambda: src.cat(urls[0], 0, ends[0]))}
    else:
        out = dict(zip(paths, src._call(lambda: src.cat_ranges(urls, [0] * len(urls), ends))))
    src.stats.requests += len(paths)
    src.stats.bytes += sum(len(v) for v in out.values())
    for p, data in out.items():
        if len(data) != src.sizes.get(p, len(data)):
            raise CorruptStoreError(f"{src.url(p)} has {len(data)} bytes, the manifest says {src.sizes[p]} "
                                    "(truncated or modified); re-upload or re-convert the store")
    return out


def _read_tables(src: RemoteSource, fmt: str, header: Any) -> dict[str, bytes | None]:
    """Parquet bytes of every metadata table (None when the store has none of that name), each
    checked against its SHA-256 in the sealed header. One request: ``tables.pack``; a store without
    a pack (written by a format that keeps tables only in its own files) costs one per table file."""
    from . import pack as _pack
    from . import validate as _validate

    where = _Where(src.root) / HEADER
    sealed = header.raw.get("tables_sha256")
    if not isinstance(sealed, dict):
        raise _validate.corrupt(where, "tables_sha256", "missing")
    spans = _pack.entries(header.raw, src.sizes, where)
    if spans is not None:
        try:
            data = _fetch_many(src, [_pack.PACK])[_pack.PACK]
        except FileNotFoundError:
            raise CorruptStoreError(f"{src.root}: {_pack.PACK} is missing; the store is incomplete — "
                                    "re-upload or re-convert it") from None
        return _pack.split(data, spans, sealed, src.root, header.raw)
    out = _read_table_files(src, fmt, header.files)
    import hashlib

    for name, data in out.items():
        if (None if data is None else hashlib.sha256(data).hexdigest()) != sealed.get(name):
            raise CorruptStoreError(f"{src.root}: metadata table {name} does not match the SHA-256 the store "
                                    "header records for it (modified, corrupted or from another store)")
    return out


def _read_table_files(src: RemoteSource, fmt: str, files: dict[str, Any]) -> dict[str, bytes | None]:
    """The tables from each format's own files (stores without ``tables.pack``)."""
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
    """:func:`eegbench.open` of a store at a URL (see the module docstring).

    The header and every table row go through :mod:`eegbench.validate` exactly as for a local
    store (the same builder: rows parsed and bounded at open, each recording's storage checked
    against the manifest when it is first built), so a crafted remote store gets the same typed
    errors as a crafted local one."""
    from .store import _open_tables, _typed

    src = _source(url, storage_options)
    header = _parse_header(src)
    if verify:
        verify_store(url, storage_options=storage_options, _src=src, _header=header.raw)
    from .formats import get_backend

    backend = get_backend(header.format)
    raw = _read_tables(src, backend.name, header)
    dataset, _keys = _typed(src.root, _open_tables, src.root, backend, header, raw, src)
    dataset.byte_source = src  # type: ignore[attr-defined]  # counters for benchmarks and tests
    if not lazy:
        dataset = type(dataset)([r.load() for r in dataset], dataset.description, dataset.attrs, dataset.windows)
    return dataset


def info_store(url: str, *, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`eegbench.info` of a store at a URL: the local summary's fields (sizes from the
    manifest) plus what reading it cost, counted by the client: ``requests`` (ranged GETs: the
    header and ``tables.pack``, so 2 for a store written by this version; an ``hf://`` root whose
    revision is not a commit also makes one Hub API call to resolve it, not counted here) and
    ``bytes_received``. No signal byte is read."""
    return _info(url, storage_options)[0]


def _info(url: str, storage_options: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """(:func:`info_store`'s summary, the lazily opened dataset)."""
    from .formats import get_backend
    from .store import _open_tables, _typed, recordings_table, summarize

    src = _source(url, storage_options)
    header = _parse_header(src)
    header_bytes = src.stats.bytes
    raw = _read_tables(src, get_backend(header.format).name, header)
    dataset, _keys = _typed(src.root, _open_tables, src.root, get_backend(header.format), header, raw, src)
    if raw.get("recordings") is None:
        raise CorruptStoreError(f"{src.root}: the store has no recordings table; run `eegbench verify {src.root}`")
    summary = summarize(src.root, dataset, header.raw, recordings_table(dataset), header_bytes)
    summary.update(requests=src.stats.requests, bytes_received=src.stats.bytes)
    return summary, dataset


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


__all__ = ["byte_source", "info_store", "is_remote", "open_store", "publish", "save_store", "verify_store"]
