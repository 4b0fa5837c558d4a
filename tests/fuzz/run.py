"""Fuzz runner: damaged/crafted stores checked in worker subprocesses with a timeout and a memory limit.

    python -m tests.fuzz.run --full            # >= 3,000 cases per format (the published figures)
    python -m tests.fuzz.run --per-base 40     # a quick run
    python -m tests.fuzz.run --full --json out.json

Each worker is a long-lived subprocess (imports paid once) with ``RLIMIT_AS`` set; the parent
gives every case a timeout and restarts a worker that hangs (counted ``hang``) or dies (``crash``).
Prints, per format: correct data / typed error / anything else, wrong data without error (with the
valid-edit cases listed apart), untyped exceptions, hangs, peak memory above 2x the store's
size or 16 MiB (traced allocations of the case, see PEAK_FLOOR), and stores that ``verify``
did not flag.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 16 << 30  # address space per worker (thread arenas need room; absurd sizes do not fit)
TIMEOUT = 60.0  # seconds per case (the machine is shared: generous; a hang is a hang)
# A case fails the memory criterion when its traced peak exceeds max(2 x the store's bytes, this floor).
# The base stores are 50-110 KB: 2x that is below the one-off cost of a module a worker imports
# lazily on its first error path (3.86-3.87 MB, measured), while the smallest allocation a crafted
# size could ask for is 2.4 GB (n_channels 10**6 x 600 samples x 4 B); 16 MiB sits 4x above the
# first and 140x below the second. Ordinary cases peak at 18-48 KB (median), 346 KB at most.
PEAK_FLOOR = 16 << 20


# ---------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------
def _worker(bases_dir: str) -> None:
    import faulthandler
    import os
    import resource

    faulthandler.enable(all_threads=True)  # a fatal signal prints the Python stacks to stderr (the run's log)

    from tests.fuzz import corpus

    limit = int(os.environ.get("EEGBENCH_FUZZ_RLIMIT_AS", MEMORY_LIMIT))
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if os.environ.get("EEGBENCH_FUZZ_CORE_DIR"):  # debugging a crash: core files land there
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        os.chdir(os.environ["EEGBENCH_FUZZ_CORE_DIR"])
    refs: dict[str, Any] = {}
    scratch = Path(tempfile.mkdtemp(prefix="eegbench-fuzz-"))
    # warm up: eegbench imports its libraries (pandas, h5py, zarr, numcodecs...) and compiles its
    # kernels on first use; doing that here keeps it out of the cases' timeouts and traced memory
    # (every base: the first float32 blosc case of a worker otherwise paid its codec's first-use
    # allocations, up to 365 KiB traced on a 62 KiB store)
    for warm in sorted(p.name for p in Path(bases_dir).iterdir() if p.is_dir() and not p.name.endswith("-foreign")):
        refs[warm] = corpus.dataset(0, warm.endswith("-int"))
        corpus.check(Path(bases_dir) / warm, refs[warm], measure_memory=False)
    print(json.dumps({"ready": True}), flush=True)  # the parent waits for this line
    for line in sys.stdin:
        case = json.loads(line)
        base = case["base"]
        if base not in refs:
            refs[base] = corpus.dataset(0, base.endswith("-int"))
        work = scratch / "case"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        store = work / "store"
        shutil.copytree(Path(bases_dir) / base, store, symlinks=True)
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        before = corpus.tree_digest(store)
        try:
            corpus.apply(case, store, Path(bases_dir) / f"{base}-foreign")
        except Exception as exc:  # the mutation does not apply to this store (e.g. no such column)
            print(json.dumps({"id": case["id"], "outcome": "skipped", "error": repr(exc)[:200]}), flush=True)
            continue
        if corpus.tree_digest(store) == before:  # e.g. a foreign table with identical bytes
            print(json.dumps({"id": case["id"], "outcome": "noop"}), flush=True)
            continue
        result = corpus.check(store, refs[base])
        result["id"] = case["id"]
        result["store_bytes"] = size
        print(json.dumps(result), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, bases: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.run", "--worker", str(bases)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     cwd=Path(__file__).resolve().parents[2])
        # wait for its imports (seconds on a loaded machine), so they never count in a case's timeout
        line = self.proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"fuzz worker failed to start (exit {self.proc.poll()}): {line[:200]!r}")
        self.case: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None  # the record of the last case this worker finished
        self.started = 0.0

    def send(self, case: dict[str, Any]) -> bool:
        """Give the worker ``case``; False if the worker has died since its last case."""
        try:
            self.proc.stdin.write(json.dumps(case) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        self.case, self.started = case, time.monotonic()
        return True

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run(all_cases: list[dict[str, Any]], bases: Path, workers: int, progress: bool = True,
        log: Any = None) -> list[dict[str, Any]]:
    """Every case through the worker pool; each record is also appended to ``log`` (JSON lines, a
    later line for the same id replaces an earlier one) as it arrives, so an interrupted run keeps
    what it measured."""

    def record(res: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps(res, default=str) + "\n")
            log.flush()
    pending = collections.deque(all_cases)
    results: list[dict[str, Any]] = []
    pool = [_Worker(bases) for _ in range(workers)]
    t0 = time.monotonic()
    try:
        while pending or any(w.case for w in pool):
            for i, w in enumerate(pool):
                if w.case is not None or not pending:
                    continue
                fresh = 0
                while not w.send(pending[0]):
                    fresh += w.last is None
                    if fresh > 3:
                        raise RuntimeError(f"fuzz workers die before their first case (exit {w.proc.wait()})")
                    # died after reporting its last case (e.g. in a background thread of that case):
                    # that case is a crash, whatever it reported
                    if w.last is not None:
                        w.last.update(outcome="crash", error=f"worker exit {w.proc.wait()} after the case")
                        record(w.last)
                        w.last = None
                    w.kill()
                    w = pool[i] = _Worker(bases)
                pending.popleft()
            busy = [w for w in pool if w.case is not None]
            ready, _, _ = select.select([w.proc.stdout for w in busy], [], [], 1.0)
            now = time.monotonic()
            for i, w in enumerate(pool):
                if w.case is None:
                    continue
                if w.proc.stdout in ready:
                    line = w.proc.stdout.readline()
                    if line:
                        res = json.loads(line)
                        res.update({k: w.case[k] for k in w.case if k not in res})
                        results.append(res)
                        record(res)
                        w.case, w.last = None, res
                        continue
                    res = dict(w.case, outcome="crash", error=f"worker exit {w.proc.wait()}")
                elif now - w.started > TIMEOUT:
                    res = dict(w.case, outcome="hang")
                else:
                    continue
                results.append(res)
                record(res)
                w.kill()
                pool[i] = _Worker(bases)
            if progress and len(results) % 200 == 0 and results:
                print(f"  {len(results)}/{len(all_cases)} cases, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    finally:
        for w in pool:
            w.kill()
    return results


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    from tests.fuzz.corpus import _split

    out: dict[str, Any] = {}
    for res in results:
        fmt = _split(res["base"])[0]
        s = out.setdefault(fmt, collections.Counter())
        outcome = res["outcome"]
        s["cases"] += 1
        s[outcome] += 1
        if outcome == "wrong" and res.get("recompute"):
            s["wrong_valid_edit"] += 1
        elif outcome == "wrong":
            s["wrong_no_error"] += 1
        limit = max(2 * res.get("store_bytes", 0), PEAK_FLOOR)
        if res.get("peak_bytes", 0) > limit:
            s["peak_memory_over_limit"] += 1
        s["max_peak_kib"] = max(s["max_peak_kib"], res.get("peak_bytes", 0) >> 10)
        if outcome not in ("skipped", "noop") and res.get("verify") != 1 and not res.get("recompute"):
            s["verify_not_flagged"] += 1
        if res.get("verify") == 2:
            s["verify_untyped"] += 1
    return {k: dict(v) for k, v in out.items()}


def select_cases(formats: tuple[str, ...], per_base: int, seed: int, bases: dict[str, Path],
                 every: int = 1) -> list[dict[str, Any]]:
    from tests.fuzz import corpus

    rng = random.Random(seed)
    out = []
    for name, store in bases.items():
        out.extend(corpus.cases(name, store, rng, per_base))
    out = out[::every]
    for i, c in enumerate(out):
        c["id"] = i
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--full", action="store_true", help="the published run: 520 cases per base store "
                    "(6 bases per format -> 3,120 per format)")
    ap.add_argument("--per-base", type=int, default=60)
    ap.add_argument("--every", type=int, default=1, help="keep every n-th case (quick subsets)")
    ap.add_argument("--formats", default=",".join(("hdf5", "zarr", "parquet")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bases", help="folder for the base stores (default: a temporary folder)")
    ap.add_argument("--json", help="write every case's record here (and, as they arrive, to <json>l)")
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return 0
    from tests.fuzz import corpus

    per_base = 520 if args.full else args.per_base
    formats = tuple(args.formats.split(","))
    tmp = None
    folder = Path(args.bases) if args.bases else Path(tmp := tempfile.mkdtemp(prefix="eegbench-fuzz-bases-"))
    try:
        bases = corpus.build_bases(folder, formats)
        cases = select_cases(formats, per_base, args.seed, bases, args.every)
        t0 = time.monotonic()
        log = open(args.json + "l", "w") if args.json else None  # noqa: SIM115 - closed below
        try:
            results = run(cases, folder, args.workers, log=log)
        finally:
            if log is not None:
                log.close()
        elapsed = time.monotonic() - t0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(results)
    print(f"{len(results)} cases in {elapsed:.0f} s ({args.workers} workers, RLIMIT_AS {MEMORY_LIMIT >> 30} GiB, "
          f"timeout {TIMEOUT:.0f} s)")
    keys = ["cases", "correct", "typed", "wrong_no_error", "wrong_valid_edit", "untyped", "hang", "crash",
            "skipped", "noop", "peak_memory_over_limit", "max_peak_kib", "verify_not_flagged", "verify_untyped"]
    print("format   " + " ".join(f"{k:>9}" for k in keys))
    for fmt, s in sorted(summary.items()):
        print(f"{fmt:8} " + " ".join(f"{s.get(k, 0):>9}" for k in keys))
    bad = [r for r in results if r["outcome"] in ("untyped", "hang", "crash")
           or (r["outcome"] == "wrong" and not r.get("recompute")) or r.get("verify") == 2
           or (r["outcome"] not in ("skipped", "noop") and r.get("verify") != 1 and not r.get("recompute"))]
    valid_edits = collections.Counter(f"{r['kind']}:{r.get('field') or r.get('table')}={str(r.get('value'))[:30]}"
                                      for r in results if r["outcome"] == "wrong" and r.get("recompute"))
    if valid_edits:
        print("wrong data from valid edits (manifest and header digest recomputed):")
        for k, n in sorted(valid_edits.items()):
            print(f"  {n:4}  {k}")
    for r in bad[:40]:
        print("FAIL", json.dumps({k: r.get(k) for k in ("base", "kind", "file", "field", "value", "offset",
                                                           "recompute", "outcome", "error", "verify",
                                                           "verify_error")}, default=str)[:400])
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "results": results}, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
