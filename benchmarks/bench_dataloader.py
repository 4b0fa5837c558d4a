"""DataLoader throughput: windows/s of ``eegbench.torch.WindowDataset`` (2-s windows, batch 64)
with 0 and 2 workers, against a TensorDataset of the same windows in memory.

What is measured is the steady state of a training run of several epochs, with
``persistent_workers=True`` (what such a run should use): the same ``N_BATCHES`` random batches
form every epoch; a first, untimed epoch has every reading process read every batch once (each
worker too: :class:`benchmarks.loader_breakdown.EpochBatches`), so workers=0 and workers=2 have
paid the same start-up -- fork, opening the store, first touch (location and checksum) of every
chunk -- before the timed epoch, which reads the same batches once each in a new order. Every
window decodes its chunks (the decoded-chunk cache is off, as in the random-access suite: a
training set larger than that cache). The store's files are read once in setup, so the page cache
is warm for every variant. The figure is the median of ``EPOCHS`` timed epochs of ``N_BATCHES``
batches (v2 timed one epoch of 8 batches in the quick profile: too short for 2 workers' pipeline to
run steadily -- the last batches of an epoch leave one worker idle -- and a single sample).

Start-up is a separate figure, ``track_first_batch_ms``: from ``iter(loader)`` of a fresh loader
over a freshly opened store to its first batch (the latency before training starts; with workers
it includes forking them). A profile with fewer than one batch of windows reports n/a
(skipped), never 0 windows/s.
"""

from __future__ import annotations

from . import _fixtures as fx

N_BATCHES = 32
EPOCHS = 3
BATCH = 64


class DataLoaderThroughput(fx.Suite):
    params = [[p for p in fx.timing_params() if " " in p] + ["in-memory"], [0, 2]]
    param_names = ["store", "workers"]
    # v2: one untimed warm epoch read by every process, then a timed epoch (both sides pay the same
    # start-up; v1 timed the workers' cold start against a warm workers=0), decoded-chunk cache off,
    # 8 batches per epoch in the quick profile (was 3 after a cold first batch); v3: median of 3 timed
    # epochs of 32 batches (v2: one of 8 / 16), batches held until the next arrives and dropped at the
    # end of every epoch, worker batches named rather than re-sent (eegbench.torch ring slots)
    version = 3

    def setup(self, built, store, workers):
        from eegbench.formats._chunks import CHUNK_CACHE

        CHUNK_CACHE.max_bytes = 0  # every window decodes (forked workers inherit the setting)
        if store == "in-memory":
            store = next(p for p in fx.timing_params() if " " in p and fx.Target(p).supported())
        self.target = self._target(store)
        self.path = self.target.build()
        self.window = int(round(fx.WINDOW_SECONDS * self.target.sfreq))
        lengths = self.target.lengths
        self.target.close()
        if sum(n // self.window for n in lengths) < BATCH:
            raise NotImplementedError(f"profile {fx.profile_name()} has fewer than {BATCH} windows: "
                                      "DataLoader throughput is n/a")
        fx.warm(self.target.files)  # same page-cache state for 0 and 2 workers: warm

    def _loader_input(self, store):
        import numpy as np
        import torch
        from torch.utils.data import TensorDataset

        from eegbench.torch import WindowDataset, collate

        torch.set_num_threads(1)
        wds = WindowDataset(self.path, window_samples=self.window)
        rng = np.random.default_rng(0)
        batches = [rng.integers(0, len(wds), BATCH).tolist() for _ in range(N_BATCHES)]
        if store != "in-memory":
            return wds, batches, collate
        # the same windows, read once into one tensor; batches index it in the same pattern
        flat = sorted({i for b in batches for i in b})
        pos = {w: k for k, w in enumerate(flat)}
        mem = TensorDataset(torch.stack([wds[i][0] for i in flat]), torch.arange(len(flat)))
        return mem, [[pos[i] for i in b] for b in batches], None

    def track_windows_per_s(self, built, store, workers):
        from benchmarks.loader_breakdown import loader_run

        dataset, batches, collate_fn = self._loader_input(store)
        return loader_run(dataset, workers, batches, collate_fn=collate_fn, epochs=EPOCHS)["windows_per_s"]

    track_windows_per_s.unit = "windows/s"
    # v2: page cache warmed in setup (v1 favoured whichever ran second); v3: eegbench.torch.collate (each
    # batch assembled once, in the worker, into one tensor in shared memory); v4: steady state after an
    # untimed warm epoch read by every process (see the class's version); v5: median of EPOCHS epochs of
    # N_BATCHES
    track_windows_per_s.version = 5

    def track_first_batch_ms(self, built, store, workers):
        from benchmarks.loader_breakdown import loader_run

        dataset, batches, collate_fn = self._loader_input(store)
        return loader_run(dataset, workers, batches[:1], collate_fn=collate_fn, timed=False)["first_batch_ms"]

    track_first_batch_ms.unit = "ms"
    track_first_batch_ms.version = 1
