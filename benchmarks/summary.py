"""The main results table from asv's stored results: one row per store configuration and baseline.

    python -m benchmarks.summary                 # newest results of this machine
    python -m benchmarks.summary --commit HASH --machine NAME --markdown results/summary-standard.md

Columns: ms per random 2-s window warm and cold (open store, median), MB read from disk per cold
window, MB/s sequential warm and cold, save s (2 recordings, fsync included), open ms per
recording, size MB and compression ratio vs float32, file count, peak RSS growth of open and of
reading 50 windows (fresh process), DataLoader windows/s with 0 and 2 workers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
from pathlib import Path

from benchmarks._fixtures import REPO

# (column title, benchmark key, extra parameter values after "store", scale, format)
COLUMNS = [
    ("warm ms/win", "bench_random_access.RandomWindow.track_ms_per_window", ["'warm'"], 1, ".3f"),
    ("cold ms/win", "bench_random_access.RandomWindow.track_ms_per_window", ["'cold'"], 1, ".3f"),
    ("cold MB read/win", "bench_random_access.ColdDiskReads.track_mb_read_per_window", [], 1, ".3f"),
    ("seq MB/s warm", "bench_sequential.SequentialRead.track_mb_per_s", ["'warm'"], 1, ".0f"),
    ("seq MB/s cold", "bench_sequential.SequentialRead.track_mb_per_s", ["'cold'"], 1, ".0f"),
    ("save s", "bench_save.Save.time_save", [], 1, ".2f"),
    ("open ms/rec", "bench_open.Open.track_open_ms_per_recording", [], 1, ".3f"),
    ("size MB", "bench_size.Size.track_bytes", [], 1e-6, ".1f"),
    ("ratio", "bench_size.Size.track_compression_ratio", [], 1, ".2f"),
    ("files", "bench_size.Size.track_file_count", [], 1, ".0f"),
    ("open peak MB", "bench_memory.Memory.track_open_peak_bytes", [], 1e-6, ".1f"),
    ("read peak MB", "bench_memory.ReadMemory.track_read_windows_peak_bytes", [], 1e-6, ".1f"),
    ("DL w0 win/s", "bench_dataloader.DataLoaderThroughput.track_windows_per_s", ["0"], 1, ".0f"),
    ("DL w2 win/s", "bench_dataloader.DataLoaderThroughput.track_windows_per_s", ["2"], 1, ".0f"),
]


def load_results(results_dir: Path, machine: str | None, commit: str | None):
    """The asv Results object for ``machine`` and ``commit`` (default: newest of the machine)."""
    from asv import results as asv_results

    machines = [p.name for p in results_dir.iterdir() if (p / "machine.json").exists()]
    if machine is None:
        if not machines:
            raise SystemExit(f"no asv results under {results_dir}; run `make bench` first")
        machine = max(machines, key=lambda m: (results_dir / m).stat().st_mtime)
    found = list(asv_results.iter_results_for_machine(str(results_dir), machine))
    if commit:
        found = [r for r in found if r.commit_hash.startswith(commit)]
    if not found:
        raise SystemExit(f"no asv results for machine {machine!r}{f' commit {commit}' if commit else ''}")
    return machine, max(found, key=lambda r: r.date or 0)


def table(res) -> tuple[list[str], list[list[str]]]:
    values: dict[tuple[str, tuple[str, ...]], float] = {}
    stores: list[str] = []
    for _title, key, _extra, _scale, _fmt in COLUMNS:
        if key not in res.get_all_result_keys():
            continue
        params = res.get_result_params(key)
        for combo, value in zip(itertools.product(*params), res.get_result_value(key, params)):
            values[(key, combo)] = value
            if combo[0] not in stores:
                stores.append(combo[0])
    rows = []
    for store in stores:
        row = [store.strip("'")]
        for _title, key, extra, scale, fmt in COLUMNS:
            value = values.get((key, (store, *extra)))
            row.append("–" if value is None or (isinstance(value, float) and math.isnan(value))
                       else format(value * scale, fmt))
        if any(cell != "–" for cell in row[1:]):
            rows.append(row)
    return ["store"] + [c[0] for c in COLUMNS], rows


def to_markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "asv")
    parser.add_argument("--machine", default=None)
    parser.add_argument("--commit", default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    machine, res = load_results(args.results, args.machine, args.commit)
    head, rows = table(res)
    text = to_markdown(head, rows)
    profile = os.environ.get("EEGBENCH_PROFILE", "?")
    info = json.loads((args.results / machine / "machine.json").read_text())
    print(f"asv results: machine {machine} ({info.get('cpu', '?')}, {info.get('num_cpu', '?')} cpu, "
          f"{info.get('ram', '?')} RAM), commit {res.commit_hash[:10]}, profile {profile}")
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
