"""WindowDataset: windows, targets, events, and DataLoader workers under fork and spawn."""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import eegbench  # noqa: E402
from conftest import FORMATS, make_recording  # noqa: E402
from eegbench import Annotations, Dataset  # noqa: E402
from eegbench.errors import SelectionError, UnknownColumnError  # noqa: E402
from eegbench.torch import WindowBatch, WindowDataset, collate, worker_init_fn  # noqa: E402


def _dataset() -> Dataset:
    recs = [make_recording(6, 1000 + 137 * i, 100.0, seed=i, name=f"r{i}",
                           annotations=Annotations([1.0, 3.5, 8.0], [0.0] * 3, ["left", "right", "left"]),
                           description={"subject": f"{i:03d}", "age": 20 + i}) for i in range(3)]
    return Dataset(recs)


@pytest.fixture(scope="module", params=FORMATS)
def store(request, tmp_path_factory):
    return eegbench.save(_dataset(), tmp_path_factory.mktemp(request.param) / "s", format=request.param,
                         compression="blosc-zstd", chunk_seconds=0.64)


def test_fixed_windows_match_eager_reads(store):
    ds = eegbench.open(store)
    wds = WindowDataset(ds, window_samples=200, stride_samples=150)
    eager = [r.get_data() for r in _dataset()]
    assert len(wds) == sum((n - 200) // 150 + 1 for n in (1000, 1137, 1274))
    for i in [0, 5, len(wds) - 1]:
        x, y = wds[i]
        row = wds.metadata.iloc[i]
        assert y == i and x.dtype == torch.float32 and tuple(x.shape) == (6, 200)
        np.testing.assert_array_equal(x.numpy(), eager[row.recording][:, row.start:row.stop])
    batch = wds.__getitems__([3, 0, len(wds) - 1, 3])
    for (x, y), i in zip(batch, [3, 0, len(wds) - 1, 3]):
        np.testing.assert_array_equal(x.numpy(), wds[i][0].numpy())
        assert y == i


def test_batch_is_one_tensor_and_collate_passes_it_through(store):
    wds = WindowDataset(eegbench.open(store), 200, stride_samples=150, target="age")
    idx = [3, 0, len(wds) - 1, 3]
    batch = wds.__getitems__(idx)
    assert isinstance(batch, WindowBatch) and tuple(batch.x.shape) == (4, 6, 200)
    x, y = collate(batch)
    assert x is batch.x and y.tolist() == [wds[i][1] for i in idx]
    np.testing.assert_array_equal(x.numpy(), np.stack([wds[i][0].numpy() for i in idx]))
    dx, dy = torch.utils.data.default_collate(batch)  # PyTorch's own collate still works
    np.testing.assert_array_equal(dx.numpy(), x.numpy())
    assert dy.tolist() == y.tolist()


def test_targets_and_events(store):
    ds = eegbench.open(store)
    by_age = WindowDataset(ds, 100, target="age")
    assert by_age[len(by_age) - 1][1] == 22
    ev = WindowDataset(ds, 50, from_events=True, event_offset_samples=-10, target="event")
    assert len(ev) == 9 and ev.metadata["description"].tolist()[:3] == ["left", "right", "left"]
    assert [ev[i][1] for i in range(3)] == [0, 1, 0]
    np.testing.assert_array_equal(ev[1][0].numpy(), _dataset()[0].get_data(start=340, stop=390))
    with pytest.raises(SelectionError, match="outside"):
        WindowDataset(ds, 300, from_events=True)
    assert len(WindowDataset(ds, 300, from_events=True, out_of_range="drop")) == 8
    with pytest.raises(UnknownColumnError):
        WindowDataset(ds, 100, target="nope")
    with pytest.raises(SelectionError, match="longer than the recording"):
        WindowDataset(ds, 5000)
    with pytest.raises(KeyError):
        WindowDataset(ds, 100, picks=["C1", "Zz"])


def test_store_window_index_is_used(tmp_path):
    data = _dataset()
    windows = pd.DataFrame({"recording": [0, 2, 1], "start": [0, 500, 900], "stop": [100, 600, 1000],
                            "target": [1, 0, 1]})
    path = eegbench.save(Dataset(list(data), windows=windows), tmp_path / "s", format="zarr")
    wds = WindowDataset(path, target="target")
    assert len(wds) == 3 and [wds[i][1] for i in range(3)] == [1, 0, 1]
    np.testing.assert_array_equal(wds[1][0].numpy(), data[2].get_data(start=500, stop=600))


def _loader_epoch(wds, workers, ctx, collate_fn=None):
    loader = torch.utils.data.DataLoader(wds, batch_size=8, shuffle=False, num_workers=workers,
                                         multiprocessing_context=ctx if workers else None, collate_fn=collate_fn,
                                         worker_init_fn=worker_init_fn if workers else None)
    xs, ys = zip(*loader)
    return torch.cat(xs).numpy(), torch.cat(ys).numpy()


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_dataloader_workers_identical_to_eager(store, ctx):
    ds = eegbench.open(store)
    wds = WindowDataset(ds, 128, stride_samples=100, picks=["C1", "C2", "Fp0-é"])
    ds[0].get_data()  # the parent opened handles before forking: children must not reuse them
    x0, y0 = _loader_epoch(wds, 0, None)
    x2, y2 = _loader_epoch(wds, 2, ctx, collate)  # batches assembled in the workers, in shared memory
    np.testing.assert_array_equal(x0, x2)
    np.testing.assert_array_equal(y0, y2)
    eager = np.stack([_dataset()[r].get_data(start=s, stop=e, picks=["C1", "C2", "Fp0-é"])
                      for r, s, e in wds.metadata[["recording", "start", "stop"]].itertuples(index=False)])
    np.testing.assert_array_equal(x0, eager)


def test_no_file_descriptor_growth_across_epochs(store):
    wds = WindowDataset(eegbench.open(store), 100)
    _loader_epoch(wds, 0, None)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        _loader_epoch(wds, 0, None)
        _loader_epoch(wds, 2, "fork")
    # DataLoader worker pipes close asynchronously after an epoch (queue feeder threads): wait for them, so the
    # assertion is about descriptors eegbench keeps, which would stay open and grow with every epoch
    deadline = time.monotonic() + 15.0
    while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= before
