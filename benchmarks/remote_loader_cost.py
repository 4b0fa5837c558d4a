"""Where a remote DataLoader's time goes: windows/s of the same loader on the local store and over
HTTP at 20 ms per request, with the CPU time of every process involved -- the main process, the
DataLoader workers and the test server (its own process, :class:`benchmarks._servers.ServerProcess`)
-- read from ``/proc/PID/stat`` (utime + stime) around the timed batches, the requests counted at
the server, and the most requests it had in flight at once.

From these it prints, per store and worker count:

* CPU ms per window: local loader, remote client (main + workers), server; server ms per request;
* cores busy (all CPU seconds / wall seconds) and the machine's cores (``os.cpu_count()``);
* the **latency bound**: every worker (or the main process, with 0 workers) waits at least one
  round trip per batch of 32, so at most ``max(1, workers) * 32 / latency`` windows/s;
* the **CPU bounds**: ``cores / CPU per window`` for the local loader, for the remote loader with
  the server on the same cores (this machine), and with the server's CPU elsewhere (its CPU per
  window left out, as for a real remote server).

When both loaders are CPU-bound on the same cores, ``remote / local`` is at most the ratio of the
two CPU bounds: the goal "8 workers at 20 ms reach >= 50 % of local" then needs the remote client's
and the server's CPU per window together to be no more than the local loader's.

``python -m benchmarks.remote_loader_cost`` (``--stores``, ``--workers``, ``--repeats``,
``--batches``, ``--latency``); figures are medians of interleaved local/remote repeats. The machine's
load average is printed before and after: on a shared machine CPU seconds are the steadier figure.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from . import _fixtures as fx

_TICK = os.sysconf("SC_CLK_TCK")
BATCH = 32


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of process ``pid`` (all its threads), seconds; 0 for None."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def loader_run(dataset: Any, workers: int, n_batches: int = 60, server: Any = None) -> dict[str, float]:
    """Time ``n_batches`` batches (after the first: worker start-up) of the benchmark's DataLoader
    (:func:`benchmarks.bench_remote.loader_throughput`'s settings) and account the CPU time of the
    main process, the workers and ``server`` (a :class:`~benchmarks._servers.ServerProcess`) over
    exactly those batches."""
    import torch
    from torch.utils.data import DataLoader

    from eegbench.torch import WindowDataset, worker_init_fn

    torch.set_num_threads(1)
    window = int(round(fx.WINDOW_SECONDS * dataset[0].sfreq))
    wds = WindowDataset(dataset, window_samples=window, stride_samples=window // 8)
    loader = DataLoader(wds, batch_size=BATCH, shuffle=True, num_workers=workers,
                        worker_init_fn=worker_init_fn if workers else None,
                        generator=torch.Generator().manual_seed(0), timeout=300 if workers else 0)
    it = iter(loader)
    next(it)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    spid = getattr(server, "pid", None)

    def snap() -> tuple[float, ...]:
        return (time.perf_counter(), cpu_seconds(os.getpid()), sum(cpu_seconds(p) for p in pids), cpu_seconds(spid))

    if server is not None:
        server.traffic.reset()
    a = snap()
    n = 0
    for _ in range(n_batches):
        try:
            x, _y = next(it)
        except StopIteration:
            break
        n += len(x)
    b = snap()
    requests = server.traffic.requests if server is not None else 0
    in_flight = server.traffic.max_in_flight if server is not None else 0
    del it
    wall = b[0] - a[0]
    return {"windows_s": n / wall, "wall_s": wall, "windows": n, "main_cpu_s": b[1] - a[1],
            "workers_cpu_s": b[2] - a[2], "server_cpu_s": b[3] - a[3], "requests": requests,
            "max_in_flight": in_flight}


def summarize(local: dict[str, float], remote: dict[str, float], workers: int, latency_s: float,
              cores: int) -> dict[str, float]:
    """The derived figures of one local/remote pair (see the module docstring)."""
    n_l, n_r = local["windows"], remote["windows"]
    local_ms = 1000 * (local["main_cpu_s"] + local["workers_cpu_s"]) / n_l
    client_ms = 1000 * (remote["main_cpu_s"] + remote["workers_cpu_s"]) / n_r
    server_ms = 1000 * remote["server_cpu_s"] / n_r
    return {
        "local": local["windows_s"], "remote": remote["windows_s"], "ratio": remote["windows_s"] / local["windows_s"],
        "local_cpu_ms": local_ms, "client_cpu_ms": client_ms, "server_cpu_ms": server_ms,
        "requests_per_window": remote["requests"] / n_r,
        "server_ms_per_request": 1000 * remote["server_cpu_s"] / max(1, remote["requests"]),
        "local_cores": (local["main_cpu_s"] + local["workers_cpu_s"]) / local["wall_s"],
        "remote_cores": (remote["main_cpu_s"] + remote["workers_cpu_s"] + remote["server_cpu_s"]) / remote["wall_s"],
        "max_in_flight": remote["max_in_flight"],
        "latency_bound": max(1, workers) * BATCH / latency_s if latency_s > 0 else float("inf"),
        "local_cpu_bound": cores / (local_ms / 1000),
        "remote_cpu_bound": cores / ((client_ms + server_ms) / 1000),
        "remote_cpu_bound_server_elsewhere": cores / (client_ms / 1000),
    }


COLUMNS = [
    ("local", "local win/s", ".0f"), ("remote", "remote win/s", ".0f"), ("ratio", "remote / local", ".2f"),
    ("local_cpu_ms", "local CPU ms/win", ".3f"), ("client_cpu_ms", "remote client CPU ms/win", ".3f"),
    ("server_cpu_ms", "server CPU ms/win", ".3f"), ("requests_per_window", "requests/win", ".2f"),
    ("server_ms_per_request", "server CPU ms/request", ".3f"), ("local_cores", "cores busy local", ".2f"),
    ("remote_cores", "cores busy remote", ".2f"), ("max_in_flight", "max in flight", ".0f"),
    ("latency_bound", "latency bound win/s", ".0f"), ("local_cpu_bound", "local CPU bound win/s", ".0f"),
    ("remote_cpu_bound", "remote CPU bound win/s", ".0f"),
    ("remote_cpu_bound_server_elsewhere", "remote CPU bound, server elsewhere", ".0f"),
    ("cpu_ratio_bound", "CPU bound ratio", ".2f"),
]


def table(rows: list[tuple[str, int, dict[str, float]]]) -> str:
    head = "| store | workers | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(COLUMNS)]
    for store, workers, f in rows:
        f = {**f, "cpu_ratio_bound": f["remote_cpu_bound"] / f["local_cpu_bound"]}
        lines.append(f"| {store} | {workers} | " + " | ".join(format(f[k], spec) for k, _, spec in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - a script
    import argparse

    import eegbench

    from .bench_remote import LOADER_STORES, SUFFIX, Served, remote_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", default=LOADER_STORES)
    parser.add_argument("--workers", nargs="+", type=int, default=[8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    root = remote_root()
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {cores} cores; HTTP at {args.latency:g} ms; "
          f"medians of {args.repeats} interleaved local/remote pairs of {args.batches} batches of {BATCH}", flush=True)
    served = Served("http", args.latency)
    rows = []
    try:
        for store in args.stores:
            fmt, codec = store.split()
            for workers in args.workers:
                pairs = []
                for _ in range(args.repeats):
                    local = loader_run(eegbench.open(root / f"{fmt}-{codec}.{SUFFIX[fmt]}"), workers, args.batches)
                    remote = loader_run(served.open(store), workers, args.batches, served.server)
                    pairs.append(summarize(local, remote, workers, args.latency / 1000, cores))
                med = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
                med["ratio"] = statistics.median(p["ratio"] for p in pairs)
                rows.append((store, workers, med))
                print(f"{store} w{workers}: ratios " + " ".join(f"{p['ratio']:.2f}" for p in pairs), flush=True)
    finally:
        served.stop()
    print()
    print(table(rows))
    print(f"\nload average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":  # pragma: no cover
    main()
