"""Open cost: what ``eegbench.open`` (or np.load(mmap_mode="r"), MNE's lazy readers) costs before
any sample is read. eegbench reads metadata only, so this should not grow with recording length."""

from __future__ import annotations

import time

from . import _fixtures as fx


class Open(fx.Suite):
    number = 1
    repeat = (5, 20, 10.0)
    version = 1

    def setup(self, built, store):
        self.target = self._target(store)
        self.n_recordings = len(self.target.lengths)
        self.target.close()

    def time_open(self, built, store):
        self.target.open()
        self.target.lengths  # noqa: B018 - MNE/memmap handles are opened lazily by this property
        self.target.close()

    def track_open_ms_per_recording(self, built, store):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            self.target.open()
            self.target.lengths  # noqa: B018
            times.append(time.perf_counter() - t0)
            self.target.close()
        return 1000 * min(times) / self.n_recordings

    track_open_ms_per_recording.unit = "ms"
