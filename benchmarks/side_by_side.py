"""Issue #9's side-by-side table: eegbench's stores before and after, next to the systems people use.

    python -m benchmarks.side_by_side --profile issue9 --before bdabd11 \\
        --anchors-python /work/anchors-venv/bin/python --out /tmp/sidebyside/run

One table, one run, the issue's columns (warm ms per random 2-s all-channel window, evicted ms per
window, DataLoader windows/s with 0 and 2 workers), in two parts:

* **anchor rows**, measured by this module (they do not depend on eegbench's readers):
  ``np.memmap`` of a float32 channel-major ``.npy`` per recording, MNE reading FIF lazily, and,
  when importable (optional, never project dependencies; skipped with the reason printed):
  braindecode's in-memory windows (``create_fixed_length_windows(..., preload=True)`` over
  preloaded MNE raws), braindecode's Hub format (the Zarr directory ``push_to_hub`` builds and
  uploads, written and loaded locally with the same calls and defaults, no network; its lazy load
  decompresses each recording into a float64 ``.npy`` memmap cache, which is what windows are then
  read from) and temporaldata's lazy HDF5 (``Data.to_hdf5`` / ``Data.from_hdf5(lazy=True)``,
  ``data.slice(t0, t0 + 2).eeg.signal``, time-major as temporaldata stores it). braindecode's
  windows are its fixed, non-overlapping 2-s windows: a random window ``(recording, start)`` reads
  the window of that recording that holds ``start``.
* **eegbench rows**, measured by :mod:`benchmarks.read_speed` (``--no-reference``; with
  ``--before REV`` for that revision's eegbench too, same harness, one after the other).

Warm and evicted follow read_speed: warm = median over ``--reads`` random windows each read once
untimed first; evicted = every file of the row paged out of this process's maps and dropped from
the page cache before each window, ``mincore``-verified (:func:`benchmarks._evicted.measure_evicted`),
MB read from disk per window. DataLoader: batch 64, shuffled, :func:`benchmarks.read_speed.throughput`
over ``--loader-batches`` batches after the first (worker start-up), page cache warm.

``--anchors-python`` runs the anchor rows in another interpreter (a venv with braindecode and
temporaldata that also sees this one's packages, e.g. through a ``.pth`` file); without it they run
here and the optional rows are skipped when their package is missing. JSON of every part and the
Markdown table go to ``--out`` (a directory; default ``results/side_by_side-PROFILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _fixtures as fx
from benchmarks._evicted import measure_evicted

#: anchor rows in table order: (key, label)
ANCHORS = [("memmap-npy", "np.memmap float32 (channel-major)"), ("braindecode-memory", "braindecode in-memory"),
           ("braindecode-zarr", "braindecode Zarr (its Hub format)"), ("temporaldata-hdf5", "temporaldata lazy HDF5"),
           ("mne-fif", "MNE lazy FIF")]
#: the optional package each anchor needs
NEEDS = {"braindecode-memory": "braindecode", "braindecode-zarr": "braindecode", "temporaldata-hdf5": "temporaldata"}


def missing_reason(key: str) -> str | None:
    """Why an anchor row cannot run here (its package does not import), or None."""
    name = NEEDS.get(key)
    if name is None:
        return None
    try:
        __import__(name)
    except Exception as exc:  # ImportError, or a broken install raising something else at import
        return f"{name} does not import: {type(exc).__name__}: {exc}"
    return None


# --- anchor targets: one interface (files, lengths, sfreq, read, dataset) --------------------------
class _Anchor:
    """``read(r, start, n)`` returns a materialised window; ``dataset()`` a map-style torch dataset of
    the row's non-overlapping windows, read the way the library's users read them."""

    kind = "anchor"

    def __init__(self, profile: str, window: int, work: Path) -> None:
        self.profile, self.window, self.work = profile, window, work
        self._src = None

    def source(self):
        import eegbench

        if self._src is None:
            self._src = eegbench.open(fx.source_store(self.profile))
        return self._src

    @property
    def lengths(self) -> list[int]:
        return [r.n_times for r in self.source()]

    def grid(self) -> list[tuple[int, int]]:
        """Every non-overlapping window ``(recording, start)`` (the DataLoader's index)."""
        w = self.window
        return [(r, k * w) for r, n in enumerate(self.lengths) for k in range(n // w)]

    def dataset(self):
        import torch

        anchor, grid = self, self.grid()

        class Windows(torch.utils.data.Dataset):
            def __len__(self) -> int:
                return len(grid)

            def __getitem__(self, i: int):
                r, s = grid[i]
                return torch.from_numpy(np.ascontiguousarray(anchor.read(r, s, anchor.window))), r

        return Windows()

    def open(self) -> None:
        pass

    def release(self) -> None:
        pass

    def close(self) -> None:
        self.release()


class _Baseline(_Anchor):
    """np.memmap / MNE lazy FIF through :class:`benchmarks._fixtures.Target` (same files as read_speed)."""

    def __init__(self, key: str, profile: str, window: int, work: Path) -> None:
        super().__init__(profile, window, work)
        self.target = fx.Target(key, profile)

    @property
    def files(self) -> list[Path]:
        return self.target.files

    def open(self) -> None:
        self.target.open()

    def read(self, r: int, s: int, n: int) -> np.ndarray:
        if self.target._handles is None:  # a DataLoader worker after release(): reopen lazily
            self.target.open()
        return self.target.read(r, s, n)

    def release(self) -> None:
        self.target.release()


class _Braindecode(_Anchor):
    """braindecode windows: in memory, or written in its Hub format and loaded lazily."""

    def __init__(self, key: str, profile: str, window: int, work: Path) -> None:
        super().__init__(profile, window, work)
        self.zarr = key == "braindecode-zarr"
        self.ds = None
        self.path = work / "braindecode" / "dataset.zarr"

    def _windows(self, preload: bool):
        import mne
        import pandas as pd
        from braindecode.datasets import BaseConcatDataset, RawDataset
        from braindecode.preprocessing import create_fixed_length_windows

        raws = [RawDataset(mne.io.read_raw_fif(p, preload=preload, verbose="error"),
                           pd.Series({"subject": i, "target": 0})) for i, p in enumerate(fx.fif_baseline(self.profile))]
        return create_fixed_length_windows(BaseConcatDataset(raws), window_size_samples=self.window,
                                           window_stride_samples=self.window, on_last_window="drop",
                                           preload=preload)

    def build(self) -> None:
        if self.zarr and not (self.path / "zarr.json").exists():
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # push_to_hub's own conversion with its defaults (blosc, level 5, chunk_size 5_000_000)
            self._windows(preload=False)._convert_to_zarr_inline(self.path, "blosc", 5, 5_000_000)

    @property
    def files(self) -> list[Path]:
        if not self.zarr:
            return []
        self.build()
        cache = self.path.parent / f".{self.path.name}_memmap"  # braindecode's float64 .npy cache
        return fx.files_of(self.path) + (fx.files_of(cache) if cache.is_dir() else [])

    def open(self) -> None:
        if self.ds is not None:
            return
        if self.zarr:
            from braindecode.datasets import BaseConcatDataset

            self.build()
            import shutil

            # its float64 .npy cache is made at load, once: remove it so open_s is a first load's cost
            shutil.rmtree(self.path.parent / f".{self.path.name}_memmap", ignore_errors=True)
            t0 = time.perf_counter()
            self.ds = BaseConcatDataset._load_from_zarr_inline(self.path, preload=False)  # as pull_from_hub
            self.open_s = time.perf_counter() - t0
        else:
            self.ds = self._windows(preload=True)
        self.offsets = np.concatenate([[0], np.cumsum([len(d) for d in self.ds.datasets])])

    def index(self, r: int, s: int) -> int:
        n = self.offsets[r + 1] - self.offsets[r]
        return int(self.offsets[r] + min(s // self.window, n - 1))

    def read(self, r: int, s: int, n: int) -> np.ndarray:
        self.open()
        return self.ds[self.index(r, s)][0]

    def dataset(self):
        self.open()
        return self.ds  # (X, y, crop indices) per window, PyTorch's default collate: as braindecode users

    def close(self) -> None:
        self.ds = None


class _TemporalData(_Anchor):
    """temporaldata: one HDF5 file per recording (``Data.to_hdf5``), opened lazily."""

    def __init__(self, key: str, profile: str, window: int, work: Path) -> None:
        super().__init__(profile, window, work)
        self.folder = work / "temporaldata"
        self._open: dict[int, Any] = {}
        self._pid = os.getpid()

    def paths(self) -> list[Path]:
        return [self.folder / f"rec{i:05d}.h5" for i in range(len(self.lengths))]

    def build(self) -> None:
        import h5py
        from temporaldata import Data, RegularTimeSeries

        self.folder.mkdir(parents=True, exist_ok=True)
        for rec, path in zip(self.source(), self.paths()):
            if path.exists():
                continue
            eeg = RegularTimeSeries(signal=np.ascontiguousarray(rec.get_data().T), sampling_rate=float(rec.sfreq),
                                    domain_start=0.0)
            tmp = path.with_name("tmp_" + path.name)
            with h5py.File(tmp, "w") as f:
                Data(eeg=eeg, domain=eeg.domain).to_hdf5(f)
            os.replace(tmp, path)

    def open(self) -> None:
        self.build()

    @property
    def files(self) -> list[Path]:
        self.build()
        return self.paths()

    def read(self, r: int, s: int, n: int) -> np.ndarray:
        import h5py
        from temporaldata import Data

        if self._pid != os.getpid():  # a forked DataLoader worker: its own handles (h5py is not fork-safe)
            self._open, self._pid = {}, os.getpid()
        if r not in self._open:
            self._open[r] = Data.from_hdf5(h5py.File(self.paths()[r], "r"), lazy=True)
        fs = self.source()[r].sfreq
        return self._open[r].slice(s / fs, (s + n) / fs).eeg.signal

    def release(self) -> None:
        self._open = {}  # handles closed when their h5py.File objects are collected

    def close(self) -> None:
        self.release()


def make_anchor(key: str, profile: str, window: int, work: Path) -> _Anchor:
    if key in ("memmap-npy", "mne-fif"):
        return _Baseline(key, profile, window, work)
    if key.startswith("braindecode"):
        return _Braindecode(key, profile, window, work)
    if key == "temporaldata-hdf5":
        return _TemporalData(key, profile, window, work)
    raise ValueError(f"unknown anchor {key!r}; choose from {', '.join(k for k, _ in ANCHORS)}")


def measure_anchor(anchor: _Anchor, n_reads: int, n_cold: int, n_batches: int, seed: int = 0) -> dict:
    """Warm ms, evicted ms (+ MB read and mincore residue; not for in-memory rows) and DataLoader
    windows/s (0 and 2 workers) of one anchor; the random windows are read_speed's (same seed)."""
    from benchmarks.read_speed import _ms, _time_reads

    anchor.open()
    window = anchor.window
    windows = fx.random_windows(anchor.lengths, window, n_reads + 50, seed)
    x = anchor.read(*windows[50], window)
    row: dict = {"window_shape": list(np.shape(x)), "window_dtype": str(np.asarray(x).dtype)}
    _time_reads(lambda r, s: anchor.read(r, s, window), windows[50:])  # every timed window read once
    row["ms_warm"] = _ms(_time_reads(lambda r, s: anchor.read(r, s, window), windows[50:]))
    if getattr(anchor, "open_s", None) is not None:
        row["open_s"] = anchor.open_s
    files = anchor.files
    if files and n_cold:
        row["size_mb"] = sum(f.stat().st_size for f in files) / 1e6
        row.update(measure_evicted(anchor, windows[50:50 + n_cold], window))
    if n_batches:
        row.update(measure_loader(anchor, n_batches))
    anchor.close()
    return row


def measure_loader(anchor: _Anchor, n_batches: int) -> dict:
    from benchmarks.read_speed import steady_throughput

    files = anchor.files
    if files:
        fx.warm(files)  # every variant starts from a warm page cache, as read_speed's stores
    ds = anchor.dataset()
    anchor.release()  # workers open their own handles
    return {f"loader_w{workers}": steady_throughput(ds, workers, n_batches) for workers in (0, 2)}


def run_anchors(profile: str, keys: list[str], n_reads: int, n_cold: int, n_batches: int, work: Path) -> list[dict]:
    os.environ["EEGBENCH_PROFILE"] = profile
    import eegbench

    src = eegbench.open(fx.source_store(profile))
    window = int(round(fx.WINDOW_SECONDS * src[0].sfreq))
    rows = []
    for key in keys:
        label = dict(ANCHORS)[key]
        reason = missing_reason(key)
        if reason:
            print(f"skipped {label}: {reason}", flush=True)
            rows.append({"key": key, "name": label, "skipped": reason})
            continue
        t0 = time.perf_counter()
        row = {"key": key, "name": label}
        row.update(measure_anchor(make_anchor(key, profile, window, work), n_reads, n_cold, n_batches))
        row["seconds"] = time.perf_counter() - t0
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


# --- the issue's table ----------------------------------------------------------------------------
def _num(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return format(v, spec)


def _ms_spec(v: Any) -> str:
    return ".3f" if v is not None and v < 1 else ".2f" if v is not None and v < 100 else ".0f"


def _cell(before: dict | None, after: dict, key: str, spec: str | None = None) -> str:
    """``before → after`` of one figure (``after`` alone without a before row); ms get 3 significant
    decimals below 1 ms."""
    def fmt(v: Any) -> str:
        return _num(v, spec or _ms_spec(v))

    return f"{fmt(before.get(key))} → {fmt(after.get(key))}" if before is not None else fmt(after.get(key))


def render_issue_table(anchors: list[dict], after: list[dict], before: list[dict] | None = None) -> str:
    """The issue's columns: anchors as measured; eegbench rows ``before → after`` when ``before``."""
    lines = ["| | warm ms | evicted ms (MB read/window) | DataLoader w0 / w2 windows/s |", "|---|---|---|---|"]
    for r in anchors:
        if r.get("skipped"):
            lines.append(f"| {r['name']} | skipped: {r['skipped']} | | |")
            continue
        ev = r.get("ms_evicted")
        evicted = "–" if ev is None else f"{_num(ev, _ms_spec(ev))} ({_num(r.get('mb_read_evicted'), '.2f')})"
        lines.append(f"| {r['name']} | {_num(r.get('ms_warm'), '.3f')} | {evicted} | "
                     f"{_num(r.get('loader_w0'), '.0f')} / {_num(r.get('loader_w2'), '.0f')} |")
    old = {r["name"]: r for r in before or []}
    for a in after:
        if a["name"].startswith(("baseline", "reference")):
            continue  # the anchors above measure memmap and MNE with their DataLoader rates
        b = old.get(a["name"])
        evicted = _cell(b, a, "ms_evicted") + f" ({_cell(b, a, 'mb_read_evicted', '.2f')})"
        lines.append(f"| eegbench {a['name']} | {_cell(b, a, 'ms_warm', '.3f')} | {evicted} | "
                     f"{_cell(b, a, 'loader_w0', '.0f')} / {_cell(b, a, 'loader_w2', '.0f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="issue9", help="benchmark profile (default issue9: the issue's data)")
    parser.add_argument("--before", default=None, metavar="GIT_REV", help="also measure this revision's eegbench")
    parser.add_argument("--formats", nargs="+", default=fx.FORMATS)
    parser.add_argument("--codecs", nargs="+", default=["none", "blosc-lz4", "blosc-zstd"])
    parser.add_argument("--chunk-seconds", type=float, default=1.0)
    parser.add_argument("--reads", type=int, default=300, help="timed warm reads per row")
    parser.add_argument("--cold-reads", type=int, default=50, help="timed evicted reads per row")
    parser.add_argument("--loader-batches", type=int, default=20, help="DataLoader batches (0: skip)")
    parser.add_argument("--anchors", nargs="*", default=[k for k, _ in ANCHORS],
                        help="anchor rows (none: only eegbench's)")
    parser.add_argument("--anchors-python", default=None,
                        help="interpreter for the anchor rows (a venv with braindecode and temporaldata)")
    parser.add_argument("--anchors-only", action="store_true", help="measure the anchor rows only (JSON to --out)")
    parser.add_argument("--no-eegbench", action="store_true", help="skip the eegbench rows (read_speed)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    args = parser.parse_args(argv)
    for key in args.anchors:
        if key not in dict(ANCHORS):
            parser.error(f"unknown anchor {key!r}; choose from {', '.join(k for k, _ in ANCHORS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as read_speed: torch's intra-op threads off (2 cores)
    out = (args.out or fx.REPO / "results" / f"side_by_side-{args.profile}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = fx.CACHE / f"anchors-{args.profile}"
    anchors_json = out / "anchors.json"
    if args.anchors_only:
        rows = run_anchors(args.profile, args.anchors, args.reads, args.cold_reads, args.loader_batches, work)
        anchors_json.write_text(json.dumps({"python": sys.executable, "rows": rows}, indent=1))
        return
    t_start = time.time()
    load = os.getloadavg()
    anchors: list[dict] = []
    if args.anchors:
        if args.anchors_python:
            cmd = [args.anchors_python, "-m", "benchmarks.side_by_side", "--anchors-only", "--profile", args.profile,
                   "--reads", str(args.reads), "--cold-reads", str(args.cold_reads),
                   "--loader-batches", str(args.loader_batches), "--out", str(out), "--anchors", *args.anchors]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fx.REPO), os.environ.get("PYTHONPATH", "")]))
            subprocess.run(cmd, cwd=fx.REPO, env=env, check=True)
            anchors = json.loads(anchors_json.read_text())["rows"]
        else:
            anchors = run_anchors(args.profile, args.anchors, args.reads, args.cold_reads, args.loader_batches, work)
            anchors_json.write_text(json.dumps({"python": sys.executable, "rows": anchors}, indent=1))
    before = after = None
    if not args.no_eegbench:
        rs = out / "read_speed.json"
        cmd = [sys.executable, "-m", "benchmarks.read_speed", "--profile", args.profile, "--formats", *args.formats,
               "--codecs", *args.codecs, "--chunk-seconds", f"{args.chunk_seconds:g}", "--reads", str(args.reads),
               "--cold-reads", str(args.cold_reads), "--loader-batches", str(args.loader_batches), "--no-reference",
               "--out", str(rs)]
        if args.before:
            cmd += ["--before", args.before]
        subprocess.run(cmd, cwd=fx.REPO, check=True)
        if args.before:
            before = json.loads(rs.with_name("read_speed-before.json").read_text())["rows"]
            after = json.loads(rs.with_name("read_speed-after.json").read_text())["rows"]
        else:
            after = json.loads(rs.read_text())["rows"]
    table = render_issue_table(anchors, after or [], before)
    minutes = (time.time() - t_start) / 60
    head = (f"profile {args.profile}, chunks {args.chunk_seconds:g} s, {args.reads} warm / {args.cold_reads} evicted "
            f"reads, {args.loader_batches} DataLoader batches of 64; {platform.node()} {os.cpu_count()} cores; "
            f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end "
            + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f"; {minutes:.1f} min"
            + (f"; eegbench rows: {args.before} → this checkout" if args.before else ""))
    print()
    print(head)
    print(table)
    (out / "side_by_side.md").write_text(head + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
