"""Remote reads: stores served by a local HTTP range server and a local S3 server (moto), both on
127.0.0.1 with an injected latency per request (0 / 5 / 20 ms), each in a process of its own
(:class:`benchmarks._servers.ServerProcess`; traffic counted at the server) -- see :mod:`benchmarks._servers`.

Per format x codec: open (time and requests), a random 2-s all-channel window (time, requests
and bytes, counted at the server, and bytes relative to the window's compressed chunk bytes),
sequential throughput (a whole recording in 10-s blocks), and DataLoader throughput (0/2/8
workers, 20 ms, HTTP) relative to the same loader on the local store.

The figure the recommendation's ``sharing`` workload wants is ``track_bytes_per_remote_window``
(bytes over the network per random 2-s window); ``track_requests_per_remote_window`` and
``track_ms_per_remote_window`` go with it.

Dataset: ``REMOTE_RECORDINGS`` synthetic recordings of 64 ch x 250 Hz x 120 s (int16 grid).
``python -m benchmarks.bench_remote`` prints the whole table once (markdown) without asv
(``--repeats 3``: medians of three interleaved runs; ``--in-process``: servers in the client's process).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from . import _fixtures as fx

REMOTE_RECORDINGS = 6
FORMATS = ["hdf5", "zarr", "parquet"]
CODECS = ["none", "blosc-zstd"]
LATENCIES_MS = [0, 5, 20]
SERVERS = ["http", "s3"]
N_WINDOWS = 20
BUCKET = "eegbench-bench"
SUFFIX = {"hdf5": "h5", "zarr": "zarr", "parquet": "parquet"}


def remote_root() -> Path:
    """A folder with one store per format x codec (built once per code version)."""
    import eegbench

    root = fx.CACHE / fx.code_version() / "remote"
    for fmt in FORMATS:
        for codec in CODECS:
            path = root / f"{fmt}-{codec}.{SUFFIX[fmt]}"
            if not (path / "eegbench.json").exists():
                root.mkdir(parents=True, exist_ok=True)
                ds = eegbench.synthetic.make_dataset(n_recordings=REMOTE_RECORDINGS, n_channels=64, sfreq=250.0,
                                                     duration_s=120.0, seed=0)
                eegbench.save(ds, path, fmt, compression=codec, chunk_seconds=1.0, overwrite=True)
    return root


class Served:
    """One server (``http`` or ``s3``) over :func:`remote_root`, running in a process of its own
    (:class:`benchmarks._servers.ServerProcess`; ``in_process=True``: a thread of this process, as
    the tests run it). In this process, the server's request handling (moto's, in Python) competed
    with the client for the interpreter lock and, on a loaded machine, for CPU time slices: S3
    windows at 20 ms took 33-42 ms in-process against 27-34 ms in a separate process at load 3-4.
    S3 stores are uploaded on first use."""

    def __init__(self, kind: str, latency_ms: float, in_process: bool = False) -> None:
        from ._servers import RangeHTTPServer, S3Server, ServerProcess

        self.kind, self.root = kind, remote_root()
        self._published: set[str] = set()
        if in_process:
            self.server = (RangeHTTPServer(self.root) if kind == "http" else S3Server()).start()
        else:
            self.server = ServerProcess(kind, *([self.root] if kind == "http" else [])).start()
        self.options = None if kind == "http" else self.server.storage_options
        if kind == "s3":
            try:  # moto keeps its buckets per process: a second in-process server sees them
                self.server.create_bucket(BUCKET)
            except Exception:  # noqa: BLE001 - BucketAlreadyOwnedByYou
                pass
        self.server.latency = latency_ms / 1000

    def url(self, store: str) -> str:
        fmt, codec = store.split()
        name = f"{fmt}-{codec}.{SUFFIX[fmt]}"
        if self.kind == "http":
            return f"{self.server.url}/{name}"
        if name not in self._published:
            import eegbench.remote

            self._published.add(name)
            latency, self.server.latency = self.server.latency, 0.0  # uploads are not measured
            try:
                eegbench.remote.publish(self.root / name, f"s3://{BUCKET}/{name}", storage_options=self.options,
                                        overwrite=True)
            finally:
                self.server.latency = latency
        return f"s3://{BUCKET}/{name}"

    def open(self, store: str):
        import eegbench

        return eegbench.open(self.url(store), storage_options=self.options)

    def stop(self) -> None:
        self.server.stop()


def compressed_bytes(ds, rec: int, start: int, stop: int) -> int:
    """Stored bytes of the chunks a window overlaps (from the reader's chunk index)."""
    src = ds[rec].source
    cs = src.chunk_samples
    chunks = range(start // cs, (stop - 1) // cs + 1)
    index = src.__dict__
    if "_h_nbytes" in index:  # NumPy+Parquet chunk files
        return sum(index["_h_nbytes"][c] for c in chunks)
    if "_h_index" in index and isinstance(index["_h_index"], list):  # HDF5: offset, nbytes, mask, crc
        return sum(index["_h_index"][c][1] for c in chunks)
    if "_h_index" in index:  # Zarr: per shard
        per = src.chunks_per_shard
        return sum(index["_h_index"][c // per][0][c % per][1] for c in chunks)
    if "_h_block" in index:  # NumPy+Parquet's chunk-blocked .npy: whole blocks
        return index["_h_block"] * len(chunks)
    return src.n_channels * len(range(start, stop)) * src.dtype.itemsize


def measure(served: Served, store: str, n_windows: int = N_WINDOWS) -> dict[str, float]:
    """Open + random windows + sequential figures of one store on one server."""
    from eegbench.formats._chunks import CHUNK_CACHE

    traffic = served.server.traffic
    out: dict[str, float] = {}
    opens, requests = [], 0
    for _ in range(3):
        CHUNK_CACHE.clear()
        traffic.reset()
        t0 = time.perf_counter()
        ds = served.open(store)
        opens.append(time.perf_counter() - t0)
        requests = traffic.requests
    out["open_ms"], out["open_requests"] = 1000 * statistics.median(opens), requests
    window = int(round(fx.WINDOW_SECONDS * ds[0].sfreq))
    for r in range(len(ds)):  # every recording touched once: its chunk index is fetched (and cached)
        ds[r].get_data(start=0, stop=1)
    CHUNK_CACHE.max_bytes, saved = 0, CHUNK_CACHE.max_bytes  # every window fetches its chunks
    try:
        times, reqs, nbytes, ratio = [], [], [], []
        for r, s in fx.random_windows([rec.n_times for rec in ds], window, n_windows, seed=5):
            traffic.reset()
            t0 = time.perf_counter()
            ds[r].get_data(start=s, stop=s + window)
            times.append(time.perf_counter() - t0)
            reqs.append(traffic.requests)
            nbytes.append(traffic.bytes)
            ratio.append(traffic.bytes / max(1, compressed_bytes(ds, r, s, s + window)))
        out["window_ms"] = 1000 * statistics.median(times)
        out["window_requests"] = statistics.mean(reqs)
        out["window_bytes"] = statistics.mean(nbytes)
        out["window_bytes_ratio"] = max(ratio)
        rec = ds[0]
        block = int(10 * rec.sfreq)
        t0 = time.perf_counter()
        for s in range(0, rec.n_times, block):
            rec.get_data(start=s, stop=min(s + block, rec.n_times))
        out["sequential_mb_s"] = rec.n_channels * rec.n_times * 4 / 1e6 / (time.perf_counter() - t0)
    finally:
        CHUNK_CACHE.max_bytes = saved
    return out


#: timed batches per DataLoader figure (smoke: a few, so CI only checks that the suite runs)
LOADER_BATCHES = 60 if fx.PROFILE != "smoke" else 3
#: DataLoader rows: every format, compressed and uncompressed. (``parquet none`` was left out while its
#: channel-major .npy cost one request per channel per window -- 64 here, ~2,000 per batch of 32 --
#: which ran for many minutes at 20 ms; its chunk-blocked .npy costs 1.)
LOADER_STORES = (["zarr blosc-zstd", "hdf5 blosc-zstd", "parquet blosc-zstd", "zarr none", "hdf5 none",
                  "parquet none"] if fx.PROFILE != "smoke" else ["zarr blosc-zstd", "parquet blosc-zstd"])
LOADER_WORKERS = [0, 2, 8] if fx.PROFILE != "smoke" else [0, 2]
#: seconds a DataLoader waits for one batch before raising (a stuck worker fails the row, never hangs CI)
LOADER_TIMEOUT = 300


def loader_throughput(dataset, workers: int, n_batches: int = LOADER_BATCHES) -> float:
    import torch
    from torch.utils.data import DataLoader

    from benchmarks.read_speed import throughput
    from eegbench.torch import WindowDataset, worker_init_fn

    torch.set_num_threads(1)
    window = int(round(fx.WINDOW_SECONDS * dataset[0].sfreq))
    # overlapping windows (stride 1/8 window): enough batches that 8 workers' prefetched batches
    # (2 each) are a small part of the timed ones
    wds = WindowDataset(dataset, window_samples=window, stride_samples=window // 8)
    loader = DataLoader(wds, batch_size=32, shuffle=True, num_workers=workers,
                        worker_init_fn=worker_init_fn if workers else None,
                        generator=torch.Generator().manual_seed(0), timeout=LOADER_TIMEOUT if workers else 0)
    return throughput(loader, n_batches)


# ---------------------------------------------------------------------------------------------
# asv
# ---------------------------------------------------------------------------------------------
def _stores() -> list[str]:
    return [f"{f} {c}" for f in FORMATS for c in CODECS]


class RemoteWindow:
    """Open and random windows of a remote store; every figure counted at the server."""

    # smoke (CI) checks that the suite runs: one latency, a third of the ~15 min the three cost there
    params = [SERVERS, LATENCIES_MS if fx.PROFILE != "smoke" else [0], _stores()]
    param_names = ["server", "latency_ms", "store"]
    version = 4  # 4: the HTTP server sends ranges >= 16 KiB with os.sendfile; 3: asyncio HTTP server, stdlib keep-alive HTTP client; 2: servers in their own process
    timeout = 600
    number = 1
    repeat = 1

    def setup_cache(self):
        return str(remote_root())

    def setup(self, root, server, latency_ms, store):
        try:
            self.served = Served(server, latency_ms)
        except ImportError as exc:  # moto/s3fs not installed in this environment
            raise NotImplementedError(str(exc)) from exc
        self.figures = measure(self.served, store, n_windows=10)

    def teardown(self, root, server, latency_ms, store):
        self.served.stop()

    def track_open_ms(self, *args):
        return self.figures["open_ms"]

    def track_requests_to_open(self, *args):
        return self.figures["open_requests"]

    def track_ms_per_remote_window(self, *args):
        return self.figures["window_ms"]

    def track_requests_per_remote_window(self, *args):
        return self.figures["window_requests"]

    def track_bytes_per_remote_window(self, *args):
        """Bytes over the network per random 2-s window: the ``sharing`` workload's figure."""
        return self.figures["window_bytes"]

    def track_window_bytes_over_compressed(self, *args):
        return self.figures["window_bytes_ratio"]

    def track_sequential_mb_s(self, *args):
        return self.figures["sequential_mb_s"]

    track_open_ms.unit = track_ms_per_remote_window.unit = "ms"
    track_requests_to_open.unit = track_requests_per_remote_window.unit = "requests"
    track_bytes_per_remote_window.unit = "bytes"
    track_window_bytes_over_compressed.unit = "ratio"
    track_sequential_mb_s.unit = "MB/s"


class RemoteDataLoader:
    """DataLoader windows/s over HTTP at 20 ms per request, relative to the local store."""

    params = [LOADER_STORES, LOADER_WORKERS]
    param_names = ["store", "workers"]
    version = 5  # 5: server sendfile, remote batch rows written in place; 4: asyncio HTTP server, stdlib keep-alive HTTP client; 3: + none rows, server in its own process
    timeout = 900

    def setup_cache(self):
        return str(remote_root())

    def setup(self, root, store, workers):
        self.served = Served("http", 20)

    def teardown(self, root, store, workers):
        if hasattr(self, "served"):  # setup skipped (smoke profile): nothing started
            self.served.stop()

    def track_remote_windows_per_s(self, root, store, workers):
        return loader_throughput(self.served.open(store), workers)

    def track_remote_over_local(self, root, store, workers):
        import eegbench

        fmt, codec = store.split()
        local = loader_throughput(eegbench.open(Path(root) / f"{fmt}-{codec}.{SUFFIX[fmt]}"), workers)
        return loader_throughput(self.served.open(store), workers) / local

    track_remote_windows_per_s.unit = "windows/s"
    track_remote_over_local.unit = "ratio"


# ---------------------------------------------------------------------------------------------
# one run as a table
# ---------------------------------------------------------------------------------------------
def main() -> None:  # pragma: no cover - a script
    import argparse

    import eegbench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", nargs="+", default=SERVERS)
    parser.add_argument("--latencies", nargs="+", type=float, default=LATENCIES_MS)
    parser.add_argument("--workers", nargs="*", type=int, default=LOADER_WORKERS, help="none: no loader table")
    parser.add_argument("--loader-stores", nargs="+", default=LOADER_STORES)
    parser.add_argument("--stores", nargs="+", default=_stores(), help="window-table stores ('fmt codec')")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure each row this many times (interleaved) and print the medians")
    parser.add_argument("--in-process", action="store_true",
                        help="run the servers in this process (as the tests do), not in their own")
    args = parser.parse_args()
    root = remote_root()
    print(f"load average {os.getloadavg()[0]:.1f}; servers {'in this process' if args.in_process else 'in their own process'}; "
          f"medians of {args.repeats} repeat(s) of {N_WINDOWS} random windows each")
    print("| server | latency ms | store | open ms | requests to open | window ms | requests / window "
          "| bytes / window | bytes / compressed | sequential MB/s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in [k for k in args.servers if k != "none"]:
        served = Served(kind, 0, in_process=args.in_process)  # one server per kind, latency changed in place
        try:
            for latency in args.latencies:
                served.server.latency = latency / 1000
                runs: dict[str, list[dict[str, float]]] = {store: [] for store in args.stores}
                for _ in range(args.repeats):
                    for store in args.stores:
                        runs[store].append(measure(served, store))
                for store in args.stores:
                    f = {k: statistics.median(r[k] for r in runs[store]) for k in runs[store][0]}
                    print(f"| {kind} | {latency:g} | {store} | {f['open_ms']:.1f} | {f['open_requests']:.0f} | "
                          f"{f['window_ms']:.2f} | {f['window_requests']:.2f} | {f['window_bytes']:.0f} | "
                          f"{f['window_bytes_ratio']:.2f} | {f['sequential_mb_s']:.1f} |", flush=True)
        finally:
            served.stop()
    if not args.workers:
        return
    from .remote_loader_cost import loader_run, summarize

    cores = os.cpu_count() or 1
    print()
    print(f"DataLoader over HTTP at 20 ms vs the local store: medians of {args.repeats} interleaved local/remote "
          f"pair(s) of {LOADER_BATCHES} batches of 32; CPU seconds of the main process, the workers and the server "
          f"process over the timed batches (/proc/PID/stat), per window; {cores} cores; load average "
          f"{os.getloadavg()[0]:.1f}")
    print()
    print("| store | workers | local windows/s | http 20 ms windows/s | remote / local | local CPU ms/window "
          "| remote client CPU ms/window | server CPU ms/window | requests/window | CPU-bound ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    served = Served("http", 20, in_process=args.in_process)
    try:
        for store in args.loader_stores:
            fmt, codec = store.split()
            for workers in args.workers:
                pairs = []
                for _ in range(args.repeats):
                    local = loader_run(eegbench.open(root / f"{fmt}-{codec}.{SUFFIX[fmt]}"), workers, LOADER_BATCHES)
                    remote = loader_run(served.open(store), workers, LOADER_BATCHES,
                                        None if args.in_process else served.server)
                    pairs.append(summarize(local, remote, workers, 0.020, cores))
                f = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
                bound = statistics.median(p["remote_cpu_bound"] / p["local_cpu_bound"] for p in pairs)
                print(f"| {store} | {workers} | {f['local']:.0f} | {f['remote']:.0f} | {f['ratio']:.2f} | "
                      f"{f['local_cpu_ms']:.3f} | {f['client_cpu_ms']:.3f} | {f['server_cpu_ms']:.3f} | "
                      f"{f['requests_per_window']:.2f} | {bound:.2f} |", flush=True)
    finally:
        served.stop()
    print()
    print("CPU-bound ratio: the local loader's CPU per window over the remote one's (client + server): what "
          "remote / local is when both loaders are limited by the machine's cores, as 8 workers are here. "
          f"Load average at the end {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":  # pragma: no cover
    main()
