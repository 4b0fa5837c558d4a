"""Figures for Hub sharing: files and bytes a push uploads (dry run, no network) per format, and
the time to pull one subject from a local Hub-compatible server (tests/hub_server.py) into an
empty cache through the real huggingface_hub client.

    .venv/bin/python benchmarks/hub_figures.py [--profile standard] [--repeats 5] [--eegbci PATH]

Prints one Markdown table. Timings are wall-clock medians on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard", help="synthetic profile (eegbench.synthetic.PROFILES)")
    parser.add_argument("--eegbci", default=str(ROOT.parent / "shared" / "data" / "eeg" / "eegbci_S001"))
    parser.add_argument("--formats", default="hdf5,zarr,parquet")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from hub_server import HubServer
    from huggingface_hub import HfApi

    import eegbench
    from eegbench import hub
    from eegbench.sources.synthetic import make_profile

    work = Path(tempfile.mkdtemp(prefix="hub-figures-"))
    rows = []
    try:
        sources = []
        if Path(args.eegbci).is_dir():
            eegbci = eegbench.from_files(args.eegbci)
            sources.append((f"EEGBCI S001 ({len(eegbci)} EDF runs)", eegbci))
        t0 = time.perf_counter()
        sources.append((f"synthetic {args.profile}", make_profile(args.profile)))
        print(f"# built {args.profile} dataset in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        srv = HubServer()
        os.environ["HF_ENDPOINT"] = srv.start()
        for label, ds in sources:
            for fmt in args.formats.split(","):
                store = work / f"{len(rows)}.{fmt}"
                t0 = time.perf_counter()
                eegbench.save(ds, store, format=fmt)
                t_save = time.perf_counter() - t0
                plan = hub.push_to_hub(store, "bench/ds", dry_run=True, cache_dir=work / "up")
                repo = f"bench/r{len(rows)}"

                def publish(self, repo_id, folder_path, **kw):
                    srv.add_folder(repo_id, Path(folder_path))

                with mock.patch.object(HfApi, "create_repo"), mock.patch.object(HfApi, "upload_large_folder", publish):
                    hub.push_to_hub(store, repo, cache_dir=work / "up")
                desc = eegbench.open(store).description
                col = "subject" if "subject" in desc.columns and desc["subject"].nunique() > 1 else None
                times, served = [], 0
                for _ in range(args.repeats):
                    cache = work / "cache"
                    shutil.rmtree(cache, ignore_errors=True)
                    srv.requests.clear()
                    t0 = time.perf_counter()
                    part = eegbench.from_pretrained(repo, cache_dir=cache,
                                                    **({col: desc[col].iloc[0]} if col else {}))
                    times.append(time.perf_counter() - t0)
                    served = len(srv.served_files())
                rows.append((label, fmt, plan.n_files, plan.n_bytes, t_save, len(part), served,
                             statistics.median(times), col or "all"))
                shutil.rmtree(store)
        srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| dataset | format | files pushed | bytes pushed | save (s) | pull filter | recordings pulled | "
          "files served | pull median (s) |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    for label, fmt, n, b, ts, n_rec, served, t, col in rows:
        print(f"| {label} | {fmt} | {n} | {b:,} | {ts:.1f} | {col} | {n_rec} | {served} | {t:.3f} |")


if __name__ == "__main__":
    main()
