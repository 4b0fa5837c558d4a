"""Every metadata table in one object: ``tables.pack``, so opening a store costs one read of it,
and parsing it needs NumPy and ``json`` only (no pyarrow, no pandas).

Each format keeps its tables where its own ecosystem looks for them (NumPy+Parquet:
``tables/<name>.parquet``, read by pyarrow alone; Zarr: ``tables/<name>`` uint8 arrays; HDF5:
``tables.h5``), as the Parquet bytes :func:`eegbench.tables.frame_to_parquet` writes, each sealed
by its SHA-256 in the store header (``tables_sha256``). Reading them one by one costs a request per
table on object storage or HTTP, and parsing Parquet costs ``import pyarrow`` (~30 ms and ~35 MB
RSS per fresh process here), so :func:`eegbench.save` also writes ``tables.pack``: the same tables
in a compact column encoding (``"encoding": "columns-1"``), recorded in the store header
(``tables_pack``: ``{"path", "encoding", "sha256", "tables": {name: [offset, size]}}``, covered by
``header_sha256``). :func:`eegbench.open` reads the pack -- one local read, one range request
remotely -- checks its SHA-256 against the header and parses it with NumPy.

One table's bytes in the pack: a 4-byte little-endian length ``L``, ``L`` bytes of JSON
``{"kind", "n_rows", ...}``, then the body:

* ``"kind": "columns"`` (the tables eegbench itself defines: recordings, channels, annotations,
  history): ``"columns": [[name, type, offset, size, decoded size], ...]`` and ``"json_columns"``
  (as the Parquet table's ``eegbench.json_columns``); each column's bytes are zlib-compressed
  (Python's own ``zlib``: nothing to import) and, decoded, either the raw values of a little-endian
  NumPy integer or float ``type``, or for ``"str"`` ``n + 1`` int64 offsets, ``n`` validity bytes
  (0: null) and the UTF-8 text. A column is decoded when first used. The columns hold the values
  :class:`eegbench._frame.Table` gives for the Parquet table (integers with nulls as float64 NaN),
  so validation sees the same values either way.
* ``"kind": "parquet"`` (the user's description and window tables, and any table whose columns
  the encoding cannot carry, e.g. booleans or bytes): the Parquet bytes themselves, parsed (with
  pyarrow) only when a DataFrame is asked for; ``n_rows`` is known without parsing (null only for
  bytes Parquet could not read when they were packed: open then parses them and says so).

A pack written before this encoding (the Parquet bytes concatenated, no ``encoding`` in the
header) still opens: each slice is checked against ``tables_sha256`` and parsed with pyarrow.

The cost is the tables' bytes twice (kilobytes to a few MB against the signals' gigabytes); the
gain is a remote open of 2 requests (header + pack) in every format instead of 1 + 6, and a local
open that reads one file instead of six and imports neither pyarrow nor pandas.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np

from .errors import CorruptStoreError

PACK = "tables.pack"
#: header field describing the pack
FIELD = "tables_pack"
TABLE_NAMES = ("recordings", "channels", "annotations", "history", "description", "windows")
#: the pack's encoding (header ``tables_pack.encoding``); absent: the Parquet bytes concatenated
ENCODING = "columns-1"
#: tables kept as Parquet in the pack: the user's own DataFrames, parsed only when asked for
PARQUET_TABLES = ("description", "windows")
_NUMERIC = "iuf"


def _blob(meta: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(meta, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "little") + head + body


def encode(name: str, data: bytes) -> bytes:
    """Table ``name``'s bytes in the pack, from its Parquet bytes (parsed with pyarrow: saving
    imports it anyway)."""
    from ._frame import Table

    table = Table(data, where=f"metadata table {name}")
    try:
        n = len(table)
        if name not in PARQUET_TABLES:
            table._all()
    except Exception:  # noqa: BLE001 -- bytes Parquet cannot read (a crafted store): open says so
        return _blob({"kind": "parquet", "n_rows": None}, data)
    if name in PARQUET_TABLES:
        return _blob({"kind": "parquet", "n_rows": n}, data)
    columns, parts, offset = [], [], 0
    for col in table.columns:
        values = table[col].to_numpy()
        if values.dtype.kind in _NUMERIC:
            kind = values.dtype.newbyteorder("<").str
            raw = np.ascontiguousarray(values, dtype=kind).tobytes()
        elif values.dtype == object and all(v is None or type(v) is str for v in values.tolist()):
            try:
                kind, raw = "str", _strings(values.tolist())
            except UnicodeEncodeError:  # text with no UTF-8 encoding: Parquet refuses it as well
                return _blob({"kind": "parquet", "n_rows": n}, data)
        else:  # booleans, bytes, nested values: kept as Parquet
            return _blob({"kind": "parquet", "n_rows": n}, data)
        packed = zlib.compress(raw, 1)
        columns.append([col, kind, offset, len(packed), len(raw)])
        parts.append(packed)
        offset += len(packed)
    return _blob({"kind": "columns", "n_rows": n, "json_columns": list(table._json), "columns": columns},
                 b"".join(parts))


def _strings(values: list[str | None]) -> bytes:
    """A string column's bytes: ``n + 1`` int64 offsets into the UTF-8 text, ``n`` validity bytes
    (0: null), then the text."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(len(values) + 1, dtype="<i8")
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    valid = np.array([v is not None for v in values], dtype=np.uint8)
    return offsets.tobytes() + valid.tobytes() + b"".join(encoded)


def build(tables: dict[str, bytes]) -> tuple[bytes, dict[str, Any]]:
    """The pack's bytes and its header entry ``{"path", "encoding", "sha256", "tables": {name:
    [offset, size]}}`` from each table's Parquet bytes."""
    import hashlib

    parts, entries, offset = [], {}, 0
    for name, data in tables.items():
        if name not in TABLE_NAMES:
            raise ValueError(f"unknown metadata table {name!r}")
        blob = encode(name, data)
        entries[name] = [offset, len(blob)]
        parts.append(blob)
        offset += len(blob)
    pack = b"".join(parts)
    return pack, {"path": PACK, "encoding": ENCODING, "sha256": hashlib.sha256(pack).hexdigest(), "tables": entries}


def entries(header: dict[str, Any], sizes: dict[str, int], where: Any) -> dict[str, tuple[int, int]] | None:
    """Each packed table's ``(offset, size)`` from the header, bounded by the pack's manifest size;
    None when the header has no pack (a store that keeps its tables only in the format's files)."""
    from .validate import as_int, corrupt

    spec = header.get(FIELD)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("path") != PACK or not isinstance(spec.get("tables"), dict):
        raise corrupt(where, FIELD, f"expected {{'path': {PACK!r}, 'tables': {{name: [offset, size]}}}}")
    encoding = spec.get("encoding")
    if encoding is not None and (encoding != ENCODING or not isinstance(spec.get("sha256"), str)):
        raise corrupt(where, FIELD, f"pack encoding {str(encoding)[:40]!r} with its sha256: this eegbench reads "
                      f"{ENCODING!r}; upgrade eegbench or re-convert the store")
    if PACK not in sizes:
        raise corrupt(where, FIELD, f"{PACK} is not a file of the store's manifest")
    total = sizes[PACK]
    out = {}
    for name, pos in spec["tables"].items():
        if name not in TABLE_NAMES or not isinstance(pos, list) or len(pos) != 2:
            raise corrupt(where, f"{FIELD}.tables[{str(name)[:40]!r}]", "expected a known table name -> [offset, size]")
        off = as_int(pos[0], where, f"{FIELD}.tables.{name}[0]", 0, total)
        size = as_int(pos[1], where, f"{FIELD}.tables.{name}[1]", 0, total - off)
        out[name] = (off, size)
    return out


def _mismatch(where: Any, name: str) -> CorruptStoreError:
    return CorruptStoreError(f"{where}: metadata table {name} does not match the SHA-256 the store header "
                             "records for it (modified, corrupted or from another store); "
                             f"run `eegbench verify {where}`")


def split(data: bytes, spans: dict[str, tuple[int, int]], sealed: dict[str, Any], where: Any,
          header: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every table out of the pack (None for a table the store does not have).

    A pack in the column encoding (``header``'s ``tables_pack`` names it): checked against its
    SHA-256 there, each table parsed into an :class:`eegbench._frame.Table` with NumPy. A pack of
    concatenated Parquet bytes (an earlier eegbench): each table's bytes, checked against its
    SHA-256 in ``tables_sha256``."""
    import hashlib

    spec = (header or {}).get(FIELD) or {}
    if spec.get("encoding") is None:
        view = memoryview(data)
        out: dict[str, Any] = {}
        for name in TABLE_NAMES:
            out[name] = None if name not in spans else bytes(view[spans[name][0]:sum(spans[name])])
            got = None if out[name] is None else hashlib.sha256(out[name]).hexdigest()
            if got != sealed.get(name):
                raise _mismatch(where, name)
        return out
    if hashlib.sha256(data).hexdigest() != spec.get("sha256"):
        raise CorruptStoreError(f"{where}: {PACK} does not match the SHA-256 the store header records for it "
                                f"(modified, corrupted or from another store); run `eegbench verify {where}`")
    out = {}
    for name in TABLE_NAMES:
        if (name in spans) != (sealed.get(name) is not None):  # the pack and the sealed tables disagree
            raise _mismatch(where, name)
        out[name] = None if name not in spans else decode(data, *spans[name], where=f"{where}: metadata table {name}")
    return out


def decode(data: bytes, offset: int, size: int, where: str) -> Any:
    """One table of the pack (see the module docstring) as an :class:`eegbench._frame.Table`."""
    from ._frame import Table

    def bad(why: str) -> CorruptStoreError:
        return CorruptStoreError(f"{where}: cannot read it from {PACK} ({why}); run `eegbench verify` on the store")

    end = offset + size
    if size < 4:
        raise bad("truncated")
    n_head = int.from_bytes(data[offset:offset + 4], "little")
    start = offset + 4 + n_head
    if start > end:
        raise bad("truncated header")
    try:
        meta = json.loads(bytes(data[offset + 4:start]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"header: {exc}") from None
    if not isinstance(meta, dict):
        raise bad("header is not an object")
    n = meta.get("n_rows")
    if meta.get("kind") == "parquet" and n is None:  # bytes that were unreadable when packed
        return Table(bytes(data[start:end]), where=where)
    if type(n) is not int or n < 0:
        raise bad("n_rows")
    if meta.get("kind") == "parquet":
        return Table(bytes(data[start:end]), n_rows=n, where=where)
    cols, json_cols = meta.get("columns"), meta.get("json_columns")
    if meta.get("kind") != "columns" or not isinstance(cols, list) or not isinstance(json_cols, list):
        raise bad("expected kind 'columns' with columns and json_columns")
    if not all(isinstance(c, str) for c in json_cols):
        raise bad("json_columns")
    loaders: dict[str, Any] = {}
    for spec in cols:
        if not (isinstance(spec, list) and len(spec) == 5 and isinstance(spec[0], str) and isinstance(spec[1], str)
                and all(type(x) is int and x >= 0 for x in spec[2:]) and spec[2] + spec[3] <= end - start
                and spec[4] <= _MAX_COLUMN_BYTES and spec[0] not in loaders):
            raise bad("column entry")
        name, kind, off, nbytes, raw_size = spec
        if kind != "str":
            try:
                dtype = np.dtype(kind)
            except TypeError:
                raise bad(f"column {name[:40]!r}: type {kind[:20]!r}") from None
            if dtype.kind not in _NUMERIC or dtype.byteorder == ">" or raw_size != n * dtype.itemsize:
                raise bad(f"column {name[:40]!r}: {raw_size} bytes of {kind[:20]!r} for {n} rows")
        elif raw_size < 9 * n + 8:
            raise bad(f"column {name[:40]!r}: {raw_size} bytes for {n} strings")
        loaders[name] = _Loader(data, start + off, nbytes, raw_size, kind, n, bad)
    return Table._from_columns({}, n, json_cols, loaders)


#: a column's decoded size at most (a crafted pack cannot make open allocate more)
_MAX_COLUMN_BYTES = 1 << 34


class _Loader:
    """Decodes one column of the pack on first use (open touches a few columns; a recording's
    rows are checked when it is first built)."""

    __slots__ = ("data", "offset", "size", "raw_size", "kind", "n", "bad")

    def __init__(self, data: bytes, offset: int, size: int, raw_size: int, kind: str, n: int, bad: Any) -> None:
        self.data, self.offset, self.size, self.raw_size = data, offset, size, raw_size
        self.kind, self.n, self.bad = kind, n, bad

    def __call__(self, name: str) -> np.ndarray:
        z = zlib.decompressobj()
        try:
            raw = z.decompress(self.data[self.offset:self.offset + self.size], self.raw_size + 1)
        except zlib.error as exc:
            raise self.bad(f"column {name[:40]!r}: {exc}") from None
        if len(raw) != self.raw_size or not z.eof or z.unused_data:
            raise self.bad(f"column {name[:40]!r}: {len(raw)} bytes where {self.raw_size} were recorded")
        n = self.n
        if self.kind != "str":
            return np.frombuffer(raw, dtype=self.kind, count=n).astype(np.dtype(self.kind).newbyteorder("="))
        offsets = np.frombuffer(raw, dtype="<i8", count=n + 1)
        valid = np.frombuffer(raw, dtype=np.uint8, count=n, offset=8 * (n + 1))
        text_at = 9 * n + 8
        if n and (offsets[0] != 0 or offsets[-1] != len(raw) - text_at or (np.diff(offsets) < 0).any()):
            raise self.bad(f"column {name[:40]!r}: string offsets")
        out = np.empty(n, dtype=object)
        bounds = (offsets + text_at).tolist()
        try:
            out[:] = [raw[a:b].decode("utf-8") if ok else None for a, b, ok in zip(bounds, bounds[1:], valid.tolist())]
        except UnicodeDecodeError as exc:
            raise self.bad(f"column {name[:40]!r}: {exc}") from None
        return out
