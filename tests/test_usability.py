"""Issue #8 defects: each one as it was reported, now behaving as documented."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import eegbench
from conftest import FORMATS, make_recording, real_data_dir
from eegbench import errors
from eegbench.cli import cli_message, main
from eegbench.model import ArraySource, Recording
from eegbench.quantization import Quantization


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


# --- views of recordings without stored counts ---------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_save_slice_and_pick_of_file_backed_recording(tmp_path, fmt):
    rec = eegbench.from_files(real_data_dir() / "eegbci_S001" / "S001R03.edf", sha256=False)[0]
    view = rec.slice(0, 10).pick(["C3..", "C4.."])
    path = eegbench.save(view, tmp_path / f"v.{fmt}", compression="zstd")
    back = eegbench.open(path)[0]
    assert back.quantization is not None  # still stored as counts
    np.testing.assert_array_equal(_bits(back.get_data()), _bits(view.get_data()))


@pytest.mark.parametrize("kind", ["array", "mne"])
def test_save_view_of_array_and_mne_recordings(tmp_path, kind):
    rec = make_recording(4, 600)
    if kind == "mne":
        rec = eegbench.from_mne(rec.to_mne())[0]
    view = rec.crop_samples(100, 500).pick([3, 1])
    path = eegbench.save(view, tmp_path / "v.zarr", compression="blosc-lz4")
    np.testing.assert_array_equal(_bits(eegbench.open(path)[0].get_data()), _bits(view.get_data()))


# --- integer=True: counts or an error ------------------------------------------------------------
def test_integer_true_off_grid_raises(tmp_path):
    rec = make_recording(3, 200)
    q = rec.quantization
    data = rec.get_data()
    data[1, 7] = np.nextafter(data[1, 7], np.float32(1))  # one sample off the grid
    bad = Recording(ArraySource(data, q), 100.0, rec.ch_names)
    with pytest.raises(errors.IntegerStorageError, match="integer='auto'"):
        eegbench.save(bad, tmp_path / "x.zarr", integer=True)
    assert not (tmp_path / "x.zarr").exists()
    eegbench.save(bad, tmp_path / "y.zarr", integer="auto")  # auto: float32, exact
    back = eegbench.open(tmp_path / "y.zarr")[0]
    assert back.quantization is None
    np.testing.assert_array_equal(_bits(back.get_data()), _bits(data))


def test_int32_counts_near_the_limits_are_stored_as_counts(tmp_path):
    counts = np.array([[2**31 - 1, -(2**31), 2**31 - 2, 0, 12345, -(2**31) + 1]] * 2, dtype=np.int32)
    q = Quantization(np.full(2, 0.03125), np.zeros(2), np.full(2, 1e-6), "int32")
    rec = Recording(ArraySource(q.reconstruct(counts), q), 10.0, ["a", "b"])
    path = eegbench.save(rec, tmp_path / "x.zarr", integer=True)
    back = eegbench.open(path)[0]
    assert back.quantization is not None and back.quantization.dtype == "int32"
    np.testing.assert_array_equal(_bits(back.get_data()), _bits(rec.get_data()))


# --- pickling a read zarr store -------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["zstd", "gzip", "blosc-lz4", "none"])
def test_zarr_store_pickles_after_reading(tmp_path, compression):
    path = eegbench.save(make_recording(4, 500), tmp_path / "x.zarr", compression=compression)
    ds = eegbench.open(path)
    expected = ds[0].get_data()  # decode plans built, handles open
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[0].get_data(), expected)


def test_zarr_zstd_store_in_joblib_workers(tmp_path):
    from joblib import Parallel, delayed

    path = eegbench.save(make_recording(4, 500), tmp_path / "x.zarr", compression="zstd")
    ds = eegbench.open(path)
    expected = ds[0].get_data(start=0, stop=100)
    out = Parallel(n_jobs=2, backend="loky")(delayed(lambda r: r.get_data(start=0, stop=100))(ds[0]) for _ in range(2))
    for x in out:
        np.testing.assert_array_equal(x, expected)


# --- HDF5 file already open in this process --------------------------------------------------------
def test_hdf5_open_elsewhere_with_locking_false_is_not_corrupt(tmp_path):
    path = eegbench.save(make_recording(4, 500), tmp_path / "x.h5")
    expected = make_recording(4, 500).get_data()
    with h5py.File(path / "signals" / "000" / "rec-00000.h5", "r", locking=False), \
            h5py.File(path / "tables.h5", "r", locking=False):
        np.testing.assert_array_equal(eegbench.open(path)[0].get_data(), expected)
        eegbench.verify(path)


# --- compression=None and the default codec --------------------------------------------------------
def test_compression_none_means_uncompressed_and_default_is_named(tmp_path):
    rec = make_recording(4, 500)
    eegbench.save(rec, tmp_path / "a.zarr", compression=None)
    eegbench.save(rec, tmp_path / "b.zarr")
    eegbench.save(rec, tmp_path / "c.zarr", compression="default")
    assert eegbench.info(tmp_path / "a.zarr")["codec"] == "none"
    assert eegbench.info(tmp_path / "b.zarr")["codec"] == eegbench.info(tmp_path / "c.zarr")["codec"] \
        == f"{eegbench.codecs.DEFAULT_COMPRESSION}-5"


# --- format from the name -------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "fmt"), [("a.zarr", "zarr"), ("a.h5", "hdf5"), ("a.hdf5", "hdf5"),
                                           ("a.parquet", "parquet"), ("plain", "zarr")])
def test_format_inferred_from_suffix(tmp_path, name, fmt):
    eegbench.save(make_recording(2, 100), tmp_path / name)
    assert eegbench.info(tmp_path / name)["format"] == fmt


def test_store_named_for_another_format_is_an_error(tmp_path):
    with pytest.raises(errors.FormatMismatchError, match=r"\.parquet"):
        eegbench.save(make_recording(2, 100), tmp_path / "a.zarr", format="parquet")
    assert not (tmp_path / "a.zarr").exists()
    eegbench.save(make_recording(2, 100), tmp_path / "a.store", format="parquet")  # neutral name: fine


def test_cli_synthetic_and_convert_follow_the_name(tmp_path, capsys):
    assert main(["synthetic", str(tmp_path / "s.zarr"), "-q"]) == 0
    assert eegbench.info(tmp_path / "s.zarr")["format"] == "zarr"
    assert main(["synthetic", str(tmp_path / "t.zarr"), "--format", "parquet", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--format parquet" in err and "format=" not in err
    assert not (tmp_path / "t.zarr").exists()
    assert main(["convert", str(tmp_path / "s.zarr"), str(tmp_path / "c.h5"), "-q"]) == 0
    assert eegbench.info(tmp_path / "c.h5")["format"] == "hdf5"


# --- CLI in CLI terms -------------------------------------------------------------------------------
def test_cli_messages_name_flags(tmp_path, capsys):
    assert main(["synthetic", str(tmp_path / "s.zarr"), "-q"]) == 0
    assert main(["synthetic", str(tmp_path / "s.zarr"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert cli_message("pass skip_errors=True (CLI: --skip-errors) to skip it") == "pass --skip-errors to skip it"


def test_cli_suggests_commands_and_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convrt", "a", "b"])
    assert exc.value.code == 2
    assert "did you mean 'convert'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["info", "x", "--jsn"])
    err = capsys.readouterr().err
    assert "did you mean --json?" in err
    assert err.startswith("usage: eegbench info")  # the subcommand's usage, not the top level's


def test_cli_closed_pipe_ends_quietly(tmp_path):
    assert main(["synthetic", str(tmp_path / "s.zarr"), "-q"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "eegbench.cli", "info", str(tmp_path / "s.zarr"), "--recordings"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1])
    proc.stdout.close()  # like `| head` that already left
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_brainvision_data_file_gets_a_hint(capsys):
    folder = real_data_dir() / "brainvision"
    with pytest.raises(errors.SourceReadError, match=r"test\.vhdr"):
        eegbench.from_files(folder / "test.eeg")
    assert main(["convert", str(folder / "test.vmrk"), "/nonexistent/x.zarr"]) == 1
    assert "test.vhdr" in capsys.readouterr().err


# --- synthetic data converts to MNE without warnings ------------------------------------------------
def test_synthetic_annotations_stay_inside_the_data():
    ds = eegbench.synthetic.make_dataset(n_recordings=3, n_channels=2, sfreq=100, duration_s=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rec in ds:
            assert np.all(rec.annotations.onset + rec.annotations.duration <= rec.duration + 1e-9)
            rec.to_mne()
