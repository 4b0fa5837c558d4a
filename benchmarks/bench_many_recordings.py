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

Stores are saved with ``pack="auto"`` (the default): 1,000 and 10,000 short recordings are packed
(see :mod:`eegbench.packing`), 20 are not; ``track_packs`` records how many packs a store holds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import _fixtures as fx
from ._many import dataset, run_child

SECONDS = 10.0
NOFILE, MAX_OPEN = 64, 16


def sizes() -> list[int]:
    env = os.environ.get("EEGBENCH_MANY_RECORDINGS")
    if env:
        return [int(v) for v in env.split(",") if v.strip()]
    return [20] if fx.profile_name() == "smoke" else [20, 1000]


def _store(fmt: str, n: int) -> Path:
    import eegbench

    path = fx.CACHE / fx.code_version() / "many" / f"{fmt}-{n}"
    if not (path / "eegbench.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        eegbench.save(dataset(n, SECONDS), path, format=fmt, compression="blosc-zstd", overwrite=True)
    return path


def _child(path: Path, reads: int = 300) -> dict:
    return run_child(path, NOFILE, reads, env={"EEGBENCH_MAX_OPEN_FILES": str(MAX_OPEN)}, timeout=900)


class ManyRecordings:
    """Open, memory, random reads under a low open-file limit, fullest folder."""

    params = (["hdf5", "zarr", "parquet"], sizes())
    param_names = ["format", "n_recordings"]
    number = 1
    repeat = (3, 10, 20.0)
    timeout = 900
    # 2: open checks whole columns only and each recording's rows and files on its first build
    # (issue #14), so time_open measures less work and reads include first builds; + time_open_and_build_all
    # 3: save(pack="auto") packs the 1,000- and 10,000-recording stores (fewer files, other layout)
    version = 3

    def setup_cache(self) -> dict[str, str]:
        return {f"{fmt}-{n}": str(_store(fmt, n)) for fmt in self.params[0] for n in self.params[1]}

    setup_cache.timeout = 7200  # 10,000 recordings x 3 formats are written once

    def setup(self, paths, fmt, n):
        self.path = Path(paths[f"{fmt}-{n}"])

    def time_open(self, paths, fmt, n):
        import eegbench

        eegbench.open(self.path)

    def time_open_and_build_all(self, paths, fmt, n):
        """Open and build every recording: the per-recording validation open leaves to first access."""
        import eegbench

        ds = eegbench.open(self.path)
        for i in range(len(ds)):
            ds[i]

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

    def track_packs(self, paths, fmt, n):
        """Packs in the store (0: one file set per recording)."""
        from eegbench import manifest

        return len(manifest.read_header(self.path).get("packs", {}))

    track_packs.unit = "packs"


class SaveManyRecordings:
    """Save time of n short recordings (samples already in memory)."""

    params = (["hdf5", "zarr", "parquet"], sizes())
    param_names = ["format", "n_recordings"]
    number = 1
    repeat = (1, 3, 60.0)
    timeout = 1800
    version = 2  # 2: save(pack="auto") packs 1,000 and 10,000 short recordings

    def setup(self, fmt, n):
        self.ds = dataset(n, SECONDS)
        self.dir = fx.scratch_dir()

    def teardown(self, fmt, n):
        fx.remove(self.dir)

    def time_save(self, fmt, n):
        import eegbench

        eegbench.save(self.ds, self.dir / f"s-{time.perf_counter_ns()}", format=fmt, compression="blosc-zstd")
