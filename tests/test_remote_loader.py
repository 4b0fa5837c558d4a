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
