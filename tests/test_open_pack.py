"""``tables.pack`` in its column encoding (see :mod:`eegbench.pack`): the tables open reads are
the ones the format's own table files hold, a damaged or crafted pack is a typed error, and a
store written with the earlier pack (the Parquet bytes concatenated) still opens."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eegbench
from conftest import FORMATS, save_windowed_stores
from eegbench import manifest, pack, validate
from eegbench._frame import Table
from eegbench.errors import CorruptStoreError
from eegbench.formats import get_backend
from eegbench.tables import frame_to_parquet


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[eegbench.Dataset, dict[str, Path]]:
    return save_windowed_stores(tmp_path_factory.mktemp("openpack"), seed=3, compression="blosc-zstd")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _header(store: Path) -> dict:
    return json.loads((store / manifest.HEADER).read_text())


def _reseal(store: Path, header: dict) -> None:
    header["files"] = manifest.build(store, fsync=False)
    header["header_sha256"] = validate.header_digest(header)
    (store / manifest.HEADER).write_text(json.dumps(header))


def _assert_same(a: eegbench.Dataset, b: eegbench.Dataset) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert (ra.name, ra.ch_names, ra.ch_types, ra.units, ra.sfreq) == (rb.name, rb.ch_names, rb.ch_types,
                                                                           rb.units, rb.sfreq)
        np.testing.assert_array_equal(ra.get_data(), rb.get_data())
        np.testing.assert_array_equal(ra.annotations.onset, rb.annotations.onset)
        assert list(ra.annotations.description) == list(rb.annotations.description)
        assert ra.history == rb.history and ra.description == rb.description
    pd.testing.assert_frame_equal(a.description, b.description)
    pd.testing.assert_frame_equal(a.windows, b.windows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_packed_table_equals_the_format_table(saved, fmt):
    """The pack's tables hold exactly the values the format's Parquet tables give."""
    _ds, stores = saved
    store = stores[fmt]
    header = _header(store)
    assert header[pack.FIELD]["encoding"] == pack.ENCODING
    spans = pack.entries(header, {k: v["size"] for k, v in header["files"].items()}, store)
    packed = pack.split((store / pack.PACK).read_bytes(), spans, header["tables_sha256"], store, header)
    backend = get_backend(fmt)
    for name in pack.TABLE_NAMES:
        data = backend.read_table(store, name)
        if data is None:
            assert packed[name] is None
            continue
        ours, ref = packed[name], Table(data)
        assert ours.columns == ref.columns and len(ours) == len(ref), name
        for col in ref.columns:
            a, b = ours[col].to_numpy(), ref[col].to_numpy()
            assert a.dtype == b.dtype, (name, col)
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b)
            else:
                assert a.tolist() == b.tolist(), (name, col)


def test_encoding_round_trips_nulls_and_falls_back_to_parquet_for_booleans():
    frame = pd.DataFrame({"i": [1, None, 3], "f": [0.5, np.nan, -np.inf], "s": ["a", None, "ü\u20ac"],
                          "j": [{"x": 1}, [1, 2], None], "u": np.array([1, 2, 3], dtype=np.uint16)})
    data = frame_to_parquet(frame)
    blob, entry = pack.build({"channels": data})
    t = pack.split(blob, pack.entries({pack.FIELD: entry}, {pack.PACK: len(blob)}, "x"), {"channels": "sealed"},
                   "x", {pack.FIELD: entry})["channels"]
    ref = Table(data)
    assert t.columns == ref.columns
    for col in ref.columns:
        a, b = t[col].to_numpy(), ref[col].to_numpy()
        assert a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else a.tolist() == b.tolist()
    assert t._json == ref._json == ["j"]
    booleans = frame_to_parquet(pd.DataFrame({"b": [True, False]}))
    blob, entry = pack.build({"channels": booleans})
    n_head = int.from_bytes(blob[:4], "little")
    assert json.loads(blob[4:4 + n_head])["kind"] == "parquet"  # kept as Parquet: still the same values
    t = pack.decode(blob, 0, len(blob), "x")
    assert t["b"].tolist() == [True, False]


def test_pickled_description_keeps_its_row_count(saved):
    _ds, stores = saved
    ds = eegbench.open(stores["zarr"])
    desc = ds._description
    assert isinstance(desc, Table) and len(desc) == 3 and desc._arrow is None  # not parsed for its length
    again = pickle.loads(pickle.dumps(desc))
    assert len(again) == 3
    pd.testing.assert_frame_equal(again.to_pandas(), ds.description)


@pytest.mark.parametrize("fmt", FORMATS)
def test_store_with_the_earlier_parquet_pack_still_opens(saved, tmp_path, fmt):
    """A store written before the column encoding: ``tables.pack`` = the tables' Parquet bytes
    concatenated, no ``encoding`` in the header. It opens (through pyarrow) with the same data."""
    ds, stores = saved
    store = _copy(stores[fmt], tmp_path / "old")
    header = _header(store)
    backend = get_backend(fmt)
    parts, tables, offset = [], {}, 0
    for name in header[pack.FIELD]["tables"]:
        data = backend.read_table(store, name)
        tables[name] = [offset, len(data)]
        parts.append(data)
        offset += len(data)
    (store / pack.PACK).write_bytes(b"".join(parts))
    header[pack.FIELD] = {"path": pack.PACK, "tables": tables}
    _reseal(store, header)
    _assert_same(eegbench.open(store), eegbench.open(stores[fmt]))
    _assert_same(eegbench.open(store), ds)
    eegbench.verify(store)
    # and its slices are still checked against tables_sha256
    blob = bytearray((store / pack.PACK).read_bytes())
    blob[tables["channels"][0] + 5] ^= 1
    (store / pack.PACK).write_bytes(bytes(blob))
    _reseal(store, header)
    with pytest.raises(CorruptStoreError, match="metadata table channels does not match"):
        eegbench.open(store)


@pytest.mark.parametrize("fmt", FORMATS)
def test_flipped_byte_in_the_pack_is_corrupt(saved, tmp_path, fmt):
    _ds, stores = saved
    store = _copy(stores[fmt], tmp_path / "flip")
    blob = bytearray((store / pack.PACK).read_bytes())
    blob[len(blob) // 2] ^= 0x10
    (store / pack.PACK).write_bytes(bytes(blob))
    with pytest.raises(CorruptStoreError, match="tables.pack does not match the SHA-256"):
        eegbench.open(store)
    with pytest.raises(CorruptStoreError):
        eegbench.verify(store)


def _craft(store: Path, edit_meta) -> None:
    """Rewrite the recordings table's JSON head in the pack with every seal recomputed."""
    header = _header(store)
    blob = (store / pack.PACK).read_bytes()
    off, size = header[pack.FIELD]["tables"]["recordings"]
    n_head = int.from_bytes(blob[off:off + 4], "little")
    meta = json.loads(blob[off + 4:off + 4 + n_head])
    edit_meta(meta)
    head = json.dumps(meta).encode()
    table = len(head).to_bytes(4, "little") + head + blob[off + 4 + n_head:off + size]
    new = blob[:off] + table + blob[off + size:]
    shift = len(table) - size
    for pos in header[pack.FIELD]["tables"].values():
        if pos[0] > off:
            pos[0] += shift
    header[pack.FIELD]["tables"]["recordings"] = [off, len(table)]
    header[pack.FIELD]["sha256"] = hashlib.sha256(new).hexdigest()
    (store / pack.PACK).write_bytes(new)
    _reseal(store, header)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["columns"][1].__setitem__(1, "<f16"), "recordings.*column"),
    (lambda m: m["columns"][2].__setitem__(1, ">f8"), "recordings.*column"),
    (lambda m: m["columns"][0].__setitem__(3, 10**9), "recordings.*column entry"),
    (lambda m: m.__setitem__("n_rows", 7), "recordings.*column"),
    (lambda m: m.__setitem__("kind", "pickle"), "recordings.*kind"),
    (lambda m: m.__setitem__("n_rows", -1), "recordings.*n_rows"),
])
def test_crafted_pack_with_recomputed_seals_is_a_typed_error(saved, tmp_path, edit, match):
    _ds, stores = saved
    store = _copy(stores["parquet"], tmp_path / "craft")
    _craft(store, edit)
    with pytest.raises(CorruptStoreError, match=match):
        eegbench.open(store)


def test_unknown_pack_encoding_says_upgrade_or_reconvert(saved, tmp_path):
    _ds, stores = saved
    store = _copy(stores["hdf5"], tmp_path / "enc")
    header = _header(store)
    header[pack.FIELD]["encoding"] = "columns-99"
    _reseal(store, header)
    with pytest.raises(CorruptStoreError, match="upgrade eegbench or re-convert"):
        eegbench.open(store)


def test_stored_window_index_that_does_not_fit_is_corrupt_when_read(saved, tmp_path):
    """Open does not parse the window table (no pyarrow); the check runs when it is first read."""
    _ds, stores = saved
    store = _copy(stores["zarr"], tmp_path / "win")
    header = _header(store)
    backend = get_backend("zarr")
    tables = {n: backend.read_table(store, n) for n in pack.TABLE_NAMES}
    tables["windows"] = frame_to_parquet(pd.DataFrame({"recording": [0, 9], "start": [0, 64], "stop": [64, 128]}))
    backend.write_table(store, "windows", tables["windows"])
    blob, header[pack.FIELD] = pack.build({k: v for k, v in tables.items() if v is not None})
    (store / pack.PACK).write_bytes(blob)
    header["tables_sha256"]["windows"] = hashlib.sha256(tables["windows"]).hexdigest()
    _reseal(store, header)
    ds = eegbench.open(store)
    assert len(ds) == 3
    with pytest.raises(CorruptStoreError, match="window index refers to a recording"):
        _ = ds.windows
