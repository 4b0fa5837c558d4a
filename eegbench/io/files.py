"""One process-wide, capped LRU of open files and memory maps shared by every reader.

In the spirit of xarray's ``CachingFileManager``: a reader never owns a descriptor. It names a
file (an absolute path) and the manager lends it an open descriptor or a read-only ``mmap`` for
the duration of one call (:meth:`FileManager.pread`, :meth:`FileManager.mapped`), opening it if
needed and closing the least recently used handle beyond the cap. A handle that is lent out
(*pinned*) is never closed under its reader: closing it is deferred until it is returned.
Readers therefore keep only paths (their pickled state is already a reopen recipe) and a store
of 70,000 recordings needs no more than ``maxsize`` descriptors, however it is read.

* Cap: ``EEGBENCH_MAX_OPEN_FILES`` (default 128, well below the usual soft limit of 1024);
  change at run time with :meth:`FileManager.resize`. A mapping counts as one handle (CPython's
  ``mmap`` keeps a duplicate of the descriptor until it is closed).
* Running out of descriptors (``EMFILE``/``ENFILE``) while opening: every handle not in use is
  closed and the open is retried once; if it still fails,
  :class:`~eegbench.errors.ResourceLimitError` says so -- never :class:`CorruptStoreError`.
* ``fork``: the child starts with an empty manager (``os.register_at_fork``, plus a pid check on
  every call for forks that skip the hooks) and closes its copies of the parent's descriptors;
  the parent's are untouched. Threads: one lock guards the table; reads happen outside it.
* A mapping that still has exported buffers (a NumPy view somebody holds) cannot be closed;
  eviction then drops the manager's reference and the kernel mapping goes with the last view.
* Counters (``opens``, ``evictions``, ``hits``) let tests and benchmarks see the work done.
"""

from __future__ import annotations

import errno
import gc
import mmap
import os
import threading
from collections import OrderedDict
from typing import Any

from ..errors import CorruptStoreError, ResourceLimitError

DEFAULT_MAX_OPEN_FILES = 128
_EXHAUSTED = (errno.EMFILE, errno.ENFILE)


def max_open_files_default() -> int:
    """The cap from ``EEGBENCH_MAX_OPEN_FILES`` (default 128, at least 1)."""
    try:
        return max(1, int(os.environ.get("EEGBENCH_MAX_OPEN_FILES", DEFAULT_MAX_OPEN_FILES)))
    except ValueError:
        return DEFAULT_MAX_OPEN_FILES


def is_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` means "no file descriptor left" (also as HDF5 or a library words it)."""
    if isinstance(exc, ResourceLimitError):
        return True
    if isinstance(exc, OSError) and exc.errno in _EXHAUSTED:
        return True
    text = str(exc)
    return "Too many open files" in text or "errno = 24" in text or "errno = 23" in text


def open_random_access(path: str) -> int:
    """Open ``path`` read-only, close-on-exec, marked for random access (no 8 MiB readahead)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    return fd


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one file from another that replaced it at the same path."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Handle:
    """One open descriptor or map. For maps lent by :meth:`FileManager.lease`: ``view`` is a uint8
    NumPy view of the whole map (None once closed), ``probe`` how many more reads should check page
    residency (readers' business; a fresh map starts at :data:`FRESH_PROBE_READS`), ``used`` a
    second-chance bit set by readers that skip the manager (see :meth:`FileManager.lease`)."""

    __slots__ = ("fd", "mm", "pins", "doomed", "ident", "view", "probe", "used")

    def __init__(self, fd: int | None, mm: mmap.mmap | None, ident: tuple[int, int, int, int]) -> None:
        self.fd, self.mm, self.pins, self.doomed, self.ident = fd, mm, 0, False, ident
        self.view: Any = None
        self.probe = FRESH_PROBE_READS
        self.used = False

    def close(self) -> None:
        fd, mm, self.fd, self.mm = self.fd, self.mm, None, None
        self.view = None  # dropped first: the map then closes unless a reader's copy is mid-read
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # views of it are alive: unmapped (and its fd closed) with the last one
                pass


class _Mapped:
    """Context manager lending a pinned mapping (see :meth:`FileManager.mapped`)."""

    __slots__ = ("_mgr", "_key", "_h", "_seen")

    def __init__(self, mgr: FileManager, key: tuple[str, int], seen: dict | None) -> None:
        self._mgr, self._key, self._h, self._seen = mgr, key, None, seen

    def __enter__(self) -> mmap.mmap:
        self._h = self._mgr._pin(self._key, self._seen)
        return self._h.mm

    def __exit__(self, *exc: Any) -> None:
        self._mgr._unpin(self._key, self._h)


_FD, _MAP = 0, 1

#: reads of a freshly opened map that check page residency before trusting it (see
#: :meth:`FileManager.lease`): only its first. A fresh map whose later windows are evicted costs one
#: slow read through the map, which turns the check back on (readers' slow-read detection); a map
#: that stays fresh for many reads made every read of a re-opened store a checked one (the asv warm
#: row: ~25 reads per map after each open, all checked, 1.4-2.1x np.memmap)
FRESH_PROBE_READS = 1
#: reads that check page residency after a read found pages missing (an evicted workload keeps checking)
PROBE_READS = 32


class FileManager:
    """Process-wide LRU of open descriptors and read-only maps, capped at ``maxsize`` handles."""

    def __init__(self, maxsize: int | None = None) -> None:
        self.maxsize = max_open_files_default() if maxsize is None else max(1, int(maxsize))
        self._lock = threading.Lock()
        self._handles: OrderedDict[tuple[str, int], _Handle] = OrderedDict()
        self._pid = os.getpid()
        self.opens = self.evictions = self.hits = 0

    # --- public API -----------------------------------------------------------------------
    # ``seen``: the caller's record of the files it has read (path -> identity). A handle is only
    # lent if it is the very file the caller saw first: a path whose file was replaced (a store
    # overwritten by rename) never serves another file's bytes -- a fresh reader gets the new
    # file, a reader that already read the old one gets CorruptStoreError, never mixed data.
    def pread(self, path: str, nbytes: int, offset: int, seen: dict | None = None) -> bytes:
        """``nbytes`` at ``offset`` of ``path`` (fewer at the end of the file)."""
        key = (path, _FD)
        h = self._pin(key, seen)
        try:
            return os.pread(h.fd, nbytes, offset)
        finally:
            self._unpin(key, h)

    def size(self, path: str, seen: dict | None = None) -> int:
        """Current size of ``path`` in bytes (``fstat`` of the managed descriptor)."""
        key = (path, _FD)
        h = self._pin(key, seen)
        try:
            return os.fstat(h.fd).st_size
        finally:
            self._unpin(key, h)

    def mapped(self, path: str, seen: dict | None = None) -> _Mapped:
        """``with manager.mapped(path) as mm:`` -- a read-only ``mmap`` of the whole file, pinned
        for the block. Views made from it must not outlive the block (copy what you keep)."""
        return _Mapped(self, (path, _MAP), seen)

    def lease(self, path: str, seen: dict | None = None) -> tuple[_Handle, Any]:
        """``(handle, view)``: the map of ``path`` and a uint8 NumPy view of all of it, for readers
        that read it again and again without pinning each time (the warm read path: no lock, no
        table lookup). The caller may keep ``handle`` and, on later reads, take ``v = handle.view``
        into a local: while that local lives the mapping stays valid even if the manager closes
        the handle meanwhile (a closed handle's ``view`` is None, and the kernel mapping goes with
        the last view). Such readers set ``handle.used = True``: eviction gives used handles a second
        chance, so a map read only through its lease still counts as recently used. Views made from
        ``view`` must not outlive the read (copy what you keep)."""
        key = (path, _MAP)
        h = self._pin(key, seen)
        try:
            view = h.view
            if view is None:
                import numpy as np

                view = h.view = np.frombuffer(h.mm, dtype=np.uint8)
            return h, view
        finally:
            self._unpin(key, h)

    def release(self, path: str) -> None:
        """Close every handle on ``path`` now (deferred for a handle in use)."""
        with self._lock:
            self._check_pid()
            for key in ((path, _FD), (path, _MAP)):
                h = self._handles.get(key)
                if h is None:
                    continue
                if h.pins:
                    h.doomed = True
                else:
                    del self._handles[key]
                    h.close()

    def clear(self) -> None:
        """Close every handle not in use (those in use close when returned)."""
        with self._lock:
            self._check_pid()
            self._evict(0)

    def resize(self, maxsize: int) -> None:
        """Change the cap; closes least recently used handles beyond it."""
        with self._lock:
            self.maxsize = max(1, int(maxsize))
            self._evict(self.maxsize)

    def __len__(self) -> int:
        return len(self._handles)

    def is_open(self, path: str) -> bool:
        """Whether this process holds a handle (descriptor or map) on ``path``."""
        self._check_pid()
        return (path, _FD) in self._handles or (path, _MAP) in self._handles

    # --- internals ------------------------------------------------------------------------
    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()

    def _after_fork(self) -> None:
        """In a forked child: close our copies of the parent's handles, start empty."""
        self._lock = threading.Lock()  # may have been held by a parent thread at fork time
        handles, self._handles = self._handles, OrderedDict()
        self._pid = os.getpid()
        for h in handles.values():
            h.close()

    def _pin(self, key: tuple[str, int], seen: dict | None = None) -> _Handle:
        path = key[0]
        with self._lock:
            if self._pid != os.getpid():
                self._after_fork()
            h = self._handles.get(key)
            want = None if seen is None else seen.get(path)
            if h is not None and not h.doomed:
                if seen is not None and h.ident != want:
                    # first read by this caller (is the handle still the file at ``path``?) or a
                    # handle opened for another caller on a newer file at the same path
                    try:
                        current = identity(os.stat(path))
                    except FileNotFoundError:
                        current = None
                    if h.ident != (want or current):
                        self._drop(key, h)
                        h = None
            if h is not None and not h.doomed:
                self._handles.move_to_end(key)
                self.hits += 1
            else:
                self._evict(self.maxsize - 1)
                h = self._open(key)
                self._handles[key] = h
            if seen is not None:
                if want is not None and h.ident != want:
                    raise CorruptStoreError(
                        f"{path} was replaced or modified after this reader first read it (the store was "
                        "overwritten while open); open the store again")
                seen[path] = h.ident
            h.pins += 1
            return h

    def _drop(self, key: tuple[str, int], h: _Handle) -> None:
        if self._handles.get(key) is h:
            del self._handles[key]
        if h.pins:
            h.doomed = True
        else:
            h.close()

    def _unpin(self, key: tuple[str, int], h: _Handle) -> None:
        with self._lock:
            h.pins -= 1
            if h.pins == 0 and (h.doomed or self._handles.get(key) is not h or len(self._handles) > self.maxsize):
                if self._handles.get(key) is h:
                    del self._handles[key]
                h.close()

    def _evict(self, keep: int) -> int:
        """Close least recently used handles not in use until at most ``keep`` remain."""
        closed = 0
        if len(self._handles) <= keep:
            return 0
        for second_chance in (keep > 0, False):
            for key in list(self._handles):
                if len(self._handles) <= keep:
                    break
                h = self._handles[key]
                if h.pins:
                    continue  # in use: its reader returns it soon; we go over the cap meanwhile
                if second_chance and h.used:  # read through its lease since it was last passed over
                    h.used = False
                    self._handles.move_to_end(key)
                    continue
                del self._handles[key]
                h.close()
                closed += 1
        self.evictions += closed
        return closed

    def _open(self, key: tuple[str, int]) -> _Handle:
        path, kind = key
        for attempt in range(3):
            try:
                fd = open_random_access(path)
                try:
                    ident = identity(os.fstat(fd))
                except BaseException:
                    os.close(fd)
                    raise
                if kind == _FD:
                    self.opens += 1
                    return _Handle(fd, None, ident)
                try:  # the map holds its own duplicate of the descriptor
                    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                finally:
                    os.close(fd)
                if hasattr(mm, "madvise") and hasattr(mmap, "MADV_RANDOM"):
                    mm.madvise(mmap.MADV_RANDOM)
                self.opens += 1
                return _Handle(None, mm, ident)
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    raise
                if attempt == 0 and self._evict(0):
                    continue
                if attempt <= 1:
                    gc.collect()  # maps dropped by eviction while views lived may be free by now
                    continue
                raise ResourceLimitError(
                    f"cannot open {path}: the process has no file descriptor left ({exc.strerror}); "
                    f"eegbench holds at most {self.maxsize} files open (EEGBENCH_MAX_OPEN_FILES) and "
                    f"{len(self._handles)} are open now, so other code holds the rest: raise the limit "
                    "(`ulimit -n`) or lower EEGBENCH_MAX_OPEN_FILES") from exc
        raise AssertionError("unreachable")


#: the one manager of this process
FILES = FileManager()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: FILES._after_fork())
