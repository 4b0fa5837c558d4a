"""Signal files are bound to their store and recording at read time (issue #7).

A whole signal file that is valid in itself -- swapped with another recording's, or copied from
another store with the same layout -- must be a CorruptStoreError on the first read of that
recording, in every format and codec, and an untouched store must read bitwise equal. The check
costs no I/O per window: HDF5 compares the CRC32C of /chunk_index's stored bytes with the sealed
``index_at``, Zarr compares the tag stored just before each shard's index (a digest of the shard's
contents + its number) with the sealed
``shard_tags``, compressed NumPy+Parquet the CRC32C of the chunk index file with ``index_crc32c``,
and uncompressed .npy its chunks' CRC32C with ``chunk_crc32c``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import eegbench
from eegbench.errors import CorruptStoreError
from eegbench.formats._chunks import CHUNK_CACHE
from tests.fuzz.corpus import dataset

CASES = [(f, c) for f in ("hdf5", "zarr", "parquet") for c in ("none", "blosc-zstd")]


def _signal_files(store: Path, key: str) -> list[str]:
    """The recording's files that hold samples (what a copy or a swap would replace)."""
    out = []
    for p in sorted(store.rglob("*")):
        rel = p.relative_to(store).as_posix()
        if p.is_file() and f"/{key}" in rel and (rel.endswith((".h5", ".npy", ".chunks", ".index.parquet"))
                                                  or "/signals/c/" in rel):
            out.append(rel)
    assert out, f"no signal file of {key} in {store}"
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Per (format, codec): a store of two equal-shape recordings and a twin with other samples."""
    root = tmp_path_factory.mktemp("binding")
    out = {}
    for fmt, codec in CASES:
        for seed in (0, 1):
            eegbench.save(dataset(seed, False), root / f"{fmt}-{codec}-{seed}", fmt, compression=codec,
                          chunk_seconds=1.0)
        out[fmt, codec] = (root / f"{fmt}-{codec}-0", root / f"{fmt}-{codec}-1")
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _read_all(store: Path) -> list[np.ndarray]:
    CHUNK_CACHE.clear()
    ds = eegbench.open(store)
    try:
        return [rec.get_data() for rec in ds]
    finally:
        ds.close()


@pytest.mark.parametrize("fmt,codec", CASES)
def test_untouched_store_reads_bitwise_equal(stores, tmp_path, fmt, codec):
    store = _copy(stores[fmt, codec][0], tmp_path / "s")
    ref = dataset(0, False)
    for got, rec in zip(_read_all(store), ref):
        np.testing.assert_array_equal(got.view(np.uint32), rec.get_data().view(np.uint32))
    eegbench.verify(store)


@pytest.mark.parametrize("fmt,codec", CASES)
def test_swapped_recordings_are_refused_on_read(stores, tmp_path, fmt, codec):
    store = _copy(stores[fmt, codec][0], tmp_path / "s")
    ds = eegbench.open(store)  # opened before: the swap happens under a live dataset too
    ds[0], ds[1]  # and built (a recording's files are size-checked when it is first built): the binding must tell
    a, b = _signal_files(store, "rec-00000"), _signal_files(store, "rec-00001")
    assert [p.replace("rec-00000", "rec-00001") for p in a] == b
    for pa, pb in zip(a, b):
        os.rename(store / pa, store / (pa + ".tmp"))
        os.rename(store / pb, store / pa)
        os.rename(store / (pa + ".tmp"), store / pb)
    CHUNK_CACHE.clear()
    for i in (0, 1):
        with pytest.raises(CorruptStoreError, match="(?i)does not belong|fails its CRC32C"):
            ds[i].get_data(start=0, stop=100)
    ds.close()
    with pytest.raises(CorruptStoreError):  # and on a fresh open (size check or binding)
        _read_all(store)
    with pytest.raises(CorruptStoreError):
        eegbench.verify(store)


@pytest.mark.parametrize("fmt,codec", CASES)
def test_file_copied_from_another_store_is_refused_on_read(stores, tmp_path, fmt, codec):
    base, twin = stores[fmt, codec]
    for rel in _signal_files(base, "rec-00000"):
        store = _copy(base, tmp_path / rel.replace("/", "_"))
        ds = eegbench.open(store)
        ds[0]  # built before the copy
        shutil.copyfile(twin / rel, store / rel)
        CHUNK_CACHE.clear()
        with pytest.raises(CorruptStoreError):
            ds[0].get_data(start=0, stop=100)
        np.testing.assert_array_equal(ds[1].get_data(), dataset(0, False)[1].get_data())  # the other is fine
        ds.close()
        if (base / rel).stat().st_size == (twin / rel).stat().st_size:  # same size: open cannot tell
            with pytest.raises(CorruptStoreError, match="(?i)does not belong|fails its CRC32C"):
                _read_all(store)


@pytest.mark.parametrize("fmt,codec", CASES)
def test_whole_recording_copied_from_another_store_is_refused(stores, tmp_path, fmt, codec):
    """Every file of the recording (signals, index, tags) from the twin store: still refused."""
    base, twin = stores[fmt, codec]
    store = _copy(base, tmp_path / "s")
    ds = eegbench.open(store)
    ds[0]  # built before the copy (its files' sizes checked then): the binding must tell
    for rel in _signal_files(base, "rec-00000"):
        shutil.copyfile(twin / rel, store / rel)
    CHUNK_CACHE.clear()
    with pytest.raises(CorruptStoreError, match="(?i)does not belong|fails its CRC32C"):
        ds[0].get_data(start=0, stop=100)
    ds.close()


def test_zarr_shards_of_one_recording_swapped(tmp_path, monkeypatch):
    """Two shards of the same recording swapped (equal size when uncompressed): refused."""
    from eegbench.formats import zarr as zb

    rec = dataset(0, False)
    monkeypatch.setattr(zb, "SHARD_MAX_BYTES", 4 * 100 * 4 * 2)  # 2 chunks of 100 samples per shard
    eegbench.save(rec, tmp_path / "s", "zarr", compression="none", chunk_seconds=1.0)
    shards = [p for p in _signal_files(tmp_path / "s", "rec-00000") if "/c/" in p]
    assert len(shards) == 3
    s0, s1 = tmp_path / "s" / shards[0], tmp_path / "s" / shards[1]
    d0, d1 = s0.read_bytes(), s1.read_bytes()
    assert len(d0) == len(d1)
    s0.write_bytes(d1)
    s1.write_bytes(d0)
    CHUNK_CACHE.clear()
    with pytest.raises(CorruptStoreError, match="does not belong to shard 0"):
        eegbench.open(tmp_path / "s")[0].get_data(start=0, stop=50)


def test_zarr_python_still_reads_tagged_shards(stores):
    """The tag sits between the chunks and the index, referenced by nothing: plain zarr reads."""
    import zarr

    store = stores["zarr", "blosc-zstd"][0]
    src = eegbench.open(store)[0].source
    arr = zarr.open_array(str(store / src.storage["array"]), mode="r")[...]
    np.testing.assert_array_equal(arr, dataset(0, False)[0].get_data())
