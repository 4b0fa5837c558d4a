"""The API MNE users already know: get_data's arguments, select by meaning, description columns."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import make_recording, real_data_dir
from eegbench import errors
from eegbench.model import Dataset


def test_get_data_takes_mne_arguments_in_mne_order():
    rec = make_recording(6, 500)
    full = rec.get_data()
    np.testing.assert_array_equal(rec.get_data(["C2", 0], 10, 20), full[[2, 0], 10:20])  # picks, start, stop
    np.testing.assert_array_equal(rec.get_data(tmin=1.0, tmax=2.5), full[:, 100:250])
    np.testing.assert_array_equal(rec.get_data(start=30, tmin=1.0), full[:, 30:])  # start wins, as in MNE
    with pytest.raises(errors.SelectionError, match="tmax"):
        rec.get_data(tmax="2 s")
    with pytest.raises(errors.SelectionError, match=r"get_data\(start=10, stop=20\)"):
        rec.get_data(10, 20)  # the old (start, stop) order: refused, never silently channel 10
    np.testing.assert_array_equal(rec.get_data([1], 20), full[[1], 20:])


def test_crop_follows_mne_and_is_deferred():
    rec = make_recording(3, 1000)
    raw = rec.to_mne()
    for tmin, tmax, inc in [(1.0, 2.0, True), (0.5, 3.333, False), (2.0, None, True)]:
        ours = rec.crop(tmin, tmax, include_tmax=inc).get_data()
        theirs = raw.copy().crop(tmin, tmax, include_tmax=inc).get_data().astype(np.float32)
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(errors.SelectionError):
        rec.crop(5.0, 20.0)


def test_get_data_units_match_mne():
    rec = eegbench.from_files(real_data_dir() / "eegbci_S001" / "S001R03.edf", sha256=False)[0]
    raw = mne.io.read_raw_edf(real_data_dir() / "eegbci_S001" / "S001R03.edf", preload=True, verbose="error")
    ours = rec.get_data(picks=["C3..", "Cz.."], tmin=1.0, tmax=3.0, units="uV")
    theirs = raw.get_data(picks=["C3..", "Cz.."], tmin=1.0, tmax=3.0, units="uV")
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # float32 volts x 1e6 vs MNE's float64
    np.testing.assert_array_equal(rec.get_data(units={"eeg": "µV"}, stop=10), rec.get_data(units="uV", stop=10))
    with pytest.raises(errors.SelectionError, match="not a voltage"):
        rec.get_data(units="T")


def test_select_compares_by_meaning_and_empty_is_an_error():
    recs = [make_recording(2, 100, seed=i, name=f"r{i}") for i in range(4)]
    desc = pd.DataFrame({"subject": ["001", "001", "2", "002"], "run": ["04", 4, "4.0", "05"],
                         "task": ["rest", "motor ", "rest", None]})
    ds = Dataset(recs, desc)
    assert [r.name for r in ds.select(run=4)] == ["r0", "r1", "r2"]
    assert [r.name for r in ds.select(run="4", subject=1)] == ["r0", "r1"]
    assert [r.name for r in ds.select(subject=[2], task="rest")] == ["r2"]
    assert [r.name for r in ds.select(task="motor")] == ["r1"]
    with pytest.raises(errors.EmptySelectionError) as exc:
        ds.select(run=7)
    assert "'04'" in str(exc.value) and "'05'" in str(exc.value) and "allow_empty" in str(exc.value)
    assert len(ds.select(run=7, allow_empty=True)) == 0


def test_from_files_description_function_and_mapping():
    folder = real_data_dir() / "eegbci_S001"
    files = [folder / "S001R03.edf", folder / "S001R04.edf"]
    ds = eegbench.from_files(files, sha256=False, description=eegbench.eegbci_description)
    assert ds.description[["subject", "run", "task"]].to_dict("records") == [
        {"subject": "001", "run": 3, "task": "fists"}, {"subject": "001", "run": 4, "task": "imagine_fists"}]
    assert len(ds.select(subject="001", run=[3, 4])) == 2
    ds = eegbench.from_files(files, sha256=False, description={"S001R04.edf": {"group": "b"}})
    assert ds.description["group"].tolist()[1] == "b" and pd.isna(ds.description["group"].tolist()[0])
    with pytest.raises(errors.OptionError):
        eegbench.from_files(files, sha256=False, description=["not", "a", "mapping"])
    assert eegbench.eegbci_description("S109R14.edf") == {"subject": "109", "run": 14, "task": "imagine_fists_feet"}
    assert eegbench.eegbci_description("x.edf") == {}


def test_from_files_reads_bids_entities_from_bids_like_names(tmp_path):
    src = real_data_dir() / "eegbci_S001" / "S001R03.edf"
    link = tmp_path / "sub-007_ses-2_task-motor_run-03_eeg.edf"
    link.symlink_to(src)
    ds = eegbench.from_files(link, sha256=False)
    row = ds.description.iloc[0].to_dict()
    assert (row["subject"], row["session"], row["task"], row["run"]) == ("007", "2", "motor", "03")
    assert len(ds.select(run=3, subject=7)) == 1
