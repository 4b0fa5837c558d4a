"""``eegbench verify`` compares ``tables.pack`` (what ``open`` reads) with the format's own metadata
tables (what pyarrow, h5py and zarr read), and a partial copy opens from the pack too (issue #9)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import FORMATS, save_windowed_stores
from eegbench import manifest, pack, validate
from eegbench.errors import CorruptStoreError, PackMismatchError
from eegbench.formats import get_backend
from eegbench.layout import files_by_recording
from eegbench.tables import frame_from_parquet, frame_to_parquet


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[eegbench.Dataset, dict[str, Path]]:
    return save_windowed_stores(tmp_path_factory.mktemp("verifypack"), seed=5)


def _header(store: Path) -> dict:
    return json.loads((store / manifest.HEADER).read_text())


def _repack(store: Path, name: str, edit) -> None:
    """Rebuild ``tables.pack`` with table ``name`` edited (the format's own tables untouched) and
    every seal recomputed: a store that opens, but whose pack disagrees with its tables."""
    header = _header(store)
    backend = get_backend(header["format"])
    tables = {n: backend.read_table(store, n) for n in pack.TABLE_NAMES}
    tables[name] = frame_to_parquet(edit(frame_from_parquet(tables[name])))
    blob, header[pack.FIELD] = pack.build({k: v for k, v in tables.items() if v is not None})
    (store / pack.PACK).write_bytes(blob)
    header["files"] = manifest.build(store, fsync=False)
    header["header_sha256"] = validate.header_digest(header)
    (store / manifest.HEADER).write_text(json.dumps(header))


@pytest.mark.parametrize("fmt", FORMATS)
def test_verify_passes_an_intact_store(saved, fmt):
    _ds, stores = saved
    eegbench.verify(stores[fmt])


def _rename_first_channel(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, "name"] = "Cz-crafted"
    return frame


def _shift_onset(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[0], "onset"] = frame["onset"].iloc[0] + 0.5
    return frame


def _drop_window(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:1]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name, edit, what", [
    ("channels", _rename_first_channel, "column 'name' differs"),
    ("annotations", _shift_onset, "column 'onset' differs"),
    ("windows", _drop_window, "1 rows against 2"),
])
def test_verify_reports_a_pack_that_disagrees_with_the_tables(saved, tmp_path, fmt, name, edit, what):
    _ds, stores = saved
    store = Path(shutil.copytree(stores[fmt], tmp_path / "crafted"))
    _repack(store, name, edit)
    eegbench.open(store)  # every seal holds: open alone cannot tell
    with pytest.raises(PackMismatchError, match=f"tables.pack disagrees with the store's metadata table {name} "
                                                 f".*{what}") as err:
        eegbench.verify(store)
    assert isinstance(err.value, CorruptStoreError)


def test_verify_cli_reports_the_mismatch(saved, tmp_path, capsys):
    from eegbench.cli import main

    _ds, stores = saved
    store = Path(shutil.copytree(stores["zarr"], tmp_path / "cli"))
    _repack(store, "channels", _rename_first_channel)
    assert main(["verify", str(stores["zarr"])]) == 0
    assert main(["verify", str(store)]) != 0
    assert "tables.pack disagrees with the store's metadata table channels" in capsys.readouterr().err


def _partial_copy(full: Path, keys: list[str], dst: Path) -> Path:
    header = _header(full)
    all_keys = [f"rec-{i:05d}" for i in range(header["n_recordings"])]
    by_key, meta = files_by_recording(header["files"], all_keys, {})
    for rel in [*meta, *(r for k in keys for r in by_key[k]), manifest.HEADER]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full / rel, dst / rel)
    return dst


@pytest.mark.parametrize("fmt", FORMATS)
def test_partial_copy_opens_from_the_pack_without_pyarrow(saved, tmp_path, fmt):
    ds, stores = saved
    part = _partial_copy(stores[fmt], ["rec-00001"], tmp_path / "part")
    opened = eegbench.open(part, recordings=["rec-00001"])
    assert len(opened) == 1 and opened[0].ch_names == ds[1].ch_names
    np.testing.assert_array_equal(opened[0].get_data(), ds[1].get_data())
    probe = (f"import sys, eegbench\nds = eegbench.open({str(part)!r}, recordings=['rec-00001'])\n"
             "assert len(ds) == 1 and len(ds[0].ch_names) == 4 and len(ds._description) == 1\n"
             "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"  # (reading NumPy+Parquet samples parses its chunk index)


def test_partial_copy_keeps_description_and_windows(saved, tmp_path):
    ds, stores = saved
    part = _partial_copy(stores["hdf5"], ["rec-00000", "rec-00002"], tmp_path / "part")
    opened = eegbench.open(part, recordings=["rec-00002", "rec-00000"])
    full = eegbench.open(stores["hdf5"])
    pd.testing.assert_frame_equal(opened.description, full.description.iloc[[2, 0]].reset_index(drop=True))
    assert opened.windows["recording"].tolist() == [1, 0] and opened.windows["target"].tolist() == ["a", "b"]
    assert "2 windows" in repr(eegbench.open(part, recordings=["rec-00000", "rec-00002"]))


@pytest.mark.parametrize("fmt", ["zarr"])
def test_partial_copy_with_a_damaged_pack_is_corrupt(saved, tmp_path, fmt):
    _ds, stores = saved
    part = _partial_copy(stores[fmt], ["rec-00002"], tmp_path / "part")
    blob = bytearray((part / pack.PACK).read_bytes())
    blob[len(blob) // 3] ^= 0x04
    (part / pack.PACK).write_bytes(bytes(blob))
    with pytest.raises(CorruptStoreError, match="tables.pack does not match the SHA-256"):
        eegbench.open(part, recordings=["rec-00002"])
    with pytest.raises(CorruptStoreError, match="no recording with key"):
        eegbench.open(_partial_copy(stores[fmt], ["rec-00002"], tmp_path / "p2"), recordings=["rec-00009"])


def test_import_eegbench_defers_the_synthetic_generator():
    """``import eegbench`` (+ open) does not import the generator; ``eegbench.synthetic`` still works."""
    probe = ("import sys, eegbench\nbefore = 'eegbench.sources.synthetic' in sys.modules\n"
             "assert not {'shutil', 'bz2', 'lzma'} & set(sys.modules), 'import eegbench loaded shutil'\n"
             "ds = eegbench.synthetic.make_dataset(1, n_channels=2, sfreq=50.0, duration_s=1.0)\n"
             "print(before, len(ds), 'eegbench.sources.synthetic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "1", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        eegbench.nonexistent  # noqa: B018


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_taken_and_partial_datasets_pickle_with_their_unparsed_tables(saved, tmp_path, fmt):
    """A slice / take of an opened store (and a partial open) keeps its tables unparsed, and still
    pickles (DataLoader spawn workers) with the same description and windows."""
    import pickle

    _ds, stores = saved
    full = eegbench.open(stores[fmt])
    for sub, idx in [(full[1:3], [1, 2]), (full.take([2, 0]), [2, 0]),
                     (eegbench.open(_partial_copy(stores[fmt], ["rec-00002", "rec-00000"], tmp_path / "p"),
                                    recordings=["rec-00002", "rec-00000"]), [2, 0])]:
        clone = pickle.loads(pickle.dumps(sub))
        want = eegbench.open(stores[fmt]).description.iloc[idx].reset_index(drop=True)
        for d in (sub, clone):
            pd.testing.assert_frame_equal(d.description, want)
            remap = {old: new for new, old in enumerate(idx)}
            assert d.windows["recording"].tolist() == [remap[r] for r in (0, 2) if r in remap]
        np.testing.assert_array_equal(clone[0].get_data(), sub[0].get_data())


def test_a_window_index_that_does_not_fit_is_corrupt_through_take(saved, tmp_path):
    _ds, stores = saved
    store = Path(shutil.copytree(stores["zarr"], tmp_path / "win"))
    _repack(store, "windows", lambda f: f.assign(recording=[0, 9]))
    backend = get_backend("zarr")
    # the format's table too, so the store is consistent (verify passes) but its window index is not
    tables = {n: backend.read_table(store, n) for n in pack.TABLE_NAMES}
    bad = frame_to_parquet(frame_from_parquet(tables["windows"]).assign(recording=[0, 9]))
    backend.write_table(store, "windows", bad)
    header = _header(store)
    header["tables_sha256"]["windows"] = hashlib.sha256(bad).hexdigest()
    header["files"] = manifest.build(store, fsync=False)
    header["header_sha256"] = validate.header_digest(header)
    (store / manifest.HEADER).write_text(json.dumps(header))
    sub = eegbench.open(store)[0:2]
    with pytest.raises(CorruptStoreError, match="window index"):
        _ = sub.windows
