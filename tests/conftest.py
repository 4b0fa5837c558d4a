"""Shared fixtures: small quantized recordings built from the model alone, and the real data folder."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

import eegbench.formats._chunks as chunks_mod
from eegbench import Annotations, Dataset, Quantization, Recording
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.model import ArraySource

# ../shared/data/eeg beside the repository; EEGBENCH_REAL_DATA points elsewhere (e.g. from a worktree)
REAL_DATA = Path(os.environ.get("EEGBENCH_REAL_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data" / "eeg")
FORMATS = ["hdf5", "zarr", "parquet"]


def real_data_dir() -> Path:
    """../shared/data/eeg, or skip the test with the reason."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real EEG recordings not found at {REAL_DATA} (../shared/data/eeg beside the repo)")
    return REAL_DATA


def make_recording(n_channels: int = 8, n_times: int = 1000, sfreq: float = 100.0, seed: int = 0,
                   quantized: bool = True, name: str = "rec", **kwargs) -> Recording:
    """A random-walk EEG-like recording; int16-quantized (exact grid) unless ``quantized=False``."""
    rng = np.random.default_rng(seed)
    counts = np.cumsum(rng.integers(-40, 41, size=(n_channels, n_times)), axis=1)
    counts = np.clip(counts, -32768, 32767).astype(np.int16)
    q = Quantization(np.full(n_channels, 0.0978), np.linspace(-3, 3, n_channels), np.full(n_channels, 1e-6))
    if quantized:
        source = ArraySource(q.reconstruct(counts), quantization=q)
    else:
        source = ArraySource(rng.standard_normal((n_channels, n_times)).astype(np.float32) * 1e-5)
    ch_names = kwargs.pop("ch_names", [f"Fp{i}-é" if i % 3 == 0 else f"C{i}" for i in range(n_channels)])
    return Recording(source, sfreq, ch_names, name=name, **kwargs)


def rich_dataset() -> Dataset:
    """Heterogeneous recordings with every kind of metadata the model holds."""
    r1 = make_recording(8, 1050, 100.0, seed=1, name="first",
                        meas_date=dt.datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=dt.timezone.utc),
                        annotations=Annotations([0.5, 2.25, 7.0], [0.0, 1.5, 0.25], ["T0", "T1 ü", "T2"],
                                                [(), ("C1",), ("C1", "C2")]),
                        description={"subject": "001", "session": None, "task": "motor", "run": 3,
                                     "when": dt.date(2020, 1, 2), "nested": {"a": [1, 2.5, None], "b": {"c": "ñ"}}},
                        history=[{"operation": "filter", "l_freq": 1.0, "h_freq": None}],
                        provenance={"file": "S001R03.edf", "reader": "mne.io.read_raw_edf", "sha256": "ab" * 32},
                        ch_types=["eeg"] * 7 + ["eog"], units=["V"] * 7 + ["µV"], first_samp=17)
    r2 = make_recording(5, 777, 250.0, seed=2, quantized=False, name="second",
                        description={"subject": "002", "session": "1", "task": "rest", "run": None})
    desc = pd.DataFrame({"subject": ["001", "002"], "age": [31.5, None], "sex": ["F", None],
                         "extra": [{"k": [1, 2]}, None], "date": [dt.datetime(2020, 5, 1), None]})
    windows = pd.DataFrame({"recording": [0, 0, 1], "start": [0, 100, 50], "stop": [200, 300, 250],
                            "target": [1, 2, 0], "label": ["T1", "T2", "rest"]})
    return Dataset([r1, r2], desc, attrs={"name": "tiny", "created": dt.datetime(2026, 1, 1), "none": None},
                   windows=windows)


def save_windowed_stores(root: Path, seed: int, **save_kwargs) -> tuple[Dataset, dict[str, Path]]:
    """Three small synthetic recordings with a two-row window index, saved in every format under ``root``."""
    import eegbench
    from eegbench.sources.synthetic import make_dataset

    ds = make_dataset(n_recordings=3, n_channels=4, sfreq=64, duration_s=4, seed=seed)
    ds.windows = pd.DataFrame({"recording": [0, 2], "start": [0, 64], "stop": [64, 128], "target": ["a", "b"]})
    return ds, {fmt: Path(eegbench.save(ds, root / fmt, format=fmt, **save_kwargs)) for fmt in FORMATS}


def compiled_kernel(monkeypatch, attr: str, env: str, lookup):
    """A compiled kernel of ``eegbench.formats._chunks`` (``attr``: its cached slot, ``env``: its
    off switch, ``lookup``: its lookup function) looked up now, whatever this process did before."""
    monkeypatch.setattr(chunks_mod, attr, None)
    monkeypatch.delenv(env, raising=False)
    kernel = lookup()
    monkeypatch.setattr(chunks_mod, attr, kernel)
    return kernel


def spy_kernel(monkeypatch, attr: str, kernel) -> list:
    """Replace ``eegbench.formats._chunks.<attr>`` by ``kernel`` wrapped in a spy; returns the list
    of each call's answer (True: done by the kernel, False: left to the Python path)."""
    calls: list = []

    def spy(*args):
        done = kernel(*args)
        calls.append(done)
        return done

    monkeypatch.setattr(chunks_mod, attr, spy)
    return calls


def assert_recordings_equal(a: Recording, b: Recording) -> None:
    """Bitwise-equal samples and every metadata field."""
    assert a.n_times == b.n_times and a.n_channels == b.n_channels
    np.testing.assert_array_equal(a.get_data().view(np.uint32), b.get_data().view(np.uint32))
    assert a.sfreq == b.sfreq
    assert a.ch_names == b.ch_names and a.ch_types == b.ch_types and a.units == b.units
    assert a.meas_date == b.meas_date and a.first_samp == b.first_samp
    assert a.annotations == b.annotations
    assert a.description == b.description
    assert a.history == b.history and a.provenance == b.provenance
    assert a.name == b.name


@pytest.fixture(autouse=True)
def _fresh_chunk_cache():
    CHUNK_CACHE.clear()
    yield
    CHUNK_CACHE.clear()


@pytest.fixture(scope="session")
def bids_root(tmp_path_factory) -> Path:
    mne_bids = pytest.importorskip("mne_bids")
    src = real_data_dir() / "eegbci_S001"
    root = tmp_path_factory.mktemp("bids")
    for subject, run in (("001", 3), ("001", 4), ("002", 5)):
        raw = mne.io.read_raw_edf(src / f"S001R{run:02d}.edf", preload=False, verbose="error")
        bids_path = mne_bids.BIDSPath(subject=subject, task="motor", run=run, datatype="eeg", root=root)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mne_bids.write_raw_bids(raw, bids_path, overwrite=True, verbose="error")
    # participant details as a study would fill them in
    table = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table["age"] = ["42", "n/a"]
    table["sex"] = ["M", "F"]
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    # a derivative next to the raw data must not be mistaken for a recording
    deriv = root / "derivatives" / "clean" / "sub-001" / "eeg"
    deriv.mkdir(parents=True)
    (deriv / "sub-001_task-motor_run-3_desc-clean_eeg.edf").symlink_to(src / "S001R03.edf")
    return root


@pytest.fixture
def no_chunk_cache():
    """The decoded-chunk cache off: every read decodes (the benchmarks' random-access setting)."""
    old = CHUNK_CACHE.max_bytes
    CHUNK_CACHE.max_bytes = 0
    CHUNK_CACHE.clear()
    yield
    CHUNK_CACHE.max_bytes = old
    CHUNK_CACHE.clear()


def count_signal_requests(monkeypatch, kinds: list[str] | None = None) -> list[tuple[int, int]]:
    """Every request for signal bytes: ``os.pread`` calls and readaheads of a span, as (bytes, offset)
    (``kinds`` gets "pread" / "readahead" in the same order)."""
    calls: list[tuple[int, int]] = []
    kinds = [] if kinds is None else kinds
    real, real_ahead = os.pread, chunks_mod.readahead

    def counting(fd, n, offset):
        calls.append((n, offset))
        kinds.append("pread")
        return real(fd, n, offset)

    def counting_ahead(mm, start, stop):
        done = real_ahead(mm, start, stop)
        if done:  # asked of the kernel (False: the caller preads instead)
            calls.append((stop - start, start))
            kinds.append("readahead")
        return done

    monkeypatch.setattr(os, "pread", counting)
    monkeypatch.setattr(chunks_mod, "readahead", counting_ahead)
    return calls


@pytest.fixture(params=["readahead", "pread", "no-madvise"])
def request_kind(request, monkeypatch) -> str:
    """How an evicted window is fetched: readahead + map (default), pread (EVICTED_READAHEAD off),
    or pread because ``madvise(MADV_WILLNEED)`` is unavailable."""
    if request.param == "pread":
        monkeypatch.setattr(chunks_mod, "EVICTED_READAHEAD", False)
    elif request.param == "no-madvise":
        monkeypatch.setattr(chunks_mod, "_WILLNEED", None)
    return "readahead" if request.param == "readahead" else "pread"
