"""Share stores on the Hugging Face Hub and work offline from a verified local cache.

A Hub repository (type ``dataset``) holds one eegbench store at its root, unchanged, plus four
files written by :func:`push_to_hub`:

``eegbench.json``        the store header with its SHA-256 manifest (every store file, size + hash)
``format_info.json``     format, codec, chunking, versions, recordings, channels, sampling rates,
                         duration, bytes, file count, and which files belong to which recording
``description.parquet``  the description table alone (one row per recording), so filters can be
                         applied before any signal is downloaded
``README.md``            a dataset card with Hub YAML metadata and a summary computed from metadata
``croissant.json``       Croissant JSON-LD: every file with its sha256, record sets for recordings,
                         channels and the description

Everything goes through ``huggingface_hub`` (pinned to a version that has ``upload_large_folder``):
its resumable uploader, ``snapshot_download(allow_patterns=...)`` for partial pulls and its cache
(``blobs/``, ``refs/``, ``snapshots/``; per-process ``.incomplete`` files renamed into place), so
several processes pulling into one cache end with complete files. Offline (``offline=True``,
``EEGBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) only the cache is read: no network connection.
Tokens are passed to ``huggingface_hub`` only; they never appear in messages, cards or files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import manifest as _manifest
from .errors import (
    CacheMissError,
    CorruptStoreError,
    EegbenchError,
    EmptySelectionError,
    HubError,
    HubLimitError,
    NotAStoreError,
    UnknownColumnError,
    UnsafeRepoError,
)
from .layout import files_by_recording
from .model import Dataset

REPO_TYPE = "dataset"
FORMAT_INFO = "format_info.json"
CARD = "README.md"
CROISSANT = "croissant.json"
DESCRIPTION = "description.parquet"
HEADER = _manifest.HEADER
#: files a repository holds besides the store's own files (the header is a store file)
REPO_FILES = (FORMAT_INFO, DESCRIPTION, CARD, CROISSANT)
FORMAT_INFO_VERSION = 1

#: the Hub's repository limits (https://huggingface.co/docs/hub/storage-limits)
HUB_MAX_FILES = 100_000
HUB_MAX_FILES_PER_FOLDER = 10_000
HUB_MAX_FILE_BYTES = 20 * 10**9

_TRUE = {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------
def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else ``EEGBENCH_OFFLINE`` / ``HF_HUB_OFFLINE`` (read at call time)."""
    if offline is not None:
        return bool(offline)
    for var in ("EEGBENCH_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return False


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``EEGBENCH_CACHE_DIR``, else huggingface_hub's
    default (``HF_HUB_CACHE`` / ``HF_HOME``). Always absolute."""
    if cache_dir is None:
        cache_dir = os.environ.get("EEGBENCH_CACHE_DIR") or None
    if cache_dir is None:
        from huggingface_hub import constants

        cache_dir = constants.HF_HUB_CACHE
    return Path(cache_dir).expanduser().resolve()


def _require_hf() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise HubError("sharing on the Hugging Face Hub needs huggingface_hub: pip install 'eegbench[hub]'") from None


def _endpoint() -> str | None:
    # read at call time (huggingface_hub reads HF_ENDPOINT once, at import)
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def _scrub(text: str, token: str | None) -> str:
    text = str(text)
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{20,}", "hf_***", text)


def _check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?", repo_id) \
            or ".." in repo_id:
        raise HubError(f"{repo_id!r} is not a Hub repository id; use 'owner/name' (letters, digits, -, _, .)")
    return repo_id


# ---------------------------------------------------------------------------------------------
# safety of what a repository says
# ---------------------------------------------------------------------------------------------
def safe_relpath(path: Any, where: str) -> str:
    """``path`` if it is a relative POSIX path inside the store, else :class:`UnsafeRepoError`."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path or path.startswith("/") \
            or re.match(r"^[A-Za-z]:", path):
        raise UnsafeRepoError(f"{where}: path {path!r} is not a relative path inside the store; refusing it")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeRepoError(f"{where}: path {path!r} leaves the store or is not normalised; refusing it")
    return path


def _check_header_paths(header: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    files = header.get("files")
    if not isinstance(files, dict):
        raise UnsafeRepoError(f"{where}: the store header has no file manifest")
    for rel, entry in files.items():
        safe_relpath(rel, where)
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) \
                or not isinstance(entry.get("sha256"), str):
            raise UnsafeRepoError(f"{where}: manifest entry {rel!r} lacks size/sha256")
    return files


def _check_storage_paths(root: Path, where: str) -> None:
    """Paths the recordings table names (``storage`` column) must stay inside the store."""
    from .formats import get_backend
    from .tables import frame_from_parquet, from_json

    header = _manifest.read_header(root)
    data = get_backend(header["format"]).read_table(root, "recordings")
    if data is None:
        return
    try:
        recs = frame_from_parquet(data)
    except Exception as exc:  # noqa: BLE001 - a damaged table is a damaged store
        raise CorruptStoreError(f"{where}: recordings table unreadable ({exc})") from exc
    for text in recs.get("storage", []):
        storage = from_json(text) if isinstance(text, str) else text
        if not isinstance(storage, dict):
            continue
        for name, value in storage.items():
            if isinstance(value, str) and name.endswith(("file", "path")):
                safe_relpath(value, f"{where} (recordings table, storage {name})")
    from .packing import header_packs

    for key, entry in header_packs(header).items():  # packs: their storage is in the header
        storage = entry.get("storage") if isinstance(entry, dict) else None
        for name, value in (storage.items() if isinstance(storage, dict) else ()):
            if isinstance(value, str) and name.endswith(("file", "path")):
                safe_relpath(value, f"{where} (store header, pack {key} storage {name})")


def _refuse_pickles(root: Path, files: Iterable[str], where: str) -> None:
    """Refuse files that hold pickled objects: object-dtype .npy, pickle files by name or magic."""
    import numpy as np

    for rel in files:
        path = root / rel
        if not path.exists():
            continue
        low = rel.lower()
        if low.endswith((".pkl", ".pickle", ".joblib")):
            raise UnsafeRepoError(f"{where}: {rel} is a pickle file; eegbench never loads pickles")
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
                raise UnsafeRepoError(f"{where}: {rel} holds a pickled object; eegbench never loads pickles")
            if head[:6] == b"\x93NUMPY":  # any .npy payload, whatever the file is called
                fh.seek(0)
                try:
                    version = np.lib.format.read_magic(fh)
                    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    header = reader(fh, max_header_size=1 << 16)
                except Exception as exc:  # noqa: BLE001
                    raise CorruptStoreError(f"{where}: {rel} has an unreadable .npy header ({exc})") from exc
                if np.dtype(header[2]).hasobject:
                    raise UnsafeRepoError(f"{where}: {rel} holds Python objects (pickle); refusing it")


def _check_links(snapshot: Path, files: Iterable[str], repo_folder: Path, where: str) -> None:
    """Every cached file is a regular file inside the repository's own cache folder."""
    for rel in files:
        path = snapshot / rel
        if not os.path.lexists(path):
            continue
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(repo_folder) or not real.is_file():
            raise UnsafeRepoError(f"{where}: {rel} points outside the repository's cache ({real}); refusing it")


# ---------------------------------------------------------------------------------------------
# describing a store: format_info, card, Croissant
# ---------------------------------------------------------------------------------------------
def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _store_keys(root: Path, fmt: str) -> list[str]:
    return _store_packs(root, fmt)[0]


def _store_packs(root: Path, fmt: str) -> tuple[list[str], dict[str, str]]:
    """The recording keys and ``{key: pack key}`` of the packed ones (see :mod:`eegbench.packing`)."""
    from .formats import get_backend
    from .packing import member_packs
    from .tables import frame_from_parquet

    frame = frame_from_parquet(get_backend(fmt).read_table(root, "recordings"))
    keys = [str(k) for k in frame["key"]]
    return keys, member_packs(keys, frame["storage"]) if "storage" in frame.columns else {}


def _description_bytes(root: Path, fmt: str) -> bytes:
    from .formats import get_backend

    data = get_backend(fmt).read_table(root, "description")
    if data is None:
        from .tables import frame_to_parquet

        data = frame_to_parquet(pd.DataFrame(index=pd.RangeIndex(len(_store_keys(root, fmt)))))
    return data


def format_info(root: str | os.PathLike) -> dict[str, Any]:
    """The ``format_info.json`` of a store: computed from its header and tables, no signal read."""
    from . import __version__
    from .store import info, open

    root = Path(root)
    header = _manifest.read_header(root)
    files = header.get("files", {})
    summary = info(root)
    dataset = open(root)
    keys, packs = _store_packs(root, header["format"])
    by_key, meta = files_by_recording(files, keys, packs)  # a packed recording: its pack's files
    header_bytes = (root / HEADER).read_bytes()
    desc = _description_bytes(root, header["format"])
    recordings = []
    for i, (key, rec) in enumerate(zip(keys, dataset)):
        recordings.append({"index": i, "key": key, "name": rec.name, "n_channels": rec.n_channels,
                           "sfreq": rec.sfreq, "n_times": rec.n_times, "duration_s": rec.duration,
                           "files": by_key[key], "bytes": int(sum(files[f]["size"] for f in by_key[key]))})
    store_bytes = int(sum(e["size"] for e in files.values()) + len(header_bytes))
    return {
        "eegbench_format_info": FORMAT_INFO_VERSION,
        "format": header["format"],
        "codec": summary["codec"],
        "chunking": {"chunk_seconds": summary["chunk_seconds"], "chunk_samples": summary["chunk_samples"],
                     "chunk_shape": "all channels x chunk_samples"},
        "stored_dtypes": summary["stored_dtypes"],
        "schema_version": header["schema_version"],
        "store_eegbench_version": header.get("eegbench_version"),
        "eegbench_version": __version__,
        "n_recordings": len(keys),
        "n_channels": summary["n_channels"],
        "channel_names": sorted({c for r in dataset for c in r.ch_names}),
        "sfreq": summary["sfreq"],
        "duration_s": summary["duration_s"],
        "n_annotations": summary["n_annotations"],
        "n_windows": summary["n_windows"],
        "float32_bytes": summary["float32_bytes"],
        "store_bytes": store_bytes,
        "store_files": len(files) + 1,
        "compression_ratio": summary["compression_ratio"],
        "header": {"path": HEADER, "size": len(header_bytes), "sha256": _sha256_bytes(header_bytes)},
        "description": {"path": DESCRIPTION, "size": len(desc), "sha256": _sha256_bytes(desc),
                        "columns": [str(c) for c in dataset.description.columns]},
        "metadata_files": meta,
        "recordings": recordings,
    }


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def dataset_card(repo_id: str, info: dict[str, Any], description: pd.DataFrame, *,
                 license: str | None = None, n_files: int | None = None) -> str:
    """The dataset card ``README.md``: Hub YAML metadata + a summary computed from metadata only."""
    n = info["n_recordings"]
    n_examples = info["n_windows"] if info.get("n_windows") else n
    tags = ["eeg", "neuroscience", "time-series", "eegbench", info["format"]]
    yaml = ["---", f"license: {license or 'other'}", "tags:"] + [f"- {t}" for t in tags]
    yaml += ["task_categories:", "- time-series-forecasting", "size_categories:",
             f"- {_size_category(int(n_examples))}", "pretty_name: " + json.dumps(repo_id.split("/")[-1]), "---"]
    hours = info["duration_s"] / 3600
    subjects = ""
    if "subject" in description.columns:
        subjects = f", {description['subject'].nunique(dropna=True)} subjects"
    lines = [
        f"# {repo_id.split('/')[-1]}", "",
        f"EEG dataset stored with [eegbench](https://pypi.org/project/eegbench/) in the **{info['format']}** "
        f"format: {n} recordings{subjects}, {hours:.2f} h in all.", "",
        "| | |", "|---|---|",
        f"| recordings | {n} |",
        f"| channels per recording | {', '.join(map(str, info['n_channels']))} |",
        f"| sampling rates (Hz) | {', '.join(f'{s:g}' for s in info['sfreq'])} |",
        f"| total duration | {info['duration_s']:.1f} s ({hours:.2f} h) |",
        f"| annotations | {info['n_annotations']} |",
        f"| windows | {info['n_windows'] if info['n_windows'] is not None else 'none'} |",
        f"| format | {info['format']} (store schema {info['schema_version']}) |",
        f"| codec | {info['codec']} |",
        f"| chunking | {info['chunking']['chunk_seconds']} s = {info['chunking']['chunk_samples']} samples "
        "x all channels |",
        f"| stored as | {', '.join(info['stored_dtypes'])} |",
        f"| size | store {_human(info['store_bytes'])} ({info['compression_ratio']:.2f}x smaller than float32); "
        f"repository {n_files or info['store_files']} files |",
        f"| written by | eegbench {info['store_eegbench_version']}, pushed with {info['eegbench_version']} |",
        "",
        "## Load it", "",
        "```python", "import eegbench", "",
        f"ds = eegbench.from_pretrained({repo_id!r})            # lazy: metadata first, then the files",
        "x = ds[0].get_data(start=0, stop=256)          # samples, float32 volts",
    ]
    if len(description.columns):
        col = "subject" if "subject" in description.columns else str(description.columns[0])
        value = description[col].dropna().iloc[0] if description[col].notna().any() else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            lines.append(f"part = eegbench.from_pretrained({repo_id!r}, {col}={value!r})  "
                         "# only these recordings' files are downloaded")
    lines += ["```", "",
              f"Offline (no network): `EEGBENCH_OFFLINE=1` or `from_pretrained(..., offline=True)` reads only "
              f"the local cache. Check the cache: `eegbench verify {repo_id}`.", ""]
    if len(description.columns):
        lines += ["## Description columns", "", "Filters accept any of these columns:", ""]
        for c in description.columns:
            vals = description[c].dropna()
            try:
                uniq = vals.astype(str).unique()
            except Exception:  # noqa: BLE001
                uniq = []
            shown = ", ".join(map(str, uniq[:8])) + (" ..." if len(uniq) > 8 else "")
            lines.append(f"- `{c}` ({len(uniq)} distinct): {shown}")
        lines.append("")
    lines += ["## Files", "",
              f"- `{HEADER}`: store header and SHA-256 manifest of every store file",
              f"- `{FORMAT_INFO}`: format, codec, chunking, versions, and each recording's files",
              f"- `{DESCRIPTION}`: the description table (one row per recording)",
              f"- `{CROISSANT}`: Croissant JSON-LD metadata with each file's sha256", ""]
    return "\n".join(yaml + lines)


_CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "data": {"@id": "cr:data",
                                                                                   "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileObject": "cr:fileObject", "fileProperty": "cr:fileProperty", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField",
    "path": "cr:path", "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "sc": "https://schema.org/",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
_MIME = {".json": "application/json", ".parquet": "application/x-parquet", ".md": "text/markdown",
         ".h5": "application/x-hdf5", ".npy": "application/x-npy"}


def _arrow_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"i": "sc:Integer", "u": "sc:Integer", "f": "sc:Float", "b": "sc:Boolean",
            "M": "sc:DateTime"}.get(kind, "sc:Text")


def croissant(repo_id: str, info: dict[str, Any], description: pd.DataFrame, files: dict[str, dict[str, Any]],
              license: str | None = None) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD: every repository file (FileObject with sha256) and record sets for the
    recordings (key, name, channels, rate, samples), the channels and the description table."""
    dist = []
    for rel in sorted(files):
        suffix = Path(rel).suffix.lower()
        dist.append({"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": rel,
                     "contentSize": f"{files[rel]['size']} B", "sha256": files[rel]["sha256"],
                     "encodingFormat": _MIME.get(suffix, "application/octet-stream")})
    rec_fields = [("key", "sc:Text"), ("name", "sc:Text"), ("n_channels", "sc:Integer"), ("sfreq", "sc:Float"),
                  ("n_times", "sc:Integer"), ("duration_s", "sc:Float")]
    recordings = {
        "@type": "cr:RecordSet", "@id": "recordings", "name": "recordings",
        "description": "One record per recording (sfreq in Hz, n_times in samples, duration in seconds).",
        "key": {"@id": "recordings/key"},
        "field": [{"@type": "cr:Field", "@id": f"recordings/{n}", "name": n, "dataType": t} for n, t in rec_fields],
        "data": [{f"recordings/{n}": r[n] for n, _ in rec_fields} for r in info["recordings"]],
    }
    channels = {
        "@type": "cr:RecordSet", "@id": "channels", "name": "channels",
        "description": "The channel names that occur in the recordings (signals in volts).",
        "field": [{"@type": "cr:Field", "@id": "channels/name", "name": "name", "dataType": "sc:Text"}],
        "data": [{"channels/name": c} for c in info["channel_names"]],
    }
    desc_fields = []
    for c in description.columns:
        desc_fields.append({"@type": "cr:Field", "@id": f"description/{c}", "name": str(c),
                            "dataType": _arrow_type(description[c].dtype),
                            "source": {"fileObject": {"@id": DESCRIPTION}, "extract": {"column": str(c)}}})
    record_sets = [recordings, channels]
    if desc_fields:
        record_sets.append({"@type": "cr:RecordSet", "@id": "description", "name": "description",
                            "description": "The description table: one row per recording, in recording order.",
                            "field": desc_fields})
    return {
        "@context": _CROISSANT_CONTEXT, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": repo_id.split("/")[-1], "url": f"https://huggingface.co/datasets/{repo_id}",
        "description": (f"EEG dataset in the eegbench {info['format']} format: {info['n_recordings']} recordings, "
                        f"{info['duration_s']:.1f} s."),
        "license": license or "other", "version": "1.0.0", "keywords": ["EEG", "eegbench", info["format"]],
        "distribution": dist, "recordSet": record_sets,
    }


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------
@dataclass
class PushPlan:
    """What a push uploads (``dry_run=True`` returns it without any network call).

    ``files`` maps each repository path to ``{"size": bytes, "sha256": hex}``; ``folder`` is the
    staging folder that was (or would be) uploaded — removed after a dry run or a successful push,
    kept after an interrupted one so that the next push resumes from it."""

    repo_id: str
    revision: str | None
    folder: Path
    files: dict[str, dict[str, Any]]
    format_info: dict[str, Any]
    card: str
    croissant: dict[str, Any]
    method: str = "upload_large_folder"
    uploaded: bool = False
    commit: str | None = field(default=None, repr=False)

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def n_bytes(self) -> int:
        return int(sum(e["size"] for e in self.files.values()))


def check_hub_limits(paths: Iterable[str], sizes: dict[str, int] | None = None) -> None:
    """Raise :class:`HubLimitError` with the numbers and the remedy if the files break the Hub's limits."""
    paths = list(paths)
    problems = []
    if len(paths) >= HUB_MAX_FILES:
        problems.append(f"{len(paths):,} files (the Hub allows fewer than {HUB_MAX_FILES:,} per repository)")
    per_folder: dict[str, int] = {}
    for p in paths:
        folder = p.rsplit("/", 1)[0] if "/" in p else "."
        per_folder[folder] = per_folder.get(folder, 0) + 1
    crowded = sorted(((n, f) for f, n in per_folder.items() if n >= HUB_MAX_FILES_PER_FOLDER), reverse=True)
    for n, f in crowded[:3]:
        problems.append(f"{n:,} files in folder {f}/ (fewer than {HUB_MAX_FILES_PER_FOLDER:,} per folder allowed)")
    big = sorted(((s, p) for p, s in (sizes or {}).items() if s >= HUB_MAX_FILE_BYTES), reverse=True)
    for s, p in big[:3]:
        problems.append(f"{p} is {s / 1e9:.1f} GB (files must be under {HUB_MAX_FILE_BYTES / 1e9:.0f} GB)")
    if problems:
        raise HubLimitError(
            "this store exceeds the Hugging Face Hub's limits: " + "; ".join(problems) + ". Remedy: convert with "
            "longer chunks (--chunk-seconds) or to a format with one file per recording (hdf5, parquet), "
            "or split the dataset into several repositories.")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        same = dst.stat()
        if (same.st_ino == src.stat().st_ino and same.st_dev == src.stat().st_dev) or \
                (same.st_size == src.stat().st_size and _manifest.sha256_file(dst) == _manifest.sha256_file(src)):
            return  # unchanged: keep its mtime so a resumed upload does not hash it again
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _staging_folder(repo_id: str, revision: str | None, base: Path) -> Path:
    suffix = "--" + re.sub(r"[^\w.-]", "_", revision) if revision else ""
    name = repo_id.replace("/", "--") + suffix
    return base / "eegbench-uploads" / name


def _stage(store: Path, folder: Path, repo_id: str, license: str | None) -> PushPlan:
    """Fill ``folder`` with exactly the repository's files (store files hard-linked)."""
    header = _manifest.read_header(store)
    files = dict(header.get("files", {}))
    _manifest.check_sizes(store, files)
    info = format_info(store)
    desc_bytes = _description_bytes(store, header["format"])
    from .tables import frame_from_parquet

    description = frame_from_parquet(desc_bytes)
    all_paths = [HEADER, *files, *REPO_FILES]
    check_hub_limits(all_paths, {**{p: e["size"] for p, e in files.items()}})
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {HEADER, *files}
    for rel in wanted:
        _link_or_copy(store / rel, folder / rel)
    repo_files = {rel: dict(files[rel]) for rel in files}
    repo_files[HEADER] = dict(info["header"])
    del repo_files[HEADER]["path"]
    info_bytes = (json.dumps(info, indent=1, ensure_ascii=False) + "\n").encode()
    generated = {FORMAT_INFO: info_bytes, DESCRIPTION: desc_bytes}
    for rel, data in generated.items():
        repo_files[rel] = {"size": len(data), "sha256": _sha256_bytes(data)}
    card = dataset_card(repo_id, info, description, license=license, n_files=len(repo_files) + 2)
    generated[CARD] = card.encode()
    repo_files[CARD] = {"size": len(generated[CARD]), "sha256": _sha256_bytes(generated[CARD])}
    croissant_doc = croissant(repo_id, info, description, repo_files, license)
    generated[CROISSANT] = (json.dumps(croissant_doc, indent=1, ensure_ascii=False) + "\n").encode()
    repo_files[CROISSANT] = {"size": len(generated[CROISSANT]), "sha256": _sha256_bytes(generated[CROISSANT])}
    for rel, data in generated.items():
        _write_if_changed(folder / rel, data)
    # anything else in the staging folder (an older push of other content) must not be uploaded
    for dirpath, dirs, names in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder).as_posix()
        if rel_dir == ".cache" or rel_dir.startswith(".cache/"):
            dirs[:] = []
            continue
        for name in names:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel not in repo_files:
                os.unlink(Path(dirpath, name))
    return PushPlan(repo_id, None, folder, dict(sorted(repo_files.items())), info, card, croissant_doc)


def _as_store(path_or_dataset: Any, format: str | None, compression: str | None, level: int | None,
              workdir: Path) -> Path:
    """The store to push: ``path_or_dataset`` itself when it is a store in the wanted format,
    else a conversion written atomically into ``workdir``."""
    from .store import save

    if isinstance(path_or_dataset, (str, os.PathLike)):
        path = Path(path_or_dataset)
        if path.name == HEADER:
            path = path.parent
        if (path / HEADER).is_file():
            header = _manifest.read_header(path)
            wanted = None if format is None else _canonical_format(format)
            if (wanted is None or wanted == header["format"]) and compression is None and level is None:
                return path
        from .sources import load

        dataset = load([path])
    elif isinstance(path_or_dataset, Dataset):
        dataset = path_or_dataset
    else:
        from .model import Recording

        if not isinstance(path_or_dataset, Recording):
            raise HubError(f"push_to_hub needs a store path, a source path or a Dataset, got "
                           f"{type(path_or_dataset).__name__}")
        dataset = Dataset([path_or_dataset])
    return save(dataset, workdir / "store", format=format or "zarr", compression=compression, level=level)


def _canonical_format(name: str) -> str:
    from .formats import get_backend

    return get_backend(name).name


def push_to_hub(path_or_dataset: Any, repo_id: str, *, format: str | None = None, compression: str | None = None,
                level: int | None = None, private: bool = False, token: str | None = None,
                revision: str | None = None, commit_message: str | None = None, license: str | None = None,
                dry_run: bool = False, cache_dir: str | os.PathLike | None = None) -> PushPlan:
    """Upload a store (or a dataset, converted first) to the Hub as a dataset repository.

    ``path_or_dataset`` is a store (pushed as is unless ``format``/``compression`` ask for another),
    recording files / a BIDS root / a :class:`~eegbench.Dataset` (converted to ``format``, default
    zarr, into a temporary store, atomically). The repository gets the store plus
    ``format_info.json``, ``description.parquet``, a dataset card and ``croissant.json``; a store over
    the Hub's limits is refused with :class:`~eegbench.errors.HubLimitError` before any upload.

    The upload uses ``HfApi.upload_large_folder`` (resumable: re-run the same push after an
    interruption and it continues from the kept staging folder under the cache directory), or
    ``HfApi.upload_folder`` when ``commit_message`` is given. ``dry_run=True`` makes no network call
    and returns the :class:`PushPlan` (files, sizes, SHA-256, card, Croissant).
    """
    _check_repo_id(repo_id)
    _require_hf()
    base = cache_dir_for_uploads(cache_dir)
    folder = _staging_folder(repo_id, revision, base) if not dry_run else \
        base / "eegbench-uploads" / f".dry-run-{uuid.uuid4().hex[:8]}-{os.getpid()}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=folder.parent))
    try:
        store = _as_store(path_or_dataset, format, compression, level, work)
        plan = _stage(store, folder, repo_id, license)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if dry_run:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)  # staged files are hard links or copies: the temp store can go
    plan.revision = revision
    plan.method = "upload_folder" if commit_message else "upload_large_folder"
    if dry_run:
        shutil.rmtree(folder, ignore_errors=True)
        return plan
    from huggingface_hub import HfApi

    api = HfApi(endpoint=_endpoint(), token=token)
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
        if commit_message:
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=REPO_TYPE, revision=revision,
                                     commit_message=commit_message, ignore_patterns=[".cache/**"])
            plan.commit = getattr(info, "oid", None)
        else:
            api.upload_large_folder(repo_id, folder, repo_type=REPO_TYPE, revision=revision, private=private,
                                    print_report=False)
    except EegbenchError:
        raise
    except Exception as exc:
        raise HubError(f"pushing to {repo_id} failed: {_scrub(exc, token)}. The staging folder {folder} is kept: "
                       "run the same push again to resume.") from None
    shutil.rmtree(folder, ignore_errors=True)
    plan.uploaded = True
    return plan


def cache_dir_for_uploads(cache_dir_arg: str | os.PathLike | None) -> Path:
    """Where staging folders live: ``<cache dir>/eegbench-uploads`` (absolute)."""
    return resolve_cache_dir(cache_dir_arg)


# ---------------------------------------------------------------------------------------------
# pull
# ---------------------------------------------------------------------------------------------
def _repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / f"datasets--{repo_id.replace('/', '--')}"


def _read_json(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptStoreError(f"{where}: {path.name} is unreadable ({exc})") from exc


def _load_repo_meta(snapshot: Path, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """format_info and header of a snapshot, validated (paths inside, files listed consistently)."""
    info = _read_json(snapshot / FORMAT_INFO, where)
    header = _manifest.read_header(snapshot)
    files = _check_header_paths(header, where)
    if not isinstance(info, dict) or not isinstance(info.get("recordings"), list):
        raise UnsafeRepoError(f"{where}: {FORMAT_INFO} is not an eegbench format_info")
    if _manifest.sha256_file(snapshot / HEADER) != info.get("header", {}).get("sha256"):
        raise CorruptStoreError(f"{where}: {HEADER} does not match the hash in {FORMAT_INFO}")
    for rel in info.get("metadata_files", []):
        safe_relpath(rel, f"{where} ({FORMAT_INFO})")
        if rel not in files:
            raise UnsafeRepoError(f"{where}: {FORMAT_INFO} names {rel}, which is not in the store manifest")
    for rec in info["recordings"]:
        if not isinstance(rec, dict) or not isinstance(rec.get("files"), list) or not isinstance(rec.get("key"), str):
            raise UnsafeRepoError(f"{where}: {FORMAT_INFO} has a malformed recording entry")
        for rel in rec["files"]:
            safe_relpath(rel, f"{where} ({FORMAT_INFO})")
            if rel not in files:
                raise UnsafeRepoError(f"{where}: {FORMAT_INFO} names {rel}, which is not in the store manifest")
    return info, header


def _description(snapshot: Path, info: dict[str, Any], where: str) -> pd.DataFrame:
    from .tables import frame_from_parquet

    path = snapshot / DESCRIPTION
    data = path.read_bytes()
    if _sha256_bytes(data) != info.get("description", {}).get("sha256"):
        raise CorruptStoreError(f"{where}: {DESCRIPTION} does not match its hash in {FORMAT_INFO}")
    try:
        frame = frame_from_parquet(data)
    except Exception as exc:  # noqa: BLE001
        raise CorruptStoreError(f"{where}: {DESCRIPTION} is unreadable ({exc})") from exc
    if len(frame) != len(info["recordings"]):
        raise CorruptStoreError(f"{where}: {DESCRIPTION} has {len(frame)} rows for {len(info['recordings'])} "
                                "recordings")
    return frame


def select_rows(description: pd.DataFrame, filters: dict[str, Any], where: str = "") -> list[int]:
    """Positions of the rows matching every filter (a list/tuple/set means "any of").

    Unknown columns raise :class:`UnknownColumnError` listing the columns; no match raises
    :class:`EmptySelectionError` listing the values present."""
    mask = pd.Series(True, index=description.index)
    for column, wanted in filters.items():
        if column not in description.columns:
            raise UnknownColumnError(f"{where}no description column {column!r}; columns are: "
                                     f"{', '.join(map(str, description.columns)) or '(none)'}")
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        col = description[column]
        hit = col.isin(values)
        if not hit.any():  # "001" vs 1: compare as text too
            hit = col.astype(str).isin([str(v) for v in values])
        mask &= hit.to_numpy()
    rows = [i for i, ok in enumerate(mask.to_numpy()) if ok]
    if not rows:
        present = {c: sorted(map(str, description[c].dropna().unique()))[:20] for c in filters}
        shown = "; ".join(f"{c}: {', '.join(v) or '(empty)'}" for c, v in present.items())
        raise EmptySelectionError(f"{where}no recording matches {filters!r}; values present: {shown}")
    return rows


def _missing(snapshot: Path, paths: Iterable[str]) -> list[str]:
    return [p for p in paths if not (snapshot / p).is_file()]


def _cache_error(repo_id: str, revision: str, cache: Path, missing: list[str], offline: bool) -> CacheMissError:
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    how = ("connect and run `eegbench pull " + repo_id + (f" --revision {revision}" if revision != "main" else "")
           + "` (or the same from_pretrained call online)") if offline else "pull again"
    return CacheMissError(f"{repo_id} at revision {revision}: the cache {cache} lacks {len(missing)} file(s): "
                          f"{shown}; {how}")


@dataclass
class Pulled:
    """Where a pull landed: the snapshot folder (the store), the commit and the recordings selected."""

    repo_id: str
    revision: str
    commit: str
    path: Path
    keys: list[str]
    files: list[str]
    partial: bool


def pull(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
         offline: bool | None = None, token: str | None = None, max_workers: int = 8,
         **filters: Any) -> Pulled:
    """Download (or, offline, find in the cache) the repository's metadata and the files of the
    recordings matching ``filters``. Returns a :class:`Pulled` (nothing is opened)."""
    _check_repo_id(repo_id)
    _require_hf()
    off = is_offline(offline)
    cache = resolve_cache_dir(cache_dir)
    rev = revision or "main"
    where = f"{repo_id}@{rev}"
    head_files = [FORMAT_INFO, HEADER, DESCRIPTION]
    snapshot = _snapshot(repo_id, rev, cache, head_files, off, token, max_workers)
    commit = snapshot.name
    missing = _missing(snapshot, head_files)
    if missing:
        raise _cache_error(repo_id, rev, cache, missing, off)
    repo_folder = _repo_folder(cache, repo_id)
    _check_links(snapshot, head_files, repo_folder, where)
    info, header = _load_repo_meta(snapshot, where)
    description = _description(snapshot, info, where)
    rows = select_rows(description, filters, f"{where}: ") if filters else list(range(len(description)))
    recs = info["recordings"]
    keys = [recs[i]["key"] for i in rows]
    wanted = sorted({*info["metadata_files"], *(f for i in rows for f in recs[i]["files"]), CARD, CROISSANT})
    if not off:
        _snapshot(repo_id, commit, cache, wanted if filters else None, off, token, max_workers)
    missing = _missing(snapshot, [f for f in wanted if f not in (CARD, CROISSANT)])  # the card is optional
    wanted = [f for f in wanted if f not in (CARD, CROISSANT) or (snapshot / f).is_file()]
    if missing:
        raise _cache_error(repo_id, rev if off else commit, cache, missing, off)
    _check_links(snapshot, wanted, repo_folder, where)
    _refuse_pickles(snapshot, wanted, where)
    _check_storage_paths(snapshot, where)
    return Pulled(repo_id, rev, commit, snapshot, keys, wanted, partial=len(rows) < len(recs))


def _snapshot(repo_id: str, revision: str, cache: Path, patterns: list[str] | None, offline: bool,
              token: str | None, max_workers: int) -> Path:
    """huggingface_hub's snapshot folder for ``revision`` (downloading ``patterns`` unless offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    allow = None if patterns is None else [_glob_escape(p) for p in patterns]
    kwargs: dict[str, Any] = {"repo_type": REPO_TYPE, "revision": revision, "cache_dir": str(cache),
                              "allow_patterns": allow, "local_files_only": offline}
    if not offline:
        kwargs.update(token=token, endpoint=_endpoint(), max_workers=max_workers)
    try:
        path = snapshot_download(repo_id, **kwargs)
    except IncompleteSnapshotError as exc:
        how = ("connect and pull again" if offline else "the Hub could not be reached; check the connection "
               "(or HF_ENDPOINT) and pull again")
        raise CacheMissError(f"{repo_id} at revision {revision}: the cache {cache} is incomplete "
                             f"({_scrub(exc, token).split(' is incomplete: ', 1)[-1].split('. ')[0]}); {how}") from None
    except LocalEntryNotFoundError:
        if offline:
            raise CacheMissError(
                f"{repo_id} at revision {revision} is not in the cache {cache} (offline: nothing was downloaded); "
                f"connect and run `eegbench pull {repo_id}` first, or point cache_dir/EEGBENCH_CACHE_DIR at the "
                "cache that holds it") from None
        raise HubError(f"{repo_id} at revision {revision}: the Hub could not be reached and the cache {cache} "
                       "does not hold it; check the connection (or HF_ENDPOINT)") from None
    except (RevisionNotFoundError, RepositoryNotFoundError) as exc:
        raise _missing_on_hub(exc, repo_id, revision) from None
    except EntryNotFoundError as exc:
        raise HubError(f"{repo_id}@{revision}: {_scrub(exc, token)}") from None
    except EegbenchError:
        raise
    except Exception as exc:
        raise HubError(f"downloading {repo_id}@{revision} failed: {_scrub(exc, token)}") from None
    return Path(path)


def _glob_escape(path: str) -> str:
    # allow_patterns are fnmatch globs: make every path match only itself
    return re.sub(r"([*?\[])", r"[\1]", path)


def from_pretrained(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                    offline: bool | None = None, verify: bool = False, token: str | None = None,
                    streaming: bool = False, **filters: Any) -> Dataset:
    """Open a dataset from the Hub (or, offline, from the local cache), lazily.

    ``filters`` are description columns (BIDS entities included), e.g. ``subject="001"`` or
    ``task=["rest", "motor"]``: the description table is downloaded first, alone, and then only
    the matching recordings' files plus the metadata. Offline (``offline=True``,
    ``EEGBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) nothing touches the network; a missing or
    partial cache raises :class:`~eegbench.errors.CacheMissError` naming the repository, revision
    and missing files. ``verify=True`` re-hashes the files used against the manifest (see
    :func:`verify_repo`). ``cache_dir`` defaults to ``EEGBENCH_CACHE_DIR``, else huggingface_hub's.

    ``streaming=True`` downloads nothing up front: the same lazy dataset reads the repository's
    files by byte ranges over ``hf://`` (see :func:`stream`); nothing goes to the cache.
    """
    if streaming:
        if is_offline(offline):
            from .errors import OptionError

            raise OptionError("streaming=True reads from the Hub; offline, use from_pretrained without "
                              "streaming (the local cache)")
        return stream(repo_id, revision=revision, token=token, verify=verify, **filters)
    from .store import open as open_store

    pulled = pull(repo_id, revision=revision, cache_dir=cache_dir, offline=offline, token=token, **filters)
    if verify:
        report = verify_repo(pulled.path, keys=pulled.keys)
        if not report.ok:
            raise CorruptStoreError(report.message(repo_id=repo_id, revision=pulled.commit))
    dataset = open_store(pulled.path, recordings=pulled.keys if pulled.partial else None)
    if pulled.partial:
        info = _read_json(pulled.path / FORMAT_INFO, repo_id)
        rows = [r["index"] for r in info["recordings"] if r["key"] in set(pulled.keys)]
        desc = _description(pulled.path, info, repo_id).iloc[rows].reset_index(drop=True)
        if not desc.equals(dataset.description.reset_index(drop=True)):
            raise CorruptStoreError(f"{repo_id}: {DESCRIPTION} disagrees with the store's description table")
    dataset.attrs.setdefault("hub", {"repo_id": repo_id, "revision": pulled.revision, "commit": pulled.commit})
    return dataset


def stream(repo_id: str, *, revision: str | None = None, token: str | None = None, verify: bool = False,
           **filters: Any) -> Dataset:
    """The repository's store, opened lazily over ``hf://`` byte ranges (``HfFileSystem``).

    The revision is resolved to its commit first (one API request, none when ``revision`` is a
    40-hex commit), so every later read is of that commit even if the branch moves. Opening then
    reads the header and ``tables.pack`` (see :mod:`eegbench.remote`); a window reads only its
    chunks' byte ranges (plus each recording's chunk index once). ``filters`` select recordings
    by the description table, as in :func:`from_pretrained`; nothing of the other recordings is
    read. ``verify=True`` fetches and re-hashes every file of the store first."""
    from .store import open as open_store

    _check_repo_id(repo_id)
    _require_hf()
    rev = revision or "main"
    commit = rev if re.fullmatch(r"[0-9a-f]{40}", rev) else _resolve_commit(repo_id, rev, token)
    options = {k: v for k, v in (("endpoint", _endpoint()), ("token", token)) if v is not None}
    try:
        dataset = open_store(f"hf://datasets/{repo_id}@{commit}", storage_options=options, verify=verify)
    except FileNotFoundError as exc:
        raise HubError(f"{repo_id}@{commit}: {_scrub(exc, token)}") from None
    if filters:
        source = dataset.byte_source  # type: ignore[attr-defined]
        dataset = dataset.take(select_rows(dataset.description, filters, f"{repo_id}@{rev}: "))
        dataset.byte_source = source  # type: ignore[attr-defined]
    dataset.attrs.setdefault("hub", {"repo_id": repo_id, "revision": rev, "commit": commit, "streaming": True})
    return dataset


def _missing_on_hub(exc: Exception, repo_id: str, revision: str) -> HubError:
    """The error for a repository or revision the Hub does not have (shared by pull and streaming)."""
    from huggingface_hub.errors import RevisionNotFoundError

    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"{repo_id} has no revision {revision!r}")
    return HubError(f"dataset repository {repo_id} not found on the Hub (or it is private: pass a token "
                    "or run `hf auth login`)")


def _resolve_commit(repo_id: str, revision: str, token: str | None) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return HfApi(endpoint=_endpoint(), token=token).dataset_info(repo_id, revision=revision).sha
    except (RevisionNotFoundError, RepositoryNotFoundError) as exc:
        raise _missing_on_hub(exc, repo_id, revision) from None
    except Exception as exc:
        raise HubError(f"resolving {repo_id}@{revision} failed: {_scrub(exc, token)}") from None


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """Result of checking a store or a cached repository against its manifest.

    ``missing``/``extra``/``size``/``sha256`` list file paths; ``recordings`` maps each recording
    key to ``"ok"``, ``"not downloaded"`` (a partial pull) or ``"damaged"``; ``refetch`` is the
    list of files to download again."""

    root: Path
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    size: list[str] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)
    recordings: dict[str, str] = field(default_factory=dict)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.size or self.sha256)

    @property
    def refetch(self) -> list[str]:
        return sorted(set(self.missing) | set(self.size) | set(self.sha256))

    def message(self, repo_id: str | None = None, revision: str | None = None) -> str:
        if self.ok:
            n_ok = sum(1 for v in self.recordings.values() if v == "ok")
            skipped = sum(1 for v in self.recordings.values() if v == "not downloaded")
            return (f"{self.root}: {self.checked} files match their SHA-256; {n_ok} recordings complete"
                    + (f", {skipped} not downloaded (partial pull)" if skipped else ""))
        parts = []
        for label, items in (("missing", self.missing), ("extra (not in the manifest)", self.extra),
                             ("wrong size", self.size), ("SHA-256 mismatch", self.sha256)):
            if items:
                parts.append(f"{label}: {', '.join(items[:10])}" + (f" (+{len(items) - 10})" if len(items) > 10 else ""))
        damaged = [k for k, v in self.recordings.items() if v == "damaged"]
        text = f"{self.root}: " + "; ".join(parts)
        if damaged:
            text += f"; damaged recordings: {', '.join(damaged[:10])}"
        if self.refetch:
            if repo_id:
                rev = f" --revision {revision}" if revision else ""
                text += (f". Re-fetch {len(self.refetch)} file(s) with `eegbench pull {repo_id}{rev} --repair` "
                         f"(files: {', '.join(self.refetch[:10])})")
            else:
                text += f". Re-fetch or re-convert: {', '.join(self.refetch[:10])}"
        if self.extra:
            text += f". Remove the extra file(s): {', '.join(self.extra[:10])}"
        return text


def verify_repo(root: str | os.PathLike, *, keys: list[str] | None = None, partial_ok: bool = True) -> VerifyReport:
    """Check a store or a cached repository snapshot: every manifest file present with its size and
    SHA-256, no extra files. For a repository snapshot (has ``format_info.json``) the generated
    files are checked too, and a recording whose files are *all* absent counts as "not downloaded"
    (a partial pull) unless ``partial_ok=False`` or it is in ``keys``."""
    root = Path(root)
    header = _manifest.read_header(root)
    files = _check_header_paths(header, str(root))
    report = VerifyReport(root)
    expected: dict[str, dict[str, Any] | None] = {rel: entry for rel, entry in files.items()}
    is_repo = (root / FORMAT_INFO).is_file()
    if is_repo:
        info = _read_json(root / FORMAT_INFO, str(root))
        expected[FORMAT_INFO] = None
        expected[HEADER] = {"size": info["header"]["size"], "sha256": info["header"]["sha256"]}
        expected[DESCRIPTION] = {"size": info["description"]["size"], "sha256": info["description"]["sha256"]}
        for rel in (CARD, CROISSANT):
            expected[rel] = None
        record_keys = [r["key"] for r in info["recordings"]]
        if (root / CROISSANT).is_file():
            doc = _read_json(root / CROISSANT, str(root))
            for entry in doc.get("distribution", []):
                if entry.get("@id") == CARD:
                    expected[CARD] = {"size": int(entry["contentSize"].split()[0]), "sha256": entry["sha256"]}
        packs = _store_packs(root, header["format"])[1]
    else:
        record_keys, packs = _store_packs(root, header["format"])
    by_key, _meta = files_by_recording(files, record_keys, packs)
    skip: set[str] = set()
    for key in record_keys:
        present = [f for f in by_key[key] if os.path.lexists(root / f)]
        if is_repo and partial_ok and not present and by_key[key] and (keys is None or key not in keys):
            report.recordings[key] = "not downloaded"
            skip.update(by_key[key])
    optional = {CARD, CROISSANT} if is_repo else set()
    for rel in sorted(expected):
        if rel in skip:
            continue
        path = root / rel
        if not path.is_file():
            if rel not in optional:
                report.missing.append(rel)
            continue
        entry = expected[rel]
        report.checked += 1
        if entry is None:
            continue
        if path.stat().st_size != entry["size"]:
            report.size.append(rel)
        elif _manifest.sha256_file(path) != entry["sha256"]:
            report.sha256.append(rel)
    known = set(expected) | {HEADER}
    for rel in _manifest.list_files(root):
        if rel not in known and not rel.startswith(".cache/"):
            report.extra.append(rel)
    bad = set(report.refetch)
    for key in record_keys:
        if key not in report.recordings:
            report.recordings[key] = "damaged" if bad.intersection(by_key[key]) else "ok"
    return report


def resolve_cached(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (no network)."""
    cache = resolve_cache_dir(cache_dir)
    return _snapshot(_check_repo_id(repo_id), revision or "main", cache, [HEADER], True, None, 1)


def repair(repo_id: str, files: list[str], *, revision: str, cache_dir: str | os.PathLike | None = None,
           token: str | None = None) -> None:
    """Download ``files`` of ``repo_id`` at ``revision`` again into the cache (replacing bad copies)."""
    from huggingface_hub import hf_hub_download

    cache = resolve_cache_dir(cache_dir)
    snapshot = _repo_folder(cache, repo_id) / "snapshots" / revision
    for rel in files:
        safe_relpath(rel, repo_id)
        link = snapshot / rel
        if os.path.lexists(link) and not link.is_symlink():
            link.unlink()  # a stray regular file: the cache keeps symlinks into blobs/
        try:
            hf_hub_download(repo_id, rel, repo_type=REPO_TYPE, revision=revision, cache_dir=str(cache),
                            force_download=True, token=token, endpoint=_endpoint())
        except Exception as exc:
            raise HubError(f"re-fetching {rel} of {repo_id}@{revision} failed: {_scrub(exc, token)}") from None


def looks_like_repo_id(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text)) and not Path(text).exists()


__all__ = ["PushPlan", "Pulled", "VerifyReport", "resolve_cache_dir", "check_hub_limits", "croissant", "dataset_card",
           "format_info", "from_pretrained", "is_offline", "pull", "push_to_hub", "repair", "resolve_cached",
           "select_rows", "verify_repo", "NotAStoreError"]
