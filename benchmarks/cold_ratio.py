"""Evicted window vs an O_DIRECT read of the same bytes, interleaved window by window (issue #9).

    python -m benchmarks.cold_ratio STORE [STORE ...] [--windows 40] [--after-close]

For each store: random 2-s all-channel windows read from the open store, its metadata parsed and
kept, with every signal page evicted before each timed window (paged out of this process's maps,
dropped from the page cache, ``mincore``-verified 0 resident bytes); each timed window is paired
with an ``O_DIRECT`` read of the span of the window's chunks (the bytes the reader must read: the
goal's yardstick) and one of the window's own stored bytes, in alternating order. See
:mod:`benchmarks._evicted` for the exact definition (and the device-cache equalisation).
``--after-close`` also times the first read after closing the store (metadata re-read from disk).

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--after-close", action="store_true",
                        help="also time the first read after closing the store (metadata re-read, all cold)")
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
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
