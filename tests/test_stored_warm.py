"""The warm compressed path (``ChunkedSource._read_stored_warm``, issue #9): a window whose chunks
were all checked (CRC32C) in this process is decoded out of the map this source keeps, without a
lease per read. Bitwise what the careful path gives, cache on and off, with picks; taken only
when every chunk is checked and the window's last page is resident; a map closed meanwhile is
leased again; a store replaced by rename is refused as on the careful path."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import eegbench
from conftest import make_recording
from eegbench.errors import EegbenchError
from eegbench.formats import _chunks
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.io import files as _files

FORMATS = ["hdf5", "zarr", "parquet"]


@pytest.fixture(params=[0, 64 << 20], ids=["nocache", "cache"])
def cache(request):
    old = CHUNK_CACHE.max_bytes
    CHUNK_CACHE.max_bytes = request.param
    CHUNK_CACHE.clear()
    yield request.param
    CHUNK_CACHE.max_bytes = old
    CHUNK_CACHE.clear()


def _spy(monkeypatch) -> list[bool]:
    taken: list[bool] = []
    real = _chunks.ChunkedSource._read_stored_warm

    def spy(self, *args):
        done = real(self, *args)
        taken.append(done)
        return done

    monkeypatch.setattr(_chunks.ChunkedSource, "_read_stored_warm", spy)
    return taken


@pytest.mark.parametrize("quantized", [True, False], ids=["counts", "float32"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_warm_compressed_windows_are_bitwise_the_careful_path(tmp_path, fmt, quantized, cache, monkeypatch):
    rec = make_recording(9, 2_000, sfreq=250.0, quantized=quantized)
    path = eegbench.save(rec, tmp_path / fmt, format=fmt, compression="blosc-zstd", chunk_seconds=0.4)
    expect = rec.get_data()
    taken = _spy(monkeypatch)
    opened = eegbench.open(path)[0]
    n, cs = opened.n_times, opened.source.chunk_samples
    spans = [(0, 1), (cs - 3, cs + 3), (5, 5 + 3 * cs), (n - 7, n), (0, n), (2 * cs, 3 * cs)]
    opened.get_data()  # every chunk checked once
    for a, b in spans:
        taken.clear()
        got = opened.get_data(start=a, stop=b)
        np.testing.assert_array_equal(got.view(np.uint32), expect[:, a:b].view(np.uint32), err_msg=f"[{a}, {b})")
        assert taken == [True]
        np.testing.assert_array_equal(opened.get_data(picks=[4, 0, 8], start=a, stop=b), expect[[4, 0, 8], a:b])
        if not cache:  # the careful path for the same window gives the same bits
            monkeypatch.setattr(_chunks.ChunkedSource, "_read_stored_warm", lambda self, *args: False)
            np.testing.assert_array_equal(opened.get_data(start=a, stop=b), got)
            monkeypatch.undo()
            taken = _spy(monkeypatch)


@pytest.mark.parametrize("fmt", FORMATS)
def test_taken_only_when_checked_resident_and_open(tmp_path, fmt, monkeypatch):
    CHUNK_CACHE.clear()
    rec = make_recording(6, 1_500, sfreq=250.0, quantized=True)
    path = eegbench.save(rec, tmp_path / fmt, format=fmt, compression="blosc-lz4", chunk_seconds=0.4)
    expect = rec.get_data()
    taken = _spy(monkeypatch)
    opened = eegbench.open(path)[0]
    src = opened.source
    cs = src.chunk_samples
    opened.get_data(start=0, stop=cs)  # chunk 0 checked, chunk 1 not
    taken.clear()
    np.testing.assert_array_equal(opened.get_data(start=10, stop=cs + 10), expect[:, 10:cs + 10])
    assert taken == [False]  # chunk 1 unchecked: the careful path checks it
    taken.clear()
    np.testing.assert_array_equal(opened.get_data(start=10, stop=cs + 10), expect[:, 10:cs + 10])
    assert taken == [True]
    h = src._h_slease[1]
    _files.FILES.clear()  # the manager closes the map this source kept
    assert h.view is None
    taken.clear()
    np.testing.assert_array_equal(opened.get_data(start=3, stop=cs + 3), expect[:, 3:cs + 3])
    assert taken == [True] and src._h_slease[1] is not h  # leased again
    # a warm streak trusts the map (no mincore per read), as the uncompressed warm path does
    asked: list[int] = []
    monkeypatch.setattr(_chunks, "resident", lambda mm, lo, hi: asked.append(hi) or False)
    h = src._h_slease[1]
    assert h.probe == 0
    taken.clear()
    np.testing.assert_array_equal(opened.get_data(start=3, stop=cs + 3), expect[:, 3:cs + 3])
    assert taken == [True] and asked == []
    # a slow read (pages faulted in one by one, or preempted) turns the check on for the next read
    monkeypatch.setattr(_chunks.ChunkedSource, "_slow", lambda self, ns, nbytes: True)
    opened.get_data(start=5, stop=cs + 5)
    assert h.probe == 1
    monkeypatch.undo()
    monkeypatch.setattr(_chunks, "resident", lambda mm, lo, hi: asked.append(hi) or False)
    taken = _spy(monkeypatch)
    # probing and evicted: the careful path reads the span (and keeps checking for a while)
    np.testing.assert_array_equal(opened.get_data(start=3, stop=cs + 3), expect[:, 3:cs + 3])
    assert taken == [False] and asked and h.probe == _files.PROBE_READS


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_store_replaced_by_rename_is_refused(tmp_path, fmt):
    rec = make_recording(6, 1_500, sfreq=250.0, quantized=True)
    path = eegbench.save(rec, tmp_path / fmt, format=fmt, compression="blosc-zstd", chunk_seconds=0.4)
    other = eegbench.save(make_recording(6, 1_500, sfreq=250.0, quantized=True, seed=9), tmp_path / f"{fmt}-2",
                          format=fmt, compression="blosc-zstd", chunk_seconds=0.4)
    opened = eegbench.open(path)[0]
    opened.get_data()
    opened.get_data(start=0, stop=100)
    _files.FILES.clear()  # maps closed: the next read leases (and checks) the file again
    shutil.rmtree(path)
    os.rename(other, path)
    with pytest.raises(EegbenchError):
        opened.get_data(start=0, stop=100)
