"""Read-speed figures in one run, side by side: every store configuration against the baselines.

    python -m benchmarks.read_speed --profile standard          # HBN-like synthetic, ~1.5 GB
    python -m benchmarks.read_speed --profile real              # EEGBCI EDF+ from ../shared/data/eeg

For each format x codec x chunk span, and for np.memmap of float32 .npy (the physical limit), MNE
reading FIF lazily and (real profile) MNE reading the source EDF lazily:

* warm: ms per random 2-s all-channel window (median of ``--reads``, each window read once before
  so its pages are cached; the decoded-chunk cache is disabled so every read decodes), and (compressed
  stores) the decode-only time of the same codec on just the chunk bytes that cover each window, timed
  right beside each warm read (the same windows, interleaved), and issue #9's per-window ratio
  warm ÷ (decode + 3 memcpy of the window);
* evicted (issue #9's goal: evicted ÷ O_DIRECT span <= 2): ms per window with the store open and its
  metadata parsed and kept, every signal page evicted before each read (paged out of this process's
  maps, dropped from the page cache, ``mincore``-verified: "resident after evict" must be 0),
  against ``O_DIRECT`` reads of the span of the window's chunks (the bytes the reader must read) and
  of the window's own stored bytes, timed window by window in the same run (see
  :mod:`benchmarks._evicted`); MB read from disk per window (``/proc/self/io``);
* after close: the first read after closing the store (per-process metadata dropped, maps
  unmapped) with every file evicted: metadata is re-read from disk with the window;
* open: ms per recording and peak memory growth of ``eegbench.open`` (fresh process);
* DataLoader: windows/s with batch 64, shuffle, 0 and 2 workers, against a TensorDataset of the
  same windows in memory.

Prints a Markdown table and writes JSON to ``results/read_speed-<profile>.json``.

Before/after in one command (same harness, same machine, one after the other)::

    python -m benchmarks.read_speed --before 3c6c4b6 --profile quick --reads 300 --cold-reads 30

runs this table for the eegbench of git revision ``--before`` (exported with ``git archive`` into
the bench cache, its own store cache, measured by *this* checkout's benchmark code) and for this
checkout, then prints the key figures side by side (``--out`` gets ``-before``/``-after`` JSON;
the reference-library rows, which do not depend on eegbench, are measured in the after run only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from benchmarks import _fixtures as fx
from benchmarks._evicted import evict_pages, measure_evicted
from benchmarks._reference import RefTarget, memcpy_ms, reference_params


def _ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def _windows_for(ds, n: int, seed: int) -> tuple[int, list[tuple[int, int]]]:
    window = int(round(fx.WINDOW_SECONDS * ds[0].sfreq))
    return window, fx.random_windows([r.n_times for r in ds], window, n, seed)


def _decoder(ds, window):
    """``(prepare, decode)`` for the decode-only yardstick, or None when the store's codec has no
    numcodecs pipeline (uncompressed): ``prepare(r, s)`` encodes the chunks that cover window ``s``
    of recording ``r`` in memory with the store's own numcodecs pipeline (untimed) and returns them
    with their compressed bytes per window sample span; ``decode(encoded)`` decodes exactly those
    chunks with the library's own call (``eegbench.codecs.decode_chunk``, single-threaded: no CRC,
    no file read, no copy out)."""
    from eegbench.codecs import decode_chunk, encode_chunk, numcodecs_pipeline

    try:
        layout = ds[0].source.layout  # an older eegbench (read_speed --before) may have no layout: no yardstick
        pipeline = numcodecs_pipeline(layout.codec, np.dtype(layout.dtype))
    except Exception:
        return None
    if not pipeline:
        return None
    cs, dtype = layout.chunk_samples, np.dtype(layout.dtype)

    def prepare(r: int, s: int) -> tuple[list, float]:
        src = ds[r].source
        encoded = []
        for ci in range(s // cs, (s + window - 1) // cs + 1):
            raw = src.read_counts(ci * cs, min((ci + 1) * cs, src.n_times))
            encoded.append((encode_chunk(raw, pipeline), raw.shape))
        return encoded, sum(len(d) for d, _ in encoded) * window / (len(encoded) * cs)

    def decode(encoded: list) -> None:
        for data, shape in encoded:
            decode_chunk(data, pipeline, dtype, shape)

    return prepare, decode


def _time_warm(read, windows, decoder, n_channels: int, window: int) -> tuple[list, list, list, float]:
    """Warm reads timed window by window; with ``decoder`` (compressed stores) the decode-only
    yardstick of the same window's chunks and 3 copies of its float32 bytes are timed right beside
    each read (which of read and decode goes first alternates), so both see the same machine
    state. The chunks are encoded in blocks of 16 windows before those windows are timed (bounded
    memory; neither side's input is the one just touched). Returns (read s, decode s, per-window
    read / (decode + 3 memcpy), mean compressed bytes per window)."""
    if decoder is None:
        return _time_reads(read, windows), [], [], float("nan")
    prepare, decode = decoder
    reads, decodes, ratios, sizes = [], [], [], []
    a = np.empty((n_channels, window), np.float32)
    b = np.empty_like(a)
    clock = time.perf_counter
    for k in range(0, len(windows), 16):
        block = windows[k:k + 16]
        prepared = [prepare(r, s) for r, s in block]
        for i, ((r, s), (encoded, size)) in enumerate(zip(block, prepared)):
            sizes.append(size)
            if i % 2 == 0:
                t0 = clock()
                read(r, s)
                t1 = clock()
                decode(encoded)
                t2 = clock()
                t_read, t_dec = t1 - t0, t2 - t1
            else:
                t0 = clock()
                decode(encoded)
                t1 = clock()
                read(r, s)
                t2 = clock()
                t_read, t_dec = t2 - t1, t1 - t0
            t3 = clock()
            np.copyto(b, a)
            np.copyto(a, b)
            np.copyto(b, a)
            t_cpy = clock() - t3
            reads.append(t_read)
            decodes.append(t_dec)
            ratios.append(t_read / (t_dec + t_cpy))
    return reads, decodes, ratios, float(np.mean(sizes))


def _time_reads(read, windows) -> list[float]:
    out = []
    for r, s in windows:
        t0 = time.perf_counter()
        read(r, s)
        out.append(time.perf_counter() - t0)
    return out


def _cold_reads(read, windows, files, close) -> tuple[list[float], float, int]:
    """Timed first reads after closing (per-process state dropped, maps unmapped) and evicting every
    file; also the largest number of bytes still resident after an eviction (mincore): 0 means every
    read really was cold."""
    times, nbytes, resident = [], 0, 0
    for r, s in windows:
        close()
        # pages out maps another row left in this process (e.g. eegbench's file manager), evicts, checks
        resident = max(resident, evict_pages(files))
        before = fx.disk_read_bytes()
        t0 = time.perf_counter()
        read(r, s)
        times.append(time.perf_counter() - t0)
        nbytes += fx.disk_read_bytes() - before
    return times, nbytes / len(windows), resident


def measure_access(target: fx.Target, n_reads: int, n_cold: int, seed: int, n_after_close: int | None = None) -> dict:
    """Warm, evicted and after-close ms per random 2-s window, MB read from disk per cold window, and
    (stores) the O_DIRECT yardsticks of the evicted reads."""
    from eegbench.formats._chunks import CHUNK_CACHE

    target.open()
    window = int(round(fx.WINDOW_SECONDS * target.sfreq))
    windows = fx.random_windows(target.lengths, window, n_reads + 50, seed)
    files = target.files
    row: dict = {"size_mb": sum(f.stat().st_size for f in files) / 1e6, "files": len(files)}
    decoder = _decoder(target._handles, window) if target.kind == "store" else None

    def read(r: int, s: int) -> None:
        target.read(r, s, window)

    CHUNK_CACHE.max_bytes, saved = 0, CHUNK_CACHE.max_bytes  # every read decodes: no chunk reuse
    CHUNK_CACHE.clear()
    try:
        _time_reads(read, windows[50:])  # warm: the timed windows' pages are in the page cache
        n_ch = target._handles[0].n_channels if target.kind == "store" else 0
        warm, decodes, ratios, compressed = _time_warm(read, windows[50:], decoder, n_ch, window)
        stored = None
        if target.kind == "store":
            row["ms_decode_only"] = _ms(decodes) if decodes else float("nan")
            row["warm_vs_decode_allowance"] = statistics.median(ratios) if ratios else float("nan")
            row["window_compressed_bytes"] = stored = compressed
            if not np.isfinite(stored):  # uncompressed: the raw window
                ds = target._handles
                layout = getattr(ds[0].source, "layout", None)  # None: an older eegbench (--before)
                stored = ds[0].n_channels * window * np.dtype(layout.dtype).itemsize if layout else None
        # evicted: the open target keeps its metadata; its pages are paged out and evicted per window
        row.update(measure_evicted(target, windows[50:50 + n_cold], window, stored))
        # after close: memmaps and open stores closed (maps unmapped, metadata dropped), reopened lazily
        n_after = n_cold // 2 if n_after_close is None else n_after_close  # not the goal's figure: fewer
        cold, cold_bytes, resident = _cold_reads(read, windows[50:50 + max(n_after, 1)], files, target.release)
    finally:
        CHUNK_CACHE.max_bytes = saved
    row.update(ms_warm=_ms(warm), ms_after_close=_ms(cold), mb_read_after_close=cold_bytes / 1e6,
               cold_resident_bytes_max=max(resident, row["evicted_resident_bytes_max"]))
    if target.kind == "store":
        share = row["size_mb"] * 1e6 * window / sum(target.lengths)
        row["read_vs_window_bytes"] = row["mb_read_evicted"] * 1e6 / share
    target.close()
    return row


def measure_open(target: fx.Target) -> dict:
    """ms per recording to open (min of 5) and peak memory growth of ``eegbench.open`` (stores)."""
    built = target.build()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        target.open()
        times.append(time.perf_counter() - t0)
        n = len(target.lengths)
        target.close()
    row = {"open_ms_per_recording": 1000 * min(times) / n}
    if target.kind == "store":
        import eegbench

        info = eegbench.info(built)
        row.update(open_peak_mb=fx.peak_memory("open", built) / 1e6, ratio=info["compression_ratio"],
                   data_mb=info["float32_bytes"] / 1e6)
    elif target.kind == "memmap-npy":
        row["ratio"] = 1.0
    return row


def measure_loader(path: Path, window: int, n_batches: int) -> dict:
    """DataLoader windows/s (batch 64, random batches) with 0 and 2 workers, and in memory, in a
    training run's steady state (:func:`steady_throughput`)."""
    import torch
    from torch.utils.data import TensorDataset

    from eegbench.torch import WindowDataset

    try:
        from eegbench.torch import collate
    except ImportError:  # an older eegbench (read_speed --before): PyTorch's default collate
        collate = None

    fx.warm(path)  # every variant starts from a warm page cache
    wds = WindowDataset(path, window_samples=window)
    out = {f"loader_w{workers}": steady_throughput(wds, workers, n_batches, collate_fn=collate)
           for workers in (0, 2)}
    idx = torch.randperm(len(wds), generator=torch.Generator().manual_seed(1))[: 64 * n_batches]
    xs = torch.stack([wds[int(i)][0] for i in idx])
    mem = TensorDataset(xs, torch.arange(len(xs)))
    out["loader_memory"] = steady_throughput(mem, 0, n_batches)
    return out


def steady_throughput(dataset, workers: int, n_batches: int, *, collate_fn=None, epochs: int = 3,
                      batch: int = 64, seed: int = 0) -> float:
    """Windows/s of a DataLoader over ``dataset`` in a training run's steady state, as the asv
    DataLoader suite measures it (:func:`benchmarks.loader_breakdown.loader_run`): ``n_batches``
    fixed random batches of ``batch`` windows, persistent workers, one untimed epoch in which every
    reading process reads every batch (start-up, first touch of every chunk, the workers' batch
    buffers), then the median of ``epochs`` timed epochs. NaN when the dataset has no full batch.
    A fresh loader timed from its first batch (the former figure here) counted the second worker's
    start-up and its first batch buffers: with 2 workers it read below 0 workers on every store."""
    from benchmarks.loader_breakdown import loader_run

    n = min(n_batches, len(dataset) // batch)
    if n < 1:
        return float("nan")
    order = np.random.default_rng(seed).permutation(len(dataset))[: n * batch]
    batches = order.reshape(n, batch).tolist()
    return loader_run(dataset, workers, batches, collate_fn=collate_fn, epochs=epochs)["windows_per_s"]


def throughput(loader, n_batches: int) -> float:
    """Windows per second over ``n_batches`` batches, after the first (worker start-up) batch; NaN
    when the loader has no batch after the first. A batch is a sequence whose first item holds the
    windows (``(x, y)``, or braindecode's ``(x, y, crop indices)``)."""
    it = iter(loader)
    next(it)
    count, t0 = 0, time.perf_counter()
    for _ in range(n_batches):
        try:
            batch = next(it)
        except StopIteration:
            break
        count += len(batch[0])
    elapsed = time.perf_counter() - t0
    return count / elapsed if count else float("nan")  # nothing timed: n/a, never 0 windows/s


def _fmt(value, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return format(value, spec)


#: printed above the table (and written to the .md): what "evicted" and the goal's ratio mean
LEGEND = ("Evicted = store open, metadata parsed and kept, every signal page evicted before each window "
          "(paged out of the process's maps + dropped from the page cache; 'resident after evict' is mincore's "
          "largest residue and must be 0). **Issue #9's goal: 'evicted ÷ O_DIRECT span' ≤ 2** (median of per-window "
          "ratios; O_DIRECT of the span of the window's chunks = the bytes the reader must read, timed right beside "
          "each evicted read, device cache equalised). 'O_DIRECT window bytes' reads only the window's stored bytes. "
          "'after close' = first read after closing the store: metadata re-read from an evicted disk with the window. "
          "Decode-only (compressed stores) = the store's numcodecs pipeline decoding the chunks that cover each "
          "window, single-threaded, timed beside each warm read (same windows, alternating which goes first); "
          "**issue #9's goal: 'warm ÷ (decode + 3 memcpy)' ≤ 1** (median of per-window ratios).")


def render(rows: list[dict]) -> str:
    head = ("| store | ms/window warm | decode-only ms | warm ÷ (decode + 3 memcpy) | ms/window evicted | O_DIRECT ms chunk span "
            "| **evicted ÷ O_DIRECT span (goal ≤ 2)** | O_DIRECT ms window bytes | evicted ÷ O_DIRECT window bytes "
            "| MB read/window evicted | resident after evict | read ÷ window bytes | ms/window after close "
            "| MB read/window after close | open ms/rec | open peak MB | size MB | ratio | files | "
            "DL w0 win/s | DL w2 win/s | in-memory win/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["name"], _fmt(r.get("ms_warm")), _fmt(r.get("ms_decode_only")),
            _fmt(r.get("warm_vs_decode_allowance"), ".2f"), _fmt(r.get("ms_evicted")),
            _fmt(r.get("ms_odirect_span")), _fmt(r.get("evicted_vs_odirect_span"), ".2f"),
            _fmt(r.get("ms_odirect_window")), _fmt(r.get("evicted_vs_odirect_window"), ".2f"),
            _fmt(r.get("mb_read_evicted")), _fmt(r.get("cold_resident_bytes_max"), ".0f"),
            _fmt(r.get("read_vs_window_bytes"), ".2f"), _fmt(r.get("ms_after_close")),
            _fmt(r.get("mb_read_after_close")),
            _fmt(r.get("open_ms_per_recording")), _fmt(r.get("open_peak_mb"), ".2f"), _fmt(r.get("size_mb"), ".1f"),
            _fmt(r.get("ratio"), ".2f"), str(r.get("files", "–")), _fmt(r.get("loader_w0"), ".0f"),
            _fmt(r.get("loader_w2"), ".0f"), _fmt(r.get("loader_memory"), ".0f")]) + " |")
    return "\n".join(lines)


_COMPARED = [("ms_warm", "warm ms", ".3f"), ("ms_decode_only", "decode ms", ".3f"), ("ms_evicted", "evicted ms", ".2f"),
             ("evicted_vs_odirect_span", "evicted ÷ O_DIRECT span", ".2f"), ("ms_after_close", "after-close ms", ".2f"),
             ("cold_resident_bytes_max", "resident B", ".0f"),
             ("open_ms_per_recording", "open ms/rec", ".2f"), ("loader_w0", "DL w0/s", ".0f"),
             ("loader_w2", "DL w2/s", ".0f")]


def render_compare(before: list[dict], after: list[dict]) -> str:
    """Rows present in either run, each figure as ``before → after``."""
    old = {r["name"]: r for r in before}
    new = {r["name"]: r for r in after}
    names = [r["name"] for r in after] + [n for n in old if n not in new]
    head = "| row | " + " | ".join(label for _, label, _ in _COMPARED) + " |"
    lines = [head, "|" + "---|" * (len(_COMPARED) + 1)]
    for name in names:
        b, a = old.get(name, {}), new.get(name, {})
        cells = [f"{_fmt(b.get(k), spec)} → {_fmt(a.get(k), spec)}" for k, _, spec in _COMPARED]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _export(rev: str) -> Path:
    """``git archive`` of ``rev``'s eegbench package into the bench cache (once) next to a fresh copy
    of this checkout's ``benchmarks/`` (the same harness measures both); returns its root."""
    import shutil

    sha = subprocess.run(["git", "rev-parse", "--short=10", rev], cwd=fx.REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    root = fx.CACHE / f"before-{sha}"
    if not (root / "eegbench" / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        tar = root / "src.tar"
        with open(tar, "wb") as fh:
            subprocess.run(["git", "archive", sha, "eegbench"], cwd=fx.REPO, stdout=fh, check=True)
        with tarfile.open(tar) as tf:
            tf.extractall(root, filter="data")
        tar.unlink()
        _build_extensions(sha, root)
    shutil.rmtree(root / "benchmarks", ignore_errors=True)
    shutil.copytree(fx.REPO / "benchmarks", root / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _build_extensions(sha: str, root: Path) -> None:
    """Compile ``sha``'s C extensions (its pyproject's ``ext-modules``, e.g. the warm copy) in place
    in the exported copy, as ``pip install`` does: without them a revision is measured on its
    NumPy fallback. A failed build is reported and the fallback measured."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        print("--before: Python < 3.11 cannot read pyproject.toml here; C extensions not built", flush=True)
        return
    text = subprocess.run(["git", "show", f"{sha}:pyproject.toml"], cwd=fx.REPO, capture_output=True,
                          text=True).stdout
    exts = tomllib.loads(text or "").get("tool", {}).get("setuptools", {}).get("ext-modules", [])
    if not exts:
        return
    spec = json.dumps([[e["name"], e["sources"], e.get("extra-compile-args", [])] for e in exts])
    code = ("import json, sys; from setuptools import Extension, setup; "
            "setup(name='before', script_args=['-q', 'build_ext', '--inplace'], "
            "ext_modules=[Extension(n, s, extra_compile_args=a) for n, s, a in json.loads(sys.argv[1])])")
    done = subprocess.run([sys.executable, "-c", code, spec], cwd=root, capture_output=True, text=True)
    if done.returncode:
        print(f"--before: building {sha}'s C extensions failed (its NumPy fallback is measured):\n"
              f"{done.stderr[-2000:]}", flush=True)


def compare(rev: str, argv: list[str], out: Path | None) -> None:
    """Run the table for ``rev``'s eegbench, then this checkout's, and print them side by side.
    The before run has its own store cache (``<bench cache>/before-<sha>/.eegbench-cache``, also when
    ``EEGBENCH_BENCH_CACHE`` is set: a source store written by one revision need not be readable by
    the other)."""
    out = (out or fx.REPO / "results" / "read_speed-compare.json").resolve()
    roots = {"before": _export(rev), "after": fx.REPO}
    runs = {}
    for side, root in roots.items():
        path = out.with_name(f"{out.stem}-{side}.json")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
        if side == "before":
            env["EEGBENCH_BENCH_CACHE"] = str(root / ".eegbench-cache")
        print(f"== {side} ({rev if side == 'before' else 'this checkout'}: {root})", flush=True)
        # reference-library rows read with h5py/zarr/tensorstore/numpy: the same before and after
        extra = ["--no-reference"] if side == "before" and "--no-reference" not in argv else []
        subprocess.run([sys.executable, "-m", "benchmarks.read_speed", *argv, *extra, "--out", str(path)],
                       cwd=root, env=env, check=True)
        runs[side] = json.loads(path.read_text())["rows"]
    print()
    print(f"before = {rev}, after = this checkout ({platform.node()}, {os.cpu_count()} cores)")
    print(render_compare(runs["before"], runs["after"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=fx.profile_name(), help="smoke, standard or real")
    parser.add_argument("--formats", nargs="+", default=fx.FORMATS)
    parser.add_argument("--codecs", nargs="+", default=fx.CODECS)
    parser.add_argument("--chunk-seconds", nargs="+", type=float, default=fx.CHUNK_SECONDS)
    parser.add_argument("--reads", type=int, default=500, help="timed warm reads per configuration")
    parser.add_argument("--cold-reads", type=int, default=100,
                        help="timed evicted reads per configuration")
    parser.add_argument("--after-close-reads", type=int, default=None,
                        help="timed first reads after closing the store per configuration (default: half --cold-reads)")
    parser.add_argument("--loader-batches", type=int, default=20, help="DataLoader batches (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default results/read_speed-PROFILE.json)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the rows reading each store through its reference library (h5py, zarr-python, "
                             "tensorstore, numpy)")
    parser.add_argument("--before", default=None, metavar="GIT_REV",
                        help="also run the table for this revision's eegbench and print before -> after")
    args = parser.parse_args(argv)
    if args.before:
        argv = list(sys.argv[1:] if argv is None else argv)
        i = argv.index("--before")
        rest = argv[:i] + argv[i + 2:]
        if "--out" in rest:
            j = rest.index("--out")
            rest = rest[:j] + rest[j + 2:]
        compare(args.before, rest, args.out)
        return
    os.environ["EEGBENCH_PROFILE"] = args.profile
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import eegbench

    rows = []
    src = eegbench.open(fx.source_store(args.profile))
    window = int(round(fx.WINDOW_SECONDS * src[0].sfreq))
    params = [f"{f} {c} {s:g}s" for f in args.formats for c in args.codecs for s in args.chunk_seconds]
    refs = [] if args.no_reference else reference_params(params)
    params += ["memmap-npy", "mne-fif", "mne-edf"] + refs
    rows.append({"name": "baseline memcpy of the window (RAM)", "ms_warm": memcpy_ms(src[0].n_channels, window)})
    print(render(rows).splitlines()[-1], flush=True)
    for param in params:
        target = RefTarget(param, args.profile) if param in refs else fx.Target(param, args.profile)
        if not target.supported():
            continue
        row = {"name": param if target.kind == "store" else f"baseline {param}" if target.kind != "reference"
               else f"reference {param}"}
        row.update(measure_access(target, args.reads, args.cold_reads, seed=0, n_after_close=args.after_close_reads))
        if target.kind != "reference":
            row.update(measure_open(target))
        if target.kind == "store" and args.loader_batches:
            row.update(measure_loader(target.build(), window, args.loader_batches))
        rows.append(row)
        print(render([row]).splitlines()[-1], flush=True)
    table = render(rows)
    print()
    print(f"profile {args.profile}: {len(src)} recordings, {src[0].n_channels} ch, {src[0].sfreq:g} Hz, "
          f"window {window} samples; machine {platform.node()} {os.cpu_count()} cores, {platform.python_version()}")
    print(LEGEND)
    print(table)
    out = args.out or fx.REPO / "results" / f"read_speed-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": args.profile, "window_samples": window, "reads": args.reads,
                               "cold_reads": args.cold_reads,
                               "after_close_reads": args.after_close_reads or args.cold_reads // 2, "machine": platform.uname()._asdict(),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows},
                              indent=1))
    (out.with_suffix(".md")).write_text(LEGEND + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
