"""Hub sharing without the Hub: uploads patched at the HfApi boundary, downloads from a local
Hub-compatible server (tests/hub_server.py) through the real huggingface_hub client and cache,
offline runs with every socket connection made to fail."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import eegbench
from eegbench import hub
from eegbench.errors import (
    CacheMissError,
    EmptySelectionError,
    HubError,
    HubLimitError,
    UnknownColumnError,
    UnsafeRepoError,
)
from eegbench.sources.synthetic import make_profile

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import HfApi  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import HubServer  # noqa: E402

huggingface_hub.utils.disable_progress_bars()
FORMATS = ["hdf5", "zarr", "parquet"]
SECRET = "hf_" + "s3cr3tT0kenValue" * 3


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("EEGBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("EEGBENCH_CACHE_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="module")
def server():
    srv = HubServer()
    url = srv.start()
    yield srv, url
    srv.stop()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    ds = make_profile("smoke")
    return {f: eegbench.save(ds, root / f"s.{f}", format=f) for f in FORMATS}


def _publish(srv: HubServer, store: Path, repo_id: str, tmp: Path) -> hub.PushPlan:
    """push_to_hub with HfApi patched: the staged folder is published on the local server."""
    def fake_upload(self, repo_id, folder_path, **kwargs):
        srv.add_folder(repo_id, Path(folder_path), branch=kwargs.get("revision") or "main")

    with mock.patch.object(HfApi, "create_repo"), mock.patch.object(HfApi, "upload_large_folder", fake_upload):
        return hub.push_to_hub(store, repo_id, cache_dir=tmp / "uploads")


@pytest.fixture(scope="module")
def repos(server, stores, tmp_path_factory):
    srv, _url = server
    tmp = tmp_path_factory.mktemp("push")
    return {f: (f"me/smoke-{f}", _publish(srv, stores[f], f"me/smoke-{f}", tmp)) for f in FORMATS}


@pytest.fixture
def endpoint(server, monkeypatch):
    srv, url = server
    monkeypatch.setenv("HF_ENDPOINT", url)
    return srv


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails; returns the list of attempted connections."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _repo_files(store: Path) -> set[str]:
    header = json.loads((store / "eegbench.json").read_text())
    return set(header["files"]) | {"eegbench.json", *hub.REPO_FILES}


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_dry_run_plan_is_the_exact_repository(stores, tmp_path, no_network, fmt):
    plan = hub.push_to_hub(stores[fmt], "me/plan", dry_run=True, cache_dir=tmp_path)
    assert set(plan.files) == _repo_files(stores[fmt])
    header = json.loads((stores[fmt] / "eegbench.json").read_text())
    for rel, entry in header["files"].items():
        assert plan.files[rel] == entry
    assert plan.files["eegbench.json"]["sha256"] == plan.format_info["header"]["sha256"]
    assert plan.n_bytes == sum(e["size"] for e in plan.files.values())
    assert not plan.folder.exists() and not no_network  # dry run: nothing kept, no connection
    info = plan.format_info
    assert (info["format"], info["n_recordings"], info["n_channels"], info["sfreq"]) == (fmt, 3, [8], [128.0])
    assert info["duration_s"] == pytest.approx(60.0)
    assert sorted(f for r in info["recordings"] for f in r["files"]) + info["metadata_files"] \
        and set(f for r in info["recordings"] for f in r["files"]).isdisjoint(info["metadata_files"])
    # card: Hub YAML + a summary computed from metadata
    head, _, body = plan.card.partition("\n---\n")
    assert head.startswith("---\nlicense: other") and "task_categories:" in head and "- n<1K" in head
    assert "3 recordings, 3 subjects" in body and "eegbench.from_pretrained('me/plan', subject='001')" in body
    # croissant: every repository file but itself, with its sha256; record sets
    dist = {d["@id"]: d for d in plan.croissant["distribution"]}
    assert set(dist) == set(plan.files) - {"croissant.json"}
    assert all(dist[k]["sha256"] == plan.files[k]["sha256"] for k in dist)
    assert {r["@id"] for r in plan.croissant["recordSet"]} == {"recordings", "channels", "description"}
    assert len(plan.croissant["recordSet"][0]["data"]) == 3


def test_push_calls_hfapi_with_the_staged_folder(stores, tmp_path):
    seen = {}

    def fake_upload(self, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        seen["files"] = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        seen["kwargs"] = kwargs
        seen["text"] = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())

    with mock.patch.object(HfApi, "create_repo") as create, \
            mock.patch.object(HfApi, "create_branch") as branch, \
            mock.patch.object(HfApi, "upload_large_folder", fake_upload):
        plan = hub.push_to_hub(stores["zarr"], "me/up", private=True, token=SECRET, revision="v1",
                               cache_dir=tmp_path)
    create.assert_called_once_with("me/up", repo_type="dataset", private=True, exist_ok=True)
    branch.assert_called_once_with("me/up", branch="v1", repo_type="dataset", exist_ok=True)
    assert seen["files"] == set(plan.files) == _repo_files(stores["zarr"])
    assert seen["kwargs"] == {"repo_type": "dataset", "revision": "v1", "private": True, "print_report": False}
    assert SECRET.encode() not in seen["text"]
    assert plan.uploaded and not plan.folder.exists()  # staging removed after success


def test_commit_message_uses_upload_folder(stores, tmp_path):
    with mock.patch.object(HfApi, "create_repo"), mock.patch.object(HfApi, "upload_folder") as up, \
            mock.patch.object(HfApi, "upload_large_folder") as large:
        plan = hub.push_to_hub(stores["hdf5"], "me/msg", commit_message="first", cache_dir=tmp_path)
    large.assert_not_called()
    kwargs = up.call_args.kwargs
    assert kwargs["commit_message"] == "first" and kwargs["repo_type"] == "dataset"
    assert plan.method == "upload_folder"


def test_interrupted_upload_resumes_from_the_kept_folder(stores, tmp_path):
    """Mimics upload_large_folder's resume state (.cache/.huggingface/upload/<file>.metadata):
    an interrupted push keeps the staging folder and its state; the next push reuses both and
    leaves the already-uploaded files untouched (same mtime), so only the rest is sent."""
    remote: dict[str, bytes] = {}
    calls = []

    def upload(self, repo_id, folder_path, fail_after=None, **kwargs):
        folder = Path(folder_path)
        state = folder / ".cache" / ".huggingface" / "upload"
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file() and ".cache" not in p.parts)
        sent = []
        for rel in files:
            meta = state / f"{rel}.metadata"
            stamp = str((folder / rel).stat().st_mtime)
            if meta.is_file() and meta.read_text() == stamp:
                continue  # done in an earlier run
            if fail_after is not None and len(sent) == fail_after:
                calls.append((folder, sent))
                raise ConnectionError(f"connection reset (token {SECRET})")
            remote[rel] = (folder / rel).read_bytes()
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(stamp)
            sent.append(rel)
        calls.append((folder, sent))

    with mock.patch.object(HfApi, "create_repo"), \
            mock.patch.object(HfApi, "upload_large_folder", lambda s, r, f, **k: upload(s, r, f, 5, **k)):
        with pytest.raises(HubError) as err:
            hub.push_to_hub(stores["parquet"], "me/resume", token=SECRET, cache_dir=tmp_path)
    assert SECRET not in str(err.value) and "run the same push again to resume" in str(err.value)
    folder, first = calls[0]
    assert folder.is_dir() and len(first) == 5
    with mock.patch.object(HfApi, "create_repo"), \
            mock.patch.object(HfApi, "upload_large_folder", lambda s, r, f, **k: upload(s, r, f, None, **k)):
        plan = hub.push_to_hub(stores["parquet"], "me/resume", token=SECRET, cache_dir=tmp_path)
    folder2, second = calls[1]
    assert folder2 == folder and set(second).isdisjoint(first)
    assert set(first) | set(second) == set(plan.files) == set(remote)
    for rel, entry in plan.files.items():
        assert hub._sha256_bytes(remote[rel]) == entry["sha256"]
    assert not folder.exists()


def test_hub_limits_are_refused_with_numbers_and_remedy(stores, tmp_path, monkeypatch):
    with pytest.raises(HubLimitError, match=r"100,000 files .*fewer than 100,000"):
        hub.check_hub_limits([f"d{i // 5000}/f{i}" for i in range(100_000)])
    with pytest.raises(HubLimitError, match=r"10,000 files in folder signals/"):
        hub.check_hub_limits([f"signals/{i}" for i in range(10_000)])
    with pytest.raises(HubLimitError, match=r"big.h5 is 21.0 GB .*Remedy"):
        hub.check_hub_limits(["big.h5"], {"big.h5": 21 * 10**9})
    hub.check_hub_limits([f"signals/{i}" for i in range(9_999)])
    monkeypatch.setattr(hub, "HUB_MAX_FILES_PER_FOLDER", 3)
    with mock.patch.object(HfApi, "upload_large_folder") as up, mock.patch.object(HfApi, "create_repo"):
        with pytest.raises(HubLimitError, match="--chunk-seconds"):
            hub.push_to_hub(stores["parquet"], "me/big", cache_dir=tmp_path)
    up.assert_not_called()


def test_a_dataset_is_converted_first(tmp_path, no_network):
    ds = make_profile("smoke")
    plan = hub.push_to_hub(ds, "me/conv", format="parquet", compression="zstd", dry_run=True, cache_dir=tmp_path)
    assert plan.format_info["format"] == "parquet" and plan.format_info["codec"].startswith("zstd")
    left = list((tmp_path / "eegbench-uploads").iterdir())
    assert left == []  # temporary store and dry-run folder removed


# ---------------------------------------------------------------------------------------------
# pull, partial pull, offline
# ---------------------------------------------------------------------------------------------
def _same(a: eegbench.Dataset, b: eegbench.Dataset) -> None:
    assert len(a) == len(b)
    assert a.description.equals(b.description)
    for ra, rb in zip(a, b):
        x, y = ra.get_data(), rb.get_data()
        assert x.shape == y.shape and x.tobytes() == y.tobytes()
        assert ra.ch_names == rb.ch_names and ra.annotations == rb.annotations


@pytest.mark.parametrize("fmt", FORMATS)
def test_online_offline_parity(endpoint, repos, stores, tmp_path, monkeypatch, fmt):
    repo_id, _plan = repos[fmt]
    cache = tmp_path / "cache"
    online = eegbench.from_pretrained(repo_id, cache_dir=cache)
    _same(online, eegbench.open(stores[fmt]))
    n_requests = len(endpoint.requests)
    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda s, a, *x: attempts.append(a) or (_ for _ in ()).throw(
        OSError("network disabled")))
    offline = eegbench.from_pretrained(repo_id, cache_dir=cache, offline=True)
    _same(online, offline)
    monkeypatch.setenv("EEGBENCH_OFFLINE", "1")
    sub = eegbench.from_pretrained(repo_id, cache_dir=cache, subject="002")
    assert 0 < len(sub) < len(offline) and set(sub.description["subject"]) == {"002"}
    _same(sub, online.select(subject="002"))
    assert attempts == [] and len(endpoint.requests) == n_requests


def test_partial_pull_downloads_only_that_subjects_files(endpoint, repos, tmp_path):
    repo_id, plan = repos["zarr"]
    endpoint.requests.clear()
    ds = eegbench.from_pretrained(repo_id, cache_dir=tmp_path, subject="001")
    assert len(ds) == 1 and ds.description["subject"].tolist() == ["001"]
    served = endpoint.served_files()
    assert len(served) == len(set(served))  # each file once
    info = plan.format_info
    mine = next(r for r in info["recordings"] if r["index"] == 0)["files"]
    others = {f for r in info["recordings"] if r["index"] != 0 for f in r["files"]}
    wanted = set(mine) | set(info["metadata_files"]) | {"eegbench.json", *hub.REPO_FILES}
    assert set(served) <= wanted and not others & set(served)
    # the cache stores a blob once per content: files equal to one already fetched are linked, not fetched
    assert {plan.files[f]["sha256"] for f in served} == {plan.files[f]["sha256"] for f in wanted}
    snap = hub.resolve_cached(repo_id, cache_dir=tmp_path)
    assert {p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()} == wanted
    assert ds[0].get_data().shape == (8, 2560)
    # the description table came first, alone with the two small metadata files
    first_gets = [p for m, p, s in endpoint.requests if m == "GET" and "/resolve/" in p][:3]
    assert {p.rsplit("/", 1)[-1] for p in first_gets} == {"format_info.json", "eegbench.json", "description.parquet"}


def test_offline_errors_name_repo_revision_and_files(endpoint, repos, tmp_path, no_network):
    repo_id, _ = repos["hdf5"]
    with pytest.raises(CacheMissError, match=rf"{repo_id} at revision main is not in the cache"):
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path / "empty", offline=True)
    assert no_network == []


def test_offline_partial_cache_and_filters(endpoint, repos, tmp_path, monkeypatch):
    repo_id, plan = repos["parquet"]
    eegbench.from_pretrained(repo_id, cache_dir=tmp_path, subject="001")
    monkeypatch.setattr(socket.socket, "connect", mock.Mock(side_effect=OSError("network disabled")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(eegbench.from_pretrained(repo_id, cache_dir=tmp_path, subject="001")) == 1
    assert len(eegbench.from_pretrained(repo_id, cache_dir=tmp_path, sex="F", age=[55, 60])) == 1
    with pytest.raises(CacheMissError) as err:
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path, subject="002")
    rec1 = next(r for r in plan.format_info["recordings"] if r["index"] == 1)["files"]
    assert repo_id in str(err.value) and "revision main" in str(err.value) and rec1[0] in str(err.value)
    with pytest.raises(UnknownColumnError, match="columns are: subject, session, task, run, age, sex"):
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path, patient="001")
    with pytest.raises(EmptySelectionError, match="subject: 001, 002, 003"):
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path, subject="999")
    socket.socket.connect.assert_not_called()


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hub.resolve_cache_dir("rel") == tmp_path / "rel"
    monkeypatch.setenv("EEGBENCH_CACHE_DIR", "envcache")
    assert hub.resolve_cache_dir() == tmp_path / "envcache"
    monkeypatch.delenv("EEGBENCH_CACHE_DIR")
    assert hub.resolve_cache_dir() == Path(huggingface_hub.constants.HF_HUB_CACHE).resolve()
    assert hub.resolve_cache_dir().is_absolute()


def test_eight_processes_pull_into_one_cache(endpoint, repos, tmp_path):
    repo_id, plan = repos["zarr"]
    _srv, url = endpoint, os.environ["HF_ENDPOINT"]
    cache = tmp_path / "shared-cache"
    code = textwrap.dedent(f"""
        import eegbench
        ds = eegbench.from_pretrained({repo_id!r}, cache_dir={str(cache)!r})
        print(len(ds), sum(int(r.get_data().sum() != 0) for r in ds))
    """)
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1][-800:] for o in outs]
    assert all(o[0].split() == ["3", "3"] for o in outs)
    snapshot = hub.resolve_cached(repo_id, cache_dir=cache)
    report = hub.verify_repo(snapshot)
    assert report.ok and report.checked == len(plan.files), report.message()
    leftovers = [p for p in cache.rglob("*") if p.name.endswith(".incomplete") or ".eegbench-tmp-" in p.name]
    assert leftovers == []


# ---------------------------------------------------------------------------------------------
# verify and safety
# ---------------------------------------------------------------------------------------------
def test_verify_detects_flip_truncation_missing_extra_and_repairs(endpoint, repos, stores, tmp_path, capsys):
    from eegbench.cli import main

    repo_id, plan = repos["parquet"]
    eegbench.from_pretrained(repo_id, cache_dir=tmp_path)
    snap = hub.resolve_cached(repo_id, cache_dir=tmp_path)
    assert main(["verify", repo_id, "--cache-dir", str(tmp_path)]) == 0
    rec = {r["key"]: r["files"] for r in plan.format_info["recordings"]}
    flipped, truncated, missing = rec["rec-00000"][0], rec["rec-00001"][0], rec["rec-00002"][0]
    blob = Path(os.path.realpath(snap / flipped))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    tblob = Path(os.path.realpath(snap / truncated))
    tblob.write_bytes(tblob.read_bytes()[:-7])
    (snap / missing).unlink()
    (snap / "signals" / "stray.bin").write_bytes(b"x")
    report = hub.verify_repo(snap)
    assert (report.sha256, report.size, report.missing, report.extra) == \
        ([flipped], [truncated], [missing], ["signals/stray.bin"])
    assert report.recordings == {"rec-00000": "damaged", "rec-00001": "damaged", "rec-00002": "damaged"}
    assert main(["verify", repo_id, "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"eegbench pull {repo_id} --revision {snap.name} --repair" in out and flipped in out
    with pytest.raises(CacheMissError, match=missing):
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path, verify=True, offline=True)
    (snap / "signals" / "stray.bin").unlink()
    assert main(["pull", repo_id, "--cache-dir", str(tmp_path), "--repair"]) == 0
    assert hub.verify_repo(snap).ok
    blob = Path(os.path.realpath(snap / flipped))
    blob.write_bytes(blob.read_bytes()[:-1] + bytes([blob.read_bytes()[-1] ^ 0x80]))
    with pytest.raises(eegbench.errors.CorruptStoreError, match=f"SHA-256 mismatch: {flipped}"):
        eegbench.from_pretrained(repo_id, cache_dir=tmp_path, verify=True, offline=True)
    # a local store: same checks
    import shutil

    store = tmp_path / "copy.parquet"
    shutil.copytree(stores["parquet"], store)
    assert main(["verify", str(store)]) == 0
    (store / "extra.txt").write_text("x")
    assert main(["verify", str(store)]) == 1 and "extra.txt" in capsys.readouterr().out


def _crafted(srv, stores, tmp_path, name, edit):
    folder = tmp_path / name
    plan = hub.push_to_hub(stores["parquet"], f"me/{name}", dry_run=True, cache_dir=tmp_path / "c")
    import shutil

    shutil.copytree(stores["parquet"], folder)
    for rel, text in (("format_info.json", json.dumps(plan.format_info)),):
        (folder / rel).write_text(text)
    (folder / "description.parquet").write_bytes(
        eegbench.formats.get_backend("parquet").read_table(stores["parquet"], "description"))
    edit(folder, plan)
    srv.add_folder(f"me/{name}", folder)
    return f"me/{name}"


def _rehash_info(folder: Path, info: dict) -> None:
    info["header"]["sha256"] = hub._sha256_bytes((folder / "eegbench.json").read_bytes())
    (folder / "format_info.json").write_text(json.dumps(info))


def test_repositories_naming_outside_paths_or_pickles_are_refused(endpoint, stores, tmp_path):
    def escape_info(folder, plan):
        info = plan.format_info
        info["recordings"][0]["files"] = ["../../outside"]
        (folder / "format_info.json").write_text(json.dumps(info))

    def absolute_manifest(folder, plan):
        header = json.loads((folder / "eegbench.json").read_text())
        header["files"]["/etc/passwd"] = {"size": 1, "sha256": "0" * 64}
        (folder / "eegbench.json").write_text(json.dumps(header))
        _rehash_info(folder, plan.format_info)

    def pickled(folder, plan):
        rel = plan.format_info["recordings"][0]["files"][0]
        (folder / rel).write_bytes(b"\x80\x04\x95" + b"\x00" * 64)

    def object_npy(folder, plan):
        rel = plan.format_info["recordings"][0]["files"][0]
        with open(folder / rel, "wb") as fh:
            np.save(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    for name, edit, pattern in (("escape", escape_info, "leaves the store"),
                                ("absolute", absolute_manifest, "not a relative path"),
                                ("pickled", pickled, "pickled object"),
                                ("objnpy", object_npy, "Python objects")):
        repo_id = _crafted(endpoint, stores, tmp_path, name, edit)
        with pytest.raises(UnsafeRepoError, match=pattern):
            eegbench.from_pretrained(repo_id, cache_dir=tmp_path / "cache")


def test_errors_never_hold_the_token(endpoint, tmp_path):
    with pytest.raises(HubError) as err:
        eegbench.from_pretrained("me/does-not-exist", cache_dir=tmp_path, token=SECRET)
    assert SECRET not in str(err.value) and "not found" in str(err.value)
    with pytest.raises(HubError, match="not a Hub repository id"):
        eegbench.from_pretrained("../etc", cache_dir=tmp_path)


def test_cli_push_dry_run_and_pull(endpoint, repos, stores, tmp_path, capsys):
    from eegbench.cli import main

    assert main(["push", str(stores["hdf5"]), "me/cli", "--dry-run", "--json", "--cache-dir", str(tmp_path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["uploaded"] is False and set(plan["files"]) == _repo_files(stores["hdf5"])
    repo_id, _ = repos["hdf5"]
    assert main(["pull", repo_id, "--cache-dir", str(tmp_path), "--filter", "subject=001,003", "--verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "2 recordings (partial)" in out[0] and Path(out[1]).is_dir()
    assert main(["pull", repo_id, "--cache-dir", str(tmp_path), "--offline", "--filter", "nope=1"]) == 1
    assert "columns are" in capsys.readouterr().err
