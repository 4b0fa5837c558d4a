"""Chunk sizes are bounded: a default chunk never exceeds MAX_DEFAULT_CHUNK_BYTES, a chunk larger
than the decoded-chunk cache is warned about with the numbers, and such a chunk is still decoded
once for several windows inside it."""

from __future__ import annotations

import numpy as np
import pytest

import eegbench
from conftest import make_recording
from eegbench.errors import ChunkSizeWarning
from eegbench.formats import _chunks
from eegbench.store import MAX_DEFAULT_CHUNK_BYTES


def test_default_chunk_is_bounded_in_bytes(tmp_path):
    rec = make_recording(64, 40_000, sfreq=20_000.0)  # 1 s of all channels = 5.1 MB of float32
    ds = eegbench.open(eegbench.save(rec, tmp_path / "s.h5", format="hdf5", compression="none"))
    cs = ds[0].source.chunk_samples
    assert cs * 64 * 4 <= MAX_DEFAULT_CHUNK_BYTES and cs == MAX_DEFAULT_CHUNK_BYTES // (64 * 4)
    np.testing.assert_array_equal(ds[0].get_data(start=100, stop=30_000), rec.get_data(start=100, stop=30_000))


def test_chunk_larger_than_the_cache_warns_and_is_decoded_once(tmp_path, monkeypatch):
    monkeypatch.setattr(_chunks.CHUNK_CACHE, "max_bytes", 64 << 10)
    _chunks.CHUNK_CACHE.clear()
    rec = make_recording(16, 20_000, sfreq=1000.0)  # 10-s chunk = 16 x 10000 x 4 B = 640 kB
    with pytest.warns(ChunkSizeWarning, match=r"16 channels x 10000 samples .*0\.64 MB.* cache \(0\.0655 MB.*chunk_seconds <= 1\.02"):
        path = eegbench.save(rec, tmp_path / "s.zarr", format="zarr", compression="blosc-lz4",
                             chunk_seconds=10.0, integer=False)
    src = eegbench.open(path)[0].source
    loaded = []
    one = type(src)._load_chunks

    def counting(self, indices):
        loaded.extend(indices)
        return one(self, indices)

    monkeypatch.setattr(type(src), "_load_chunks", counting)
    decode = type(src)._decode_stored_bytes

    def counting_decoded(self, index, data):  # decoded straight out of the map
        loaded.append(index)
        return decode(self, index, data)

    monkeypatch.setattr(type(src), "_decode_stored_bytes", counting_decoded)
    for start in (100, 2_000, 5_000, 9_000):  # four 1-s windows inside chunk 0
        np.testing.assert_array_equal(src.read(start, start + 1000, None), rec.get_data(start=start, stop=start + 1000))
    assert loaded == [0]
