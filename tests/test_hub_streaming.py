"""``from_pretrained(..., streaming=True)``: the same lazy dataset over ``hf://`` byte ranges, against
the local Hub stand-in (tests/hub_server.py); requests and bytes counted at that server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import eegbench
from eegbench import hub
from eegbench.errors import HubError, OptionError
from eegbench.formats._chunks import CHUNK_CACHE
from eegbench.sources.synthetic import make_profile

pytest.importorskip("huggingface_hub")
constants = pytest.importorskip("huggingface_hub.constants")  # a lazy attribute of the package otherwise
sys.path.insert(0, str(Path(__file__).parent))
from hub_server import HubServer  # noqa: E402

FORMATS = ["hdf5", "zarr", "parquet"]


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("EEGBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubstores")
    ds = make_profile("smoke")
    srv = HubServer()
    url = srv.start()
    stores = {}
    for fmt in FORMATS:
        stores[fmt] = eegbench.save(ds, root / f"s.{fmt}", format=fmt, compression="blosc-zstd", chunk_seconds=1.0)
        srv.add_folder(f"me/stream-{fmt}", stores[fmt])
    yield srv, url, stores
    srv.stop()


def _repo_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.rglob("*") if p.is_file())


@pytest.mark.parametrize("fmt", FORMATS)
def test_streaming_windows_bitwise_and_counted(served, monkeypatch, fmt):
    srv, url, stores = served
    monkeypatch.setenv("HF_ENDPOINT", url)
    local = eegbench.open(stores[fmt])
    srv.requests.clear()
    srv.bytes_sent = 0
    ds = hub.from_pretrained(f"me/stream-{fmt}", streaming=True)
    served_paths = [p for m, p, s in srv.requests if "/resolve/" in p]
    # open: the revision resolved to its commit, then the header and tables.pack, nothing else
    assert [p.rsplit("/", 1)[-1] for p in served_paths] == ["eegbench.json", "tables.pack"], srv.requests
    assert sum(1 for m, p, s in srv.requests if p.startswith("api/datasets/")) == 1, srv.requests
    commit = ds.attrs["hub"]["commit"]
    assert all(f"/resolve/{commit}/" in p for p in served_paths)  # pinned: a moving branch cannot mix commits
    assert len(ds) == len(local) and list(ds.description.columns) == list(local.description.columns)

    n = local[1].n_times
    for start in (n // 3, n // 3 + 50):  # the same recording twice: its chunk index is fetched once
        CHUNK_CACHE.clear()
        srv.requests.clear()
        got = ds[1].get_data(start=start, stop=start + 200)
        assert got.tobytes() == local[1].get_data(start=start, stop=start + 200).tobytes()
        assert len(srv.requests) <= (2 if start == n // 3 else 1), srv.requests
        assert all(s == 206 for _m, _p, s in srv.requests)  # byte ranges only
    # a partial read never downloads the whole repository (nor the other recordings)
    assert srv.bytes_sent < _repo_bytes(stores[fmt]) / 2
    touched = {p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p, s in srv.requests}
    assert all("rec-00001" in p for p in touched)


def test_streaming_filters_select_recordings(served, monkeypatch):
    srv, url, stores = served
    monkeypatch.setenv("HF_ENDPOINT", url)
    local = eegbench.open(stores["zarr"])
    col = next(c for c in local.description.columns if local.description[c].nunique() > 1)
    value = local.description[col].iloc[0]
    want = [i for i, v in enumerate(local.description[col]) if v == value]
    srv.requests.clear()
    ds = hub.from_pretrained("me/stream-zarr", streaming=True, **{col: value})
    assert len(ds) == len(want)
    for j, i in enumerate(want):
        assert ds[j].get_data(start=0, stop=100).tobytes() == local[i].get_data(start=0, stop=100).tobytes()
    keys = {f"rec-{i:05d}" for i in want}
    signal_paths = [p for m, p, s in srv.requests if "/signals/" in p]
    assert signal_paths and all(any(k in p for k in keys) for p in signal_paths)  # nothing of the others


def test_streaming_errors_are_typed(served, monkeypatch):
    _srv, url, _stores = served
    monkeypatch.setenv("HF_ENDPOINT", url)
    with pytest.raises(HubError):
        hub.from_pretrained("me/no-such-repo", streaming=True)
    with pytest.raises(HubError):
        hub.from_pretrained("me/stream-zarr", revision="no-such-branch", streaming=True)
    with pytest.raises(OptionError):
        hub.from_pretrained("me/stream-zarr", streaming=True, offline=True)


def test_streaming_dataset_pickles_for_workers(served, monkeypatch):
    import pickle

    srv, url, stores = served
    monkeypatch.setenv("HF_ENDPOINT", url)
    ds = hub.from_pretrained("me/stream-parquet", streaming=True)
    again = pickle.loads(pickle.dumps(ds))
    local = eegbench.open(stores["parquet"])
    assert again[2].get_data(start=10, stop=90).tobytes() == local[2].get_data(start=10, stop=90).tobytes()


@pytest.mark.parametrize("pinned", [False, True])
def test_info_hf_url_reads_header_and_tables_only(served, monkeypatch, capsys, pinned):
    """`eegbench info hf://datasets/<repo>@<rev> -o endpoint=...` against the local Hub stand-in: the
    local summary's fields, 2 ranged GETs (the header and tables.pack) and no signal byte; a branch
    costs one API call to resolve it to a commit, a commit none."""
    import json

    from eegbench.cli import main

    srv, url, stores = served
    monkeypatch.setenv("HF_ENDPOINT", url)
    rev = hub.from_pretrained("me/stream-hdf5", streaming=True).attrs["hub"]["commit"] if pinned else "main"
    srv.requests.clear()
    srv.bytes_sent = 0
    assert main(["info", f"hf://datasets/me/stream-hdf5@{rev}", "--json", "-o", f"endpoint={url}"]) == 0
    got = json.loads(capsys.readouterr().out)
    resolved = [p.rsplit("/", 1)[-1] for _m, p, _s in srv.requests if "/resolve/" in p]
    assert resolved == ["eegbench.json", "tables.pack"], srv.requests
    assert got["requests"] == 2 and got["bytes_received"] <= srv.bytes_sent
    api = [p for _m, p, _s in srv.requests if p.startswith("api/")]
    assert len(api) == (0 if pinned else 1), srv.requests
    local = eegbench.info(stores["hdf5"])
    for key, value in local.items():
        if key != "path":
            assert got[key] == value, key
    assert got["path"] == f"hf://datasets/me/stream-hdf5@{rev}"
