"""Where a DataLoader batch's time goes, per batch of 64 random 2-s windows (issue #9 "workers=2 >=
1.5x workers=0": the breakdown when the machine says otherwise).

    python -m benchmarks.loader_breakdown STORE [--batches 12] [--batch 64]

Prints, per batch: the read of the windows into ordinary memory (``__getitems__`` outside a worker),
the allocation + first write of a batch-sized tensor in shared memory (what every worker batch
costs before a sample is read: PyTorch moves worker batches through shared memory, default collate
included), a plain memcpy of the batch, and the DataLoader's windows/s with 0 and 2 workers (2 workers
twice: batches in eegbench's reused shared buffers, ``eegbench.torch.RING_SLOTS``, and in fresh shared
memory per batch, as before), each with the CPU per batch of the main process and of the workers, and
the w2/w0 ratio those CPU times imply on 2 idle cores (wall-clock ratios on a loaded machine say little).
On 2 cores, workers=2 can only beat workers=0 by (read) / (read + shared-memory cost + main-process
cost per batch): with fresh shared memory per batch costing about as much as the reads, 1.5x was
out of reach; with the workers' reused buffers the shared-memory cost is gone.

Then, per window and in the same run (issue #9 "workers=0 >= 0.9x the rate implied by the warm
window time"), the same windows read (interleaved, window by window) into: a reused window-sized
buffer (what a lone warm read measures: the output stays in the CPU caches), the window's slot of a
batch-sized buffer that is reused and already faulted in (the output goes to DRAM), and the slot of
a fresh batch (DRAM plus the kernel's first-touch zeroing) -- and the same three for a plain memcpy
of a window's bytes, so the share of the gap that is memory traffic rather than reader code shows.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from eegbench.formats._chunks import CHUNK_CACHE
    from eegbench.torch import WindowDataset, collate, worker_init_fn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    CHUNK_CACHE.max_bytes = 0  # as the benchmarks: every window decodes
    probe = WindowDataset(args.store, window_samples=1)
    window = int(round(args.window_seconds * probe.dataset[0].sfreq))
    wds = WindowDataset(args.store, window_samples=window, stride_samples=window // 2)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(wds), args.batch).tolist() for _ in range(args.batches)]
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
    n_batch = args.batch
    import gc
    import resource

    from torch.utils.data import RandomSampler

    import eegbench.torch as et

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    rates, worker_cpu, slots = {}, {}, et.RING_SLOTS
    for workers, ring in ((0, slots), (2, slots), (2, 0)):
        et.RING_SLOTS = ring  # forked workers inherit it: 0 = a fresh shared tensor per batch (PyTorch's way)
        # exactly batches + 1 batches, all consumed: the workers' CPU (counted when they exit) is per batch
        sampler = RandomSampler(wds, num_samples=(args.batches + 1) * args.batch,
                                generator=torch.Generator().manual_seed(0))
        ch0 = children_cpu()
        loader = DataLoader(wds, batch_size=args.batch, sampler=sampler, num_workers=workers, collate_fn=collate,
                            worker_init_fn=worker_init_fn if workers else None,
                            multiprocessing_context="fork" if workers else None)
        it = iter(loader)
        next(it)
        count, t0, c0 = 0, time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            try:
                xb, _ = next(it)
            except StopIteration:
                break
            count += len(xb)
        wall = time.perf_counter() - t0
        rates[workers, ring] = (count / wall, 1000 * (time.process_time() - c0) / max(count // args.batch, 1))
        del it, loader
        gc.collect()  # the iterator's shutdown joins the workers: their CPU is now in RUSAGE_CHILDREN
        worker_cpu[workers, ring] = 1000 * (children_cpu() - ch0) / (args.batches + 1)
    et.RING_SLOTS = slots
    mb = n * 4 / 1e6
    print(f"store {args.store}: batch {args.batch} x {shape[1]} ch x {window} samples = {mb:.1f} MB float32")
    print(f"read into ordinary memory      {_ms(read):8.1f} ms/batch  (thread CPU {_ms(read_cpu):.1f} ms)")
    print(f"shared-memory alloc + 1st write {_ms(shm):7.1f} ms/batch  (thread CPU {_ms(shm_cpu):.1f} ms)")
    print(f"ordinary alloc + 1st write      {_ms(plain):7.1f} ms/batch  (thread CPU {_ms(plain_cpu):.1f} ms)")
    print(f"memcpy of the batch             {_ms(copy):7.1f} ms/batch")
    for (w, ring), (rate, main_cpu) in rates.items():
        how = "" if not w else (f", reused shared buffers ({ring} per worker)" if ring else ", fresh shared memory per batch")
        extra = f", workers' CPU {worker_cpu[w, ring]:.1f} ms/batch" if w else ""
        print(f"DataLoader workers={w}{how}: {rate:7.0f} windows/s (main-process CPU {main_cpu:.1f} ms/batch{extra})")
    w0 = rates[0, slots][0]
    print(f"workers=2 / workers=0 (wall): {rates[2, slots][0] / w0:.2f} (reused buffers), "
          f"{rates[2, 0][0] / w0:.2f} (fresh shared memory per batch)")
    # on an idle 2-core machine: w0 runs at 1 / (its main CPU), w2 at 2 / (worker + main CPU) per batch
    main0 = rates[0, slots][1]
    for ring, name in ((slots, "reused buffers"), (0, "fresh shared memory")):
        implied = 2 * main0 / (worker_cpu[2, ring] + rates[2, ring][1])
        print(f"workers=2 / workers=0 implied by CPU per batch on 2 idle cores, {name}: {implied:.2f}")
    lone, hot, fresh, m_lone, m_hot, m_fresh = per_window
    print("per window (median ms; same windows, interleaved):")
    print(f"  read into a reused window buffer (lone warm read)  {lone:.4f}")
    print(f"  read into its slot of a reused, faulted-in batch   {hot:.4f}  ({hot / lone:.2f}x lone)")
    print(f"  read into its slot of a fresh batch                {fresh:.4f}  ({fresh / lone:.2f}x lone)")
    print(f"  memcpy of the window: reused buffer / reused batch / fresh batch  {m_lone:.4f} / {m_hot:.4f} / "
          f"{m_fresh:.4f}")
    rate0, cpu0 = rates[0, slots][0], main0 / n_batch
    print(f"DataLoader workers=0 / rate implied by the lone warm read: {rate0 * lone / 1000:.2f} (wall), "
          f"{lone / cpu0:.2f} (main-process CPU {cpu0:.4f} ms per window); / rate implied by reads into "
          f"a faulted-in batch: {rate0 * hot / 1000:.2f} (wall), {hot / cpu0:.2f} (CPU); / into a fresh batch: "
          f"{rate0 * fresh / 1000:.2f} (wall), {fresh / cpu0:.2f} (CPU)")


def _fresh(shape: tuple[int, ...]):
    """A float32 array on anonymous pages never touched before (``np.empty`` may hand back a block
    malloc already faulted in)."""
    import mmap

    import numpy as np

    size = int(np.prod(shape)) * 4
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.float32).reshape(shape)


def _per_window(wds, batches) -> tuple[float, ...]:
    """Median ms per window read (and per window memcpy) into a reused window buffer, into its slot
    of a reused batch, and into its slot of a fresh batch; the three interleaved window by window."""
    import numpy as np

    length = wds.window_samples
    items = [(int(wds._rec[i]), int(wds._start[i])) for idx in batches for i in idx]
    first = wds.dataset.recordings[items[0][0]]
    n_ch = first.n_channels if wds._channels[items[0][0]] is None else len(wds._channels[items[0][0]])
    n = len(batches[0])
    lone_buf = np.empty((n_ch, length), np.float32)
    hot = np.empty((n, n_ch, length), np.float32)
    hot[:] = 0.0
    src_bytes = np.random.default_rng(1).standard_normal((n_ch, length)).astype(np.float32)
    fresh = None
    t_lone, t_hot, t_fresh, c_lone, c_hot, c_fresh = [], [], [], [], [], []

    def read(r: int, s: int, out: np.ndarray) -> None:
        source, channels = wds.dataset.recordings[r].source, wds._channels[r]
        if getattr(source, "reads_into", False):
            source.read(s, s + length, channels, out=out)
        else:
            out[...] = source.read(s, s + length, channels)

    # the order rotates window by window: the first of the three reads finds the source bytes
    # colder in the CPU caches than the next two
    for k, (r, s) in enumerate(items):
        slot = k % n
        if slot == 0:
            fresh = _fresh((n, n_ch, length))  # never-touched pages, as a batch malloc cannot reuse
        targets = [(t_lone, lone_buf), (t_hot, hot[slot]), (t_fresh, fresh[slot])]
        for j in range(3):
            times, out = targets[(j + k) % 3]
            t0 = time.perf_counter()
            read(r, s, out)
            times.append(time.perf_counter() - t0)
    for k in range(len(items)):
        slot = k % n
        if slot == 0:
            fresh = _fresh((n, n_ch, length))
        targets = [(c_lone, lone_buf), (c_hot, hot[slot]), (c_fresh, fresh[slot])]
        for j in range(3):
            times, out = targets[(j + k) % 3]
            t0 = time.perf_counter()
            np.copyto(out, src_bytes)
            times.append(time.perf_counter() - t0)
    return tuple(_ms(x) for x in (t_lone, t_hot, t_fresh, c_lone, c_hot, c_fresh))


if __name__ == "__main__":
    main()
