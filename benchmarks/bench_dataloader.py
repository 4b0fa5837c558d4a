"""DataLoader throughput: windows/s of ``eegbench.torch.WindowDataset`` (2-s windows, batch 64,
shuffle) with 0 and 2 workers, against a TensorDataset of the same windows in memory. The store's
files are read once in setup, so the page cache is warm for every variant. A profile with too few
windows for one timed batch after the first reports n/a (skipped), never 0 windows/s."""

from __future__ import annotations

from . import _fixtures as fx

N_BATCHES = 3 if fx.profile_name() == "quick" else 10
BATCH = 64


class DataLoaderThroughput(fx.Suite):
    params = [[p for p in fx.timing_params() if " " in p] + ["in-memory"], [0, 2]]
    param_names = ["store", "workers"]
    version = 1

    def setup(self, built, store, workers):
        if store == "in-memory":
            store = next(p for p in fx.timing_params() if " " in p and fx.Target(p).supported())
        self.target = self._target(store)
        self.path = self.target.build()
        self.window = int(round(fx.WINDOW_SECONDS * self.target.sfreq))
        lengths = self.target.lengths
        self.target.close()
        self.n_batches = min(N_BATCHES, sum(n // self.window for n in lengths) // BATCH - 1)
        if self.n_batches < 1:
            raise NotImplementedError(f"profile {fx.profile_name()} has fewer than {2 * BATCH} windows: "
                                      "DataLoader throughput is n/a")
        fx.warm(self.target.files)  # same page-cache state for 0 and 2 workers: warm

    def track_windows_per_s(self, built, store, workers):
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        from benchmarks.read_speed import throughput
        from eegbench.torch import WindowDataset, collate, worker_init_fn

        torch.set_num_threads(1)
        wds = WindowDataset(self.path, window_samples=self.window)
        if store == "in-memory":
            idx = torch.randperm(len(wds), generator=torch.Generator().manual_seed(0))[: BATCH * (self.n_batches + 1)]
            wds = TensorDataset(torch.stack([wds[int(i)][0] for i in idx]), torch.arange(len(idx)))
        loader = DataLoader(wds, batch_size=BATCH, shuffle=True, num_workers=workers,
                            collate_fn=None if store == "in-memory" else collate,
                            worker_init_fn=worker_init_fn if workers else None,
                            generator=torch.Generator().manual_seed(0))
        return throughput(loader, self.n_batches)

    track_windows_per_s.unit = "windows/s"
    # v2: page cache warmed in setup (v1 favoured whichever ran second); v3: eegbench.torch.collate (each
    # batch assembled once, in the worker, into one tensor in shared memory)
    track_windows_per_s.version = 3
