"""The warm uncompressed read path (``ChunkedSource._read_warm``): once a recording's chunks are
checked, windows are copied straight from the map, the middle chunks of a window through one
strided view when the file's chunks are equally spaced. Every window must be bitwise what the
dataset held, at chunk and recording edges, with and without channel picks (issue #9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eegbench
from eegbench.formats import _chunks
from eegbench.sources.synthetic import make_dataset

FORMATS = ["hdf5", "zarr", "parquet"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[eegbench.Dataset, dict[tuple[str, bool], Path]]:
    root = tmp_path_factory.mktemp("warmpath")
    ds = make_dataset(n_recordings=2, n_channels=5, sfreq=100, duration_s=[9.37, 6.0], seed=11)
    return ds, {(fmt, integer): Path(eegbench.save(ds, root / f"{fmt}-{integer}", format=fmt, compression="none",
                                                   chunk_seconds=0.5, integer=integer))
                for fmt in FORMATS for integer in (False, True)}


def _windows(n_times: int, cs: int) -> list[tuple[int, int]]:
    edges = sorted({0, 1, cs - 1, cs, cs + 1, 2 * cs, 3 * cs - 1, n_times - 3 * cs, n_times - cs - 1,
                    n_times - cs, n_times - 1})
    out = [(a, b) for a in edges for b in edges if 0 <= a < b <= n_times]
    out += [(a, n_times) for a in edges if 0 <= a < n_times]
    rng = np.random.default_rng(3)
    for _ in range(60):
        a = int(rng.integers(n_times - 1))
        out.append((a, int(rng.integers(a + 1, n_times + 1))))
    return out


@pytest.mark.parametrize("kernel", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("integer", [False, True], ids=["float32", "counts"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_warm_windows_are_bitwise_the_dataset(saved, fmt, integer, kernel, monkeypatch):
    monkeypatch.setattr(_chunks, "_WARM_COPY", None)
    monkeypatch.setenv("EEGBENCH_WARM_KERNEL", "1" if kernel else "0")
    ds, stores = saved
    taken = []
    real = _chunks.ChunkedSource._read_warm

    def spy(self, start, stop, channels, out, fresh=False):
        done = real(self, start, stop, channels, out, fresh)
        taken.append(done)
        return done

    monkeypatch.setattr(_chunks.ChunkedSource, "_read_warm", spy)
    opened = eegbench.open(stores[(fmt, integer)])
    for rec, want in zip(opened, ds):
        expect = want.get_data()
        rec.get_data()  # every chunk checked once (a slow first read, e.g. compiling a kernel, arms one
        rec.get_data()  # residency check: the second read takes it), so the reads below are warm
        cs = rec.source.chunk_samples
        assert cs == 50
        picks = [3, 0, 4]
        for a, b in _windows(rec.n_times, cs):
            taken.clear()
            for h, _off in rec.source._h_raw:  # a slow (preempted) read arms a residency check: not here
                h.probe = 0
            got = rec.get_data(start=a, stop=b)
            assert got.dtype == np.float32 and got.shape == (5, b - a)
            np.testing.assert_array_equal(got, expect[:, a:b], err_msg=f"{fmt} [{a}, {b})")
            assert taken == [True], (a, b, taken)
            np.testing.assert_array_equal(rec.get_data(picks=picks, start=a, stop=b), expect[picks, a:b])
            out = np.full((5, b - a), np.nan, dtype=np.float32)
            assert rec.source.read(a, b, None, out=out) is out
            np.testing.assert_array_equal(out, expect[:, a:b])
        np.testing.assert_array_equal(rec.get_windows([0, cs - 7, rec.n_times - 3 * cs], 3 * cs),
                                      np.stack([expect[:, s:s + 3 * cs] for s in (0, cs - 7, rec.n_times - 3 * cs)]))


def test_unequally_spaced_chunks_fall_back_to_one_copy_per_chunk(saved, monkeypatch):
    """A window whose chunks are not equally spaced in the file takes the per-chunk loop (the NumPy
    path: the compiled copy reads each chunk at its own offset; tests/test_warm_kernel.py)."""
    monkeypatch.setattr(_chunks, "_WARM_COPY", False)
    ds, stores = saved
    opened = eegbench.open(stores[("zarr", False)])
    rec = opened[0]
    expect = ds[0].get_data()
    rec.get_data()
    rec.get_data()
    raw = rec.source._h_raw
    assert all(e is not None for e in raw)
    # a spacing that is not a multiple of the first step: entries 0..3 as the file has them but
    # entry 2 moved onto entry 3's bytes: the strided view would read the wrong chunk
    h, off3 = raw[3]
    raw[2] = (h, off3)
    for handle, _off in raw:  # a slow (preempted) read arms a residency check, which ignores the doctored table
        handle.probe = 0
    got = rec.get_data(start=10, stop=170)  # chunks 0..3: entry 2 now points at chunk 3's samples
    np.testing.assert_array_equal(got[:, :90], expect[:, 10:100])
    np.testing.assert_array_equal(got[:, 90:140], expect[:, 150:200])  # per chunk, as the entries say
    np.testing.assert_array_equal(got[:, 140:], expect[:, 150:170])


@pytest.mark.parametrize("fmt", ["zarr", "parquet"])
def test_picks_and_units_are_exact_through_the_fast_paths(saved, fmt):
    """Channel picks (names, indices, negative, NumPy, every channel in order) and unit scaling
    give what a read of everything, indexed and scaled in float64 then rounded once, gives."""
    ds, stores = saved
    rec = eegbench.open(stores[(fmt, False)])[1]
    full = ds[1].get_data()
    names = list(rec.ch_names)
    a, b = 37, 212
    for picks, idx in [(names[::-1], [4, 3, 2, 1, 0]), ([names[2]], [2]), (names[1], [1]), ([3, -1, 0], [3, 4, 0]),
                       (np.array([4, 1]), [4, 1]), (np.int64(-2), [3]), (names, [0, 1, 2, 3, 4]),
                       (list(range(5)), [0, 1, 2, 3, 4]), ([names[0], 2], [0, 2])]:
        np.testing.assert_array_equal(rec.get_data(picks=picks, start=a, stop=b), full[idx, a:b], err_msg=str(picks))
    for units, factor in [("uV", 1e6), ("mV", 1e3), ({"eeg": "uV"}, 1e6), ("V", 1.0)]:
        for picks, idx in [(None, slice(None)), ([4, 0], [4, 0])]:
            want = (full[idx, a:b].astype(np.float64) * factor).astype(np.float32)
            got = rec.get_data(picks=picks, start=a, stop=b, units=units)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f"{units} {picks}")
    assert rec.get_data(start=a, stop=b).dtype == np.float32  # no unit conversion left behind


def test_renamed_channels_and_changed_units_are_seen_by_the_caches(saved):
    ds, stores = saved
    rec = eegbench.open(stores[("hdf5", False)])[0]
    full = ds[0].get_data()
    old = rec.ch_names[2]
    np.testing.assert_array_equal(rec.get_data(picks=[old], start=0, stop=9), full[[2], :9])
    rec.ch_names[2] = "renamed"
    np.testing.assert_array_equal(rec.get_data(picks=["renamed"], start=0, stop=9), full[[2], :9])
    with pytest.raises(eegbench.errors.ChannelNotFoundError):
        rec.get_data(picks=[old], start=0, stop=9)
    first = rec.get_data(start=0, stop=9, units="uV")
    rec.units[1] = "mV"  # channel 1 now says it holds millivolts: uV is 1e3 of its values
    again = rec.get_data(start=0, stop=9, units="uV")
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], (full[1, :9].astype(np.float64) * 1e3).astype(np.float32))
    for bad in ([True], [1, True], [1.5], [99], []):
        with pytest.raises(eegbench.errors.EegbenchError):
            rec.get_data(picks=bad, start=0, stop=9)
