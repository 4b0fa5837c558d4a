"""The benchmark harness's own helpers must measure what they claim: eviction really evicts,
memory tracking grows with the operation, and every target reads the same samples."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks import _fixtures as fx


def _file(tmp_path, nbytes=8 << 20):
    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8).tobytes())
    return path


def test_evict_drops_pages_from_the_page_cache(tmp_path):
    path = _file(tmp_path)
    with open(path, "rb") as fh:
        fh.read()  # now resident
    assert fx.resident_bytes(path) >= 0.9 * path.stat().st_size
    fx.evict(path)
    assert fx.resident_bytes(path) <= 0.05 * path.stat().st_size
    before = fx.disk_read_bytes()
    with open(path, "rb") as fh:
        fh.read()
    if fx.disk_read_bytes() == before:
        pytest.skip("this kernel does not account block-device reads in /proc/self/io")
    assert fx.disk_read_bytes() - before >= 0.9 * path.stat().st_size


def test_peak_memory_grows_with_the_operation():
    small = fx.peak_memory("alloc", 10 << 20)
    big = fx.peak_memory("alloc", 200 << 20)
    assert big > small + (150 << 20)
    assert small < (60 << 20)


def test_every_target_reads_the_same_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(fx, "CACHE", tmp_path)
    monkeypatch.setenv("EEGBENCH_PROFILE", "smoke")
    targets = [fx.Target(p) for p in ("zarr blosc-zstd 1s", "hdf5 none 1s", "parquet zstd 1s", "memmap-npy",
                                       "mne-fif")]
    lengths = targets[0].lengths
    window = int(fx.WINDOW_SECONDS * targets[0].sfreq)
    for r, s in fx.random_windows(lengths, window, 5):
        ref = targets[0].read(r, s, window)
        for target in targets[1:]:
            np.testing.assert_array_equal(np.asarray(target.read(r, s, window), np.float32), ref)
    for target in targets:
        assert target.lengths == lengths
        target.release()
        fx.evict(target.files)
        assert fx.resident_bytes(target.files) <= 4096 * len(target.files)
        target.close()
    assert not fx.Target("mne-edf").supported()  # the EDF baseline exists only for the real profile
    assert os.environ["EEGBENCH_PROFILE"] == "smoke"


def test_steady_throughput_times_whole_epochs_of_any_batch_shape():
    """read_speed's DataLoader figure: fixed random batches, one untimed epoch, the median of the
    timed ones; batches whose windows come first in a longer tuple (braindecode's (x, y, inds))
    count their windows; NaN (never 0 windows/s) without a full batch."""
    import math

    import torch
    from torch.utils.data import Dataset

    from benchmarks.read_speed import steady_throughput

    class Triples(Dataset):
        def __len__(self) -> int:
            return 200

        def __getitem__(self, i: int):
            return torch.full((2, 3), float(i)), i, (i, i + 1)

    rate = steady_throughput(Triples(), 0, 3, batch=64, epochs=2)
    assert math.isfinite(rate) and rate > 0
    assert math.isnan(steady_throughput(Triples(), 0, 3, batch=256))
