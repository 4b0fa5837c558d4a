"""NumPy+Parquet format: signals as NumPy files, every metadata table as a Parquet file.

Layout inside a store directory (``eegbench.json`` is written by the core)::

    tables/<name>.parquet          one file per metadata table, the core's Parquet bytes as-is
    signals/<fan>/<key>.npy        compression "none": a standard .npy of shape (n_chunks, n_channels,
                                   chunk_samples), C order, the last block zero-padded, little-endian
                                   stored dtype (float32 volts or int16/int32 ADC counts); the recording
                                   as (n_channels, n_times) is
                                   ``a.transpose(1, 0, 2).reshape(n_channels, -1)[:, :n_times]``
    signals/<fan>/<key>.chunks     compressed: the encoded chunks concatenated, nothing else
    signals/<fan>/<key>.index.parquet  its chunk index, one row per chunk: first_sample, offset, size, crc32c;
                                   the schema metadata ``eegbench`` (JSON) holds shape, dtype, chunk shape, the
                                   codec pipeline as numcodecs configs, channel names, sampling rate and, for
                                   counts with one calibration, CF scale_factor/add_offset

Why these choices:

* Signals are not Parquet: pyarrow cannot read less than a row group (no page-index reads), so a
  2-s window would cost a whole row group (1-3 ms measured). A plain ``.npy`` memory-maps, which is
  the physical limit for warm reads, and any NumPy can open it (``np.load(..., mmap_mode="r")``).
* The uncompressed ``.npy`` is blocked by chunk (the chunk grid of every other layout): a window's
  chunks are one contiguous byte range (one ``pread`` when evicted, one range request remotely),
  where a channel-major ``(n_channels, n_times)`` array scattered it over one segment per channel
  (64-129 requests per remote window; 4-5x an O_DIRECT read of the same bytes when evicted). A
  time-major array would be contiguous too but make every warm read a transposing copy (~3.5x).
* Compressed signals are chunks of ``n_channels x chunk_samples`` encoded with exactly the numcodecs
  pipeline of :func:`eegbench.codecs.numcodecs_pipeline` (the same bytes Zarr would hold), so a
  window costs one coalesced byte-range read (``pread`` locally) + CRC32C + decode per overlapping
  chunk and nothing else.
* The index is a small Parquet table with labelled columns and the decoding recipe in numcodecs'
  own config form (``numcodecs.get_codec(config)``), so numcodecs + pyarrow alone read a store
  (README: "Reading a store without eegbench"); it is parsed once per recording and process.
* Every chunk carries a CRC32C (checked on every read: ~2 us per 40 KB), so a flipped byte raises
  :class:`~eegbench.errors.CorruptStoreError` instead of returning wrong samples; a truncated file
  is caught by the short read or by the size check when the ``.npy`` is mapped. Uncompressed blocks
  carry their CRC32C in the sealed storage info (``chunk_crc32c``), checked once per process.

Reading is lazy: :func:`ParquetBackend.open_signals` does no I/O; bytes come through the store's
:class:`~eegbench.io.ByteSource` (local: the process-wide capped file manager lends a descriptor
or a read-only map per read), the header / chunk index are parsed on the first read in each
process (``_h_*`` attributes, dropped by pickling). Returned arrays are always new arrays, never
views of a map or of the decoded-chunk cache.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import google_crc32c
import numpy as np

from ..codecs import decode_chunk, encode_chunk, load_numcodecs, numcodecs_pipeline, undelta
from ..errors import CorruptStoreError
from ..io.layout import fanout
from ..manifest import HashingWriter, write_file
from . import SignalLayout, register
from ._cf import CHANNEL_DIM, TIME_DIM, cf_exact, cf_scale_offset, signal_attributes
from ._chunks import ChunkedSource

STORAGE_VERSION = 1  # storage info of compressed recordings (chunk file + index)
#: storage info of uncompressed recordings: 2 = the chunk-blocked .npy (1 was a channel-major
#: ``(n_channels, n_times)`` .npy, no longer read: a window was one scattered segment per channel)
NPY_STORAGE_VERSION = 2
SIGNALS_DIR = "signals"
TABLES_DIR = "tables"
# keys and table names become file names: no separators, no dots (``<key>.index.parquet`` stays unambiguous)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_' and '-' only")
    return name


def _paths(root: Path, key: str) -> dict[str, Path]:
    """The files of recording ``key``, under ``signals/<fan>/`` (:mod:`eegbench.io.layout`)."""
    base = Path(root) / SIGNALS_DIR / fanout(key)
    return {"npy": base / f"{key}.npy", "chunks": base / f"{key}.chunks", "index": base / f"{key}.index.parquet"}


# ---------------------------------------------------------------------------------------------
# fast exact kernels (hot path)
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# lazy sources
# ---------------------------------------------------------------------------------------------
class _Source(ChunkedSource):
    """Shared conversion of stored samples to float32 (always a new array)."""


    def __init__(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any],
                 files: dict[str, Path]) -> None:
        super().__init__(root, key, layout, storage)
        self._files = files

    def _rel(self, kind: str) -> str:
        return self._files[kind].relative_to(self.root).as_posix()


class NpySource(_Source):
    """Uncompressed recording: a chunk-blocked standard ``.npy`` of shape ``(n_chunks, n_channels,
    chunk_samples)``, C order, the last block zero-padded -- the chunk grid of the compressed stores
    (and of HDF5/Zarr ``none``), so a window's chunks are one contiguous byte range: one ``pread``
    when evicted, one range request remotely. Every block carries a CRC32C (``chunk_crc32c`` in the
    sealed storage info, over the whole padded block), checked on its first read in each process.

    Local reads copy straight out of a read-only map lent by the byte source
    (:meth:`ChunkedSource._read_mapped`, as HDF5/Zarr ``none``); a source without maps (remote)
    fetches the blocks of a read with one coalesced ``get_ranges``."""

    _h_offset: int = 0  # data offset in the .npy (after its header)
    _h_size: int = 0  # expected file size

    def _store_files(self) -> list[str]:
        return [self._rel("npy")]

    @property
    def _block_bytes(self) -> int:
        return self.n_channels * self.chunk_samples * self.dtype.itemsize

    def _prepare(self) -> None:
        rel = self._rel("npy")
        try:
            size = self.bytes.size(rel)
            head = bytes(self.bytes.get(rel, 0, min(size, 4096)))
            if len(head) >= 10 and head[6] == 1:
                need = 10 + int.from_bytes(head[8:10], "little")
            elif len(head) >= 12:
                need = 12 + int.from_bytes(head[8:12], "little")
            else:
                need = 0
            if need > 1 << 16:
                raise ValueError(f"header length {need} is larger than any eegbench writes")
            if need > len(head):
                head = bytes(self.bytes.get(rel, 0, min(size, need)))
            fh = io.BytesIO(head)
            version = np.lib.format.read_magic(fh)
            reader = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if reader is None:
                raise ValueError(f".npy format version {version} is not one eegbench writes")
            shape, fortran, dtype = reader(fh)
            offset = fh.tell()
        except FileNotFoundError as exc:
            raise self.corrupt(f"signal file {rel} is missing", exc) from exc
        except (ValueError, EOFError, SyntaxError, TypeError) as exc:  # short or damaged header
            raise self.corrupt(f"signal file {rel} is truncated or not a valid .npy", exc) from exc
        expected = np.dtype(self.layout.dtype).newbyteorder("<")
        want = block_shape(self.layout)
        if dtype != expected or tuple(shape) != want or fortran:
            raise self.corrupt(f"signal file {rel} holds {dtype} {shape}, expected C-ordered {expected} {want} "
                               "(chunks x channels x samples)")
        nbytes = self.layout.n_chunks * self._block_bytes
        if size != offset + nbytes:
            raise self.corrupt(f"signal file {rel} has {size} bytes, expected {offset + nbytes} (truncated or "
                               "extended)")
        self._h_offset, self._h_size, self._h_rel, self._h_block = offset, size, rel, self._block_bytes
        crcs = self.storage.get("chunk_crc32c")
        if not isinstance(crcs, list) or len(crcs) != self.layout.n_chunks:
            raise self.corrupt(f"storage info of {rel} lacks its {self.layout.n_chunks} chunk checksums")
        self._h_crcs = crcs

    def _raw_chunk_at(self, index: int) -> tuple[str, int, int, int | None]:
        full = self._h_block  # per warm read, per chunk: plain attributes only
        off = self._h_offset + index * full
        return self._h_rel, off, off + full, self._h_crcs[index]

    def _load_chunk(self, index: int) -> np.ndarray:
        return self._load_chunks([index])[0]

    def _load_chunks(self, indices: list[int]) -> list[np.ndarray]:
        """Blocks ``indices`` (sorted): adjacent ones in one coalesced read, each CRC32C-checked."""
        rel, full, cs = self._rel("npy"), self._block_bytes, self.chunk_samples
        offs = [self._h_offset + i * full for i in indices]
        out = []
        for i, off, data in zip(indices, offs, self.bytes.get_ranges(rel, [(o, o + full) for o in offs])):
            raw = self.check_bytes(data, full, self._h_crcs[i], rel, i, off)
            arr = raw.view(self.dtype).reshape(self.n_channels, cs)
            n = min(cs, self.n_times - i * cs)
            if n < cs:  # the last block is zero-padded: keep the recording's samples
                arr = np.ascontiguousarray(arr[:, :n])
            arr.flags.writeable = False  # cached and shared: nobody may modify it
            out.append(arr)
        return out


class ChunkFileSource(_Source):
    """Compressed recording: chunks fetched through the byte source, CRC32C-checked, then decoded."""

    def _store_files(self) -> list[str]:
        return [self._rel("chunks"), self._rel("index")]

    def _prepare(self) -> None:
        rel_index, rel_chunks = self._rel("index"), self._rel("chunks")
        try:
            raw = bytes(self.bytes.get(rel_index, 0, self.bytes.size(rel_index)))
            bound = self.storage.get("index_crc32c")
            # the index holds every chunk's CRC32C, so its own CRC32C, sealed in the store's tables,
            # binds both files of the recording to it: a pair swapped with another recording's or
            # copied from another store is refused here, once per process
            if bound is not None and google_crc32c.value(raw) != bound:
                raise self.corrupt(f"chunk index {rel_index} does not belong to this recording of this store: it "
                                   "differs from the one sealed in the store's tables (damaged, swapped with another "
                                   "recording's, or copied from another store)")
            index = read_chunk_index(raw)
        except FileNotFoundError as exc:
            raise self.corrupt(f"chunk index {rel_index} is missing", exc) from exc
        except CorruptStoreError:
            raise
        except Exception as exc:  # pyarrow's errors on a damaged file, missing columns
            raise self.corrupt(f"chunk index {rel_index} is truncated or not a valid chunk index table", exc) from exc
        n = self.layout.n_chunks
        first = np.arange(n, dtype=np.int64) * self.chunk_samples
        if index.shape != (n, 4) or (n and (index.min() < 0)) or not np.array_equal(index[:, 3], first):
            raise self.corrupt(f"chunk index {rel_index} holds {index.shape} rows x columns, expected {n} chunks "
                               "starting every chunk_samples")
        try:
            size = self.bytes.size(rel_chunks)
        except FileNotFoundError as exc:
            raise self.corrupt(f"chunk file {rel_chunks} is missing", exc) from exc
        beyond = np.flatnonzero(index[:, 0] + index[:, 1] > size)
        if beyond.size:  # truncated file (or damaged index): refuse before allocating absurd reads
            raise self.corrupt(f"chunk {int(beyond[0])} lies beyond the end of {rel_chunks} ({size} bytes): "
                               "the file is truncated")
        # plain Python ints: the per-chunk lookups below are list indexing, not NumPy scalars
        self._h_offsets, self._h_nbytes, self._h_crcs = (index[:, j].tolist() for j in range(3))
        self._h_chunks_rel = rel_chunks  # per read: _rel() costs ~4 us (Path arithmetic)
        self._h_pipeline = numcodecs_pipeline(self.layout.codec, self.dtype)
        self._h_delta = bool(self._h_pipeline) and isinstance(self._h_pipeline[0], load_numcodecs().Delta)
        if self._h_delta:  # undone by _undelta (same result, 4x faster)
            self._h_pipeline = self._h_pipeline[1:]

    def _load_chunks(self, indices: list[int]) -> list[np.ndarray]:
        if len(indices) == 1:
            return [self._load_chunk(indices[0])]
        rel = self._rel("chunks")
        ranges = [(self._h_offsets[i], self._h_offsets[i] + self._h_nbytes[i]) for i in indices]
        return [self._decode(self.check_bytes(d, self._h_nbytes[i], self._h_crcs[i], rel, i, self._h_offsets[i]), i)
                for d, i in zip(self.bytes.get_ranges(rel, ranges), indices)]

    def _stored_chunk_at(self, index: int) -> tuple[str, int, int, int | None]:
        offset = self._h_offsets[index]
        return self._h_chunks_rel, offset, offset + self._h_nbytes[index], self._h_crcs[index]

    def _decode_stored_bytes(self, index: int, data: np.ndarray) -> np.ndarray:
        return self._decode(data, index)

    def _blosc_span(self, index: int, spot: tuple[str, int, int, int | None]) -> tuple[int, int] | None:
        # a Blosc pipeline alone (no delta, no other codec): the stored chunk is the frame
        pipeline = self._h_pipeline
        if self._h_delta or len(pipeline) != 1 or type(pipeline[0]).__name__ != "Blosc" or self.dtype.byteorder == ">":
            return None
        return spot[1], spot[2]

    def _load_chunk(self, index: int) -> np.ndarray:
        offset, nbytes, crc = self._h_offsets[index], self._h_nbytes[index], self._h_crcs[index]
        return self._decode(self.fetch_checked(self._rel("chunks"), offset, nbytes, crc, index), index)

    def _decode(self, data: Any, index: int) -> np.ndarray:
        cs = self.chunk_samples
        shape = (self.n_channels, min(cs, self.n_times - index * cs))
        arr = decode_chunk(data, self._h_pipeline, self.dtype, shape)
        if self._h_delta:
            arr = undelta(arr)
        arr.flags.writeable = False  # cached and shared: nobody may modify it
        return arr


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _blocks_checked(blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout, dtype: np.dtype):
    """Yield contiguous stored-dtype blocks, checking they tile ``[0, n_times)`` in order."""
    pos = 0
    for start, block in blocks:
        block = np.asarray(block)
        if block.dtype != dtype:
            if not np.can_cast(block.dtype, dtype, casting="equiv"):
                raise TypeError(f"block at sample {start} has dtype {block.dtype}, the layout stores {dtype}")
        block = np.ascontiguousarray(block, dtype=dtype)
        if block.ndim != 2 or block.shape[0] != layout.n_channels:
            raise ValueError(f"block at sample {start} has shape {block.shape}, expected ({layout.n_channels}, n)")
        if int(start) != pos or pos + block.shape[1] > layout.n_times:
            raise ValueError(f"block [{start}, {int(start) + block.shape[1]}) does not continue at sample {pos} "
                             f"within 0..{layout.n_times}")
        if pos % layout.chunk_samples:
            raise ValueError(f"only the last block may end inside a chunk (a block ended at sample {pos})")
        yield pos, block
        pos += block.shape[1]
    if pos != layout.n_times:
        raise ValueError(f"blocks cover {pos} samples, the layout has {layout.n_times}")


def block_shape(layout: SignalLayout) -> tuple[int, int, int]:
    """Shape of an uncompressed recording's ``.npy``: ``(n_chunks, n_channels, chunk_samples)``."""
    return (layout.n_chunks, layout.n_channels, layout.chunk_samples)


def _write_npy(path: Path, blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout,
               dtype: np.dtype) -> list[int]:
    """A standard chunk-blocked .npy (:func:`block_shape`, C order), written front to back and hashed
    as it goes; the last block is zero-padded to ``chunk_samples``. Returns the CRC32C of every
    block's stored bytes (padding included)."""
    crcs: list[int] = []
    cs = layout.chunk_samples
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": block_shape(layout)})
    fh = HashingWriter(path)  # hashed while written: the manifest does not read it back
    try:
        fh.write(head.getvalue())
        for _start, block in _blocks_checked(blocks, layout, dtype):
            for a in range(0, block.shape[1], cs):
                chunk = block[:, a:a + cs]
                if chunk.shape[1] < cs:
                    chunk = np.pad(chunk, ((0, 0), (0, cs - chunk.shape[1])))
                data = np.ascontiguousarray(chunk).view(np.uint8).reshape(-1)
                fh.write(data)
                crcs.append(google_crc32c.value(data))
    except BaseException:
        fh.abort()
        raise
    fh.close()
    return crcs


INDEX_COLUMNS = ("offset", "size", "crc32c", "first_sample")


def read_chunk_index(data: bytes) -> np.ndarray:
    """(n_chunks, 4) int64 of :data:`INDEX_COLUMNS` from an index table's Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ParquetFile on a buffer, one thread, uncompressed pages: ~0.1 ms (pq.read_table: ~1 ms)
    table = pq.ParquetFile(pa.BufferReader(data)).read(columns=list(INDEX_COLUMNS), use_threads=False)
    return np.stack([table.column(c).to_numpy().astype(np.int64, copy=False) for c in INDEX_COLUMNS], axis=1) \
        if table.num_rows else np.zeros((0, 4), dtype=np.int64)


def _index_metadata(layout: SignalLayout, dtype: np.dtype, pipeline: list[Any], chunks_file: str,
                    cf: tuple[float, float] | None) -> dict[str, Any]:
    """Everything a reader needs besides numcodecs and pyarrow, as JSON (the index's schema metadata)."""
    meta: dict[str, Any] = {
        "chunks_file": chunks_file,
        "shape": [layout.n_channels, layout.n_times],
        "dimension_names": [CHANNEL_DIM, TIME_DIM],
        "dtype": dtype.str,
        "order": "C",
        "chunk_shape": [layout.n_channels, layout.chunk_samples],
        "codecs": [c.get_config() for c in pipeline],
        "checksum": "crc32c (Castagnoli) of the stored bytes of each chunk",
        "decode": "chunk i = chunks_file[offset:offset+size]; apply numcodecs.get_codec(c).decode for c in "
                  "reversed(codecs); np.frombuffer(..., dtype).reshape(n_channels, -1): samples "
                  "[first_sample, first_sample + that many); the last chunk may be shorter",
    }
    if layout.ch_names:
        meta["channel_names"] = list(layout.ch_names)
    if layout.sfreq:
        meta["sampling_rate_hz"] = float(layout.sfreq)
    meta.update({k: v for k, v in signal_attributes(layout, cf).items() if k != "long_name"})
    return meta


def _write_chunks(paths: dict[str, Path], blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout,
                  dtype: np.dtype) -> int:
    """Write the chunk file and its index; returns the CRC32C of the index file's bytes."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    pipeline = numcodecs_pipeline(layout.codec, dtype)
    cs = layout.chunk_samples
    index = np.zeros((layout.n_chunks, 3), dtype=np.int64)
    cf = cf_scale_offset(layout.quantization)
    n, offset = 0, 0
    fh = HashingWriter(paths["chunks"])  # hashed while written: the manifest does not read it back
    try:
        for _start, block in _blocks_checked(blocks, layout, dtype):
            if cf is not None and not cf_exact(layout.quantization, cf, block):
                cf = None  # int32 counts this pair does not reproduce: no CF claim
            for a in range(0, block.shape[1], cs):
                data = encode_chunk(block[:, a:a + cs], pipeline)
                fh.write(data)
                index[n] = (offset, len(data), google_crc32c.value(data))
                offset += len(data)
                n += 1
    except BaseException:
        fh.abort()
        raise
    fh.close()
    meta = _index_metadata(layout, dtype, pipeline, paths["chunks"].name, cf)
    table = pa.table({"offset": index[:, 0], "size": index[:, 1], "crc32c": index[:, 2].astype(np.uint32),
                      "first_sample": np.arange(layout.n_chunks, dtype=np.int64) * cs})
    table = table.replace_schema_metadata({"eegbench": json.dumps(meta)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="none")  # tiny; uncompressed pages parse fastest
    data = sink.getvalue()
    write_file(paths["index"], data)
    return google_crc32c.value(data.to_pybytes())


# ---------------------------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------------------------
class ParquetBackend:
    """NumPy signals (memmap-able ``.npy`` or CRC-checked chunk files) + Parquet tables."""

    name: ClassVar[str] = "parquet"
    compressions: ClassVar[frozenset[str]] = frozenset({"none", "zstd", "blosc-zstd", "blosc-lz4", "gzip",
                                                        "jpegls", "jpeg2k", "jpegxl", "htj2k"})
    supports_delta: ClassVar[bool] = True

    def write_recording(self, root: Path, key: str, blocks: Iterable[tuple[int, np.ndarray]],
                        layout: SignalLayout) -> dict[str, Any]:
        _check_name(key, "recording key")
        root = Path(root)
        paths = _paths(root, key)
        paths["npy"].parent.mkdir(parents=True, exist_ok=True)  # exist_ok: parallel writers race here
        for path in paths.values():
            path.unlink(missing_ok=True)
        dtype = np.dtype(layout.dtype).newbyteorder("<")
        if layout.codec.compression == "none":
            crcs = _write_npy(paths["npy"], blocks, layout, dtype)
            files = {"npy": paths["npy"]}
        else:
            index_crc = _write_chunks(paths, blocks, layout, dtype)
            files = {"chunks": paths["chunks"], "index": paths["index"]}
        storage: dict[str, Any] = {"version": NPY_STORAGE_VERSION if "npy" in files else STORAGE_VERSION,
                                   "kind": "npy" if "npy" in files else "chunks",
                                   "files": {k: p.relative_to(root).as_posix() for k, p in files.items()}}
        if "chunks" in files:
            storage["checksum"] = "crc32c"
            storage["index_crc32c"] = index_crc
        else:
            storage["chunk_crc32c"] = crcs
        return storage

    def write_table(self, root: Path, name: str, data: bytes) -> None:
        path = Path(root) / TABLES_DIR / f"{_check_name(name, 'table name')}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read_table(self, root: Path, name: str) -> bytes | None:
        try:
            return (Path(root) / TABLES_DIR / f"{_check_name(name, 'table name')}.parquet").read_bytes()
        except FileNotFoundError:
            return None

    def finalize(self, root: Path, keys: list[str]) -> None:
        """Nothing to consolidate: every file is complete when written."""

    def open_signals(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> ChunkedSource:
        root = Path(root)
        kind = storage.get("kind")
        if kind == "npy" and storage.get("version") == 1:
            raise CorruptStoreError(f"{root}: recording {key!r}: an uncompressed recording written by an earlier "
                                    "eegbench (channel-major .npy), which this version no longer reads; re-convert "
                                    "the store")
        version = NPY_STORAGE_VERSION if kind == "npy" else STORAGE_VERSION
        if (not isinstance(key, str) or not _NAME.match(key) or storage.get("version") != version
                or kind not in ("npy", "chunks") or layout.codec.compression not in self.compressions
                or (kind == "npy") != (layout.codec.compression == "none")):
            raise CorruptStoreError(f"{root}: recording {key!r}: storage info {storage!r} is not a NumPy+Parquet "
                                    f"layout this version reads; run `eegbench verify {root}` or re-convert the store")
        # file names are derived from the validated key, never taken from the table (no path traversal)
        listed = storage.get("files", {})
        files = {k: p for k, p in _paths(root, key).items() if k in listed}
        if set(files) != ({"npy"} if kind == "npy" else {"chunks", "index"}):
            raise CorruptStoreError(f"{root}: recording {key!r}: storage info lists files {storage.get('files')!r}")
        cls = NpySource if kind == "npy" else ChunkFileSource
        return cls(root, key, layout, storage, files)


register(ParquetBackend())
