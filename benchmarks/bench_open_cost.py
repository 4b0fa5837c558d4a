"""Open cost in a fresh process (issue #9): ``import eegbench`` + ``eegbench.open()`` of a store of 20
(and 100) recordings, the RSS the open adds, the cost per extra recording, and ``eegbench info``'s
wall time.

Goals (issue #9; judged from these figures, never in tests): import + open of 20 recordings
<= 150 ms and <= 5 MB RSS beyond the imports, <= 1 ms per extra recording, ``eegbench info`` <= 0.4 s.

The stores are tiny (8 channels x 128 Hz x 10 s per recording, blosc-zstd): open reads metadata
only, so the signal size does not matter. ``timeraw_*`` times the statement inside a fresh
interpreter (interpreter start-up excluded); ``track_*`` run their own fresh interpreters and
return the median of 5, with a bytecode cache as an installed package has (:func:`child_env`).
The same figures as a table: ``python -m benchmarks.bench_open_cost``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import _fixtures as fx

FORMATS = ["hdf5", "zarr", "parquet"]
SIZES = [20, 100]
REPEATS = 5

#: RSS (bytes) of this process from /proc (Linux), for the probes below
_RSS = "int(open('/proc/self/statm').read().split()[1]) * __import__('os').sysconf('SC_PAGE_SIZE')"


def store(fmt: str, n: int) -> Path:
    """A store of ``n`` small recordings, built once per code version."""
    import eegbench
    from eegbench.sources.synthetic import make_dataset

    path = fx.CACHE / fx.code_version() / "open-cost" / f"{fmt}-{n}"
    if not (path / "eegbench.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = make_dataset(n_recordings=n, n_channels=8, sfreq=128.0, duration_s=10.0, seed=0)
        eegbench.save(ds, path, format=fmt, compression="blosc-zstd", overwrite=True)
    return path


def child_env() -> dict[str, str]:
    """The environment of the fresh interpreters measured: with a bytecode cache. An installed
    package has its ``.pyc`` files (pip compiles them); with ``PYTHONDONTWRITEBYTECODE`` set (as in
    some CI and sandbox environments) every fresh interpreter compiled eegbench's modules again:
    ~150 ms CPU of an import+open here, a cost no installed eegbench pays. The cache goes to
    ``PYTHONPYCACHEPREFIX`` (default: ``pycache/`` in the benchmark cache), never into the tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(fx.CACHE / "pycache"))
    return env


_WARMED = False


def _run(code: str) -> dict:
    global _WARMED
    if not _WARMED:  # one untimed interpreter writes the bytecode cache of every module timed
        subprocess.run([sys.executable, "-c", code], capture_output=True, env=child_env(), timeout=300)
        _WARMED = True
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
                         env=child_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe(fmt: str, n: int, preload: bool = False) -> dict:
    """One fresh interpreter: seconds to import eegbench, seconds to open, RSS before/after the open.
    ``preload``: import the libraries open uses (pyarrow.parquet, h5py) before measuring."""
    pre = "import pyarrow.parquet, h5py\n" if preload else ""
    code = (f"import time, json\n{pre}c0, t0 = time.process_time(), time.perf_counter()\nimport eegbench\n"
            f"c1, t1 = time.process_time(), time.perf_counter()\n"
            f"r0 = {_RSS}\nds = eegbench.open({str(store(fmt, n))!r})\nc2, t2 = time.process_time(), time.perf_counter()\n"
            f"r1 = {_RSS}\nassert len(ds) == {n}\n"
            "print(json.dumps({'import_s': t1 - t0, 'open_s': t2 - t1, 'rss_open': r1 - r0,"
            " 'import_cpu_s': c1 - c0, 'open_cpu_s': c2 - c1}))")
    return _run(code)


def info_wall_s(fmt: str, n: int = 20) -> float:
    """Wall time of ``eegbench info <store>`` as the console script runs it (fresh interpreter)."""
    code = f"import sys\nfrom eegbench.cli import main\nsys.exit(main(['info', {str(store(fmt, n))!r}]))"
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300, env=child_env())
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300, env=child_env())
    return time.perf_counter() - t0


class OpenCost:
    params = [FORMATS, SIZES]
    param_names = ["format", "n_recordings"]
    version = 1
    number = 1
    repeat = (3, REPEATS, 30.0)
    timeout = 300

    def setup(self, fmt, n):
        store(fmt, n)

    def timeraw_import_and_open(self, fmt, n):
        return f"import eegbench\neegbench.open({str(store(fmt, n))!r})"


class OpenCostTracks:
    params = [FORMATS]
    param_names = ["format"]
    version = 2  # 2: fresh interpreters with a bytecode cache (see child_env)
    timeout = 600

    def setup(self, fmt):
        for n in SIZES:
            store(fmt, n)

    def track_import_open_ms(self, fmt):
        """import eegbench + open of 20 recordings (median of 5 fresh interpreters)."""
        return 1e3 * statistics.median(p["import_s"] + p["open_s"] for p in (probe(fmt, 20) for _ in range(REPEATS)))

    track_import_open_ms.unit = "ms"

    def track_open_rss_bytes(self, fmt):
        """RSS added by open (20 recordings) after ``import eegbench`` (includes the libraries it imports)."""
        return statistics.median(probe(fmt, 20)["rss_open"] for _ in range(REPEATS))

    track_open_rss_bytes.unit = "bytes"

    def track_open_rss_bytes_libraries_preloaded(self, fmt):
        """RSS added by open (20 recordings) when pyarrow.parquet and h5py are already imported."""
        return statistics.median(probe(fmt, 20, preload=True)["rss_open"] for _ in range(REPEATS))

    track_open_rss_bytes_libraries_preloaded.unit = "bytes"

    def track_open_ms_per_extra_recording(self, fmt):
        """(open of 100 recordings - open of 20) / 80, libraries preloaded, median of 5 each."""
        big = statistics.median(probe(fmt, 100, preload=True)["open_s"] for _ in range(REPEATS))
        small = statistics.median(probe(fmt, 20, preload=True)["open_s"] for _ in range(REPEATS))
        return 1e3 * (big - small) / (100 - 20)

    track_open_ms_per_extra_recording.unit = "ms"

    def track_info_wall_s(self, fmt):
        """``eegbench info`` of 20 recordings, whole process (median of 5)."""
        return statistics.median(info_wall_s(fmt) for _ in range(REPEATS))

    track_info_wall_s.unit = "s"


def timeraw_import_eegbench():
    return "import eegbench"


timeraw_import_eegbench.version = 1
timeraw_import_eegbench.repeat = (3, REPEATS, 30.0)


def main() -> None:
    """Print the open-cost figures as a table (median of 5 fresh interpreters each)."""
    print("wall ms (CPU ms in brackets: the machine may be shared), medians of 5 fresh interpreters")
    print("format   import ms      import+open ms   open RSS MB  (libs preloaded) MB  ms/extra rec  info s")
    for fmt in FORMATS:
        ps = [probe(fmt, 20) for _ in range(REPEATS)]
        pre = [probe(fmt, 20, preload=True) for _ in range(REPEATS)]
        big = [probe(fmt, 100, preload=True) for _ in range(REPEATS)]
        med = statistics.median
        per = 1e3 * (med(p["open_s"] for p in big) - med(p["open_s"] for p in pre)) / 80
        cpu = 1e3 * med(p["import_cpu_s"] + p["open_cpu_s"] for p in ps)
        print(f"{fmt:8s} {1e3 * med(p['import_s'] for p in ps):6.1f} ({1e3 * med(p['import_cpu_s'] for p in ps):5.1f}) "
              f"{1e3 * med(p['import_s'] + p['open_s'] for p in ps):9.1f} ({cpu:5.1f}) "
              f"{med(p['rss_open'] for p in ps) / 1e6:12.2f} {med(p['rss_open'] for p in pre) / 1e6:20.2f} "
              f"{per:13.3f} {med(info_wall_s(fmt) for _ in range(REPEATS)):7.3f}", flush=True)


if __name__ == "__main__":
    main()
