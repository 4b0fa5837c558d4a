"""``import eegbench`` and ``eegbench.open`` import only what they need (issue #9: open cost).

Behaviour, not speed: a fresh interpreter's ``sys.modules`` after the import / the open. The
timings live in ``benchmarks/bench_open_cost.py``."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import eegbench
from eegbench._frame import Table
from eegbench.sources.synthetic import make_dataset
from eegbench.tables import frame_from_parquet, frame_to_parquet

HEAVY = ("pandas", "pyarrow", "mne", "torch", "matplotlib", "numcodecs", "h5py", "hdf5plugin", "zarr", "tqdm",
         "numba", "joblib", "dask", "huggingface_hub", "fsspec", "imagecodecs", "scipy")


def _modules_after(code: str) -> set[str]:
    """Top-level modules a fresh interpreter has imported after running ``code``."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_eegbench_imports_no_heavy_library() -> None:
    loaded = _modules_after("import eegbench")
    assert not loaded & set(HEAVY), f"import eegbench imported {sorted(loaded & set(HEAVY))}"
    assert "numpy" in loaded  # the probe really ran


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("lazyimp")
    ds = make_dataset(n_recordings=3, n_channels=4, sfreq=64, duration_s=4)
    ds.windows = pd.DataFrame({"recording": [0, 2], "start": [0, 64], "stop": [64, 128], "target": ["a", "b"]})
    return {fmt: str(eegbench.save(ds, root / f"d.{fmt}", format=fmt, compression="blosc-zstd"))
            for fmt in ("hdf5", "zarr", "parquet")}


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_open_imports_no_pandas_no_pyarrow_and_no_codec(stores: dict[str, str], fmt: str) -> None:
    """The metadata tables come from ``tables.pack``'s column encoding (NumPy + json): neither
    pyarrow nor pandas is imported until a DataFrame is asked for."""
    loaded = _modules_after(f"import eegbench\nds = eegbench.open({stores[fmt]!r})\nassert len(ds) == 3\n"
                            "assert len(ds[1].ch_names) == 4\nassert ds[2].annotations is not None\n"
                            "assert len(ds._windows) == 2\nrepr(ds)")
    heavy = loaded & set(HEAVY)
    assert not heavy, f"open of a {fmt} store imported {sorted(heavy)}"


@pytest.mark.parametrize("fmt", ["zarr"])
def test_a_dataframe_asked_for_imports_pandas_and_equals_the_saved_one(stores: dict[str, str], fmt: str) -> None:
    loaded = _modules_after(f"import sys, eegbench\nds = eegbench.open({stores[fmt]!r})\n"
                            "assert 'pandas' not in sys.modules\n"
                            "assert list(ds.windows['target']) == ['a', 'b']\nassert len(ds.description) == 3")
    assert {"pandas", "pyarrow"} <= loaded  # the probe really built the DataFrames


def test_read_parquet_equals_the_public_reader() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from eegbench._frame import read_parquet

    frame = pd.DataFrame({"i": [1, 2], "s": ["a", None], "j": [{"x": 1}, [1, 2]], "f": [0.5, np.nan]})
    data = frame_to_parquet(frame)
    ours = read_parquet(data)
    assert ours.equals(pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False))
    assert ours.schema.metadata == pq.ParquetFile(pa.BufferReader(data)).schema_arrow.metadata


def _full_modules_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("fmt", ["hdf5", "zarr"])
def test_cli_info_imports_no_pandas_and_no_codec(stores: dict[str, str], fmt: str) -> None:
    loaded = _modules_after("import contextlib, io\nfrom eegbench.cli import main\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            f"    assert main(['info', {stores[fmt]!r}]) == 0")
    heavy = loaded & (set(HEAVY) - {"pyarrow", "h5py"})
    assert not heavy, f"eegbench info of a {fmt} store imported {sorted(heavy)}"


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_lazily_converted_tables_equal_the_stored_frames(stores: dict[str, str], fmt: str) -> None:
    ds = eegbench.open(stores[fmt])
    backend = eegbench.formats.get_backend(fmt)
    pd.testing.assert_frame_equal(ds.description, frame_from_parquet(backend.read_table(stores[fmt], "description")))
    pd.testing.assert_frame_equal(ds.windows, frame_from_parquet(backend.read_table(stores[fmt], "windows")))
    assert "2 windows" in repr(ds)
    sub = ds.select(subject=ds.description["subject"].iloc[2])
    assert len(sub) == 1 and list(sub.windows["recording"]) == [0]
    np.testing.assert_array_equal(ds[2].get_data(), eegbench.open(stores[fmt], lazy=False)[2].get_data())


def test_table_columns_match_pandas_conventions() -> None:
    frame = pd.DataFrame({"i": [1, 2, 3], "f": [1.5, np.nan, -0.0], "s": ["a", None, "c"],
                          "j": [{"x": 1}, [1, 2], None], "n": [None, None, None]})
    data = frame_to_parquet(frame)
    t = Table(data)
    assert t.columns == ["i", "f", "s", "j", "n"] and len(t) == 3 and not t.empty
    assert t["i"].to_numpy().dtype == np.int64 and t["i"].tolist() == [1, 2, 3]
    f = t["f"].to_numpy()
    assert f.dtype == np.float64 and f[0] == 1.5 and math.isnan(f[1]) and math.copysign(1, f[2]) == -1
    assert list(t["s"]) == ["a", None, "c"]
    assert list(t["n"]) == [None, None, None]
    assert t.to_dict("records")[0] == {"i": 1, "f": 1.5, "s": "a", "j": json.dumps({"x": 1}), "n": None}
    sub = t.iloc[np.array([2, 0])]
    assert len(sub) == 2 and sub["i"].tolist() == [3, 1] and t.iloc[1:].columns == t.columns
    assert t.sort_values("i")["s"].tolist() == ["a", None, "c"]
    pd.testing.assert_frame_equal(t.to_pandas(), frame_from_parquet(data))
    # pickles as plain data (its Parquet bytes)
    import pickle

    again = pickle.loads(pickle.dumps(t))
    assert again["i"].tolist() == [1, 2, 3]


def test_int_column_with_nulls_is_float_nan_as_in_pandas() -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"k": pa.array([4, None, 6], pa.int64())}), sink)
    values = Table(sink.getvalue())["k"].to_numpy()
    assert values.dtype == np.float64 and values[0] == 4 and math.isnan(values[1]) and values[2] == 6


def test_empty_table_and_row_count_only_table() -> None:
    t = Table(frame_to_parquet(pd.DataFrame(index=pd.RangeIndex(5))))
    assert len(t) == 5 and t.empty and t.columns == []
    assert len(Table(n_rows=4).to_pandas()) == 4


def test_hdf5_filter_ids_match_the_libraries() -> None:
    import h5py
    import hdf5plugin

    from eegbench.formats import hdf5 as h

    assert (h.FILTER_DEFLATE, h.FILTER_SHUFFLE, h.FILTER_FLETCHER32) == (
        h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32)
    assert (h.FILTER_BLOSC, h.FILTER_ZSTD, h.FILTER_FCIDECOMP, h.FILTER_HTJ2K) == (
        hdf5plugin.Blosc.filter_id, hdf5plugin.Zstd.filter_id, hdf5plugin.FciDecomp.filter_id,
        hdf5plugin.Htj2k.filter_id)


def test_blosc_threads_stay_off_once_numcodecs_is_loaded() -> None:
    from eegbench.codecs import load_numcodecs

    assert load_numcodecs().blosc.use_threads is False
