"""Repeatability of the random-access suite: run it N times (default 2) on this commit, print each figure's spread.

    python -m benchmarks.repeatability                      # quick profile, RandomWindow + WarmRatio
    python -m benchmarks.repeatability --runs 3 --bench 'RandomWindow.track_ms_per_window\\(.*none.*'

Issue #9 asks for "two consecutive runs of the random-access suite on one commit, with the spread of
each figure". Each run is a real ``asv run`` of the same benchmarks exactly as the main job runs them
(``--python=same``, the profile's launch method: forkserver for quick/smoke, one round), into its
own temporary results folder (nothing under ``results/`` is touched; the store cache is the usual
``EEGBENCH_BENCH_CACHE``, so stores built by an earlier ``make bench`` at this code are reused).
Prints, per benchmark and parameter combination, every run's figure, their median and the spread
``(max - min) / median``; for the warm rows of ``track_ms_per_window`` also each run's ratio to
``memmap-npy`` of the same run (measured minutes apart: noisy); ``WarmRatio.track_ratio_to_memmap``
is the same ratio measured read by read in one process (issue #9's "warm uncompressed <= 1.2x
np.memmap"); then the median and largest spread, the load average before and after, and the wall
time. On a shared 2-core VM expect 10-50 % spreads: read them as the noise any single asv figure
carries. Runtime here: ~3.5 min per run of the default benchmarks (7 min for two, at load 7-11).
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._fixtures import REPO
from benchmarks.mainjob import write_config

DEFAULT_BENCH = r"bench_random_access\.(RandomWindow\.track_ms_per_window|WarmRatio)"


def run_once(conf: Path, machine: str, commit: str, bench: str, profile: str) -> None:
    asv = [str(Path(sys.executable).parent / "asv")]
    env = dict(os.environ, EEGBENCH_PROFILE=profile)
    launch = "forkserver" if profile in ("quick", "smoke") else "spawn"
    if launch == "forkserver":
        env["EEGBENCH_BENCH_PREIMPORT"] = "1"
    subprocess.run([*asv, "machine", "--config", str(conf), "--yes", "--machine", machine], cwd=REPO, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*asv, "run", "--config", str(conf), "--python=same", "--set-commit-hash", commit,
                    "--machine", machine, "--launch-method", launch, "--bench", bench, "-a", "rounds=1",
                    "--show-stderr"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def load_figures(results_dir: Path, machine: str) -> dict[tuple[str, tuple[str, ...]], float | None]:
    """``{(benchmark, params): value}`` from the asv result file(s) of one run."""
    out: dict[tuple[str, tuple[str, ...]], float | None] = {}
    for path in sorted((results_dir / machine).glob("*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        cols = data["result_columns"]
        for name, row in data["results"].items():
            entry = dict(zip(cols, row))
            params = entry.get("params") or []
            values = entry["result"] if params else [entry["result"][0] if isinstance(entry["result"], list)
                                                     else entry["result"]]
            combos = list(itertools.product(*[[ast.literal_eval(p) for p in ps] for ps in params])) or [()]
            for combo, value in zip(combos, values):
                out[(name, tuple(map(str, combo)))] = value
    return out


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not math.isnan(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=os.environ.get("EEGBENCH_PROFILE") or "quick")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--bench", default=DEFAULT_BENCH, help=f"asv --bench regex (default {DEFAULT_BENCH})")
    args = parser.parse_args(argv)
    t0 = time.time()
    load0 = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    machine = f"repeat-{args.profile}"
    runs = []
    with tempfile.TemporaryDirectory(prefix="eegbench-repeat-") as tmp:
        for k in range(args.runs):
            root = Path(tmp) / f"run{k}"
            conf = write_config(root, f"repeat{k}")
            started = time.time()
            run_once(conf, machine, commit, args.bench, args.profile)
            runs.append(load_figures(root / "asv", machine))
            print(f"run {k + 1}/{args.runs}: {len(runs[-1])} figures in {time.time() - started:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    keys = sorted({key for run in runs for key in run})
    print(f"\ncommit {commit[:10]}, profile {args.profile}, {args.runs} consecutive runs\n")
    print("| benchmark | params | " + " | ".join(f"run {k + 1}" for k in range(args.runs)) + " | median | spread |")
    print("|---|---|" + "---|" * args.runs + "---|---|")
    spreads = []
    for key in keys:
        vals = [run.get(key) for run in runs]
        ok = [v for v in vals if _num(v)]
        if not ok:
            continue
        med = statistics.median(ok)
        spread = (max(ok) - min(ok)) / med if med and len(ok) > 1 else float("nan")
        if len(ok) > 1 and med:
            spreads.append((spread, key))
        cells = " | ".join(f"{v:.4g}" if _num(v) else "n/a" for v in vals)
        print(f"| {key[0].split('.', 1)[-1]} | {', '.join(key[1])} | {cells} | {med:.4g} | {100 * spread:.0f} % |")
    warm = [k for k in keys if k[0].endswith("track_ms_per_window") and k[1][-1:] == ("warm",)]
    base = [k for k in warm if k[1][0] == "memmap-npy"]
    if base:
        print("\nwarm ms per window / memmap-npy of the same run (issue #9: uncompressed <= 1.2x)\n")
        print("| store | " + " | ".join(f"run {k + 1}" for k in range(args.runs)) + " |")
        print("|---|" + "---|" * args.runs)
        for key in warm:
            if key in base or " none " not in f" {key[1][0]} ":
                continue
            cells = []
            for run in runs:
                v, m = run.get(key), run.get(base[0])
                cells.append(f"{v / m:.2f}" if _num(v) and _num(m) else "n/a")
            print(f"| {key[1][0]} | " + " | ".join(cells) + " |")
    if spreads:
        spreads.sort()
        print(f"\nspread (max - min) / median over {len(spreads)} figures: median {100 * statistics.median(s for s, _ in spreads):.0f} %, "
              f"largest {100 * spreads[-1][0]:.0f} % ({spreads[-1][1][0].split('.')[-1]} {', '.join(spreads[-1][1][1])})")
    load1 = os.getloadavg()
    print(f"load average before {load0[0]:.1f}/{load0[1]:.1f}, after {load1[0]:.1f}/{load1[1]:.1f}; "
          f"wall {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
