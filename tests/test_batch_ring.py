"""DataLoader workers reuse shared-memory batch buffers (#9), and never one the consumer still holds:
batches (and views of them) kept by the main process keep their exact data while the workers go on."""

from __future__ import annotations

import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eegbench  # noqa: E402
from conftest import make_recording  # noqa: E402
from eegbench.torch import WindowDataset, collate, ring_stats  # noqa: E402


@pytest.fixture(scope="module")
def wds(tmp_path_factory):
    rec = make_recording(6, 6_000, 100.0, seed=3)
    path = eegbench.save(rec, tmp_path_factory.mktemp("ring") / "s", format="zarr", compression="blosc-zstd",
                         chunk_seconds=1.0)
    return WindowDataset(eegbench.open(path), 50, stride_samples=20)


def _with_stats(batch):
    return collate(batch), ring_stats()


def _loader(wds, workers=1, collate_fn=_with_stats):
    return torch.utils.data.DataLoader(wds, batch_size=8, shuffle=False, num_workers=workers,
                                       multiprocessing_context="fork", collate_fn=collate_fn, prefetch_factor=2)


def _expected(wds) -> np.ndarray:
    return wds.__getitems__(list(range(len(wds)))).x.numpy()


def test_held_batches_are_never_overwritten(wds):
    expected = _expected(wds)
    held, stats = [], []
    for (x, y), st in _loader(wds):
        held.append((x, y))
        stats.append(st)
    assert len(held) > 8  # more batches than ring slots, all still held
    for x, y in held:
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
    assert stats[-1]["reused"] == 0  # nothing released: every batch had a buffer of its own


def test_released_buffers_are_reused_and_held_views_stay_intact(wds):
    expected = _expected(wds)
    views, stats, n = [], {}, 0
    for (x, y), st in _loader(wds):
        stats = st
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
        if n in (1, 4):  # keep only a view of these batches: their storage stays in use
            views.append((x[2:5], y[2:5].clone()))
        del x, y
        gc.collect()
        n += 1
    assert stats["reused"] > 0, stats  # the ring did its job ...
    assert stats["allocated"] < n  # ... fewer fresh shared tensors than batches
    for v, y in views:  # ... and never wrote over a buffer whose view the consumer kept
        np.testing.assert_array_equal(v.numpy(), expected[y.numpy()])


def test_default_collate_and_two_workers_stay_exact(wds):
    expected = _expected(wds)
    xs, ys = [], []
    for x, y in _loader(wds, workers=2, collate_fn=None):  # default collate: copies, slots stay busy
        xs.append(x)
        ys.append(y)
    np.testing.assert_array_equal(torch.cat(xs).numpy(), expected[torch.cat(ys).numpy()])
    got = [(x.clone(), y) for x, y in _loader(wds, workers=2, collate_fn=collate)]
    np.testing.assert_array_equal(torch.cat([x for x, _ in got]).numpy(), expected)


def test_workers0_batches_reuse_only_released_buffers(wds):
    """workers=0: the reading process reuses a batch buffer once nothing of it is held any more
    (tensor, view or NumPy array), and a batch it still holds is never written over."""
    import eegbench.torch as et

    expected = _expected(wds)
    before = ring_stats()
    kept, arrays, n = [], [], 0
    loader = torch.utils.data.DataLoader(wds, batch_size=8, shuffle=False, num_workers=0, collate_fn=collate)
    for x, y in loader:
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
        if n == 1:
            kept.append((x, y))  # the whole batch
        elif n == 3:
            kept.append((x[1:3], y[1:3].clone()))  # a view
        elif n == 5:
            arrays.append((x.numpy(), y.clone()))  # a NumPy array of it
        del x, y
        n += 1
    after = ring_stats()
    assert after["reused"] - before["reused"] > n // 2, (before, after)  # released buffers were reused ...
    for x, y in kept:  # ... and none that is still held was written over
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
    for a, y in arrays:
        np.testing.assert_array_equal(a, expected[y.numpy()])
    assert et.RING_SLOTS > 0


def test_worker_batches_name_their_slot_after_the_first_send(wds):
    """A ring slot's shared memory is handed over once; later batches in it only name it, arrive
    bitwise exact, and their targets arrive as tensors; the mappings go with the loader's workers."""
    import eegbench.torch as et

    expected = _expected(wds)
    before = et.transfer_stats()
    n = 0
    for x, y in _loader(wds, workers=2, collate_fn=collate):
        assert isinstance(y, torch.Tensor)
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
        n += 1
        del x, y
    after = et.transfer_stats()
    mapped, named = after["mapped"] - before["mapped"], after["named"] - before["named"]
    assert n > 2 * et.RING_SLOTS
    assert mapped <= 2 * et.RING_SLOTS and mapped + named == n, (before, after, n)
    assert named >= n - 2 * et.RING_SLOTS
    for x, y in _loader(wds, workers=1, collate_fn=collate):
        assert et.transfer_stats()["slots"] <= 2 * et.RING_SLOTS  # this worker's (2 batch shapes), not the ended ones'
        np.testing.assert_array_equal(x.numpy(), expected[y.numpy()])
    kept = x
    del x, y
    gc.collect()
    assert et.transfer_stats()["slots"] == 0  # the loader let go of its workers: their slots are unmapped here
    np.testing.assert_array_equal(kept.numpy(), expected[-len(kept):])  # a batch still held stays intact
