"""Measure every store configuration on a bounded sample of the user's own recordings, here and now.

:func:`measure` takes a seeded sample (``n_recordings`` recordings, ``seconds`` from a random
start in each), writes it once as an uncompressed source store, then for every format x codec x
chunk span writes it, and measures: compression ratio vs float32 and bytes on disk, save time, open
time per recording, warm and cold random 2-s windows (ms, median), MB read from disk per cold
window, sequential MB/s (10-s blocks, warm and cold) and DataLoader windows/s (0 workers). It
returns rows named like the asv benchmarks' so :func:`eegbench.recommend.recommend` ranks them
with the same weights. Compressibility depends on the data: this is the answer for a new dataset.
Figures are relative to this machine; "cold" evicts the files from the page cache (fsync +
``POSIX_FADV_DONTNEED``) before each read, which a VM host may still cache.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import recommend as R
from .pagecache import disk_read_bytes, evict, warm_window_times
from .recommend import ResultRow

__all__ = ["CHUNK_SECONDS", "measure", "sample"]

CHUNK_SECONDS = (0.5, 2.0)
WINDOW_SECONDS = 2.0
BENCH_CODECS = ("none", "blosc-lz4", "blosc-zstd", "zstd", "gzip")


def sample(paths: Sequence[str | os.PathLike], n_recordings: int = 4, seconds: float = 60.0, seed: int = 0):
    """A seeded, bounded sample: up to ``n_recordings`` recordings, ``seconds`` from each (random start)."""
    from .model import Dataset
    from .sources import load

    ds = load(paths)
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(len(ds), size=min(n_recordings, len(ds)), replace=False).tolist())
    recs = []
    for i in idx:
        rec = ds[i]
        span = min(seconds, rec.duration)
        start = float(rng.uniform(0, rec.duration - span)) if rec.duration > span else 0.0
        start = math.floor(start * rec.sfreq) / rec.sfreq
        recs.append(rec.slice(start, start + span) if span < rec.duration else rec)
    return Dataset(recs)


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def _configs(formats: Sequence[str] | None, codecs: Sequence[str] | None,
             chunk_seconds: Sequence[float]) -> list[tuple[str, str, float]]:
    from .formats import available_formats, get_backend

    out = []
    for fmt in [f for f in (formats or ("hdf5", "zarr", "parquet")) if f in available_formats()]:
        supported = get_backend(fmt).compressions
        for codec in codecs or BENCH_CODECS:
            if codec in supported:
                out += [(fmt, codec, cs) for cs in chunk_seconds]
    return out


def _loader_rate(path: Path, window: int) -> float:
    """Windows/s of WindowDataset through a DataLoader (batch 16, shuffle, 0 workers) over every
    window of the sample after the first batch; NaN when torch is missing or too few windows."""
    try:
        import torch
        from torch.utils.data import DataLoader

        from .torch import WindowDataset
    except ImportError:
        return math.nan
    wds = WindowDataset(path, window_samples=window)
    if len(wds) < 32:
        return math.nan
    loader = DataLoader(wds, batch_size=16, shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)
    count, t0 = 0, time.perf_counter()
    for x, _y in it:
        count += len(x)
    elapsed = time.perf_counter() - t0
    return count / elapsed if count and elapsed > 0 else math.nan


def _measure_one(src, dest: Path, fmt: str, codec: str, chunk: float, float32_bytes: int, n_windows: int,
                 seed: int) -> dict[str, float]:
    from . import store

    t0 = time.perf_counter()
    store.save(src, dest, format=fmt, compression=codec, chunk_seconds=chunk, overwrite=True)
    save_s = time.perf_counter() - t0
    files = _files(dest)
    size = sum(p.stat().st_size for p in files)
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        ds = store.open(dest)
        opens.append(time.perf_counter() - t0)
        ds.close()
    ds = store.open(dest)
    window = int(round(WINDOW_SECONDS * ds[0].sfreq))
    rng = np.random.default_rng(seed)
    picks = [r for r in range(len(ds)) if ds[r].n_times >= window]
    windows = []
    for _ in range(n_windows):
        r = int(rng.choice(picks))
        windows.append((r, int(rng.integers(0, ds[r].n_times - window + 1))))
    warm = warm_window_times(ds, windows, window)
    cold, cold_bytes = [], []
    for r, s in windows[: max(5, n_windows // 2)]:
        ds.close()
        evict(files)
        before = disk_read_bytes()
        t0 = time.perf_counter()
        ds[r].get_data(start=s, stop=s + window)
        cold.append(time.perf_counter() - t0)
        cold_bytes.append(disk_read_bytes() - before)
    seq = {}
    for cache in ("cold", "warm"):  # whole first recording in 10-s blocks
        ds.close()
        if cache == "cold":
            evict(files)
        rec = ds[0]
        block = int(10 * rec.sfreq)
        t0 = time.perf_counter()
        nbytes = sum(rec.get_data(start=b, stop=min(b + block, rec.n_times)).astype(np.float32).nbytes
                     for b in range(0, rec.n_times, block))
        seq[cache] = nbytes / (time.perf_counter() - t0) / 1e6
    ds.close()
    with_bytes = [b for b in cold_bytes if b >= 0]
    return {"save": save_s, "size": float(size), "ratio": float32_bytes / size, "files": float(len(files)),
            "open": 1000 * min(opens) / len(ds), "warm": 1000 * statistics.median(warm),
            "cold": 1000 * statistics.median(cold),
            "window_bytes": statistics.mean(with_bytes) / 1e6 if with_bytes else math.nan,
            "seq_warm": seq["warm"], "seq_cold": seq["cold"], "loader": _loader_rate(dest, window)}


def measure(paths: Sequence[str | os.PathLike], *, n_recordings: int = 4, seconds: float = 60.0, seed: int = 0,
            formats: Sequence[str] | None = None, codecs: Sequence[str] | None = None,
            chunk_seconds: Sequence[float] = CHUNK_SECONDS, n_windows: int = 20, workdir: str | os.PathLike | None = None,
            progress: bool = True) -> list[ResultRow]:
    """Measure every configuration on a sample of ``paths`` (files, folders, a BIDS root or a store);
    returns rows for :func:`eegbench.recommend.recommend` (machine = this host, profile ``data``).
    ``formats``/``codecs``/``chunk_seconds`` narrow the matrix (default: the benchmarks' matrix)."""
    from tqdm.auto import tqdm

    from . import store
    from .errors import EegbenchError
    from .results_table import reader_code_hash

    ds = sample(paths, n_recordings=n_recordings, seconds=seconds, seed=seed)
    tmp = Path(tempfile.mkdtemp(prefix="eegbench-recommend-", dir=workdir))
    rows: list[ResultRow] = []
    try:
        src_path = tmp / "source"
        try:  # keep the ADC grid when the recordings have one, so every codec can use integer counts
            store.save(ds, src_path, format="parquet", compression="none", integer=True)
        except EegbenchError:
            store.save(ds, src_path, format="parquet", compression="none", overwrite=True)
        src = store.open(src_path)
        for rec in src:  # warm the source: the codec and the disk are what save time measures
            rec.get_data()
        float32_bytes = 4 * sum(r.n_times * r.n_channels for r in src)
        machine = os.uname().nodename
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        code_hash = reader_code_hash()
        configs = _configs(formats, codecs, chunk_seconds)
        bar = tqdm(configs, desc="measuring", unit="config", disable=not progress)
        for fmt, codec, chunk in bar:
            name = f"{fmt} {codec} {chunk:g}s"
            bar.set_postfix_str(name)
            figures = _measure_one(src, tmp / "store", fmt, codec, chunk, float32_bytes, n_windows, seed)
            shutil.rmtree(tmp / "store", ignore_errors=True)
            for metric, value in figures.items():
                m = R.RATIO_METRIC if metric == "ratio" else R.METRICS[metric]
                params = (name, *(m.extra if m.extra is not None else ("0",)))
                rows.append(ResultRow(m.benchmark, params, float(value), math.nan, m.unit, machine, "", date,
                                      "data", "", code_hash))
        src.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
