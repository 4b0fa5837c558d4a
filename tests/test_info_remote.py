"""``eegbench info URL``: a remote store summarised from its header and tables (2 requests, counted
at the local HTTP server), the same figures as ``info`` of the local copy."""

from __future__ import annotations

import json

import pytest

import eegbench
from benchmarks._servers import RangeHTTPServer
from conftest import FORMATS, make_recording
from eegbench.cli import main
from eegbench.errors import OptionError
from eegbench.info_cli import storage_options
from eegbench.model import Dataset

SUFFIX = {"hdf5": "h5", "zarr": "zarr", "parquet": "parquet"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("info")
    ds = Dataset([make_recording(8, 2000, 100.0, seed=s, name=f"r{s}") for s in range(3)])
    for fmt in FORMATS:
        eegbench.save(ds, root / f"ds.{SUFFIX[fmt]}", fmt, compression="blosc-zstd", chunk_seconds=1.0)
    with RangeHTTPServer(root) as server:
        yield root, server


@pytest.mark.parametrize("fmt", FORMATS)
def test_info_url_json_matches_local_and_counts_requests(served, fmt, capsys):
    root, server = served
    name = f"ds.{SUFFIX[fmt]}"
    server.traffic.reset()
    assert main(["info", f"{server.url}/{name}", "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    requests, nbytes = server.traffic.snapshot()
    assert requests == 2, server.traffic.log  # the header and tables.pack; no signal byte
    assert all(path.rsplit("/", 1)[-1] in ("eegbench.json", "tables.pack") for _m, path, _r in server.traffic.log)
    assert remote["requests"] == requests and remote["bytes_received"] == nbytes
    local = eegbench.info(root / name)
    for key, value in local.items():
        if key != "path":
            assert remote[key] == value, key
    assert remote["path"] == f"{server.url}/{name}"


def test_info_url_text_and_errors(served, capsys):
    root, server = served
    assert main(["info", f"{server.url}/ds.zarr", "--recordings"]) == 0
    out = capsys.readouterr().out
    assert "2 request(s)" in out and "format             zarr" in out and "r2" in out
    assert main(["info", f"{server.url}/missing.zarr"]) == 1
    assert "not an eegbench store" in capsys.readouterr().err
    assert main(["info", str(root / "ds.zarr")]) == 0  # local paths unchanged
    assert "read " not in capsys.readouterr().out


def test_storage_option_pairs():
    assert storage_options([]) is None
    assert storage_options(["endpoint_url=http://127.0.0.1:9000", "anon=true", "n=3"]) == {
        "endpoint_url": "http://127.0.0.1:9000", "anon": True, "n": 3}
    with pytest.raises(OptionError):
        storage_options(["oops"])


def test_info_s3_url_with_storage_options(served, capsys):
    """`eegbench info s3://... -o endpoint_url=... -o key=... -o secret=...` against the local S3 server."""
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    import eegbench.remote
    from benchmarks._servers import S3Server

    root, _http = served
    with S3Server() as s3:
        s3.create_bucket("eegbench-info")
        eegbench.remote.publish(root / "ds.h5", "s3://eegbench-info/ds.h5", storage_options=s3.storage_options)
        s3.traffic.reset()
        assert main(["info", "s3://eegbench-info/ds.h5", "--json", "-o", f"endpoint_url={s3.endpoint_url}",
                     "-o", "key=testing", "-o", "secret=testing"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert s3.traffic.requests == got["requests"] == 2, s3.traffic.log
        assert got["bytes_received"] == s3.traffic.bytes
    assert got["n_recordings"] == 3 and got["format"] == "hdf5"
