"""Corpus of damaged and crafted stores, and the check run on each.

A case is a small JSON-able dict ``{"base": <base store name>, "kind": ..., ...}``; :func:`apply`
turns a fresh copy of the base store into the damaged one, :func:`check` opens it, reads every
sample and all metadata, compares with the original dataset and runs ``verify``. Outcomes:

* ``correct``: open + read succeeded and everything equals the original;
* ``typed``: an :class:`eegbench.errors.EegbenchError` was raised (the right answer for damage);
* ``wrong``: no error, but data or metadata differ from the original;
* ``untyped``: any other exception (a bug);
* ``hang`` / ``crash``: decided by the runner (timeout, killed worker).

``valid_edit`` marks the cases that rewrite the metadata *and* recompute the manifest and the
header digest: they are valid stores with other contents, which no check inside a store can tell
from the original (see the README's Reliability section); their ``wrong`` outcomes are counted
separately.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

import eegbench
from eegbench import Annotations, Dataset, Quantization, Recording
from eegbench.errors import EegbenchError
from eegbench.model import ArraySource

FORMATS = ("hdf5", "zarr", "parquet")
CODECS = ("none", "blosc-zstd", "zstd")
N_CH, N_TIMES, SFREQ = 4, 600, 100.0


# ---------------------------------------------------------------------------------------------
# base stores
# ---------------------------------------------------------------------------------------------
def dataset(seed: int, integer: bool) -> Dataset:
    """Two equal-shape recordings (so their signal files are the same size) with metadata."""
    rng = np.random.default_rng(seed)
    recs = []
    for r in range(2):
        counts = np.cumsum(rng.integers(-30, 31, size=(N_CH, N_TIMES)), axis=1).astype(np.int16)
        q = Quantization(np.full(N_CH, 0.5), np.arange(N_CH, dtype=float), np.full(N_CH, 1e-6))
        src = ArraySource(q.reconstruct(counts), quantization=q if integer else None)
        recs.append(Recording(src, SFREQ, [f"C{c}" for c in range(N_CH)], name=f"r{r}",
                              annotations=Annotations([0.5, 1.0], [0.1, 0.0], ["a", "b"], [(), ("C1",)]),
                              description={"subject": f"s{seed}{r}", "run": r},
                              history=[{"op": "filter", "l": 1.0}]))
    import pandas as pd

    return Dataset(recs, pd.DataFrame({"subject": [f"s{seed}0", f"s{seed}1"]}), attrs={"name": f"seed{seed}"})


def base_names(formats: tuple[str, ...] = FORMATS) -> list[str]:
    return [f"{f}-{c}-{'int' if i else 'f32'}" for f in formats for c in CODECS for i in (True, False)]


def build_bases(folder: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Each base store (seed 0) and its foreign twin (seed 1, same layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in base_names(formats):
        fmt, codec, mode = _split(name)
        for seed, suffix in ((0, ""), (1, "-foreign")):
            path = folder / f"{name}{suffix}"
            if not path.exists():
                eegbench.save(dataset(seed, mode == "int"), path, fmt, compression=codec,
                              integer=mode == "int", chunk_seconds=1.0)
        out[name] = folder / name
    return out


def _split(name: str) -> tuple[str, str, str]:
    fmt, rest = name.split("-", 1)
    codec, mode = rest.rsplit("-", 1)
    return fmt, codec, mode


def tree_digest(store: Path) -> str:
    """Names, kinds and bytes of everything under ``store`` (to tell a no-op mutation)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(store.rglob("*")):
        h.update(p.relative_to(store).as_posix().encode() + b"\0")
        if p.is_symlink():
            h.update(b"L" + os.readlink(p).encode())
        elif p.is_file():
            h.update(b"F" + p.read_bytes())
        else:
            h.update(b"D" if p.is_dir() else b"S")
    return h.hexdigest()


def files_of(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------
HEADER_EDITS = [
    ("format", "hdf5"), ("format", "zarr"), ("format", "parquet"), ("format", 7), ("schema_version", 1),
    ("schema_version", 999), ("schema_version", "2"), ("files", {}), ("files", []), ("files", None),
    ("n_recordings", 1), ("n_recordings", -1), ("n_recordings", 10 ** 5000 // 10 ** 4990), ("attrs", "{"),
    ("attrs", "[" * 5000 + "]" * 5000), ("attrs", 5), ("options", {"compression": "none"}), ("options", []),
    ("store_id", 12), ("created", None), ("header_sha256", "0" * 64), ("header_sha256", None),
]
# recordings-table edits: (column, value) applied to row 0 (or "swap" keys of rows 0 and 1)
TABLE_EDITS = [
    ("n_times", -5), ("n_times", 0), ("n_times", N_TIMES - 1), ("n_times", N_TIMES + 1), ("n_times", 10 ** 12),
    ("n_channels", N_CH - 1), ("n_channels", N_CH + 1), ("n_channels", 10 ** 6), ("chunk_samples", -100),
    ("chunk_samples", 0), ("chunk_samples", 50), ("chunk_samples", 10 ** 9), ("dtype", "int32"),
    ("dtype", "float32"), ("dtype", "int16"), ("dtype", "object"), ("dtype", "float64"), ("sfreq", 0.0),
    ("sfreq", -1.0), ("sfreq", float("nan")), ("key", "../../x"), ("key", "rec-00001"), ("name", 5),
    ("first_samp", 2 ** 70), ("meas_date", "not a date"), ("codec", "{"), ("codec", '{"compression": "lzma"}'),
    ("codec", '{"compression": "none", "level": null, "delta": false}'), ("storage", "[]"),
    ("storage", '{"file": "../../../etc/passwd", "dataset": "signals"}'),
    ("storage", '{"file": "/etc/passwd", "dataset": "signals"}'), ("description", "[" * 3000 + "]" * 3000),
    ("provenance", "{"), ("swap", None),
]
CHANNEL_EDITS = [("index", 99), ("index", -1), ("index", "dup"), ("name", None), ("q_scale", float("nan")),
                 ("q_gain", 2e-6), ("recording", 7), ("drop", None)]
TABLE_BYTES_CASES = 40  # resealed byte damage in packed tables per base, whatever the target
STORAGE_PATH_EDITS = ["../outside.bin", "/etc/passwd", "/dev/zero", "signals/../../x", "signals/%2e%2e/x"]


def cases(base: str, store: Path, rng: random.Random, n_target: int) -> list[dict[str, Any]]:
    """The corpus for one base store: every kind, then random truncations/flips up to ``n_target``."""
    files = files_of(store)
    out: list[dict[str, Any]] = []
    add = out.append
    for rel in files + ["eegbench.json"] * 3:
        size = (store / rel).stat().st_size
        for off in sorted({0, 1, size // 2, max(size - 1, 0), max(size - 4, 0), size * 3 // 4}):
            if off < size:
                add({"kind": "truncate", "file": rel, "offset": off})
        for off in sorted({0, size // 3, size // 2, max(size - 1, 0), max(size - 5, 0)}):
            if off < size:
                add({"kind": "flip", "file": rel, "offset": off, "bit": rng.randrange(8)})
        add({"kind": "delete", "file": rel})
        add({"kind": "foreign", "file": rel})
        add({"kind": "symlink", "file": rel})
        add({"kind": "fifo", "file": rel})
    for extra in ("signals/zz.bin", "extra.txt", "tables/evil.parquet", ".hidden"):
        add({"kind": "extra", "file": extra})
    add({"kind": "extra-fifo", "file": "signals/fifo"})
    add({"kind": "extra-devzero", "file": "zero"})
    add({"kind": "symlink-dir", "file": "signals"})
    add({"kind": "swap"})
    add({"kind": "foreign-recording"})  # every file of recording 0 from the other store
    for field, value in HEADER_EDITS:
        for recompute in (False, True):
            add({"kind": "header", "field": field, "value": value, "recompute": recompute})
    for field, value in TABLE_EDITS:
        for recompute in (False, True):
            add({"kind": "table", "field": field, "value": value, "recompute": recompute})
    for field, value in CHANNEL_EDITS:
        for recompute in (False, True):
            add({"kind": "channels", "field": field, "value": value, "recompute": recompute})
    for p in STORAGE_PATH_EDITS:
        for recompute in (False, True):
            add({"kind": "storage-path", "value": p, "recompute": recompute})
    # byte damage inside a packed table with every seal recomputed, so the bytes reach the Parquet
    # reader (a crafted store, not a damaged one): a fixed share per base, and one in five of the
    # random damage below
    packed = sorted(_packed_sizes(store).items())

    def table_bytes() -> None:
        name, size = rng.choice(packed)
        add({"kind": "table-bytes", "table": name, "offset": rng.randrange(size), "bit": rng.randrange(8),
             "truncate": rng.random() < 0.3, "recompute": True})
    for _ in range(TABLE_BYTES_CASES if packed else 0):
        table_bytes()
    # random byte damage up to the target
    weights = [(rel, (store / rel).stat().st_size) for rel in files + ["eegbench.json"]]
    while len(out) < n_target:
        if packed and rng.random() < 0.2:
            table_bytes()
            continue
        rel, size = rng.choice(weights)
        if size == 0:
            continue
        if rng.random() < 0.3:
            add({"kind": "truncate", "file": rel, "offset": rng.randrange(size)})
        else:
            add({"kind": "flip", "file": rel, "offset": rng.randrange(size), "bit": rng.randrange(8)})
    for c in out:
        c["base"] = base
    return out


# ---------------------------------------------------------------------------------------------
# applying a case
# ---------------------------------------------------------------------------------------------
def _rewrite_header(store: Path, mutate: Any, recompute: bool) -> None:
    from eegbench import manifest, validate

    path = store / "eegbench.json"
    header = json.loads(path.read_text())
    mutate(header)
    if recompute:
        header["files"] = manifest.build(store, fsync=False) if isinstance(header.get("files"), dict) \
            else header.get("files")
        header["header_sha256"] = validate.header_digest(header)
    # the writer's own formatting, so an edit that sets a field to its current value is a no-op
    path.write_text(json.dumps(header, indent=1, ensure_ascii=False, sort_keys=True, allow_nan=True),
                    encoding="utf-8")


def _edit_table(store: Path, name: str, edit: Any, recompute: bool) -> None:
    """Edit table ``name`` where open reads it: the slice of ``tables.pack`` (and the per-format
    table file, which other tools read, alike). ``recompute``: reseal everything (tables_sha256,
    the pack's spans, manifest, header digest), so only validation can refuse the edit; otherwise
    the seals are left as they were."""
    from eegbench.tables import frame_from_parquet, frame_to_parquet

    _edit_table_bytes(store, name, lambda data: frame_to_parquet(edit(frame_from_parquet(data))), recompute)


def _packed_sizes(store: Path) -> dict[str, int]:
    """The Parquet size of each table ``tables.pack`` holds (empty without a pack): the bytes a
    ``table-bytes`` case damages (in the format's table file, then packed again)."""
    from eegbench.formats import get_backend

    header = json.loads((store / "eegbench.json").read_text())
    backend = get_backend(header["format"])
    names = [name for name, (_, size) in (header.get("tables_pack") or {}).get("tables", {}).items() if size]
    return {name: len(data) for name in names if (data := backend.read_table(store, name))}


def _edit_table_bytes(store: Path, name: str, edit: Any, recompute: bool) -> None:
    """Replace table ``name``'s Parquet bytes by ``edit(bytes)`` in ``tables.pack`` and the
    per-format table file (see :func:`_edit_table` for ``recompute``)."""
    import hashlib

    from eegbench import pack
    from eegbench.formats import get_backend

    header = json.loads((store / "eegbench.json").read_text())
    backend = get_backend(header["format"])
    spans = pack.entries(header, {k: v["size"] for k, v in header["files"].items()}, store)
    tables = {n: backend.read_table(store, n) for n in pack.TABLE_NAMES}  # the pack is built from them
    data = edit(tables[name])
    backend.write_table(store, name, data)
    tables[name] = data
    if spans is not None:
        blob, entries = pack.build({k: v for k, v in tables.items() if v is not None})
        (store / pack.PACK).write_bytes(blob)
    if recompute:
        def reseal(h: dict[str, Any]) -> None:
            h["tables_sha256"][name] = hashlib.sha256(data).hexdigest()
            if spans is not None:
                h[pack.FIELD] = entries
        _rewrite_header(store, reseal, True)


def _table_edit(field: str, value: Any):
    def edit(frame):
        frame = frame.copy()
        if field == "swap":
            frame.loc[:, "key"] = list(frame["key"])[::-1]
            return frame
        col = frame[field].astype(object)
        col.iloc[0] = value
        frame[field] = col
        return frame
    return edit


def _channel_edit(field: str, value: Any):
    def edit(frame):
        frame = frame.copy()
        if field == "drop":
            return frame.iloc[1:]
        if field == "index" and value == "dup":
            frame.loc[frame.index[1], "index"] = frame["index"].iloc[0]
            return frame
        col = frame[field].astype(object)
        col.iloc[0] = value
        frame[field] = col
        return frame
    return edit


def _storage_path_edit(path: str):
    def edit(frame):
        frame = frame.copy()
        storage = json.loads(frame["storage"].iloc[0])
        for k in ("file", "shard_path", "array"):
            if k in storage:
                storage[k] = path + ("/{shard}" if k == "shard_path" else "")
        if "files" in storage:
            storage["files"] = {k: path for k in storage["files"]}
        col = frame["storage"].astype(object)
        col.iloc[0] = json.dumps(storage)
        frame["storage"] = col
        return frame
    return edit


def apply(case: dict[str, Any], store: Path, foreign: Path) -> None:
    kind, rel = case["kind"], case.get("file")
    path = store / rel if rel else None
    if kind == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(case["offset"])
    elif kind == "flip":
        with open(path, "r+b") as fh:
            fh.seek(case["offset"])
            b = fh.read(1)
            fh.seek(case["offset"])
            fh.write(bytes([b[0] ^ (1 << case["bit"])]))
    elif kind == "delete":
        path.unlink()
    elif kind == "foreign":
        shutil.copyfile(foreign / rel, path)
    elif kind == "symlink":
        outside = store.parent / f"outside-{path.name}"
        shutil.copyfile(path, outside)
        path.unlink()
        path.symlink_to(outside)
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "extra":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PAR1 not really")
    elif kind == "extra-fifo":
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
    elif kind == "extra-devzero":
        path.symlink_to("/dev/zero")
    elif kind == "symlink-dir":
        outside = store.parent / "outside-dir"
        shutil.copytree(path, outside)
        shutil.rmtree(path)
        path.symlink_to(outside)
    elif kind == "foreign-recording":
        for a in sorted(p for p in files_of(store) if "rec-00000" in p):
            shutil.copyfile(foreign / a, store / a)
    elif kind == "swap":
        sig = sorted(p for p in files_of(store) if "rec-00000" in p)
        for a in sig:
            b = a.replace("rec-00000", "rec-00001")
            tmp = store / (a + ".swap")
            os.rename(store / a, tmp)
            os.rename(store / b, store / a)
            os.rename(tmp, store / b)
    elif kind == "header":
        _rewrite_header(store, lambda h: h.__setitem__(case["field"], case["value"]), case["recompute"])
    elif kind == "table":
        _edit_table(store, "recordings", _table_edit(case["field"], case["value"]), case["recompute"])
    elif kind == "table-bytes":
        def damage(data: bytes) -> bytes:
            if case["truncate"]:
                return data[:case["offset"]]
            b = bytearray(data)
            b[case["offset"]] ^= 1 << case["bit"]
            return bytes(b)
        _edit_table_bytes(store, case["table"], damage, case["recompute"])
    elif kind == "channels":
        _edit_table(store, "channels", _channel_edit(case["field"], case["value"]), case["recompute"])
    elif kind == "storage-path":
        (store.parent / "outside.bin").write_bytes(b"\0" * 4096)
        _edit_table(store, "recordings", _storage_path_edit(case["value"]), case["recompute"])
    else:
        raise ValueError(kind)


# ---------------------------------------------------------------------------------------------
# checking a case
# ---------------------------------------------------------------------------------------------
def _same(ds: Dataset, ref: Dataset) -> bool:
    if len(ds) != len(ref):
        return False
    for a, b in zip(ds, ref):
        if (a.n_times, a.n_channels, a.sfreq, a.ch_names, a.ch_types, a.units, a.name, a.first_samp) != \
                (b.n_times, b.n_channels, b.sfreq, b.ch_names, b.ch_types, b.units, b.name, b.first_samp):
            return False
        if a.annotations != b.annotations or a.description != b.description or a.history != b.history:
            return False
        if not np.array_equal(a.get_data().view(np.uint32), b.get_data().view(np.uint32)):
            return False
        # windows and picks through the other read paths
        if not np.array_equal(a.get_windows([0, 123, 350], 200, picks=[3, 1]), b.get_windows([0, 123, 350], 200,
                                                                                                picks=[3, 1])):
            return False
    return ds.attrs == ref.attrs and ds.description.equals(ref.description)


def check(store: Path, ref: Dataset, measure_memory: bool = True) -> dict[str, Any]:
    """Open, read everything, compare; then verify. Returns the outcome record."""
    result: dict[str, Any] = {}
    if measure_memory:
        # tracing stays on for the process's life and only its peak is reset: tracemalloc.stop()
        # frees its tables while a native thread may be inside the allocation hook (pyarrow's pool
        # threads take the GIL to release Python objects after a read returned) -- CPython
        # gh-128679: a SIGSEGV with no Python frame; fixed upstream (python/cpython#128893), not in 3.11
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
    try:
        ds = eegbench.open(store)
        try:
            result["outcome"] = "correct" if _same(ds, ref) else "wrong"
        finally:
            ds.close()
    except EegbenchError as exc:
        result["outcome"], result["error"] = "typed", f"{type(exc).__name__}: {str(exc)[:160]}"
    except BaseException as exc:  # noqa: BLE001 - classifying is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["outcome"], result["error"] = "untyped", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        if measure_memory:
            result["peak_bytes"] = tracemalloc.get_traced_memory()[1] - baseline
    try:
        eegbench.verify(store)
        result["verify"] = 0
    except EegbenchError:
        result["verify"] = 1
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["verify"] = 2
        result["verify_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return result
