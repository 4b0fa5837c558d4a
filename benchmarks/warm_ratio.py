"""Warm window read against np.memmap of the same-shaped float32 ``.npy``, interleaved read by read.

    python -m benchmarks.warm_ratio STORE [STORE ...] --npy DIR [--reads 2000] [--repeats 3]

For each store: random 2-s all-channel windows (the same windows for every store and the
yardstick); every window is read once before timing so its pages are in the page cache, and the
decoded-chunk cache is off (``EEGBENCH_CHUNK_CACHE_MB`` ignored: every read decodes or copies).
Then, window by window, ``Recording.get_data(start, stop)`` of the store and ``np.array`` of the
same slice of a memmap of ``DIR/<recording index>.npy`` (a float32 channel-major ``.npy``, as
``benchmarks.read_speed``'s ``memmap-npy`` baseline: a copy, since a memmap slice reads nothing)
are timed one after the other, the store first for even windows and the memmap first for odd
ones (the second of two reads finds the CPU caches warmer). Prints, per store and repeat, the median of each and the median
of the per-window ratios (on a shared machine the two move together, so the ratio says more than
either). ``--profile`` prints a cProfile of the store reads instead. ``--before REV`` is not
offered: run the script with ``PYTHONPATH`` set to a ``git archive`` of the other revision.

Issue #9's goal: warm uncompressed <= 1.2x np.memmap.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _windows(lengths: list[int], w: int, n: int, seed: int) -> list[tuple[int, int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = int(rng.integers(len(lengths)))
        out.append((r, int(rng.integers(lengths[r] - w))))
    return out


def measure(store: Path, npy: Path, reads: int, seed: int = 5) -> tuple[float, float, float]:
    """(median store ms, median memmap ms, median per-window ratio) for one store."""
    import numpy as np

    import eegbench
    from eegbench.formats._chunks import CHUNK_CACHE

    CHUNK_CACHE.max_bytes = 0
    ds = eegbench.open(store)
    recs = [ds[i] for i in range(len(ds))]
    w = int(round(2.0 * recs[0].sfreq))
    maps = [np.load(npy / f"{i:05d}.npy", mmap_mode="r") for i in range(len(recs))]
    lengths = [min(r.n_times, m.shape[1]) for r, m in zip(recs, maps)]
    windows = _windows(lengths, w, reads, seed)
    for r, s in windows:  # warm: pages cached, per-process metadata read
        recs[r].get_data(start=s, stop=s + w)
        np.array(maps[r][:, s:s + w])
    clock = time.perf_counter_ns
    a, b, ratios = [], [], []
    for i, (r, s) in enumerate(windows):
        rec, m = recs[r], maps[r]
        if i % 2 == 0:  # the first of the two reads alternates (the second finds the CPU caches warmer)
            t0 = clock()
            rec.get_data(start=s, stop=s + w)
            t1 = clock()
            np.array(m[:, s:s + w])
            t2 = clock()
            ta, tb = t1 - t0, t2 - t1
        else:
            t0 = clock()
            np.array(m[:, s:s + w])
            t1 = clock()
            rec.get_data(start=s, stop=s + w)
            t2 = clock()
            ta, tb = t2 - t1, t1 - t0
        a.append(ta)
        b.append(tb)
        ratios.append(ta / max(tb, 1))
    ds.close()
    return statistics.median(a) / 1e6, statistics.median(b) / 1e6, statistics.median(ratios)


def profile(store: Path, reads: int, seed: int = 5) -> None:
    """cProfile ``reads`` random warm 2-s windows of ``store`` (decoded-chunk cache off), after one warm-up pass."""
    import cProfile
    import pstats

    import eegbench
    from eegbench.formats._chunks import CHUNK_CACHE

    CHUNK_CACHE.max_bytes = 0
    ds = eegbench.open(store)
    recs = [ds[i] for i in range(len(ds))]
    w = int(round(2.0 * recs[0].sfreq))
    windows = _windows([r.n_times for r in recs], w, reads, seed)
    for r, s in windows:
        recs[r].get_data(start=s, stop=s + w)
    prof = cProfile.Profile()
    prof.enable()
    for r, s in windows:
        recs[r].get_data(start=s, stop=s + w)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def profile_stores(stores: list[Path], reads: int) -> None:
    """:func:`profile` of each store in turn, each under a ``== path`` line."""
    for store in stores:
        print(f"== {store}")
        profile(store, reads)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--npy", type=Path, help="folder of 00000.npy ... (float32, channel-major)")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the store reads instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile_stores(args.stores, args.reads)
        return
    if args.npy is None:
        parser.error("--npy is required (the memmap yardstick)")
    print("| store | repeat | store ms | np.memmap ms | median ratio |")
    print("|---|---|---|---|---|")
    for rep in range(args.repeats):
        for store in args.stores:  # stores interleaved within each repeat
            ms, mm, ratio = measure(store, args.npy, args.reads, seed=5 + rep)
            print(f"| {store.name} | {rep} | {ms:.4f} | {mm:.4f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
