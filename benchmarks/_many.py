"""Shared by the number-of-recordings benchmarks (``bench_many_recordings.py``, asv) and
``many_recordings.py`` (the printed 10,000 vs 100 table): the synthetic dataset and the child
process that opens a store and reads random windows under a low open-file limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

N_CHANNELS, SFREQ = 4, 100.0

#: argv: RLIMIT_NOFILE, store path, reads per pass, passes. Prints one JSON line: open_s,
#: open_rss_bytes (RSS growth during open, imports done first), read_ms (median pass; the first pass
#: includes building each recording read: its rows and files are checked then), build_all_s (a second
#: open plus building every recording: the validation open leaves to first access), fds.
CHILD = r"""
import json, os, resource, sys, time
nofile, path, reads, passes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
import numpy as np
import eegbench
from eegbench.io import FILES
import pyarrow.parquet
from eegbench import formats, tables
for _f in ("hdf5", "zarr", "parquet"):
    formats.get_backend(_f)  # imports done first: measure the open, not one-time imports

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

rss0 = rss()
t = time.perf_counter()
ds = eegbench.open(path)
t_open = time.perf_counter() - t
rss1 = rss()
rng = np.random.default_rng(0)
n = len(ds)
picks = [int(rng.integers(n)) for _ in range(reads)]
lens = {}
per = []
for rep in range(passes):
    t = time.perf_counter()
    for i in picks:
        rec = ds[i]
        nt = lens.get(i) or lens.setdefault(i, rec.n_times)
        s = int(rng.integers(0, max(1, nt - 100)))
        rec.get_data(start=s, stop=s + 100)
    per.append((time.perf_counter() - t) / max(reads, 1) * 1e3)
t = time.perf_counter()  # open again and build every recording: each one's rows and files checked
ds2 = eegbench.open(path)
for i in range(n):
    ds2[i]
t_all = time.perf_counter() - t
print(json.dumps({"open_s": t_open, "open_rss_bytes": rss1 - rss0, "read_ms": sorted(per)[len(per) // 2],
                  "build_all_s": t_all, "fds": len(os.listdir("/proc/self/fd")), "max_open_files": FILES.maxsize}))
"""


def dataset(n: int, seconds: float):
    """``n`` synthetic recordings of ``seconds`` s (4 channels, 100 Hz), loaded into memory."""
    import eegbench

    ds = eegbench.synthetic.make_dataset(n, n_channels=N_CHANNELS, sfreq=SFREQ, duration_s=seconds, seed=0)
    return eegbench.Dataset([r.load() for r in ds], ds.description)


def run_child(path: Path, nofile: int, reads: int, passes: int = 1, env: dict[str, str] | None = None,
              timeout: float = 1800, check: bool = True) -> dict:
    """Run :data:`CHILD` on ``path``; its JSON result, or ``{"error": last stderr line}`` when
    ``check`` is False and the child failed."""
    import eegbench

    full = {**os.environ, "PYTHONPATH": str(Path(eegbench.__file__).parents[1]), **(env or {})}
    out = subprocess.run([sys.executable, "-c", CHILD, str(nofile), str(path), str(reads), str(passes)],
                         env=full, capture_output=True, text=True, timeout=timeout, check=check)
    if out.returncode:
        err = out.stderr.strip()
        return {"error": err.splitlines()[-1] if err else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])
