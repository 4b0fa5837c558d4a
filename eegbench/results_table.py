"""asv results -> the flattened table :func:`eegbench.recommend.recommend` scores, and provenance.

* :func:`load_asv` reads an asv results directory (``results/asv``: ``benchmarks.json`` + one
  folder per machine) without importing asv: one :class:`~eegbench.recommend.ResultRow` per
  benchmark x parameter combination of every result file, with its unit, benchmark version,
  median (NaN when it failed or was skipped) and interquartile spread.
* The profile and the hash of the reader sources of each run are not part of asv's files: the
  main job appends them to ``<machine>/eegbench-runs.jsonl`` (:func:`record_run`; asv ignores files
  that do not end in ``.json``).
* :func:`write_csv` / :func:`read_csv`: the flattened table as CSV (``results/results.csv``).
* :func:`reader_code_hash`, :func:`reader_changes_since`: what the staleness check compares.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import subprocess
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from .errors import MissingResultsError
from .recommend import ResultRow

__all__ = ["COLUMNS", "expected_versions", "load_asv", "read_csv", "reader_changes_since", "reader_code_hash",
           "record_run", "runs_of", "write_csv"]

COLUMNS = ["benchmark", "params", "median", "spread", "unit", "machine", "commit", "date", "profile", "version",
           "code_hash"]
RUNS_FILE = "eegbench-runs.jsonl"
PARAM_SEP = " | "

#: package modules that do not read or write stores: changing them does not make results stale
NOT_READERS = ("cli.py", "errors.py", "recommend.py", "recommend_cli.py", "recommend_data.py", "results_table.py", "hub.py",
               "hub_cli.py", "plots.py")


def _reader_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if p.name not in NOT_READERS and "__pycache__" not in p.parts)


def reader_code_hash(package: Path | None = None, *, commit: str | None = None, repo: Path | None = None) -> str:
    """SHA-256 (12 hex digits) of the reader sources: every ``eegbench/**/*.py`` except
    :data:`NOT_READERS`. With ``commit``, hashes those files as they were at that git commit."""
    digest = hashlib.sha256()
    if commit is None:
        package = Path(package) if package else Path(__file__).resolve().parent
        for path in _reader_files(package):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]
    repo = Path(repo or Path(__file__).resolve().parents[1])
    names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", commit, "eegbench"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in sorted(n for n in names if n.endswith(".py") and Path(n).name not in NOT_READERS):
        data = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{name}"], check=True,
                              capture_output=True).stdout
        digest.update(name.removeprefix("eegbench/").encode() + b"\0" + data)
    return digest.hexdigest()[:12]


def reader_changes_since(commit: str, repo: Path | None = None) -> tuple[int, list[str]] | None:
    """(number of commits since ``commit`` that changed reader sources, the files they changed), or
    None when git or the commit is unavailable (an installed package, a shallow clone)."""
    repo = Path(repo or Path(__file__).resolve().parents[1])
    spec = ["--", "eegbench"] + [f":(exclude,glob)eegbench/**/{n}" for n in NOT_READERS]
    try:
        count = subprocess.run(["git", "-C", str(repo), "rev-list", "--count", f"{commit}..HEAD", *spec],
                               check=True, capture_output=True, text=True).stdout.strip()
        files = subprocess.run(["git", "-C", str(repo), "diff", "--name-only", f"{commit}..HEAD", *spec],
                               check=True, capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(count), files


def record_run(results_dir: Path, machine: str, commit: str, profile: str, code_hash: str) -> None:
    """Append the profile and reader hash of a run to ``<results_dir>/<machine>/eegbench-runs.jsonl``."""
    path = Path(results_dir) / machine / RUNS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"commit": commit, "profile": profile, "code_hash": code_hash,
                       "recorded": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def runs_of(results_dir: Path, machine: str) -> dict[str, dict]:
    """commit -> the newest recorded run of ``machine`` at that commit."""
    path = Path(results_dir) / machine / RUNS_FILE
    out: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["commit"]] = rec
    return out


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingResultsError(f"cannot read asv results file {path}: {exc}") from None


def expected_versions(results_dir: Path) -> dict[str, str]:
    """benchmark -> version, from the suite description asv wrote next to the results."""
    path = Path(results_dir) / "benchmarks.json"
    if not path.exists():
        return {}
    return {k: str(v.get("version", "")) for k, v in _load_json(path).items() if isinstance(v, dict)}


def _iso(ms: float | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unquote(value: str) -> str:
    value = str(value)
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _num(value) -> float:
    return math.nan if value is None else float(value)


def load_asv(results_dir: Path, machines: Sequence[str] | None = None) -> list[ResultRow]:
    """Every result of every machine (or of ``machines``) under an asv results directory."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise MissingResultsError(f"no asv results directory at {results_dir}; run `make bench` first")
    suite = _load_json(results_dir / "benchmarks.json") if (results_dir / "benchmarks.json").exists() else {}
    rows: list[ResultRow] = []
    for mdir in sorted(p for p in results_dir.iterdir() if (p / "machine.json").exists()):
        machine = _load_json(mdir / "machine.json").get("machine", mdir.name)
        if machines and machine not in machines:
            continue
        runs = runs_of(results_dir, mdir.name)
        for path in sorted(mdir.glob("*.json")):
            if path.name == "machine.json":
                continue
            data = _load_json(path)
            columns = data.get("result_columns", [])
            run = runs.get(data.get("commit_hash", ""), {})
            for key, values in sorted(data.get("results", {}).items()):
                entry = dict(zip(columns, values))
                params = entry.get("params") or []
                combos = list(itertools.product(*params)) if params else [()]
                result = entry.get("result")
                if result is None:
                    result = [None] * len(combos)
                q25 = entry.get("stats_q_25") or [None] * len(combos)
                q75 = entry.get("stats_q_75") or [None] * len(combos)
                unit = suite.get(key, {}).get("unit", "")
                for combo, value, lo, hi in zip(combos, result, q25, q75):
                    spread = _num(hi) - _num(lo) if lo is not None and hi is not None else math.nan
                    rows.append(ResultRow(key, tuple(_unquote(c) for c in combo), _num(value), spread, unit, machine,
                                          data.get("commit_hash", ""), run.get("recorded") or _iso(data.get("date")),
                                          run.get("profile", ""), str(entry.get("version") or ""),
                                          run.get("code_hash", "")))
    if not rows:
        raise MissingResultsError(f"no asv results under {results_dir}; run `make bench` first")
    return rows


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else repr(float(value))


def write_csv(rows: Iterable[ResultRow], path: Path | None = None) -> str:
    """The table as CSV text (written atomically to ``path`` when given); NaN is written ``nan``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in sorted(rows, key=lambda r: (r.machine, r.date, r.commit, r.benchmark, r.params)):
        writer.writerow([r.benchmark, PARAM_SEP.join(r.params), _fmt(r.median), _fmt(r.spread), r.unit, r.machine,
                         r.commit, r.date, r.profile, r.version, r.code_hash])
    text = buf.getvalue()
    if path is not None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return text


def read_csv(path: Path) -> list[ResultRow]:
    """The flattened table written by :func:`write_csv`."""
    path = Path(path)
    if not path.exists():
        raise MissingResultsError(f"no results table at {path}; run `make bench` first")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or set(COLUMNS) - set(reader.fieldnames):
            raise MissingResultsError(f"{path} is not an eegbench results table (columns {', '.join(COLUMNS)})")
        return [ResultRow(r["benchmark"], tuple(r["params"].split(PARAM_SEP)) if r["params"] else (),
                          float(r["median"]), float(r["spread"]), r["unit"], r["machine"], r["commit"], r["date"],
                          r["profile"], r["version"], r["code_hash"]) for r in reader]
