"""A representative subset of the fuzz corpus (tests/fuzz), run in-process on every test run.

The full run (>= 3,000 cases per format, each in a worker subprocess with a timeout and a memory
limit) is ``python -m tests.fuzz.run --full``; its figures are in the README's Reliability section.
"""

from __future__ import annotations

import random
import shutil
import uuid

import numpy as np
import pytest
from fuzz import corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eegbench
from eegbench.errors import CorruptStoreError, EegbenchError

BASES = ["parquet-none-f32", "parquet-zstd-int", "zarr-blosc-zstd-int", "zarr-none-f32", "hdf5-zstd-f32",
         "hdf5-none-int"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bases")
    for name in BASES:
        fmt, codec, mode = corpus._split(name)
        for seed, suffix in ((0, ""), (1, "-foreign")):
            eegbench.save(corpus.dataset(seed, mode == "int"), folder / f"{name}{suffix}", fmt, compression=codec,
                          integer=mode == "int", chunk_seconds=1.0)
    return folder


@pytest.mark.parametrize("name", BASES)
def test_damaged_stores_are_typed_errors_never_wrong_data(bases, tmp_path, name):
    rng = random.Random(name)
    all_cases = corpus.cases(name, bases / name, rng, 0)
    picked = all_cases[rng.randrange(9)::9]  # ~1 in 9 of every kind, a different slice per base
    ref = corpus.dataset(0, name.endswith("-int"))
    failures = []
    for i, case in enumerate(picked):
        store = tmp_path / f"c{i}" / "store"
        shutil.copytree(bases / name, store, symlinks=True)
        before = corpus.tree_digest(store)
        try:
            corpus.apply(case, store, bases / f"{name}-foreign")
        except Exception:
            continue  # the edit does not apply to this layout
        if corpus.tree_digest(store) == before:
            continue
        res = corpus.check(store, ref, measure_memory=False)
        ok = res["outcome"] in ("correct", "typed") or (res["outcome"] == "wrong" and case.get("recompute"))
        flagged = res["verify"] == 1 or case.get("recompute")
        if not (ok and flagged):
            failures.append((case, res))
    assert not failures, failures[:5]
    assert len(picked) > 15


def test_header_edit_without_digest_is_detected(tmp_path):
    path = tmp_path / "s"
    eegbench.save(corpus.dataset(0, True), path, "parquet")
    text = (path / "eegbench.json").read_text().replace('"chunk_seconds": 1.0', '"chunk_seconds": 2.0')
    (path / "eegbench.json").write_text(text)
    with pytest.raises(CorruptStoreError, match="header_sha256"):
        eegbench.open(path)
    with pytest.raises(CorruptStoreError):
        eegbench.verify(path)


def test_verify_reports_extra_and_special_files_without_blocking(tmp_path):
    import os

    path = tmp_path / "s"
    eegbench.save(corpus.dataset(0, True), path, "zarr")
    (path / "extra.bin").write_bytes(b"x")
    os.mkfifo(path / "fifo")
    (path / "zero").symlink_to("/dev/zero")
    with pytest.raises(CorruptStoreError) as info:
        eegbench.verify(path)
    text = str(info.value)
    assert "extra extra.bin" in text and "fifo" in text and "zero" in text


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_ch=st.integers(1, 5), n_times=st.integers(1, 400), sfreq=st.sampled_from([1.0, 128.0, 250.0, 512.5]),
       fmt=st.sampled_from(["hdf5", "zarr", "parquet"]), codec=st.sampled_from(["none", "zstd"]),
       names=st.lists(st.text(st.characters(blacklist_characters='\x00', blacklist_categories=('Cs',)), min_size=1, max_size=8), min_size=5, max_size=5, unique=True),
       desc=st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(-10**6, 10**6), st.text(max_size=5),
                                                           st.floats(allow_nan=False)), max_size=3))
def test_round_trip_property(tmp_path, n_ch, n_times, sfreq, fmt, codec, names, desc):
    rng = np.random.default_rng(n_ch * 1000 + n_times)
    data = rng.standard_normal((n_ch, n_times)).astype(np.float32)
    rec = eegbench.Recording(data, sfreq, names[:n_ch], description=desc, name="r")
    path = tmp_path / uuid.uuid4().hex
    eegbench.save(rec, path, fmt, compression=codec, chunk_seconds=max(1.0 / sfreq, 0.37))
    with eegbench.open(path) as ds:
        got = ds[0]
        np.testing.assert_array_equal(got.get_data().view(np.uint32), data.view(np.uint32))
        assert got.ch_names == names[:n_ch] and got.sfreq == sfreq and got.description == desc
    try:
        eegbench.verify(path)
    except EegbenchError as exc:  # pragma: no cover - a failure message
        raise AssertionError(exc) from exc


def test_sealed_description_with_crafted_pandas_metadata_is_a_typed_error(tmp_path):
    """A table whose bytes are sealed (digests recomputed) but whose pandas metadata cannot be
    rebuilt: open succeeds (pandas is not needed to validate), reading ``description`` is a
    CorruptStoreError naming the table -- not pandas' KeyError/ValueError (found by the fuzz's
    resealed byte damage in tables.pack)."""
    import io
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    def craft(data: bytes) -> bytes:
        table = pq.read_table(pa.BufferReader(data))
        meta = dict(table.schema.metadata)
        pandas_meta = json.loads(meta[b"pandas"])
        pandas_meta["index_columns"] = [{"kind": "rangd", "name": None, "start": 0, "stop": 2, "step": 1}]
        meta[b"pandas"] = json.dumps(pandas_meta).encode()
        sink = io.BytesIO()
        pq.write_table(table.replace_schema_metadata(meta), sink)
        return sink.getvalue()

    for fmt in ("hdf5", "zarr", "parquet"):
        path = tmp_path / fmt
        eegbench.save(corpus.dataset(0, True), path, fmt)
        corpus._edit_table_bytes(path, "description", craft, recompute=True)
        eegbench.verify(path)  # every seal holds: only reading the table can tell
        with eegbench.open(path) as ds:
            np.testing.assert_array_equal(ds[0].get_data(), corpus.dataset(0, True)[0].get_data())
            with pytest.raises(CorruptStoreError, match="metadata table description"):
                ds.description  # noqa: B018 - the property read is the test


@pytest.mark.parametrize("field", ["channel", "unit", "description key", "description value", "annotation", "history"])
def test_text_without_utf8_encoding_is_refused_before_writing(tmp_path, field):
    """A lone surrogate (what os.fsdecode makes of undecodable bytes) has no UTF-8 form: save
    refuses it with a typed error naming the field, and leaves nothing at the path (found by
    Hypothesis in test_round_trip_property: it was an untyped UnicodeEncodeError mid-write)."""
    from eegbench.errors import MetadataError, SelectionError

    bad = "F\udc80"
    data = np.zeros((2, 50), np.float32)
    kwargs: dict = {"ch_names": ["a", "b"]}
    if field == "channel":
        kwargs["ch_names"] = ["a", bad]
    elif field == "unit":
        kwargs["units"] = ["V", bad]
    elif field == "description key":
        kwargs["description"] = {bad: 1}
    elif field == "description value":
        kwargs["description"] = {"site": bad}
    elif field == "annotation":
        kwargs["annotations"] = eegbench.Annotations([0.1], [0.0], [bad])
    else:
        kwargs["history"] = [{"step": bad}]
    for fmt in ("hdf5", "zarr", "parquet"):
        path = tmp_path / fmt
        with pytest.raises((SelectionError, MetadataError), match="surrogate"):
            eegbench.save(eegbench.Recording(data, 100.0, **kwargs), path, fmt)
        assert not path.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_description_table_text_without_utf8_encoding_is_a_typed_error(tmp_path):
    import pandas as pd

    from eegbench.errors import MetadataError

    rec = eegbench.Recording(np.zeros((1, 50), np.float32), 100.0, ["a"])
    ds = eegbench.Dataset([rec], description=pd.DataFrame({"site": pd.Series(["F\udc80"], dtype=object)}))
    with pytest.raises(MetadataError, match="UTF-8"):
        eegbench.save(ds, tmp_path / "s", "zarr")
    assert list(tmp_path.iterdir()) == []
