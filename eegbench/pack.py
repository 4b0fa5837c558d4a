"""Every metadata table in one object: ``tables.pack``, so opening a store costs one read of it.

Each format keeps its tables where its own ecosystem looks for them (NumPy+Parquet:
``tables/<name>.parquet``, read by pyarrow alone; Zarr: ``tables/<name>`` uint8 arrays; HDF5:
``tables.h5``). Reading them one by one costs a request per table on object storage or HTTP
(6 for a Zarr or Parquet store), so :func:`eegbench.save` also writes ``tables.pack``: the same
Parquet bytes of every table, concatenated, with each table's ``[offset, size]`` recorded in the
store header (``tables_pack``, covered by ``header_sha256``). :func:`eegbench.open` reads the pack
-- one local read, one range request remotely -- and checks each slice against the table's
SHA-256 in the header (``tables_sha256``) before parsing it; the pack itself is a manifest file
like any other (size checked at open, SHA-256 by ``verify``).

The cost is the tables' bytes twice (kilobytes to a few MB against the signals' gigabytes); the
gain is a remote open of 2 requests (header + pack) in every format instead of 1 + 6, and a local
open that reads one file instead of six.
"""

from __future__ import annotations

from typing import Any

from .errors import CorruptStoreError

PACK = "tables.pack"
#: header field describing the pack
FIELD = "tables_pack"
TABLE_NAMES = ("recordings", "channels", "annotations", "history", "description", "windows")


def build(tables: dict[str, bytes]) -> tuple[bytes, dict[str, Any]]:
    """The pack's bytes and its header entry ``{"path", "tables": {name: [offset, size]}}``."""
    parts, entries, offset = [], {}, 0
    for name, data in tables.items():
        if name not in TABLE_NAMES:
            raise ValueError(f"unknown metadata table {name!r}")
        entries[name] = [offset, len(data)]
        parts.append(data)
        offset += len(data)
    return b"".join(parts), {"path": PACK, "tables": entries}


def entries(header: dict[str, Any], sizes: dict[str, int], where: Any) -> dict[str, tuple[int, int]] | None:
    """Each packed table's ``(offset, size)`` from the header, bounded by the pack's manifest size;
    None when the header has no pack (a store that keeps its tables only in the format's files)."""
    from .validate import as_int, corrupt

    spec = header.get(FIELD)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("path") != PACK or not isinstance(spec.get("tables"), dict):
        raise corrupt(where, FIELD, f"expected {{'path': {PACK!r}, 'tables': {{name: [offset, size]}}}}")
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


def split(data: bytes, spans: dict[str, tuple[int, int]], sealed: dict[str, Any], where: Any) -> dict[str, bytes | None]:
    """Every table's bytes out of the pack (None for a table the store does not have), each checked
    against its SHA-256 in the header's ``tables_sha256``."""
    import hashlib

    view = memoryview(data)
    out: dict[str, bytes | None] = {}
    for name in TABLE_NAMES:
        if name not in spans:
            out[name] = None
        else:
            off, size = spans[name]
            out[name] = bytes(view[off:off + size])
        got = None if out[name] is None else hashlib.sha256(out[name]).hexdigest()
        if got != sealed.get(name):
            raise CorruptStoreError(f"{where}: metadata table {name} does not match the SHA-256 the store header "
                                    "records for it (modified, corrupted or from another store); "
                                    f"run `eegbench verify {where}`")
    return out
