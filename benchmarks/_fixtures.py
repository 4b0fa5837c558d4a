"""Shared benchmark fixtures: dataset profiles, the on-disk cache, baselines, cold-cache and memory helpers.

Profiles (environment variable ``EEGBENCH_PROFILE``, default ``smoke``):

* ``smoke``: a few seconds of tiny synthetic data, for CI.
* ``quick``: the main job's profile (``make bench``): the standard generator (129 ch x 500 Hz, 16-bit
  quantized) with 4 recordings x 150 s (about 155 MB as float32, 300 2-s windows), the same
  format x codec x chunk matrix as ``standard``; the DataLoader benchmark times 3 batches of 64
  instead of 10 and the main job runs every benchmark in one round (see ``benchmarks/mainjob.py``).
* ``standard``: synthetic HBN-like data, 20 recordings x 129 ch x 500 Hz x 5 min, 16-bit quantized
  (about 1.5 GB as float32).
* ``real``: the 12 EEGBCI EDF+ recordings of ``../shared/data/eeg`` (64 ch, 160 Hz, 125 s).
* ``issue9``: the shape of issue #9's side-by-side table: 8 recordings x 129 ch x 500 Hz x 300 s
  (about 619 MB as float32) of the standard generator *without an ADC grid* (32-bit counts of
  1e-6 µV, so the float32 volts lie on no grid float32 can see) and every store written with
  ``integer=False``: codecs store float32, as they did in the issue's run (~1.1x compression).

Everything derived from a profile lives in a cache directory (``EEGBENCH_BENCH_CACHE``, default
``<repo>/.eegbench-cache``): the source data once per profile and generator version, and every
store under test keyed by the hash of the eegbench sources that wrote it (so each commit's code is
what gets measured). Functions return paths, never arrays (asv pickles ``setup_cache`` results).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "eeg"
CACHE = Path(os.environ.get("EEGBENCH_BENCH_CACHE", REPO / ".eegbench-cache"))
PROFILE = os.environ.get("EEGBENCH_PROFILE", "smoke")
#: the read-request shape every access benchmark uses: 2-second windows, all channels
WINDOW_SECONDS = 2.0

# the benchmark matrix, shared by every suite so graphs line up (smoke: a subset, for CI time)
FORMATS = ["hdf5", "zarr", "parquet"]
CODECS = ["none", "blosc-lz4", "blosc-zstd", "zstd", "gzip"] if PROFILE != "smoke" else ["none", "blosc-zstd"]
CHUNK_SECONDS = [0.5, 2.0] if PROFILE != "smoke" else [1.0]
#: archive codecs (integer counts only, lossless image coders): measured at 2-s chunks, the span
#: an archive uses and a 2-s window still reads whole (issue #13); not in the smoke matrix
ARCHIVE_CODECS = ["jpegls", "jpegxl", "jpeg2k", "htj2k"] if PROFILE != "smoke" else []
ARCHIVE_CHUNK_SECONDS = 2.0
#: codecs of the timing suites (random access, cold disk reads, sequential, open, memory, DataLoader).
#: quick: the four codecs a reader picks for speed; gzip and the archive codecs are measured only
#: by the size and save suites (their reads are slow and they are chosen for size). Other profiles:
#: every codec everywhere.
TIMING_CODECS = ["none", "blosc-lz4", "blosc-zstd", "zstd"] if PROFILE == "quick" else CODECS + ARCHIVE_CODECS
BASELINES = ["memmap-npy", "mne-fif"]  # + "mne-edf" on the real profile


#: profiles defined here (not eegbench synthetic profiles): make_profile base + overrides, and whether
#: stores keep the ADC grid (integer="auto") or store float32 (integer=False)
BENCH_PROFILES = {
    "issue9": {"base": "standard", "overrides": dict(n_recordings=8, duration_s=300.0, adc_bits=32,
                                                     resolution_uv=1e-6), "integer": False},
}


def store_integer(profile: str | None = None) -> bool | str:
    """``integer=`` for :func:`eegbench.save` of the profile's stores: ``False`` (float32) for a
    profile without an ADC grid, else ``"auto"``."""
    spec = BENCH_PROFILES.get(profile or profile_name())
    return spec["integer"] if spec else "auto"


def profile_name() -> str:
    return os.environ.get("EEGBENCH_PROFILE", PROFILE)


def code_version() -> str:
    """Hash of the eegbench package sources: stores are rebuilt when the code under test changes."""
    import eegbench

    digest = hashlib.sha256()
    for path in sorted(Path(eegbench.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _generator_version() -> str:
    from eegbench.sources import synthetic

    return str(getattr(synthetic, "GENERATOR_VERSION", "1"))


def source_dataset(profile: str | None = None):
    """The profile's dataset as eegbench objects (lazy: synthetic generates on demand)."""
    profile = profile or profile_name()
    if profile == "real":
        if not REAL_DATA.is_dir():
            raise RuntimeError(f"the real profile needs {REAL_DATA}")
        import eegbench

        return eegbench.from_files(sorted((REAL_DATA / "eegbci_S001").glob("*.edf")))
    from eegbench.sources.synthetic import make_profile

    if profile in BENCH_PROFILES:
        spec = BENCH_PROFILES[profile]
        ds = make_profile(spec["base"], seed=0, **spec["overrides"])
        ds.attrs["profile"] = profile
        return ds
    if profile == "quick":  # the standard generator, less data (see the module docstring)
        ds = make_profile("standard", seed=0, n_recordings=4, duration_s=150.0)
        ds.attrs["profile"] = "quick"
        return ds
    return make_profile(profile, seed=0)


def source_store(profile: str | None = None) -> Path:
    """The profile's data once as an uncompressed NumPy+Parquet store (the conversion source)."""
    import eegbench

    profile = profile or profile_name()
    from eegbench.manifest import SCHEMA_VERSION

    # keyed by the store schema too: a cached source of an older schema cannot be opened any more
    path = CACHE / f"source-{profile}-g{_generator_version()}-s{SCHEMA_VERSION}"
    if not _still_readable(path):
        CACHE.mkdir(parents=True, exist_ok=True)
        # integer=True keeps the ADC grid, so every store converted from this one can use it
        eegbench.save(source_dataset(profile), path, format="parquet", compression="none",
                      integer=store_integer(profile) is not False, overwrite=True)
    return path


def _still_readable(path: Path) -> bool:
    """Whether a cached store exists and this code reads it: a layout change inside one schema version
    (e.g. the chunk-blocked uncompressed .npy) makes an older cached source unreadable, so rebuild it."""
    import eegbench
    from eegbench.errors import EegbenchError

    if not (path / "eegbench.json").exists():
        return False
    try:
        ds = eegbench.open(path)
        ds[0].get_data(start=0, stop=1)
        ds.close()
    except EegbenchError:
        return False
    return True


def store(fmt: str, compression: str, chunk_seconds: float, profile: str | None = None) -> Path:
    """A store of the profile written by the code under test; built on first use."""
    import eegbench

    profile = profile or profile_name()
    path = CACHE / code_version() / profile / f"{fmt}-{compression}-{chunk_seconds:g}s"
    if not (path / "eegbench.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        eegbench.save(eegbench.open(source_store(profile)), path, format=fmt, compression=compression,
                      chunk_seconds=chunk_seconds, overwrite=True, integer=store_integer(profile))
    return path


def supported(fmt: str, compression: str) -> bool:
    from eegbench.formats import get_backend

    return compression in get_backend(fmt).compressions


def _per_recording_files(kind: str, name: str, write, profile: str | None) -> list[Path]:
    """One file per recording of the profile's source, written once by ``write(rec, tmp_path)``."""
    import eegbench

    profile = profile or profile_name()
    folder = CACHE / f"baseline-{kind}-{profile}-g{_generator_version()}"
    ds = eegbench.open(source_store(profile))
    paths = [folder / name.format(i=i) for i in range(len(ds))]
    if not all(p.exists() for p in paths):
        folder.mkdir(parents=True, exist_ok=True)
        for rec, path in zip(ds, paths):
            tmp = path.with_name("tmp_" + path.name)
            write(rec, tmp)
            os.replace(tmp, path)  # a killed fixture build never leaves a half file under the real name
    return paths


def memmap_baseline(profile: str | None = None) -> list[Path]:
    """float32 ``.npy`` per recording: np.memmap of these is the physical limit for warm reads."""
    return _per_recording_files("npy", "{i:05d}.npy", lambda rec, p: np.save(p, rec.get_data()), profile)


def fif_baseline(profile: str | None = None) -> list[Path]:
    """One FIF file per recording (float32 samples), read by MNE lazily: what people use today."""
    return _per_recording_files(
        "fif", "rec{i:05d}_raw.fif",
        lambda rec, p: rec.to_mne().save(p, fmt="single", overwrite=True, verbose="error"), profile)


def edf_baseline(profile: str | None = None) -> list[Path]:
    """The source EDF files (real profile only)."""
    if (profile or profile_name()) != "real":
        return []
    return sorted((REAL_DATA / "eegbci_S001").glob("*.edf"))


def files_of(path: Path | list[Path]) -> list[Path]:
    """Every regular file of a store directory (or the given files)."""
    if isinstance(path, list):
        return path
    if Path(path).is_file():
        return [Path(path)]
    return [p for p in Path(path).rglob("*") if p.is_file()]


# --- cold page cache ------------------------------------------------------------------------
def evict(paths: Path | list[Path]) -> None:
    """Drop files (a store directory's or the given ones) from the page cache without root: see
    :func:`eegbench.pagecache.evict`. Pages mapped by a live mmap are not evicted: close memmaps first."""
    for path in files_of(paths):  # as eegbench.pagecache.evict (absent from older revisions: read_speed --before)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(paths: Path | list[Path]) -> None:
    """Read files once so their pages are in the page cache (the "warm" state)."""
    for path in files_of(paths):
        with open(path, "rb", buffering=0) as fh:
            while fh.read(16 << 20):
                pass


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]


def resident_bytes(paths: Path | list[Path]) -> int:
    """Bytes of the files currently in the page cache (mincore(2) on a fresh mapping)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for path in files_of(paths):
        size = path.stat().st_size
        if size == 0:
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = _libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap failed for {path}")
            n_pages = (size + page - 1) // page
            vec = (ctypes.c_ubyte * n_pages)()
            try:
                if _libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore failed for {path}")
            finally:
                _libc.munmap(addr, size)
            total += int(np.count_nonzero(np.frombuffer(vec, dtype=np.uint8) & 1)) * page  # bit 0: resident
        finally:
            os.close(fd)
    return total


def disk_read_bytes() -> int:
    """Bytes this process has read from the block device (``/proc/self/io`` ``read_bytes``, as
    :func:`eegbench.pagecache.disk_read_bytes`, which older revisions lack); -1 where not reported."""
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


# --- memory of one operation, in a fresh process ----------------------------------------------
_MEMORY_SNIPPET = """
import json, sys
sys.path.insert(0, {repo!r})
from benchmarks import _memory_ops
def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))
prepare, run = _memory_ops.OPERATIONS[{op!r}]
state = prepare(*{args!r})
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
base = status("VmRSS")
run(state)
print(json.dumps({{"peak_delta": max(0, status("VmHWM") - base)}}))
"""


def peak_memory(op: str, *args: object) -> int:
    """Peak RSS growth (bytes) of operation ``op`` of :mod:`benchmarks._memory_ops` in a fresh child.

    asv's ``peakmem_`` measures the whole benchmark process (imports, setup, other data), and
    ``ru_maxrss`` even inherits the parent's peak across fork+exec; this resets the kernel's
    high-water mark (VmHWM, via /proc/self/clear_refs) after ``prepare`` and reports how far the
    operation alone pushed it above the RSS at that moment.
    """
    code = _MEMORY_SNIPPET.format(repo=str(REPO), op=op, args=tuple(str(a) for a in args))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    import json

    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_delta"])


def random_windows(lengths: list[int], window: int, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` random ``(recording, start_sample)`` pairs for windows of ``window`` samples."""
    rng = np.random.default_rng(seed)
    recs = rng.integers(0, len(lengths), size=n)
    return [(int(r), int(rng.integers(0, lengths[r] - window + 1))) for r in recs]


def scratch_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=CACHE, prefix="scratch-"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- one interface over stores and baselines --------------------------------------------------
def store_params() -> list[str]:
    """Parameter values naming every configuration under test, baselines last (same graphs): the
    size and save suites' matrix."""
    stores = [f"{f} {c} {s:g}s" for f in FORMATS for c in CODECS for s in CHUNK_SECONDS]
    stores += [f"{f} {c} {ARCHIVE_CHUNK_SECONDS:g}s" for f in FORMATS for c in ARCHIVE_CODECS]
    return stores + BASELINES + ["mne-edf"]


def timing_params() -> list[str]:
    """:func:`store_params` restricted to :data:`TIMING_CODECS`: the timing suites' matrix."""
    return [p for p in store_params() if " " not in p or p.split()[1] in TIMING_CODECS]


class Target:
    """A store configuration (``"zarr blosc-zstd 0.5s"``) or a baseline (``"memmap-npy"``,
    ``"mne-fif"``, ``"mne-edf"``), built on first use, with one reading interface.

    ``open()`` opens it the way a user would (eegbench.open / np.load(mmap_mode="r") / MNE's lazy
    readers); ``read(r, start, n)`` returns a materialised float array of all channels.
    """

    def __init__(self, param: str, profile: str | None = None) -> None:
        self.param, self.profile = param, profile or profile_name()
        self.kind = "store" if " " in param else param
        self._handles: list | object | None = None

    def supported(self) -> bool:
        if self.kind == "store":
            fmt, codec, _ = self.param.split()
            return supported(fmt, codec)
        return self.kind != "mne-edf" or self.profile == "real"

    def build(self) -> Path | list[Path]:
        """Create the files if needed; returns the store path or the baseline's file list."""
        if self.kind == "store":
            fmt, codec, chunk = self.param.split()
            return store(fmt, codec, float(chunk.rstrip("s")), self.profile)
        return {"memmap-npy": memmap_baseline, "mne-fif": fif_baseline, "mne-edf": edf_baseline}[self.kind](
            self.profile)

    @property
    def files(self) -> list[Path]:
        return files_of(self.build())

    def open(self) -> None:
        built = self.build()
        if self.kind == "store":
            import eegbench

            self._handles = eegbench.open(built)
        elif self.kind == "memmap-npy":
            self._lengths = [int(np.load(p, mmap_mode="r").shape[1]) for p in built]
            self._handles = {}  # recording -> memmap, mapped on first read
        else:
            import mne

            reader = mne.io.read_raw_fif if self.kind == "mne-fif" else mne.io.read_raw_edf
            self._handles = [reader(p, preload=False, verbose="error") for p in built]

    @property
    def lengths(self) -> list[int]:
        if self._handles is None:
            self.open()
        if self.kind == "store":
            return [r.n_times for r in self._handles]
        if self.kind == "memmap-npy":
            return self._lengths
        return [int(r.n_times) for r in self._handles]

    @property
    def sfreq(self) -> float:
        if self._handles is None:
            self.open()
        if self.kind == "store":
            return self._handles[0].sfreq
        import eegbench

        return eegbench.open(source_store(self.profile))[0].sfreq if self.kind == "memmap-npy" \
            else float(self._handles[0].info["sfreq"])

    def read(self, r: int, start: int, n: int) -> np.ndarray:
        if self._handles is None:
            self.open()
        if self.kind == "store":
            return self._handles[r].get_data(start=start, stop=start + n)
        if self.kind == "memmap-npy":
            if r not in self._handles:
                self._handles[r] = np.load(self.build()[r], mmap_mode="r")
            return np.array(self._handles[r][:, start:start + n])  # copy: a memmap slice reads nothing
        return self._handles[r].get_data(start=start, stop=start + n)

    def release(self) -> None:
        """Close file handles and unmap memmaps (mapped pages cannot be evicted) but keep what was
        opened: the next read reopens only the file it needs, as a long-running loader would."""
        if self.kind == "store" and self._handles is not None:
            self._handles.close()
        elif self.kind == "memmap-npy" and self._handles is not None:
            self._handles.clear()

    def close(self) -> None:
        """Release handles and forget the opened dataset (the next read opens again)."""
        self.release()
        self._handles = None


def build_all(params: list[str] | None = None) -> dict[str, str]:
    """Build every store and baseline of the profile once (asv ``setup_cache``); returns paths."""
    out = {}
    for param in params or store_params():
        target = Target(param)
        if target.supported():
            built = target.build()
            out[param] = str(built) if isinstance(built, Path) else ",".join(map(str, built))
    return out


class Suite:
    """Base of the asv suites: one parameter ``store`` over every configuration and baseline."""

    version = 1
    timeout = 1800
    params: list = [timing_params()]
    param_names = ["store"]

    def setup_cache(self) -> dict[str, str]:
        return build_all()

    setup_cache.timeout = 7200  # the standard profile converts ~1.5 GB per configuration once

    def _target(self, store: str) -> Target:
        target = Target(store)
        if not target.supported():
            raise NotImplementedError(f"{store} does not apply to profile {target.profile}")
        return target


# --- one import for every benchmark process ----------------------------------------------------
def preimport() -> None:
    """Import what the benchmark processes need (eegbench with its three format backends, torch,
    MNE) once, in the process asv forks from.

    asv's forkserver imports the benchmark modules once and forks a process per benchmark and
    parameter combination (~300 in the quick profile); our suites import eegbench, torch and MNE
    lazily, so without this each of those processes imported them again: ~3-5 s of CPU each, which
    was most of the main job's time. Only imports run here: no reader threads (Blosc, zarr's event
    loop) exist before the forks. The main job turns it on (``EEGBENCH_BENCH_PREIMPORT=1``).
    """
    import importlib

    import eegbench.store  # noqa: F401
    from eegbench.formats import get_backend

    for fmt in FORMATS:
        get_backend(fmt)
    try:  # numcodecs through eegbench, which also turns Blosc's threads off before any fork
        from eegbench.codecs import load_numcodecs

        load_numcodecs()
    except ImportError:
        pass
    for name in ("h5py", "hdf5plugin", "zarr", "pyarrow.parquet", "eegbench.torch", "torch", "torch.utils.data",
                 "mne"):
        try:
            importlib.import_module(name)
        except ImportError:  # optional extras: the suites that need them skip
            pass


if os.environ.get("EEGBENCH_BENCH_PREIMPORT") == "1":
    preimport()
