"""The compiled Blosc window decoder (``decode_blosc`` of ``eegbench/_ckernels.c``, issue #9:
compressed warm windows in one call).

Blosc-compressed chunks (blosc-lz4 / blosc-zstd in every format) whose CRC32C this process checked
are decompressed by c-blosc (the copy inside numcodecs) into a per-thread buffer and calibrated
into the window in one call. It must give the bits of the numcodecs path for counts (3-operation
and 1-multiply calibrations) and float32 storage, with channel picks; never read a chunk not
checked yet; fall back to the numcodecs path for everything it was not built for; and refuse
arguments that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

import eegbench
from conftest import compiled_kernel, make_recording, spy_kernel
from eegbench.formats import _chunks
from eegbench.model import ArraySource, Recording
from eegbench.quantization import Quantization

ck = pytest.importorskip("eegbench._ckernels", reason="the C kernels were not built (no C compiler at install)")
pytestmark = pytest.mark.usefixtures("no_chunk_cache")

FORMATS = ["hdf5", "zarr", "parquet"]


def _power_of_two_recording(n_channels: int, n_times: int) -> Recording:
    """Counts x 0.5 uV x 1e-6 (the usual map: the kernel's one-multiply rows)."""
    rng = np.random.default_rng(9)
    counts = np.clip(np.cumsum(rng.integers(-60, 61, (n_channels, n_times)), axis=1), -32768, 32767).astype(np.int16)
    q = Quantization(np.full(n_channels, 0.5), np.zeros(n_channels), np.full(n_channels, 1e-6))
    return Recording(ArraySource(q.reconstruct(counts), quantization=q), 250.0, [f"C{i}" for i in range(n_channels)])


def _bound(monkeypatch) -> list[bool]:
    """The kernel, looked up now, with a spy recording each call's answer."""
    kernel = compiled_kernel(monkeypatch, "_BLOSC_WINDOW", "EEGBENCH_BLOSC_KERNEL", _chunks._blosc_window)
    assert kernel, "the C extension is built: the Blosc decoder must bind to numcodecs' c-blosc"
    return spy_kernel(monkeypatch, "_BLOSC_WINDOW", kernel)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("data", ["counts-3op", "counts-1mul", "float32"])
@pytest.mark.parametrize("compression", ["blosc-lz4", "blosc-zstd"])
def test_windows_are_the_numcodecs_paths_bits(tmp_path, fmt, data, compression, monkeypatch):
    rec = {"counts-3op": lambda: make_recording(11, 3_001, sfreq=250.0),
           "counts-1mul": lambda: _power_of_two_recording(11, 3_001),
           "float32": lambda: make_recording(11, 3_001, sfreq=250.0, quantized=False)}[data]()
    path = eegbench.save(rec, tmp_path / fmt, format=fmt, compression=compression, chunk_seconds=0.4)
    monkeypatch.setattr(_chunks, "_BLOSC_WINDOW", False)  # the numcodecs path, for the expected bits
    plain = eegbench.open(path)[0]
    rng = np.random.default_rng(4)
    n = plain.n_times
    spans = [(0, 1), (0, n), (99, 101), (n - 1, n), (n - 250, n), (400, 800)]
    spans += [(int(a), int(a) + int(w)) for a, w in zip(rng.integers(0, n - 600, 30), rng.integers(1, 600, 30))]
    picks = [None, np.array([3, 0, 10, 3]), np.array([5])]
    expected = {(a, b, k): plain.source.read(a, b, p) for a, b in spans for k, p in enumerate(picks)}
    calls = _bound(monkeypatch)
    fast = eegbench.open(path)[0]
    fast.source.read(0, n, None)  # first read: every chunk's CRC32C checked (the careful path)
    assert fast.source.__dict__.get("_h_bspan") is not None
    spanned = fast.source._h_bspan[:, 0] >= 0  # HDF5 stores a chunk Blosc cannot shrink without the filter
    assert spanned.sum() >= len(spanned) // 2
    cs = fast.source.chunk_samples
    for (a, b, k), want in expected.items():
        calls.clear()
        got = fast.source.read(a, b, picks[k])
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f"[{a}, {b}) picks {k}")
        assert calls == [bool(spanned[a // cs:(b - 1) // cs + 1].all())], (a, b, k)


def test_chunks_not_checked_yet_are_never_decoded_by_it(tmp_path, monkeypatch):
    """A window with a chunk this process has not checked goes the careful way (CRC32C first)."""
    path = eegbench.save(_power_of_two_recording(4, 2_000), tmp_path / "z", format="zarr",
                         compression="blosc-lz4", chunk_seconds=0.4)
    calls = _bound(monkeypatch)
    src = eegbench.open(path)[0].source
    src.read(0, 300, None)  # chunks 0..2 checked
    spans = src._h_bspan
    assert (spans[:3] >= 0).all() and (spans[3:] == -1).all()
    calls.clear()
    src.read(50, 250, None)
    assert calls == [True]
    calls.clear()
    src.read(250, 700, None)  # reaches chunks 3..6: the careful path checks them, numcodecs decodes
    assert calls == [] and (src._h_bspan[3:7] >= 0).all()
    src.read(260, 690, None)
    assert calls == [True]


def test_hdf5_chunks_whose_filter_was_skipped_are_left_to_numcodecs(tmp_path, monkeypatch):
    """A chunk stored without the Blosc filter (filter mask bit set) is not one Blosc frame."""
    path = eegbench.save(_power_of_two_recording(4, 2_000), tmp_path / "h", format="hdf5",
                         compression="blosc-lz4", chunk_seconds=0.4)
    _bound(monkeypatch)
    src = eegbench.open(path)[0].source
    src.ready()
    entries = list(src._h_index)
    off, size, _mask, crc = entries[1]
    entries[1] = (off, size, 1, crc)
    monkeypatch.setattr(src, "_h_index", entries)
    assert src._blosc_span(1, src._stored_chunk_at(1)) is None
    assert src._blosc_span(0, src._stored_chunk_at(0)) is not None


def test_it_refuses_arguments_that_do_not_fit(monkeypatch):
    kernel = _chunks._blosc_window()
    assert kernel
    import numcodecs

    q = np.ones(3), np.zeros(3), np.ones(3)
    data = np.arange(3 * 40, dtype=np.int16).reshape(3, 40)
    frame = numcodecs.Blosc(cname="lz4").encode(data)
    view = np.frombuffer(frame, np.uint8)
    spans = np.array([[0, len(frame)]], dtype=np.int64)
    rows = np.arange(3, dtype=np.int64)
    scratch = np.empty(3 * 40 * 2, np.uint8)
    out = np.empty((3, 40), np.float32)
    assert kernel(out, view, spans, 0, 40, 40, 3, 1, rows, *q, scratch)
    np.testing.assert_array_equal(out, data.astype(np.float32))
    assert not kernel(out, view, np.array([[-1, -1]], np.int64), 0, 40, 40, 3, 1, rows, *q, scratch)  # not checked
    assert not kernel(out, view, np.array([[0, len(frame) - 1]], np.int64), 0, 40, 40, 3, 1, rows, *q, scratch)  # cut frame
    assert not kernel(out, view, spans, 0, 40, 40, 4, 1, np.arange(3, dtype=np.int64), *(np.ones(4), np.zeros(4),
                      np.ones(4)), np.empty(4 * 40 * 2, np.uint8))  # 240 bytes are not 4 rows of int16
    wide = np.empty(3 * 40 * 4, np.uint8)
    assert not kernel(out, view, spans, 0, 40, 40, 3, 2, rows, *q, wide)  # int16 frame read as int32: 20 samples a row
    with pytest.raises(ValueError):
        kernel(out, view, spans, 0, 40, 40, 3, 1, rows, *q, scratch[:-1])  # scratch too small
    with pytest.raises(ValueError):
        kernel(np.empty((3, 80), np.float32), view, spans, 0, 80, 40, 3, 1, rows, *q, scratch)  # past the last span
    with pytest.raises(ValueError):
        kernel(out, view, spans, 0, 40, 40, 3, 1, np.array([0, 1, 3], np.int64), *q, scratch)  # no channel 3
    with pytest.raises(TypeError):
        kernel(out[:, ::2], view, spans, 0, 20, 40, 3, 1, rows, *q, scratch)  # rows not contiguous
    with pytest.raises(TypeError):
        kernel(out, view, spans, 0, 40, 40, 3, 3, rows, *q, scratch)  # float32 takes no calibration
    with pytest.raises(ValueError):
        kernel(out, view, spans, 5, 5, 40, 3, 1, rows, *q, scratch)  # empty window
