"""Evicted window vs an O_DIRECT read of the same bytes, interleaved window by window (issue #9).

    python -m benchmarks.cold_ratio STORE [STORE ...] [--windows 40] [--after-close] [--breakdown]

For each store: random 2-s all-channel windows read from the open store, its metadata parsed and
kept, with every signal page evicted before each timed window (paged out of this process's maps,
dropped from the page cache, ``mincore``-verified 0 resident bytes); each timed window is paired
with an ``O_DIRECT`` read of the span of the window's chunks (the bytes the reader must read: the
goal's yardstick) and one of the window's own stored bytes, in alternating order. See
:mod:`benchmarks._evicted` for the exact definition (and the device-cache equalisation).
``--after-close`` also times the first read after closing the store (metadata re-read from disk).

``--breakdown`` also splits an evicted compressed window into its parts, each timed window by window
beside its own ``O_DIRECT`` read of the span (see :func:`breakdown`): the buffered ``pread`` of the
span, the decode of its chunks (bytes in memory), both in a row (the floor of a one-thread reader:
I/O + decode and nothing else) and the same with the chunks decoded on two threads. "Everything
else" is the evicted figure minus that floor.

Prints medians and the median of the per-window ratios: on a machine shared with other jobs the
two figures move together, so the ratio says more than either ("evicted <= 2x O_DIRECT").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from . import _fixtures as fx
from ._evicted import evict_pages, measure_evicted


class StoreAt:
    """An already built store at ``path`` with :class:`benchmarks._fixtures.Target`'s interface."""

    kind = "store"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handles = None

    @property
    def files(self) -> list[Path]:
        return fx.files_of(self.path)

    def open(self) -> None:
        import eegbench

        self._handles = eegbench.open(self.path)

    @property
    def lengths(self) -> list[int]:
        return [r.n_times for r in self._handles]

    def read(self, r: int, start: int, n: int):
        return self._handles[r].get_data(start=start, stop=start + n)

    def release(self) -> None:
        self._handles.close()

    def close(self) -> None:
        if self._handles is not None:
            self._handles.close()
        self._handles = None


def window_stored_bytes(ds, window: int) -> float:
    """Mean stored bytes of a window's worth of samples (compressed size share, or raw)."""
    total = sum(f.stat().st_size for f in fx.files_of(Path(ds[0].source.root)))
    n = sum(r.n_times for r in ds)
    raw = ds[0].n_channels * window * ds[0].source.dtype.itemsize
    return min(raw, total * window / n)


def measure(store: Path, windows: int, after_close: bool, seed: int = 3) -> dict:
    from eegbench.formats._chunks import CHUNK_CACHE

    CHUNK_CACHE.max_bytes = 0  # every read fetches and decodes
    CHUNK_CACHE.clear()
    target = StoreAt(store)
    target.open()
    ds = target._handles
    w = int(round(2.0 * ds[0].sfreq))
    wins = fx.random_windows([r.n_times for r in ds], w, windows, seed)
    row = measure_evicted(target, wins, w, window_stored_bytes(ds, w))
    if after_close:
        times = []
        for r, s in wins:
            target.release()
            evict_pages(target.files)
            t0 = time.perf_counter()
            target.read(r, s, w)
            times.append(time.perf_counter() - t0)
        row["ms_after_close"] = 1000 * statistics.median(times)
    target.close()
    return row


def _decode(src, buf, lo: int, todo: list) -> None:
    """Decode the stored chunks ``todo`` (``(index, spot)`` pairs) out of ``buf`` (file bytes from ``lo``)."""
    for ci, (_rel, off, stp, _crc) in todo:
        src._decode_stored_bytes(ci, buf[off - lo:stp - lo])


def _pread(fd: int, lo: int, hi: int):
    import numpy as np

    return np.frombuffer(os.pread(fd, hi - lo, lo), dtype=np.uint8)


def _io_decode(src, fd: int, lo: int, hi: int, todo: list, pool=None) -> None:
    """pread of the span, then its chunks decoded: here, or (``pool``) the later half on its thread."""
    buf = _pread(fd, lo, hi)
    if pool is None:
        _decode(src, buf, lo, todo)
        return
    half = (len(todo) + 1) // 2
    fut = pool.submit(_decode, src, buf, lo, todo[half:])
    _decode(src, buf, lo, todo[:half])
    fut.result()


def breakdown(store: Path, windows: int, seed: int = 3) -> dict:
    """Per-part figures of evicted windows (compressed stores: stored chunks decoded; uncompressed:
    no decode), each timed beside its own ``O_DIRECT`` read of the window's chunks' span with the
    device cache equalised as in :mod:`benchmarks._evicted`: ``io`` = one buffered ``pread`` of the
    span after eviction (the reader's I/O), ``decode`` = the chunks decoded from bytes in memory
    (warm, CRC32C and conversion to float32 excluded), ``io_decode`` = pread then decode in a row,
    ``io_decode_2t`` = pread then the later half of the chunks decoded on a second thread (the
    codecs release the GIL). Values: medians in ms and medians of the per-window ratios to
    ``O_DIRECT`` (``*_ratio``)."""
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    import eegbench

    from ._evicted import _ALIGN, _Direct, chunk_span

    ds = eegbench.open(store)
    files = fx.files_of(store)
    w = int(round(2.0 * ds[0].sfreq))
    wins = fx.random_windows([r.n_times for r in ds], w, windows, seed)
    direct, pool = _Direct(), ThreadPoolExecutor(1)
    parts: dict[str, list[tuple[float, float]]] = {k: [] for k in ("io", "decode", "io_decode", "io_decode_2t")}
    fds: dict[Path, int] = {}
    try:
        for k, (r, s) in enumerate(wins):
            src = ds[r].source
            src.ready()
            cs = src.chunk_samples
            idx = list(range(s // cs, (s + w - 1) // cs + 1))
            with src._lock:
                spots = [src._stored_chunk_at(ci) for ci in idx] if src._stored_mappable else []
            path, lo, hi = chunk_span(ds[r], s, s + w)
            if path not in fds:
                fds[path] = os.open(path, os.O_RDONLY)
                os.posix_fadvise(fds[path], 0, 0, os.POSIX_FADV_RANDOM)  # as the reader's descriptors
            fd, todo = fds[path], list(zip(idx, spots))
            steps = {"io": partial(_pread, fd, lo, hi)}
            if todo:  # uncompressed: nothing to decode (the reader copies out of its map)
                steps["io_decode"] = partial(_io_decode, src, fd, lo, hi, todo)
                steps["io_decode_2t"] = partial(_io_decode, src, fd, lo, hi, todo, pool)
            for name in (list(steps) if k % 2 == 0 else list(steps)[::-1]):
                pair = {}
                for step in (("read", "direct") if k % 2 == 0 else ("direct", "read")):
                    if step == "read":
                        direct.read(path, lo, hi)  # untimed: the device cache in one state for both reads
                        evict_pages(files)
                        direct.read(path, 0, _ALIGN)
                        t0 = time.perf_counter()
                        steps[name]()
                        pair[step] = time.perf_counter() - t0
                    else:
                        pair[step] = direct.read(path, lo, hi)
                parts[name].append((pair["read"], pair["direct"]))
            if todo:  # decode only, bytes in memory (timed after one untimed pass)
                buf = _pread(fd, lo, hi)
                _decode(src, buf, lo, todo)
                t0 = time.perf_counter()
                _decode(src, buf, lo, todo)
                parts["decode"].append((time.perf_counter() - t0, parts["io"][-1][1]))
    finally:
        pool.shutdown()
        direct.close()
        for fd in fds.values():
            os.close(fd)
        ds.close()
    out: dict = {}
    for name, vals in parts.items():
        if vals:
            out[f"ms_{name}"] = 1000 * statistics.median(t for t, _ in vals)
            out[f"{name}_ratio"] = statistics.median(t / od for t, od in vals)
    out["ms_odirect"] = 1000 * statistics.median(od for _, od in parts["io"])
    return out


def _cell(b: dict, name: str) -> str:
    return f"{b[f'ms_{name}']:.3f} ({b[f'{name}_ratio']:.2f})" if f"ms_{name}" in b else "–"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--after-close", action="store_true",
                        help="also time the first read after closing the store (metadata re-read, all cold)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also split an evicted window into I/O, decode and everything else (see breakdown())")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    if not hasattr(os, "O_DIRECT"):
        raise SystemExit("O_DIRECT is not available on this system")
    print(f"load average {os.getloadavg()[0]:.2f}; {args.windows} windows per store; store open, metadata kept, "
          "signal pages evicted (mincore 0) before each timed window")
    print("| store | evicted ms | O_DIRECT ms, chunk span | **evicted ÷ O_DIRECT span (goal ≤ 2)** | q90 ratio "
          "| O_DIRECT ms, window bytes | evicted ÷ O_DIRECT window | MB read | resident B | after-close ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for store in args.stores:
        q = measure(store, args.windows, args.after_close, args.seed)
        print(f"| {store.name} | {q['ms_evicted']:.3f} | {q.get('ms_odirect_span', float('nan')):.3f} | "
              f"{q.get('evicted_vs_odirect_span', float('nan')):.2f} | {q.get('evicted_ratio_q90', float('nan')):.2f} | "
              f"{q.get('ms_odirect_window', float('nan')):.3f} | {q.get('evicted_vs_odirect_window', float('nan')):.2f} | "
              f"{q['mb_read_evicted']:.3f} | {q['evicted_resident_bytes_max']} | "
              f"{q.get('ms_after_close', float('nan')):.2f} |", flush=True)
    if args.breakdown:
        print(f"\nbreakdown (load average {os.getloadavg()[0]:.2f}): each part timed beside its own O_DIRECT read of "
              "the span; ratio = median of per-window ratios; floor = pread of the span + decode of its chunks")
        print("| store | O_DIRECT ms | pread span ms (÷) | decode ms (÷) | **pread + decode ms (÷): one-thread floor** "
              "| pread + decode on 2 threads ms (÷) | evicted read ms (÷) | everything else ms |")
        print("|---|---|---|---|---|---|---|---|")
        for store in args.stores:
            b = breakdown(store, args.windows, args.seed)
            q = measure(store, args.windows, False, args.seed)
            floor = b.get("ms_io_decode", b["ms_io"])
            print(f"| {store.name} | {b['ms_odirect']:.3f} | {_cell(b, 'io')} | {_cell(b, 'decode')} | {_cell(b, 'io_decode')} | "
                  f"{_cell(b, 'io_decode_2t')} | {q['ms_evicted']:.3f} ({q.get('evicted_vs_odirect_span', float('nan')):.2f}) | "
                  f"{q['ms_evicted'] - floor:.3f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
