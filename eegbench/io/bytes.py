"""The narrow door through which every reader gets stored bytes: :class:`ByteSource`.

See :mod:`eegbench.io` for the protocol and how to add a source for a new kind of location.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .files import FILES

#: ranges of one ``get_ranges`` call closer than this are read as one (local files: one page)
LOCAL_MAX_GAP = 4096


@runtime_checkable
class ByteSource(Protocol):
    """Read-only byte access to the files of one store (paths are POSIX, relative to the store).

    ``get`` and ``get_ranges`` return *bytes-like* objects (``bytes`` or read-only uint8 NumPy
    views); a range reaching past the end of the file is returned short, never padded, so a
    reader can tell truncation from data. Errors: a missing file raises ``FileNotFoundError``;
    transport trouble raises ``OSError`` (retried by the source itself where that makes sense);
    running out of descriptors raises :class:`~eegbench.errors.ResourceLimitError`.
    Implementations must be picklable and fork-safe (hold no live handles in their state).
    """

    def size(self, path: str) -> int:
        """Size of ``path`` in bytes."""
        ...

    def get(self, path: str, start: int, stop: int) -> Any:
        """Bytes ``[start, stop)`` of ``path``."""
        ...

    def get_ranges(self, path: str, ranges: Sequence[tuple[int, int]]) -> list[Any]:
        """Bytes of each ``(start, stop)`` of ``path``, in the order given; neighbouring ranges
        are fetched together (see :func:`coalesce`)."""
        ...


def coalesce(ranges: Sequence[tuple[int, int]], max_gap: int = LOCAL_MAX_GAP,
             max_bytes: int = 64 << 20) -> list[tuple[int, int, list[int]]]:
    """Group ``ranges`` into reads: ``(start, stop, [indices of the ranges it covers])``.

    Ranges are sorted by start; a range joins the current read when it begins at most
    ``max_gap`` bytes after the read's end (overlaps included) and the read stays under
    ``max_bytes``. Like zarr-python's ``max_gap_bytes`` / fsspec's ``merge_offset_ranges``.
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    out: list[tuple[int, int, list[int]]] = []
    for i in order:
        a, b = ranges[i]
        if out:
            s, e, members = out[-1]
            if a <= e + max_gap and max(e, b) - s <= max_bytes:
                out[-1] = (s, max(e, b), [*members, i])
                continue
        out.append((a, b, [i]))
    return out


def split_reads(reads: list[tuple[int, int, list[int]]], data: Sequence[Any],
                ranges: Sequence[tuple[int, int]]) -> list[Any]:
    """Cut the buffers of coalesced ``reads`` back into one zero-copy view per original range
    (short where a read came back short)."""
    out: list[Any] = [None] * len(ranges)
    for (s, _e, members), buf in zip(reads, data):
        arr = np.frombuffer(buf, dtype=np.uint8)
        for i in members:
            a, b = ranges[i]
            out[i] = arr[a - s:b - s]
    return out


class LocalSource:
    """Files on a local file system, read with ``pread`` through the process-wide
    :data:`~eegbench.io.files.FILES` manager (bounded descriptors). Also lends read-only maps
    (:meth:`mapped`) for uncompressed arrays, whose reads are then a single copy."""

    max_gap = LOCAL_MAX_GAP

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.path.abspath(os.fspath(root))
        #: identity of each file this source has read (see FileManager): a file replaced at the
        #: same path is never read as if it were the one first seen
        self.seen: dict[str, tuple[int, int, int, int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "seen": dict(self.seen)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.root, self.seen = state["root"], dict(state.get("seen", {}))

    def __repr__(self) -> str:
        return f"LocalSource({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalSource) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def path(self, path: str) -> str:
        """Absolute file-system path of store path ``path``."""
        return os.path.join(self.root, path)

    def size(self, path: str) -> int:
        return FILES.size(os.path.join(self.root, path), self.seen)

    def get(self, path: str, start: int, stop: int) -> bytes:
        return FILES.pread(os.path.join(self.root, path), max(0, stop - start), start, self.seen)

    def get_ranges(self, path: str, ranges: Sequence[tuple[int, int]]) -> list[Any]:
        if len(ranges) == 1:
            a, b = ranges[0]
            return [self.get(path, a, b)]
        full = os.path.join(self.root, path)
        reads = coalesce(ranges, self.max_gap)
        return split_reads(reads, [FILES.pread(full, e - s, s, self.seen) for s, e, _ in reads], ranges)

    def mapped(self, path: str):
        """``with source.mapped(path) as mm`` -- see :meth:`~eegbench.io.files.FileManager.mapped`."""
        return FILES.mapped(os.path.join(self.root, path), self.seen)

    def lease(self, path: str) -> tuple[Any, Any]:
        """``(handle, view)`` of the map of ``path`` -- see :meth:`~eegbench.io.files.FileManager.lease`."""
        return FILES.lease(os.path.join(self.root, path), self.seen)

    def release(self, paths: Sequence[str]) -> None:
        """Close this process's handles on ``paths`` (they reopen on the next read)."""
        for p in paths:
            full = os.path.join(self.root, p)
            FILES.release(full)
            self.seen.pop(full, None)


class SourceFile(io.RawIOBase):
    """A read-only, seekable file object over one file of a :class:`ByteSource` (for libraries
    that want a file, e.g. ``h5py.File(SourceFile(src, "x.h5"), "r")``). Holds no descriptor."""

    def __init__(self, source: ByteSource, path: str) -> None:
        super().__init__()
        self._source, self._path = source, path
        self._size = source.size(path)
        self._pos = 0
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        with self._lock:
            view = memoryview(buffer).cast("B")
            data = self._source.get(self._path, self._pos, min(self._pos + len(view), self._size))
            n = len(data)
            view[:n] = data
            self._pos += n
            return n


_SCHEMES: dict[str, Callable[[str], ByteSource]] = {}


def register_scheme(scheme: str, factory: Callable[[str], ByteSource], clobber: bool = False) -> None:
    """Make :func:`source_for` build ``factory(root)`` for roots starting with ``scheme://``."""
    scheme = scheme.lower()
    if scheme in _SCHEMES and not clobber and _SCHEMES[scheme] is not factory:
        raise ValueError(f"a byte source is already registered for {scheme}://; pass clobber=True")
    _SCHEMES[scheme] = factory


def source_for(root: str | os.PathLike | ByteSource) -> ByteSource:
    """The :class:`ByteSource` of a store root: a registered scheme (``https://``, ``s3://``,
    ``hf://`` ... once registered), a source as-is, else a :class:`LocalSource`."""
    if isinstance(root, (str, Path)) or hasattr(root, "__fspath__"):
        text = os.fspath(root)
        if "://" in text:
            scheme = text.split("://", 1)[0].lower()
            factory = _SCHEMES.get(scheme)
            if factory is None:
                from ..errors import OptionError

                raise OptionError(f"no byte source registered for {scheme}:// (root {text!r}); "
                                  "install/import the module that provides it")
            return factory(text)
        return LocalSource(text)
    return root  # already a ByteSource
