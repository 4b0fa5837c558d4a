"""A DataLoader batch over a remote store: the recordings it touches are fetched at the same time
(:mod:`eegbench.io.batch`), one coalesced request per recording, counted and overlapped at the server."""

from __future__ import annotations

import pytest

import eegbench
from benchmarks._servers import RangeHTTPServer
from conftest import FORMATS, make_recording
from eegbench.errors import CorruptStoreError
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.model import Dataset

pytest.importorskip("torch")
pytest.importorskip("aiohttp")

SUFFIX = {"hdf5": "h5", "zarr": "zarr", "parquet": "parquet"}
LATENCY = 0.1  # s per request: long enough that requests of one batch visibly overlap at the server


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    ds = Dataset([make_recording(8, 2000, 100.0, seed=s, name=f"r{s}") for s in range(4)])
    paths = {fmt: eegbench.save(ds, root / f"ds.{SUFFIX[fmt]}", fmt, compression="blosc-zstd", chunk_seconds=1.0)
             for fmt in FORMATS}
    return root, paths


@pytest.fixture(scope="module")
def http(stores):
    with RangeHTTPServer(stores[0]) as server:
        yield server


def _batch(wds, indices):
    b = wds.__getitems__(indices)
    return b.x.numpy().copy(), b.y


@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_fetches_recordings_concurrently_one_request_each(stores, http, fmt):
    from eegbench.torch import WindowDataset

    remote = WindowDataset(eegbench.open(f"{http.url}/ds.{SUFFIX[fmt]}"), window_samples=150, stride_samples=50)
    local = WindowDataset(eegbench.open(stores[1][fmt]), window_samples=150, stride_samples=50)
    per_rec = len(remote) // 4
    # 3 neighbouring windows in each of 4 recordings, shuffled across recordings like a DataLoader batch
    indices = [r * per_rec + k for k in (3, 4, 5) for r in (2, 0, 3, 1)]
    remote.dataset[0].get_data(start=0, stop=1)
    http.latency = LATENCY
    try:
        http.traffic.reset()
        x, y = _batch(remote, indices)  # first touch: each recording's chunk index, then its chunks
        first, first_log = http.traffic.requests, list(http.traffic.log)
        CHUNK_CACHE.clear()
        http.traffic.reset()
        x2, _ = _batch(remote, indices)
        requests, in_flight = http.traffic.requests, http.traffic.max_in_flight
    finally:
        http.latency = 0.0
    want, want_y = _batch(local, indices)
    assert x.tobytes() == want.tobytes() and x2.tobytes() == want.tobytes()
    assert y.tolist() == want_y.tolist()
    assert first <= 2 * 4, "\n".join(map(str, first_log))
    # warm: one coalesced request per recording touched, all 4 in flight together
    assert requests == 4, http.traffic.log
    assert in_flight == 4


def test_batch_error_in_one_recording_is_typed(stores, http, tmp_path):
    """A damaged recording fails the batch with the reader's typed error (raised after every
    recording's task finished, none left running)."""
    import shutil

    from eegbench.torch import WindowDataset

    bad = tmp_path / "bad.zarr"
    shutil.copytree(stores[1]["zarr"], bad)
    with RangeHTTPServer(tmp_path) as server:
        wds = WindowDataset(eegbench.open(f"{server.url}/bad.zarr"), window_samples=150, stride_samples=50)
        shard = bad / wds.dataset[1].source._rel(0)
        data = bytearray(shard.read_bytes())
        data[10] ^= 0xFF  # inside the first inner chunk of recording 1
        shard.write_bytes(bytes(data))
        CHUNK_CACHE.clear()
        per_rec = len(wds) // 4
        with pytest.raises(CorruptStoreError, match="crc32c"):
            wds.__getitems__([0, per_rec, 2 * per_rec])


@pytest.mark.parametrize("compression", ["none", "blosc-zstd"])
def test_read_batch_into_rows_of_a_larger_batch(tmp_path, compression):
    """``read_batch(out=, rows=)`` (what a remote batch uses per recording) writes window i into
    ``out[rows[i]]`` bitwise as ``get_data`` reads it, and nothing else; bad rows are refused."""
    import numpy as np

    rec = make_recording(8, 2000, 100.0, seed=7)
    src = eegbench.open(eegbench.save(rec, tmp_path / "s.zarr", "zarr", compression=compression,
                                      chunk_seconds=1.0))[0].source
    starts, rows = np.array([0, 950, 130, 1800]), np.array([5, 0, 3, 1])
    out = np.full((6, 3, 150), 7.0, np.float32)
    channels = np.array([6, 0, 2])
    src.read_batch(starts, 150, channels, out=out, rows=rows)
    for s, r in zip(starts, rows):
        np.testing.assert_array_equal(out[r], src.read(s, s + 150, channels))
    assert (out[[2, 4]] == 7.0).all()
    with pytest.raises(ValueError):
        src.read_batch(starts, 150, channels, out=out, rows=np.array([5, 0, 3, 6]))
