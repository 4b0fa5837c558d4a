"""benchmarks.side_by_side: argument handling, optional anchors skipped with their reason, the issue's
table, a tiny run; the issue9 profile's shape; the harness tolerates an older eegbench (--before)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from benchmarks import _fixtures as fx
from benchmarks import side_by_side as sbs
from benchmarks._evicted import chunk_span


def test_unknown_anchor_is_refused(capsys):
    with pytest.raises(SystemExit):
        sbs.main(["--anchors", "nonsense", "--no-eegbench"])
    assert "unknown anchor 'nonsense'" in capsys.readouterr().err


def test_missing_package_gives_a_reason(monkeypatch):
    monkeypatch.setitem(sbs.NEEDS, "temporaldata-hdf5", "no_such_package_xyz")
    assert "no_such_package_xyz does not import" in sbs.missing_reason("temporaldata-hdf5")
    assert sbs.missing_reason("memmap-npy") is None


def test_issue_table_before_and_after():
    anchors = [{"name": "np.memmap float32 (channel-major)", "ms_warm": 0.079, "ms_evicted": 104.2,
                "mb_read_evicted": 77.4, "loader_w0": 3668.0, "loader_w2": 1255.0},
               {"name": "braindecode in-memory", "ms_warm": 0.156, "loader_w0": 1940.0, "loader_w2": 684.0},
               {"name": "temporaldata lazy HDF5", "skipped": "temporaldata does not import: ImportError"}]
    before = [{"name": "hdf5 none 1s", "ms_warm": 0.097, "ms_evicted": 2.38, "mb_read_evicted": 0.77,
               "loader_w0": 1106.0, "loader_w2": float("nan")}]
    after = [{"name": "hdf5 none 1s", "ms_warm": 0.08, "ms_evicted": 1.14, "mb_read_evicted": 0.78,
              "loader_w0": 2990.0, "loader_w2": 7918.0},
             {"name": "baseline memmap-npy", "ms_warm": 0.08}]
    lines = sbs.render_issue_table(anchors, after, before).splitlines()
    assert lines[2] == "| np.memmap float32 (channel-major) | 0.079 | 104 (77.40) | 3668 / 1255 |"
    assert lines[3] == "| braindecode in-memory | 0.156 | – | 1940 / 684 |"
    assert "skipped: temporaldata does not import" in lines[4]
    assert lines[5] == ("| eegbench hdf5 none 1s | 0.097 → 0.080 | 2.38 → 1.14 (0.77 → 0.78) | "
                        "1106 → 2990 / – → 7918 |")
    assert len(lines) == 6  # read_speed's own baseline rows are left to the anchors


def test_tiny_anchor_run(tmp_path):
    sbs.main(["--profile", "smoke", "--anchors", "memmap-npy", "--no-eegbench", "--reads", "5",
              "--cold-reads", "2", "--loader-batches", "0", "--out", str(tmp_path)])
    row, = json.loads((tmp_path / "anchors.json").read_text())["rows"]
    assert row["window_shape"] == [8, 256] and row["window_dtype"] == "float32"
    assert row["ms_warm"] > 0 and row["ms_evicted"] > 0 and row["evicted_resident_bytes_max"] == 0
    assert "np.memmap float32" in (tmp_path / "side_by_side.md").read_text()


def test_issue9_profile_is_the_issues_data_without_a_grid():
    ds = fx.source_dataset("issue9")
    assert len(ds) == 8
    assert {(r.n_channels, r.sfreq, r.n_times) for r in ds} == {(129, 500.0, 150_000)}
    assert fx.store_integer("issue9") is False and fx.store_integer("standard") == "auto"
    x = ds[0].get_data(start=0, stop=500).astype(np.float64)
    # no 0.5 µV (or any coarse) grid: steps between distinct values are not multiples of one step
    steps = np.diff(np.unique(x[0]))
    assert steps.min() < 1e-9 and len(np.unique(x[0])) == 500


def test_chunk_span_of_an_older_reader_is_none():
    rec = types.SimpleNamespace(source=types.SimpleNamespace())  # no ready(), no chunk locations
    assert chunk_span(rec, 0, 10) is None


def test_before_export_builds_the_revisions_c_extensions(tmp_path, monkeypatch):
    """A revision exported for ``read_speed --before`` gets its pyproject's C extensions compiled in
    place (as ``pip install`` would), so it is not measured on its NumPy fallback."""
    import shutil
    import subprocess

    from benchmarks import read_speed

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=fx.REPO, capture_output=True, text=True)
    if head.returncode or "ext-modules" not in subprocess.run(
            ["git", "show", "HEAD:pyproject.toml"], cwd=fx.REPO, capture_output=True, text=True).stdout:
        pytest.skip("not a git checkout whose HEAD declares C extensions")
    monkeypatch.setattr(fx, "CACHE", tmp_path)
    root = read_speed._export("HEAD")
    built = list((root / "eegbench").glob("_ckernels*.so"))
    assert built, "the C kernels were not built in the exported revision"
    probe = subprocess.run([__import__("sys").executable, "-c",
                            "import eegbench._ckernels as k; print(k.__file__)"],
                           cwd=tmp_path, env={"PYTHONPATH": str(root)}, capture_output=True, text=True)
    assert probe.stdout.strip().startswith(str(root)), probe.stderr
