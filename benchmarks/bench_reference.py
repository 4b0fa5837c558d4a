"""Format x library, and the yardsticks, in the asv suites (issue #9): every ratio from one run.

``ReferenceWindow``: ms per random 2-s all-channel window, warm and cold, for each store read by
eegbench and by its format's reference library (:mod:`benchmarks._reference`: h5py slicing with a
chunk cache sized for four chunks, zarr-python ``Array[...]``, tensorstore's ``zarr3`` driver when
installed, NumPy's memmap of the NumPy+Parquet ``.npy``), plus ``np.memmap`` of a float32 ``.npy``
(the physical limit for warm reads).

``Yardstick``: for the same stores and windows, the pure codec decode of the chunks covering a
window (numcodecs, bytes already in memory), an ``O_DIRECT`` read of the window's stored bytes (the
device's own cost; "evicted <= 2x O_DIRECT") and a memcpy of the window.

Cold is verified: before every cold read the reader releases its files (closes, unmaps), any
mapping of the store's files still alive in this process is paged out (``MADV_PAGEOUT``), the
files are evicted (fsync + ``POSIX_FADV_DONTNEED``) and ``mincore`` must report 0 resident bytes --
otherwise the benchmark fails instead of recording a warm figure as cold.

Cost: one store per format (profiles smoke/quick: hdf5 and zarr blosc-zstd, parquet uncompressed,
the span of CHUNK_SECONDS nearest 1 s); other profiles add the other codec of each format.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from . import _fixtures as fx
from ._reference import LIBRARIES, RefTarget, memcpy_ms, odirect_ms

N_WARM = 50
N_COLD = 10


def _chunk_span() -> float:
    return min(fx.CHUNK_SECONDS, key=lambda s: (abs(s - 1.0), s))


def stores(profile: str | None = None) -> list[str]:
    span = f"{_chunk_span():g}s"
    if (profile or fx.profile_name()) in ("smoke", "quick"):
        return [f"hdf5 blosc-zstd {span}", f"zarr blosc-zstd {span}", f"parquet none {span}"]
    return [f"{f} {c} {span}" for f in fx.FORMATS for c in ("none", "blosc-zstd")]


def rows(profile: str | None = None) -> list[str]:
    """``"eegbench <store>"``, ``"<library> <store>"`` for the format's reference libraries, memmap."""
    out = []
    for store in stores(profile):
        fmt, codec = store.split()[:2]
        out.append(f"eegbench {store}")
        out += [f"{lib} {store}" for lib, f in LIBRARIES.items() if f == fmt and (lib != "numpy" or codec == "none")]
    return [*out, "memmap-npy"]


def target_for(row: str):
    """The reader of a row: a :class:`fx.Target` (eegbench, memmap) or a :class:`RefTarget`."""
    lib, _, store = row.partition(" ")
    if lib == "memmap-npy":
        return fx.Target("memmap-npy")
    if lib == "eegbench":
        return fx.Target(store)
    return RefTarget(row)


# --- verified eviction ------------------------------------------------------------------------
MADV_PAGEOUT = 21  # Linux >= 5.4


def pageout_own_mappings(files) -> int:
    """``madvise(MADV_PAGEOUT)`` every mapping of ``files`` this process still holds (from
    /proc/self/maps); returns how many ranges were advised. Mapped pages survive
    POSIX_FADV_DONTNEED, so a reader that keeps a map (or a library's cache of maps) would
    otherwise make a "cold" read warm."""
    import ctypes

    names = {str(p.resolve()) for p in fx.files_of(files)}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    n = 0
    with open("/proc/self/maps") as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() in names:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                libc.madvise(lo, hi - lo, MADV_PAGEOUT)  # best effort: the mincore check below decides
                n += 1
    return n


def evict_verified(target) -> None:
    """Release the reader's files, page out its remaining mappings, evict, and check with mincore
    that nothing of the files is resident (raises RuntimeError otherwise)."""
    target.release()
    files = target.files
    pageout_own_mappings(files)
    fx.evict(files)
    resident = fx.resident_bytes(files)
    if resident:
        raise RuntimeError(f"{resident} bytes of {getattr(target, 'param', target)} stay in the page cache after "
                           "eviction: this would not be a cold read")


class ReferenceWindow:
    params = [rows(), ["warm", "cold"]]
    param_names = ["reader", "cache"]
    number = 1
    repeat = 1
    warmup_time = 0
    version = 1
    timeout = 900

    def setup_cache(self) -> dict[str, str]:
        return fx.build_all([*stores(), "memmap-npy"])

    setup_cache.timeout = 7200

    def setup(self, built, reader, cache):
        from eegbench.formats._chunks import CHUNK_CACHE

        self.target = target_for(reader)
        if not self.target.supported():
            raise NotImplementedError(f"{reader} does not apply (library missing or codec unreadable by it)")
        self._saved = CHUNK_CACHE.max_bytes
        CHUNK_CACHE.max_bytes = 0  # every read decodes: no reuse of decoded chunks
        self.window = int(round(fx.WINDOW_SECONDS * self.target.sfreq))
        n = N_WARM if cache == "warm" else N_COLD
        self.windows = fx.random_windows(self.target.lengths, self.window, n, seed=2)

    def teardown(self, built, reader, cache):
        from eegbench.formats._chunks import CHUNK_CACHE

        if not hasattr(self, "_saved"):  # setup skipped (asv tears down anyway): nothing to restore
            return
        CHUNK_CACHE.max_bytes = self._saved
        self.target.close()

    def track_ms_per_window(self, built, reader, cache):
        t, times = self.target, []
        t.open()
        if cache == "warm":  # warm: these very windows are in the page cache
            for r, s in self.windows:
                t.read(r, s, self.window)
        for r, s in self.windows:
            if cache == "cold":
                evict_verified(t)
            t0 = time.perf_counter()
            t.read(r, s, self.window)
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)

    track_ms_per_window.unit = "ms"


class Yardstick:
    """Decode-only, O_DIRECT and memcpy ms for one window of each store (same windows as above)."""

    params = [stores()]
    param_names = ["store"]
    number = 1
    repeat = 1
    warmup_time = 0
    version = 1
    timeout = 600

    def setup_cache(self) -> dict[str, str]:
        return fx.build_all(stores())

    setup_cache.timeout = 7200

    def setup(self, built, store):
        import eegbench

        self.ds = eegbench.open(fx.Target(store).build())
        self.window = int(round(fx.WINDOW_SECONDS * self.ds[0].sfreq))
        self.windows = fx.random_windows([r.n_times for r in self.ds], self.window, N_WARM, seed=2)
        self.store = store

    def teardown(self, built, store):
        self.ds.close()

    def _encoded(self):
        """Each window's covering chunks encoded with the store's numcodecs pipeline (None: none)."""
        from eegbench.codecs import encode_chunk, numcodecs_pipeline

        layout = self.ds[0].source.layout
        if layout.codec.compression == "none":
            return None, None
        pipeline = numcodecs_pipeline(layout.codec, np.dtype(layout.dtype))
        cs, out = layout.chunk_samples, []
        for r, s in self.windows:
            src = self.ds[r].source
            out.append([(encode_chunk(raw, pipeline), raw.shape) for raw in
                        (src.read_counts(ci * cs, min((ci + 1) * cs, src.n_times))
                         for ci in range(s // cs, (s + self.window - 1) // cs + 1))])
        return pipeline, out

    def track_decode_only_ms(self, built, store):
        """Pure codec decode of the chunks covering a window (bytes in memory); NaN when uncompressed."""
        from eegbench.codecs import decode_chunk

        pipeline, encoded = self._encoded()
        if pipeline is None:
            return float("nan")
        dtype = np.dtype(self.ds[0].source.layout.dtype)
        times = []
        for chunks in encoded:
            t0 = time.perf_counter()
            for data, shape in chunks:
                decode_chunk(data, pipeline, dtype, shape)
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)

    track_decode_only_ms.unit = "ms"

    def track_odirect_ms(self, built, store):
        """One O_DIRECT read of a window's stored bytes (compressed size for compressed stores)."""
        layout = self.ds[0].source.layout
        _, encoded = self._encoded()
        if encoded is None:
            nbytes = layout.n_channels * self.window * np.dtype(layout.dtype).itemsize
        else:  # the covering chunks' bytes, scaled to the window's share of them
            nbytes = statistics.mean(sum(len(d) for d, _ in ch) * self.window / (len(ch) * layout.chunk_samples)
                                     for ch in encoded)
        return odirect_ms(fx.files_of(fx.Target(store).build()), nbytes)

    track_odirect_ms.unit = "ms"

    def track_memcpy_ms(self, built, store):
        """A copy of one float32 window already in memory."""
        return memcpy_ms(self.ds[0].n_channels, self.window)

    track_memcpy_ms.unit = "ms"
