"""Sequential read: one whole recording in 10-second blocks (epoch-style scans, preprocessing)."""

from __future__ import annotations

import time

from . import _fixtures as fx

BLOCK_SECONDS = 10.0


class SequentialRead(fx.Suite):
    params = [fx.timing_params(), ["warm", "cold"]]
    param_names = ["store", "cache"]
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    version = 1

    def setup(self, built, store, cache):
        self.target = self._target(store)
        self.n_times = self.target.lengths[0]
        self.block = int(BLOCK_SECONDS * self.target.sfreq)
        self.target.close()
        if cache == "cold":
            fx.evict(self.target.files)
        else:
            self._scan()

    def _scan(self) -> int:
        self.target.open()
        nbytes = 0
        for start in range(0, self.n_times, self.block):
            nbytes += self.target.read(0, start, min(self.block, self.n_times - start)).astype("float32").nbytes
        self.target.close()
        return nbytes

    def time_read_recording(self, built, store, cache):
        self._scan()

    def track_mb_per_s(self, built, store, cache):
        if cache == "cold":
            fx.evict(self.target.files)
        t0 = time.perf_counter()
        nbytes = self._scan()
        return nbytes / (time.perf_counter() - t0) / 1e6

    track_mb_per_s.unit = "MB/s"
