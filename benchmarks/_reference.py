"""Each format read the way a user of its reference library would, plus raw-hardware baselines.

``RefTarget("h5py hdf5 blosc-zstd 1s")`` reads the eegbench store ``hdf5 blosc-zstd 1s`` with plain
h5py (slicing, a chunk cache sized for four chunks); ``zarr-python``/``tensorstore`` read the Zarr
stores with ``Array[...]`` / ``zarr3`` driver; ``numpy`` maps the NumPy+Parquet ``.npy`` (blocked by
chunk: a window is its blocks transposed and reshaped, one copy). Integer
stores are calibrated as the files' own attributes say (``float32(((counts * q_scale) + q_offset) *
q_gain)`` in float64). The interface is :class:`benchmarks._fixtures.Target`'s, so the same timing
code measures both and every ratio comes from one run.

Baselines: :func:`odirect_ms` (``O_DIRECT`` reads of a given size at random aligned offsets, no page
cache) and :func:`memcpy_ms` (a copy of a window already in memory).
"""

from __future__ import annotations

import mmap
import os
import statistics
import time
from pathlib import Path

import numpy as np

from . import _fixtures as fx

LIBRARIES = {"h5py": "hdf5", "zarr-python": "zarr", "tensorstore": "zarr", "numpy": "parquet"}


def reference_params(stores: list[str] | None = None) -> list[str]:
    """``"<library> <store param>"`` for every store whose format the library reads."""
    stores = [p for p in (stores or fx.store_params()) if " " in p]
    return [f"{lib} {p}" for p in stores for lib, fmt in LIBRARIES.items() if p.split()[0] == fmt
            and (lib != "numpy" or p.split()[1] == "none")]


def _calibrate(x: np.ndarray, q: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> np.ndarray:
    if q is None:
        return np.asarray(x, dtype=np.float32)
    scale, offset, gain = q
    return (((x.astype(np.float64) * scale[:, None]) + offset[:, None]) * gain[:, None]).astype(np.float32)


class RefTarget:
    """A store read through its format's reference library (see the module docstring)."""

    def __init__(self, param: str, profile: str | None = None) -> None:
        self.param = param
        self.library, self.store_param = param.split(" ", 1)
        self.kind = "reference"
        self.profile = profile or fx.profile_name()
        self._store = fx.Target(self.store_param, self.profile)
        self._handles: list | None = None
        self._meta: list | None = None

    def supported(self) -> bool:
        if not self._store.supported():
            return False
        try:
            self.open()
            self.read(0, 0, 1)
            self.close()
        except Exception:  # noqa: BLE001 - e.g. tensorstore cannot read numcodecs.* codecs
            return False
        return True

    def build(self) -> Path:
        return self._store.build()

    @property
    def files(self) -> list[Path]:
        return self._store.files

    def _recordings(self) -> list[tuple[Path, int, tuple | None]]:
        import eegbench

        root = self.build()
        out = []
        with eegbench.open(root) as ds:
            for rec in ds:
                src = rec.source
                q = src.quantization
                qq = None if q is None else (q.scale, q.offset, q.gain)
                if self.library == "h5py":
                    path = root / src.storage["file"]
                elif self.library in ("zarr-python", "tensorstore"):
                    path = root / src.storage["array"]
                else:
                    path = root / src._rel("npy")
                out.append((path, rec.n_times, qq, src.layout.chunk_samples * src.n_channels * src.dtype.itemsize))
        return out

    def open(self) -> None:
        import gc

        from eegbench.io import FILES

        # maps of these files that eegbench's file manager still holds from an earlier row of this
        # process (e.g. its DataLoader run) would map them twice: MADV_PAGEOUT skips pages mapped
        # more than once, so this row's "evicted" reads would find them resident
        gc.collect()
        FILES.clear()
        if self._meta is None:
            self._meta = self._recordings()
        self._handles = [None] * len(self._meta)

    def _handle(self, r: int):
        h = self._handles[r]
        if h is None:
            path, _, _, chunk_bytes = self._meta[r]
            if self.library == "h5py":
                import h5py
                import hdf5plugin  # noqa: F401 - registers the Blosc/Zstd filters

                f = h5py.File(path, "r", rdcc_nbytes=max(4 * chunk_bytes, 1 << 20), rdcc_nslots=10007)
                h = (f, f["signals"])
            elif self.library == "zarr-python":
                import zarr

                h = (None, zarr.open_array(str(path), mode="r"))
            elif self.library == "tensorstore":
                import tensorstore as ts

                h = (None, ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}},
                                   read=True).result())
            else:
                h = (None, np.load(path, mmap_mode="r"))
            self._handles[r] = h
        return h[1]

    @property
    def lengths(self) -> list[int]:
        if self._meta is None:
            self.open()
        return [m[1] for m in self._meta]

    @property
    def sfreq(self) -> float:
        return self._store.sfreq

    def read(self, r: int, start: int, n: int) -> np.ndarray:
        if self._handles is None:
            self.open()
        arr = self._handle(r)
        if self.library == "tensorstore":
            x = arr[:, start:start + n].read().result()
        elif self.library == "numpy":  # the chunk-blocked .npy (n_chunks, n_channels, chunk_samples)
            cs = arr.shape[2]
            first, last = start // cs, (start + n - 1) // cs
            a = start - first * cs
            x = arr[first:last + 1].transpose(1, 0, 2).reshape(arr.shape[1], -1)[:, a:a + n]  # reshape copies
        else:
            x = np.array(arr[:, start:start + n])  # np.array: a memmap slice reads nothing
        return _calibrate(x, self._meta[r][2])

    def release(self) -> None:
        """Close files and unmap (mapped pages cannot be evicted); the next read reopens."""
        if self._handles is not None:
            for h in self._handles:
                if h is not None and h[0] is not None:
                    h[0].close()
            self._handles = [None] * len(self._handles)
        self._store.close()  # its sfreq lookup opened the store
        import gc

        gc.collect()  # memmaps unmap when collected: before the caller evicts

    def close(self) -> None:
        self.release()
        self._handles = None


def odirect_ms(files: list[Path], nbytes: int, n: int = 50, seed: int = 0) -> float:
    """Median ms of one ``O_DIRECT`` read of ``nbytes`` (rounded up to 4 KiB) at a random 4 KiB-aligned
    offset of one of ``files``: the device's cost for a window's bytes, no page cache involved."""
    if not hasattr(os, "O_DIRECT"):
        return float("nan")
    rng = np.random.default_rng(seed)
    size = -(-max(int(nbytes), 1) // 4096) * 4096
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT requires
    files = [f for f in files if f.stat().st_size >= size + 4096] or files
    times = []
    for _ in range(n):
        f = files[int(rng.integers(len(files)))]
        span = max(f.stat().st_size - size, 0) // 4096
        off = int(rng.integers(span + 1)) * 4096
        fd = os.open(f, os.O_RDONLY | os.O_DIRECT)
        try:
            t0 = time.perf_counter()
            os.preadv(fd, [buf], off)
            times.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
    buf.close()
    return 1000 * statistics.median(times)


def memcpy_ms(n_channels: int, n_samples: int, n: int = 200) -> float:
    """Median ms to copy one float32 window (n_channels x n_samples) already in memory."""
    src = np.random.default_rng(0).standard_normal((n_channels, n_samples)).astype(np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)
