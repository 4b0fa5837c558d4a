"""Save and open stores: the format-independent half of every format.

``save`` validates options, plans each recording's :class:`~eegbench.formats.SignalLayout`
(integer counts when the samples provably lie on an ADC grid, float32 otherwise), streams blocks
to the format backend (in parallel with joblib when ``jobs > 1``), writes the metadata tables,
the SHA-256 manifest and the schema version into a temporary sibling directory, and renames it
into place only when everything succeeded. ``open`` reads the header and tables only and builds
lazy recordings whose samples are read on demand.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import atomic as _atomic
from . import manifest as _manifest
from . import pack as _pack
from . import packing as _packing
from . import validate as _validate
from ._frame import Table
from .codecs import DEFAULT, CodecSpec, check_counts_range, check_integer_storage, resolve
from .errors import (
    CorruptStoreError,
    EegbenchError,
    IntegerStorageError,
    MetadataError,
    OptionError,
    StoreChangedError,
    StoreExistsError,
)
from .formats import DEFAULT_FORMAT, FormatBackend, SignalLayout, get_backend, resolve_format  # noqa: F401
from .model import Annotations, Dataset, LazyRecordings, Recording, ViewSource, require_storable_text
from .quantization import Quantization, QuantizationMismatch
from .tables import frame_to_parquet, from_json, to_json

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CHUNK_SECONDS = 1.0
#: a chunk chosen by default (no ``chunk_seconds``) holds at most this many raw bytes (all channels):
#: 1 s unless many channels at a high rate make that bigger (e.g. 384 ch x 30 kHz int16 = 23 MB)
MAX_DEFAULT_CHUNK_BYTES = 4 << 20
_BLOCK_BYTES = 32 << 20  # raw bytes per block streamed to a backend while writing


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------
def chunk_samples_for(sfreq: float, n_times: int, chunk_seconds: float) -> int:
    """Chunk span in samples for ``chunk_seconds`` at ``sfreq`` Hz (at least 1, at most n_times)."""
    return int(min(max(1, round(chunk_seconds * sfreq)), max(n_times, 1)))


def _bounded_chunk(recording: Recording, chunk: int, itemsize: int, bounded: bool) -> int:
    """``chunk`` samples, cut to :data:`MAX_DEFAULT_CHUNK_BYTES` when chosen by default; a chunk the
    user chose that the decoded-chunk cache cannot hold is warned about with the numbers."""
    from .errors import ChunkSizeWarning
    from .formats._chunks import CHUNK_CACHE

    row = max(recording.n_channels * itemsize, 1)
    if bounded and chunk * row > MAX_DEFAULT_CHUNK_BYTES:
        return max(1, MAX_DEFAULT_CHUNK_BYTES // row)
    if chunk * row > CHUNK_CACHE.max_bytes > 0:
        import warnings

        fit = CHUNK_CACHE.max_bytes // row / recording.sfreq
        warnings.warn(ChunkSizeWarning(
            f"{recording.name}: a chunk of {recording.n_channels} channels x {chunk} samples "
            f"({chunk * row / 1e6:.3g} MB) is larger than the decoded-chunk cache ({CHUNK_CACHE.max_bytes / 1e6:.3g} MB, "
            f"EEGBENCH_CHUNK_CACHE_MB): reads decode the whole chunk and only the latest such chunk stays cached; "
            f"use chunk_seconds <= {fit:.3g} or a larger cache"), stacklevel=4)
    return chunk


def plan_layout(recording: Recording, codec: CodecSpec, chunk_seconds: float, integer: bool | str,
                delta: bool | None, backend: FormatBackend, *, bounded: bool = False) -> SignalLayout:
    """Decide how ``recording`` is stored (dtype, chunking, codec, quantization)."""
    # "auto": counts when a codec compresses them (2.7x smaller than float32 on real EEG); an
    # uncompressed store keeps float32 so a read is a plain copy (the np.memmap limit)
    wanted = integer is True or (integer == "auto" and codec.compression != "none")
    q = recording.quantization if wanted else None
    if integer is True and q is None:
        raise IntegerStorageError(f"{recording.name}: integer=True (CLI: --integer yes) but its samples have no "
                                  "known ADC grid (they were not read from an integer file, or were processed); "
                                  "use integer='auto' (CLI: --integer auto)")
    use_delta = bool(delta) and q is not None and codec.compression != "none"
    if codec.integer_only:  # archive codecs: integer counts of a width they hold, before anything is written
        check_integer_storage(replace(codec, delta=use_delta), q.dtype if q is not None else "float32",
                              recording.name)
    chunk = _bounded_chunk(recording, chunk_samples_for(recording.sfreq, recording.n_times, chunk_seconds),
                           np.dtype(q.dtype if q is not None else "float32").itemsize, bounded)
    return SignalLayout(recording.n_channels, recording.n_times, q.dtype if q is not None else "float32",
                        chunk, replace(codec, delta=use_delta), q, ch_names=tuple(recording.ch_names),
                        sfreq=recording.sfreq, units=tuple(recording.units))


def stored_blocks(recording: Recording, layout: SignalLayout):
    """Yield ``(start, block)`` of the stored dtype, each a whole number of chunks.

    In integer mode every block is converted and *verified* (bitwise float32 reconstruction);
    :class:`~eegbench.quantization.QuantizationMismatch` propagates so the caller can fall back.
    """
    row_bytes = layout.n_channels * 4
    block = max(layout.chunk_samples, (_BLOCK_BYTES // row_bytes) // layout.chunk_samples * layout.chunk_samples)
    src, q = recording.source, layout.quantization
    same_grid = q is not None and getattr(src, "read_counts", None) is not None and src.quantization == q
    for start in range(0, layout.n_times, block):
        stop = min(start + block, layout.n_times)
        if q is None:
            yield start, src.read(start, stop, None)
        elif same_grid:
            yield start, np.ascontiguousarray(src.read_counts(start, stop), dtype=q.dtype)
        else:
            yield start, q.to_counts(src.read(start, stop, None))


def _range_checked(blocks, codec: CodecSpec):
    """``blocks``, each checked to fit the archive codec's count width (OpenJPEG truncates silently)."""
    for start, block in blocks:
        check_counts_range(codec, block)
        yield start, block


def _write_recording(format_name: str, root: Path, key: str, recording: Recording,
                     layout: SignalLayout, strict: bool = False) -> tuple[SignalLayout, dict[str, Any]]:
    """Write one recording (runs in joblib workers too). Falls back to float32 off the grid,
    unless ``strict`` (``integer=True``): then an off-grid block is an error."""
    backend = get_backend(format_name)
    try:
        blocks = stored_blocks(recording, layout)
        if layout.codec.integer_only:
            blocks = _range_checked(blocks, layout.codec)
        return layout, backend.write_recording(root, key, blocks, layout)
    except QuantizationMismatch as exc:
        if layout.codec.integer_only:  # no float32 fallback for the archive codecs
            check_integer_storage(layout.codec, "float32", recording.name)
        if strict:
            raise IntegerStorageError(
                f"{recording.name}: integer=True (CLI: --integer yes) but its samples do not reproduce "
                f"bit for bit from {layout.dtype} counts ({exc}); use integer='auto' (CLI: --integer auto) "
                "to store float32 when the grid does not hold") from None
        layout = replace(layout, dtype="float32", quantization=None, codec=replace(layout.codec, delta=False))
        return layout, backend.write_recording(root, key, stored_blocks(recording, layout), layout)


# ---------------------------------------------------------------------------------------------
# metadata tables
# ---------------------------------------------------------------------------------------------
def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _tables(dataset: Dataset, keys: list[str], layouts: list[SignalLayout],
            storages: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    import pandas as pd

    recs, chans, anns, hist = [], [], [], []
    for i, (rec, key, layout, storage) in enumerate(zip(dataset, keys, layouts, storages)):
        recs.append({"key": key, "name": rec.name, "sfreq": rec.sfreq, "n_times": rec.n_times,
                     "n_channels": rec.n_channels, "first_samp": rec.first_samp,
                     "meas_date": _iso(rec.meas_date), "dtype": layout.dtype,
                     "chunk_samples": layout.chunk_samples, "codec": to_json(layout.codec.to_json()),
                     "storage": to_json(storage), "description": to_json(rec.description),
                     "provenance": to_json(rec.provenance)})
        q = layout.quantization
        for c in range(rec.n_channels):
            chans.append({"recording": i, "index": c, "name": rec.ch_names[c], "type": rec.ch_types[c],
                          "unit": rec.units[c],
                          "q_scale": float(q.scale[c]) if q is not None else np.nan,
                          "q_offset": float(q.offset[c]) if q is not None else np.nan,
                          "q_gain": float(q.gain[c]) if q is not None else np.nan})
        a = rec.annotations
        for j in range(len(a)):
            anns.append({"recording": i, "onset": a.onset[j], "duration": a.duration[j],
                         "description": a.description[j], "ch_names": to_json(list(a.ch_names[j]))})
        for step, entry in enumerate(rec.history):
            hist.append({"recording": i, "step": step, "entry": to_json(entry)})
    ann_cols = ["recording", "onset", "duration", "description", "ch_names"]
    tables = {
        "recordings": pd.DataFrame(recs),
        "channels": pd.DataFrame(chans),
        "annotations": pd.DataFrame(anns, columns=ann_cols).astype({"recording": "int64", "onset": "float64",
                                                                     "duration": "float64"}),
        "history": pd.DataFrame(hist, columns=["recording", "step", "entry"]).astype(
            {"recording": "int64", "step": "int64"}),
        "description": dataset.description,
    }
    if dataset.windows is not None:
        tables["windows"] = dataset.windows
    return tables


# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------
def save(dataset: Dataset | Recording, path: str | os.PathLike, format: str | None = None, *,
         compression: str | None = DEFAULT, level: int | None = None, chunk_seconds: float | None = None,
         overwrite: bool = False, integer: bool | str = "auto", delta: bool = False,
         jobs: int = 1, progress: bool = False, client: Any = None,
         storage_options: dict[str, Any] | None = None, pack: bool | str = "auto") -> Path:
    """Store ``dataset`` at ``path`` in ``format`` (``"hdf5"``, ``"zarr"`` or ``"parquet"``).

    Parameters
    ----------
    format
        ``None`` (default): the format the name of ``path`` says (``.zarr``, ``.h5``/``.hdf5``,
        ``.parquet``/``.pq``), else ``DEFAULT_FORMAT`` (zarr). A name that says another format
        than the one given raises :class:`~eegbench.errors.FormatMismatchError`.
    compression, level
        Codec name and level from :mod:`eegbench.codecs`; ``"default"`` (the default) is
        ``blosc-zstd`` level 5; the same meaning in every format. ``None`` or ``"none"`` stores
        raw samples (as ``compression=None`` does in h5py, zarr and pandas).
    chunk_seconds
        Time span of one chunk (all channels), in seconds; default 1.0 s. A random window reads
        only the chunks it overlaps.
    integer
        ``"auto"`` (default): with a codec, store ADC counts + calibration when every sample
        provably lies on the recording's integer grid (EDF/BDF/BrainVision, synthetic, stores),
        verified bit for bit, else float32; with ``compression="none"``, float32 (reads are then
        a plain memory copy). ``False``: always float32. ``True``: counts, or an error.
    delta
        Difference filter before the codec for integer storage: smaller with zstd, gzip and
        blosc-zstd (EEGBCI 3.8x -> 4.1x with blosc-zstd) but *larger* with blosc-lz4 (3.1x ->
        2.5x), and about 2x slower reads; for archives. Zarr and NumPy+Parquet only; not part of
        the Zarr v3 specification (only zarr-python with numcodecs reads such a Zarr store).
    jobs
        Recordings converted in parallel (joblib processes).
    client
        A ``distributed.Client`` (or scheduler address): convert the recordings on that dask
        cluster instead (see :mod:`eegbench.cluster`); workers must see ``path``'s file system.
    overwrite
        Replace an existing eegbench store (anything else at ``path`` is refused with
        :class:`~eegbench.errors.StoreExistsError` and left untouched). The old store stays intact
        until the new one is complete; at every instant ``path`` is the old store or the new one
        (see :mod:`eegbench.atomic`).
    pack
        Store consecutive short recordings that share everything but their length end to end in
        one signal array per pack (see :mod:`eegbench.packing`): ``"auto"`` (default) packs
        recordings under 4 MiB as float32 when at least 256 of them are in the dataset (then the
        fixed cost per file dominates the save); ``True`` packs every recording it can; ``False``
        stores one file (set) per recording. Reads and windows are the same either way.
    storage_options
        For a URL ``path`` (``s3://bucket/ds.zarr``): options of the object store (s3fs:
        ``endpoint_url``, ``key``, ``secret``, ``anon``...). See :mod:`eegbench.remote`.

    The write is atomic: everything goes to a hidden temporary sibling that is renamed into
    place at the end; on any error (or Ctrl-C) it is removed and ``path`` is untouched.
    Returns the store path.
    """
    if isinstance(dataset, Recording):
        dataset = Dataset([dataset])
    dataset.require_nonempty()
    for recording in dataset:  # refused before anything is written
        require_storable_text(recording)
    if isinstance(path, str) and "://" in path:  # object storage: written locally, uploaded header last
        from .remote import save_store

        return save_store(dataset, path, storage_options=storage_options, overwrite=overwrite, format=format,
                          compression=compression, level=level, chunk_seconds=chunk_seconds, integer=integer,
                          delta=delta, jobs=jobs, progress=progress, client=client, pack=pack)
    path = Path(path)
    backend = get_backend(resolve_format(path, format))
    if delta and not backend.supports_delta:
        from .errors import UnsupportedCodecError

        raise UnsupportedCodecError(f"the {backend.name} format cannot store the delta filter portably; "
                                    "use zarr or parquet, or delta=False (CLI: leave out --delta)")
    codec = resolve(compression, level, supported=backend.compressions, format_name=backend.name)
    bounded = chunk_seconds is None  # chosen by us: bounded in bytes (MAX_DEFAULT_CHUNK_BYTES)
    chunk_seconds = DEFAULT_CHUNK_SECONDS if chunk_seconds is None else float(chunk_seconds)
    if not np.isfinite(chunk_seconds) or chunk_seconds <= 0:
        raise OptionError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
    if integer not in (True, False, "auto"):
        raise OptionError(f"integer must be True, False or 'auto', got {integer!r}")
    pack = _packing.resolve(pack)
    _atomic.recover(path)
    if os.path.lexists(path) and not overwrite:
        raise StoreExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    _atomic.check_replaceable(path)
    if not path.parent.is_dir():
        raise OptionError(f"parent folder {path.parent} does not exist; create it first")
    layouts = [plan_layout(r, codec, chunk_seconds, integer, delta, backend, bounded=bounded) for r in dataset]
    keys = [f"rec-{i:05d}" for i in range(len(dataset))]
    units = _packing.plan(dataset, layouts, keys, pack)  # one write per recording, or per pack of them
    unit_keys, unit_recs, unit_layouts = ([u.key for u in units], [u.recording for u in units],
                                          [u.layout for u in units])

    with _atomic.temporary(path) as tmp:
        if client is not None:
            from .cluster import run_writes

            results = run_writes(client, backend.name, tmp, unit_keys, unit_recs, unit_layouts, progress,
                                 strict=integer is True)
        else:
            results = _run_writes(backend.name, tmp, unit_keys, unit_recs, unit_layouts, jobs, progress,
                                  strict=integer is True)
        layouts, storages, packs = _packing.assign(units, results, len(dataset))
        sealed, packed = {}, {}
        try:
            tables = {name: frame_to_parquet(frame)
                      for name, frame in _tables(dataset, keys, layouts, storages).items()}
        except UnicodeEncodeError as exc:  # e.g. a lone surrogate in a user's description table
            raise MetadataError(f"a metadata table holds text with no UTF-8 encoding ({exc}); "
                                "replace it, e.g. text.encode('utf-8', 'replace').decode()") from None
        for name, data in tables.items():
            backend.write_table(tmp, name, data)
            sealed[name] = hashlib.sha256(data).hexdigest()
            packed[name] = data
        backend.finalize(tmp, unit_keys)
        pack_bytes, pack_entry = _pack.build(packed)  # every table in one object: a 1-read/1-request open
        (tmp / _pack.PACK).write_bytes(pack_bytes)
        header = {
            "schema_version": _manifest.SCHEMA_VERSION,
            "format": backend.name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "eegbench_version": _version(),
            "options": {"compression": codec.compression, "level": codec.level,
                        "chunk_seconds": chunk_seconds, "integer": integer, "delta": delta},
            "n_recordings": len(dataset),
            "store_id": uuid.uuid4().hex,
            "tables_sha256": sealed,
            _pack.FIELD: pack_entry,
            "attrs": to_json(dataset.attrs),
            "files": _manifest.build(tmp),
        }
        if packs:  # only then: a store without packs keeps the header it always had
            header[_packing.FIELD] = packs
        _manifest.write_header(tmp, header)
        _atomic.publish(tmp, path, overwrite)
    return path


def _run_writes(format_name: str, root: Path, keys: list[str], dataset: Sequence[Recording],
                layouts: list[SignalLayout], jobs: int, progress: bool,
                strict: bool = False) -> list[tuple[SignalLayout, dict]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(keys), unit="rec", desc=f"writing {format_name}", disable=not progress)
    try:
        if jobs == 1 or len(keys) == 1:
            out = []
            for key, rec, layout in zip(keys, dataset, layouts):
                out.append(_write_recording(format_name, root, key, rec, layout, strict))
                bar.update()
            return out
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=jobs, return_as="generator")
        out = []
        for result in parallel(delayed(_write_recording)(format_name, root, k, r, lay, strict)
                               for k, r, lay in zip(keys, dataset, layouts)):
            out.append(result)
            bar.update()
        return out
    finally:
        bar.close()


def _version() -> str:
    from . import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# open
# ---------------------------------------------------------------------------------------------
def open(path: str | os.PathLike, *, lazy: bool = True, verify: bool = False,  # noqa: A001
         recordings: list[str] | None = None, storage_options: dict[str, Any] | None = None) -> Dataset:
    """Open a store written by :func:`save`, whatever its format (read from ``eegbench.json``).

    Lazy by default: reads the header and metadata tables only and checks them on whole columns
    (an ``lstat`` per metadata file checks its manifest size); recording ``i``'s table rows and files
    (an ``lstat`` each) are checked when it is first built (``dataset[i]``), before any of its
    samples, so a damaged recording is reported then. Samples are read on demand, only the
    chunks a request overlaps. ``lazy=False`` loads every sample into memory. ``verify=True``
    re-hashes every file against the SHA-256 manifest first. ``recordings`` (a list of recording
    keys such as ``"rec-00003"``) opens a partial copy holding only those recordings' files plus
    the metadata (a partial Hub pull): only those files are checked, only those recordings returned.

    ``path`` may be a URL: ``https://host/ds.zarr`` (range requests), ``s3://bucket/ds.zarr``
    (``storage_options`` for s3fs: ``endpoint_url``, ``anon``...), ``hf://datasets/org/name/ds.zarr``;
    the same lazy dataset, reading byte ranges (see :mod:`eegbench.remote`).
    """
    if isinstance(path, str) and "://" in path:
        from .remote import open_store

        return open_store(path, storage_options=storage_options, lazy=lazy, verify=verify)
    root = Path(path)
    _atomic.recover(root)
    _atomic.wait_published(root)
    return _typed(root, _open, root, lazy, verify, recordings)


def _typed(root: Path, fn: Any, *args: Any) -> Any:
    """Run ``fn``; anything untyped that a damaged store provokes becomes a CorruptStoreError."""
    try:
        return fn(*args)
    except EegbenchError:
        raise
    except RecursionError as exc:
        raise CorruptStoreError(f"{root}: a metadata value is nested too deeply ({exc}); the store is damaged — "
                                f"run `eegbench verify {root}`") from None
    except Exception as exc:  # whatever else a damaged store provokes is still a damaged store
        raise CorruptStoreError(f"{root}: cannot open the store ({type(exc).__name__}: {str(exc)[:300]}); "
                                f"run `eegbench verify {root}` and re-convert or re-download it") from exc


def _open(root: Path, lazy: bool, verify: bool, recordings: list[str] | None = None) -> Dataset:
    for _attempt in range(3):  # replaced while we read its metadata: read the new store whole
        before = _folder_id(root)
        dataset = _open_once(root, lazy, verify, recordings)
        if _folder_id(root) == before:
            return dataset
    raise StoreChangedError(f"{root} keeps being replaced while it is opened; try again")


def _folder_id(root: Path) -> tuple[int, int]:
    try:
        st = os.stat(root)
    except OSError:
        return (-1, -1)  # the header read reports what is wrong
    return st.st_dev, st.st_ino


def _open_once(root: Path, lazy: bool, verify: bool, recordings: list[str] | None) -> Dataset:
    header = _manifest.parse(root)
    backend = get_backend(header.format)
    files, tree = header.files, None
    sealed = header.raw.get("tables_sha256")
    if not isinstance(sealed, dict):
        raise _validate.corrupt(root / _manifest.HEADER, "tables_sha256", "missing")
    spans = _pack.entries(header.raw, header.files.sizes(), root / _manifest.HEADER)
    raw: dict[str, Any] | None = None
    if recordings is not None:  # a partial copy: its few files are all checked now
        if spans is not None:  # its recording keys from tables.pack, as a full open (no pyarrow)
            _manifest.check_sizes(root, {_pack.PACK: files[_pack.PACK]})
            raw = _pack.split(_read_pack(root), spans, sealed, root, header.raw)
        files = _partial_manifest(root, backend, files, recordings, None if raw is None else raw.get("recordings"))
        _manifest.check_sizes(root, files)
    else:  # the files outside signals/ now; each recording's files when it is first built
        tree = _validate.LazyTree(root, files)
        tree.check_outside()
    if verify:
        _manifest.verify(root, files)
    if raw is None and spans is not None:  # one read of tables.pack, each table checked against tables_sha256
        raw = _pack.split(_read_pack(root), spans, sealed, root, header.raw)
    elif raw is None:
        raw = {}
        for name in _pack.TABLE_NAMES:
            data = raw[name] = backend.read_table(root, name)
            # every table's bytes are bound to the (digest-sealed) header: a flipped byte, or a table
            # or header taken from another store, is an error in every format
            if (None if data is None else hashlib.sha256(data).hexdigest()) != sealed.get(name):
                raise CorruptStoreError(f"{root}: metadata table {name} does not match the SHA-256 the store "
                                        f"header records for it (modified, corrupted or from another store); "
                                        f"run `eegbench verify {root}`")
    dataset, keys = _open_tables(root, backend, header, raw, tree=tree)
    if recordings is not None and keys:
        position = {k: i for i, k in enumerate(keys)}
        dataset = dataset.take([position[k] for k in recordings])
    if not lazy:
        dataset = Dataset([r.load() for r in dataset], dataset.description, dataset.attrs, dataset.windows)
    return dataset


def _open_tables(root: Path | str, backend: FormatBackend, header: _validate.Header,
                 raw: dict[str, bytes | None], byte_source: Any = None,
                 tree: _validate.LazyTree | None = None) -> tuple[Dataset, list[str]]:
    """The lazy dataset (and its recording keys) from the tables (already SHA-256-checked Parquet
    bytes, or :class:`Table` objects parsed from ``tables.pack``); local and remote stores alike: whole-column checks now, each recording's rows (and,
    with ``tree``, its files) checked when it is first built. ``byte_source``: the remote source
    every recording reads through."""
    tables = {}
    for name in _pack.TABLE_NAMES:
        data = raw.get(name)
        try:  # Parquet bytes (an older pack) parsed with pyarrow into a light table (see eegbench._frame)
            tables[name] = data if data is None or isinstance(data, Table) else \
                Table(data, where=f"{root}: metadata table {name}")
            len(tables[name] or ())
        except Exception as exc:  # a damaged table is a damaged store
            raise CorruptStoreError(f"{root}: cannot read metadata table {name} ({type(exc).__name__}: "
                                    f"{str(exc)[:300]}); run `eegbench verify {root}`") from exc
    builder = _ValidatedBuilder(root, backend.name, tables, header, byte_source, tree)
    built = LazyRecordings(builder.n, builder)
    windows, description = tables["windows"], tables["description"]
    if description is None:
        description = Table(n_rows=len(built))
    elif len(description) != len(built):
        raise CorruptStoreError(f"{root}: the description table has {len(description)} rows for "
                                f"{len(built)} recordings")
    return Dataset(built, description, _validate.cell_json(header.attrs, f"{root}/{_manifest.HEADER}", "attrs"),
                   windows), list(builder.keys)


def _read_pack(root: Path) -> bytes:
    """The bytes of ``tables.pack`` (already checked to be a regular file of its manifest size)."""
    return (root / _pack.PACK).read_bytes()  # a Hub cache snapshot links it to its blob (check_tree allows that)


def _partial_manifest(root: Path, backend: FormatBackend, files: dict[str, Any],
                      keys: list[str], packed: Table | bytes | None = None) -> dict[str, Any]:
    """The manifest entries a partial copy holding only ``keys`` must have (metadata + their files).
    ``packed``: the recordings table from ``tables.pack`` (checked against the header); without it
    the format's own recordings table is read (with pyarrow)."""
    from .layout import files_by_recording

    data = packed if packed is not None else backend.read_table(root, "recordings")
    table = data if data is None or isinstance(data, Table) else Table(data)
    known = [] if table is None else list(table["key"])
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise CorruptStoreError(f"{root}: no recording with key(s) {unknown[:5]} in this store")
    packs = {} if table is None or "storage" not in table.columns else _packing.member_packs(known, table["storage"])
    by_key, meta = files_by_recording(files, known, packs)  # a packed recording needs its pack's files
    wanted = set(meta).union(*(by_key[k] for k in keys))
    return {rel: entry for rel, entry in files.items() if rel in wanted}


class _ValidatedBuilder:
    """Builds recording ``i`` of an opened store on first access.

    At open only whole-column checks run (:func:`eegbench.validate.recording_keys`, the
    ``recording`` columns of the per-recording tables, the channels table's columns; for a local
    store the files that belong to no recording, see :class:`eegbench.validate.LazyTree`).
    Recording ``i``'s rows (recordings, channels, annotations, history), its storage description
    against the manifest and its files (an ``lstat`` each: regular, no symlink, manifest size) are
    checked when it is first built, before any of its samples can be read: a damaged recording
    raises the same :class:`~eegbench.errors.CorruptStoreError` then, and the others still read.
    Picklable (plain data), so lazily-built datasets cross processes."""

    def __init__(self, root: Path | str, backend_name: str, tables: dict[str, Any], header: _validate.Header,
                 byte_source: Any = None, tree: _validate.LazyTree | None = None) -> None:
        self.keys = _validate.recording_keys(tables["recordings"], root, header.n_recordings)
        self.recordings_table = tables["recordings"]  # for info(): no second read or parse
        self.table = _validate.row_source(tables["recordings"])
        n = len(self.keys)
        self.root, self.backend_name, self.files, self.n = root, backend_name, header.files, n
        self.byte_source = byte_source  # a remote store's RemoteSource (None: local files)
        self.pin = _folder_id(root) if byte_source is None else None
        self.tree = tree
        self.packs = _packing.header_packs(header.raw)  # {pack key: entry}; each entry checked on use
        self.pack_sources: dict[str, tuple[SignalLayout, Any]] = {}  # one source per pack, shared by its members
        self.checked_packs: set[str] = set()
        channels = tables["channels"]
        if n and channels is None:
            raise CorruptStoreError(f"{root}: the channels table is missing")
        if n and not channels.empty:
            _validate._columns(channels, f"{root}: table channels", _validate.CHANNEL_COLUMNS)
        self.ch_groups = _validate.Groups(channels, n, root, "channels")
        self.ann_groups = _validate.Groups(tables["annotations"], n, root, "annotations")
        self.hist_groups = _validate.Groups(tables["history"], n, root, "history")
        if tree is not None:  # a pack's files are checked when one of its members is first built
            tree.check_unowned(self.keys + [k for k in self.packs if isinstance(k, str) and _validate.KEY.match(k)])

    def _validated(self, i: int) -> tuple[Any, ...]:
        """Recording ``i``'s rows, parsed and bounded, and its files checked (no sample read)."""
        root = self.root
        row = _validate.parse_recording(self.table, i, root)
        used: list[str] = []
        packed = None
        if _packing.is_member(row.storage):  # its samples are a slice of a pack's array
            pack_key, offset, pack_row = _validate.check_packed(self.backend_name, row, self.packs, self.files,
                                                                root, used)
            storage, packed = pack_row.storage, (pack_key, offset, pack_row.n_times)
        else:
            storage = _validate.check_storage(self.backend_name, row, self.files, root, used)
        owner = row.key if packed is None else packed[0]
        if self.tree is not None and owner not in self.checked_packs:
            try:
                self.tree.check_recording(owner, used)
                if packed is not None:
                    self.checked_packs.add(owner)
            except CorruptStoreError:
                if self.pin is not None and _folder_id(root) not in (self.pin, (-1, -1)):
                    raise StoreChangedError(f"{root} was replaced after it was opened (recording {row.key}); "
                                            "open it again") from None
                raise
        ch = _validate.parse_channels_of(self.ch_groups[i], row, i, root)
        ann = _validate.parse_annotations(self.ann_groups[i], i, root)
        history = _validate.parse_history(self.hist_groups[i], i, root)
        return row, ch, storage, ann, history, packed

    def _source(self, key: str, layout: SignalLayout, storage: dict[str, Any]) -> Any:
        source = get_backend(self.backend_name).open_signals(self.root, key, layout, storage)
        if self.byte_source is not None and hasattr(source, "__dict__"):
            source.__dict__["_bytes"] = self.byte_source  # every read goes through the store's one source
        elif hasattr(source, "check_pin"):
            source.pin = self.pin  # a read after the store was replaced raises StoreChangedError
        return source

    def _pack_source(self, key: str, layout: SignalLayout, storage: dict[str, Any]) -> Any:
        """The one source of pack ``key``; its members must agree on how it is stored."""
        cached = self.pack_sources.get(key)
        if cached is None:
            cached = self.pack_sources[key] = (layout, self._source(key, layout, storage))
        elif cached[0] != layout:
            raise CorruptStoreError(f"{self.root}: the members of {key} disagree on how it is stored (dtype, "
                                    f"chunking, codec or calibration); run `eegbench verify {self.root}`")
        return cached[1]

    def __call__(self, i: int) -> Recording:
        root = self.root
        row, ch, storage, (onset, duration, desc, ch_names), history, packed = _typed(root, self._validated, i)
        q = None if ch.q is None else Quantization(*ch.q, row.dtype)
        layout = SignalLayout(row.n_channels, row.n_times, row.dtype, row.chunk_samples, row.codec, q)
        if packed is None:
            source = self._source(row.key, layout, storage)
        else:  # a window of the pack's source: the member's samples only
            key, offset, pack_n = packed
            pack = _typed(root, self._pack_source, key, replace(layout, n_times=pack_n), storage)
            source = ViewSource(pack, offset, offset + row.n_times, None)
        return Recording(source, row.sfreq, ch.names, ch_types=ch.types, units=ch.units,
                         meas_date=row.meas_date, first_samp=row.first_samp,
                         annotations=Annotations(onset, duration, desc, ch_names),
                         description=row.description, history=history,
                         provenance=row.provenance, name=row.name)


# ---------------------------------------------------------------------------------------------
# info / verify
# ---------------------------------------------------------------------------------------------
def verify(path: str | os.PathLike, *, storage_options: dict[str, Any] | None = None) -> None:
    """Re-hash every file of the store against its SHA-256 manifest, then compare ``tables.pack``
    with the format's own metadata tables; raises :class:`~eegbench.errors.CorruptStoreError`
    naming the first bad file (:class:`~eegbench.errors.PackMismatchError` for a pack that disagrees)."""
    if isinstance(path, str) and "://" in path:
        from .remote import verify_store

        return verify_store(path, storage_options=storage_options)
    root = Path(path)
    _atomic.recover(root)
    header = _manifest.parse(root)
    _manifest.verify(root, header.files)
    # every file matches the manifest; tables.pack (what open reads) must also say what the format's tables say
    _validate.check_pack_tables(root, header.raw, header.files.sizes(), get_backend(header.format))


def _file_layout(files: dict[str, Any], n_recordings: int, header: dict[str, Any] | None = None) -> dict[str, Any]:
    """Signal files per recording, packs (``n_packs`` holding ``packed_recordings``, see
    :mod:`eegbench.packing`) and the fullest folder (the Hub allows 10,000 entries per folder)."""
    from .io.layout import max_folder_entries

    # files of recordings: under signals/<fan>/, not the (zarr) group metadata of a fan folder
    signal_files = sum(1 for rel in files if rel.startswith("signals/") and rel.count("/") >= 2
                       and not (rel.count("/") == 2 and rel.endswith("/zarr.json")))
    folder, entries = max_folder_entries(list(files) + [_manifest.HEADER])
    n_packs, packed = _packing.summary(header or {})
    return {"files_per_recording": signal_files / n_recordings if n_recordings else 0.0,
            "n_packs": n_packs, "packed_recordings": packed,
            "max_folder_entries": entries, "fullest_folder": folder or "."}


def info(path: str | os.PathLike, *, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Summary of a store: format, codec, chunking, recordings, channels, sampling rates, duration,
    size on disk, file count, compression ratio (float32 bytes / bytes on disk), schema version.
    For a URL, also the ``requests`` and ``bytes_received`` it cost (see :func:`eegbench.remote.info_store`)."""
    if isinstance(path, str) and "://" in path:
        from .remote import info_store

        return info_store(path, storage_options=storage_options)
    return _typed(Path(path), _info, Path(path))


def _info(root: Path) -> dict[str, Any]:
    dataset = open(root)
    header = _manifest.read_header(root)
    tables_recs = recordings_table(dataset)
    return summarize(str(root), dataset, header, tables_recs, (root / _manifest.HEADER).stat().st_size)


def recordings_table(dataset: Dataset) -> Table:
    """The recordings table an opened store's ``dataset`` was built from (as read at open)."""
    return dataset.recordings._factory.recordings_table  # type: ignore[union-attr]


def summarize(where: str, dataset: Dataset, header: dict[str, Any], tables_recs: Any,
              header_bytes: int) -> dict[str, Any]:
    """:func:`info`'s summary from an opened ``dataset``, its raw ``header`` dict, its recordings
    table and the header file's size (local and remote stores alike)."""
    files = header.get("files", {})
    size = sum(e["size"] for e in files.values()) + header_bytes
    raw = sum(r.n_channels * r.n_times * 4 for r in dataset)
    codecs = sorted({CodecSpec.from_json(from_json(c)).label for c in tables_recs["codec"]})
    return {
        "path": where,
        "format": header["format"],
        "schema_version": header["schema_version"],
        "eegbench_version": header.get("eegbench_version"),
        "codec": ", ".join(codecs),
        "chunk_seconds": header.get("options", {}).get("chunk_seconds"),
        "chunk_samples": sorted(set(int(c) for c in tables_recs["chunk_samples"])),
        "stored_dtypes": sorted(set(tables_recs["dtype"])),
        "n_recordings": len(dataset),
        "n_channels": sorted({r.n_channels for r in dataset}),
        "sfreq": sorted({r.sfreq for r in dataset}),
        "duration_s": float(sum(r.duration for r in dataset)),
        "n_annotations": int(sum(len(r.annotations) for r in dataset)),
        "n_windows": None if dataset._windows is None else len(dataset._windows),  # no pandas needed
        "heterogeneous": dataset.is_heterogeneous,
        "size_bytes": int(size),
        "n_files": len(files) + 1,
        **_file_layout(files, len(dataset), header),
        "float32_bytes": int(raw),
        "compression_ratio": raw / size if size else float("nan"),
    }
