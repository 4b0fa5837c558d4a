"""One validation layer between the bytes of a store and everything that trusts them.

The header (``eegbench.json``) and every metadata table are parsed here, once, into typed and
bounded values: types, ranges, sizes consistent with the manifest (so nothing is allocated from a
size the files cannot hold), channel indices a permutation, paths relative and inside the store,
no symlinks or special files. Any violation is a :class:`~eegbench.errors.CorruptStoreError`
naming the file and the field. :mod:`eegbench.store` builds recordings only from these values.

The header carries ``header_sha256``: the SHA-256 of its own canonical JSON without that field,
so an edit of ``format``, ``files``, ``options``... is detected at open and by ``verify``. (Someone
who edits the header *and* recomputes the digest makes a valid store with other contents: no
self-contained check can tell, see the README's Reliability section.)
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import itertools
import json
import math
import operator
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .errors import CorruptStoreError, EegbenchError, NotAStoreError, SchemaVersionError, StoreNotFoundError

HEADER = "eegbench.json"
MAX_HEADER_BYTES = 256 << 20
MAX_JSON_DEPTH = 100
MAX_N_TIMES = 1 << 40  # samples per recording (~70 years at 500 Hz)
MAX_N_CHANNELS = 1 << 16
MAX_RECORDINGS = 1 << 24
STORED_DTYPES = frozenset({"float32", "int16", "int32"})
KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def corrupt(where: str | os.PathLike, field: str, problem: str) -> CorruptStoreError:
    """The one error template: ``<file>: field <field>: <problem>; what to do``."""
    return CorruptStoreError(f"{where}: field {field}: {problem}; the store is damaged or was edited — "
                             f"run `eegbench verify` on it and re-convert or re-download it")


# ---------------------------------------------------------------------------------------------
# JSON and scalars
# ---------------------------------------------------------------------------------------------
def _depth(value: Any) -> int:
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            depth = max(depth, d)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return depth


def load_json(text: str | bytes, where: str | os.PathLike, field: str = "(document)", *,
              depth_skip: str | None = None) -> Any:
    """``json.loads`` with bounds: size, nesting depth, integer digits; errors are typed.
    ``depth_skip``: a top-level member whose depth the caller bounds itself (the header's manifest)."""
    if len(text) > MAX_HEADER_BYTES:
        raise corrupt(where, field, f"{len(text)} bytes of JSON exceed the {MAX_HEADER_BYTES}-byte bound")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError, TypeError, UnicodeDecodeError) as exc:
        raise corrupt(where, field, f"not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    shallow = value
    if depth_skip is not None and isinstance(value, dict) and depth_skip in value:
        shallow = {k: v for k, v in value.items() if k != depth_skip}
    if _depth(shallow) > MAX_JSON_DEPTH:
        raise corrupt(where, field, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def as_int(value: Any, where: Any, field: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise corrupt(where, field, f"expected an integer, got {type(value).__name__} {str(value)[:40]!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise corrupt(where, field, f"{value} is outside {lo}..{hi}")
    return value


def as_float(value: Any, where: Any, field: str, positive: bool = False, finite: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise corrupt(where, field, f"expected a number, got {type(value).__name__}")
    value = float(value)
    if (finite and not math.isfinite(value)) or (positive and not value > 0):
        raise corrupt(where, field, f"{value} is not a {'positive ' if positive else ''}finite number")
    return value


def as_str(value: Any, where: Any, field: str) -> str:
    if not isinstance(value, str):
        raise corrupt(where, field, f"expected text, got {type(value).__name__}")
    return value


def relpath(value: Any, where: Any, field: str) -> str:
    """A relative POSIX path that stays inside the store (no ``..``, no absolute, no NUL)."""
    text = as_str(value, where, field)
    p = PurePosixPath(text)
    if (not text or "\x00" in text or "\\" in text or p.is_absolute() or text.startswith("/")
            or any(part in ("..", ".", "") for part in text.split("/"))):
        raise corrupt(where, field, f"path {text[:200]!r} is not a relative path inside the store")
    return text


# ---------------------------------------------------------------------------------------------
# header
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


class _ManifestView:
    """Key protocol shared by the read-only views over the header's parsed ``files`` JSON."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, dict[str, Any]]) -> None:
        self._raw = raw  # {path: {"size": int, "sha256": hex}}, checked

    def __contains__(self, rel: object) -> bool:
        return rel in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class Files(_ManifestView, Mapping[str, FileEntry]):
    """The header's manifest ``{path: FileEntry}`` over its parsed JSON (validated as a whole by
    :func:`parse_header`): an entry object is made only when looked up, so a store of 70,000 files
    opens without 70,000 objects. Plain data (pickles as the JSON dict)."""

    __slots__ = ()

    def __getitem__(self, rel: str) -> FileEntry:
        e = self._raw[rel]
        return FileEntry(e["size"], e["sha256"])

    def size(self, rel: str) -> int:
        return self._raw[rel]["size"]

    def sizes(self) -> Mapping[str, int]:
        """``{path: size}`` as a read-only view (no copy)."""
        return _Sizes(self._raw)

    def __getstate__(self) -> dict[str, Any]:
        return {"raw": self._raw}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._raw = state["raw"]


class _Sizes(_ManifestView, Mapping[str, int]):
    __slots__ = ()

    def __getitem__(self, rel: str) -> int:
        return self._raw[rel]["size"]


@dataclass(frozen=True)
class Header:
    schema_version: int
    format: str
    files: Files
    n_recordings: int
    attrs: str
    options: dict[str, Any]
    store_id: str | None
    raw: dict[str, Any]


#: substrings that make a path of the manifest (joined by newlines, framed by newlines) absolute or
#: empty, or give it an empty part, a NUL or a backslash; a ``.``/``..`` part needs "/." or "\n."
_BAD_PATH_PARTS = ("\n/", "//", "/\n", "\n\n", "\x00", "\\")
_DOT_PARTS = ("/./", "/../", "\n./", "\n../", "/.\n", "/..\n", "\n.\n", "\n..\n")
_HEX_BYTES = b"0123456789abcdef\n"
#: bytes of paths whose JSON text is the path between quotes (printable ASCII but " and \)
_PLAIN_BYTES = bytes([10, 32, 33, *range(35, 92), *range(93, 127)])


@dataclass(frozen=True)
class _Manifest:
    """The manifest's columns, in the header's order (see :func:`_files_fast`)."""
    paths: list[str]
    sizes: list[int]
    shas: list[str]
    plain: bool  # every path printable ASCII without quote or backslash


def _files_fast(raw_files: dict[str, Any]) -> _Manifest | None:
    """The manifest checked with whole-column operations (one join and a few substring searches
    over all paths, one pass per field), or None when any entry needs the entry-by-entry check
    (which then names the first bad entry). Accepts exactly what the entry-by-entry check accepts
    among entries of the form ``{"size": int, "sha256": hex}``."""
    n = len(raw_files)
    if not n:
        return _Manifest([], [], [], True)
    paths = list(raw_files)
    framed = "\n" + "\n".join(paths) + "\n"
    if framed.count("\n") != n + 1 or HEADER in raw_files or any(bad in framed for bad in _BAD_PATH_PARTS):
        return None
    if ("/." in framed or "\n." in framed) and any(bad in framed for bad in _DOT_PARTS):
        return None
    entries = list(raw_files.values())  # type checks through map(type, ...): no Python loop per entry
    if set(map(type, entries)) != {dict} or set(map(len, entries)) != {2}:
        return None
    try:
        sizes = list(map(_SIZE, entries))
        shas = list(map(_SHA, entries))
    except KeyError:
        return None
    if set(map(type, sizes)) != {int} or min(sizes) < 0 or max(sizes) > 1 << 62 or set(map(type, shas)) != {str}:
        return None
    joined = "\n".join(shas)
    if len(joined) != 65 * n - 1 or joined[64::65] != "\n" * (n - 1) or not joined.isascii() \
            or joined.encode("ascii").translate(None, _HEX_BYTES):
        return None
    plain = framed.isascii() and not framed.encode("ascii").translate(None, _PLAIN_BYTES)
    return _Manifest(paths, sizes, shas, plain)


_SIZE = operator.itemgetter("size")
_SHA = operator.itemgetter("sha256")
_FILES_TOKEN = "\x00eegbench manifest\x00"


def _digest_fast(header: dict[str, Any], m: _Manifest) -> str | None:
    """:func:`header_digest` of a header whose manifest passed :func:`_files_fast`, without
    json's encoder walking 70,000 entries: the manifest's canonical text is formatted directly
    (exact when every path is plain and the paths are sorted, as written), the rest by ``json``.
    None when that does not apply (the caller then uses :func:`header_digest`)."""
    if not m.paths or not m.plain or m.paths != sorted(m.paths):
        return None
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    body["files"] = _FILES_TOKEN
    rest = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    token = json.dumps(_FILES_TOKEN, ensure_ascii=False)
    if rest.count(token) != 1:
        return None
    n = len(m.paths)
    text = "".join(itertools.chain.from_iterable(zip(
        itertools.repeat('"', n), m.paths, itertools.repeat('":{"sha256":"', n), m.shas,
        itertools.repeat('","size":', n), map(str, m.sizes), itertools.repeat("},", n))))
    head, _, tail = rest.partition(token)
    digest = hashlib.sha256(head.encode("utf-8"))
    digest.update(b"{" + text[:-1].encode("ascii") + b"}")
    digest.update(tail.encode("utf-8"))
    return digest.hexdigest()


def header_digest(header: dict[str, Any]) -> str:
    """SHA-256 of the header's canonical JSON without its ``header_sha256`` field."""
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_header_bytes(root: Path) -> bytes:
    """The header's bytes: a regular file (no symlink, FIFO, device), bounded in size, read without blocking."""
    root = Path(root)
    try:
        st_root = os.lstat(root)
    except FileNotFoundError:
        raise StoreNotFoundError(f"{root}: no such file or directory") from None
    path = root / HEADER
    hint = "convert recordings with `eegbench convert SRC... DEST --format F` first"
    if stat.S_ISLNK(st_root.st_mode) and root.is_dir():
        st_root = os.stat(root)  # a symlink to a store is fine; links inside a store are not
    if not stat.S_ISDIR(st_root.st_mode):
        raise NotAStoreError(f"{root} is not an eegbench store (not a folder); {hint}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotAStoreError(f"{root} is not an eegbench store (no {HEADER}); {hint}") from None
    if stat.S_ISLNK(st.st_mode) and blob_link(root, path):  # a Hugging Face cache snapshot
        path = Path(os.path.realpath(path))
        st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise CorruptStoreError(f"{path}: the store header is not a regular file (symlink or special file)")
    if st.st_size > MAX_HEADER_BYTES:
        raise CorruptStoreError(f"{path}: the store header has {st.st_size} bytes (bound {MAX_HEADER_BYTES})")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks, left = [], st.st_size + 1
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
    finally:
        os.close(fd)
    return b"".join(chunks)


def parse_header(root: Path, data: bytes, max_schema: int, full: bool = True) -> Header:
    """Typed, bounded header; checks the digest of schema >= 2 headers."""
    where = Path(root) / HEADER
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptStoreError(f"{where}: unreadable store header ({exc})") from None
    h = load_json(text, where, depth_skip="files")  # the manifest is bounded below
    if not isinstance(h, dict) or "schema_version" not in h or "format" not in h:
        raise CorruptStoreError(f"{where}: store header lacks schema_version/format")
    version = h["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise corrupt(where, "schema_version", f"{str(version)[:40]!r} is not a schema version")
    if version > max_schema:
        raise SchemaVersionError(f"{root} uses store schema {version}, newer than this eegbench reads "
                                 f"({max_schema}); upgrade eegbench (pip install -U eegbench)")
    if version < max_schema:
        raise SchemaVersionError(f"{root} uses store schema {version}, written by an older eegbench; "
                                 "this version reads schema {max_schema} only: re-convert the store "
                                 "with the current eegbench")
    fmt = as_str(h["format"], where, "format")
    if not full:  # schema and format only (callers that check paths and digests themselves)
        if _depth(h.get("files")) + 1 > MAX_JSON_DEPTH:
            raise corrupt(where, "files", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return Header(version, fmt, Files({}), 0, "{}", {}, None, h)
    raw_files = h.get("files")
    if not isinstance(raw_files, dict):
        raise corrupt(where, "files", "expected an object {path: {size, sha256}}")
    fast = _files_fast(raw_files)
    files = raw_files
    if fast is None:  # some entry is unusual: check entry by entry (names the first bad one)
        files = {}
        for rel, entry in raw_files.items():
            rel = relpath(rel, where, "files")
            if rel == HEADER or not isinstance(entry, dict):
                raise corrupt(where, f"files[{rel!r}]", "not a {size, sha256} entry")
            sha = entry.get("sha256")
            if not isinstance(sha, str) or not _HEX64.match(sha):
                raise corrupt(where, f"files[{rel!r}].sha256", "not a SHA-256 hex digest")
            files[rel] = {"size": as_int(entry.get("size"), where, f"files[{rel!r}].size"), "sha256": sha}
        if _depth(raw_files) + 1 > MAX_JSON_DEPTH:
            raise corrupt(where, "files", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    digest = h.get("header_sha256")  # after the paths: an escaping path is named as such
    quick = None if fast is None else _digest_fast(h, fast)
    if not isinstance(digest, str) or digest != (quick or header_digest(h)):
        raise corrupt(where, "header_sha256", "the header does not match its own SHA-256 (edited or damaged)")
    options = h.get("options", {})
    if not isinstance(options, dict):
        raise corrupt(where, "options", "expected an object")
    attrs = h.get("attrs", "{}")
    store_id = h.get("store_id")
    return Header(version, fmt, Files(files), as_int(h.get("n_recordings", 0), where, "n_recordings", 0, MAX_RECORDINGS),
                  as_str(attrs, where, "attrs"), options,
                  None if store_id is None else as_str(store_id, where, "store_id"), h)


def blob_link(root: Path, path: Path) -> bool:
    """Whether ``path`` is a Hugging Face cache symlink: a file of a ``snapshots/<rev>/`` folder
    pointing to a regular file in that repository's ``blobs/`` (the only links a store may hold)."""
    here = Path(os.path.abspath(root))
    for anc in (here, *here.parents):
        if anc.name == "snapshots":
            target = Path(os.path.realpath(path))
            return target.parent == anc.parent / "blobs" and target.is_file()
    return False


def check_tree(root: Path, files: Mapping[str, FileEntry], checked_dirs: set[str] | None = None) -> None:
    """Every manifest file a regular file of its recorded size, reached through no symlink.
    ``checked_dirs``: folders already found to be real folders (skipped; the ones checked here are added)."""
    root = Path(root)
    base = os.fspath(root)
    dirs: set[str] = set()
    for parent in {rel.rpartition("/")[0] for rel in files}:  # few distinct folders
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    if checked_dirs:
        dirs -= checked_dirs
    for sub in sorted(dirs):
        try:
            st = os.lstat(f"{base}/{sub}")
        except FileNotFoundError:
            raise CorruptStoreError(f"{root}: folder {sub} is missing; the store is incomplete — "
                                    "re-download or re-convert it") from None
        if not stat.S_ISDIR(st.st_mode):
            raise CorruptStoreError(f"{root}: {sub} is a symlink or not a folder; a store holds only "
                                    "regular files and folders — re-download or re-convert it")
    if checked_dirs is not None:
        checked_dirs.update(dirs)
    for rel in files:
        entry = files[rel]
        path = f"{base}/{rel}"
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) and blob_link(root, root / rel):
                st = os.stat(path)
        except FileNotFoundError:
            raise CorruptStoreError(f"{root}: file {rel} is missing; the store is incomplete — "
                                    "re-download or re-convert it") from None
        if not stat.S_ISREG(st.st_mode):
            raise CorruptStoreError(f"{root}: {rel} is a symlink or special file, not a regular file; "
                                    "re-download or re-convert the store")
        if st.st_size != entry.size:
            raise CorruptStoreError(f"{root}: file {rel} has {st.st_size} bytes, the manifest says "
                                    f"{entry.size} (truncated or modified); re-download or re-convert it")


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordingRow:
    key: str
    name: str
    sfreq: float
    n_times: int
    n_channels: int
    first_samp: int
    meas_date: _dt.datetime | None
    dtype: str
    chunk_samples: int
    codec: Any  # CodecSpec
    storage: dict[str, Any]
    description: Any
    provenance: Any


def cell_json(text: Any, where: Any, field: str) -> Any:
    """A JSON cell of a table decoded with :func:`eegbench.tables.from_json`, bounded and typed."""
    from .tables import _decode

    if not isinstance(text, str):
        raise corrupt(where, field, f"expected JSON text, got {type(text).__name__}")
    try:
        return _decode(load_json(text, where, field))
    except EegbenchError:
        raise
    except Exception as exc:
        raise corrupt(where, field, f"undecodable value ({type(exc).__name__}: {str(exc)[:200]})") from None


def _columns(frame: Any, where: str, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise corrupt(where, ",".join(missing), "missing column(s)")


RECORDING_COLUMNS = ("key", "name", "sfreq", "n_times", "n_channels", "first_samp", "meas_date", "dtype",
                     "chunk_samples", "codec", "storage", "description", "provenance")
_KEY_LINES = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_-]*\n)*")


def recording_keys(frame: Any, root: Path, n_recordings: int | None = None) -> list[str]:
    """The checks of the recordings table that open makes on whole columns: the columns are there,
    one row per recording the header counts, every key valid and unique. Returns the keys.
    Each row's other fields are checked by :func:`parse_recording` when that recording is built."""
    where = f"{root}: table recordings"
    if frame is None:
        raise CorruptStoreError(f"{root}: the recordings table is missing")
    _columns(frame, where, RECORDING_COLUMNS)
    if n_recordings is not None and len(frame) != n_recordings:
        raise corrupt(where, "rows", f"{len(frame)} recordings, the header says {n_recordings}")
    keys = list(frame["key"])
    if all(type(k) is str for k in keys) and _KEY_LINES.fullmatch("\n".join(keys) + "\n" if keys else "") \
            and len(set(keys)) == len(keys):
        return keys
    seen: set[str] = set()  # name the first bad key
    for i, key in enumerate(keys):
        key = as_str(key, where, f"[{i}].key")
        if not KEY.match(key) or key in seen:
            raise corrupt(where, f"[{i}].key", f"{key[:80]!r} is not a valid unique recording key")
        seen.add(key)
    return keys


def parse_recording(frame: Any, i: int, root: Path) -> RecordingRow:
    """Row ``i`` of the recordings table, typed and bounded (its key checked by :func:`recording_keys`)."""
    from .codecs import COMPRESSIONS, CodecSpec

    where = f"{root}: table recordings"
    if isinstance(frame, _RowSource):
        row = frame.row(i)
    else:
        one = frame.iloc[i:i + 1]
        row = {c: one[c].to_numpy().tolist()[0] for c in RECORDING_COLUMNS}
    f = f"[{i}]."
    key = as_str(row["key"], where, f + "key")
    n_times = as_int(row["n_times"], where, f + "n_times", 0, MAX_N_TIMES)
    n_channels = as_int(row["n_channels"], where, f + "n_channels", 0, MAX_N_CHANNELS)
    chunk = as_int(row["chunk_samples"], where, f + "chunk_samples", 1, max(n_times, 1))
    dtype = as_str(row["dtype"], where, f + "dtype")
    if dtype not in STORED_DTYPES:
        raise corrupt(where, f + "dtype", f"{dtype[:40]!r} is not one of {sorted(STORED_DTYPES)}")
    codec_obj = cell_json(row["codec"], where, f + "codec")
    try:
        codec = CodecSpec.from_json(codec_obj)
    except Exception:
        raise corrupt(where, f + "codec", f"{str(codec_obj)[:80]!r} is not a codec description") from None
    if codec.compression not in COMPRESSIONS:
        raise corrupt(where, f + "codec", f"unknown compression {str(codec.compression)[:40]!r}")
    storage = cell_json(row["storage"], where, f + "storage")
    if not isinstance(storage, dict):
        raise corrupt(where, f + "storage", "expected an object")
    meas = row["meas_date"]
    if isinstance(meas, str):
        try:
            meas = _dt.datetime.fromisoformat(meas)
        except ValueError:
            raise corrupt(where, f + "meas_date", f"{meas[:40]!r} is not an ISO date") from None
    elif meas is not None and not (isinstance(meas, float) and math.isnan(meas)):
        raise corrupt(where, f + "meas_date", "expected an ISO date or null")
    else:
        meas = None
    name = row["name"]
    return RecordingRow(key, as_str(name, where, f + "name"),
                        as_float(row["sfreq"], where, f + "sfreq", positive=True), n_times, n_channels,
                        as_int(row["first_samp"], where, f + "first_samp", -(1 << 62)), meas, dtype, chunk,
                        codec, storage, cell_json(row["description"], where, f + "description"),
                        cell_json(row["provenance"], where, f + "provenance"))


class _RowSource:
    """Rows of the recordings table for :func:`parse_recording`: the first few from one-row slices
    (a Parquet-backed table converts only those), then from whole columns converted once."""

    FEW = 32

    def __init__(self, frame: Any) -> None:
        self.frame, self.asked, self.lists = frame, 0, None

    def row(self, i: int) -> dict[str, Any]:
        self.asked += 1
        if self.lists is None and self.asked > self.FEW:
            self.lists = {c: self.frame[c].to_numpy().tolist() for c in RECORDING_COLUMNS}
        if self.lists is not None:
            return {c: v[i] for c, v in self.lists.items()}
        one = self.frame.iloc[i:i + 1]
        return {c: one[c].to_numpy().tolist()[0] for c in RECORDING_COLUMNS}

    def __getstate__(self) -> dict[str, Any]:
        return {"frame": self.frame}  # the converted lists stay in this process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["frame"])  # type: ignore[misc]


def row_source(frame: Any) -> _RowSource:
    """What :class:`eegbench.store._ValidatedBuilder` hands :func:`parse_recording` for ``frame``."""
    return _RowSource(frame)


def parse_recordings(frame: Any, root: Path, n_recordings: int | None = None) -> list[RecordingRow]:
    """Every row of the recordings table (:func:`recording_keys` + :func:`parse_recording` for each)."""
    keys = recording_keys(frame, root, n_recordings)
    return [parse_recording(frame, i, root) for i in range(len(keys))]


@dataclass(frozen=True)
class Channels:
    names: list[str]
    types: list[str]
    units: list[str]
    q: tuple[np.ndarray, np.ndarray, np.ndarray] | None


CHANNEL_COLUMNS = ("recording", "index", "name", "type", "unit", "q_scale", "q_offset", "q_gain")


def parse_channels_of(g: Any, row: RecordingRow, i: int, root: Path) -> Channels:
    """The channel rows ``g`` of recording ``i``: indices a permutation of 0..n_channels-1, names,
    types and units text, finite calibration for an integer recording."""
    where = f"{root}: table channels"
    if g is None:
        raise CorruptStoreError(f"{root}: the channels table is missing")
    _columns(g, where, CHANNEL_COLUMNS)
    idx = g["index"].to_numpy()
    if len(g) != row.n_channels or not np.issubdtype(idx.dtype, np.integer) \
            or not np.array_equal(np.sort(idx), np.arange(row.n_channels)):
        raise corrupt(where, f"recording {i} index",
                      f"channel indices are not a permutation of 0..{row.n_channels - 1}")
    g = g.iloc[np.argsort(idx, kind="stable")]
    names = [as_str(v, where, f"recording {i} name") for v in g["name"]]
    types = [as_str(v, where, f"recording {i} type") for v in g["type"]]
    units = [as_str(v, where, f"recording {i} unit") for v in g["unit"]]
    q = None
    if row.dtype != "float32":
        try:
            q = tuple(np.asarray(g[c].to_numpy(), dtype=np.float64) for c in ("q_scale", "q_offset", "q_gain"))
        except (TypeError, ValueError):
            raise corrupt(where, f"recording {i} q_*", "calibration is not numeric") from None
        if not all(np.isfinite(a).all() for a in q):
            raise corrupt(where, f"recording {i} q_*", "calibration is not finite for an integer recording")
    return Channels(names, types, units, q)


def parse_channels(groups: list[Any], rows: list[RecordingRow], root: Path) -> list[Channels]:
    return [parse_channels_of(g, row, i, root) for i, (g, row) in enumerate(zip(groups, rows))]


def parse_annotations(g: Any, i: int, root: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple]]:
    where = f"{root}: table annotations"
    _columns(g, where, ("onset", "duration", "description", "ch_names"))
    if not len(g):
        return np.zeros(0), np.zeros(0), [], []
    try:
        onset = np.asarray(g["onset"].to_numpy(), dtype=np.float64)
        duration = np.asarray(g["duration"].to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise corrupt(where, f"recording {i} onset/duration", "not numeric") from None
    desc = [as_str(v, where, f"recording {i} description") for v in g["description"]]
    chs = []
    for v in g["ch_names"]:
        names = cell_json(v, where, f"recording {i} ch_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise corrupt(where, f"recording {i} ch_names", "expected a list of channel names")
        chs.append(tuple(names))
    return onset, duration, desc, chs


def parse_history(g: Any, i: int, root: Path) -> list[Any]:
    where = f"{root}: table history"
    _columns(g, where, ("step", "entry"))
    if not len(g):
        return []
    return [cell_json(e, where, f"recording {i} entry") for e in g.sort_values("step")["entry"]]


class Groups:
    """Rows of a table per recording 0..n-1: the ``recording`` column is checked (integers in
    range) and sorted once, on whole columns; ``groups[i]`` slices recording ``i``'s rows."""

    def __init__(self, frame: Any, n: int, root: Path, table: str) -> None:
        self.frame, self.bounds = frame, None
        if frame is None or frame.empty:
            if frame is not None:  # one empty table shared by every recording
                self.frame = frame.iloc[0:0]
            return
        if "recording" not in frame.columns:
            raise corrupt(f"{root}: table {table}", "recording", "missing column")
        rec = frame["recording"].to_numpy()
        if not np.issubdtype(rec.dtype, np.integer) or rec.min() < 0 or rec.max() >= n:
            raise corrupt(f"{root}: table {table}", "recording", f"values outside 0..{n - 1}")
        if len(rec) > 1 and not (rec[1:] >= rec[:-1]).all():  # saved grouped: usually nothing to sort
            order = np.argsort(rec, kind="stable")
            self.frame = frame = frame.iloc[order]
            rec = rec[order]
        self.bounds = np.searchsorted(rec, np.arange(n + 1))

    def __getitem__(self, i: int) -> Any:
        if self.frame is None:
            return None
        if self.bounds is None:
            return self.frame
        return self.frame.iloc[int(self.bounds[i]):int(self.bounds[i + 1])]


def group_rows(frame: Any, n: int, root: Path, table: str) -> list[Any]:
    """Rows of ``frame`` per recording 0..n-1 (``recording`` column checked to be in range)."""
    groups = Groups(frame, n, root, table)
    return [groups[i] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# storage descriptions against the manifest (no I/O: sizes come from the hashed header)
# ---------------------------------------------------------------------------------------------
def check_storage(fmt: str, row: RecordingRow, files: Mapping[str, FileEntry], root: Path,
                  used: list[str] | None = None) -> dict[str, Any]:
    """Check a recording's storage description against the manifest; return it (paths checked).
    ``used``: the manifest paths the description names are appended to it (Zarr: also the array
    folder, as ``<array>/``: its shards are read through it)."""
    where = f"{root}: table recordings [{row.key}].storage"
    s = row.storage
    itemsize = np.dtype(row.dtype).itemsize
    raw_bytes = row.n_channels * row.n_times * itemsize
    n_chunks = -(-row.n_times // row.chunk_samples)

    def entry(rel: Any, field: str) -> FileEntry:
        rel = relpath(rel, where, field)
        if rel not in files:
            raise corrupt(where, field, f"{rel!r} is not a file of the store's manifest")
        if used is not None:
            used.append(rel)
        return files[rel]

    if fmt == "parquet":
        fl = s.get("files")
        if not isinstance(fl, dict) or not fl:
            raise corrupt(where, "files", "expected an object of file paths")
        for k, rel in fl.items():
            e = entry(rel, f"files.{k}")
            # the chunk-blocked .npy (formats/parquet.py): n_chunks x n_channels x chunk_samples, padded
            if k == "npy" and not 0 < e.size - n_chunks * row.n_channels * row.chunk_samples * itemsize <= 1 << 16:
                raise corrupt(where, "n_times/n_channels",
                              f"{rel} has {e.size} bytes, which is not a header + {n_chunks} blocks of "
                              f"{row.n_channels} x {row.chunk_samples} {row.dtype} samples")
            if k == "npy" and (not isinstance(s.get("chunk_crc32c"), list) or len(s["chunk_crc32c"]) != n_chunks):
                raise corrupt(where, "chunk_crc32c", f"expected the {n_chunks} chunk checksums")
        if "index_crc32c" in s:  # binds the chunk file + index to this recording (formats/parquet.py)
            as_int(s["index_crc32c"], where, "index_crc32c", 0, 2**32 - 1)
    elif fmt == "hdf5":
        e = entry(s.get("file"), "file")
        need = n_chunks * 32 + (raw_bytes if row.codec.compression == "none" else 0)
        if e.size < need:
            raise corrupt(where, "n_times/n_channels", f"{s.get('file')} ({e.size} bytes) cannot hold "
                          f"{row.n_channels} x {row.n_times} {row.dtype} samples in {n_chunks} chunks")
        at = s.get("index_at")
        if at is not None and not (isinstance(at, list) and len(at) == 4):
            raise corrupt(where, "index_at", "expected [offset, nbytes, filter_mask, crc32c]")
        for j, v in enumerate(at or ()):
            as_int(v, where, f"index_at[{j}]", 0, 2**64 - 1)
        ds = s.get("dataset", "signals")
        if not isinstance(ds, str) or not KEY.match(ds.lstrip("/")):
            raise corrupt(where, "dataset", f"{str(ds)[:80]!r} is not a dataset name")
    elif fmt == "zarr":
        array = relpath(s.get("array"), where, "array")
        entry(f"{array}/zarr.json", "array")
        if used is not None:
            used.append(array + "/")
        shard_path = relpath(s.get("shard_path"), where, "shard_path")
        if shard_path.count("{shard}") != 1 or not shard_path.startswith(array + "/"):
            raise corrupt(where, "shard_path", f"{shard_path[:80]!r} is not a shard path of array {array!r}")
        shard = as_int(s.get("shard_samples"), where, "shard_samples", 1, MAX_N_TIMES)
        if shard % row.chunk_samples:
            raise corrupt(where, "shard_samples", f"{shard} is not a multiple of chunk_samples {row.chunk_samples}")
        n_shards = -(-row.n_times // shard)
        if "n_shards" in s and as_int(s["n_shards"], where, "n_shards") != n_shards:
            raise corrupt(where, "n_shards", f"{s['n_shards']} shards cannot hold {row.n_times} samples")
        if s.get("index_location", "end") not in ("end", "start"):
            raise corrupt(where, "index_location", "expected 'end' or 'start'")
        tags = s.get("shard_tags")
        if tags is not None and not (isinstance(tags, list) and len(tags) == n_shards and all(
                isinstance(t, str) and len(t) == 32 and all(c in "0123456789abcdef" for c in t) for t in tags)):
            raise corrupt(where, "shard_tags", f"expected {n_shards} digests of 32 lowercase hex digits")
        if not isinstance(s.get("codecs"), list):
            raise corrupt(where, "codecs", "expected a list of codec descriptions")
        per_shard = shard // row.chunk_samples
        for j in {0, n_shards - 1} if n_shards else ():
            e = entry(shard_path.replace("{shard}", str(j)), "shard_path")
            if e.size < per_shard * 16 + 4:
                raise corrupt(where, "shard_samples", f"shard {j} is too small to index {per_shard} chunks")
        if shard_path.replace("{shard}", str(n_shards)) in files:
            raise corrupt(where, "n_times", f"the store holds more than the {n_shards} shards of {row.n_times} samples")
    return s


def check_packed(fmt: str, row: RecordingRow, packs: Mapping[str, Any], files: Mapping[str, FileEntry],
                 root: Path, used: list[str] | None = None) -> tuple[str, int, RecordingRow]:
    """A packed recording's storage ``{"pack": key, "offset": samples}`` (see :mod:`eegbench.packing`)
    against the header's pack entry ``packs[key]`` (``n_times``, ``storage``): the pack key valid
    and known, the offset an integer on a chunk boundary with the member inside the pack, and the
    pack's own storage checked as a recording of the pack's length (:func:`check_storage`, its files
    appended to ``used``). Returns ``(pack key, offset, the pack as a row)``."""
    from dataclasses import replace

    where = f"{root}: table recordings [{row.key}].storage"
    s = row.storage
    key = as_str(s.get("pack"), where, "pack")
    if not KEY.match(key) or key not in packs:
        raise corrupt(where, "pack", f"{key[:80]!r} is not a pack of this store")
    offset = as_int(s.get("offset"), where, "offset", 0, MAX_N_TIMES)
    entry = packs[key]
    hwhere = f"{Path(root) / HEADER}"
    if not isinstance(entry, dict) or not isinstance(entry.get("storage"), dict):
        raise corrupt(hwhere, f"packs.{key}", "expected an object {n_times, storage}")
    pack_n = as_int(entry.get("n_times"), hwhere, f"packs.{key}.n_times", 1, MAX_N_TIMES)
    if offset % row.chunk_samples:
        raise corrupt(where, "offset", f"{offset} is not a multiple of chunk_samples {row.chunk_samples}")
    if offset + row.n_times > pack_n:
        raise corrupt(where, "offset", f"samples {offset}..{offset + row.n_times} lie outside {key}, which holds "
                      f"{pack_n} samples")
    pack_row = replace(row, key=key, n_times=pack_n, storage=entry["storage"])
    check_storage(fmt, pack_row, files, root, used)
    return key, offset, pack_row


def check_zarr_array(root: Path, array: str, shape: tuple[int, int], dtype: str, where: str) -> None:
    """The array's own ``zarr.json`` agrees with the tables (shape and data type)."""
    path = Path(root) / array / "zarr.json"
    try:
        meta = load_json(path.read_bytes()[: MAX_HEADER_BYTES + 1], path)
    except OSError as exc:
        raise CorruptStoreError(f"{path}: unreadable ({exc}); re-download or re-convert the store") from None
    if not isinstance(meta, dict) or meta.get("shape") != list(shape):
        raise corrupt(path, "shape", f"{str(meta.get('shape') if isinstance(meta, dict) else meta)[:80]} "
                      f"differs from the recordings table's {list(shape)} ({where})")
    if meta.get("data_type") != dtype:
        raise corrupt(path, "data_type", f"{str(meta.get('data_type'))[:40]!r} differs from the table's {dtype!r}")


# ---------------------------------------------------------------------------------------------
# the manifest's files, checked per recording on first use
# ---------------------------------------------------------------------------------------------
class LazyTree:
    """The size and type checks of :func:`check_tree`, split so that opening a store of N
    recordings touches a constant number of files: :meth:`check_outside` (every file outside
    ``signals/``: tables, pack, group metadata) before any table is read, :meth:`check_unowned`
    (files under ``signals/`` that belong to no recording) once the keys are known, and
    :meth:`check_recording` (the files under ``signals/<fan>/<key>`` and any other file its storage
    description names) before a recording's first byte is read. Each is a bisection into the
    sorted manifest paths; folders already checked are remembered."""

    SIGNALS = "signals/"

    def __init__(self, root: Path, files: Mapping[str, FileEntry]) -> None:
        self.root, self.files = Path(root), files
        self.paths = sorted(files)  # already sorted in a written header: linear
        self.dirs: set[str] = set()
        self.lo = bisect.bisect_left(self.paths, self.SIGNALS)
        self.hi = bisect.bisect_left(self.paths, self.SIGNALS[:-1] + "0")  # "/" + 1

    def _check(self, rels: Iterable[str]) -> None:
        check_tree(self.root, {rel: self.files[rel] for rel in rels}, self.dirs)

    def _under(self, prefix: str) -> range:
        """Indices of the paths that start with ``prefix + "."`` or ``prefix + "/"`` (adjacent characters)."""
        return range(bisect.bisect_left(self.paths, prefix + "."), bisect.bisect_left(self.paths, prefix + "0"))

    def check_outside(self) -> None:
        self._check(self.paths[:self.lo] + self.paths[self.hi:])

    def check_unowned(self, keys: list[str]) -> None:
        from .io.layout import signal_prefix

        if self.hi <= self.lo:
            return
        owned = np.zeros(self.hi - self.lo + 1, dtype=np.int32)
        for key in keys:
            r = self._under(signal_prefix(key))
            owned[r.start - self.lo] += 1
            owned[r.stop - self.lo] -= 1
        free = np.flatnonzero(np.cumsum(owned[:-1]) == 0) + self.lo
        self._check([self.paths[j] for j in free])

    def check_recording(self, key: str, used: Iterable[str] = ()) -> None:
        from .io.layout import signal_prefix

        rels = {self.paths[j] for j in self._under(signal_prefix(key))}
        for rel in used:
            if rel.endswith("/"):  # a folder the recording reads through (a Zarr array)
                rels.update(self.paths[j] for j in range(bisect.bisect_left(self.paths, rel),
                                                         bisect.bisect_left(self.paths, rel[:-1] + "0")))
            elif rel in self.files:
                rels.add(rel)
        self._check(sorted(rels))


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Column values equal, NaN equal to NaN (float columns, and float cells of object columns)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return all(x == y or (x != x and y != y) for x, y in zip(a.tolist(), b.tolist()))


def check_pack_tables(root: Path, header: dict[str, Any], sizes: Mapping[str, int], backend: Any) -> None:
    """``tables.pack`` against the format's own tables: ``eegbench.open`` reads only the pack, other
    readers (pyarrow, h5py, zarr) only the format's tables, so the two must hold the same values.

    Each format table must match its SHA-256 in ``tables_sha256`` and each packed table must equal
    it column by column (names, row count, dtype, values; NaN equals NaN). Both are sealed by the
    header, so only a crafted or inconsistently rewritten store can fail here: raises
    :class:`~eegbench.errors.PackMismatchError` naming the table and column. A store without a pack
    passes; a pack of concatenated Parquet bytes (earlier eegbench) is checked slice by slice
    against ``tables_sha256`` by :func:`eegbench.pack.split`."""
    from . import pack as _pack
    from ._frame import Table
    from .errors import PackMismatchError

    where = root / "eegbench.json"
    spans = _pack.entries(header, sizes, where)
    if spans is None:
        return
    sealed = header.get("tables_sha256")
    if not isinstance(sealed, dict):
        raise corrupt(where, "tables_sha256", "missing")
    packed = _pack.split((root / _pack.PACK).read_bytes(), spans, sealed, root, header)

    def bad(name: str, why: str) -> PackMismatchError:
        return PackMismatchError(f"{root}: {_pack.PACK} disagrees with the store's metadata table {name} ({why}); "
                                 "the store was crafted or rewritten inconsistently: re-convert or re-download it")

    for name in _pack.TABLE_NAMES:
        data = backend.read_table(root, name)
        if (None if data is None else hashlib.sha256(data).hexdigest()) != sealed.get(name):
            raise CorruptStoreError(f"{root}: metadata table {name} does not match the SHA-256 the store header "
                                    "records for it (modified, corrupted or from another store)")
        ours = packed.get(name)
        if data is None or not isinstance(ours, Table):
            continue  # absent in both (pack.split checks), or an older pack's bytes: sealed as above
        ref = Table(data, where=f"{root}: metadata table {name}")
        if list(ours.columns) != list(ref.columns):
            raise bad(name, f"columns {list(ours.columns)[:8]} against {list(ref.columns)[:8]}")
        if len(ours) != len(ref):
            raise bad(name, f"{len(ours)} rows against {len(ref)}")
        for col in ref.columns:
            if not _same_values(ours[col].to_numpy(), ref[col].to_numpy()):
                raise bad(name, f"column {col!r} differs")
