"""Evicted windows, honestly defined, against ``O_DIRECT`` reads of the same bytes in the same run.

Issue #9's goal is "evicted window <= 2x an O_DIRECT read of the same bytes". Two different things
have been called "cold" here; both are measured, under their own names:

* **evicted** (:func:`measure_evicted`; the goal's figure): what a training loop over a dataset
  larger than RAM sees. The store stays open, its metadata parsed and kept (chunk indexes, the list
  of chunks whose CRC32C this process has checked); only the signal pages are gone: before each timed
  window every file of the store is paged out of this process's own mappings (``MADV_PAGEOUT``) and
  dropped from the page cache (fsync + ``POSIX_FADV_DONTNEED``), and ``mincore`` on a fresh map must
  show 0 resident bytes (the largest figure seen is reported; a non-zero one means the row is not cold).
* **first read after close** (``read_speed``'s ``ms/window after close``): the store closed before
  every window (per-process state dropped, maps unmapped), then every file evicted: the window pays
  for re-reading and re-parsing the recording's metadata from disk too (several small random reads).

Yardsticks, timed window by window in the same process, in alternating order with the evicted read
(even windows: evicted read first; odd: ``O_DIRECT`` first), so machine noise hits both alike:

* ``O_DIRECT`` **span**: one ``O_DIRECT`` read of the bytes the reader must read: the span from the
  first to the last byte of the window's chunks in their file (a 2-s window over 1-s chunks covers
  three chunks: ~1.5x the window's own bytes), rounded out to 4 KiB. The goal's ratio is
  evicted ÷ this, the median of the per-window ratios.
* ``O_DIRECT`` **window bytes**: the window's stored bytes only (raw or compressed), at the span's start.

Device cache. This VM's virtual disk has a cache of its own below the page cache: an ``O_DIRECT``
read of a span just read took ~0.5 ms where the first read of it took ~1.0 ms (774 KB). So before
the timed pair, every window's span is read once with ``O_DIRECT`` (untimed): both timed reads then
find the device in the same state, and the evicted read pays for the page cache and the reader,
nothing else. Eviction skips ``fsync`` (store files are not dirty; it is used only if pages stay),
and right before the timed pair one 4 KiB ``O_DIRECT`` read of the file's first page wakes the I/O
path: the first read after the eviction's pause was 0.05-0.2 ms slower than the next here. The span comes from the format's chunk locations (raw or stored chunks; this also
loads any index a first touch of a Zarr shard needs); only where a format names none is the window
read once, untimed, to record its byte requests. A window's chunks are therefore usually read for
the first time in the process by the timed read, which includes their CRC32C check (once per chunk
and process: a training loop's first epoch; later epochs skip it, ~0.1 ms per window here).
"""

from __future__ import annotations

import mmap
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import _fixtures as fx

_ALIGN = 4096


def evict_pages(files: list[Path]) -> int:
    """Page the files out of this process's own mappings, drop them from the page cache, and return
    the bytes ``mincore`` still finds resident (0: cold). Pages under I/O cannot be dropped (a
    readahead may still be completing): a non-zero residue is retried a few times, ms apart."""
    from .bench_reference import pageout_own_mappings

    for attempt in range(5):
        pageout_own_mappings(files)
        if attempt == 0:  # store files are never dirty: no fsync (it made the next read wait for a flush)
            _dontneed(files)
        else:
            fx.evict(files)  # fsync + POSIX_FADV_DONTNEED: whatever was left
        left = fx.resident_bytes(files)
        if not left:
            return 0
        time.sleep(0.002 * (attempt + 1))  # pages still under I/O (a readahead in flight) stay: try again
    return left


def _dontneed(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class _Recorder:
    """A store's byte source that remembers every byte range asked for (file -> [start, stop])."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.spans: dict[str, list[int]] = {}

    def _note(self, path: str, a: int, b: int) -> None:
        s = self.spans.setdefault(path, [a, b])
        s[0], s[1] = min(s[0], a), max(s[1], b)

    def get(self, path: str, start: int, stop: int) -> Any:
        self._note(path, start, stop)
        return self._inner.get(path, start, stop)

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        for a, b in ranges:
            self._note(path, a, b)
        return self._inner.get_ranges(path, ranges)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def chunk_span(rec: Any, start: int, stop: int) -> tuple[Path, int, int] | None:
    """``(file, first byte, end)`` of the stored chunks a read of samples ``[start, stop)`` of
    recording ``rec`` (of an open local store) must read, found from the format's chunk locations
    (raw or stored chunks) or else by reading the window once and recording its byte requests.
    None if the reader asked for bytes of more than one file or none at all (e.g. it read a map),
    or if the reader exposes none of this (an older eegbench measured by ``read_speed --before``)."""
    try:
        return _chunk_span(rec, start, stop)
    except AttributeError:
        return None


def _chunk_span(rec: Any, start: int, stop: int) -> tuple[Path, int, int] | None:
    src = rec.source
    src.ready()
    cs = src.chunk_samples
    chunks = range(start // cs, (stop - 1) // cs + 1)
    spots = [src._raw_chunk_at(ci) for ci in chunks]
    if spots and all(s is not None for s in spots) and len({s[0] for s in spots}) == 1:
        end = max(s[2] + (4 if s[3] is None else 0) for s in spots)
        return Path(src.root) / spots[0][0], min(s[1] for s in spots), end
    stored = getattr(src, "_stored_chunk_at", None)  # compressed chunks' locations (where the format says)
    if stored is not None:
        with src._lock:
            spots = [stored(ci) for ci in chunks]
        if spots and all(s is not None for s in spots) and len({s[0] for s in spots}) == 1:
            return Path(src.root) / spots[0][0], min(s[1] for s in spots), max(s[2] for s in spots)
    inner = src.bytes
    rec_src = src._bytes = _Recorder(inner)
    try:
        rec.get_data(start=start, stop=stop)
    finally:
        src._bytes = inner
    if len(rec_src.spans) != 1:
        return None
    (path, (a, b)), = rec_src.spans.items()
    return Path(src.root) / path, a, b


class _Direct:
    """``O_DIRECT`` reads into one reused page-aligned buffer."""

    def __init__(self) -> None:
        self.buf = mmap.mmap(-1, 1 << 20)

    def read(self, path: Path, start: int, stop: int) -> float:
        """Seconds for one ``O_DIRECT`` read of ``[start, stop)`` rounded out to 4 KiB."""
        a = start - start % _ALIGN
        size = -(-(stop - a) // _ALIGN) * _ALIGN
        if size > len(self.buf):
            self.buf.close()
            self.buf = mmap.mmap(-1, size)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            view = memoryview(self.buf)[:size]
            t0 = time.perf_counter()
            os.preadv(fd, [view], a)
            t = time.perf_counter() - t0
            view.release()
        finally:
            os.close(fd)
        return t

    def close(self) -> None:
        self.buf.close()


def measure_evicted(target: Any, windows: list[tuple[int, int]], window: int,
                    window_bytes: float | None = None) -> dict:
    """Evicted-window figures of an *open* target (see the module docstring): ``ms_evicted``,
    ``mb_read_evicted``, ``evicted_resident_bytes_max`` for every target; for eegbench stores also
    ``ms_odirect_span`` / ``evicted_vs_odirect_span`` (the goal's ratio) and, given the window's
    stored bytes, ``ms_odirect_window`` / ``evicted_vs_odirect_window``."""
    files = target.files
    ds = target._handles if target.kind == "store" else None
    direct = _Direct() if ds is not None and hasattr(os, "O_DIRECT") else None
    times, spans, wins, r_span, r_win, nbytes, resident = [], [], [], [], [], 0, 0
    # steady state first: one evicted read per recording, untimed. A reader that has just read warm
    # trusts its maps, so its first evicted read of each recording faults through the map page by
    # page (eegbench: 4-5 ms, then it checks residency again); a loop over data larger than RAM is
    # past that, and with 20 recordings it would be a fifth of 100 timed windows
    lengths = target.lengths
    for r in sorted({r for r, _ in windows}):
        evict_pages(files)
        s = next(s for rr, s in windows if rr == r)
        target.read(r, (s + 3 * window) % max(lengths[r] - window, 1), window)  # another window of it
    try:
        for k, (r, s) in enumerate(windows):
            # stores: where the window's chunks lie (from the format's chunk locations: the timed read
            # checks their CRC32C, as on a training loop's first epoch). No target reads the window
            # before its timed read, so a library's own chunk cache (h5py's) cannot serve it
            span = chunk_span(ds[r], s, s + window) if direct is not None else None
            if span is not None:
                direct.read(*span)  # untimed: the device's own cache in the same state for both timed reads
            resident = max(resident, evict_pages(files))
            if span is not None:  # a 4 KiB O_DIRECT read elsewhere: the first read after a pause was slower
                direct.read(span[0], 0, _ALIGN)
            pair = []
            for step in ((0, 1) if k % 2 == 0 else (1, 0)):
                if step == 0:
                    before = fx.disk_read_bytes()
                    t0 = time.perf_counter()
                    target.read(r, s, window)
                    t = time.perf_counter() - t0
                    nbytes += fx.disk_read_bytes() - before
                elif span is not None:
                    path, a, b = span
                    pair.append(direct.read(path, a, b))
                    if window_bytes:
                        pair.append(direct.read(path, a, a + int(window_bytes)))
            times.append(t)
            if pair:
                spans.append(pair[0])
                r_span.append(t / pair[0])
                if len(pair) > 1:
                    wins.append(pair[1])
                    r_win.append(t / pair[1])
    finally:
        if direct is not None:
            direct.close()
    row = {"ms_evicted": 1000 * statistics.median(times), "mb_read_evicted": nbytes / len(windows) / 1e6,
           "evicted_resident_bytes_max": resident}
    if spans:
        row.update(ms_odirect_span=1000 * statistics.median(spans), evicted_vs_odirect_span=statistics.median(r_span),
                   evicted_ratio_q90=float(np.percentile(r_span, 90)))
    if wins:
        row.update(ms_odirect_window=1000 * statistics.median(wins),
                   evicted_vs_odirect_window=statistics.median(r_win))
    return row
