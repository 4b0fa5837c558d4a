"""The compiled warm copy (``copy_window`` of ``eegbench/_ckernels.c``, issue #9: small windows).

Plain float32 warm windows are copied out of the leased map by one compiled call instead of a
NumPy copy per chunk. It must give the bytes the dataset holds for every window, never copy a
chunk this process has not checked (its CRC32C first), keep the size check (a file truncated while
open is a CorruptStoreError, not SIGBUS) and leave other outputs to the NumPy path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import eegbench
from conftest import compiled_kernel, spy_kernel
from eegbench.errors import CorruptStoreError
from eegbench.formats import _chunks
from eegbench.sources.synthetic import make_dataset

pytest.importorskip("eegbench._ckernels", reason="the C warm copy was not built (no C compiler at install)")

FORMATS = ["hdf5", "zarr", "parquet"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[eegbench.Dataset, dict[str, Path]]:
    root = tmp_path_factory.mktemp("warmkernel")
    ds = make_dataset(n_recordings=1, n_channels=7, sfreq=100, duration_s=[7.33], seed=5)
    return ds, {fmt: Path(eegbench.save(ds, root / fmt, format=fmt, compression="none", chunk_seconds=0.4))
                for fmt in FORMATS}


def _loaded(monkeypatch):
    """The compiled copy, looked up now whatever this process did before."""
    return compiled_kernel(monkeypatch, "_WARM_COPY", "EEGBENCH_WARM_KERNEL", _chunks._warm_copy)


def _spy(monkeypatch) -> list[bool]:
    kernel = _loaded(monkeypatch)
    assert kernel, "the C extension is built: the compiled copy must be used by default"
    return spy_kernel(monkeypatch, "_WARM_COPY", kernel)


def _warm(rec) -> None:
    for _ in range(3):  # chunks checked, then the compiled copy's first (slow) call, which arms a check
        rec.get_data()
    for e in rec.source._h_raw:  # a slow (preempted) read arms a residency check: not here
        e[0].probe = 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_compiled_copy_is_bitwise_and_used(saved, fmt, monkeypatch):
    ds, stores = saved
    calls = _spy(monkeypatch)
    rec = eegbench.open(stores[fmt])[0]
    expect = ds[0].get_data()
    _warm(rec)
    cs = rec.source.chunk_samples
    n = rec.n_times
    rng = np.random.default_rng(0)
    spans = [(0, 1), (cs - 1, cs + 1), (0, n), (n - 1, n), (3, 3 + 5 * cs), (cs, 2 * cs), (n - cs - 3, n)]
    spans += [(int(a), int(a) + int(w)) for a, w in zip(rng.integers(0, n - 200, 40), rng.integers(1, 200, 40))]
    for a, b in spans:
        calls.clear()
        got = rec.get_data(start=a, stop=b)
        np.testing.assert_array_equal(got.view(np.uint32), expect[:, a:b].view(np.uint32), err_msg=f"[{a}, {b})")
        assert calls == [True], (a, b)
    # out= with rows apart (a batch slot, or every other row of a bigger array): still one call, exact
    big = np.full((14, 300), np.nan, dtype=np.float32)
    calls.clear()
    rec.source.read(17, 317, None, out=big[::2, :])
    np.testing.assert_array_equal(big[::2], expect[:, 17:317])
    assert np.isnan(big[1::2]).all() and calls == [True]
    # samples not adjacent in out: the NumPy path (no compiled call), the same bytes
    strided = np.full((7, 600), np.nan, dtype=np.float32)
    calls.clear()
    rec.source.read(5, 305, None, out=strided[:, ::2])
    np.testing.assert_array_equal(strided[:, ::2], expect[:, 5:305])
    assert calls == []
    frozen = np.empty((7, 10), dtype=np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):  # a read-only out is refused as before, not written through
        rec.source.read(0, 10, None, out=frozen)
    np.testing.assert_array_equal(rec.get_windows([0, 4, 2 * cs + 1], 3 * cs),
                                  np.stack([expect[:, s:s + 3 * cs] for s in (0, 4, 2 * cs + 1)]))


def test_kernel_refuses_unchecked_chunks_and_writes_nothing():
    from eegbench._ckernels import copy_window

    view = np.arange(4 * 2 * 3 * 4, dtype=np.uint8)  # 4 chunks of 2 channels x 3 float32 samples
    out = np.zeros((2, 7), dtype=np.float32)
    offsets = np.array([0, 24, -1, 72], dtype=np.int64)
    assert not copy_window(out, view, offsets, 1, 8, 3, 4)  # chunk 2 not checked
    assert not out.any()
    assert copy_window(out[:, :5], view, offsets, 1, 6, 3, 4)  # out is exactly the window
    want = view.view(np.float32).reshape(4, 2, 3)
    np.testing.assert_array_equal(out[:, :5].view(np.uint32),
                                  np.concatenate([want[0][:, 1:], want[1]], axis=1).view(np.uint32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_chunk_damaged_between_two_checked_ones_is_reported(saved, fmt, tmp_path, monkeypatch):
    """Chunks 0 and 2 checked, chunk 1 not: a window over 0..2 must check chunk 1 (CRC32C) rather
    than copy it, so damage there is a CorruptStoreError, never returned as data."""
    import shutil

    _, stores = saved
    store = Path(shutil.copytree(stores[fmt], tmp_path / fmt))
    calls = _spy(monkeypatch)
    rec = eegbench.open(store)[0]
    cs = rec.source.chunk_samples
    rec.get_data(start=0, stop=cs)
    rec.get_data(start=2 * cs, stop=3 * cs)
    h, off1 = rec.source._h_raw[0][0], None
    assert rec.source._h_raw[1] is None and rec.source._h_off[1] == -1
    rel, off1, _stop, _crc = rec.source._raw_chunk_at(1)
    path = store / rel
    with open(path, "r+b") as fh:  # flip one sample's byte in place, under the open map
        fh.seek(off1 + 8)
        b = fh.read(1)
        fh.seek(off1 + 8)
        fh.write(bytes([b[0] ^ 0xFF]))
    h.probe = 0
    calls.clear()
    with pytest.raises(CorruptStoreError):
        rec.get_data(start=cs // 2, stop=2 * cs + cs // 2)
    assert calls == [False]  # the compiled copy refused, the careful path checked and raised


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_while_open_is_corrupt_not_sigbus(saved, fmt, tmp_path, monkeypatch):
    import shutil

    _, stores = saved
    store = Path(shutil.copytree(stores[fmt], tmp_path / fmt))
    _spy(monkeypatch)
    rec = eegbench.open(store)[0]
    _warm(rec)
    rel = rec.source._raw_chunk_at(0)[0]
    os.truncate(store / rel, 100)
    with pytest.raises(CorruptStoreError):
        rec.get_data(start=rec.n_times - 50, stop=rec.n_times)


def test_kernel_checks_its_arguments_and_never_reads_out_of_bounds():
    """The caller checks everything, but the kernel does not trust it: a chunk past the end of the
    view, a window past the offsets table, an out of the wrong shape or dtype, or offsets that are
    not int64 raise ValueError and write nothing."""
    from eegbench._ckernels import copy_window

    view = np.arange(4 * 2 * 3 * 4, dtype=np.uint8)  # 4 chunks of 2 channels x 3 float32 samples
    offsets = np.array([0, 24, 48, 72], dtype=np.int64)
    out = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="outside"):
        copy_window(out, view, np.array([0, 24, 48, 73], dtype=np.int64), 7, 12, 3, 4)  # 1 byte past the end
    with pytest.raises(ValueError, match="outside"):
        copy_window(out, view[:-1], offsets, 7, 12, 3, 4)
    with pytest.raises(ValueError, match="past the last chunk"):
        copy_window(out, view, offsets[:3], 7, 12, 3, 4)
    with pytest.raises(ValueError, match="2-D"):
        copy_window(np.zeros((2, 6), np.float32), view, offsets, 1, 6, 3, 4)  # 6 wide for 5 samples
    with pytest.raises(ValueError, match="2-D"):
        copy_window(np.zeros((2, 10), np.float32)[:, ::2], view, offsets, 1, 6, 3, 4)  # rows not contiguous
    with pytest.raises(ValueError, match="int64"):
        copy_window(out, view, offsets.astype(np.int32), 1, 6, 3, 4)
    with pytest.raises(ValueError, match="start < stop"):
        copy_window(out, view, offsets, 6, 6, 3, 4)
    frozen = np.zeros((2, 5), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):  # refused, not written through
        copy_window(frozen, view, offsets, 1, 6, 3, 4)
    assert not frozen.any()
    assert not out.any()
    assert copy_window(out, view, offsets, 7, 12, 3, 4)  # chunks 2 and 3, to the last byte of the view
    want = view.view(np.float32).reshape(4, 2, 3)
    np.testing.assert_array_equal(out, np.concatenate([want[2][:, 1:], want[3]], axis=1))


def test_used_by_default_and_switched_off_by_the_environment(monkeypatch):
    """Built with the package and free to import, the compiled copy is used from a process's first
    warm read; ``EEGBENCH_WARM_KERNEL=0`` keeps the NumPy copies."""
    monkeypatch.delenv("EEGBENCH_WARM_KERNEL", raising=False)
    monkeypatch.setattr(_chunks, "_WARM_COPY", None)
    from eegbench._ckernels import copy_window

    assert _chunks._warm_copy() is copy_window
    monkeypatch.setattr(_chunks, "_WARM_COPY", None)
    monkeypatch.setenv("EEGBENCH_WARM_KERNEL", "0")
    assert _chunks._warm_copy() is False


@pytest.mark.parametrize("kernel", [True, False], ids=["compiled", "numpy"])
def test_probing_reads_stay_on_the_warm_path_while_resident(saved, kernel, monkeypatch):
    """A map whose residency is being checked (reads after a miss: e.g. a warm-up pass over evicted
    files) checks the window's last page and copies on the warm path when it is resident (one check
    counted per read); a missing page sends the read to the careful path, which reads it."""
    monkeypatch.setattr(_chunks, "_WARM_COPY", _loaded(monkeypatch) if kernel else False)
    ds, stores = saved
    rec = eegbench.open(stores["zarr"])[0]
    expect = ds[0].get_data()
    _warm(rec)
    h = rec.source._h_raw[0][0]
    taken = []
    real_warm, real_mapped = _chunks.ChunkedSource._read_warm, _chunks.ChunkedSource._read_mapped
    monkeypatch.setattr(_chunks.ChunkedSource, "_read_warm", lambda self, *a: taken.append("warm") or real_warm(self, *a))
    monkeypatch.setattr(_chunks.ChunkedSource, "_read_mapped",
                        lambda self, *a: taken.append("mapped") or real_mapped(self, *a))
    h.probe = 3
    for a in (10, 50, 90):
        np.testing.assert_array_equal(rec.get_data(start=a, stop=a + 100), expect[:, a:a + 100])
    assert taken == ["warm"] * 3 and h.probe == 0
    asked = []
    monkeypatch.setattr(_chunks, "resident", lambda mm, lo, hi: asked.append((lo, hi)) or False)
    monkeypatch.setattr(_chunks, "readahead", lambda mm, lo, hi: asked.append("readahead") or True)
    h.probe = 2
    taken.clear()
    np.testing.assert_array_equal(rec.get_data(start=7, stop=107), expect[:, 7:107])
    assert taken == ["warm", "mapped"] and "readahead" in asked  # missing: read by the careful path
    assert h.probe == _chunks._files.PROBE_READS  # and the checks go on


def test_streamed_copy_is_exact_and_stays_inside_its_slot():
    """``copy_window(stream=True)`` (non-temporal stores, for windows written into a batch larger
    than the caches): the bytes of the plain copy for every alignment of the destination row and
    of the source, every piece length (heads and tails shorter than a line), 1/2/4-byte samples,
    and not one byte written outside the window's slot."""
    from eegbench._ckernels import copy_window

    rng = np.random.default_rng(11)
    for trial in range(300):
        itemsize = (4, 2, 1)[trial % 3]
        dtype = {4: np.float32, 2: np.int16, 1: np.uint8}[itemsize]
        rows, cs = int(rng.integers(1, 9)), int(rng.integers(1, 300))
        n_chunks = int(rng.integers(1, 6))
        lead = int(rng.integers(0, 64))  # the chunks start at any byte of the view
        view = rng.integers(0, 255, lead + n_chunks * rows * cs * itemsize, dtype=np.uint8)
        offsets = lead + np.arange(n_chunks, dtype=np.int64) * rows * cs * itemsize
        start = int(rng.integers(0, n_chunks * cs))
        stop = int(rng.integers(start + 1, n_chunks * cs + 1))
        width = stop - start
        pad = int(rng.integers(0, 40))  # the slot's rows start anywhere in a wider buffer
        big = rng.integers(0, 100, (rows + 2, width + pad + 30)).astype(dtype)
        before = big.copy()
        slot = big[1:rows + 1, pad:pad + width]
        plain = np.empty((rows, width), dtype)
        assert copy_window(plain, view, offsets, start, stop, cs, itemsize)
        assert copy_window(slot, view, offsets, start, stop, cs, itemsize, True)
        assert slot.tobytes() == plain.tobytes(), trial
        chunks = view[lead:].view(dtype).reshape(n_chunks, rows, cs)
        assert plain.tobytes() == np.concatenate(list(chunks), axis=1)[:, start:stop].tobytes()
        outside = np.ones(big.shape, bool)
        outside[1:rows + 1, pad:pad + width] = False
        assert big[outside].tobytes() == before[outside].tobytes(), trial


@pytest.mark.parametrize("fmt", FORMATS)
def test_slots_of_arrays_past_the_stream_threshold_are_streamed_and_exact(saved, fmt, monkeypatch):
    """A window read into a view of an array of at least ``STREAM_MIN_BYTES`` (a DataLoader batch
    slot) asks for streamed copies; a fresh output, or a view of a smaller array, for plain ones.
    Both give the dataset's bytes; rows of the batch not read are untouched."""
    ds, stores = saved
    kernel = _loaded(monkeypatch)
    streamed: list[bool] = []

    def spy(*args):
        streamed.append(len(args) > 7 and bool(args[7]))
        return kernel(*args)

    monkeypatch.setattr(_chunks, "_WARM_COPY", spy)
    rec = eegbench.open(stores[fmt])[0]
    expect = ds[0].get_data()
    _warm(rec)
    batch = np.full((7, 7, 120), np.nan, dtype=np.float32)
    starts, rows = [0, 33, 250, 400, 1], [6, 0, 3, 2, 5]
    for threshold, want in ((batch.nbytes + 1, False), (batch.nbytes, True)):
        monkeypatch.setattr(_chunks, "STREAM_MIN_BYTES", threshold)
        streamed.clear()
        for s, r in zip(starts, rows):
            rec.source.read(s, s + 120, None, out=batch[r])
        assert streamed == [want] * len(starts)
        for s, r in zip(starts, rows):
            np.testing.assert_array_equal(batch[r].view(np.uint32), expect[:, s:s + 120].view(np.uint32))
        assert np.isnan(batch[[1, 4]]).all()
        streamed.clear()
        rec.source.read(7, 127, None)  # a fresh output: never streamed
        assert streamed == [False]
