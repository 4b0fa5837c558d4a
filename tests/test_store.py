"""save/open across every format: lossless round trips, options, typed errors, atomic writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import FORMATS, assert_recordings_equal, make_recording, rich_dataset
from eegbench import Dataset
from eegbench.errors import (
    CorruptStoreError,
    EmptyDatasetError,
    NotAStoreError,
    OptionError,
    SchemaVersionError,
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
    UnsupportedCodecError,
)
from eegbench.formats import get_backend

CODECS = {
    "hdf5": [("none", None), ("gzip", 4), ("lzf", None), ("zstd", 3), ("blosc-zstd", 5), ("blosc-lz4", 1)],
    "zarr": [("none", None), ("gzip", 4), ("zstd", 3), ("blosc-zstd", 5), ("blosc-lz4", 1)],
    "parquet": [("none", None), ("gzip", 4), ("zstd", 3), ("blosc-zstd", 5), ("blosc-lz4", 1)],
}
CASES = [(f, c, lvl) for f in FORMATS for c, lvl in CODECS[f]]


def _no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".eegbench-" in p.name]


@pytest.mark.parametrize("fmt,compression,level", CASES)
def test_round_trip_every_format_and_codec(tmp_path, fmt, compression, level):
    ds = rich_dataset()
    path = eegbench.save(ds, tmp_path / "store", format=fmt, compression=compression, level=level,
                         chunk_seconds=0.37)
    back = eegbench.open(path)
    assert len(back) == len(ds)
    for a, b in zip(ds, back):
        assert_recordings_equal(a, b)
    pd.testing.assert_frame_equal(back.description, ds.description)
    pd.testing.assert_frame_equal(back.windows, ds.windows)
    assert back.attrs == ds.attrs
    # the quantized recording is stored as integer counts, the float one as float32
    summary = eegbench.info(path)
    expected = ["float32"] if compression == "none" else ["float32", "int16"]  # "none" keeps float32
    assert summary["format"] == fmt and summary["stored_dtypes"] == expected
    assert summary["heterogeneous"] and summary["n_windows"] == 3
    assert not _no_leftovers(tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_store_to_store_conversion_keeps_everything(tmp_path, fmt):
    ds = rich_dataset()
    first = eegbench.save(ds, tmp_path / "a", format="parquet", compression="zstd")
    other = FORMATS[(FORMATS.index(fmt) + 1) % 3]
    second = eegbench.save(eegbench.open(first), tmp_path / "b", format=other, jobs=2)
    for a, b in zip(ds, eegbench.open(second)):
        assert_recordings_equal(a, b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lazy_false_loads_everything(tmp_path, fmt):
    ds = rich_dataset()
    path = eegbench.save(ds, tmp_path / "s", format=fmt)
    loaded = eegbench.open(path, lazy=False)
    import shutil

    shutil.rmtree(path)
    for a, b in zip(ds, loaded):
        assert_recordings_equal(a, b)


def test_integer_storage_is_smaller_and_exact(tmp_path):
    rec = make_recording(16, 20000, sfreq=200.0)
    ints = eegbench.info(eegbench.save(rec, tmp_path / "i", format="parquet", compression="zstd"))
    floats = eegbench.info(eegbench.save(rec, tmp_path / "f", format="parquet", compression="zstd", integer=False))
    assert ints["stored_dtypes"] == ["int16"] and floats["stored_dtypes"] == ["float32"]
    assert ints["size_bytes"] < floats["size_bytes"]
    with pytest.raises(OptionError, match="integer=True"):
        eegbench.save(make_recording(2, 100, quantized=False), tmp_path / "x", format="zarr", integer=True)


def test_off_grid_samples_fall_back_to_float32(tmp_path):
    from eegbench.model import ArraySource

    rec = make_recording(4, 400)
    data = rec.get_data()
    data[2, 123] += np.float32(1e-9)  # one sample off the ADC grid
    bad = eegbench.Recording(ArraySource(data, quantization=rec.quantization), rec.sfreq, rec.ch_names)
    path = eegbench.save(bad, tmp_path / "s", format="zarr")
    assert eegbench.info(path)["stored_dtypes"] == ["float32"]
    np.testing.assert_array_equal(eegbench.open(path)[0].get_data(), data)


# --- bad input ------------------------------------------------------------------------------
def test_missing_path_and_not_a_store(tmp_path):
    with pytest.raises(StoreNotFoundError):
        eegbench.open(tmp_path / "nope")
    (tmp_path / "dir").mkdir()
    with pytest.raises(NotAStoreError, match="eegbench convert"):
        eegbench.open(tmp_path / "dir")
    (tmp_path / "file.h5").write_bytes(b"x")
    with pytest.raises(NotAStoreError):
        eegbench.open(tmp_path / "file.h5")


@pytest.mark.parametrize("kwargs,error", [
    ({"format": "netcdf"}, UnknownFormatError),
    ({"format": "zarr", "compression": "zip"}, UnsupportedCodecError),
    ({"format": "zarr", "compression": "lzf"}, UnsupportedCodecError),
    ({"format": "parquet", "compression": "zstd", "level": 99}, UnsupportedCodecError),
    ({"format": "hdf5", "compression": "gzip", "level": "high"}, UnsupportedCodecError),
    ({"format": "hdf5", "compression": "lzf", "level": 3}, UnsupportedCodecError),
    ({"format": "hdf5", "delta": True}, UnsupportedCodecError),
    ({"format": "zarr", "chunk_seconds": 0}, OptionError),
])
def test_bad_options_are_typed_errors_and_leave_nothing(tmp_path, kwargs, error):
    with pytest.raises(error):
        eegbench.save(make_recording(2, 100), tmp_path / "s", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_empty_dataset(tmp_path):
    with pytest.raises(EmptyDatasetError):
        eegbench.save(Dataset([]), tmp_path / "s", format="zarr")
    with pytest.raises(EmptyDatasetError):
        eegbench.save(make_recording(2, 0), tmp_path / "s", format="zarr")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_destination_needs_overwrite(tmp_path, fmt):
    path = eegbench.save(make_recording(2, 100, seed=1), tmp_path / "s", format=fmt)
    with pytest.raises(StoreExistsError, match="overwrite"):
        eegbench.save(make_recording(2, 100, seed=2), path, format=fmt)
    np.testing.assert_array_equal(eegbench.open(path)[0].get_data(), make_recording(2, 100, seed=1).get_data())
    eegbench.save(make_recording(2, 100, seed=2), path, format=fmt, overwrite=True)
    np.testing.assert_array_equal(eegbench.open(path)[0].get_data(), make_recording(2, 100, seed=2).get_data())
    assert not _no_leftovers(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    path = eegbench.save(make_recording(2, 100), tmp_path / "s", format="parquet")
    header = json.loads((path / "eegbench.json").read_text())
    header["schema_version"] = 999
    (path / "eegbench.json").write_text(json.dumps(header))
    with pytest.raises(SchemaVersionError, match="upgrade"):
        eegbench.open(path)


def _biggest_file(path: Path) -> tuple[str, int]:
    """The largest file of a store (its signals) per the manifest: relative path and size."""
    files = json.loads((path / "eegbench.json").read_text())["files"]
    biggest = max(files, key=lambda f: files[f]["size"])
    return biggest, files[biggest]["size"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file_is_corrupt_at_open(tmp_path, fmt):
    path = eegbench.save(make_recording(4, 5000), tmp_path / "s", format=fmt, compression="zstd")
    biggest, size = _biggest_file(path)
    with open(path / biggest, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(CorruptStoreError, match=biggest.split("/")[-1]):  # open, or the recording's first use
        eegbench.open(path)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_modified_byte_is_caught_by_verify_and_by_reads(tmp_path, fmt):
    path = eegbench.save(make_recording(4, 5000), tmp_path / "s", format=fmt, compression="blosc-zstd")
    biggest, size = _biggest_file(path)
    with open(path / biggest, "r+b") as fh:
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CorruptStoreError, match=biggest.split("/")[-1]):
        eegbench.verify(path)
    with pytest.raises(CorruptStoreError):
        eegbench.open(path, verify=True)
    ds = eegbench.open(path)  # sizes match: lazy open succeeds, the read must not return wrong data
    with pytest.raises(CorruptStoreError, match="rec-00000"):
        ds[0].get_data()


def test_unstorable_metadata_is_refused_before_writing(tmp_path):
    rec = make_recording(2, 100, description={"bad": object()})
    with pytest.raises(eegbench.errors.MetadataError):
        eegbench.save(rec, tmp_path / "s", format="zarr")
    assert list(tmp_path.iterdir()) == []


_KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, eegbench
    from eegbench.model import ArraySource
    class Slow(ArraySource):
        def read(self, start, stop, channels):
            print("writing", flush=True)
            import time; time.sleep(0.05)
            return super().read(start, stop, channels)
    rng = np.random.default_rng(0)
    recs = [eegbench.Recording(Slow(rng.standard_normal((8, 50_000)).astype("float32")), 100.0,
                               [f"c{i}" for i in range(8)]) for _ in range(200)]
    eegbench.save(eegbench.Dataset(recs), sys.argv[1], format=sys.argv[2], overwrite=True)
""")


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_killed_midway_leaves_old_store_or_nothing(tmp_path, fmt):
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT)
    target = tmp_path / "store"
    for existing in (False, True):
        if existing:
            eegbench.save(make_recording(2, 100), target, format=fmt)
        proc = subprocess.Popen([sys.executable, str(script), str(target), fmt], stdout=subprocess.PIPE,
                                cwd=Path(__file__).parent)
        for _ in range(3):  # wait until it is writing recordings
            assert proc.stdout.readline().startswith(b"writing")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if existing:
            np.testing.assert_array_equal(eegbench.open(target)[0].get_data(), make_recording(2, 100).get_data())
        else:
            assert not target.exists()
    # the next save removes the dead writer's temporary sibling
    eegbench.save(make_recording(2, 100), target, format=fmt, overwrite=True)
    assert not _no_leftovers(tmp_path)


def test_interrupt_during_save_cleans_up(tmp_path):
    from eegbench.model import ArraySource

    class Interrupting(ArraySource):
        def read(self, start, stop, channels):
            raise KeyboardInterrupt

    rec = eegbench.Recording(Interrupting(np.zeros((2, 100), np.float32)), 100.0, ["a", "b"])
    with pytest.raises(KeyboardInterrupt):
        eegbench.save(rec, tmp_path / "s", format="zarr")
    assert list(tmp_path.iterdir()) == []


def test_backend_registry():
    assert {"hdf5", "zarr", "parquet"} <= set(eegbench.available_formats())
    assert get_backend("h5").name == "hdf5" and get_backend("numpy").name == "parquet"


def test_no_pickle_in_any_store(tmp_path):
    for fmt in FORMATS:
        path = eegbench.save(rich_dataset(), tmp_path / fmt, format=fmt, compression="none")
        for file in path.rglob("*"):
            assert not file.name.endswith((".pkl", ".pickle"))
            if file.suffix == ".npy":
                np.load(file, allow_pickle=False)

