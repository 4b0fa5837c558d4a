"""The DataLoader as the benchmarks measure it (#9): persistent workers over several epochs of fixed
batches, a warm epoch in which every worker reads every batch. Every batch, in every epoch, with 0 and
2 workers, is bit for bit the windows read directly -- float32 and int16 storage, compressed or not,
windows read straight into their batch slots or streamed there from a window buffer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eegbench  # noqa: E402
from benchmarks.loader_breakdown import EpochBatches  # noqa: E402
from conftest import make_recording  # noqa: E402
from eegbench import Dataset  # noqa: E402
from eegbench.torch import WindowDataset, collate, worker_init_fn  # noqa: E402

# (format, compression, integer storage): float32 and int16 samples, the mapped and the decoded path
STORES = [("hdf5", "none", False), ("zarr", "blosc-lz4", True), ("parquet", "zstd", False), ("parquet", "none", True)]


@pytest.fixture(scope="module", params=STORES, ids=["-".join(map(str, p)) for p in STORES])
def wds(request, tmp_path_factory):
    fmt, codec, integer = request.param
    data = Dataset([make_recording(5, 2_000 + 311 * i, 100.0, seed=i, name=f"r{i}") for i in range(3)])
    path = eegbench.save(data, tmp_path_factory.mktemp(fmt) / "s", format=fmt, compression=codec,
                         chunk_seconds=0.5, integer=integer)
    assert eegbench.open(path)[0].source.dtype == (np.int16 if integer else np.float32)
    return WindowDataset(path, 120, stride_samples=70)


def _direct(wds: WindowDataset, idx: list[int]) -> np.ndarray:
    """The windows as ``Recording.get_data`` returns them (float32 volts), one by one."""
    out = [wds.dataset[int(wds._rec[i])].get_data(start=int(wds._start[i]), stop=int(wds._start[i]) + 120)
           for i in idx]
    assert all(w.dtype == np.float32 for w in out)
    return np.stack(out)


def test_epoch_batches_warm_then_shuffled():
    batches = [[1, 2], [3, 4], [5, 6]]
    sampler = EpochBatches(batches, copies=2, seed=1)
    assert list(sampler) == [[1, 2], [1, 2], [3, 4], [3, 4], [5, 6], [5, 6]] and len(sampler) == 6
    sampler.warm = False
    first, second = list(sampler), list(sampler)
    assert sorted(first) == batches and sorted(second) == batches and len(sampler) == 3


@pytest.mark.parametrize("stream", [False, True], ids=["direct", "streamed"])
@pytest.mark.parametrize("workers", [0, 2])
def test_every_batch_of_every_epoch_equals_direct_reads(wds, workers, stream, monkeypatch):
    """``streamed``: every batch counts as larger than the caches, so each warm uncompressed window
    is copied into its slot with non-temporal stores (``eegbench.formats._chunks.STREAM_MIN_BYTES``;
    forked workers inherit the setting); ``direct``: ordinary stores."""
    from eegbench.formats import _chunks

    monkeypatch.setattr(_chunks, "STREAM_MIN_BYTES", 0 if stream else 1 << 62)
    rng = np.random.default_rng(workers)
    batches = [rng.integers(0, len(wds), 16).tolist() for _ in range(5)]
    expected = {tuple(b): _direct(wds, b) for b in batches}
    sampler = EpochBatches(batches, copies=workers)
    loader = torch.utils.data.DataLoader(wds, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                                         worker_init_fn=worker_init_fn if workers else None,
                                         persistent_workers=workers > 0,
                                         multiprocessing_context="fork" if workers else None)
    seen = []
    for epoch in range(3):
        for x, y in loader:
            key = tuple(y.tolist())  # no target: y is the window index
            assert x.dtype == torch.float32 and x.is_contiguous()
            assert x.numpy().tobytes() == expected[key].tobytes()  # bit for bit
            seen.append((epoch, key))
        sampler.warm = False
    copies = max(workers, 1)
    assert [k for e, k in seen if e == 0] == [tuple(b) for b in batches for _ in range(copies)]
    for epoch in (1, 2):
        assert sorted(k for e, k in seen if e == epoch) == sorted(tuple(b) for b in batches)


@pytest.mark.parametrize("streaming", [False, True])
def test_benchmark_copy_kernels_are_exact(streaming, monkeypatch):
    """The copy kernels loader_breakdown compares (benchmarks/_rowcopy.py): bytes unchanged, nothing
    outside the destination block written, for any row strides, offsets and 1/2/4-byte samples."""
    pytest.importorskip("numba")
    import benchmarks._rowcopy as rc

    monkeypatch.setattr(rc, "MIN_BYTES", 0)  # every block through the compiled kernel
    rng = np.random.default_rng(int(streaming))
    for trial in range(60):
        dtype = (np.float32, np.int16, np.uint8)[trial % 3]
        rows, n = int(rng.integers(1, 20)), int(rng.integers(1, 5000))
        src = (rng.standard_normal((rows + 2, n + 40)) * 1000).astype(dtype)[1:rows + 1, 3:3 + n]
        big = rng.integers(0, 100, (rows + 4, n + 70)).astype(dtype)
        before = big.copy()
        a, b = int(rng.integers(0, 4)), int(rng.integers(0, 70))
        dst = big[a:a + rows, b:b + n]
        rc.copy2d(dst, src, streaming=streaming)
        assert dst.tobytes() == src.tobytes()
        outside = np.ones(big.shape, bool)
        outside[a:a + rows, b:b + n] = False
        assert big[outside].tobytes() == before[outside].tobytes()
    assert rc._load() is not False  # the compiled kernels ran
