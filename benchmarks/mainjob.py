"""The main job: benchmark, publish the dashboard, write the table, plots and recommendation.

    python -m benchmarks.mainjob                      # `make bench`: profile quick, this machine's own results
    python -m benchmarks.mainjob --profile standard   # the 43-minute profile (20 x 129 ch x 500 Hz x 5 min)
    python -m benchmarks.mainjob --reference          # `make bench-reference`: the committed reference results
    python -m benchmarks.mainjob --check              # `make bench-smoke` (CI): every benchmark once, nothing saved

Where things go:

* a user's run (default): ``results/local/`` (git-ignored): ``asv/`` (asv results, machine
  ``<hostname>-<profile>``), ``html/`` (dashboard), ``results.csv``, ``plots/``, ``RECOMMENDATION.md``.
  The committed reference (``results/asv``, ``results/*.md``) is never touched.
* ``--reference``: ``results/asv`` (machine ``vm-<profile>``), ``results/results.csv``,
  ``results/plots/``, ``results/RECOMMENDATION.md``; the dashboard in ``results/html`` (git-ignored).
  Run it on a clean tree at the commit to publish, then commit ``results/``.

asv runs from a configuration generated from ``asv.conf.json`` with the results and html
directories replaced (``.asv/asv-<name>.conf.json``), so asv's own ``benchmarks.json`` and
``machine.json`` are written only there. The profile and the hash of the reader sources are
recorded next to the results (``<machine>/eegbench-runs.jsonl``), which ``eegbench recommend``
checks against the installed readers.

The ``quick`` profile (the default) is the standard generator with 4 recordings x 150 s instead of
20 x 5 min, the same format x codec x chunk matrix, every benchmark in one round (asv's default
is two) and without the three ``time_*`` benchmarks whose figures the ``track_*`` ones already give
(``time_open``, ``time_open_and_read``, ``time_read_recording``), each benchmark forked from asv's
forkserver instead of a freshly spawned interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._fixtures import REPO

#: the ``time_*`` duplicates of a ``track_*`` figure (left out of the quick profile). asv matches a
#: parameterized benchmark as ``name(param, ...)``: the name ends at "(" or at the end
_DUPLICATES = r"(?!.*\.(time_open|time_open_and_read|time_read_recording)(\(|$))"
#: suites of the quick main job, named one by one so a new suite joins it only deliberately
#: (everything else runs in ``standard``): the format x codec x chunk matrix
#: (random access, cold disk reads, sequential, open, memory, DataLoader, size, save) and the
#: reference-library comparison (bench_reference, ~1.5 min); left out: the remote suites
#: (bench_remote: servers, latencies, worker loaders), the number-of-recordings axis
#: (bench_many_recordings: 1,000 recordings x 3 formats), the generator's own speed (bench_synthetic) and
#: import + open in fresh interpreters (bench_open_cost: ~100 interpreter starts; `python -m benchmarks.bench_open_cost`)
QUICK_SUITES = ["bench_dataloader", "bench_memory", "bench_open", "bench_random_access", "bench_reference",
                "bench_save", "bench_sequential", "bench_size"]
#: and within them not the peak memory of reading 50 windows (24 fresh interpreters; the open's peak stays)
_QUICK_LEFT_OUT = r"(?!bench_memory\.ReadMemory\.)"
QUICK_BENCH = rf"^{_DUPLICATES}{_QUICK_LEFT_OUT}({'|'.join(QUICK_SUITES)})\."
QUICK_SKIP = QUICK_BENCH  # the name of earlier sessions
#: the smoke run (CI) stops here whatever hangs: minutes per benchmark, and for the whole run
SMOKE_BENCH_TIMEOUT_S = 300
# (at dd580e0 the smoke run had reached 44 % after 25 min on this 2-core VM, ~15 min of it in bench_remote's
# RemoteWindow at three latencies, now one in smoke; CI allows 90 min for setup + smoke + tests, so the cap
# leaves room for a slower runner without ever hanging)
SMOKE_TOTAL_TIMEOUT_S = 65 * 60
REFERENCE_MACHINE = "vm"


def write_config(results_root: Path, name: str) -> Path:
    """asv.conf.json with absolute paths and results/html under ``results_root``."""
    text = (REPO / "asv.conf.json").read_text(encoding="utf-8")
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    conf.update(repo=str(REPO), benchmark_dir=str(REPO / conf["benchmark_dir"]), env_dir=str(REPO / conf["env_dir"]),
                results_dir=str(results_root / "asv"), html_dir=str(results_root / "html"))
    for branch in conf.get("branches", []):  # a clone without a local `main`: publish the checked-out branch
        if subprocess.run(["git", "rev-parse", "--verify", "-q", branch], cwd=REPO, capture_output=True).returncode:
            head = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True,
                                  text=True).stdout.strip()
            conf["branches"] = [head] if head and head != "HEAD" else conf["branches"]
            break
    path = REPO / ".asv" / f"asv-{name}.conf.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conf, indent=1) + "\n", encoding="utf-8")
    return path


def _run(cmd: list[str], env: dict | None = None, check: bool = True, timeout: float | None = None) -> int:
    print("+", " ".join(cmd), flush=True)
    # own process group: a timeout ends asv and every benchmark process it started, nothing else
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"timed out after {timeout:.0f} s, stopped: {' '.join(cmd)}", file=sys.stderr, flush=True)
        rc = 124
    if check and rc != 0:
        raise SystemExit(f"command failed ({rc}): {' '.join(cmd)}")
    return rc


def _drop_other_machines(results: Path, keep: str) -> list[str]:
    """The committed reference describes the code it sits next to: results of other (earlier)
    reference machines/profiles measured older readers, and next to the new ones they made the
    dashboard's default graph empty. They stay in git history. Returns the machines removed."""
    import shutil

    removed = []
    for machine_json in sorted(results.glob("*/machine.json")):
        if machine_json.parent.name != keep:
            shutil.rmtree(machine_json.parent)
            removed.append(machine_json.parent.name)
    if removed:
        print(f"reference: removed the results of {', '.join(removed)} (older readers; see git history)", flush=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=os.environ.get("PROFILE") or "quick",
                        help="quick (default), standard, real or smoke")
    parser.add_argument("--reference", action="store_true", help="write the committed reference results")
    parser.add_argument("--machine", default=None, help="asv machine name (default <hostname>-<profile>, "
                                                        f"--reference: {REFERENCE_MACHINE}-<profile>)")
    parser.add_argument("--check", action="store_true", help="run every benchmark once without saving (CI)")
    parser.add_argument("--write-config", action="store_true", help="only write the local asv config, print its path")
    parser.add_argument("--bench", default=None, help="asv --bench regex (default: all; quick skips duplicates)")
    args = parser.parse_args(argv)
    t0 = time.time()
    bin_dir = Path(sys.executable).parent
    asv = [str(bin_dir / "asv")]
    root = REPO / "results" if args.reference else REPO / "results" / "local"
    name = "reference" if args.reference else "local"
    conf = write_config(root, name)
    if args.write_config:
        print(conf)
        return 0
    machine = args.machine or (f"{REFERENCE_MACHINE}-{args.profile}" if args.reference
                               else f"{socket.gethostname()}-{args.profile}")
    env = dict(os.environ, EEGBENCH_PROFILE=args.profile)
    if args.check or args.profile in ("quick", "smoke"):  # these fork every benchmark from asv's forkserver:
        env["EEGBENCH_BENCH_PREIMPORT"] = "1"  # import the libraries there once, not in ~300 benchmark processes
    if args.check:
        _run([*asv, "machine", "--config", str(conf), "--yes", "--machine", "ci-smoke"])
        # every benchmark once; asv ends one that runs over SMOKE_BENCH_TIMEOUT_S (reported failed), and the
        # whole run is stopped after SMOKE_TOTAL_TIMEOUT_S: CI fails instead of hanging
        return _run([*asv, "run", "--config", str(conf), "--python=same", "--quick", "--dry-run", "--show-stderr",
                     "--machine", "ci-smoke", "-a", f"timeout={SMOKE_BENCH_TIMEOUT_S}"], env=env, check=False,
                    timeout=SMOKE_TOTAL_TIMEOUT_S)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "eegbench", "benchmarks"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print(f"warning: uncommitted changes under eegbench/ or benchmarks/; results are labelled {commit[:10]} and "
              "carry the hash of the sources actually measured", flush=True)
    from eegbench.results_table import reader_code_hash, record_run

    code_hash = reader_code_hash()
    if args.reference:
        _drop_other_machines(root / "asv", machine)
    _run([*asv, "machine", "--config", str(conf), "--yes", "--machine", machine])
    # forkserver: the suite is imported once and every benchmark runs in a fork of that clean server
    # (no Blosc/zarr threads ran there); spawn re-imports everything per benchmark (~2-5 s each here)
    launch = "forkserver" if args.profile in ("quick", "smoke") else "spawn"
    cmd = [*asv, "run", "--config", str(conf), "--python=same", "--set-commit-hash", commit, "--machine", machine,
           "--launch-method", launch, "--show-stderr"]
    bench = args.bench or (QUICK_BENCH if args.profile == "quick" else None)
    if args.profile in ("quick", "smoke"):
        cmd += ["-a", "rounds=1"]
    if bench:
        cmd += ["--bench", bench]
    rc = _run(cmd, env=env, check=False)
    record_run(root / "asv", machine, commit, args.profile, code_hash)
    _run([*asv, "publish", "--config", str(conf)])
    from benchmarks import publish

    prc = publish.main(["--results", str(root / "asv"), "--out", str(root), "--machine", machine,
                        "--html", str(root / "html")])
    rc = rc or prc
    minutes = (time.time() - t0) / 60
    print(f"\nmain job done in {minutes:.1f} min (profile {args.profile}, machine {machine}, commit {commit[:10]})")
    print(f"dashboard: .venv/bin/python -m http.server -d {root / 'html'} 8080  -> http://127.0.0.1:8080/ "
          f"(or .venv/bin/asv preview --config {conf})")
    if rc != 0:
        print(f"warning: asv run exited with {rc}: some benchmarks failed (n/a in the results)", file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
