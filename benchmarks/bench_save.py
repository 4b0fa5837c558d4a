"""Save time: converting the first two recordings of the profile into each configuration, fsync
included (a store is durable when save returns). Baselines: np.save of float32 and MNE's FIF
writer (float32)."""

from __future__ import annotations

import os

from . import _fixtures as fx

N_RECORDINGS = 2


class Save(fx.Suite):
    params = [[p for p in fx.store_params() if p != "mne-edf"]]
    number = 1
    # quick: one sample (Save was the quick profile's costliest suite: 44 configurations, archive codecs ~10 s each)
    repeat = 1 if fx.profile_name() == "quick" else (1, 3, 60.0)
    warmup_time = 0
    version = 1

    def setup(self, built, store):
        import eegbench

        self.target = self._target(store)
        self.source = eegbench.open(fx.source_store()).take(range(N_RECORDINGS))
        for rec in self.source:  # warm the source so the codec and disk are what is timed
            rec.get_data()
        self.dest = fx.scratch_dir() / "out"

    def teardown(self, built, store):
        if hasattr(self, "dest"):  # asv tears down after a skipped setup too (a codec the format lacks)
            fx.remove(self.dest.parent)

    def time_save(self, built, store):
        import numpy as np

        import eegbench

        if self.target.kind == "store":
            fmt, codec, chunk = store.split()
            eegbench.save(self.source, self.dest, format=fmt, compression=codec,
                          chunk_seconds=float(chunk.rstrip("s")), overwrite=True)
            return
        self.dest.mkdir(parents=True, exist_ok=True)
        for i, rec in enumerate(self.source):
            path = self.dest / (f"{i}.npy" if store == "memmap-npy" else f"{i}_raw.fif")
            if store == "memmap-npy":
                np.save(path, rec.get_data())
            else:
                rec.to_mne().save(path, fmt="single", overwrite=True, verbose="error")
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
