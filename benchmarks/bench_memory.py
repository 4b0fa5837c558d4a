"""Memory: peak RSS growth of one operation, measured in a fresh child process (asv's
``peakmem_`` counts the whole benchmark process, imports and setup included, and misleads)."""

from __future__ import annotations

from . import _fixtures as fx


class Memory(fx.Suite):
    params = [[p for p in fx.timing_params() if " " in p or p == "mne-fif"]]
    version = 1

    def setup(self, built, store):
        self.target = self._target(store)
        self.path = self.target.build()

    def track_open_peak_bytes(self, built, store):
        if self.target.kind == "mne-fif":
            return fx.peak_memory("fif_open", self.path[0])
        return fx.peak_memory("open", self.path)

    track_open_peak_bytes.unit = "bytes"


class ReadMemory(fx.Suite):
    """Peak RSS growth of reading 50 windows of one recording (stores only)."""

    params = [[p for p in fx.timing_params() if " " in p]]
    version = 1

    def setup(self, built, store):
        self.path = self._target(store).build()

    def track_read_windows_peak_bytes(self, built, store):
        return fx.peak_memory("read_windows", self.path)

    track_read_windows_peak_bytes.unit = "bytes"
