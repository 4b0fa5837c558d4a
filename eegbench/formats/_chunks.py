"""The one lazy-read mechanism shared by the formats: all-channel x time chunks.

Every format stores a recording as chunks of ``n_channels x chunk_samples`` (the last chunk may
be shorter). :class:`ChunkedSource` turns "samples [start, stop) of channels C" into "decode
chunks i..j" and assembles the answer; a format subclass implements :meth:`_load_chunk`
(decoded chunk ``i`` in the stored dtype), optionally :meth:`_load_chunks` (several at once,
e.g. one coalesced ``get_ranges``) and :meth:`_prepare` (per-process metadata such as a chunk
index). Decoded chunks go through a small process-wide LRU bounded in bytes, so sequential and
overlapping reads decode each chunk once while random access over a large dataset cannot grow
memory.

Bytes come only through :attr:`ChunkedSource.bytes`, the store's :class:`~eegbench.io.ByteSource`
(local files: ``pread`` through the process-wide capped file manager :data:`eegbench.io.FILES`),
so a source never owns a descriptor: a dataset of any number of recordings holds at most
``EEGBENCH_MAX_OPEN_FILES`` open files, and the same reader code serves remote sources.
Per-process state (``_h_*`` attributes: parsed chunk indexes) is plain data, valid across
``fork`` and dropped by pickling (``spawn`` and joblib workers re-read it on first use). Reads
from one source are serialised by a lock, so sharing a source across threads is safe.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, NoReturn

import google_crc32c
import numpy as np

from ..errors import CorruptStoreError, ResourceLimitError, StoreChangedError
from ..io import ByteSource, is_exhausted, source_for
from ..io import files as _files
from . import SignalLayout


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
        if self.max_bytes <= 0:
            return
        if arr.nbytes > self.max_bytes:
            # a chunk bigger than the whole cache is kept alone (memory: one chunk), so the windows
            # inside it do not each decode it again (85-150 ms per window for a 72 MB chunk)
            with self._lock:
                self._items.clear()
                self._items[key] = arr
                self._bytes = arr.nbytes
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


#: shared by every ChunkedSource of this process; set ``CHUNK_CACHE.max_bytes = 0`` to disable
CHUNK_CACHE = ChunkCache(int(os.environ.get("EEGBENCH_CHUNK_CACHE_MB", "64")) << 20)


_MINCORE: Any = None
_MAP_ADDRESS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # map -> its address
_VEC = threading.local()  # per-thread mincore vector


def _mincore_fn() -> Any:
    """libc ``mincore`` through ctypes (False where unavailable: every page then counts as resident)."""
    global _MINCORE
    if _MINCORE is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).mincore
            fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
            fn.restype = ctypes.c_int
            _MINCORE = fn
        except (OSError, AttributeError):
            _MINCORE = False
    return _MINCORE


def resident(mm: Any, start: int, stop: int) -> bool:
    """Whether bytes ``[start, stop)`` of the read-only map ``mm`` look resident in the page cache:
    ``mincore`` of their last page (one small syscall, ~2 us; asking for every page cost ~20 us
    per warm window here, the kernel looking each unmapped page up). An evicted window lacks it,
    and so does one that continues a window read before. A map fetches a missing page at a time
    on fault (4 KiB reads, no readahead for random-access maps); a cold window is one ``pread``
    instead. A page missing elsewhere only costs speed: the map path is always correct."""
    fn = _MINCORE if _MINCORE is not None else _mincore_fn()
    if not fn or stop <= start:
        return True
    base = _MAP_ADDRESS.get(mm)
    if base is None:
        view = np.frombuffer(mm, dtype=np.uint8, count=1)
        base = _MAP_ADDRESS[mm] = view.__array_interface__["data"][0]
        del view  # the address stays valid while the map is open; no export may outlive the loan
    vec = getattr(_VEC, "buf", None)
    if vec is None:
        import ctypes

        vec = _VEC.buf = ctypes.create_string_buffer(1)
    last = (stop - 1) - (stop - 1) % _PAGE
    if fn(base + last, 1, vec) != 0:
        return True  # cannot tell: the map path is always correct
    return bool(vec.raw[0] & 1)  # bit 0: page resident (the others are reserved)


#: evicted uncompressed windows: readahead of the chunks' span then copies from the map (True), or
#: one ``pread`` of the span into a new buffer then copies from there (``EEGBENCH_EVICTED_READAHEAD=0``)
EVICTED_READAHEAD = os.environ.get("EEGBENCH_EVICTED_READAHEAD", "1") != "0"
_WILLNEED = getattr(__import__("mmap"), "MADV_WILLNEED", None)


def readahead(mm: Any, start: int, stop: int) -> bool:
    """Ask the kernel to read bytes ``[start, stop)`` of the file behind read-only map ``mm`` into
    the page cache now, as one request (``madvise(MADV_WILLNEED)`` on the map: the kernel's
    ``force_page_cache_readahead`` of exactly that range, whatever the map's ``MADV_RANDOM``).
    Reading the map afterwards waits for that request instead of faulting 4 KiB at a time. On an
    evicted 2-s window (774 KB over three 1-s chunks) this was ~0.1-0.2 ms faster than a ``pread``
    into a buffer plus the copy out of it. False where ``madvise`` is unavailable or refused: the
    caller then reads with ``pread``."""
    if _WILLNEED is None or stop <= start:
        return False
    a = start - start % _PAGE
    try:
        mm.madvise(_WILLNEED, a, stop - a)
    except (OSError, ValueError, AttributeError):
        return False
    return True


_clock = time.perf_counter_ns
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

#: bytes of the one block :func:`settle_heap` allocates and frees (0 or ``EEGBENCH_SETTLE_HEAP=0``: never)
SETTLE_HEAP_BYTES = 16 << 20 if os.environ.get("EEGBENCH_SETTLE_HEAP", "1") != "0" else 0
_HEAP_SETTLED = False


def settle_heap() -> None:
    """Once per process (before its first read): allocate and free one untouched 16 MiB block.

    glibc serves blocks above its mmap threshold (128 KiB at start) with ``mmap`` and returns free
    heap above its trim threshold to the kernel; freeing an mmapped block raises both thresholds to
    that block's size (trim: twice). A process that never freed one bigger than ~0.5 MiB can fall
    into a loop where every read's transient buffers (a compressed window of 2-s chunks: ~1.4 MB of
    fetched bytes, decoded chunks and output) are trimmed away on free and faulted in again on the
    next read: ~355 page faults per read, 2.2x the read time (hdf5 blosc-lz4 2-s chunks: 856 vs
    358 us; zarr blosc-zstd 1052 vs 577 us; whether a process is in that state depended on its
    history). Freeing one 16 MiB block does what any process that once freed a big array has done:
    thresholds 16 / 32 MiB, so such transients are reused from the heap. Nothing is touched (no
    page is faulted in); elsewhere than glibc it is a harmless allocation."""
    global _HEAP_SETTLED
    _HEAP_SETTLED = True
    if SETTLE_HEAP_BYTES > 0:
        block = np.empty(SETTLE_HEAP_BYTES, dtype=np.uint8)  # malloc, never written: no page faulted in
        del block


#: the compiled warm copy (``copy_window`` of :mod:`eegbench._ckernels`, C built with the package:
#: importing it costs nothing measurable, unlike numba's 0.3-0.6 s a process), False when it was
#: not built (no C compiler at install) or ``EEGBENCH_WARM_KERNEL=0``: NumPy copies the same bytes;
#: None: not looked up yet.
_WARM_COPY: Any = None


def _optional_kernel(env: str, load: Any) -> Any:
    """``load()`` (a compiled kernel), or False when ``env`` is ``0`` or it cannot be loaded (the C
    extension was not built here: no C compiler at install): the callers then use NumPy /
    numcodecs, with the same bytes and bits."""
    if os.environ.get(env, "1") == "0":
        return False
    try:
        return load() or False
    except (ImportError, AttributeError, OSError):
        return False


def _warm_copy() -> Any:
    """The compiled warm copy, or False: use NumPy (see :data:`_WARM_COPY`)."""
    global _WARM_COPY
    if _WARM_COPY is None:
        _WARM_COPY = _optional_kernel("EEGBENCH_WARM_KERNEL", _load_warm_copy)
    return _WARM_COPY


def _load_warm_copy() -> Any:
    from .._ckernels import copy_window

    return copy_window


#: a warm uncompressed window read into ``out`` that is a view of an array of at least this many
#: bytes (a slot of a DataLoader batch: larger than the CPU caches) is written with non-temporal
#: stores (``copy_window(stream=True)``): copied with ordinary stores, every destination line is
#: first read from DRAM, then written back (here: 35 us per 129 ch x 1000 window into a 33 MB
#: batch, 29.6 us streamed, 28.2 us into a cached window buffer). ``EEGBENCH_BATCH_STREAM=0``: never.
STREAM_MIN_BYTES = 8 << 20 if os.environ.get("EEGBENCH_BATCH_STREAM", "1") != "0" else 1 << 62


#: the compiled Blosc window decoder (``decode_blosc`` of :mod:`eegbench._ckernels`, bound to the
#: c-blosc inside numcodecs), False when it is not built, cannot bind, or ``EEGBENCH_BLOSC_KERNEL=0``
#: (chunks then go through numcodecs' ``decompress`` and :meth:`ChunkedSource._emit`, same bits);
#: None: not looked up yet.
_BLOSC_WINDOW: Any = None
_SCRATCH = threading.local()  # per-thread decoded-chunk buffer of the compiled Blosc decoder
_KINDS = {np.dtype("<i2"): 1, np.dtype("<i4"): 2, np.dtype("<f4"): 3}  # decode_blosc's sample kinds


def _blosc_window() -> Any:
    """The compiled Blosc window decoder, or False (see :data:`_BLOSC_WINDOW`)."""
    global _BLOSC_WINDOW
    if _BLOSC_WINDOW is None:
        _BLOSC_WINDOW = _optional_kernel("EEGBENCH_BLOSC_KERNEL", _load_blosc_window)
    return _BLOSC_WINDOW


def _load_blosc_window() -> Any:
    from .. import _ckernels
    from ..codecs import load_numcodecs

    load_numcodecs()
    import numcodecs.blosc

    return _ckernels.decode_blosc if _ckernels.bind_blosc(numcodecs.blosc.__file__) else False


class ChunkedSource:
    """Base class of the formats' lazy sources. Subclasses implement :meth:`_load_chunk` (and
    optionally :meth:`_load_chunks`, :meth:`_prepare`, :meth:`_store_files`); everything else is here once."""

    def __init__(self, root: Path | str, key: str, layout: SignalLayout, storage: dict[str, Any]) -> None:
        # a URL root stays a string (Path would fold "//"); a local one is a Path
        self.root = root if isinstance(root, str) and "://" in root else Path(root)
        self.key, self.layout, self.storage = key, layout, storage
        self.n_channels, self.n_times = layout.n_channels, layout.n_times
        self.quantization = layout.quantization
        self.chunk_samples = layout.chunk_samples
        self.dtype = np.dtype(layout.dtype)
        self._uid = uuid.uuid4().hex
        self._lock = threading.RLock()

    # --- subclass hooks -------------------------------------------------------------------
    def _prepare(self) -> None:
        """Load per-process metadata (e.g. a chunk index) through :attr:`bytes`; called once,
        lazily, under the lock. Keep results in ``_h_*`` attributes (dropped when pickled)."""

    def _store_files(self) -> list[str]:
        """Store paths this source reads (their handles are released by :meth:`close`)."""
        return []

    def _load_chunk(self, index: int) -> np.ndarray:
        """Decoded chunk ``index`` as ``(n_channels, chunk_len)`` in the stored dtype."""
        raise NotImplementedError

    def _raw_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        """Where chunk ``index`` lies *uncompressed* in a file, for reads through a map:
        ``(rel, offset, crc_stop, crc)``: the C-ordered (n_channels, chunk_samples) samples start at
        ``offset`` of file ``rel``; CRC32C over ``[offset, crc_stop)`` is ``crc`` (None: stored
        little-endian in the 4 bytes at ``crc_stop``). None: read it through :meth:`_load_chunk`."""
        return None

    def _load_chunks(self, indices: list[int]) -> list[np.ndarray]:
        """Decoded chunks ``indices`` (sorted, distinct); override to fetch their bytes together."""
        return [self._load_chunk(i) for i in indices]

    def _stored_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        """Where chunk ``index``'s *stored* (encoded) bytes lie in a local file, for decoding them
        straight out of a map (:meth:`_read_stored`): ``(rel, offset, stop, crc)``: bytes
        ``[offset, stop)`` of file ``rel`` are what :meth:`_decode_stored_bytes` takes; CRC32C over
        them is ``crc`` (None: over ``[offset, stop - 4)``, stored little-endian in the last 4 bytes).
        None: read it through :meth:`_load_chunk`. Called under the source's lock, after ``_prepare``."""
        return None

    def _blosc_span(self, index: int, spot: tuple[str, int, int, int | None]) -> tuple[int, int] | None:
        """File bytes ``[a, b)`` of chunk ``index`` (stored at ``spot``, see :meth:`_stored_chunk_at`)
        when they are exactly one Blosc frame whose decoded bytes are the chunk's samples as
        ``(n_channels, m)`` C-ordered little-endian values of the stored dtype (``m`` <= chunk
        samples: a padded last chunk counts), so the compiled decoder may read the chunk; None: the
        chunk goes through :meth:`_decode_stored_bytes`. Called once per chunk, after its check."""
        return None

    def _decode_stored_bytes(self, index: int, data: np.ndarray) -> np.ndarray:
        """Decoded chunk ``index`` (``(n_channels, chunk_len)``, stored dtype) from ``data``, the
        uint8 stored bytes :meth:`_stored_chunk_at` names, already checked. May return a view of
        ``data`` (the caller copies what it keeps)."""
        raise NotImplementedError

    # --- bytes and per-process state --------------------------------------------------------
    @property
    def bytes(self) -> ByteSource:
        """The store's byte source (built from :attr:`root` on first use, kept when pickled)."""
        src = self.__dict__.get("_bytes")
        if src is None:
            src = self._bytes = source_for(self.root)
        return src

    def _leased(self, rel: str) -> tuple[Any, Any]:
        """``(handle, view)`` of the map of file ``rel``: the handle this source leased last, while
        the file manager keeps it open (no manager lock, pin or table lookup: 20-30 us saved on a read
        right after an eviction here, ~3 us warm), else a new :meth:`~eegbench.io.files.FileManager.lease`
        (which checks the file's identity when it opens a map). Same trust as :meth:`_read_warm`'s
        handles: a closed handle's ``view`` is None and is never used again."""
        got = self.__dict__.get("_h_lease")
        if got is not None and got[0] == rel:
            h = got[1]
            view = h.view  # our reference keeps the mapping valid for this read, even if closed meanwhile
            if view is not None:
                h.used = True
                return h, view
        h, view = self.bytes.lease(rel)
        self._h_lease = (rel, h)
        return h, view

    def _ensure_ready(self) -> None:
        if not self.__dict__.get("_h_ready"):
            if not _HEAP_SETTLED:
                settle_heap()
            try:
                self._prepare()
            except CorruptStoreError:
                if self._replaced():  # files of a store that replaced the one opened: say that instead
                    self.check_pin()
                raise
            self.check_pin()
            self._h_ready = True

    #: (st_dev, st_ino) of the local store folder when it was opened (set by ``eegbench.open``)
    pin: tuple[int, int] | None = None

    def check_pin(self) -> None:
        """Call *after* reading metadata: raises StoreChangedError if the store folder was replaced
        since ``open`` (what was just read may then belong to the new store)."""
        if self.pin is None or not isinstance(self.root, Path):
            return
        try:
            st = os.stat(self.root)
            same = (st.st_dev, st.st_ino) == tuple(self.pin)
        except OSError:
            same = False
        if not same:
            raise StoreChangedError(f"{self.root} was replaced or removed after it was opened (recording "
                                    f"{self.key}); reading on would mix two stores — open it again")

    def _replaced(self) -> bool:
        """True if another store now sits at the path opened (a removed store is not "replaced":
        reading it is a missing-file CorruptStoreError)."""
        if self.pin is None or not isinstance(self.root, Path):
            return False
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != tuple(self.pin)

    def ready(self) -> None:
        """Load (and validate) per-process metadata before a read allocates anything."""
        if not self.__dict__.get("_h_ready"):
            with self._lock:
                try:
                    self._ensure_ready()
                except Exception as exc:
                    self._raise_typed(exc, "metadata")

    def close(self) -> None:
        """Forget per-process state and release this source's files (reopened on the next read)."""
        with self._lock:
            release = getattr(self.__dict__.get("_bytes"), "release", None)
            if release is not None and self.__dict__.get("_h_ready"):
                release(self._store_files())
            for k in [k for k in self.__dict__ if k.startswith("_h_")]:
                del self.__dict__[k]

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_h_")}
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

    def check_bytes(self, data: Any, nbytes: int, crc: int, rel: str, index: int, offset: int) -> np.ndarray:
        """``data`` (the stored bytes of chunk ``index``, ``nbytes`` at ``offset`` of ``rel``) as a
        uint8 array, checked for length and CRC32C: a truncated or modified chunk is an error."""
        if len(data) != nbytes:
            raise self.corrupt(f"chunk {index} is truncated in {rel} ({len(data)} of {nbytes} bytes at offset {offset})")
        arr = np.frombuffer(data, dtype=np.uint8)
        if google_crc32c.value(arr) != crc:
            raise self.corrupt(f"chunk {index} fails its CRC32C check in {rel} (bytes {offset}..{offset + nbytes})")
        return arr

    def fetch_checked(self, rel: str, offset: int, nbytes: int, crc: int, index: int) -> np.ndarray:
        """The stored bytes of chunk ``index`` (``nbytes`` at ``offset`` of ``rel``), checked."""
        return self.check_bytes(self.bytes.get(rel, offset, offset + nbytes), nbytes, crc, rel, index, offset)

    def _wrap(self, exc: Exception, index: Any) -> Exception:
        """The typed error for a failure while loading chunk(s) ``index``."""
        if isinstance(exc, (ResourceLimitError, StoreChangedError)):
            return exc
        if self._replaced():  # damage seen in a store replaced since it was opened is the replacement
            try:
                self.check_pin()
            except StoreChangedError as changed:
                return changed
        if isinstance(exc, CorruptStoreError):
            return exc
        if is_exhausted(exc):  # out of descriptors: the store is fine
            return ResourceLimitError(f"{self.root}: recording {self.key}: chunk {index}: the process has no "
                                      f"file descriptor left ({exc}); raise `ulimit -n` or lower "
                                      "EEGBENCH_MAX_OPEN_FILES")
        if isinstance(exc, FileNotFoundError):
            return self.corrupt(f"a file of chunk {index} is missing", exc)
        return self.corrupt(f"chunk {index} cannot be decoded", exc)

    def _raise_typed(self, exc: Exception, index: Any) -> NoReturn:
        """Raise the typed error for ``exc`` (see :meth:`_wrap`), chained to it; ``exc`` itself when it is one."""
        err = self._wrap(exc, index)
        if err is exc:
            raise exc
        raise err from exc

    def _checked_shape(self, index: int, arr: np.ndarray) -> np.ndarray:
        expected = (self.n_channels, min(self.chunk_samples, self.n_times - index * self.chunk_samples))
        if arr.shape != expected:
            raise self.corrupt(f"chunk {index} has shape {arr.shape}, expected {expected}")
        return arr

    # --- reading --------------------------------------------------------------------------
    def chunk(self, index: int) -> np.ndarray:
        """Decoded chunk ``index`` (stored dtype), through the process-wide cache."""
        key = (self._uid, index)
        arr = CHUNK_CACHE.get(key)
        if arr is None:
            with self._lock:
                try:
                    self._ensure_ready()
                    arr = self._load_chunk(index)
                except Exception as exc:
                    self._raise_typed(exc, index)
            CHUNK_CACHE.put(key, self._checked_shape(index, arr))
        return arr

    def chunks(self, indices: Any) -> dict[int, np.ndarray]:
        """Decoded chunks ``indices`` (stored dtype), each decoded at most once for this call, with
        or without the cache; the bytes of chunks missing from the cache are fetched together."""
        wanted = sorted({int(i) for i in indices})
        out: dict[int, np.ndarray] = {}
        missing = []
        for i in wanted:
            arr = CHUNK_CACHE.get((self._uid, i))
            if arr is None:
                missing.append(i)
            else:
                out[i] = arr
        if missing:
            with self._lock:
                try:
                    self._ensure_ready()
                    loaded = self._stored_mappable and self._load_stored(missing) or self._load_chunks(missing)
                except Exception as exc:
                    self._raise_typed(exc, missing if len(missing) > 1 else missing[0])
            for i, arr in zip(missing, loaded):
                out[i] = self._checked_shape(i, arr)
                CHUNK_CACHE.put((self._uid, i), arr)
        return out

    def _raw(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` (n_channels x (stop-start), stored dtype) from the overlapping chunks."""
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        # several chunks: the missing ones are fetched together (one coalesced range request remotely)
        loaded = self.chunks(range(first, last + 1)) if last > first else {first: self.chunk(first)}
        for ci in range(first, last + 1):
            c0 = ci * cs
            a, b = max(start, c0), min(stop, c0 + cs)
            out[:, a - start:b - start] = loaded[ci][:, a - c0:b - c0]

    def _to_float(self, raw: np.ndarray, channels: np.ndarray | None) -> np.ndarray:
        if channels is not None:
            raw = raw[channels]
        if self.quantization is not None:
            return self.quantization.reconstruct(raw, channels)
        return np.array(raw, dtype=np.float32, order="C")  # a private copy: never hand out a cached chunk

    def read_counts(self, start: int, stop: int) -> np.ndarray:
        """Stored samples ``[start, stop)`` of every channel in the stored dtype (counts or float32)."""
        self.ready()
        out = np.empty((self.n_channels, stop - start), dtype=self.dtype)
        if stop > start:
            self._raw(start, stop, out)
        return out

    def _emit(self, src: np.ndarray, a: int, b: int, channels: np.ndarray | None, out: np.ndarray, o0: int) -> None:
        """``out[:, o0:o0+b-a]`` = float32 volts of stored samples ``src[channels, a:b]`` (``src`` has
        every channel as a row: a decoded chunk or a whole mapped recording). One pass, no
        temporaries: a copy for float32 storage, the fused calibration for integer counts."""
        q = self.quantization
        if q is not None:
            q.calibrate_into(src, a, b, channels, out, o0)
        elif channels is None:
            out[:, o0:o0 + b - a] = src[:, a:b]
        else:
            out[:, o0:o0 + b - a] = src[channels, a:b]  # fancy indexing: one picked temporary

    def _out(self, n_samples: int, channels: np.ndarray | None, out: np.ndarray | None) -> np.ndarray:
        shape = (self.n_channels if channels is None else len(channels), n_samples)
        if out is None:
            return np.empty(shape, dtype=np.float32)
        if out.shape != shape or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
        return out

    #: ``read(start, stop, channels, out=)`` writes into a caller's float32 array
    reads_into = True

    #: an evicted window's chunks are read with one ``pread`` when they span at most this many
    #: times their own bytes (gaps between them included); otherwise through the map
    COALESCE_LIMIT = 1.25

    #: a mapped read slower than ``SLOW_NS_MIN`` ns and ``SLOW_NS_PER_BYTE`` ns per byte copied
    #: (0.5 GB/s; a warm copy ran at 2-15 GB/s here, a page-faulting one below 0.1 GB/s) makes the
    #: next read of that file check residency; if that finds pages missing, the following
    #: ``files.PROBE_READS`` reads check too (a preempted warm read costs one check)
    SLOW_NS_MIN = 200_000
    SLOW_NS_PER_BYTE = 2.0

    @property
    def _f32(self) -> bool:
        """Samples stored as little-endian float32: a window is their bytes, copied unchanged."""
        ok = self.__dict__.get("_f32ok")
        if ok is None:
            ok = self._f32ok = self.dtype == np.dtype("<f4") and sys.byteorder == "little"
        return ok

    @property
    def _mappable(self) -> bool:
        """Uncompressed little-endian storage: chunks may be read as views of a mapped file."""
        ok = self.__dict__.get("_mapok")
        if ok is None:
            ok = self._mapok = (self.layout.codec.compression == "none" and not self.layout.codec.delta
                                and self.dtype.byteorder in "=<|" and sys.byteorder == "little"
                                and getattr(self.bytes, "lease", None) is not None)
        return ok

    def _slow(self, elapsed_ns: int, nbytes: int) -> bool:
        return elapsed_ns > self.SLOW_NS_MIN and elapsed_ns > self.SLOW_NS_PER_BYTE * nbytes

    def _read_warm(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray,
                   fresh: bool = False) -> bool:
        """The warm path of :meth:`_read_mapped`: every chunk already checked in this process, its
        map leased and trusted (not probing residency). No lock, no syscall but the size check.
        Plain float32 windows: one compiled call copies every row piece of every chunk
        (``eegbench._ckernels.copy_window``, C; ``EEGBENCH_WARM_KERNEL=0`` or not
        built: NumPy, one view per chunk). ``fresh``: ``out`` is the C-ordered float32 array
        :meth:`read` just made (no layout check needed). An ``out`` inside an array of at least
        :data:`STREAM_MIN_BYTES` (a batch slot) is written with non-temporal stores. False (nothing
        done): take :meth:`_read_mapped`."""
        ready = self.__dict__.get("_h_raw")  # chunk -> (handle, offset) once checked through a leased map
        if ready is None:
            return False
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        lo, hi = ready[first], ready[last]
        if lo is None or hi is None:
            return False
        h = lo[0]
        # chunks are numbered file by file, so a window whose first and last chunks were read
        # through one map lies in that map's file (entries between may name an older map of it)
        view = h.view  # our reference keeps the mapping valid for this read, even if closed meanwhile
        if view is None or hi[0] is not h:
            return False
        try:
            if h.mm.size() < len(view):  # truncated while open: the careful path says so (no SIGBUS)
                return False
            if h.probe:
                # residency is being checked (a slow read, or reads after one found pages missing):
                # the window's last stored page resident counts as one check, as on the careful
                # path, and the copy stays here; missing: the careful path reads the window
                if not resident(h.mm, lo[1], hi[1] + self.n_channels * cs * self.dtype.itemsize):
                    return False
                h.probe = max(h.probe - 1, 0)  # never below 0 (threads may race here)
        except (AttributeError, ValueError):  # closed under us
            return False
        h.used = True
        plain = channels is None and self.quantization is None
        if plain and self._f32 and (fresh or (out.dtype == np.float32 and out.strides[1] == 4 and out.flags.writeable)):
            offsets = self.__dict__.get("_h_off")  # chunk -> byte offset once checked (-1: not yet)
            kernel = _WARM_COPY if _WARM_COPY is not None else _warm_copy()
            if kernel and offsets is not None and len(offsets) == len(ready):
                t0 = _clock()
                # every chunk's offset was checked (CRC, bounds) through a map of this file, whose
                # size is unchanged (identity on reopen, size above): every byte copied is in view
                base = None if fresh else out.base
                stream = base is not None and getattr(base, "nbytes", 0) >= STREAM_MIN_BYTES
                if not kernel(out, view, offsets, start, stop, cs, 4, stream):
                    return False  # a chunk between not checked yet: the careful path
                if _clock() - t0 > self.SLOW_NS_MIN and self._slow(_clock() - t0, out.nbytes):
                    h.probe = 1
                return True
        spots = ready[first:last + 1]
        if None in spots:
            return False
        shape, dtype = (self.n_channels, cs), self.dtype
        c0 = first * cs
        t0 = _clock()
        n = len(spots)
        if plain and n > 2:
            off0 = spots[0][1]
            step = spots[1][1] - off0
            if step >= shape[0] * cs * dtype.itemsize and all(
                    spots[k][1] == off0 + k * step for k in range(2, n)):
                # equally spaced chunks (every format writes a file's chunks in order): one strided
                # view over them, so the window's whole middle chunks are one copy, not one per chunk
                span = np.ndarray((n, *shape), dtype, view, off0, (step, cs * dtype.itemsize, dtype.itemsize))
                a0, m = start - c0, n - 2
                n0 = cs - a0
                out[:, :n0] = span[0, :, a0:]
                out[:, n0:n0 + m * cs].reshape(shape[0], m, cs)[...] = span[1:n - 1].transpose(1, 0, 2)
                out[:, n0 + m * cs:] = span[n - 1, :, :stop - c0 - (n - 1) * cs]
                del span  # no view of the map may outlive the read
                if _clock() - t0 > self.SLOW_NS_MIN and self._slow(_clock() - t0, out.nbytes):
                    h.probe = 1
                return True
        for _h, off in spots:
            a, b = max(start, c0), min(stop, c0 + cs)
            if plain:
                out[:, a - start:b - start] = np.ndarray(shape, dtype, view, off)[:, a - c0:b - c0]
            else:
                self._emit(np.ndarray(shape, dtype, view, off), a - c0, b - c0, channels, out, a - start)
            c0 += cs
        if _clock() - t0 > self.SLOW_NS_MIN and self._slow(_clock() - t0, out.nbytes):
            h.probe = 1  # pages missing (or the thread was preempted): the next read checks
        return True

    def _read_mapped(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray) -> bool:
        """Uncompressed chunks copied (or calibrated) straight from a leased map of their file into
        ``out``: one copy per sample where ``pread`` + assembly make two, and no cache, lock or
        decode step per chunk. Each chunk's CRC32C is checked on its first use in this process
        (stores are replaced by rename, never rewritten in place), the file size on every read
        (a file truncated while open would otherwise kill the process with SIGBUS).

        Residency: on a fresh map's first read (``files.FRESH_PROBE_READS``), on the read after a
        slow one, and for ``files.PROBE_READS`` reads after one found pages missing, a read first
        asks ``mincore`` whether the window's chunks are in the page cache; if not, they are read
        with one ``pread`` of their adjacent bytes and copied from there: a map would fetch them a 4 KiB page fault at a time (14-20 ms for an
        evicted 2-s window of 129 channels against 2-3 ms this way). A warm map is trusted without
        a syscall (:meth:`_read_warm`); a cold window after a warm streak faults once, then the
        check is on again. Returns False (nothing done) when the chunks are not all raw in one
        mappable file."""
        if not self.__dict__.get("_h_ready"):
            with self._lock:
                try:
                    self._ensure_ready()
                except Exception as exc:
                    self._raise_typed(exc, start // self.chunk_samples)
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        try:
            spots = [self._raw_chunk_at(ci) for ci in range(first, last + 1)]
        except Exception as exc:
            self._raise_typed(exc, first if first == last else list(range(first, last + 1)))
        if any(s is None for s in spots) or len({s[0] for s in spots}) != 1:
            return False
        rel = spots[0][0]
        full = self.n_channels * cs * self.dtype.itemsize
        n_chunks = -(-self.n_times // cs)
        ready = self.__dict__.get("_h_raw")
        offsets = self.__dict__.get("_h_off")
        if ready is None or len(ready) != n_chunks or offsets is None or len(offsets) != n_chunks:
            ready = self._h_raw = [None] * n_chunks
            offsets = self._h_off = np.full(n_chunks, -1, dtype=np.int64)  # the compiled warm copy's table
        view = buf = None
        try:
            h, view = self._leased(rel)
            mm = h.mm
            if mm is None:  # closed by another thread since: read through the chunk path
                return False
            end = max(s[2] + (4 if s[3] is None else 0) for s in spots)
            if mm.size() < end or len(view) < end:
                raise self.corrupt(f"signal file {rel} is shorter than its chunks (truncated while open)")
            lo = min(s[1] for s in spots)
            buf, base = view, 0
            if h.probe:
                if end - lo <= self.COALESCE_LIMIT * len(spots) * full and not resident(mm, lo, end):
                    # evicted: the covering chunks (adjacent in every format's layout) in one disk
                    # request rather than a page fault per 4 KiB of the map: a readahead of their span
                    # into the page cache, then the copies below read the map (no intermediate
                    # buffer); where readahead cannot be asked for, one pread of the span
                    if not (EVICTED_READAHEAD and readahead(mm, lo, end)):
                        buf, base = self.bytes.get(rel, lo, end), lo
                        if len(buf) != end - lo:
                            raise self.corrupt(f"signal file {rel} is shorter than its chunks (truncated while open)")
                    h.probe = _files.PROBE_READS
                else:  # never below 0 (threads may race here): a negative count would check forever
                    h.probe = max(h.probe - 1, 0)
            t0 = _clock()
            for ci, (_rel, off, crc_stop, crc) in zip(range(first, last + 1), spots):
                if crc_stop < off + full:
                    raise self.corrupt(f"chunk {ci} in {rel} holds {crc_stop - off} bytes, expected {full}")
                if ready[ci] is None:
                    at = crc_stop - base
                    stored = crc if crc is not None else int.from_bytes(buf[at:at + 4], "little")
                    raw = np.frombuffer(buf, dtype=np.uint8, count=crc_stop - off, offset=off - base)
                    ok = google_crc32c.value(raw) == stored
                    del raw
                    if not ok:
                        raise self.corrupt(f"chunk {ci} in {rel} fails its crc32c checksum "
                                           f"(bytes {off}..{crc_stop}: modified or corrupted)")
                    ready[ci] = (h, off)
                    offsets[ci] = off
                elif ready[ci][0] is not h:
                    ready[ci] = (h, off)  # checked before, through a map since closed
                c0 = ci * cs
                a, b = max(start, c0), min(stop, c0 + cs)
                src = np.frombuffer(buf, dtype=self.dtype, count=self.n_channels * cs, offset=off - base)
                try:
                    self._emit(src.reshape(self.n_channels, cs), a - c0, b - c0, channels, out, a - start)
                finally:
                    del src  # no view of the map may outlive the read
            if buf is view and not h.probe and self._slow(_clock() - t0, out.nbytes):
                h.probe = 1
        except Exception as exc:
            self._raise_typed(exc, first if first == last else list(range(first, last + 1)))
        finally:
            del view, buf
        return True

    # --- compressed chunks decoded straight out of a map ------------------------------------
    @property
    def _stored_mappable(self) -> bool:
        """Compressed local storage whose format says where each chunk's stored bytes lie."""
        ok = self.__dict__.get("_smapok")
        if ok is None:
            ok = self._smapok = (self.layout.codec.compression != "none"
                                 and type(self)._stored_chunk_at is not ChunkedSource._stored_chunk_at
                                 and os.environ.get("EEGBENCH_MAP_COMPRESSED", "1") != "0"
                                 and getattr(self.bytes, "lease", None) is not None)
        return ok

    def _read_stored(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray) -> bool:
        """Compressed chunks decoded straight out of a leased map of their file, each converted
        into its slice of ``out`` (issue #9): no ``pread`` copy of the stored bytes out of the page
        cache, and no CRC32C of them after their first read in this process.

        Integrity, the policy of :meth:`_read_mapped`: a chunk's CRC32C is checked on its first
        read in this process (a damaged chunk is reported there, before any decoder sees it); the
        file size on every read (a file truncated while open gives CorruptStoreError, never
        SIGBUS); the file's identity (device, inode, size, mtime) whenever a map is (re)opened, so a
        store replaced by rename is refused. Stores are written by rename, never in place. Bytes
        read with ``pread`` (evicted windows below) are the same file's and follow the same rule.

        Residency: ``mincore`` of the window's last stored page on every read (~2 us against a
        decode of hundreds); when it is missing and the chunks' bytes are adjacent, they are read
        with one ``pread`` instead of a 4 KiB page fault at a time through the map.

        Decoded chunks go through the decoded-chunk cache as on the chunk path (copied when the
        decoder returned a view of the map); no view of the map outlives the read. Returns False
        (nothing done) when the chunks are not all in one mappable file."""
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        use_cache = CHUNK_CACHE.max_bytes > 0
        got = buf = arr = None
        with self._lock:
            try:
                self._ensure_ready()
                got = self._stored_bytes(range(first, last + 1), coalesce_only=False)
                if got is None:
                    return False
                spots, buf, base = got
                self._decode_into(first, spots, buf, base, start, stop, channels, out, use_cache)
            except Exception as exc:
                self._raise_typed(exc, first if first == last else list(range(first, last + 1)))
            finally:
                del got, buf, arr  # no view of the map may outlive the read
        return True

    def _decode_into(self, first: int, spots: list, buf: Any, base: int, start: int, stop: int,
                     channels: np.ndarray | None, out: np.ndarray, use_cache: bool) -> None:
        """Decode chunks ``first, first + 1, ...`` (their stored ``spots`` in ``buf``, whose byte 0 is
        the file's byte ``base``) through the decoded-chunk cache, each converted into its slice of
        ``out`` (samples ``[start, stop)``). Caller holds ``self._lock``; no decoded view of ``buf``
        is kept once a chunk is emitted."""
        cs = self.chunk_samples
        for ci, spot in enumerate(spots, first):
            key = (self._uid, ci)
            arr = CHUNK_CACHE.get(key) if use_cache else None
            if arr is None:
                arr = self._decode_from(ci, spot, buf, base, keep=use_cache)
                if use_cache:
                    CHUNK_CACHE.put(key, arr)
            c0 = ci * cs
            a, b = max(start, c0), min(stop, c0 + cs)
            self._emit(arr, a - c0, b - c0, channels, out, a - start)
            arr = None

    def _read_stored_warm(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray) -> bool:
        """The warm path of :meth:`_read_stored`: every chunk of the window already checked (CRC32C)
        in this process, in one file whose map this source keeps (``_h_slease``: leased once, then
        reused while the manager keeps it open, as :meth:`_read_warm` does). The file size and the
        decoded shape are checked on every read; residency (``mincore`` of the stored span) as on
        the uncompressed warm path: while the map is probing (fresh, or after a slow or evicted read),
        not on a warm streak; a slow read turns the check back on. False (nothing done): take
        :meth:`_read_stored`, which checks, reads evicted bytes and reports errors."""
        checked = self.__dict__.get("_h_stored_ok")
        if checked is None:
            return False
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        if last >= len(checked) or 0 in checked[first:last + 1]:
            return False
        spots = [self._stored_chunk_at(ci) for ci in range(first, last + 1)]
        rel = spots[0][0]
        held = self.__dict__.get("_h_slease")
        view = None if held is None or held[0] != rel else held[1].view
        if view is None:  # first warm read of this file, or its map was closed since: lease it again
            h, view = self.bytes.lease(rel)  # (re)opening checks the file's identity
            self._h_slease = (rel, h)
        else:
            h = held[1]
        arr = None
        try:  # locals cleared on the way out: no view of the map may outlive the read
            mm = h.mm
            end = max(sp[2] for sp in spots)
            if mm is None or mm.size() < end or len(view) < end or any(sp[0] != rel for sp in spots):
                return False  # closed, truncated or several files: the careful path
            if h.probe:  # residency checked (a fresh map, or reads after a slow or evicted one)
                if not resident(mm, min(sp[1] for sp in spots), end):
                    return False  # evicted: the careful path reads the span in one request
                h.probe = max(h.probe - 1, 0)  # never below 0 (threads may race here)
            h.used = True
            use_cache = CHUNK_CACHE.max_bytes > 0
            t0 = _clock()
            if use_cache or not self._blosc_read(view, start, stop, channels, out):
                with self._lock:
                    try:
                        self._decode_into(first, spots, view, 0, start, stop, channels, out, use_cache)
                    except Exception as exc:
                        self._raise_typed(exc, first if first == last else list(range(first, last + 1)))
            if not h.probe and self._slow(_clock() - t0, out.nbytes):
                h.probe = 1  # pages missing (a fault per 4 KiB), or preempted: the next read checks
        finally:
            del view, arr
        return True

    def _blosc_read(self, view: Any, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray) -> bool:
        """The window decoded by one compiled call (``decode_blosc``: each chunk's Blosc frame
        decompressed by c-blosc into a per-thread buffer and converted into its slice of ``out``)
        when every chunk of it was checked and is one Blosc frame (:meth:`_blosc_span`). False:
        take the numcodecs path (``out`` may be partly written; that path writes all of it)."""
        spans = self.__dict__.get("_h_bspan")
        kernel = _BLOSC_WINDOW if _BLOSC_WINDOW is not None else _blosc_window()
        if spans is None or not kernel or (out.shape[1] > 1 and out.strides[1] != 4):
            return False
        kind = _KINDS.get(self.dtype)
        q = self.quantization
        if kind is None or (kind == 3) != (q is None):
            return False
        cs, nch = self.chunk_samples, self.n_channels
        need = nch * cs * self.dtype.itemsize
        scratch = getattr(_SCRATCH, "buf", None)
        if scratch is None or len(scratch) < need:
            scratch = _SCRATCH.buf = np.empty(need, dtype=np.uint8)
        if channels is None:
            rows = self.__dict__.get("_h_rows")
            if rows is None:
                rows = self._h_rows = np.arange(nch, dtype=np.int64)
        else:
            rows = np.ascontiguousarray(channels, dtype=np.int64)
        if q is None:
            return kernel(out, view, spans, start, stop, cs, nch, kind, rows, None, None, None, scratch)
        return kernel(out, view, spans, start, stop, cs, nch, kind, rows, q.scale, q.offset, q.gain, scratch)

    def _stored_bytes(self, indices: Any, coalesce_only: bool) -> tuple[list, Any, int] | None:
        """``(spots, buf, base)`` for chunks ``indices`` (under the lock, after ``_prepare``): their
        :meth:`_stored_chunk_at` entries and a uint8 buffer holding file bytes ``[base, ...)`` of
        them: the leased map (``base`` 0; the caller drops it before returning) or, when their last
        page is not resident and they are adjacent, one ``pread`` of their covering bytes. None: not
        all in one mappable file, or (``coalesce_only``) evicted and not adjacent (the caller's
        coalesced ``get_ranges`` does better than a page fault per 4 KiB)."""
        spots = [self._stored_chunk_at(ci) for ci in indices]
        if not spots or any(s is None for s in spots) or len({s[0] for s in spots}) != 1:
            return None
        rel = spots[0][0]
        view = data = None
        try:  # locals cleared on the way out: a traceback must not keep a view of the map alive
            h, view = self._leased(rel)
            mm = h.mm
            if mm is None:  # closed by another thread since: read through the chunk path
                return None
            h.used = True
            lo, end = min(s[1] for s in spots), max(s[2] for s in spots)
            if mm.size() < end or len(view) < end:
                raise self.corrupt(f"file {rel} is shorter than its chunks (truncated while open)")
            if resident(mm, lo, end):
                return spots, view, 0
            h.probe = _files.PROBE_READS  # evicted: the warm path checks residency for a while
            if end - lo <= self.COALESCE_LIMIT * sum(s[2] - s[1] for s in spots):
                # evicted: the covering chunks (adjacent in every format's layout) in one disk request
                # rather than a page fault per 4 KiB of the map: a readahead of their span, then the
                # decoders read the map (no buffer, no copy, no file-manager round trip); where
                # readahead cannot be asked for, one pread of the span
                if EVICTED_READAHEAD and readahead(mm, lo, end):
                    return spots, view, 0
                data = np.frombuffer(self.bytes.get(rel, lo, end), dtype=np.uint8)
                if len(data) != end - lo:
                    raise self.corrupt(f"file {rel} is shorter than its chunks (truncated while open)")
                return spots, data, lo
            return None if coalesce_only else (spots, view, 0)
        finally:
            del view, data

    def _decode_from(self, ci: int, spot: tuple[str, int, int, int | None], buf: Any, base: int,
                     keep: bool) -> np.ndarray:
        """Chunk ``ci`` decoded from its stored bytes in ``buf`` (file bytes from ``base``), its
        CRC32C checked on its first use in this process. ``keep``: never a view of ``buf``."""
        rel, off, stp, crc = spot
        data = None
        try:  # locals cleared on the way out: a traceback must not keep a view of the map alive
            data = buf[off - base:stp - base]
            checked = self.__dict__.get("_h_stored_ok")
            if checked is None or len(checked) <= ci:
                checked = self._h_stored_ok = bytearray(-(-self.n_times // self.chunk_samples))
            if not checked[ci]:
                if crc is None:  # (each format's own wording of the error)
                    crc = int.from_bytes(data[-4:].tobytes(), "little")
                    if len(data) < 4 or google_crc32c.value(data[:-4]) != crc:
                        raise self.corrupt(f"chunk {ci} in {rel} fails its crc32c checksum (modified or corrupted)")
                elif google_crc32c.value(data) != crc:
                    raise self.corrupt(f"chunk {ci} fails its CRC32C check in {rel} (bytes {off}..{stp})")
                checked[ci] = 1
                span = self._blosc_span(ci, spot) if _BLOSC_WINDOW is not False else None
                if span is not None:
                    spans = self.__dict__.get("_h_bspan")
                    if spans is None or len(spans) != len(checked):
                        spans = self._h_bspan = np.full((len(checked), 2), -1, dtype=np.int64)
                    spans[ci] = span
            arr = self._checked_shape(ci, self._decode_stored_bytes(ci, data))
            if keep and np.may_share_memory(arr, buf):  # bounds only: never keep a view of the map
                arr = arr.copy()
                arr.flags.writeable = False
            return arr
        finally:
            del data, buf

    def _load_stored(self, indices: list[int]) -> list[np.ndarray] | None:
        """Chunks ``indices`` decoded straight out of the map (the batch path's :meth:`_load_chunks`;
        same integrity rules as :meth:`_read_stored`); None: take :meth:`_load_chunks`."""
        got = None
        try:
            got = self._stored_bytes(indices, coalesce_only=True)
            if got is None:
                return None
            spots, buf, base = got
            return [self._decode_from(ci, spot, buf, base, keep=True) for ci, spot in zip(indices, spots)]
        finally:
            del got

    def read(self, start: int, stop: int, channels: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
        """Float32 volts of samples ``[start, stop)`` of ``channels``, written straight into ``out``
        (a new array when None): each overlapping chunk is decoded (or taken from the cache; the
        bytes of several missing chunks in one coalesced fetch) and converted into its slice of
        ``out``; nothing else is allocated."""
        if not self.__dict__.get("_h_ready"):
            self.ready()
        fresh = out is None
        if fresh:
            out = np.empty((self.n_channels if channels is None else len(channels), stop - start), dtype=np.float32)
        else:
            out = self._out(stop - start, channels, out)
        if stop <= start:
            return out
        if self._mappable and (self._read_warm(start, stop, channels, out, fresh)
                               or self._read_mapped(start, stop, channels, out)):
            return out
        if self._stored_mappable and (self._read_stored_warm(start, stop, channels, out)
                                      or self._read_stored(start, stop, channels, out)):
            return out
        cs = self.chunk_samples
        first, last = start // cs, (stop - 1) // cs
        loaded = {first: self.chunk(first)} if first == last else self.chunks(range(first, last + 1))
        for ci in range(first, last + 1):
            c0 = ci * cs
            a, b = max(start, c0), min(stop, c0 + cs)
            self._emit(loaded[ci], a - c0, b - c0, channels, out, a - start)
        return out

    def read_batch(self, starts: np.ndarray, length: int, channels: np.ndarray | None,
                   out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Equal-length windows at ``starts`` as one ``(n_windows, n_channels, length)`` float32
        array (``out`` when given), each window converted straight into its slot; each chunk is
        decoded at most once per call (with or without the decoded-chunk cache) and the bytes of
        all missing chunks are fetched together. With ``rows``, window ``i`` goes to
        ``out[rows[i]]`` of a larger batch ``out`` (a batch spanning several recordings)."""
        self.ready()
        starts = np.asarray(starts, dtype=np.int64)
        n_ch = self.n_channels if channels is None else len(channels)
        shape = (len(starts), n_ch, length)
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if out is None or out.ndim != 3 or out.shape[1:] != shape[1:] or out.dtype != np.float32 \
                    or len(rows) != len(starts) or (len(rows) and not 0 <= rows.min() <= rows.max() < len(out)):
                raise ValueError(f"rows need a float32 out of (n, {n_ch}, {length}) and one row per window")
        elif out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
        if length <= 0 or not len(starts):
            return out
        slot = range(len(starts)) if rows is None else rows.tolist()
        if self._mappable:
            for i, s in enumerate(starts.tolist()):  # uncompressed: one copy per window out of the map
                self.read(s, s + length, channels, out=out[slot[i]])
            return out
        cs = self.chunk_samples
        needed = set()
        for s in starts.tolist():
            needed.update(range(s // cs, (s + length - 1) // cs + 1))
        loaded = self.chunks(needed)
        for i, s in enumerate(starts.tolist()):
            stop = s + length
            for ci in range(s // cs, (stop - 1) // cs + 1):
                c0 = ci * cs
                a, b = max(s, c0), min(stop, c0 + cs)
                self._emit(loaded[ci], a - c0, b - c0, channels, out[slot[i]], a - s)
        return out
