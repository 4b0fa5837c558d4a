"""NumPy+Parquet format: signals as NumPy files, every metadata table as a Parquet file.

Layout inside a store directory (``eegbench.json`` is written by the core)::

    tables/<name>.parquet          one file per metadata table, the core's Parquet bytes as-is
    signals/<fan>/<key>.npy        compression "none": a standard .npy, (n_channels, n_times), C order,
                                   little-endian stored dtype (float32 volts or int16/int32 ADC counts)
    signals/<fan>/<key>.chunks     compressed: the encoded chunks concatenated, nothing else
    signals/<fan>/<key>.index.parquet  its chunk index, one row per chunk: first_sample, offset, size, crc32c;
                                   the schema metadata ``eegbench`` (JSON) holds shape, dtype, chunk shape, the
                                   codec pipeline as numcodecs configs, channel names, sampling rate and, for
                                   counts with one calibration, CF scale_factor/add_offset

Why these choices:

* Signals are not Parquet: pyarrow cannot read less than a row group (no page-index reads), so a
  2-s window would cost a whole row group (1-3 ms measured). A plain ``.npy`` memory-maps, which is
  the physical limit for warm reads, and any NumPy can open it (``np.load(..., mmap_mode="r")``).
* Compressed signals are chunks of ``n_channels x chunk_samples`` encoded with exactly the numcodecs
  pipeline of :func:`eegbench.codecs.numcodecs_pipeline` (the same bytes Zarr would hold), so a
  window costs one coalesced byte-range read (``pread`` locally) + CRC32C + decode per overlapping
  chunk and nothing else.
* The index is a small Parquet table with labelled columns and the decoding recipe in numcodecs'
  own config form (``numcodecs.get_codec(config)``), so numcodecs + pyarrow alone read a store
  (README: "Reading a store without eegbench"); it is parsed once per recording and process.
* Every chunk carries a CRC32C (checked on every read: ~2 us per 40 KB), so a flipped byte raises
  :class:`~eegbench.errors.CorruptStoreError` instead of returning wrong samples; a truncated file
  is caught by the short read (chunks) or by the size check when the ``.npy`` is mapped.

Reading is lazy: :func:`ParquetBackend.open_signals` does no I/O; bytes come through the store's
:class:`~eegbench.io.ByteSource` (local: the process-wide capped file manager lends a descriptor
or a read-only map per read), the header / chunk index are parsed on the first read in each
process (``_h_*`` attributes, dropped by pickling). Returned arrays are always new arrays, never
views of a map or of the decoded-chunk cache.
"""

from __future__ import annotations

import io
import os
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
from ._chunks import ChunkedSource, resident

STORAGE_VERSION = 1
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
    """Uncompressed recording: slices of a read-only map of ``signals/<key>.npy``, copied.

    The map is lent by the byte source for the duration of one read (local files: the shared
    file manager, so the number of maps stays capped); a source without maps (remote) reads
    each channel's span with one coalesced ``get_ranges``."""

    _h_offset: int = 0  # data offset in the .npy (after its header)
    _h_size: int = 0  # expected file size

    def _store_files(self) -> list[str]:
        return [self._rel("npy")]

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
        except (ValueError, EOFError, SyntaxError) as exc:  # short or damaged header
            raise self.corrupt(f"signal file {rel} is truncated or not a valid .npy", exc) from exc
        expected = np.dtype(self.layout.dtype).newbyteorder("<")
        if dtype != expected or tuple(shape) != (self.n_channels, self.n_times) or fortran:
            raise self.corrupt(f"signal file {rel} holds {dtype} {shape}, "
                               f"expected C-ordered {expected} {(self.n_channels, self.n_times)}")
        nbytes = self.n_channels * self.n_times * expected.itemsize
        if size != offset + nbytes:
            raise self.corrupt(f"signal file {rel} has {size} bytes, expected {offset + nbytes}")
        self._h_offset, self._h_size = offset, size
        crcs = self.storage.get("chunk_crc32c")
        if not isinstance(crcs, list) or len(crcs) != self.layout.n_chunks:
            raise self.corrupt(f"storage info of {rel} lacks its {self.layout.n_chunks} chunk checksums")
        self._h_crcs, self._h_verified = crcs, bytearray(self.layout.n_chunks)

    def _check_chunks(self, arr: np.ndarray, start: int, stop: int) -> None:
        """CRC32C of every chunk of [start, stop), checked once per process (recorded by the writer
        in the storage info, which the header's digest seals): a flipped byte, or a same-size file
        of another recording or store, is an error, never data."""
        cs, done = self.chunk_samples, self._h_verified
        for ci in range(start // cs, (stop - 1) // cs + 1):
            if not done[ci]:
                block = np.ascontiguousarray(arr[:, ci * cs:min((ci + 1) * cs, self.n_times)])
                if google_crc32c.value(block.view(np.uint8).reshape(-1)) != self._h_crcs[ci]:
                    raise self.corrupt(f"chunk {ci} of {self._rel('npy')} fails its CRC32C check "
                                       "(modified, corrupted, or a file of another recording or store)")
                done[ci] = 1

    def _with_window(self, start: int, stop: int, channels: np.ndarray | None, fn, prefetch: Any = True,
                     check: bool = True):
        """``fn(arr, base)`` where ``arr[:, t - base]`` is sample ``t`` for ``t`` in [start, stop):
        a view of the pinned map (``fn`` must copy what it returns), or fetched rows. ``prefetch``:
        True (the window), False, or the ``(start, stop)`` spans ``fn`` will read."""
        with self._lock:
            self._ensure_ready()
        rel = self._rel("npy")
        mapped = getattr(self.bytes, "mapped", None)
        try:
            if mapped is None:
                return fn(self._fetch(start, stop), start)
            with mapped(rel) as mm:
                if mm.size() != self._h_size:  # truncated or replaced while open: no SIGBUS
                    raise self.corrupt(f"signal file {rel} changed size while open (truncated or replaced)")
                arr = np.ndarray((self.n_channels, self.n_times), dtype=self.dtype, buffer=mm, offset=self._h_offset)
                try:
                    for a, b in ([(start, stop)] if prefetch is True else prefetch or ()):
                        self._prefetch(mm, a, b, channels)
                    if check:
                        self._check_chunks(arr, start, stop)
                    return fn(arr, 0)
                finally:
                    del arr  # no view of the map may outlive the loan
        except Exception as exc:
            err = self._wrap(exc, f"[{start}, {stop})")
            if err is exc:
                raise
            raise err from exc

    def _fetch(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of every channel from a source without maps: one range per row."""
        isz, rel = self.dtype.itemsize, self._rel("npy")
        row = self.n_times * isz
        ranges = [(self._h_offset + c * row + start * isz, self._h_offset + c * row + stop * isz)
                  for c in range(self.n_channels)]
        out = np.empty((self.n_channels, stop - start), dtype=self.dtype)
        for c, data in enumerate(self.bytes.get_ranges(rel, ranges)):
            if len(data) != ranges[c][1] - ranges[c][0]:
                raise self.corrupt(f"signal file {rel} is truncated (row {c})")
            out[c] = np.frombuffer(data, dtype=self.dtype)
        return out

    def _load_chunk(self, index: int) -> np.ndarray:
        cs = self.chunk_samples
        return self.read_counts(index * cs, min((index + 1) * cs, self.n_times))

    def read_counts(self, start: int, stop: int) -> np.ndarray:
        return self._with_window(start, stop, None, lambda arr, base: np.array(arr[:, start - base:stop - base]))

    #: requests of at least this many bytes per channel ask the kernel to read each channel's span
    #: in one go (random-access mode would otherwise fault it in page by page); smaller ones do so
    #: when the span is not in the page cache (``mincore`` of one row's span)
    PREFETCH_BYTES = 16 << 10

    def _prefetch(self, mm: Any, start: int, stop: int, channels: np.ndarray | None) -> None:
        cs = self.chunk_samples
        if 0 in self._h_verified[start // cs:(stop - 1) // cs + 1]:
            # the first read of a chunk checks its CRC32C over every row of the whole chunk
            start, stop, channels = start - start % cs, min(self.n_times, ((stop - 1) // cs + 1) * cs), None
        itemsize = self.dtype.itemsize
        span = (stop - start) * itemsize
        row_bytes = self.n_times * itemsize
        if span < self.PREFETCH_BYTES:
            first = self._h_offset + (0 if channels is None else int(channels[0])) * row_bytes + start * itemsize
            if resident(mm, first, first + span):
                return  # warm (judged by one row): no syscall per row
        import mmap

        if not hasattr(mmap, "MADV_WILLNEED"):
            return
        # one request per row, all queued before the copy waits on any of them (a cold channel-major
        # window is a few KiB in each of n_channels places; faulting them one by one took 20-50 ms)
        for row in range(self.n_channels) if channels is None else np.unique(channels).tolist():
            first = self._h_offset + int(row) * row_bytes + start * itemsize
            aligned = first - first % mmap.PAGESIZE
            mm.madvise(mmap.MADV_WILLNEED, aligned, first + span - aligned)

    def read(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
        out = self._out(stop - start, channels, out)
        if stop <= start:
            return out

        def take(arr: np.ndarray, base: int) -> np.ndarray:
            # one copy (or the fused calibration) straight out of the page cache into ``out``
            self._emit(arr, start - base, stop - base, channels, out, 0)
            return out

        return self._with_window(start, stop, channels, take)

    def read_batch(self, starts: np.ndarray, length: int, channels: np.ndarray | None,
                   out: np.ndarray | None = None) -> np.ndarray:
        self.ready()
        starts = np.asarray(starts, dtype=np.int64)
        shape = (len(starts), self.n_channels if channels is None else len(channels), length)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
        if not len(starts) or length <= 0:
            return out
        if getattr(self.bytes, "mapped", None) is None:  # remote: one fetch per window
            for i, s in enumerate(starts.tolist()):
                self.read(s, s + length, channels, out=out[i])
            return out

        def fill(arr: np.ndarray, base: int) -> np.ndarray:
            for s in starts.tolist():
                self._check_chunks(arr, s, s + length)
            for i, s in enumerate(starts.tolist()):
                self._emit(arr, s - base, s - base + length, channels, out[i], 0)
            return out

        spans = [(s, s + length) for s in starts.tolist()]  # cold rows of every window queued first
        return self._with_window(int(starts.min()), int(starts.max()) + length, channels, fill, prefetch=spans,
                                 check=False)


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
def _pwrite_all(fd: int, data: Any, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


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


def _write_npy(path: Path, blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout,
               dtype: np.dtype) -> list[int]:
    """A standard .npy written block by block: each block's channel rows land at their offsets.
    Returns the CRC32C of every chunk's samples (all channels, C order)."""
    crcs: list[int] = []
    shape = (layout.n_channels, layout.n_times)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
        header = fh.tell()
        fh.flush()
        fd = fh.fileno()
        row_bytes = layout.n_times * dtype.itemsize
        os.ftruncate(fd, header + layout.n_channels * row_bytes)
        for start, block in _blocks_checked(blocks, layout, dtype):
            for c in range(layout.n_channels):
                _pwrite_all(fd, block[c], header + c * row_bytes + start * dtype.itemsize)
            for a in range(0, block.shape[1], layout.chunk_samples):
                chunk = np.ascontiguousarray(block[:, a:a + layout.chunk_samples])
                crcs.append(google_crc32c.value(chunk.view(np.uint8).reshape(-1)))
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
        storage: dict[str, Any] = {"version": STORAGE_VERSION, "kind": "npy" if "npy" in files else "chunks",
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
        if (not isinstance(key, str) or not _NAME.match(key) or storage.get("version") != STORAGE_VERSION
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
