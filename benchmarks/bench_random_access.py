"""Random access: 2-second all-channel windows at random positions, warm and cold page cache.

``time_open_and_read`` opens the store inside the timed call and reads ``WINDOWS_PER_CALL``
windows (materialised); ``track_ms_per_window`` reports the median per window with the store
already open, which is the figure a training loop sees. Cold: every file of the store is evicted
from the page cache (fsync + POSIX_FADV_DONTNEED) before the timed call / before each window.
"""

from __future__ import annotations

import statistics
import time

from . import _fixtures as fx

WINDOWS_PER_CALL = 20


class RandomWindow(fx.Suite):
    params = [fx.timing_params(), ["warm", "cold"]]
    param_names = ["store", "cache"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0  # a warm-up call would warm the page cache of the cold case
    version = 1

    def setup(self, built, store, cache):
        from eegbench.formats._chunks import CHUNK_CACHE

        CHUNK_CACHE.max_bytes = 0  # measure decoding, not reuse of decoded chunks
        self.target = self._target(store)
        self.window = int(round(fx.WINDOW_SECONDS * self.target.sfreq))
        self.windows = fx.random_windows(self.target.lengths, self.window, WINDOWS_PER_CALL, seed=1)
        self.target.close()
        if cache == "cold":
            fx.evict(self.target.files)
        else:
            self._read_all()

    def _read_all(self):
        self.target.open()
        for r, s in self.windows:
            self.target.read(r, s, self.window)
        self.target.close()

    def time_open_and_read(self, built, store, cache):
        self._read_all()

    def track_ms_per_window(self, built, store, cache):
        windows = fx.random_windows(self.target.lengths, self.window, 100, seed=2)
        self.target.open()
        if cache == "warm":  # warm means these very windows are in the page cache
            for r, s in windows:
                self.target.read(r, s, self.window)
        times = []
        for r, s in windows:
            if cache == "cold":
                self.target.release()  # mapped pages cannot be evicted
                fx.evict(self.target.files)
            t0 = time.perf_counter()
            self.target.read(r, s, self.window)
            times.append(time.perf_counter() - t0)
        self.target.close()
        return 1000 * statistics.median(times)

    track_ms_per_window.unit = "ms"
    track_ms_per_window.version = 2  # v2: warm pre-reads every timed window (v1 warmed 10 of 100)


class ColdDiskReads(fx.Suite):
    """Bytes read from disk per random window with every file evicted first (/proc/self/io)."""

    version = 1

    def setup(self, built, store):
        self.target = self._target(store)
        self.window = int(round(fx.WINDOW_SECONDS * self.target.sfreq))

    def track_mb_read_per_window(self, built, store):
        windows = fx.random_windows(self.target.lengths, self.window, 30, seed=3)
        total = 0
        for r, s in windows:
            self.target.release()
            fx.evict(self.target.files)
            before = fx.disk_read_bytes()
            self.target.read(r, s, self.window)
            total += fx.disk_read_bytes() - before
        self.target.close()
        return total / len(windows) / 1e6

    track_mb_read_per_window.unit = "MB"
