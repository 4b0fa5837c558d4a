"""NumPy+Parquet format: signals as NumPy files, every metadata table as a Parquet file.

Layout inside a store directory (``eegbench.json`` is written by the core)::

    tables/<name>.parquet          one file per metadata table, the core's Parquet bytes as-is
    signals/<key>.npy              compression "none": a standard .npy, (n_channels, n_times), C order,
                                   little-endian stored dtype (float32 volts or int16/int32 ADC counts)
    signals/<key>.chunks           compressed: the encoded chunks concatenated, nothing else
    signals/<key>.index.npy        its chunk index: int64 (n_chunks, 3) = byte offset, nbytes, CRC32C

Why these choices:

* Signals are not Parquet: pyarrow cannot read less than a row group (no page-index reads), so a
  2-s window would cost a whole row group (1-3 ms measured). A plain ``.npy`` memory-maps, which is
  the physical limit for warm reads, and any NumPy can open it (``np.load(..., mmap_mode="r")``).
* Compressed signals are chunks of ``n_channels x chunk_samples`` encoded with exactly the numcodecs
  pipeline of :func:`eegbench.codecs.numcodecs_pipeline` (the same bytes Zarr would hold), so a
  window costs one ``os.pread`` + CRC32C + decode per overlapping chunk and nothing else.
* The index is a ``.npy`` rather than a Parquet table: it is a fixed-width int64 array that
  ``np.load`` reads in microseconds, without pyarrow on the read path.
* Every chunk carries a CRC32C (checked on every read: ~2 us per 40 KB), so a flipped byte raises
  :class:`~eegbench.errors.CorruptStoreError` instead of returning wrong samples; a truncated file
  is caught by the short ``pread`` (chunks) or by the size check when the ``.npy`` is mapped.

Reading is lazy and per process: :func:`ParquetBackend.open_signals` does no I/O; the memmap / file
descriptor / index are opened on the first read in each process (attributes ``_h_*`` are dropped by
pickling and forgotten after ``fork``). Returned arrays are always new arrays, never views of a
memmap or of the decoded-chunk cache.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import google_crc32c
import numcodecs
import numpy as np

from ..codecs import decode_chunk, encode_chunk, numcodecs_pipeline, undelta
from ..errors import CorruptStoreError
from . import SignalLayout, register
from ._chunks import ChunkedSource, advise_random, open_random_access

STORAGE_VERSION = 1
SIGNALS_DIR = "signals"
TABLES_DIR = "tables"
# keys and table names become file names: no separators, no dots (``<key>.index.npy`` stays unambiguous)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_' and '-' only")
    return name


def _paths(root: Path, key: str) -> dict[str, Path]:
    base = Path(root) / SIGNALS_DIR
    return {"npy": base / f"{key}.npy", "chunks": base / f"{key}.chunks", "index": base / f"{key}.index.npy"}


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

    def _to_float(self, raw: np.ndarray, channels: np.ndarray | None) -> np.ndarray:
        # the base class may return ``raw`` itself (a cached chunk) for a float32 whole-chunk read
        if self.quantization is not None:
            return self.quantization.reconstruct(raw if channels is None else raw[channels], channels)
        if channels is not None:
            return raw.take(channels, axis=0)  # fancy take: always a copy
        return np.array(raw, dtype=np.float32, order="C")


class NpySource(_Source):
    """Uncompressed recording: slices of a read-only memmap of ``signals/<key>.npy``, copied."""

    _h_arr: np.ndarray | None = None
    _h_fd: int | None = None
    _h_size: int = 0
    _h_mmap = None
    _h_offset: int = 0

    def _open(self) -> None:
        path = self._files["npy"]
        rel = self._rel("npy")
        try:
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
            size = os.stat(path).st_size
        except FileNotFoundError as exc:
            raise self.corrupt(f"signal file {rel} is missing", exc) from exc
        except (ValueError, EOFError) as exc:  # short header, or data shorter than the header says
            raise self.corrupt(f"signal file {rel} is truncated or not a valid .npy", exc) from exc
        expected = np.dtype(self.layout.dtype).newbyteorder("<")
        if not isinstance(mm, np.memmap) or mm.dtype != expected or mm.shape != (self.n_channels, self.n_times) \
                or not mm.flags.c_contiguous:
            raise self.corrupt(f"signal file {rel} holds {getattr(mm, 'dtype', '?')} {getattr(mm, 'shape', '?')}, "
                               f"expected C-ordered {expected} {(self.n_channels, self.n_times)}")
        if size != mm.offset + mm.nbytes:
            raise self.corrupt(f"signal file {rel} has {size} bytes, expected {mm.offset + mm.nbytes}")
        # a plain ndarray view of the mapping: slicing it skips np.memmap's Python-level __getitem__
        self._h_arr = mm.view(np.ndarray)
        # an fd of our own: one fstat per read (~1 us) turns a file truncated while open into
        # CorruptStoreError instead of a SIGBUS when the copy touches a page past the new end
        self._h_size = size
        self._h_fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._h_mmap, self._h_offset = getattr(mm, "_mmap", None), int(mm.offset)
        advise_random(self._h_mmap)  # no 8 MiB readahead per page fault

    def _close(self) -> None:
        self._h_arr = None  # readers still holding the array keep the mapping alive; nothing is unmapped under them
        fd, self._h_fd = getattr(self, "_h_fd", None), None
        if fd is not None:
            os.close(fd)

    def _forget_handles(self) -> None:
        self._h_arr = None
        self._h_fd = None  # the parent's descriptor: not ours to close

    def _array(self) -> np.ndarray:
        arr = self._h_arr
        if arr is None or self._pid != os.getpid():
            with self._lock:
                self._ensure_open()
                arr = self._h_arr
                if arr is None:  # closed and reopened concurrently
                    self._open()
                    arr = self._h_arr
        fd = self._h_fd
        if fd is not None and os.fstat(fd).st_size != self._h_size:
            raise self.corrupt(f"signal file {self._rel('npy')} changed size while open (truncated or replaced)")
        return arr

    def _load_chunk(self, index: int) -> np.ndarray:
        cs = self.chunk_samples
        return np.array(self._array()[:, index * cs:(index + 1) * cs])

    def read_counts(self, start: int, stop: int) -> np.ndarray:
        return np.array(self._array()[:, start:stop])

    #: requests of at least this many bytes per channel ask the kernel to read each channel's span
    #: in one go (random-access mode would otherwise fault it in page by page)
    PREFETCH_BYTES = 16 << 10

    def _prefetch(self, start: int, stop: int, channels: np.ndarray | None) -> None:
        import mmap

        itemsize, mm = self.dtype.itemsize, self._h_mmap
        span = (stop - start) * itemsize
        if mm is None or span < self.PREFETCH_BYTES or not hasattr(mmap, "MADV_WILLNEED"):
            return
        row_bytes = self.n_times * itemsize
        for row in range(self.n_channels) if channels is None else np.unique(channels):
            first = self._h_offset + int(row) * row_bytes + start * itemsize
            aligned = first - first % mmap.PAGESIZE
            mm.madvise(mmap.MADV_WILLNEED, aligned, first + span - aligned)

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        if stop <= start:
            return np.empty((self.n_channels if channels is None else len(channels), 0), dtype=np.float32)
        arr = self._array()
        self._prefetch(start, stop, channels)
        if self.quantization is not None:
            view = arr[:, start:stop] if channels is None else arr[channels, start:stop]
            return self.quantization.reconstruct(view, channels)
        if channels is None:
            return np.array(arr[:, start:stop])  # one copy straight out of the page cache
        return arr[channels, start:stop]  # fancy indexing copies

    def read_batch(self, starts: np.ndarray, length: int, channels: np.ndarray | None) -> np.ndarray:
        arr = self._array()
        n_ch = self.n_channels if channels is None else len(channels)
        out = np.empty((len(starts), n_ch, length), dtype=np.float32)
        rows = slice(None) if channels is None else channels
        q = self.quantization
        for i, s in enumerate(np.asarray(starts, dtype=np.int64).tolist()):
            if q is not None:
                q.reconstruct(arr[rows, s:s + length], channels, out=out[i])
            else:
                out[i] = arr[rows, s:s + length]
        return out


class ChunkFileSource(_Source):
    """Compressed recording: chunks pulled with ``os.pread``, CRC32C-checked, then decoded."""

    _h_fd: int | None = None

    def _open(self) -> None:
        rel_index, rel_chunks = self._rel("index"), self._rel("chunks")
        try:
            index = np.load(self._files["index"], allow_pickle=False)
        except FileNotFoundError as exc:
            raise self.corrupt(f"chunk index {rel_index} is missing", exc) from exc
        except (ValueError, EOFError) as exc:
            raise self.corrupt(f"chunk index {rel_index} is truncated or not a valid .npy", exc) from exc
        n = self.layout.n_chunks
        if index.dtype != np.dtype("<i8") or index.shape != (n, 3) or (n and (index.min() < 0)):
            raise self.corrupt(f"chunk index {rel_index} holds {index.dtype} {index.shape}, expected int64 ({n}, 3)")
        try:
            fd = open_random_access(self._files["chunks"])
        except FileNotFoundError as exc:
            raise self.corrupt(f"chunk file {rel_chunks} is missing", exc) from exc
        size = os.fstat(fd).st_size
        beyond = np.flatnonzero(index[:, 0] + index[:, 1] > size)
        if beyond.size:  # truncated file (or damaged index): refuse before allocating absurd reads
            os.close(fd)
            raise self.corrupt(f"chunk {int(beyond[0])} lies beyond the end of {rel_chunks} ({size} bytes): "
                               "the file is truncated")
        # plain Python ints: the per-chunk lookups below are list indexing, not NumPy scalars
        self._h_offsets, self._h_nbytes, self._h_crcs = (index[:, j].tolist() for j in range(3))
        self._h_pipeline = numcodecs_pipeline(self.layout.codec, self.dtype)
        self._h_delta = bool(self._h_pipeline) and isinstance(self._h_pipeline[0], numcodecs.Delta)
        if self._h_delta:  # undone by _undelta (same result, 4x faster)
            self._h_pipeline = self._h_pipeline[1:]
        self._h_fd = fd

    def _close(self) -> None:
        fd, self._h_fd = self._h_fd, None
        if fd is not None:
            os.close(fd)

    def _forget_handles(self) -> None:
        # the parent's descriptor number: never close or read it here (the child reopens by path)
        self._h_fd = None

    def _load_chunk(self, index: int) -> np.ndarray:
        offset, nbytes, crc = self._h_offsets[index], self._h_nbytes[index], self._h_crcs[index]
        data = self.pread_checked(self._h_fd, offset, nbytes, crc, self._rel("chunks"), index)
        cs = self.chunk_samples
        shape = (self.n_channels, min(cs, self.n_times - index * cs))
        arr = decode_chunk(data, self._h_pipeline, self.dtype, shape)
        if self._h_delta:
            arr = undelta(arr)
        arr.flags.writeable = False  # cached and shared: nobody may modify it
        return arr

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        if stop <= start:
            return np.empty((self.n_channels if channels is None else len(channels), 0), dtype=np.float32)
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        if first == last:  # one chunk: convert straight from the cached chunk
            c0 = first * cs
            return self._to_float(self.chunk(first)[:, start - c0:stop - c0], channels)
        rows = slice(None) if channels is None else channels
        n_ch = self.n_channels if channels is None else len(channels)
        # assemble straight into the result's dtype: float32 samples, or float64 counts that the
        # affine map then finishes in place (no intermediate window of counts)
        quantized = self.quantization is not None
        out = np.empty((n_ch, stop - start), dtype=np.float64 if quantized else np.float32)
        for ci in range(first, last + 1):
            c0 = ci * cs
            a, b = max(start, c0), min(stop, c0 + cs)
            out[:, a - start:b - start] = self.chunk(ci)[rows, a - c0:b - c0]
        return self.quantization.finish(out, channels) if quantized else out


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


def _write_npy(path: Path, blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout, dtype: np.dtype) -> None:
    """A standard .npy written block by block: each block's channel rows land at their offsets."""
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


def _write_chunks(paths: dict[str, Path], blocks: Iterable[tuple[int, np.ndarray]], layout: SignalLayout,
                  dtype: np.dtype) -> None:
    pipeline = numcodecs_pipeline(layout.codec, dtype)
    cs = layout.chunk_samples
    index = np.zeros((layout.n_chunks, 3), dtype=np.int64)
    n, offset = 0, 0
    with open(paths["chunks"], "wb") as fh:
        for _start, block in _blocks_checked(blocks, layout, dtype):
            for a in range(0, block.shape[1], cs):
                data = encode_chunk(block[:, a:a + cs], pipeline)
                fh.write(data)
                index[n] = (offset, len(data), google_crc32c.value(data))
                offset += len(data)
                n += 1
    np.save(paths["index"], index, allow_pickle=False)


# ---------------------------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------------------------
class ParquetBackend:
    """NumPy signals (memmap-able ``.npy`` or CRC-checked chunk files) + Parquet tables."""

    name: ClassVar[str] = "parquet"
    compressions: ClassVar[frozenset[str]] = frozenset({"none", "zstd", "blosc-zstd", "blosc-lz4", "gzip"})
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
            _write_npy(paths["npy"], blocks, layout, dtype)
            files = {"npy": paths["npy"]}
        else:
            _write_chunks(paths, blocks, layout, dtype)
            files = {"chunks": paths["chunks"], "index": paths["index"]}
        storage: dict[str, Any] = {"version": STORAGE_VERSION, "kind": "npy" if "npy" in files else "chunks",
                                   "files": {k: p.relative_to(root).as_posix() for k, p in files.items()}}
        if "chunks" in files:
            storage["checksum"] = "crc32c"
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
        files = {k: p for k, p in _paths(root, key).items() if k in storage.get("files", {})}
        if set(files) != ({"npy"} if kind == "npy" else {"chunks", "index"}):
            raise CorruptStoreError(f"{root}: recording {key!r}: storage info lists files {storage.get('files')!r}")
        cls = NpySource if kind == "npy" else ChunkFileSource
        return cls(root, key, layout, storage, files)


register(ParquetBackend())
