"""Where a DataLoader batch's time goes, per batch of random 2-s windows (issue #9: "workers=0 >=
0.9x the rate implied by the warm window time" and "workers=2 >= 1.5x workers=0 for compressed
stores"; the breakdown where the machine says otherwise).

    python -m benchmarks.loader_breakdown STORE [--batches 12] [--batch 64]

Prints, per batch: the read of the windows into ordinary memory (``__getitems__`` outside a worker,
each chunk's first touch in this process included), the allocation + first write of a batch-sized
tensor in shared memory (what a fresh worker batch costs before a sample is read) and in ordinary
memory, and a memcpy of the batch.

Then the DataLoader with 0 and 2 workers (2 workers twice: batches in eegbench's reused shared
buffers, ``eegbench.torch.RING_SLOTS``, and in fresh shared memory per batch, as PyTorch does), each
over a freshly opened store, as a training loop of several epochs sees it (:func:`loader_run`):
start-up (first-batch latency, with its CPU), one untimed warm epoch in which every reading process
reads every batch, then the timed epoch with persistent workers -- both sides have paid the same
start-up, so the ratio compares steady states. Per loader: windows/s (wall), CPU ms per batch of
the main process and of the workers (each process's CPU clock, all threads), and the windows/s those
CPU times allow on ``os.cpu_count()`` otherwise idle cores; w2/w0 by wall and by CPU.

Then, per window (:func:`_per_window`), the batches' windows read into a cache-resident window
buffer (the lone warm read), into their batch slot, into a fresh batch, and read into the window
into its slot the way the loader writes it (non-temporal stores for warm uncompressed windows
of a batch larger than the caches); and the same bytes copied in stored-chunk blocks by NumPy,
by 64-byte aligned vector stores and by non-temporal stores (:mod:`benchmarks._rowcopy`), into the
window buffer and into the slot. Last, the workers=0 breakdown as a table: lone warm read, the
extra cost of writing into a batch slot, the loader's own cost, and the in-slot copy floor.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch

    from eegbench.formats._chunks import CHUNK_CACHE
    from eegbench.torch import WindowDataset, collate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window-seconds", type=float, default=2.0)
    parser.add_argument("--loader-only", action="store_true",
                        help="only the DataLoader rows (workers 0 and 2, reused buffers), --repeats times alternated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loader (medians)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="worker counts for --loader-only (1 shows a worker's CPU per batch without a sibling)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    CHUNK_CACHE.max_bytes = 0  # as the benchmarks: every window decodes
    probe = WindowDataset(args.store, window_samples=1)
    window = int(round(args.window_seconds * probe.dataset[0].sfreq))
    wds = WindowDataset(args.store, window_samples=window, stride_samples=window // 2)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(wds), args.batch).tolist() for _ in range(args.batches)]
    if args.loader_only:
        _loader_only(args, window, batches)
        return
    wds.__getitems__(batches[0])  # warm the page cache / imports
    read, read_cpu = [], []
    for idx in batches:
        t0, c0 = time.perf_counter(), time.thread_time()
        wds.__getitems__(idx)
        read.append(time.perf_counter() - t0)
        read_cpu.append(time.thread_time() - c0)
    x = wds.__getitems__(batches[0]).x
    shape, n = tuple(x.shape), x.numel()
    shm, plain, copy, shm_cpu, plain_cpu = [], [], [], [], []
    dst = torch.empty(shape)
    for _ in range(args.batches):
        t0, c0 = time.perf_counter(), time.thread_time()
        storage = torch.empty(0)._typed_storage()._new_shared(n, device="cpu")  # as default_collate does
        y = torch.empty(0).new(storage).resize_(shape)
        y.numpy()[:] = 0.0
        shm.append(time.perf_counter() - t0)
        shm_cpu.append(time.thread_time() - c0)
        del y, storage
        t0, c0 = time.perf_counter(), time.thread_time()
        y = torch.empty(shape)
        y.numpy()[:] = 0.0
        plain.append(time.perf_counter() - t0)
        plain_cpu.append(time.thread_time() - c0)
        del y
        t0 = time.perf_counter()
        dst.copy_(x)
        copy.append(time.perf_counter() - t0)
    per_window = _per_window(wds, batches)
    import eegbench.torch as et

    runs, slots = {}, et.RING_SLOTS
    for workers, ring in ((0, slots), (2, slots), (2, 0)):
        et.RING_SLOTS = ring  # forked workers inherit it: 0 = a fresh shared tensor per batch (PyTorch's way)
        fresh = WindowDataset(args.store, window_samples=window, stride_samples=window // 2)  # opened anew
        runs[workers, ring] = loader_run(fresh, workers, batches, collate_fn=collate, epochs=args.epochs)
        fresh.close()
    et.RING_SLOTS = slots
    mb = n * 4 / 1e6
    print(f"store {args.store}: batch {args.batch} x {shape[1]} ch x {window} samples = {mb:.1f} MB float32; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"read into ordinary memory      {_ms(read):8.1f} ms/batch  (thread CPU {_ms(read_cpu):.1f} ms)")
    print(f"shared-memory alloc + 1st write {_ms(shm):7.1f} ms/batch  (thread CPU {_ms(shm_cpu):.1f} ms)")
    print(f"ordinary alloc + 1st write      {_ms(plain):7.1f} ms/batch  (thread CPU {_ms(plain_cpu):.1f} ms)")
    print(f"memcpy of the batch             {_ms(copy):7.1f} ms/batch")
    print(f"DataLoader, {args.batches} batches per epoch; start-up = iter() to first batch of a fresh loader and "
          "store; then one untimed warm epoch in which every reading process reads every batch, then the timed "
          "epoch (persistent workers: a training run's steady state)")
    print("  loader                              | first batch ms (CPU main + workers) | windows/s | "
          "CPU ms/batch main + workers | CPU-implied windows/s")
    for (w, ring), r in runs.items():
        how = "workers=0" if not w else (f"workers=2, {ring} reused shm buffers" if ring else
                                         "workers=2, fresh shm per batch")
        print(f"  {how:35s} | {r['first_batch_ms']:7.1f} ({r['first_cpu_main_ms']:.0f} + "
              f"{r['first_cpu_workers_ms']:.0f}) | {r['windows_per_s']:9.0f} | {r['cpu_main_ms']:6.1f} + "
              f"{r['cpu_workers_ms']:6.1f} | {r['implied_windows_per_s']:9.0f}")
    r0 = runs[0, slots]
    for ring, name in ((slots, "reused buffers"), (0, "fresh shared memory per batch")):
        r2 = runs[2, ring]
        print(f"workers=2 / workers=0, {name}: {r2['windows_per_s'] / r0['windows_per_s']:.2f} (wall), "
              f"{r2['implied_windows_per_s'] / r0['implied_windows_per_s']:.2f} (CPU-implied on idle cores)")
    main0 = r0["cpu_main_ms"]
    pw = per_window
    lone, hot = pw["lone"], pw["slot"]
    print("per window, median ms of thread CPU (the batches' windows, each read once, targets in turn):")
    print(f"  read into a reused window buffer (lone warm read)        {lone:.4f}")
    print(f"  read into its slot of a reused batch, ordinary stores    {hot:.4f}  ({hot / lone:.2f}x lone)")
    print(f"  read into its slot of a fresh batch                      {pw['fresh']:.4f}  "
          f"({pw['fresh'] / lone:.2f}x lone)")
    print(f"  read into its slot as the loader does (streamed?)        {pw['loader']:.4f}  "
          f"({pw['loader'] / lone:.2f}x lone)")
    print("  a window's bytes copied in stored-chunk blocks from a cache-hot source (no reader code): "
          "into window buffer / into batch slot")
    for how, name in (("np", "NumPy slice assignment"), ("line", "64-byte aligned vector stores"),
                      ("stream", "non-temporal (streaming) stores")):
        a, b = pw[f"copy {how} lone"], pw[f"copy {how} slot"]
        print(f"    {name:35s} {a:.4f} / {b:.4f}  ({b / a:.2f}x)")
    cpu0 = main0 / args.batch
    rate0 = r0["windows_per_s"]
    floors = {how: pw[f"copy {how} slot"] - pw["copy np lone"] for how in ("np", "line", "stream")}
    print("workers=0 breakdown, ms of CPU per window (issue #9: loader >= 0.9x the lone warm-read rate):")
    from eegbench.formats import _chunks

    streamed = n * 4 >= _chunks.STREAM_MIN_BYTES
    into = pw["loader"]  # the way the loader writes this batch
    print(f"  | lone warm read | + into the batch slot ({'streamed if uncompressed' if streamed else 'read straight in'}) "
          "| + loader (DataLoader, batch, y) | = workers=0 | w0 / lone rate |")
    print(f"  | {lone:.4f} | {into - lone:+.4f} | {cpu0 - into:+.4f} | {cpu0:.4f} | {lone / cpu0:.2f} |")
    best = min(floors.values())
    print("  in-slot copy floor (a window's bytes into a batch slot rather than into the window buffer, NumPy / "
          f"line stores / streaming stores): {floors['np']:+.4f} / {floors['line']:+.4f} / {floors['stream']:+.4f} ms;"
          f" workers=0 with the best of them and no loader cost: {lone / (lone + max(best, 0.0)):.2f}x the lone rate")
    print(f"  workers=0 wall rate / the lone read's CPU-implied rate: {rate0 * lone / 1000:.2f} (wall is noisy on a "
          "loaded machine)")


def _loader_only(args, window: int, batches: list[list[int]]) -> None:
    """workers=0 and workers=2 (reused shared buffers), each over a freshly opened store,
    alternated ``args.repeats`` times; one line per run and the medians."""
    from eegbench.torch import WindowDataset, collate

    counts = sorted(set(args.workers) | {0, 2})
    rows: dict[int, list[dict[str, float]]] = {w: [] for w in counts}
    for rep in range(args.repeats):
        for workers in (counts if rep % 2 == 0 else counts[::-1]):
            wds = WindowDataset(args.store, window_samples=window, stride_samples=window // 2)
            rows[workers].append(loader_run(wds, workers, batches, collate_fn=collate, epochs=args.epochs))
            wds.close()
    print(f"{args.store}: {len(batches)} batches x {args.batch} windows per epoch, {args.repeats} alternated "
          f"repeats, load average {os.getloadavg()[0]:.1f} (medians)")
    med = {w: {k: statistics.median(r[k] for r in rs) for k, v in rs[0].items() if isinstance(v, float)}
           for w, rs in rows.items()}
    for w, m in med.items():
        print(f"  workers={w}: first batch {m['first_batch_ms']:.0f} ms; {m['windows_per_s']:.0f} windows/s; CPU ms/batch "
              f"main {m['cpu_main_ms']:.1f} + workers {m['cpu_workers_ms']:.1f}; CPU-implied "
              f"{m['implied_windows_per_s']:.0f} windows/s")
    wall = [b["windows_per_s"] / a["windows_per_s"] for a, b in zip(rows[0], rows[2])]
    cpu = [b["implied_windows_per_s"] / a["implied_windows_per_s"] for a, b in zip(rows[0], rows[2])]
    print(f"  workers=2 / workers=0: CPU-implied {statistics.median(cpu):.2f} ({', '.join(f'{v:.2f}' for v in cpu)}); "
          f"wall {statistics.median(wall):.2f} ({', '.join(f'{v:.2f}' for v in wall)})")


# --- the DataLoader measured as a training loop sees it ------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid``, to the nanosecond: Linux's
    per-process CPU clock (``clock_gettime`` on ``MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)``);
    ``/proc/PID/stat`` utime + stime (10 ms ticks: +-11 % over an epoch of 8 batches of 11 ms) if
    that clock is unavailable."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK


class EpochBatches:
    """A ``batch_sampler`` over fixed batches of window indices. While ``warm`` is set, each batch
    is yielded ``copies`` times in a row: a DataLoader hands batches to its workers round robin, so
    with ``copies = num_workers`` every worker reads every batch once -- each process then has
    touched (opened, located and checked) every chunk the timed epoch reads, as the workers=0 process
    has after its own warm epoch. Otherwise the batches once each, in an order reshuffled every
    epoch (``seed``)."""

    def __init__(self, batches: list[list[int]], copies: int, seed: int = 0) -> None:
        import numpy as np

        self.batches, self.copies, self.warm = batches, max(copies, 1), True
        self._rng = np.random.default_rng(seed)

    def __iter__(self):
        if self.warm:
            for b in self.batches:
                yield from [b] * self.copies
            return
        for k in self._rng.permutation(len(self.batches)).tolist():
            yield self.batches[k]

    def __len__(self) -> int:
        return len(self.batches) * (self.copies if self.warm else 1)


def loader_run(dataset, workers: int, batches: list[list[int]], *, collate_fn=None, warm: bool = True,
               timed: bool = True, epochs: int = 1) -> dict[str, float]:
    """One DataLoader over ``dataset`` as a training loop of several epochs sees it, with every
    process's CPU time (utime + stime from ``/proc``) accounted:

    * **start-up** (``first_*``): from ``iter(loader)`` to the first batch of the first epoch --
      fork, worker start, opening the store in each process, first touch of its chunks: the
      first-batch latency a user waits for (wall ms, and CPU ms of the main process + workers);
    * a **warm epoch**, untimed, in which every reading process reads every batch of ``batches``
      once (:class:`EpochBatches`; ``persistent_workers=True`` keeps the workers for the next
      epoch, as a training run over several epochs should);
    * the **timed epochs** (``epochs`` of them, figures are their medians): the same batches once
      each, reshuffled every epoch: windows/s (wall, whole epoch including the refill of the
      workers' queues) and CPU ms per batch of the main process and of the workers together;
      ``implied_windows_per_s`` is what those CPU times allow on ``os.cpu_count()`` otherwise idle
      cores (the main process and each worker at most one core). The loop holds each batch until
      the next arrives, as ``for x, y in loader`` does, and drops the last one before the next epoch.

    workers=0 and workers=2 thus pay the same start-up (reported, not timed) and read the same
    windows in steady state."""
    from torch.utils.data import DataLoader

    from eegbench.torch import worker_init_fn

    sampler = EpochBatches(batches, workers)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_fn,
                        worker_init_fn=worker_init_fn if workers else None, persistent_workers=workers > 0,
                        multiprocessing_context="fork" if workers else None)
    me = os.getpid()
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), cpu_seconds(me)
    it = iter(loader)
    next(it)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    out["first_batch_ms"] = 1000 * (time.perf_counter() - t0)
    # the workers' CPU so far: start-up plus what they read ahead (the prefetched batches)
    out["first_cpu_main_ms"] = 1000 * (cpu_seconds(me) - c0)
    out["first_cpu_workers_ms"] = 1000 * sum(cpu_seconds(p) for p in pids)
    if not timed:
        del it, loader
        return out
    for batch in it:  # the rest of the warm epoch, each batch dropped at once
        del batch
    del it
    sampler.warm = False
    cores = os.cpu_count() or 1
    rows = []
    for _epoch in range(max(epochs, 1)):
        n, batch = 0, None
        t0, c0, w0 = time.perf_counter(), cpu_seconds(me), sum(cpu_seconds(p) for p in pids)
        for batch in loader:  # (x, y), or e.g. braindecode's (x, y, crop indices): windows first
            n += len(batch[0])
        wall = time.perf_counter() - t0
        main_ms = 1000 * (cpu_seconds(me) - c0) / len(batches)
        workers_ms = 1000 * (sum(cpu_seconds(p) for p in pids) - w0) / len(batches)
        del batch  # no batch of this epoch is held into the next
        per_batch = n / len(batches)
        # each process is at most one core busy; all of them at most `cores`
        busy = max(main_ms, workers_ms / workers if workers else 0.0, (main_ms + workers_ms) / cores)
        rows.append({"windows_per_s": n / wall, "cpu_main_ms": main_ms, "cpu_workers_ms": workers_ms,
                     "implied_windows_per_s": 1000 * per_batch / busy if busy > 0 else float("nan")})
    out.update({k: statistics.median(r[k] for r in rows) for k in rows[0]})
    out["epochs_windows_per_s"] = [r["windows_per_s"] for r in rows]
    del loader
    gc.collect()  # persistent workers end with their loader
    return out


def _fresh(shape: tuple[int, ...]):
    """A float32 array on anonymous pages never touched before (``np.empty`` may hand back a block
    malloc already faulted in)."""
    import mmap

    import numpy as np

    size = int(np.prod(shape)) * 4
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.float32).reshape(shape)


def _per_window(wds, batches) -> dict[str, float]:
    """Median ms per window, the batches' windows each read once, into one target in turn:

    * ``lone``: a reused window-sized buffer (what a lone warm read measures: the output stays
      in the CPU caches); ``slot``: the window's slot of a reused, faulted-in batch (the output
      goes to DRAM); ``fresh``: the slot of a never-touched batch (DRAM plus first-touch zeroing);
      ``loader``: into the batch slot the way ``WindowDataset`` writes it (non-temporal stores
      for warm uncompressed windows of a batch of at least ``eegbench.formats._chunks.STREAM_MIN_BYTES``);

    and a window's worth of bytes copied as the reader copies them (a block per stored chunk) by
    NumPy slice assignment (``np``), by 64-byte aligned vector stores (``line``) and by
    non-temporal ones (``stream``), into the window buffer and into the batch slot, from a
    cache-hot source: the cost of each destination alone, without reader code. Times are the
    thread's CPU time (a preempted read does not count)."""
    import numpy as np

    from benchmarks._rowcopy import copy2d
    from eegbench.formats import _chunks

    length = wds.window_samples
    items = [(int(wds._rec[i]), int(wds._start[i])) for idx in batches for i in idx]
    first = wds.dataset.recordings[items[0][0]]
    n_ch = first.n_channels if wds._channels[items[0][0]] is None else len(wds._channels[items[0][0]])
    n = len(batches[0])
    lone_buf = np.empty((n_ch, length), np.float32)
    hot = np.empty((n, n_ch, length), np.float32)
    hot[:] = 0.0
    copy2d(hot[0], lone_buf, streaming=True)  # compile / load the kernels before timing
    copy2d(hot[0], lone_buf)
    fresh = None
    times: dict[str, list[float]] = {}

    def read(r: int, s: int, out: np.ndarray) -> None:
        source, channels = wds.dataset.recordings[r].source, wds._channels[r]
        if getattr(source, "reads_into", False):
            source.read(s, s + length, channels, out=out)
        else:
            out[...] = source.read(s, s + length, channels)

    for k, (r, s) in enumerate(items):
        slot = k % n
        if slot == 0:
            fresh = _fresh((n, n_ch, length))  # never-touched pages, as a batch malloc cannot reuse
        name = ("lone", "slot", "fresh", "loader")[k % 4]
        t0 = time.thread_time()
        if name == "loader":  # a view of the whole batch, as WindowDataset passes it
            read(r, s, hot[slot])
        elif name == "slot":  # ordinary stores into the slot
            _chunks.STREAM_MIN_BYTES, saved = 1 << 62, _chunks.STREAM_MIN_BYTES
            read(r, s, hot[slot])
            _chunks.STREAM_MIN_BYTES = saved
        else:
            read(r, s, {"lone": lone_buf, "slot": hot[slot], "fresh": fresh[slot]}[name])
        times.setdefault(name, []).append(time.thread_time() - t0)
    # the copies: chunk-shaped blocks as the readers copy them (NumPy: out[:, a:b] = chunk[:, c:d])
    cs = int(getattr(first.source, "chunk_samples", length) or length)
    per = -(-length // cs) + 1
    pool = np.random.default_rng(1).standard_normal((per, n_ch, cs)).astype(np.float32)  # cache-hot source
    rng = np.random.default_rng(2)
    variants = [(how, where) for how in ("np", "line", "stream") for where in ("lone", "slot")]
    for k in range(2 * len(items)):
        how, where = variants[k % len(variants)]
        dst = lone_buf if where == "lone" else hot[k % n]
        c = 0
        o = int(rng.integers(0, cs))  # the window starts o samples into its first chunk
        t0 = time.thread_time()
        pos = 0
        while pos < length:
            a = o if pos == 0 else 0
            b = min(cs, a + length - pos)
            if how == "np":
                dst[:, pos:pos + b - a] = pool[c][:, a:b]
            else:
                copy2d(dst[:, pos:pos + b - a], pool[c][:, a:b], streaming=how == "stream")
            pos += b - a
            c += 1
        times.setdefault(f"copy {how} {where}", []).append(time.thread_time() - t0)
    return {name: _ms(t) for name, t in times.items()}


if __name__ == "__main__":
    main()
