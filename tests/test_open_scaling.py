"""Open that scales with the number of recordings (issue #14): whole-column checks at open, each
recording's rows and files checked when it is first built, with the same typed errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from test_remote_validation import _set, reseal

import eegbench
from conftest import make_recording
from eegbench import manifest, validate
from eegbench.errors import CorruptStoreError

FORMATS = ["hdf5", "zarr", "parquet"]


def _store(tmp_path, fmt, n=3):
    tmp_path.mkdir(parents=True, exist_ok=True)
    ds = eegbench.Dataset([make_recording(2, 300, seed=i) for i in range(n)])
    return eegbench.save(ds, tmp_path / "s", format=fmt, compression="zstd"), ds


def _set_int(column, value, row):
    def edit(frame):  # the column keeps its integer type
        frame = frame.copy()
        frame.loc[row, column] = value
        return frame
    return edit


def _signal_file(store, key):
    files = json.loads((store / manifest.HEADER).read_text())["files"]
    return max((rel for rel in files if f"/{key}" in rel), key=lambda rel: files[rel]["size"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_recording_opens_and_raises_on_first_use(tmp_path, fmt):
    store, ds = _store(tmp_path, fmt)
    rel = _signal_file(store, "rec-00001")
    os.truncate(store / rel, (store / rel).stat().st_size - 7)
    opened = eegbench.open(store)  # the other recordings' files are not touched by open
    with pytest.raises(CorruptStoreError, match=rf"{rel.split('/')[-1]} has \d+ bytes, the manifest says"):
        opened[1]
    with pytest.raises(CorruptStoreError):  # and again: nothing was cached for the damaged one
        opened[1].get_data()
    for i in (0, 2):
        np.testing.assert_array_equal(opened[i].get_data(), ds[i].get_data())


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_or_symlinked_recording_file_raises_on_first_use(tmp_path, fmt):
    store, ds = _store(tmp_path, fmt)
    rel = _signal_file(store, "rec-00002")
    data = (store / rel).read_bytes()
    (store / rel).unlink()
    opened = eegbench.open(store)
    with pytest.raises(CorruptStoreError, match="is missing"):
        opened[2]
    (tmp_path / "elsewhere").write_bytes(data)
    os.symlink(tmp_path / "elsewhere", store / rel)
    with pytest.raises(CorruptStoreError, match="symlink"):
        eegbench.open(store)[2]
    np.testing.assert_array_equal(eegbench.open(store)[0].get_data(), ds[0].get_data())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column,value,match", [
    ("index", 5, "not a permutation"),         # channel rows of recording 1
    ("name", None, "expected text"),
])
def test_bad_channel_rows_raise_on_first_use(tmp_path, fmt, column, value, match):
    store, ds = _store(tmp_path, fmt)

    # rows 2-3: recording 1 (2 channels each)
    reseal(store, "channels", (_set_int if isinstance(value, int) else _set)(column, value, row=2))
    opened = eegbench.open(store)
    with pytest.raises(CorruptStoreError, match=match):
        opened[1]
    for i in (0, 2):
        np.testing.assert_array_equal(opened[i].get_data(), ds[i].get_data())


@pytest.mark.parametrize("fmt", ["zarr", "parquet"])
def test_bad_recording_row_raises_on_first_use(tmp_path, fmt):
    store, ds = _store(tmp_path, fmt)
    reseal(store, "recordings", _set_int("n_times", -4, row=1))
    opened = eegbench.open(store)
    with pytest.raises(CorruptStoreError, match=r"\[1\]\.n_times"):
        opened[1]
    np.testing.assert_array_equal(opened[2].get_data(), ds[2].get_data())


@pytest.mark.parametrize("fmt", FORMATS)
def test_whole_column_checks_still_refuse_at_open(tmp_path, fmt):
    store, _ = _store(tmp_path, fmt)
    reseal(store, "recordings", _set("key", "rec-00000", row=1))  # duplicate key
    with pytest.raises(CorruptStoreError, match="valid unique recording key"):
        eegbench.open(store)
    store2, _ = _store(tmp_path / "b", fmt)
    reseal(store2, "channels", _set_int("recording", 7, row=0))  # a recording that does not exist
    with pytest.raises(CorruptStoreError, match="values outside"):
        eegbench.open(store2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_files_are_checked_at_open(tmp_path, fmt):
    store, _ = _store(tmp_path, fmt)
    with open(store / "tables.pack", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(CorruptStoreError, match="tables.pack has"):
        eegbench.open(store)


def test_zarr_group_metadata_under_signals_is_checked_at_open(tmp_path):
    store, _ = _store(tmp_path, "zarr")
    with open(store / "signals" / "000" / "zarr.json", "ab") as fh:  # belongs to no recording
        fh.write(b" ")
    with pytest.raises(CorruptStoreError, match="signals/000/zarr.json has"):
        eegbench.open(store)


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_touches_a_constant_number_of_files(tmp_path, fmt, monkeypatch):
    """lstat calls during open do not grow with the number of recordings (metadata only)."""
    counts = []
    real = os.lstat
    for n in (2, 12):
        store, _ = _store(tmp_path / str(n), fmt, n)
        calls: list[str] = []

        def counted(p, *a, calls=calls, **k):
            calls.append(str(p))
            return real(p, *a, **k)

        monkeypatch.setattr(os, "lstat", counted)
        eegbench.open(store)
        monkeypatch.setattr(os, "lstat", real)
        counts.append(len(calls))
        assert not [c for c in calls if "rec-" in c]
    assert counts[0] == counts[1]


def test_manifest_fast_path_agrees_with_entry_by_entry_checks(tmp_path):
    store, _ = _store(tmp_path, "zarr")
    header = json.loads((store / manifest.HEADER).read_text())
    fast = validate._files_fast(header["files"])
    assert fast is not None and fast.plain
    assert validate._digest_fast(header, fast) == validate.header_digest(header) == header["header_sha256"]
    for bad in ("a/../b", "/abs", "a//b", "./a", "a/.", "..", "a\\b", "a\x00b", "a\nb", "a/"):
        assert validate._files_fast({**header["files"], bad: {"size": 1, "sha256": "0" * 64}}) is None, bad
    for entry in ({"size": 1.0, "sha256": "0" * 64}, {"size": True, "sha256": "0" * 64}, {"size": -1, "sha256": "0" * 64},
                  {"size": 1, "sha256": "0" * 63 + "A"}, {"size": 1, "sha256": "0" * 65}, {"size": 1},
                  {"size": 1, "sha256": "0" * 64, "x": 1}, [1, 2]):
        assert validate._files_fast({**header["files"], "z": entry}) is None, entry
    files = {**header["files"], "é\"q": {"size": 1, "sha256": "0" * 64}}  # not plain: json's encoder then
    m = validate._files_fast(files)
    assert m is not None and not m.plain and validate._digest_fast({**header, "files": files}, m) is None
    unsorted = dict(reversed(header["files"].items()))
    assert validate._digest_fast({**header, "files": unsorted}, validate._files_fast(unsorted)) is None


@pytest.mark.parametrize("path,match", [("signals/../x", "not a relative path"), ("a/b", "not a {size, sha256}")])
def test_unusual_manifest_entries_get_the_entry_by_entry_errors(tmp_path, path, match):
    store, _ = _store(tmp_path, "hdf5")
    hp = store / manifest.HEADER
    header = json.loads(hp.read_text())
    header["files"][path] = {"size": 1, "sha256": "0" * 64} if ".." in path else "nope"
    header["header_sha256"] = validate.header_digest(header)
    hp.write_text(json.dumps(header))
    with pytest.raises(CorruptStoreError, match=match):
        eegbench.open(store)


def test_integral_float_sizes_still_accepted(tmp_path):
    """The entry-by-entry path accepts what it accepted before (a size written as 123.0)."""
    store, ds = _store(tmp_path, "parquet")
    hp = store / manifest.HEADER
    header = json.loads(hp.read_text())
    rel = next(iter(header["files"]))
    header["files"][rel]["size"] = float(header["files"][rel]["size"])
    header["header_sha256"] = validate.header_digest(header)
    hp.write_text(json.dumps(header))
    np.testing.assert_array_equal(eegbench.open(store)[1].get_data(), ds[1].get_data())


def test_lazily_opened_dataset_pickles_and_checks_in_the_child(tmp_path):
    import pickle

    store, ds = _store(tmp_path, "zarr")
    opened = eegbench.open(store)
    rel = _signal_file(store, "rec-00001")
    os.truncate(store / rel, 10)
    clone = pickle.loads(pickle.dumps(opened))
    np.testing.assert_array_equal(clone[0].get_data(), ds[0].get_data())
    with pytest.raises(CorruptStoreError, match="has 10 bytes"):
        clone[1]


def test_every_recording_built_in_a_loop_matches_the_saved_one(tmp_path):
    """Past a few hundred column conversions of one-recording slices, a table's columns are
    converted whole and sliced (eegbench._frame): the recordings must not change at the switch."""
    from eegbench._frame import _SLICES_BEFORE_WHOLE

    n = 3 * _SLICES_BEFORE_WHOLE // 13 + 5  # well past the switch (13 columns per recording row)
    recs = []
    for i in range(n):
        rec = make_recording(2, 50 + i, seed=i)
        rec = eegbench.Recording(rec.get_data(), rec.sfreq, [f"c{i}a", f"c{i}b"], name=f"r{i}",
                                 description={"subject": f"s{i}", "age": i})
        rec.annotations = eegbench.Annotations(np.array([0.1 * i]), np.array([0.2]), [f"ev{i}"])
        recs.append(rec)
    path = eegbench.save(eegbench.Dataset(recs), tmp_path / "s", format="parquet")
    opened = eegbench.open(path)
    for i, rec in enumerate(opened):
        assert (rec.name, rec.ch_names, rec.n_times, rec.description) == (f"r{i}", [f"c{i}a", f"c{i}b"], 50 + i,
                                                                             {"subject": f"s{i}", "age": i})
        assert list(rec.annotations.description) == [f"ev{i}"]
    np.testing.assert_array_equal(opened[n - 1].get_data(), recs[n - 1].get_data())
