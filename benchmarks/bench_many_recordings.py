"""The number-of-recordings axis (issue #14): many short recordings instead of a few long ones.

Per format x number of recordings (short synthetic recordings: 4 channels, 100 Hz, 10 s,
blosc-zstd): open time and the memory it takes, save time, random 1-s window reads in a child
process whose open-file limit (``RLIMIT_NOFILE`` 64) is far below the number of signal files (the
shared file manager must keep descriptors bounded), and the fullest folder of the store (the
Hugging Face Hub allows 10,000 entries per folder).

Sizes: 20 recordings in the smoke profile, 20 and 1,000 otherwise (the main job); 10,000 is opt-in
(writing 10,000 recordings x 3 formats takes several minutes per format here):
``EEGBENCH_MANY_RECORDINGS=20,1000,10000``. ``python -m benchmarks.many_recordings``
prints the same figures for 10,000 recordings against 100 long ones outside asv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import _fixtures as fx

SECONDS, N_CHANNELS, SFREQ = 10.0, 4, 100.0
NOFILE, MAX_OPEN = 64, 16


def sizes() -> list[int]:
    env = os.environ.get("EEGBENCH_MANY_RECORDINGS")
    if env:
        return [int(v) for v in env.split(",") if v.strip()]
    return [20] if fx.profile_name() == "smoke" else [20, 1000]


def _dataset(n: int):
    import eegbench

    ds = eegbench.synthetic.make_dataset(n, n_channels=N_CHANNELS, sfreq=SFREQ, duration_s=SECONDS, seed=0)
    return eegbench.Dataset([r.load() for r in ds], ds.description)


def _store(fmt: str, n: int) -> Path:
    import eegbench

    path = fx.CACHE / fx.code_version() / "many" / f"{fmt}-{n}"
    if not (path / "eegbench.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        eegbench.save(_dataset(n), path, format=fmt, compression="blosc-zstd", overwrite=True)
    return path


_CHILD = r"""
import json, os, resource, sys, time
nofile, path, reads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
import numpy as np
import eegbench
import pyarrow.parquet
from eegbench import formats, tables
for _f in ("hdf5", "zarr", "parquet"):
    formats.get_backend(_f)  # imports done first: measure the open, not one-time imports

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

r0 = rss()
t = time.perf_counter()
ds = eegbench.open(path)
t_open = time.perf_counter() - t
grown = rss() - r0
rng = np.random.default_rng(0)
t = time.perf_counter()
for _ in range(reads):
    rec = ds[int(rng.integers(len(ds)))]
    s = int(rng.integers(0, rec.n_times - 100))
    rec.get_data(start=s, stop=s + 100)
read_ms = (time.perf_counter() - t) / reads * 1e3
print(json.dumps({"open_s": t_open, "open_rss_bytes": grown, "read_ms": read_ms}))
"""


def _child(path: Path, reads: int = 300) -> dict:
    import eegbench

    env = {**os.environ, "PYTHONPATH": str(Path(eegbench.__file__).parents[1]),
           "EEGBENCH_MAX_OPEN_FILES": str(MAX_OPEN)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(NOFILE), str(path), str(reads)], env=env,
                         capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class ManyRecordings:
    """Open, memory, random reads under a low open-file limit, fullest folder."""

    params = (["hdf5", "zarr", "parquet"], sizes())
    param_names = ["format", "n_recordings"]
    number = 1
    repeat = (3, 10, 20.0)
    timeout = 900
    version = 1

    def setup_cache(self) -> dict[str, str]:
        return {f"{fmt}-{n}": str(_store(fmt, n)) for fmt in self.params[0] for n in self.params[1]}

    setup_cache.timeout = 7200  # 10,000 recordings x 3 formats are written once

    def setup(self, paths, fmt, n):
        self.path = Path(paths[f"{fmt}-{n}"])

    def time_open(self, paths, fmt, n):
        import eegbench

        eegbench.open(self.path)

    def track_open_memory_bytes(self, paths, fmt, n):
        return _child(self.path, reads=1)["open_rss_bytes"]

    track_open_memory_bytes.unit = "bytes"

    def track_random_read_ms_low_nofile(self, paths, fmt, n):
        return _child(self.path)["read_ms"]

    track_random_read_ms_low_nofile.unit = "ms"

    def track_max_folder_entries(self, paths, fmt, n):
        from eegbench import manifest
        from eegbench.io.layout import max_folder_entries

        return max_folder_entries(list(manifest.read_header(self.path)["files"]))[1]

    track_max_folder_entries.unit = "entries"


class SaveManyRecordings:
    """Save time of n short recordings (samples already in memory)."""

    params = (["hdf5", "zarr", "parquet"], sizes())
    param_names = ["format", "n_recordings"]
    number = 1
    repeat = (1, 3, 60.0)
    timeout = 1800
    version = 1

    def setup(self, fmt, n):
        self.ds = _dataset(n)
        self.dir = fx.scratch_dir()

    def teardown(self, fmt, n):
        fx.remove(self.dir)

    def time_save(self, fmt, n):
        import eegbench

        eegbench.save(self.ds, self.dir / f"s-{time.perf_counter_ns()}", format=fmt, compression="blosc-zstd")
