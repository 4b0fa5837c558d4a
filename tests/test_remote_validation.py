"""Crafted stores served over HTTP get the same typed errors as on disk: remote open goes through
:mod:`eegbench.validate` (header digest, table rows, storage descriptions against the manifest),
and ``tables.pack`` (every table in one object) keeps the tables' SHA-256 seal."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

import eegbench
from benchmarks._servers import RangeHTTPServer
from conftest import make_recording
from eegbench import manifest, pack, validate
from eegbench.errors import CorruptStoreError
from eegbench.formats import get_backend
from eegbench.model import Dataset
from eegbench.tables import frame_from_parquet, frame_to_parquet

FORMATS = ["hdf5", "zarr", "parquet"]


def reseal(store, name, edit) -> None:
    """Edit table ``name`` and recompute every seal (table file, pack, tables_sha256, manifest,
    header digest): a store only validation can refuse."""
    path = store / manifest.HEADER
    header = json.loads(path.read_text())
    backend = get_backend(header["format"])
    tables = {n: backend.read_table(store, n) for n in pack.TABLE_NAMES}  # the pack is built from them
    data = frame_to_parquet(edit(frame_from_parquet(tables[name])))
    backend.write_table(store, name, data)
    tables[name] = data
    blob, header[pack.FIELD] = pack.build({k: v for k, v in tables.items() if v is not None})
    (store / pack.PACK).write_bytes(blob)
    header["tables_sha256"][name] = hashlib.sha256(data).hexdigest()
    header["files"] = manifest.build(store, fsync=False)
    header["header_sha256"] = validate.header_digest(header)
    path.write_text(json.dumps(header))


def _set(column, value, row=0):
    def edit(frame):
        frame = frame.copy()
        col = frame[column].astype(object)
        col.iloc[row] = value
        frame[column] = col
        return frame
    return edit


def _storage_escape(frame):
    frame = frame.copy()
    storage = json.loads(frame["storage"].iloc[0])
    for k in ("file", "array"):
        if k in storage:
            storage[k] = "../../outside"
    if "shard_path" in storage:
        storage["shard_path"] = "../../outside/{shard}"
    if "files" in storage:
        storage["files"] = {k: "../../outside" for k in storage["files"]}
    col = frame["storage"].astype(object)
    col.iloc[0] = json.dumps(storage)
    frame["storage"] = col
    return frame


CRAFTS = {
    "negative-chunk": ("recordings", _set("chunk_samples", -5)),
    "huge-n-times": ("recordings", _set("n_times", 1 << 50)),
    "channel-index-out-of-range": ("channels", _set("index", 99)),
    "storage-path-escape": ("recordings", _storage_escape),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    ds = Dataset([make_recording(4, 600, 100.0, seed=s, name=f"r{s}") for s in range(2)])
    good = {fmt: eegbench.save(ds, root / f"good-{fmt}", fmt, compression="blosc-zstd", chunk_seconds=1.0)
            for fmt in FORMATS}
    for fmt in FORMATS:
        for name, (table, edit) in CRAFTS.items():
            shutil.copytree(good[fmt], root / f"{name}-{fmt}")
            reseal(root / f"{name}-{fmt}", table, edit)
    with RangeHTTPServer(root) as server:
        yield root, server


def _first_read(path):
    ds = eegbench.open(path)
    return ds[0].get_data(start=0, stop=10)  # the recording is built (storage checked) on first access


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("craft", sorted(CRAFTS))
def test_crafted_remote_store_gets_the_local_typed_error(served, craft, fmt):
    root, server = served
    with pytest.raises(CorruptStoreError) as local_err:
        _first_read(root / f"{craft}-{fmt}")
    with pytest.raises(CorruptStoreError) as remote_err:
        _first_read(f"{server.url}/{craft}-{fmt}")
    # the same check fires (its field is named in both messages)
    field = str(local_err.value).split("field ", 1)[-1].split(":", 1)[0]
    assert field in str(remote_err.value), (str(local_err.value), str(remote_err.value))


@pytest.mark.parametrize("fmt", FORMATS)
def test_resealed_good_store_still_opens(served, tmp_path, fmt):
    """The reseal helper itself makes valid stores (so the errors above come from validation)."""
    root, server = served
    store = tmp_path / "s"
    shutil.copytree(root / f"good-{fmt}", store)
    reseal(store, "recordings", lambda f: f)
    a, b = eegbench.open(store), eegbench.open(root / f"good-{fmt}")
    assert np.array_equal(a[1].get_data(), b[1].get_data())


def test_pack_damage_is_typed_remote_and_local(served, tmp_path):
    root, server = served
    store = root / "flipped-pack"
    shutil.copytree(root / "good-zarr", store)
    blob = bytearray((store / pack.PACK).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (store / pack.PACK).write_bytes(bytes(blob))  # same size: only the tables' SHA-256 seal can tell
    for where in (store, f"{server.url}/flipped-pack"):
        with pytest.raises(CorruptStoreError, match="SHA-256"):
            eegbench.open(where)


def test_pack_entry_out_of_bounds_is_typed(served, tmp_path):
    root, server = served
    store = root / "pack-bounds"
    shutil.copytree(root / "good-parquet", store)
    path = store / manifest.HEADER
    header = json.loads(path.read_text())
    header[pack.FIELD]["tables"]["channels"] = [0, header["files"][pack.PACK]["size"] + 1]
    header["header_sha256"] = validate.header_digest(header)
    path.write_text(json.dumps(header))
    for where in (store, f"{server.url}/pack-bounds"):
        with pytest.raises(CorruptStoreError, match="tables_pack"):
            eegbench.open(where)


def test_local_open_reads_tables_from_the_pack_only(served, tmp_path):
    """One read for every table: the per-format table files are for other tools (and verify)."""
    root, _server = served
    store = tmp_path / "s"
    shutil.copytree(root / "good-parquet", store)
    want = eegbench.open(store).description
    for table in (store / "tables").iterdir():
        table.write_bytes(b"\0" * table.stat().st_size)  # damaged (verify reports it), never read by open
    assert eegbench.open(store).description.equals(want)
    with pytest.raises(CorruptStoreError):
        eegbench.verify(store)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pickled_datasets_keep_every_table_local_and_remote(served, fmt):
    """Worker processes get pickled lazily-built datasets: the per-recording slices of the tables
    (annotations, history) must survive pickling, for local and remote stores alike."""
    import pickle

    root, server = served
    for where in (root / f"good-{fmt}", f"{server.url}/good-{fmt}"):
        ds = eegbench.open(where)
        again = pickle.loads(pickle.dumps(ds))
        for a, b in zip(again, ds):
            assert a.annotations.description == b.annotations.description and a.history == b.history
            assert np.array_equal(a.get_data(start=5, stop=50), b.get_data(start=5, stop=50))
