"""The synthetic generator: deterministic, lazy, quantized, and EEG-like enough for benchmarks."""

from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest
from numcodecs import Blosc
from scipy.signal import welch

import eegbench
from conftest import FORMATS, assert_recordings_equal
from eegbench.errors import OptionError
from eegbench.sources.synthetic import PROFILES, SyntheticSource, channel_names, make_dataset, make_profile


def _counts(rec: eegbench.Recording) -> np.ndarray:
    return rec.source.read_counts(0, rec.n_times)


def _blosc_ratio(counts: np.ndarray, chunk: int) -> float:
    """float32 bytes / blosc-zstd-5 byte-shuffled int16 chunks (all channels x ``chunk`` samples),
    the same definition as ``eegbench.info()['compression_ratio']``."""
    codec = Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE)
    packed = sum(len(codec.encode(np.ascontiguousarray(counts[:, s:s + chunk])))
                 for s in range(0, counts.shape[1], chunk))
    return counts.size * 4 / packed


def test_deterministic_per_seed():
    a = make_dataset(2, 16, 200.0, 30.0, seed=7)
    b = make_dataset(2, 16, 200.0, 30.0, seed=7)
    c = make_dataset(2, 16, 200.0, 30.0, seed=8)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(_counts(ra), _counts(rb))
        assert ra.annotations == rb.annotations and ra.description == rb.description
    assert not np.array_equal(_counts(a[0]), _counts(c[0]))
    assert not np.array_equal(_counts(a[0]), _counts(a[1]))  # recordings differ from each other
    assert a[0].annotations != c[0].annotations


def test_piecewise_reads_equal_whole_read():
    rec = make_dataset(1, 19, 250.0, 40.0, seed=1)[0]
    src = rec.source
    whole = src.read_counts(0, rec.n_times)
    H = src.params.block
    assert rec.n_times > 4 * H  # several generation blocks
    fresh = pickle.loads(pickle.dumps(src))  # empty cache, other read order
    cuts = [0, 1, H - 1, H, H + 1, 2 * H + 17, 3 * H, rec.n_times - 5, rec.n_times]
    pieces = [fresh.read_counts(s, e) for s, e in reversed(list(zip(cuts[:-1], cuts[1:])))][::-1]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    picks = np.array([5, 0, 18])
    got = rec.get_data(start=H - 100, stop=2 * H + 100, picks=picks)
    np.testing.assert_array_equal(got, src.quantization.reconstruct(whole[picks, H - 100:2 * H + 100], picks))
    assert src.read_counts(10, 10).shape == (19, 0)


def test_quantization_is_exact():
    rec = make_dataset(1, 8, 128.0, 20.0, seed=2)[0]
    q = rec.quantization
    assert q is not None and q.dtype == "int16"
    np.testing.assert_array_equal(q.scale, 0.5)
    np.testing.assert_array_equal(q.gain, 1e-6)
    data = rec.get_data()
    np.testing.assert_array_equal(q.to_counts(data), _counts(rec))
    rec24 = make_dataset(1, 4, 128.0, 5.0, adc_bits=24)[0]
    assert rec24.quantization.dtype == "int32" and rec24.quantization.scale[0] == 1 / 32
    np.testing.assert_array_equal(rec24.quantization.to_counts(rec24.get_data()), _counts(rec24))


def test_spectrum_looks_like_eeg():
    rec = make_dataset(1, 32, 250.0, 120.0, seed=3, line_freq=50.0)[0]
    x = rec.get_data().astype(np.float64) * 1e6
    f, psd = welch(x, fs=250.0, nperseg=1000)
    p = np.median(psd, axis=0)
    # 1/f: straight line in log-log outside the alpha band and the line frequency
    band = ((f >= 2) & (f <= 7)) | ((f >= 15) & (f <= 40))
    slope, intercept = np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)
    assert -3.0 < slope < -1.0
    occipital = np.median(psd[[rec.ch_names.index(c) for c in ("O1", "O2", "Pz", "P3", "P4")]], axis=0)
    alpha = (f >= 8) & (f <= 12)
    trend = 10 ** (intercept + slope * np.log10(f[alpha]))
    assert occipital[alpha].max() > 2.0 * trend.max()  # alpha peak above the 1/f trend
    line = np.argmin(np.abs(f - 50.0))
    neighbours = np.r_[p[line - 12:line - 2], p[line + 3:line + 13]]
    assert p[line] > 10.0 * np.median(neighbours)


def test_motor_events_modulate_mu():
    rec = make_dataset(1, 32, 250.0, 120.0, seed=3)[0]
    x = rec.get_data().astype(np.float64)
    ann = rec.annotations
    assert set(ann.description) == {"T0", "T1", "T2"}

    def mu_power(channel: str, label: str) -> float:
        i, vals = rec.ch_names.index(channel), []
        for onset, duration, desc in zip(ann.onset, ann.duration, ann.description):
            s, e = int((onset + 1.0) * 250), int((onset + duration) * 250)
            if desc == label and e <= rec.n_times:
                f, p = welch(x[i, s:e], fs=250.0, nperseg=256)
                vals.append(p[(f >= 9) & (f <= 14)].mean())
        return float(np.mean(vals))

    # right-hand events (T2) desynchronise the left motor cortex (C3) and vice versa
    assert mu_power("C3", "T2") < 0.7 * mu_power("C3", "T1")
    assert mu_power("C4", "T1") < 0.7 * mu_power("C4", "T2")


def test_block_joins_are_seamless():
    rec = make_dataset(1, 16, 256.0, 120.0, seed=4, line_freq=None, artifacts=False)[0]
    x = rec.get_data().astype(np.float64)
    d2 = np.diff(x, axis=1) ** 2
    H = rec.source.params.block
    joins = np.arange(H, rec.n_times, H) - 1  # diff between the last sample of a block and the next
    assert 0.6 < d2[:, joins].mean() / d2.mean() < 1.5
    # and the level does not jump either: compare to differences 1 block away from the joins
    assert abs(x[:, joins + 1] - x[:, joins]).mean() < 1.5 * abs(x[:, joins - H // 2 + 1] - x[:, joins - H // 2]).mean()


@pytest.mark.parametrize("profile", ["default", "eegbci-like", "standard"])
def test_compression_like_real_eeg(profile):
    # real EEGBCI files: 3.8x (int16 counts, blosc-zstd-5 + shuffle, 1-s chunks, vs float32 bytes)
    if profile == "default":
        rec = make_dataset(1, 32, 250.0, 30.0)[0]
    else:
        rec = make_profile(profile, n_recordings=1, duration_s=30.0)[0]
    ratio = _blosc_ratio(_counts(rec), int(rec.sfreq))
    assert 2.5 < ratio < 5.0, ratio


def test_annotations_and_description():
    ds = make_dataset(4, 8, 100.0, 60.0, seed=5, runs_per_subject=2, task="imagery", age_range=(5, 21))
    for i, rec in enumerate(ds):
        ann = rec.annotations
        assert len(ann) >= 10 and ann.onset[0] == 0.0
        assert np.all(np.diff(ann.onset) > 4.0) and ann.onset.max() < rec.duration
        np.testing.assert_array_equal(np.round(ann.onset * 100.0) / 100.0, ann.onset)  # on the sample grid
        assert ann.description[::2] == ["T0"] * len(ann.description[::2])
        d = rec.description
        assert d["subject"] == f"{i // 2 + 1:03d}" and d["run"] == f"{i % 2 + 1:02d}" and d["task"] == "imagery"
        assert 5 <= d["age"] <= 21 and d["sex"] in ("F", "M")
    assert ds[0].description["age"] == ds[1].description["age"]  # same subject
    assert list(ds.description.columns) == ["subject", "session", "task", "run", "age", "sex"]
    assert ds.attrs["event_meaning"]["T1"] == "left hand"
    assert len(make_dataset(1, 4, 100.0, 10.0, events=False)[0].annotations) == 0


def test_heterogeneous_and_names():
    ds = make_dataset(3, n_channels=[19, 64, 129], sfreq=[128.0, 250.0, 500.0], duration_s=[10.0, 5.0, 3.0])
    assert ds.is_heterogeneous
    assert [r.n_channels for r in ds] == [19, 64, 129] and [r.n_times for r in ds] == [1280, 1250, 1500]
    assert ds[0].ch_names[:3] == ["Fp1", "Fp2", "F7"] and "Iz" in ds[1].ch_names
    assert ds[2].ch_names[0] == "E1" and ds[2].ch_names[-1] == "E129"
    for rec in ds:
        assert rec.get_data(start=0, stop=64).shape == (rec.n_channels, 64)
    custom = make_dataset(1, ch_names=["Cz", "Oz", "EOG"], sfreq=100.0, duration_s=5.0)[0]
    assert custom.ch_names == ["Cz", "Oz", "EOG"] and np.isfinite(custom.get_data()).all()
    assert channel_names(3) == ["Fp1", "Fp2", "F7"]
    with pytest.raises(OptionError, match="3 values for 2 recordings"):
        make_dataset(2, n_channels=[1, 2, 3])
    with pytest.raises(OptionError, match="seed"):
        make_dataset(1, seed=-1)
    with pytest.raises(OptionError, match="sfreq"):
        make_dataset(1, sfreq=0.0)


def test_profiles():
    assert set(PROFILES) >= {"smoke", "standard", "eegbci-like"}
    std = make_profile("standard")  # lazy: nothing generated yet
    assert len(std) == 20 and {r.n_channels for r in std} == {129} and {r.sfreq for r in std} == {500.0}
    assert {r.n_times for r in std} == {150_000} and std[0].quantization.dtype == "int16"
    assert all(isinstance(r.source, SyntheticSource) and r.source._model is None for r in std)
    bci = make_profile("eegbci-like")
    assert len(bci) == 12 and bci[0].n_channels == 64 and bci[0].duration == 125.0
    assert {r.description["subject"] for r in bci} == {"001"}
    assert make_profile("smoke").attrs["profile"] == "smoke"
    with pytest.raises(OptionError, match="unknown synthetic profile"):
        make_profile("huge")


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_open_round_trip(fmt, tmp_path):
    try:
        importlib.import_module(f"eegbench.formats.{fmt}")
    except ImportError as exc:
        pytest.skip(f"format {fmt} not available: {exc}")
    ds = make_dataset(2, n_channels=[8, 12], sfreq=[100.0, 160.0], duration_s=[12.0, 9.0], seed=9)
    path = eegbench.save(ds, tmp_path / "syn", format=fmt)
    back = eegbench.open(path)
    for a, b in zip(ds, back):
        assert_recordings_equal(a, b)
    assert eegbench.info(path)["stored_dtypes"] == ["int16"]
