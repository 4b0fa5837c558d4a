"""The data model alone: ranges, picks, padding, deferred slicing, selection, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import make_recording, rich_dataset
from eegbench import Annotations, Dataset
from eegbench.errors import ChannelNotFoundError, EegbenchError, SelectionError, UnknownColumnError


def test_get_data_ranges_and_picks():
    rec = make_recording(6, 500)
    full = rec.get_data()
    assert full.dtype == np.float32 and full.shape == (6, 500)
    np.testing.assert_array_equal(rec.get_data(start=10, stop=20), full[:, 10:20])
    np.testing.assert_array_equal(rec.get_data(start=10, stop=20, picks=["C2", 0]), full[[2, 0], 10:20])
    np.testing.assert_array_equal(rec.get_data(start=0, stop=0), full[:, :0])


@pytest.mark.parametrize("start,stop", [(-1, 10), (490, 501), (20, 10), (600, 700)])
def test_out_of_range_raises_and_names_recording(start, stop):
    rec = make_recording(4, 500, name="myrec")
    with pytest.raises(SelectionError, match="myrec"):
        rec.get_data(start=start, stop=stop)


def test_padding_is_explicit():
    rec = make_recording(3, 100)
    full = rec.get_data()
    out = rec.get_data(start=90, stop=110, pad=True)
    np.testing.assert_array_equal(out[:, :10], full[:, 90:])
    assert (out[:, 10:] == 0).all()
    out = rec.get_data(start=-5, stop=5, pad=np.nan)
    assert np.isnan(out[:, :5]).all()
    with pytest.raises(SelectionError):
        rec.get_data(start=20, stop=10, pad=True)


def test_unknown_channel_is_typed_error():
    rec = make_recording(3, 100, name="r")
    with pytest.raises(ChannelNotFoundError, match="nope"):
        rec.get_data(picks=["nope"])
    with pytest.raises(KeyError):
        rec.get_data(picks=[7])
    with pytest.raises(EegbenchError):
        rec.get_data(start=0.5, stop=3)  # seconds passed where samples are expected


def test_deferred_slice_and_pick_compose():
    rec = make_recording(5, 1000, sfreq=100.0,
                         annotations=Annotations([1.0, 4.0, 9.5], [0.5, 1.0, 0.0], ["a", "b", "c"]))
    full = rec.get_data()
    part = rec.slice(2.0, 8.0)
    assert part.n_times == 600 and part.first_samp == 200
    assert part.annotations.description == ["b"] and part.annotations.onset.tolist() == [2.0]
    sub = part.pick(["C4", "C1"]).crop_samples(100, 300)
    assert sub.ch_names == ["C4", "C1"]
    np.testing.assert_array_equal(sub.get_data(), full[[4, 1], 300:500])
    np.testing.assert_array_equal(sub.get_data(start=10, stop=20, picks="C1"), full[[1], 310:320])
    with pytest.raises(SelectionError):
        rec.slice(5.0, 11.0)
    with pytest.raises(SelectionError):
        rec.slice(5.0, 4.0)


def test_get_windows_never_short():
    rec = make_recording(2, 300)
    out = rec.get_windows([0, 100, 200], 100)
    assert out.shape == (3, 2, 100)
    np.testing.assert_array_equal(out[2], rec.get_data(start=200, stop=300))
    with pytest.raises(SelectionError):
        rec.get_windows([250], 100)
    with pytest.raises(SelectionError, match="longer than the recording"):
        rec.get_windows([0], 301)


def test_dataset_select_and_windows_remap():
    ds = rich_dataset()
    sub = ds.select(subject="002")
    assert len(sub) == 1 and sub[0].name == "second"
    assert sub.windows["recording"].tolist() == [0]
    assert len(ds.select(subject=["001", "002"])) == 2
    assert len(ds.select(subject="999", allow_empty=True)) == 0
    with pytest.raises(UnknownColumnError, match="subjekt"):
        ds.select(subjekt="001")
    assert ds.is_heterogeneous


def test_dataset_validation():
    rec = make_recording(2, 100)
    with pytest.raises(SelectionError):
        Dataset([rec], pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(SelectionError):
        Dataset([rec], windows=pd.DataFrame({"recording": [3], "start": [0], "stop": [10]}))


def test_recording_pickles_with_its_source():
    rec = make_recording(3, 200).slice(0.5, 1.5)
    clone = pickle.loads(pickle.dumps(rec))
    np.testing.assert_array_equal(clone.get_data(), rec.get_data())


def test_channel_names_with_nul_are_refused():
    with pytest.raises(SelectionError, match="NUL"):
        eegbench.Recording(np.zeros((2, 10), np.float32), 100.0, ["a", "b\x00"])
