"""Save that scales (issue #14): the per-recording metadata eegbench writes directly instead of
through zarr-python is exactly what zarr-python writes, and the store stays a plain Zarr v3 tree."""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import eegbench
from eegbench.formats import zarr as zb


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _layout(n_times: int, names: list[str], sfreq: float = 100.0):
    ds = eegbench.synthetic.make_dataset(1, n_channels=len(names), sfreq=sfreq, duration_s=1.0, seed=0)
    rec = ds[0]
    from eegbench.codecs import resolve
    from eegbench.formats import get_backend
    from eegbench.store import plan_layout

    layout = plan_layout(rec, resolve("blosc-zstd", None), 1.0, "auto", False, get_backend("zarr"), bounded=True)
    return replace(layout, n_times=n_times, ch_names=tuple(names))


@pytest.mark.parametrize("n_times, names", [
    (1000, ["Fp1", "Fp2", "Cz"]),
    (1, ["only"]),                      # the single time chunk equals the fill value: not stored
    ((1 << 20) + 5, ["é", "", "ß€"]),   # two time chunks, the last padded; non-ASCII names
    (7, ["", ""]),                      # every name equals the fill value: no channel chunk
])
def test_coordinates_are_byte_identical_to_zarr_python(tmp_path, n_times, names):
    layout = _layout(n_times, names)
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    zb._write_coordinates(ours, layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zb._write_coordinates_zarr(ref, layout)
    a, b = _tree(ours), _tree(ref)
    assert sorted(a) == sorted(b)
    for rel in a:
        if rel.endswith("zarr.json"):
            assert json.loads(a[rel]) == json.loads(b[rel]), rel
        else:
            assert a[rel] == b[rel], rel


def test_consolidated_metadata_equals_zarr_pythons(tmp_path):
    import zarr
    from zarr.storage import LocalStore

    ds = eegbench.synthetic.make_dataset(3, n_channels=2, sfreq=50.0, duration_s=2.0, seed=1)
    path = eegbench.save(ds, tmp_path / "s.zarr", compression="blosc-zstd")
    copy = tmp_path / "copy.zarr"
    shutil.copytree(path, copy)
    ours = json.loads((path / "zarr.json").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(LocalStore(copy))
    ref = json.loads((copy / "zarr.json").read_bytes())
    assert ours == ref
    # and zarr-python opens the consolidated tree: every recording's signals are an array there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = zarr.open_consolidated(str(path), mode="r")
        for rec in range(3):
            arr = group[f"signals/000/rec-{rec:05d}/signals"]
            assert arr.shape == (2, 100)
            names = group[f"signals/000/rec-{rec:05d}/channel"][:]
            assert list(names) == list(ds[rec].ch_names)
            assert np.array_equal(group[f"signals/000/rec-{rec:05d}/time"][:], np.arange(100))


@pytest.mark.parametrize("compression", ["none", "zstd", "blosc-zstd", "blosc-lz4", "gzip"])
@pytest.mark.parametrize("dtype", ["int16", "int32", "float32"])
def test_direct_chunk_encoder_is_byte_identical_to_zarr_python(compression, dtype):
    from eegbench.codecs import resolve

    layout = replace(_layout(1000, ["a", "b", "c"]), dtype=dtype, chunk_samples=64,
                     codec=resolve(compression, None))
    filters, serializer, compressors = zb._inner_codecs(layout)
    direct, compress = zb._direct_compressor(layout, filters, serializer, compressors)
    assert direct
    ours = zb._DirectEncoder(layout, compress)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = zb._ChunkEncoder(layout, filters, serializer, compressors)
    rng = np.random.default_rng(3)
    data = rng.integers(-3000, 3000, size=(3, 64 * 5 + 17)).astype(dtype)
    data[:, 64:128] = 0  # a chunk equal to the fill value: not stored by either
    if dtype == "float32":
        data[:, 128:192] = -0.0  # not the fill value bit for bit: stored by both
    got, want = ours.encode(data), ref.encode(data)
    assert got[1] is None and want[1] is None
    if compression == "gzip":  # a gzip header holds the time of encoding (also zarr-python's): compare the rest
        import gzip

        assert [g is None for g in got] == [w is None for w in want]
        for g, w in zip(got, want):
            if g is not None:
                assert (g[:4], g[8:-4]) == (w[:4], w[8:-4])
                assert gzip.decompress(g[:-4]) == gzip.decompress(w[:-4])
        return
    assert got == want


def test_delta_keeps_zarr_pythons_encoder():
    from eegbench.codecs import resolve

    layout = replace(_layout(1000, ["a"]), dtype="int32", codec=replace(resolve("zstd", None), delta=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(zb._encoder_for(layout, *zb._inner_codecs(layout)), zb._ChunkEncoder)


# --- SHA-256 computed while writing ------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["zarr", "parquet", "hdf5"])
def test_manifest_hashed_while_writing_equals_reading_back(tmp_path, fmt, monkeypatch):
    """The manifest of a save equals one built by reading every file back, and the Zarr and
    NumPy+Parquet signal files are not read back (their digests were taken while writing)."""
    from eegbench import manifest

    read_back: list[str] = []
    real = manifest._entry
    monkeypatch.setattr(manifest, "_entry", lambda base, rel: (read_back.append(rel), real(base, rel))[1])
    ds = eegbench.Dataset([eegbench.synthetic.make_dataset(1, n_channels=3, duration_s=5.0, seed=i)[0]
                           for i in range(4)])
    path = eegbench.save(ds, tmp_path / "s", format=fmt)
    files = json.loads((path / manifest.HEADER).read_text())["files"]
    monkeypatch.setattr(manifest, "_entry", real)
    assert manifest.build(path, fsync=False) == files
    signal = [rel for rel in files if rel.startswith("signals/")]
    if fmt == "hdf5":
        assert set(signal) <= set(read_back)  # written by libhdf5: read back
    else:
        assert signal and not set(signal) & set(read_back)


def test_a_file_changed_after_writing_is_read_back(tmp_path):
    import os

    from eegbench import manifest

    a, b = tmp_path / "a", tmp_path / "b"
    manifest.write_file(a, b"first")
    manifest.write_file(b, b"other")
    with open(a, "r+b") as fh:  # same size, new bytes, written later: mtime/ctime move
        fh.write(b"FIRST")
    os.utime(a, ns=(0, 0))  # (a write in the same clock tick may keep mtime: make sure it moved)
    got = manifest.build(tmp_path, fsync=False)
    assert got == {"a": {"size": 5, "sha256": manifest.sha256_file(a)}, "b": {"size": 5, "sha256": manifest.sha256_file(b)}}
    w = manifest.HashingWriter(tmp_path / "c")
    w.write(b"abc")
    w.abort()  # an aborted file is not remembered: read back
    assert manifest.build(tmp_path, fsync=False)["c"]["sha256"] == manifest.sha256_file(tmp_path / "c")
