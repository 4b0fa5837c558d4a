"""The one lazy-read mechanism shared by the formats: all-channel x time chunks.

Every format stores a recording as chunks of ``n_channels x chunk_samples`` (the last chunk may
be shorter). :class:`ChunkedSource` turns "samples [start, stop) of channels C" into "decode
chunks i..j" and assembles the answer; a format subclass only implements :meth:`_load_chunk`
(decoded chunk ``i`` in the stored dtype) plus handle management. Decoded chunks go through a
small process-wide LRU bounded in bytes, so sequential and overlapping reads decode each chunk
once while random access over a large dataset cannot grow memory.

Handles are opened lazily and per process: a source remembers the pid that opened them and
reopens after ``fork``; pickling drops them (``spawn`` and joblib workers reopen on first read).
Reads from one source are serialised by a lock, so sharing a source across threads is safe.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np

from ..errors import CorruptStoreError
from . import SignalLayout


def open_random_access(path: str | os.PathLike) -> int:
    """Open a signal file for chunk reads: read-only, close-on-exec, and marked for random access.

    Readers fetch a window's chunks, not whole files; without the hint the kernel's readahead
    (8 MiB on the VM we measure on) turns one cold 2-s window into megabytes read from disk.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    return fd


def advise_random(mapping: Any) -> None:
    """The same hint for a memory map (``mmap.mmap`` or the ``_mmap`` of an ``np.memmap``)."""
    import mmap

    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapping.madvise(mmap.MADV_RANDOM)


class ChunkCache:
    """Process-wide LRU of decoded chunks, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key: tuple[str, int], arr: np.ndarray) -> None:
        if arr.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


#: shared by every ChunkedSource of this process; set ``CHUNK_CACHE.max_bytes = 0`` to disable
CHUNK_CACHE = ChunkCache(int(os.environ.get("EEGBENCH_CHUNK_CACHE_MB", "64")) << 20)


class ChunkedSource:
    """Base class of the formats' lazy sources. Subclasses implement :meth:`_open`,
    :meth:`_close` and :meth:`_load_chunk`; everything else is here once."""

    def __init__(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> None:
        self.root, self.key, self.layout, self.storage = Path(root), key, layout, storage
        self.n_channels, self.n_times = layout.n_channels, layout.n_times
        self.quantization = layout.quantization
        self.chunk_samples = layout.chunk_samples
        self.dtype = np.dtype(layout.dtype)
        self._uid = uuid.uuid4().hex
        self._pid: int | None = None
        self._lock = threading.RLock()

    # --- subclass hooks -------------------------------------------------------------------
    def _open(self) -> None:
        """Open file handles for this process (called lazily, under the lock)."""

    def _close(self) -> None:
        """Close file handles (called under the lock)."""

    def _load_chunk(self, index: int) -> np.ndarray:
        """Decoded chunk ``index`` as ``(n_channels, chunk_len)`` in the stored dtype."""
        raise NotImplementedError

    # --- handles --------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        pid = os.getpid()
        if self._pid != pid:
            if self._pid is not None:
                self._forget_handles()  # inherited across fork: never touch the parent's handles
            self._open()
            self._pid = pid

    def _forget_handles(self) -> None:
        """Drop (without closing) handles inherited from another process. Override if needed."""

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._close()
            elif self._pid is not None:
                self._forget_handles()  # inherited across fork: never close the parent's handles
            self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_h_")}
        state["_pid"] = None
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def corrupt(self, what: str, exc: BaseException | None = None) -> CorruptStoreError:
        """A CorruptStoreError naming the store, recording and what failed."""
        detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        return CorruptStoreError(f"{self.root}: recording {self.key}: {what}{detail}; "
                                 f"run `eegbench verify {self.root}` and re-convert or re-download the store")

    def pread_checked(self, fd: int, offset: int, nbytes: int, crc: int, rel: str, index: int) -> bytes:
        """The stored bytes of chunk ``index`` (``nbytes`` at ``offset`` of file ``rel``), checked
        for length and CRC32C: a truncated or modified chunk is an error, never data."""
        data = os.pread(fd, nbytes, offset)
        if len(data) != nbytes:
            raise self.corrupt(f"chunk {index} is truncated in {rel} ({len(data)} of {nbytes} bytes at offset {offset})")
        if google_crc32c.value(data) != crc:
            raise self.corrupt(f"chunk {index} fails its CRC32C check in {rel} (bytes {offset}..{offset + nbytes})")
        return data

    # --- reading --------------------------------------------------------------------------
    def chunk(self, index: int) -> np.ndarray:
        """Decoded chunk ``index`` (stored dtype), through the process-wide cache."""
        key = (self._uid, index)
        arr = CHUNK_CACHE.get(key)
        if arr is None:
            with self._lock:
                self._ensure_open()
                try:
                    arr = self._load_chunk(index)
                except CorruptStoreError:
                    raise
                except FileNotFoundError as exc:
                    raise self.corrupt(f"a file of chunk {index} is missing", exc) from exc
                except Exception as exc:
                    raise self.corrupt(f"chunk {index} cannot be decoded", exc) from exc
            expected = (self.n_channels, min(self.chunk_samples, self.n_times - index * self.chunk_samples))
            if arr.shape != expected:
                raise self.corrupt(f"chunk {index} has shape {arr.shape}, expected {expected}")
            CHUNK_CACHE.put(key, arr)
        return arr

    def _raw(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` (n_channels x (stop-start), stored dtype) from the overlapping chunks."""
        cs = self.chunk_samples
        for ci in range(start // cs, (stop - 1) // cs + 1):
            c0 = ci * cs
            a, b = max(start, c0), min(stop, c0 + cs)
            out[:, a - start:b - start] = self.chunk(ci)[:, a - c0:b - c0]

    def _to_float(self, raw: np.ndarray, channels: np.ndarray | None) -> np.ndarray:
        if channels is not None:
            raw = raw[channels]
        if self.quantization is not None:
            return self.quantization.reconstruct(raw, channels)
        return np.array(raw, dtype=np.float32, order="C")  # a private copy: never hand out a cached chunk

    def read_counts(self, start: int, stop: int) -> np.ndarray:
        """Stored samples ``[start, stop)`` of every channel in the stored dtype (counts or float32)."""
        out = np.empty((self.n_channels, stop - start), dtype=self.dtype)
        if stop > start:
            self._raw(start, stop, out)
        return out

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        if stop <= start:
            n = self.n_channels if channels is None else len(channels)
            return np.empty((n, 0), dtype=np.float32)
        cs = self.chunk_samples
        if start // cs == (stop - 1) // cs:  # inside one chunk: no assembly copy
            c0 = (start // cs) * cs
            return self._to_float(self.chunk(start // cs)[:, start - c0:stop - c0], channels)
        return self._to_float(self.read_counts(start, stop), channels)

    def read_batch(self, starts: np.ndarray, length: int, channels: np.ndarray | None) -> np.ndarray:
        """Equal-length windows at ``starts``; each chunk is decoded at most once per call."""
        n_ch = self.n_channels if channels is None else len(channels)
        out = np.empty((len(starts), n_ch, length), dtype=np.float32)
        for i, s in enumerate(np.asarray(starts, dtype=np.int64)):
            out[i] = self.read(int(s), int(s) + length, channels)
        return out
