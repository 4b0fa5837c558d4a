"""The shared file manager and byte-range door (eegbench.io): bounded descriptors, coalesced reads,
typed resource errors, replaced files never read as the old ones, and many recordings read under
a low open-file limit in every format."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import eegbench
from eegbench.errors import CorruptStoreError, ResourceLimitError
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.io import FILES, FileManager, LocalSource, coalesce, source_for

ROOT = Path(__file__).resolve().parents[1]


def _files(tmp_path: Path, n: int, size: int = 1000) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"f{i:03d}.bin"
        p.write_bytes(bytes((i + j) % 251 for j in range(size)))
        out.append(p)
    return out


def test_coalesce_merges_neighbours_and_keeps_order():
    ranges = [(100, 200), (0, 50), (60, 90), (5000, 5100), (200, 300)]
    reads = coalesce(ranges, max_gap=5)
    assert [(s, e) for s, e, _ in reads] == [(0, 50), (60, 90), (100, 300), (5000, 5100)]
    assert sorted(i for _, _, m in reads for i in m) == list(range(5))
    assert [(s, e) for s, e, _ in coalesce(ranges, max_gap=4096)] == [(0, 300), (5000, 5100)]


def test_get_ranges_is_one_read_per_coalesced_group(tmp_path, monkeypatch):
    (path,) = _files(tmp_path, 1, 20000)
    data = path.read_bytes()
    src = LocalSource(tmp_path)
    calls = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: calls.append((n, off)) or real(fd, n, off))
    ranges = [(3000, 3500), (0, 1000), (1000, 2000), (19000, 21000)]  # the last runs past the end
    got = src.get_ranges(path.name, ranges)
    assert [bytes(g) for g in got] == [data[a:b] for a, b in ranges]
    assert len(got[3]) == 1000  # short at the end of the file, never padded
    assert len(calls) == 2  # [0, 3500) and [19000, 21000)


def test_cap_bounds_open_handles_and_reopens_transparently(tmp_path):
    paths = _files(tmp_path, 20)
    mgr = FileManager(maxsize=4)
    for _ in range(3):
        for p in paths:
            assert mgr.pread(str(p), 10, 5) == p.read_bytes()[5:15]
            assert len(mgr) <= 4
    assert mgr.opens > 20 and mgr.evictions >= mgr.opens - 4
    # a handle in use is never closed under its reader, even when the cap is exceeded meanwhile
    with mgr.mapped(str(paths[0])) as mm:
        for p in paths[1:]:
            mgr.pread(str(p), 1, 0)
        assert mm[:10] == paths[0].read_bytes()[:10]
    mgr.clear()
    assert len(mgr) == 0


def test_running_out_of_descriptors_is_a_resource_error_not_corruption(tmp_path, monkeypatch):
    paths = _files(tmp_path, 3)
    mgr = FileManager(maxsize=8)
    mgr.pread(str(paths[0]), 1, 0)
    real_open = os.open
    failures = [1]

    def flaky(path, *a, **k):  # EMFILE once: the manager closes idle handles and retries
        if failures and str(path).endswith("f001.bin"):
            failures.pop()
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", flaky)
    assert mgr.pread(str(paths[1]), 3, 0) == paths[1].read_bytes()[:3]
    assert not mgr.is_open(str(paths[0]))  # evicted to make room
    monkeypatch.setattr(os, "open", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EMFILE, "Too many")))
    with pytest.raises(ResourceLimitError) as info:
        mgr.pread(str(paths[2]), 3, 0)
    assert not isinstance(info.value, CorruptStoreError) and isinstance(info.value, OSError)


def test_a_replaced_file_is_never_read_as_the_one_first_seen(tmp_path):
    (path,) = _files(tmp_path, 1)
    old = LocalSource(tmp_path)
    assert old.get(path.name, 0, 4) == path.read_bytes()[:4]
    tmp = tmp_path / "new.tmp"
    tmp.write_bytes(b"NEW!" * 300)
    os.replace(tmp, path)  # what an overwrite by rename does
    assert LocalSource(tmp_path).get(path.name, 0, 4) == b"NEW!"  # a new reader sees the new file
    with pytest.raises(CorruptStoreError, match="replaced"):
        old.get(path.name, 0, 4)  # the old reader gets an error, not the new file's bytes


def test_source_for_local_and_unknown_scheme(tmp_path):
    assert source_for(tmp_path) == LocalSource(tmp_path)
    with pytest.raises(eegbench.errors.OptionError, match="no byte source"):
        source_for("nosuch://bucket/store")


def test_files_closed_on_dataset_close(tmp_path):
    rec = eegbench.synthetic.make_dataset(2, n_channels=2, sfreq=100.0, duration_s=4.0, seed=3)
    for fmt in ("hdf5", "zarr", "parquet"):
        ds = eegbench.open(eegbench.save(rec, tmp_path / fmt, format=fmt))
        before = len(FILES)
        for r in ds:
            r.get_data(start=0, stop=50)
        assert len(FILES) > before - 1
        ds.close()
        assert not [k for k in FILES._handles if str(tmp_path / fmt) in k[0]]


_LOW_LIMIT_SCRIPT = textwrap.dedent("""
    import os, resource, sys
    import numpy as np
    LIMIT, N, READS, CAP = (int(os.environ[k]) for k in ("T_LIMIT", "T_N", "T_READS", "EEGBENCH_MAX_OPEN_FILES"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    import eegbench
    from eegbench.formats._chunks import CHUNK_CACHE
    from eegbench.io import FILES
    CHUNK_CACHE.max_bytes = 0 if "nocache" in sys.argv else CHUNK_CACHE.max_bytes
    baseline = len(os.listdir("/proc/self/fd"))
    expected = eegbench.synthetic.make_dataset(N, n_channels=2, sfreq=100.0, duration_s=4.0, seed=7)
    rng = np.random.default_rng(0)
    peak = 0
    for path in sys.argv[1:]:
        if path == "nocache":
            continue
        ds = eegbench.open(path)
        assert len(ds) == N
        for _ in range(READS):
            i, s = int(rng.integers(N)), int(rng.integers(0, 300))
            got = ds[i].get_data(start=s, stop=s + 100)
            want = expected[i].get_data(start=s, stop=s + 100)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (path, i, s)
            if _ % 10 == 0:
                b = ds[i].get_windows([s, 0, 250], 50)
                assert np.array_equal(b[0].view(np.uint32), want[:, :50].view(np.uint32))
            peak = max(peak, len(FILES))
        print(path, "ok", len(os.listdir("/proc/self/fd")) - baseline, peak, flush=True)
        assert peak <= CAP
""")


@pytest.mark.parametrize("nocache", [False, True], ids=["cache", "nocache"])
def test_many_recordings_under_a_low_open_file_limit(tmp_path, nocache):
    """Random reads over many more recordings than the cap, with RLIMIT_NOFILE far below the
    number of signal files, succeed bit-exactly in every format; the open handles stay <= cap."""
    n, cap, limit = 48, 8, 40  # 48 recordings x 1-2 signal files, 40 descriptors in all
    ds = eegbench.synthetic.make_dataset(n, n_channels=2, sfreq=100.0, duration_s=4.0, seed=7)
    stores = [str(eegbench.save(ds, tmp_path / f"{fmt}-{c}", format=fmt, compression=c, chunk_seconds=0.5))
              for fmt, c in [("hdf5", "blosc-lz4"), ("zarr", "blosc-lz4"), ("parquet", "blosc-lz4"),
                             ("parquet", "none"), ("hdf5", "none")]]
    env = {**os.environ, "EEGBENCH_MAX_OPEN_FILES": str(cap), "PYTHONPATH": str(ROOT), "T_LIMIT": str(limit),
           "T_N": str(n), "T_READS": "150"}
    args = [*stores, "nocache"] if nocache else stores
    res = subprocess.run([sys.executable, "-c", _LOW_LIMIT_SCRIPT, *args], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count(" ok ") == len(stores)
    CHUNK_CACHE.clear()


# --- signals/ fan-out ---------------------------------------------------------------------------
def test_layout_of_20000_recordings_keeps_every_folder_under_the_hub_limit(tmp_path):
    """Every format's real file names for 3 recordings define the per-recording pattern; the
    same pattern for 20,000 keys (dry, nothing written) has no folder over 10,000 entries."""
    from eegbench.io.layout import MAX_FOLDER_ENTRIES, fanout, max_folder_entries

    rec = eegbench.synthetic.make_dataset(3, n_channels=2, sfreq=100.0, duration_s=2.0, seed=1)
    keys = [f"rec-{i:05d}" for i in range(20_000)]
    assert fanout("rec-00999") == "000" and fanout("rec-01000") == "001" and fanout("rec-123456") == "123"
    for fmt, comp in [("hdf5", "zstd"), ("zarr", "zstd"), ("parquet", "zstd"), ("parquet", "none")]:
        path = eegbench.save(rec, tmp_path / f"{fmt}-{comp}", format=fmt, compression=comp)
        info = eegbench.info(path)
        files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        per_rec = [f for f in files if "rec-00000" in f]
        assert info["files_per_recording"] == len(per_rec) >= 1
        assert info["max_folder_entries"] <= 10
        # the dry layout: each recording's files renamed to its key, plus the store-level files
        dry = [f for f in files if "rec-0000" not in f and fanout("rec-00000") + "/zarr.json" not in f]
        for key in keys:
            dry += [f.replace("rec-00000", key).replace(f"/{fanout('rec-00000')}/", f"/{fanout(key)}/")
                    for f in per_rec]
        dry += [f"signals/{fanout(k)}/zarr.json" for k in keys[::1000]] if fmt == "zarr" else []
        folder, n = max_folder_entries(dry)
        assert n <= MAX_FOLDER_ENTRIES, (fmt, folder, n)
        assert len({f for f in dry if "/rec-" in f}) == 20_000 * len(per_rec)
        # the unfanned layout would have broken the limit: the test can fail
        flat = [f"signals/{key}{f.split('rec-00000', 1)[1]}" for key in keys for f in per_rec]
        assert max_folder_entries(flat)[1] > MAX_FOLDER_ENTRIES


# --- open that scales ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_open_reads_a_constant_number_of_files_and_builds_recordings_lazily(tmp_path, fmt, monkeypatch):
    import builtins

    import h5py

    counts = {}
    opened: list[str] = []
    real_open, real_os_open, real_h5 = builtins.open, os.open, h5py.File

    def spies():
        monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
        monkeypatch.setattr(os, "open", lambda f, *a, **k: opened.append(str(f)) or real_os_open(f, *a, **k))
        monkeypatch.setattr(h5py, "File", lambda f, *a, **k: opened.append(str(f)) or real_h5(f, *a, **k))

    for n in (3, 30):
        ds = eegbench.synthetic.make_dataset(n, n_channels=2, sfreq=100.0, duration_s=1.0, seed=n)
        path = eegbench.save(ds, tmp_path / f"{fmt}-{n}", format=fmt)
        opened.clear()
        spies()
        opened_ds = eegbench.open(path)
        monkeypatch.undo()
        counts[n] = len(opened)
        assert not [f for f in opened if "/signals/" in f]
        assert opened_ds.recordings.built() == []  # nothing built until touched
        assert len(opened_ds) == n
        np.testing.assert_array_equal(opened_ds[n - 1].get_data(start=0, stop=10), ds[n - 1].get_data(start=0, stop=10))
        assert len(opened_ds.recordings.built()) == 1
        opened_ds.close()
    assert counts[3] == counts[30]


# --- batches decode each chunk once -------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_read_batch_decodes_each_chunk_once_without_the_cache(tmp_path, fmt, monkeypatch):
    ds = eegbench.synthetic.make_dataset(1, n_channels=3, sfreq=100.0, duration_s=20.0, seed=4)
    rec = eegbench.open(eegbench.save(ds, tmp_path / fmt, format=fmt, compression="zstd", chunk_seconds=1.0))[0]
    src = rec.source
    loaded: list[int] = []
    one, many = type(src)._load_chunk, type(src)._load_chunks
    monkeypatch.setattr(type(src), "_load_chunk", lambda self, i: loaded.append(i) or one(self, i))
    monkeypatch.setattr(type(src), "_load_chunks", lambda self, ix: loaded.extend(ix) or many(self, ix))
    decode = type(src)._decode_stored_bytes  # chunks decoded straight out of the map
    monkeypatch.setattr(type(src), "_decode_stored_bytes", lambda self, i, data: loaded.append(i) or decode(self, i, data))
    monkeypatch.setattr(CHUNK_CACHE, "max_bytes", 0)  # decoded-chunk cache off
    CHUNK_CACHE.clear()
    starts = [50, 120, 130, 150, 1850, 60]  # overlapping 150-sample windows: chunks 0..2 and 18..19
    got = rec.get_windows(starts, 150)
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(got[i].view(np.uint32), ds[0].get_data(start=s, stop=s + 150).view(np.uint32))
    assert sorted(loaded) == [0, 1, 2, 18, 19]  # each once, although windows share chunks
