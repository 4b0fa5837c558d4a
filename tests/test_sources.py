"""Sources: MNE raws and files (EDF, BrainVision, FIF, EEGLAB), BIDS folders, and ``load``.

Real-data tests read ../shared/data/eeg and skip with the reason when it is absent.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pickle
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import FORMATS, REAL_DATA, assert_recordings_equal, real_data_dir
from eegbench.errors import EmptyDatasetError, OptionError, SourceReadError
from eegbench.sources import classify, load
from eegbench.sources.bids import BidsSource, from_bids, read_participants
from eegbench.sources.mne import FileSource, RawSource, from_files, from_mne

EEGBCI = REAL_DATA / "eegbci_S001"
BV = REAL_DATA / "brainvision" / "test.vhdr"
FIF = REAL_DATA / "fif" / "data_resting_EO_200Hz_raw.fif"


def _f32(raw: mne.io.BaseRaw) -> np.ndarray:
    return raw.get_data().astype(np.float32)


def _assert_bitwise(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.ascontiguousarray(a, np.float32).view(np.uint32),
                                  np.ascontiguousarray(b, np.float32).view(np.uint32))


@pytest.fixture(scope="module")
def eegbci() -> tuple[eegbench.Dataset, list[Path]]:
    root = real_data_dir() / "eegbci_S001"
    return from_files(root), sorted(root.glob("*.edf"))


@pytest.fixture(scope="module")
def sha256sums() -> dict[str, str]:
    lines = (real_data_dir() / "SHA256SUMS").read_text().split("\n")
    return {Path(p.strip().lstrip("*")).name: h for h, p in (ln.split(maxsplit=1) for ln in lines if ln.strip())}


# ---------------------------------------------------------------------------------------------
# from_files on real recordings
# ---------------------------------------------------------------------------------------------
def test_eegbci_matches_mne(eegbci, sha256sums):
    ds, paths = eegbci
    assert len(ds) == 12  # the folder's .edf.event files are not recordings
    assert list(ds.description["file"]) == [p.name for p in paths]
    for rec, path in zip(ds, paths):
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        data = rec.get_data()
        assert data.dtype == np.float32
        _assert_bitwise(data, _f32(raw))
        assert rec.ch_names == raw.ch_names and rec.sfreq == 160.0 == raw.info["sfreq"]
        assert rec.ch_types == ["eeg"] * 64 and rec.units == ["V"] * 64
        assert rec.meas_date == raw.info["meas_date"] and rec.first_samp == 0
        np.testing.assert_array_equal(rec.annotations.onset, raw.annotations.onset)
        np.testing.assert_array_equal(rec.annotations.duration, raw.annotations.duration)
        assert rec.annotations.description == list(raw.annotations.description)
        assert set(rec.annotations.description) == {"T0", "T1", "T2"} and len(rec.annotations) == 30
        # the reader's calibration reproduces MNE's float32 samples bit for bit
        q = rec.quantization
        assert q is not None and q.dtype == "int16"
        counts = q.to_counts(data)
        _assert_bitwise(q.reconstruct(counts), data)
        assert rec.provenance["sha256"] == sha256sums[path.name]
        assert rec.provenance["file"] == path.name and rec.name == path.name
        assert rec.history[0]["operation"] == "acquisition_filter"
        assert rec.history[0]["highpass_hz"] == 0.0 and rec.history[0]["lowpass_hz"] == 80.0
        assert isinstance(rec.source, FileSource)


def test_eegbci_partial_reads_and_picks(eegbci):
    ds, paths = eegbci
    rec = ds[3]
    full = _f32(mne.io.read_raw_edf(paths[3], preload=True, verbose="error"))
    _assert_bitwise(rec.get_data(start=1234, stop=5678, picks=["C3..", "Cz..", 0]), full[[8, 10, 0], 1234:5678])
    _assert_bitwise(rec.get_windows([0, 160, 19000], 320, picks=[5, 2]), np.stack(
        [full[[5, 2], s:s + 320] for s in (0, 160, 19000)]))


def test_preload(eegbci):
    _, paths = eegbci
    ds = from_files(paths[:2], preload=True)
    for rec, path in zip(ds, paths):
        assert not isinstance(rec.source, FileSource)
        _assert_bitwise(rec.get_data(), _f32(mne.io.read_raw_edf(path, preload=True, verbose="error")))
        assert rec.quantization is not None


def test_brainvision_and_fif():
    real_data_dir()
    bv, fif = from_files([BV, FIF])
    raw = mne.io.read_raw_brainvision(BV, preload=True, verbose="error")
    _assert_bitwise(bv.get_data(), _f32(raw))
    assert bv.ch_types == raw.get_channel_types() and bv.ch_names == raw.ch_names and bv.sfreq == 1000.0
    assert bv.units[:26] == ["V"] * 26 and bv.units[26] == "NA"
    assert bv.annotations.description == list(raw.annotations.description) and len(bv.annotations) == 13
    np.testing.assert_array_equal(bv.annotations.onset, raw.annotations.onset)
    # 16-bit BrainVision: MNE multiplies int16 by raw._cals; that grid is exact
    q = bv.quantization
    assert q is not None and q.dtype == "int16"
    _assert_bitwise(q.reconstruct(q.to_counts(bv.get_data())), bv.get_data())
    assert set(bv.provenance["data_files"]) == {"test.eeg"}  # the sample file is hashed too

    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error")
    _assert_bitwise(fif.get_data(), _f32(raw))
    assert fif.first_samp == raw.first_samp == 2000 and fif.meas_date == raw.info["meas_date"]
    assert fif.quantization is None  # float FIF: no integer grid


@pytest.mark.parametrize("path", [EEGBCI / "S001R05.edf", BV, FIF], ids=["edf", "brainvision", "fif"])
def test_to_mne_round_trip(path):
    real_data_dir()
    (rec,) = from_files(path)
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    back = rec.to_mne()
    np.testing.assert_array_equal(back.get_data(), _f32(raw).astype(np.float64))
    assert back.ch_names == raw.ch_names and back.get_channel_types() == raw.get_channel_types()
    assert back.info["sfreq"] == raw.info["sfreq"] and back.info["meas_date"] == raw.info["meas_date"]
    assert back.first_samp == raw.first_samp
    np.testing.assert_array_equal(back.annotations.onset, raw.annotations.onset)
    np.testing.assert_array_equal(back.annotations.duration, raw.annotations.duration)
    assert list(back.annotations.description) == list(raw.annotations.description)
    assert back.annotations.orig_time == raw.annotations.orig_time


def test_eeglab_file(tmp_path):
    raw = mne.io.read_raw_edf(real_data_dir() / "eegbci_S001" / "S001R04.edf", preload=True, verbose="error")
    raw.crop(0, 10)
    mne.export.export_raw(tmp_path / "x.set", raw, verbose="error")
    (rec,) = from_files(tmp_path)
    ref = mne.io.read_raw_eeglab(tmp_path / "x.set", preload=True, verbose="error")
    _assert_bitwise(rec.get_data(), _f32(ref))
    assert rec.annotations.description == list(ref.annotations.description)
    assert rec.quantization is None


# ---------------------------------------------------------------------------------------------
# errors and laziness
# ---------------------------------------------------------------------------------------------
def test_unreadable_file_and_skip_errors(tmp_path):
    good = real_data_dir() / "eegbci_S001" / "S001R03.edf"
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"this is not an EDF file" * 10)
    with pytest.raises(SourceReadError, match="broken.edf") as err:
        from_files([good, bad])
    assert "skip_errors" in str(err.value)
    with pytest.warns(UserWarning, match="broken.edf"):
        ds = from_files([good, bad], skip_errors=True)
    assert [r.name for r in ds] == ["S001R03.edf"]
    with pytest.warns(UserWarning), pytest.raises(EmptyDatasetError):
        from_files([bad], skip_errors=True)
    with pytest.raises(SourceReadError, match="no such file"):
        from_files(tmp_path / "missing.edf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDatasetError, match="no recording files"):
        from_files(tmp_path / "empty")


def test_without_hashing():
    (rec,) = from_files(real_data_dir() / "brainvision" / "test.vhdr", sha256=False)
    assert "sha256" not in rec.provenance and "data_files" not in rec.provenance
    assert rec.provenance["file"] == "test.vhdr"


def test_lazy_sources_pickle():
    real_data_dir()
    (rec,) = from_files(EEGBCI / "S001R06.edf")
    src = rec.source
    before = rec.get_data(start=100, stop=900)
    blob = pickle.dumps(src)
    assert len(blob) < 20_000 and b"RawEDF" not in blob  # path + options, not the MNE object
    clone = pickle.loads(blob)
    assert clone._raw is None and clone.quantization == src.quantization
    _assert_bitwise(clone.read(100, 900, None), before)
    # a forked worker has another pid: the source reopens the file instead of sharing the raw
    clone._pid = -1
    _assert_bitwise(clone.read(100, 900, np.array([3, 1])), before[[3, 1]])
    assert clone._pid != -1
    # a whole Recording pickles too (what DataLoader/joblib workers receive)
    _assert_bitwise(pickle.loads(pickle.dumps(rec)).get_data(start=100, stop=900), before)


# ---------------------------------------------------------------------------------------------
# from_mne
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("meas_date", [None, dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)])
def test_from_mne_onsets_count_from_first_stored_sample(meas_date):
    info = mne.create_info(["A", "B", "C"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((3, 1000)) * 1e-5, info, first_samp=250,
                          verbose="error")
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    raw.set_annotations(mne.Annotations([0.5, 2.0, 7.25], [0.1, 0.0, 1.0], ["x", "y", "z"],
                                        ch_names=[[], ["B"], ["A", "C"]]))  # orig_time None: from first sample
    (rec,) = from_mne(raw)
    np.testing.assert_allclose(rec.annotations.onset, [0.5, 2.0, 7.25], atol=1e-12)
    assert rec.annotations.ch_names == [(), ("B",), ("A", "C")]
    assert rec.first_samp == 250 and rec.meas_date == meas_date
    back = rec.to_mne()
    np.testing.assert_allclose(back.annotations.onset, raw.annotations.onset, atol=1e-9)
    assert [tuple(c) for c in back.annotations.ch_names] == [tuple(c) for c in raw.annotations.ch_names]
    ev_a, ids_a = mne.events_from_annotations(raw, verbose="error")
    ev_b, ids_b = mne.events_from_annotations(back, verbose="error")
    np.testing.assert_array_equal(ev_a, ev_b)
    assert ids_a == ids_b
    _assert_bitwise(back.get_data(), raw.get_data())


def test_from_mne_cropped_lazy_and_preloaded():
    path = real_data_dir() / "eegbci_S001" / "S001R07.edf"
    lazy = mne.io.read_raw_edf(path, preload=False, verbose="error").crop(10.0, 40.0)
    (rec,) = from_mne(lazy)
    assert isinstance(rec.source, RawSource) and rec.first_samp == 1600
    ref = lazy.copy().load_data()
    _assert_bitwise(rec.get_data(), _f32(ref))
    np.testing.assert_allclose(rec.annotations.onset, lazy.annotations.onset - 10.0, atol=1e-12)
    assert rec.annotations.onset.min() >= 0.0
    back = rec.to_mne()
    np.testing.assert_array_equal(mne.events_from_annotations(back, verbose="error")[0],
                                  mne.events_from_annotations(lazy, verbose="error")[0])
    assert rec.quantization is not None  # still the file's integers
    _assert_bitwise(pickle.loads(pickle.dumps(rec.source)).read(0, 50, None), rec.get_data(start=0, stop=50))

    picked = mne.io.read_raw_edf(path, preload=False, verbose="error").pick(["C4..", "C3..", "Oz.."])
    (rec_p,) = from_mne(picked)
    _assert_bitwise(rec_p.get_data(), _f32(picked.copy().load_data()))
    assert rec_p.ch_names == ["C4..", "C3..", "Oz.."]

    pre = mne.io.read_raw_edf(path, preload=True, verbose="error")
    (unmodified,) = from_mne(pre)
    assert unmodified.quantization is not None and unmodified.history[0]["operation"] == "acquisition_filter"
    filtered = pre.copy().filter(1.0, 30.0, verbose="error")
    (rec_f,) = from_mne(filtered)
    assert rec_f.quantization is None  # off the integer grid: stored as float32
    assert rec_f.history[0]["operation"] == "mne_info_bandwidth"
    assert (rec_f.history[0]["highpass_hz"], rec_f.history[0]["lowpass_hz"]) == (1.0, 30.0)
    pre._data[0, 0] += 1e-9  # changing one sample in place is caught as well
    (rec_m,) = from_mne(pre)
    assert rec_m.quantization is None


def test_from_mne_description_and_errors():
    info = mne.create_info(["A", "B"], 50.0, "eeg")
    raws = [mne.io.RawArray(np.zeros((2, 100)), info, verbose="error") for _ in range(2)]
    ds = from_mne(raws, description=[{"subject": "01", "age": 30}, {"subject": "02", "age": None}])
    assert [r.description["subject"] for r in ds] == ["01", "02"] and ds[1].description["age"] is None
    frame = pd.DataFrame({"subject": ["a", "b"], "score": [1.5, 2.5]})
    ds = from_mne(raws, description=frame)
    assert list(ds.description["score"]) == [1.5, 2.5] and ds.description["score"].dtype == np.float64
    assert ds[0].description == {"subject": "a", "score": 1.5}
    assert len(from_mne(raws[0])) == 1
    # subject_info: sex and age at meas_date become columns; identifiers and the birthday do not
    raw = raws[0].copy().set_meas_date(dt.datetime(2020, 7, 1, tzinfo=dt.timezone.utc))
    raw.info["subject_info"] = {"his_id": "Jane Doe", "sex": 2, "birthday": dt.date(1990, 1, 1)}
    (rec,) = from_mne(raw)
    assert rec.description == {"sex": "F", "age": 30.5}
    with pytest.raises(OptionError, match="one row per raw"):
        from_mne(raws, description=[{"subject": "x"}])
    with pytest.raises(OptionError, match="mne.io.Raw"):
        from_mne(["S001R03.edf"])


# ---------------------------------------------------------------------------------------------
# BIDS
# ---------------------------------------------------------------------------------------------


def test_from_bids(bids_root):
    ds = from_bids(bids_root)
    assert len(ds) == 3
    assert list(ds.description["subject"]) == ["001", "001", "002"]
    assert list(ds.description["task"]) == ["motor"] * 3
    assert list(ds.description["run"]) == ["3", "4", "5"]  # the labels of the file names
    assert ds[0].description["age"] == 42 and ds[2].description["age"] is None
    assert [r.description["sex"] for r in ds] == ["M", "M", "F"]
    assert ds[0].description["session"] is None and ds[0].description["datatype"] == "eeg"
    assert ds[0].name == "sub-001_task-motor_run-3_eeg.edf"
    ref = mne.io.read_raw_edf(REAL_DATA / "eegbci_S001" / "S001R03.edf", preload=True, verbose="error")
    _assert_bitwise(ds[0].get_data(), _f32(ref))
    assert ds[0].quantization is not None
    # events.tsv -> annotations
    assert ds[0].annotations.description == list(ref.annotations.description)
    np.testing.assert_allclose(ds[0].annotations.onset, ref.annotations.onset, atol=1e-6)
    assert isinstance(ds[0].source, BidsSource)
    clone = pickle.loads(pickle.dumps(ds[0].source))
    assert clone._raw is None
    _assert_bitwise(clone.read(0, 500, None), ds[0].get_data(start=0, stop=500))
    assert ds[0].provenance["bids_root"] == str(bids_root.resolve())
    assert read_participants(bids_root)["002"] == {"age": None, "sex": "F", "hand": None, "weight": None,
                                                   "height": None}


def test_from_bids_filters(bids_root):
    assert len(from_bids(bids_root, subject="001")) == 2
    assert len(from_bids(bids_root, subject=["001", "002"], task="motor")) == 3
    assert [r.description["run"] for r in from_bids(bids_root, run=4)] == ["4"]
    assert [r.description["run"] for r in from_bids(bids_root, run=["3", 5])] == ["3", "5"]
    assert [r.description["run"] for r in from_bids(bids_root, run="04")] == ["4"]  # numeric match
    assert len(eegbench.from_bids(bids_root, subject="002")) == 1  # the public wrapper
    with pytest.raises(EmptyDatasetError, match="subject='009'") as err:
        from_bids(bids_root, subject="009")
    assert "001" in str(err.value)  # lists what is available
    with pytest.raises(EmptyDatasetError, match="task='rest'"):
        from_bids(bids_root, task="rest")
    with pytest.raises(SourceReadError, match="no such BIDS folder"):
        from_bids(bids_root / "nope")


def test_bids_style_file_names_give_entities(bids_root):
    ds = from_files(bids_root / "sub-001" / "eeg")
    assert len(ds) == 2
    assert ds[0].description["subject"] == "001" and ds[0].description["run"] == "3"
    assert ds[0].description["task"] == "motor"


# ---------------------------------------------------------------------------------------------
# load: any mix of sources
# ---------------------------------------------------------------------------------------------
def test_load_mixes_sources(bids_root, tmp_path):
    assert classify(bids_root) == "bids" and classify(BV) == "file" and classify(EEGBCI) == "folder"
    ds = load([bids_root, BV, EEGBCI])
    assert len(ds) == 3 + 1 + 12
    assert len(ds.description) == 16 and {"subject", "file"} <= set(ds.description.columns)
    assert ds.description["file"].iloc[3] == "test.vhdr"
    store = eegbench.save(eegbench.Dataset(ds.recordings[:2], windows=pd.DataFrame(
        {"recording": [0, 1], "start": [0, 10], "stop": [160, 170]})), tmp_path / "s.zarr", format="zarr")
    assert classify(store) == "store" and classify(store / "eegbench.json") == "store"
    single = load(store)
    assert single.windows is not None and len(single.windows) == 2
    both = load([store, FIF])
    assert len(both) == 3 and both.windows is None
    with pytest.raises(SourceReadError, match="no such file"):
        load([tmp_path / "nothing"])
    with pytest.warns(UserWarning, match="broken"):
        (tmp_path / "broken.edf").write_bytes(b"x" * 300)
        assert len(load([FIF, tmp_path / "broken.edf"], skip_errors=True)) == 1


# ---------------------------------------------------------------------------------------------
# save -> open round trip, per available format
# ---------------------------------------------------------------------------------------------
def _backend_or_skip(fmt: str) -> None:
    try:
        importlib.import_module(f"eegbench.formats.{fmt}")
    except ImportError as exc:
        pytest.skip(f"format {fmt} not available: {exc}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_save_open_round_trip(fmt, tmp_path):
    real_data_dir()
    _backend_or_skip(fmt)
    ds = from_files([EEGBCI / "S001R03.edf", BV, FIF])
    path = eegbench.save(ds, tmp_path / f"s.{fmt}", format=fmt)
    back = eegbench.open(path)
    for rec, reopened in zip(ds, back):
        assert_recordings_equal(rec, reopened)
        ref = mne.io.read_raw(rec.provenance["path"], preload=True, verbose="error")
        _assert_bitwise(reopened.get_data(), _f32(ref))
    info = eegbench.info(path)
    assert info["stored_dtypes"] == ["float32", "int16"]  # EDF + BrainVision as counts, FIF as float32
