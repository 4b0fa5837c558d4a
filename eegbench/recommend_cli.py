"""``eegbench recommend``: which format, codec and chunk span to use, from measured figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_EPILOG = """\
examples:
  eegbench recommend                                  # the committed reference results (results/asv)
  eegbench recommend --results local                  # this machine's `make bench` results
  eegbench recommend --workload training --weights cold=2,loader=0.5
  eegbench recommend --workload custom --weights cold=2,size=1
  eegbench recommend --data ../shared/data/eeg/eegbci_S001     # measure a sample of your recordings now

Workloads and default weights: training (warm=1, cold=1, loader=1), preprocessing (seq_warm=1,
seq_cold=1, save=1), archive (size=2, save=0.5, integrity required), sharing (size=1, files=1,
window_bytes=1). Score = weighted geometric mean of each figure's factor to the best
configuration (1.00 = best on every weighted figure). Figures that were not measured are n/a.
"""

REPO = Path(__file__).resolve().parents[1]
RESULTS = {"reference": REPO / "results" / "asv", "local": REPO / "results" / "local" / "asv"}
RERUN = {"reference": "make bench-reference", "local": "make bench"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .recommend import WORKLOADS

    p = subparsers.add_parser(
        "recommend", help="rank formats x codecs x chunk spans for a workload, from benchmark results or your data",
        description="Rank every store configuration per workload and name the winner, the measurements that "
                    "decided it and the save() arguments to use.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="reference", metavar="WHICH",
                   help="'reference' (committed results/asv, default), 'local' (results/local/asv of `make bench`), "
                        "an asv results directory or a results CSV")
    p.add_argument("--data", nargs="+", metavar="PATH", default=None,
                   help="measure a seeded sample of these recordings (files, folders, a BIDS root or a store) instead")
    p.add_argument("--recordings", type=int, default=4, help="--data: recordings in the sample (default 4)")
    p.add_argument("--seconds", type=float, default=60.0, help="--data: seconds from each recording (default 60)")
    p.add_argument("--seed", type=int, default=0, help="--data: sample seed")
    p.add_argument("--workload", "-w", action="append", choices=[*WORKLOADS, "custom"], default=None,
                   help="workload(s) to rank for (default: all four)")
    p.add_argument("--weights", default=None, help="override weights, e.g. cold=2,size=1 (0 drops a metric)")
    p.add_argument("--machine", default=None, help="machine whose results to use (default: the newest)")
    p.add_argument("--top", type=int, default=8, help="rows of each ranked table (default 8)")
    p.add_argument("--markdown", type=Path, default=None, help="also write the full Markdown report here")
    p.add_argument("--allow-stale", action="store_true",
                   help="use results measured on other reader code (prints a warning instead of failing)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    return p


def _load(which: str):
    from .errors import MissingResultsError
    from .results_table import expected_versions, load_asv, read_csv

    path = RESULTS.get(which, Path(which))
    if path.is_file():
        return read_csv(path), {}, str(path)
    if not path.exists():
        hint = {"reference": "the committed reference results are part of the source repository",
                "local": "run `make bench` first"}.get(which, "give an asv results directory or a results CSV")
        raise MissingResultsError(f"no results at {path}: {hint}")
    return load_asv(path), expected_versions(path), str(path)


def run(args: argparse.Namespace) -> int:
    from .errors import StaleResultsError
    from .recommend import check_fresh, recommend, render_markdown, render_text
    from .results_table import reader_changes_since, reader_code_hash

    if args.data:
        from .recommend_data import measure

        rows = measure(args.data, n_recordings=args.recordings, seconds=args.seconds, seed=args.seed,
                       progress=not args.quiet)
        rec = recommend(rows, workloads=args.workload, weights=args.weights,
                        source=f"measured now on a sample of {', '.join(map(str, args.data))} "
                               f"({args.recordings} recordings x {args.seconds:g} s, seed {args.seed})")
    else:
        rows, versions, source = _load(args.results)
        rec = recommend(rows, workloads=args.workload, weights=args.weights, machine=args.machine,
                        expected_versions=versions, source=source)
        changes = reader_changes_since(rec.commit) if rec.commit else None
        try:
            check_fresh(rec, reader_code_hash(), commits_behind=None if changes is None else changes[0],
                        changed=() if changes is None else changes[1],
                        rerun=RERUN.get(args.results, "make bench"))
        except StaleResultsError as exc:
            if not args.allow_stale:
                raise
            print(f"warning: {exc}", file=sys.stderr)
    print(render_text(rec, top=args.top))
    if args.markdown:
        args.markdown.write_text(render_markdown(rec) + "\n", encoding="utf-8")
        print(f"\nwrote {args.markdown}")
    return 0
