"""Evicted window vs an O_DIRECT read of the same number of bytes, interleaved window by window.

    python -m benchmarks.cold_ratio STORE [STORE ...] [--windows 25] [--reopen]

For each store: random 2-s all-channel windows; before each, the store is closed (maps unmapped),
every file evicted from the page cache (fsync + POSIX_FADV_DONTNEED), the recording's metadata read
again untimed (``--reopen``: timed with the window, as a first read after open), then the window
read and timed; right after it, one ``O_DIRECT`` read of the window's float32 bytes at a random
4 KiB-aligned offset of one of the store's large files. Prints the medians and the median of the
per-window ratios: on a machine shared with other jobs the two figures move together, so the ratio
says more than either (issue #9: "evicted <= 2x O_DIRECT").
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import time
from pathlib import Path


def measure(store: Path, windows: int, reopen: bool, seed: int = 3) -> tuple[float, float, float]:
    """(median cold ms, median O_DIRECT ms, median ratio) for one store."""
    import numpy as np

    import eegbench
    from eegbench.formats._chunks import CHUNK_CACHE
    from eegbench.io import FILES
    from eegbench.pagecache import evict

    CHUNK_CACHE.max_bytes = 0
    files = [f for f in store.rglob("*") if f.is_file()]
    big = sorted((f for f in files if f.stat().st_size > 4 << 20), key=str) or files
    ds = eegbench.open(store)
    w = int(round(2.0 * ds[0].sfreq))
    size = -(-(ds[0].n_channels * w * 4) // 4096) * 4096
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT requires
    rng = np.random.default_rng(seed)
    cold, direct, ratios = [], [], []
    for k in range(windows):
        r = int(rng.integers(len(ds)))
        s = int(rng.integers(ds[r].n_times - w))
        ds.close()
        FILES.clear()
        evict(files)
        if not reopen:  # metadata (header, chunk index) read again untimed: the window's own cost
            src = ds[r].source
            src.ready()
            src._raw_chunk_at(s // src.chunk_samples)  # Zarr: the shard index
        t0 = time.perf_counter()
        ds[r].get_data(start=s, stop=s + w)
        t = time.perf_counter() - t0
        f = big[k % len(big)]
        off = int(rng.integers(max(f.stat().st_size - size, 0) // 4096 + 1)) * 4096
        evict([f])
        fd = os.open(f, os.O_RDONLY | os.O_DIRECT)
        try:
            t0 = time.perf_counter()
            os.preadv(fd, [buf], off)
            d = time.perf_counter() - t0
        finally:
            os.close(fd)
        cold.append(t)
        direct.append(d)
        ratios.append(t / d)
    ds.close()
    buf.close()
    return 1000 * statistics.median(cold), 1000 * statistics.median(direct), statistics.median(ratios)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--windows", type=int, default=25)
    parser.add_argument("--reopen", action="store_true", help="time the metadata re-read with the window")
    args = parser.parse_args(argv)
    if not hasattr(os, "O_DIRECT"):
        raise SystemExit("O_DIRECT is not available on this system")
    print(f"load average {os.getloadavg()[0]:.1f}; {args.windows} windows per store; "
          f"metadata {'timed with the window' if args.reopen else 'read before timing'}")
    print("| store | cold ms | O_DIRECT ms (same bytes) | median ratio |\n|---|---|---|---|")
    for store in args.stores:
        c, d, q = measure(store, args.windows, args.reopen)
        print(f"| {store.name} | {c:.2f} | {d:.2f} | {q:.1f} |", flush=True)


if __name__ == "__main__":
    main()
