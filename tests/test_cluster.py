"""Conversion on a dask.distributed LocalCluster: same bytes as the local path, retries, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import eegbench
from conftest import FORMATS, assert_recordings_equal, make_recording
from eegbench.model import ArraySource, Dataset, Recording

distributed = pytest.importorskip("distributed")


class FlakySource(ArraySource):
    """Fails the first read in any process (a marker file remembers), like a worker that died."""

    def __init__(self, data: np.ndarray, marker: str, always: bool = False, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.marker, self.always = marker, always

    def read(self, start, stop, channels):
        marker = Path(self.marker)
        if self.always or not marker.exists():
            marker.touch()
            raise RuntimeError("injected failure of this worker's recording")
        return super().read(start, stop, channels)


class SlowSource(ArraySource):
    """Reads slowly and leaves ``<marker>`` once a read returned (a recording still being written
    when another one fails)."""

    def __init__(self, data: np.ndarray, marker: str, delay: float, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.marker, self.delay = marker, delay

    def read(self, start, stop, channels):
        import time

        time.sleep(self.delay)
        out = super().read(start, stop, channels)
        Path(self.marker).touch()
        return out


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    import dask

    # fork: spawn re-runs the main module, which some pytest launchers do not guard
    dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _files(path: Path) -> dict:
    return json.loads((path / "eegbench.json").read_text())["files"]


def _dataset() -> Dataset:
    return Dataset([make_recording(6, 900, 100.0, seed=s, name=f"r{s}") for s in range(3)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_cluster_conversion_is_byte_identical_to_jobs(tmp_path, client, fmt):
    ds = _dataset()
    local = eegbench.save(ds, tmp_path / f"local.{fmt}", fmt, jobs=2)
    remote = eegbench.save(ds, tmp_path / f"cluster.{fmt}", fmt, client=client)
    assert _files(local) == _files(remote)  # every file: same size and SHA-256
    for a, b in zip(eegbench.open(remote), ds):
        assert_recordings_equal(a, b)


def test_failed_recording_is_retried(tmp_path, client):
    ds = _dataset()
    rec = ds[1]
    flaky = Recording(FlakySource(rec.get_data(), str(tmp_path / "failed-once"), quantization=rec.quantization),
                      rec.sfreq, rec.ch_names, name=rec.name)
    out = eegbench.save(Dataset([ds[0], flaky, ds[2]]), tmp_path / "x.zarr", "zarr", client=client)
    assert (tmp_path / "failed-once").exists()  # it did fail once
    assert _files(out) == _files(eegbench.save(ds, tmp_path / "ref.zarr", "zarr"))


def test_recording_failing_every_retry_leaves_nothing(tmp_path, client):
    ds = _dataset()
    rec = ds[0]
    bad = Recording(FlakySource(rec.get_data(), str(tmp_path / "m"), always=True), rec.sfreq, rec.ch_names)
    # the other recording is still being written when the failure ends the conversion: its task,
    # cancelled but running, must be over before the temporary store is removed (else it re-creates it)
    slow = Recording(SlowSource(ds[1].get_data(), str(tmp_path / "slow-done"), delay=3.0), ds[1].sfreq,
                     ds[1].ch_names)
    with pytest.raises(RuntimeError, match="injected failure"):
        eegbench.save(Dataset([bad, slow]), tmp_path / "bad.zarr", "zarr", client=client)
    # save returned only once the slow task was over (its read done), then removed the temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "slow-done"]


def test_cli_scheduler(tmp_path, client):
    from eegbench.cli import main

    src = eegbench.save(_dataset(), tmp_path / "src.zarr", "zarr")
    address = client.scheduler.address
    assert main(["convert", str(src), str(tmp_path / "out.h5"), "--format", "hdf5", "--scheduler", address,
                 "--quiet"]) == 0
    ref = eegbench.save(eegbench.open(src), tmp_path / "ref.h5", "hdf5", jobs=2)
    assert _files(tmp_path / "out.h5") == _files(ref)


def test_unreachable_scheduler_is_a_typed_error():
    from eegbench.cluster import connect
    from eegbench.errors import OptionError

    with pytest.raises(OptionError, match="cannot reach the dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=1)


def test_cluster_writes_packs_as_the_local_path(tmp_path, client):
    ds = _dataset()  # 3 recordings of one layout: one pack
    local = eegbench.save(ds, tmp_path / "local.h5", pack=True)
    remote = eegbench.save(ds, tmp_path / "cluster.h5", client=client, pack=True)
    assert _files(local) == _files(remote) and list(_files(remote)) == ["signals/000/pack-00000.h5", *[
        r for r in _files(remote) if not r.startswith("signals/")]]
    for a, b in zip(eegbench.open(remote), ds):
        assert_recordings_equal(a, b)
