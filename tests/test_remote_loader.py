"""A PyTorch DataLoader with worker processes over a store served by the HTTP range server.

The benchmark configuration that hung in CI (a DataLoader forking workers from a process that
also runs the test server and already opened the store over HTTP) runs in a child process with a
timeout, so a deadlock fails this test instead of hanging the suite; batches must be bitwise
equal to the same loader over the local store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("aiohttp")

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import faulthandler, sys
    faulthandler.dump_traceback_later({timeout}, exit=True)  # a hang shows where the main process waits
    import numpy as np, torch
    from torch.utils.data import DataLoader
    import eegbench
    from benchmarks._servers import RangeHTTPServer
    from eegbench.torch import WindowDataset, collate, worker_init_fn

    root, fmt = {root!r}, {fmt!r}

    def batches(url):
        ds = eegbench.open(url)
        ds[0].get_data(start=0, stop=10)  # the parent reads first: its client state is what workers inherit
        wds = WindowDataset(ds, window_samples=200, stride_samples=50)
        loader = DataLoader(wds, batch_size=16, num_workers=2, worker_init_fn=worker_init_fn, collate_fn=collate,
                            timeout=120)
        return [x.numpy().copy() for x, _y in loader]

    with RangeHTTPServer(root, latency=0.005) as server:
        remote = batches(f"{{server.url}}/ds.{{fmt}}")
        served = server.traffic.requests
    local = batches(f"{{root}}/ds.{{fmt}}")
    assert len(remote) == len(local) > 4, (len(remote), len(local))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(remote, local))
    print("ok", len(remote), served)
""")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    import eegbench
    from conftest import make_recording
    from eegbench.model import Dataset

    root = tmp_path_factory.mktemp("loader")
    ds = Dataset([make_recording(8, 2000, 100.0, seed=s, name=f"r{s}") for s in range(3)])
    for fmt in ("hdf5", "zarr", "parquet"):
        eegbench.save(ds, root / f"ds.{fmt}", fmt, compression="blosc-zstd", chunk_seconds=1.0)
    return root


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_dataloader_with_two_workers_over_http_completes(stores, fmt):
    timeout = 240
    code = SCRIPT.format(root=str(stores), fmt=fmt, timeout=timeout - 20)
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"the DataLoader over HTTP did not finish in {timeout} s:\n{exc.stderr}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = proc.stdout.split()
    assert words[0] == "ok" and int(words[2]) > 0  # the workers' reads went to the server


EPOLL_SCRIPT = textwrap.dedent("""
    import gc, os, pathlib, sys, tempfile
    import fsspec
    import eegbench.io.remote  # registers the at-fork hook
    from benchmarks._servers import RangeHTTPServer

    root = pathlib.Path(tempfile.mkdtemp()); (root / "f").write_bytes(b"x" * 1000)
    server = RangeHTTPServer(root).start()
    fs = fsspec.filesystem("http", block_size=0)
    url = server.url + "/f"
    for _ in range(3):
        fs.cat_file(url, start=0, end=10)  # pooled keep-alive connections on fsspec's loop
    pid = os.fork()
    if pid == 0:  # a DataLoader worker dropping the inherited session
        del fs
        fsspec.filesystem("http", block_size=0)
        gc.collect()
        os._exit(0)
    os.waitpid(pid, 0)
    print(len(fs.cat_file(url, start=0, end=10)), flush=True)
    server.stop()
""")


def test_fork_child_dropping_the_inherited_session_leaves_the_parent_working():
    """A forked child's garbage collection of the parent's aiohttp session unregistered the pooled
    sockets from the epoll instance it shares with the parent: the parent's next request hung."""
    try:
        out = subprocess.run([sys.executable, "-c", EPOLL_SCRIPT], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the parent's request after the child's garbage collection hung")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "10"
