"""Stores read by the ecosystem alone: xarray (zarr, h5netcdf), tensorstore, numcodecs + pyarrow.

The reading code runs in a fresh Python process that never imports eegbench (checked), so these
tests prove what a user without eegbench sees: volts bitwise equal to MNE's float32 reading, with
channel names and times as coordinates.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import eegbench
from conftest import real_data_dir

RUN = "S001R03.edf"


def run_without_eegbench(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a new interpreter (it must set ``result``, a dict of arrays/strings) and
    return ``result``; fails if eegbench got imported."""
    script = tmp_path / "reader.py"
    out = tmp_path / "result.npz"
    script.write_text(textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        assert not any(m == "eegbench" or m.startswith("eegbench.") for m in sys.modules), "eegbench imported"
        np.savez({str(out)!r}, **result)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def eegbci(tmp_path_factory):
    """Two EEGBCI runs as the default Zarr store, an HDF5 store and MNE's float32 reading."""
    import mne

    files = [real_data_dir() / "eegbci_S001" / RUN, real_data_dir() / "eegbci_S001" / "S001R04.edf"]
    root = tmp_path_factory.mktemp("eco")
    ds = eegbench.from_files(files, sha256=False)
    stores = {"zarr": eegbench.save(ds, root / "eegbci.zarr"),  # the defaults: format, codec, chunks
              "hdf5": eegbench.save(ds, root / "eegbci.h5"),
              "parquet": eegbench.save(ds, root / "eegbci.parquet", compression="zstd", delta=True),
              "parquet-none": eegbench.save(ds, root / "eegbci-raw.parquet", compression="none")}
    raw = mne.io.read_raw_edf(files[0], preload=True, verbose="error")
    return stores, raw.get_data().astype(np.float32), raw.ch_names, raw.info["sfreq"]


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def test_xarray_opens_the_default_zarr_store_as_volts(eegbci, tmp_path):
    stores, volts, ch_names, sfreq = eegbci
    got = run_without_eegbench(f"""
        import numpy as np, xarray as xr
        ds = xr.open_zarr({str(stores["zarr"])!r}, group="signals/000/rec-00000")
        x = ds["signals"]
        result = {{"volts": x.values.astype(np.float32), "channel": np.array(x["channel"].values.tolist()),
                  "time": x["time"].values, "dims": np.array(x.dims), "sfreq": ds.attrs["sampling_rate_hz"],
                  "units": x.attrs["units"]}}
    """, tmp_path)
    assert tuple(got["dims"]) == ("channel", "time")
    np.testing.assert_array_equal(_bits(got["volts"]), _bits(volts))
    assert list(got["channel"]) == ch_names
    np.testing.assert_allclose(got["time"], np.arange(volts.shape[1]) / sfreq, rtol=0, atol=1e-12)
    assert float(got["sfreq"]) == sfreq and str(got["units"]) == "V"


def test_xarray_h5netcdf_opens_an_hdf5_recording_as_volts(eegbci, tmp_path):
    stores, volts, ch_names, sfreq = eegbci
    got = run_without_eegbench(f"""
        import hdf5plugin  # the HDF5 filters (blosc, zstd) for h5py
        import numpy as np, xarray as xr
        ds = xr.open_dataset({str(stores["hdf5"] / "signals" / "000" / "rec-00000.h5")!r}, engine="h5netcdf")
        x = ds["signals"]
        result = {{"volts": x.values.astype(np.float32), "channel": np.array(x["channel"].values.tolist()),
                  "time": x["time"].values, "dims": np.array(x.dims)}}
    """, tmp_path)
    assert tuple(got["dims"]) == ("channel", "time")
    np.testing.assert_array_equal(_bits(got["volts"]), _bits(volts))
    assert list(got["channel"]) == ch_names
    np.testing.assert_allclose(got["time"], np.arange(volts.shape[1]) / sfreq, rtol=0, atol=1e-12)


def test_tensorstore_reads_the_default_zarr_store(eegbci, tmp_path):
    pytest.importorskip("tensorstore")
    stores, volts, _, _ = eegbci
    got = run_without_eegbench(f"""
        import json
        import numpy as np, tensorstore as ts
        path = {str(stores["zarr"] / "signals" / "000" / "rec-00000" / "signals")!r}
        arr = ts.open({{"driver": "zarr3", "kvstore": {{"driver": "file", "path": path}}}}).result()
        attrs = json.load(open(path + "/zarr.json"))["attributes"]
        counts = arr.read().result()
        result = {{"volts": (counts * attrs["scale_factor"] + attrs["add_offset"]).astype(np.float32),
                  "dims": np.array(arr.domain.labels)}}
    """, tmp_path)
    assert tuple(got["dims"]) == ("channel", "time")
    np.testing.assert_array_equal(_bits(got["volts"]), _bits(volts))


def test_default_zarr_store_uses_only_spec_codecs(eegbci):
    import json

    stores = eegbci[0]
    spec = {"bytes", "blosc", "zstd", "gzip", "crc32c", "sharding_indexed", "transpose"}
    for meta_path in stores["zarr"].rglob("zarr.json"):
        meta = json.loads(meta_path.read_text())
        if meta_path.parent.name == "channel":  # names: the string data type's own codec (a registered extension)
            assert meta["data_type"] == "string" and meta["codecs"][0]["name"] == "vlen-utf8"
            continue
        codecs = list(meta.get("codecs", []))
        while codecs:
            codec = codecs.pop()
            assert codec["name"] in spec, (meta_path, codec)
            codecs += codec.get("configuration", {}).get("codecs", [])
            codecs += codec.get("configuration", {}).get("index_codecs", [])


def test_numcodecs_and_pyarrow_alone_read_a_compressed_parquet_store(eegbci, tmp_path):
    stores, volts, ch_names, sfreq = eegbci  # written with zstd + delta: shuffle, zstd and delta configs
    got = run_without_eegbench(f"""
        import json
        from pathlib import Path
        import numcodecs, numpy as np, pyarrow.parquet as pq
        root = Path({str(stores["parquet"])!r})
        recordings = pq.read_table(root / "tables" / "recordings.parquet").to_pandas()
        key = recordings["key"][0]
        index = pq.read_table(root / "signals" / "000" / f"{{key}}.index.parquet")
        meta = json.loads(index.schema.metadata[b"eegbench"])
        codecs = [numcodecs.get_codec(c) for c in meta["codecs"]]
        blob = (root / "signals" / "000" / meta["chunks_file"]).read_bytes()
        parts = []
        for offset, size in zip(index["offset"].to_pylist(), index["size"].to_pylist()):
            buf = blob[offset:offset + size]
            for codec in reversed(codecs):
                buf = codec.decode(buf)
            parts.append(np.frombuffer(buf, dtype=meta["dtype"]).reshape(meta["shape"][0], -1))
        counts = np.concatenate(parts, axis=1)
        channels = pq.read_table(root / "tables" / "channels.parquet").to_pandas()
        names = channels[channels["recording"] == 0].sort_values("index")["name"].tolist()
        result = {{"volts": (counts * meta["scale_factor"] + meta["add_offset"]).astype(np.float32),
                  "names": np.array(names), "meta_names": np.array(meta["channel_names"]),
                  "sfreq": meta["sampling_rate_hz"], "codecs": np.array([c["id"] for c in meta["codecs"]])}}
    """, tmp_path)
    assert list(got["codecs"]) == ["delta", "shuffle", "zstd"]
    np.testing.assert_array_equal(_bits(got["volts"]), _bits(volts))
    assert list(got["names"]) == list(got["meta_names"]) == ch_names
    assert float(got["sfreq"]) == sfreq


def test_numpy_alone_maps_an_uncompressed_parquet_store(eegbci, tmp_path):
    """The uncompressed .npy is blocked by chunk, (n_chunks, n_channels, chunk_samples): np.load maps it
    and the README's one-liner gives (n_channels, n_times), bitwise MNE's float32 volts."""
    stores, volts, ch_names, _ = eegbci
    got = run_without_eegbench(f"""
        from pathlib import Path
        import numpy as np, pyarrow.parquet as pq
        root = Path({str(stores["parquet-none"])!r})
        row = pq.read_table(root / "tables" / "recordings.parquet").to_pylist()[0]
        a = np.load(root / "signals" / "000" / f"{{row['key']}}.npy", mmap_mode="r")
        n_chunks, n_channels, chunk_samples = a.shape
        signals = a.transpose(1, 0, 2).reshape(n_channels, -1)[:, :row["n_times"]]
        s = 3 * chunk_samples + 17  # a window inside chunks 3..5, from those blocks only
        first, last = s // chunk_samples, (s + 2 * chunk_samples - 1) // chunk_samples
        block = a[first:last + 1].transpose(1, 0, 2).reshape(n_channels, -1)
        window = block[:, s - first * chunk_samples:s - first * chunk_samples + 2 * chunk_samples]
        result = {{"volts": np.ascontiguousarray(signals), "mapped": np.array(isinstance(a, np.memmap)),
                  "shape": np.array(a.shape), "chunk_samples": np.array(row["chunk_samples"]),
                  "window": window, "s": np.array(s), "padding": np.array(a[-1, :, row["n_times"] % chunk_samples or chunk_samples:].any())}}
    """, tmp_path)
    assert bool(got["mapped"]) and not bool(got["padding"])
    n_ch, n_times = volts.shape
    cs = int(got["chunk_samples"])
    assert tuple(got["shape"]) == (-(-n_times // cs), n_ch, cs)
    np.testing.assert_array_equal(_bits(got["volts"]), _bits(volts))
    s = int(got["s"])
    np.testing.assert_array_equal(_bits(got["window"]), _bits(volts[:, s:s + 2 * cs]))
