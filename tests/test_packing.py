"""Packs: short recordings stored end to end in shared files (eegbench.packing, issue #14).

Round trips bit for bit in every format, windows at each member's edges equal the unpacked
store's (never a neighbour's samples), crafted or damaged packs raise CorruptStoreError when a
member is touched, partial opens and Hub file selection include the pack's files, pickled and
remote datasets read packed members, and ``pack=False`` writes the layout without packs.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import pickle
import shutil

import numpy as np
import pytest
from test_remote_validation import reseal

import eegbench
from conftest import FORMATS, assert_recordings_equal, make_recording
from eegbench import manifest, packing, validate
from eegbench.errors import CorruptStoreError, OptionError
from eegbench.io.layout import MAX_FOLDER_ENTRIES, max_folder_entries, signal_prefix
from eegbench.layout import files_by_recording
from eegbench.model import ArraySource, Dataset, Recording

LENGTHS = [150, 230, 100, 401, 999, 120]  # 100 Hz: chunks of 100 samples, members at multiples of 100


def _dataset(quantized: bool = True) -> Dataset:
    return Dataset([make_recording(4, n, 100.0, seed=i, quantized=quantized, name=f"r{i}",
                                   description={"subject": f"{i:03d}"})
                    for i, n in enumerate(LENGTHS)])


def _nine() -> Dataset:
    return Dataset([make_recording(2, 250, 100.0, seed=i, name=f"r{i}") for i in range(9)])


def _storages(path) -> list[dict]:
    from eegbench.formats import get_backend
    from eegbench.tables import frame_from_parquet, from_json

    fmt = manifest.read_header(path)["format"]
    frame = frame_from_parquet(get_backend(fmt).read_table(path, "recordings"))
    return [from_json(s) for s in frame["storage"]]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Each format: the same dataset packed (blosc-zstd, int16 counts) and not packed."""
    root = tmp_path_factory.mktemp("packed")
    ds = _dataset()
    return ds, {fmt: (eegbench.save(ds, root / f"p-{fmt}", format=fmt, pack=True),
                      eegbench.save(ds, root / f"n-{fmt}", format=fmt, pack=False)) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("quantized,compression", [(True, "blosc-zstd"), (False, "none"), (True, "none")])
def test_packed_round_trip_is_exact(tmp_path, fmt, quantized, compression):
    ds = _dataset(quantized)
    path = eegbench.save(ds, tmp_path / "s", format=fmt, compression=compression, pack=True)
    header = manifest.read_header(path)
    assert list(header[packing.FIELD]) == ["pack-00000"]
    assert header[packing.FIELD]["pack-00000"]["members"] == len(LENGTHS)
    storages = _storages(path)
    assert [s["pack"] for s in storages] == ["pack-00000"] * len(LENGTHS)
    offsets = [s["offset"] for s in storages]
    assert offsets == [0, 200, 500, 600, 1100, 2100]  # each on a chunk boundary, in order
    assert not any("rec-" in rel for rel in header["files"])  # no file of its own
    opened = eegbench.open(path)
    for a, b in zip(opened, ds):
        assert_recordings_equal(a, b)
    dtype = "int16" if quantized and compression != "none" else "float32"
    assert {r.source.parent.quantization is not None for r in opened} == {dtype == "int16"}


def test_plan_groups_only_equal_layouts_in_order(tmp_path):
    recs = [make_recording(4, 300, 100.0, seed=0), make_recording(4, 200, 100.0, seed=1),
            make_recording(5, 300, 100.0, seed=2),  # other channel count: alone
            make_recording(4, 300, 100.0, seed=3), make_recording(4, 300, 100.0, seed=4),
            make_recording(4, 300, 200.0, seed=5),  # other rate: alone
            make_recording(4, 300, 100.0, seed=6)]  # a single candidate left: alone
    ds = Dataset(recs)
    path = eegbench.save(ds, tmp_path / "mixed.h5", pack=True)
    storages = _storages(path)
    assert [s.get("pack") for s in storages] == ["pack-00000", "pack-00000", None, "pack-00001", "pack-00001",
                                                 None, None]
    files = manifest.read_header(path)["files"]
    assert {"signals/000/rec-00002.h5", "signals/000/rec-00005.h5", "signals/000/rec-00006.h5",
            "signals/000/pack-00000.h5", "signals/000/pack-00001.h5"} == {r for r in files if r.startswith("signals/")}
    for a, b in zip(eegbench.open(path), ds):
        assert_recordings_equal(a, b)


def test_plan_bounds_packs(monkeypatch):
    recs = [make_recording(2, 250, 100.0, seed=i) for i in range(9)]
    from eegbench.codecs import resolve
    from eegbench.formats import get_backend
    from eegbench.store import plan_layout

    layouts = [plan_layout(r, resolve("blosc-zstd", None), 1.0, "auto", False, get_backend("hdf5")) for r in recs]
    keys = [f"rec-{i:05d}" for i in range(9)]
    monkeypatch.setattr(packing, "MAX_PACK_CHUNKS", 9)  # 3 members of 3 chunks each
    units = packing.plan(recs, layouts, keys, True)
    assert [u.key for u in units] == ["pack-00000", "pack-00001", "pack-00002"]
    assert [[m for m, _ in u.members] for u in units] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert all(u.layout.n_times == 850 for u in units)
    monkeypatch.setattr(packing, "MAX_PACK_CHUNKS", 1 << 30)
    monkeypatch.setattr(packing, "MAX_PACK_BYTES", 2 * 2 * 700)  # int16: at most 700 samples
    assert [len(u.members or ()) for u in packing.plan(recs, layouts, keys, True)] == [2] * 4 + [0]


def test_auto_packs_only_many_short_recordings():
    small = [Recording(ArraySource(np.zeros((4, 1000), np.float32)), 100.0, list("abcd"))] * 300
    from eegbench.codecs import resolve
    from eegbench.formats import get_backend
    from eegbench.store import plan_layout

    lay = plan_layout(small[0], resolve("blosc-zstd", None), 1.0, "auto", False, get_backend("zarr"))
    assert any(packing.candidates(small, [lay] * 300, "auto"))
    assert not any(packing.candidates(small[:255], [lay] * 255, "auto"))  # too few: the layout of before
    assert not any(packing.candidates(small, [lay] * 300, False))
    big = packing.AUTO_BELOW_BYTES // 16  # 4 channels x 4 bytes: exactly the bound -> not packed
    from dataclasses import replace

    assert not any(packing.candidates(small, [replace(lay, n_times=big)] * 300, "auto"))
    assert all(packing.candidates(small, [replace(lay, n_times=big)] * 300, True))
    with pytest.raises(OptionError):
        packing.resolve("sometimes")
    assert packing.resolve("always") is True and packing.resolve("never") is False


@pytest.mark.parametrize("fmt", FORMATS)
def test_windows_at_member_edges_equal_the_unpacked_store(packed, fmt):
    ds, stores = packed
    p, n = (eegbench.open(s) for s in stores[fmt])
    for i, length in enumerate(LENGTHS):
        a, b, orig = p[i], n[i], ds[i].get_data()
        for start, stop in [(0, 1), (0, 37), (length - 37, length), (length - 1, length), (0, length)]:
            got = a.get_data(start=start, stop=stop)
            np.testing.assert_array_equal(got, b.get_data(start=start, stop=stop))
            np.testing.assert_array_equal(got, orig[:, start:stop])  # never a neighbour's samples
        starts = np.array([0, length // 3, length - 50])
        np.testing.assert_array_equal(a.get_windows(starts, 50), b.get_windows(starts, 50))
        with pytest.raises(Exception) as exc_p:
            a.get_data(start=0, stop=length + 1)
        with pytest.raises(Exception) as exc_n:
            b.get_data(start=0, stop=length + 1)
        assert type(exc_p.value) is type(exc_n.value)
        np.testing.assert_array_equal(a.get_data(start=length - 10, stop=length + 20, pad=True),
                                      b.get_data(start=length - 10, stop=length + 20, pad=True))


def test_read_batch_across_members(packed):
    from eegbench.model import read_batch

    ds, stores = packed
    p = eegbench.open(stores["zarr"][0])
    for i in range(len(LENGTHS)):
        starts = np.arange(0, LENGTHS[i] - 100 + 1, 17)
        got = read_batch(p[i].source, starts, 100, np.array([3, 0]))
        want = np.stack([ds[i].get_data()[[3, 0], s:s + 100] for s in starts])
        np.testing.assert_array_equal(got, want)
    torch = pytest.importorskip("torch")
    from eegbench.torch import WindowDataset

    wp, wn = WindowDataset(p, 50, stride_samples=50), WindowDataset(eegbench.open(stores["zarr"][1]), 50,
                                                                     stride_samples=50)
    idx = list(range(len(wn)))  # one batch over the windows of every member
    assert len(wp) == len(wn) == sum(n // 50 for n in LENGTHS)
    bp, bn = wp.__getitems__(idx), wn.__getitems__(idx)
    assert len(bp) == len(bn) == len(idx)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(bp, bn))


def _edit_storage(row, **changes):
    def edit(frame):
        frame = frame.copy()
        col = frame["storage"].astype(object)
        storage = json.loads(col.iloc[row])
        for k, v in changes.items():
            if v is None:
                storage.pop(k, None)
            else:
                storage[k] = v
        col.iloc[row] = json.dumps(storage)
        frame["storage"] = col
        return frame
    return edit


@pytest.mark.parametrize("change", [
    {"offset": -100}, {"offset": 37}, {"offset": 2100}, {"offset": 10 ** 9}, {"offset": "200"}, {"offset": None},
    {"pack": "pack-00007"}, {"pack": "../pack-00000"}, {"pack": 3}, {"pack": ""},
])
def test_crafted_member_storage_is_corrupt_on_touch(packed, tmp_path, change):
    _, stores = packed
    path = tmp_path / "s"
    shutil.copytree(stores["hdf5"][0], path)
    reseal(path, "recordings", _edit_storage(1, **change))
    ds = eegbench.open(path)  # open checks whole columns only
    with pytest.raises(CorruptStoreError):
        ds[1]
    assert ds[0].get_data().shape == (4, LENGTHS[0])  # the other members still read


def _reseal_header(path, edit) -> None:
    hp = path / manifest.HEADER
    header = json.loads(hp.read_text())
    edit(header)
    header["header_sha256"] = validate.header_digest(header)
    hp.write_text(json.dumps(header))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("edit", ["short", "no-storage", "foreign-file", "not-int"])
def test_crafted_pack_entry_is_corrupt_on_touch(packed, tmp_path, fmt, edit):
    _, stores = packed
    path = tmp_path / "s"
    shutil.copytree(stores[fmt][0], path)

    def change(header):
        entry = header[packing.FIELD]["pack-00000"]
        if edit == "short":  # the last member would end past the pack
            entry["n_times"] = 2100 + LENGTHS[-1] - 1
        elif edit == "no-storage":
            del entry["storage"]
        elif edit == "not-int":
            entry["n_times"] = "2220"
        else:  # the pack's storage names a file the manifest does not hold
            s = entry["storage"]
            for k in ("file", "array"):
                if k in s:
                    s[k] = s[k].replace("pack-00000", "pack-00009")
            if "files" in s:
                s["files"] = {k: v.replace("pack-00000", "pack-00009") for k, v in s["files"].items()}
    _reseal_header(path, change)
    ds = eegbench.open(path)
    with pytest.raises(CorruptStoreError):
        ds[len(LENGTHS) - 1].get_data()


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_pack_file_is_corrupt_when_a_member_is_touched(packed, tmp_path, fmt):
    _, stores = packed
    path = tmp_path / "s"
    shutil.copytree(stores[fmt][0], path)
    files = manifest.read_header(path)["files"]
    rel = max((r for r in files if "pack-00000" in r), key=lambda r: files[r]["size"])
    with open(path / rel, "r+b") as fh:
        fh.truncate(files[rel]["size"] // 2)
    ds = eegbench.open(path)  # the pack's files are checked when a member is first built
    with pytest.raises(CorruptStoreError, match="truncated"):
        ds[2]
    with pytest.raises(CorruptStoreError):
        eegbench.verify(path)


def test_members_of_a_pack_share_one_source_and_agree(packed, tmp_path):
    _, stores = packed
    ds = eegbench.open(stores["parquet"][0])
    assert ds[0].source.parent is ds[5].source.parent
    path = tmp_path / "s"
    shutil.copytree(stores["parquet"][0], path)
    reseal(path, "recordings", lambda f: f.assign(dtype=["int16"] * 5 + ["int32"]))
    ds = eegbench.open(path)
    ds[0]
    with pytest.raises(CorruptStoreError, match="disagree"):
        ds[5]


@pytest.mark.parametrize("fmt", FORMATS)
def test_partial_copy_of_one_member_holds_only_its_pack(tmp_path, fmt, monkeypatch):
    monkeypatch.setattr(packing, "MAX_PACK_CHUNKS", 9)  # 3 members of 3 chunks a pack
    ds = _nine()
    full = eegbench.save(ds, tmp_path / "full", format=fmt, pack=True)
    header = manifest.read_header(full)
    assert len(header[packing.FIELD]) >= 3
    storages = _storages(full)
    keys = [f"rec-{i:05d}" for i in range(len(ds))]
    packs = {k: s["pack"] for k, s in zip(keys, storages) if "pack" in s}
    by_key, meta = files_by_recording(header["files"], keys, packs)
    want = 3
    other_pack = next(p for k, p in packs.items() if p != packs.get(keys[want]))
    assert not any(other_pack in rel for rel in by_key[keys[want]])
    part = tmp_path / "part"
    for rel in [*meta, *by_key[keys[want]], manifest.HEADER]:
        (part / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full / rel, part / rel)
    opened = eegbench.open(part, recordings=[keys[want]])
    assert len(opened) == 1
    assert_recordings_equal(opened[0], ds[want])


def _read_all(dataset) -> list:
    return [r.get_data() for r in dataset]


def test_pickled_packed_dataset_reads_in_a_child(packed):
    ds, stores = packed
    opened = eegbench.open(stores["hdf5"][0])
    opened[0].get_data()  # the parent built and read one member first
    clone = pickle.loads(pickle.dumps(opened))
    assert all(np.array_equal(a, b.get_data()) for a, b in zip(_read_all(clone), ds))
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply(_read_all, (opened,))
    assert all(np.array_equal(a, b.get_data()) for a, b in zip(got, ds))


@pytest.mark.parametrize("fmt", FORMATS)
def test_remote_packed_store_reads_members(packed, fmt):
    from benchmarks._servers import RangeHTTPServer

    ds, stores = packed
    with RangeHTTPServer(stores[fmt][0].parent) as server:
        remote = eegbench.open(f"{server.url}/{stores[fmt][0].name}")
        for i in (0, 4, 5):
            np.testing.assert_array_equal(remote[i].get_data(start=3, stop=LENGTHS[i]), ds[i].get_data()[:, 3:])


def test_never_keeps_the_layout_without_packs(packed, tmp_path):
    ds, stores = packed
    for fmt in FORMATS:
        path = stores[fmt][1]
        header = manifest.read_header(path)
        assert packing.FIELD not in header
        assert not any("pack" in s for s in _storages(path))
        auto = eegbench.save(ds, tmp_path / fmt, format=fmt)  # 6 recordings: "auto" does not pack
        assert sorted(manifest.read_header(auto)["files"]) == sorted(header["files"])
        assert _storages(auto)[0].keys() == _storages(path)[0].keys()


def test_info_counts_packs(packed):
    _, stores = packed
    summary = eegbench.info(stores["zarr"][0])
    assert (summary["n_packs"], summary["packed_recordings"]) == (1, len(LENGTHS))
    assert eegbench.info(stores["zarr"][1])["n_packs"] == 0


def test_jobs_write_packs(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "MAX_PACK_CHUNKS", 9)
    ds = _nine()
    path = eegbench.save(ds, tmp_path / "j.h5", pack=True, jobs=2)
    assert len(manifest.read_header(path)[packing.FIELD]) >= 3
    for a, b in zip(eegbench.open(path), ds):
        assert_recordings_equal(a, b)


def test_folder_fan_out_with_many_packs_and_recordings():
    """20,000 recordings planned (not written): packs and lone recordings alike stay under the Hub's limit."""
    source = ArraySource(np.zeros((2, 100), np.float32))
    recs = [Recording(source, 100.0, ["a", "b"]) for _ in range(20_000)]
    from dataclasses import replace

    from eegbench.codecs import resolve
    from eegbench.formats import get_backend
    from eegbench.store import plan_layout

    lay = plan_layout(recs[0], resolve("blosc-zstd", None), 1.0, "auto", False, get_backend("zarr"))
    keys = [f"rec-{i:05d}" for i in range(20_000)]
    for layouts in ([lay] * 20_000,  # ~20 packs
                    [replace(lay, n_channels=2 + i % 2) for i in range(20_000)]):  # no two alike: 20,000 alone
        units = packing.plan(recs, layouts, keys, True)
        paths = []
        for u in units:  # zarr-like: a folder per key with a few entries, plus the fan folder's zarr.json
            paths += [f"{signal_prefix(u.key)}/zarr.json", f"{signal_prefix(u.key)}/data/c/0/0"]
        assert max_folder_entries(paths)[1] <= MAX_FOLDER_ENTRIES
        assert len({u.key for u in units}) == len(units)


def test_hub_files_of_a_member_are_its_pack(tmp_path, monkeypatch):
    from eegbench.hub import format_info, verify_repo

    monkeypatch.setattr(packing, "MAX_PACK_CHUNKS", 9)
    path = eegbench.save(_nine(), tmp_path / "h.zarr", pack=True)
    info = format_info(path)
    recs = info["recordings"]
    assert all(rel.startswith("signals/000/pack-00000/") for rel in recs[0]["files"]) and recs[0]["files"]
    assert recs[0]["files"] == recs[2]["files"] and not set(recs[0]["files"]) & set(recs[3]["files"])
    assert not any("pack-" in rel for rel in info["metadata_files"])
    assert verify_repo(path).ok


def test_packed_store_converts_to_another_format_unpacked(packed, tmp_path):
    ds, stores = packed
    out = eegbench.save(eegbench.open(stores["zarr"][0]), tmp_path / "again.h5", pack=False)
    assert packing.FIELD not in manifest.read_header(out)
    for a, b in zip(eegbench.open(out), ds):
        assert_recordings_equal(a, b)
    assert eegbench.open(out)[0].source.quantization is not None  # the counts went through, not floats


def test_xarray_alone_reads_a_packed_zarr_member(packed, tmp_path):
    """The ecosystem contract for packs: the tables' storage cell + the header's pack entry are
    enough for xarray/pyarrow to read one member's stored counts (no eegbench in the reader)."""
    pytest.importorskip("xarray")
    from test_ecosystem import run_without_eegbench

    ds, stores = packed
    got = run_without_eegbench(f"""
        import json
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq, xarray as xr, zarr
        root = {str(stores["zarr"][0])!r}
        header = json.load(open(root + "/eegbench.json"))
        table = zarr.open_array(root + "/tables/recordings", mode="r")[:]  # the Parquet bytes
        recordings = pq.read_table(pa.BufferReader(table.tobytes())).to_pandas()
        row = recordings.iloc[4]
        where = json.loads(row["storage"])
        array = header["packs"][where["pack"]]["storage"]["array"]  # signals/000/pack-00000/signals
        group, name = array.rsplit("/", 1)
        x = xr.open_zarr(root, group=group)[name]
        result = {{"volts": x.isel(time=slice(where["offset"], where["offset"] + row["n_times"])).values}}
    """, tmp_path)
    member = eegbench.open(stores["zarr"][0])[4]  # per-channel calibration: xarray shows the int16 counts
    np.testing.assert_array_equal(got["volts"], member.source.read_counts(0, member.n_times))
    np.testing.assert_array_equal(member.source.quantization.reconstruct(got["volts"].astype(np.int16)),
                                  ds[4].get_data())


def test_cli_convert_pack_option_and_info(packed, tmp_path, capsys):
    from eegbench.cli import main

    ds, stores = packed
    dest = tmp_path / "cli.h5"
    assert main(["convert", str(stores["zarr"][1]), str(dest), "--pack", "always", "-q"]) == 0
    assert list(manifest.read_header(dest)[packing.FIELD]) == ["pack-00000"]
    assert main(["convert", str(dest), str(tmp_path / "never.h5"), "--pack", "never", "-q"]) == 0
    assert packing.FIELD not in manifest.read_header(tmp_path / "never.h5")
    capsys.readouterr()
    assert main(["info", str(dest)]) == 0
    assert f"({len(LENGTHS)} recordings in 1 pack)" in capsys.readouterr().out
    for a, b in zip(eegbench.open(tmp_path / "never.h5"), ds):
        assert_recordings_equal(a, b)
