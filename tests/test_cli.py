"""The command line as a user runs it: convert real recordings and BIDS to every format and back."""

from __future__ import annotations

import subprocess
import sys

import mne
import numpy as np
import pytest

import eegbench
from conftest import FORMATS, real_data_dir
from eegbench.cli import main


def _bitwise(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.asarray(a, np.float32).view(np.uint32), np.asarray(b, np.float32).view(np.uint32))


@pytest.mark.parametrize("command", [[], ["convert"], ["info"], ["verify"], ["synthetic"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: eegbench" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "eegbench.cli", "convert", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--chunk-seconds" in out.stdout and "examples:" in out.stdout


@pytest.fixture(scope="module")
def real_sources():
    root = real_data_dir()
    edfs = sorted((root / "eegbci_S001").glob("*.edf"))
    return [*edfs, root / "brainvision" / "test.vhdr", root / "fif" / "data_resting_EO_200Hz_raw.fif"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_convert_real_recordings_to_every_format_and_back(fmt, real_sources, tmp_path, capsys):
    dest = tmp_path / f"real.{fmt}"
    assert main(["convert", *map(str, real_sources), str(dest), "--format", fmt, "--jobs", "2", "-q"]) == 0
    other = FORMATS[(FORMATS.index(fmt) + 1) % 3]
    again = tmp_path / f"again.{other}"
    assert main(["convert", str(dest), str(again), "--format", other, "--compression", "zstd", "-q"]) == 0
    for path in (dest, again):
        ds = eegbench.open(path)
        assert len(ds) == len(real_sources)
        for rec, src in zip(ds, real_sources):
            raw = mne.io.read_raw(src, preload=True, verbose="error")
            _bitwise(rec.get_data(), raw.get_data())
            assert rec.ch_names == raw.ch_names and rec.sfreq == raw.info["sfreq"]
            assert rec.meas_date == raw.info["meas_date"]
            np.testing.assert_array_equal(rec.annotations.onset, raw.annotations.onset - raw.first_time)
            np.testing.assert_array_equal(rec.annotations.duration, raw.annotations.duration)
            assert rec.annotations.description == list(raw.annotations.description)
    assert main(["info", str(dest)]) == 0
    out = capsys.readouterr().out
    for field in ("format", "codec", "chunking", "recordings", "compression ratio", "schema version", "files"):
        assert field in out
    assert main(["verify", str(again)]) == 0


def test_best_configuration_compresses_eegbci_at_least_4x(real_sources, tmp_path):
    """Acceptance: lossless >= 4x vs float32 on EEGBCI with integer counts + delta + blosc-zstd."""
    edfs = [p for p in real_sources if p.suffix == ".edf"]
    dest = tmp_path / "best"
    assert main(["convert", *map(str, edfs), str(dest), "--format", "zarr", "--compression", "blosc-zstd", "--delta", "-q"]) == 0
    summary = eegbench.info(dest)
    assert summary["stored_dtypes"] == ["int16"] and "+delta" in summary["codec"]
    assert summary["compression_ratio"] >= 4.0
    raw = mne.io.read_raw_edf(edfs[5], preload=True, verbose="error")
    _bitwise(eegbench.open(dest)[5].get_data(), raw.get_data())


def test_convert_bids_keeps_entities(bids_root, tmp_path):
    dest = tmp_path / "bids.zarr"
    assert main(["convert", str(bids_root), str(dest), "--format", "zarr", "-q"]) == 0
    desc = eegbench.open(dest).description
    assert desc["subject"].tolist() == ["001", "001", "002"]
    assert set(desc["task"]) == {"motor"} and len(set(desc["run"])) == 3
    assert len(eegbench.open(dest).select(subject="001")) == 2


def test_cli_errors_are_clear_and_leave_nothing(real_sources, tmp_path, capsys):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       not an edf header")
    dest = tmp_path / "out"
    assert main(["convert", str(bad), str(real_sources[0]), str(dest), "--format", "hdf5", "-q"]) == 1
    err = capsys.readouterr().err
    assert "broken.edf" in err and "error" in err
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.edf"]
    with pytest.warns(UserWarning, match="broken.edf"):
        assert main(["convert", str(bad), str(real_sources[0]), str(dest), "--format", "hdf5", "-q",
                     "--skip-errors"]) == 0
    assert len(eegbench.open(dest)) == 1
    assert main(["convert", str(real_sources[0]), str(dest), "--format", "hdf5", "-q"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.edf"), str(tmp_path / "o2"), "--format", "zarr", "-q"]) == 1
    assert "missing.edf" in capsys.readouterr().err
    assert main(["info", str(tmp_path)]) == 1
    assert "not an eegbench store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(real_sources[0]), str(tmp_path / "o3"), "--format", "zarr", "--compression", "zip"])
    assert exc.value.code == 2


def test_synthetic_command(tmp_path, capsys):
    dest = tmp_path / "syn"
    assert main(["synthetic", str(dest), "--profile", "smoke", "--format", "zarr", "-q"]) == 0
    ds = eegbench.open(dest)
    assert len(ds) >= 1 and ds[0].quantization is not None
