"""Everything the main job publishes, generated from asv results (never hand-written):

    python -m benchmarks.publish                                  # committed reference: results/asv -> results/
    python -m benchmarks.publish --results results/local/asv --out results/local

* ``<out>/results.csv``: the flattened table (benchmark, params, median, spread, unit, machine,
  commit, date, profile, version, code_hash) of every machine and commit under ``--results``;
* ``<out>/plots/*.png`` (:mod:`benchmarks.plots`) and ``<out>/RECOMMENDATION.md``
  (:func:`eegbench.recommend.recommend` with the default weights) for the newest run of
  ``--machine`` (default: the machine with the newest results);
* with ``--html DIR`` (asv's published dashboard): scripts and styles served from local copies
  (installed from npm by ``make setup``, see ``VENDOR``) instead of CDNs, and graphs that default
  to the store configuration on the x axis (zero-based bars of every configuration, useful with one
  commit; the commit axis stays one click away).

:func:`generate` returns the CSV and Markdown text without writing: the tests regenerate the
committed files from the committed results and compare them byte for byte.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from pathlib import Path

from benchmarks._fixtures import REPO
from eegbench.errors import EegbenchError
from eegbench.recommend import Recommendation, recommend, render_markdown
from eegbench.results_table import expected_versions, load_asv, write_csv

PLOTS = {"time per window vs bytes on disk (Pareto front)": "plots/window_time_vs_size.png",
         "cold vs warm per format": "plots/cold_vs_warm.png",
         "DataLoader throughput per configuration": "plots/dataloader.png",
         "compression ratio per codec, synthetic and real": "plots/compression_ratio.png"}
REAL_MD = REPO / "results" / "compression-real.md"

#: npm packages the dashboard needs (asv 0.6.6's index.html names these versions on CDNs);
#: ``make setup`` installs them into VENDOR_DIR, nothing third-party is committed
NPM_PACKAGES = ["jquery@3.3.1", "flot@0.8.3", "flot-orderbars@1.0.0", "stupid-table-plugin@1.1.3",
                "blueimp-md5@2.19.0", "bootstrap@3.1.1"]
VENDOR_DIR = REPO / ".asv" / "www-vendor" / "node_modules"
#: CDN file name (as in asv's index.html) -> file of the npm package
VENDOR = {
    "jquery-3.3.1.min.js": "jquery/dist/jquery.min.js",
    "jquery.flot.min.js": "flot/jquery.flot.js",
    "jquery.flot.time.min.js": "flot/jquery.flot.time.js",
    "jquery.flot.selection.min.js": "flot/jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "flot/jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "flot-orderbars/js/jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupid-table-plugin/stupidtable.min.js",
    "md5.min.js": "blueimp-md5/js/md5.min.js",
    "bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
}


def header_of(rec: Recommendation) -> str:
    return f"machine {rec.machine}, commit {rec.commit[:10]}, profile {rec.profile or 'unknown'}"


def generate(results: Path, machine: str | None = None) -> tuple[str, str, Recommendation, list]:
    """(CSV text, RECOMMENDATION.md text, the recommendation, the rows of its run)."""
    rows = load_asv(results)
    csv_text = write_csv(rows)
    rec = recommend(rows, machine=machine, expected_versions=expected_versions(results),
                    source=f"`{results.relative_to(REPO) if results.is_relative_to(REPO) else results}`")
    run = [r for r in rows if r.machine == rec.machine and r.commit == rec.commit]
    md = render_markdown(rec, plots=PLOTS) + "\n"
    return csv_text, md, rec, run


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the dashboard ----------------------------------------------------------------------------------
_GRAPH_DEFAULT_OLD = """        x_coordinate_axis = 0;
        if (state_selection['x-axis'] !== undefined &&"""
_GRAPH_DEFAULT_NEW = """        x_coordinate_axis = 0;
        /* eegbench: by default compare store configurations (x axis = the first parameter), not commits */
        if (state_selection['x-axis'] === undefined && param_names.length > 0) {
            state_selection['x-axis'] = param_names[0];
        }
        if (state_selection['x-axis'] !== undefined &&"""

#: asv starts the y axis at 0 only for seconds and bytes; our units (ms, MB/s, windows/s, ratio) got
#: an axis starting at the smallest bar, which hid the fastest configurations' bars
_ZERO_BASED_OLD = """                if (unit && unit != "unit") {
                    unit_name = unit;
                }
                multiplier = 1.0;"""
_ZERO_BASED_NEW = """                if (unit && unit != "unit") {
                    unit_name = unit;
                }
                multiplier = 1.0;
                if (!zoom_y_axis) { /* eegbench: zero-based bars for every unit */
                    options.yaxis.min = 0.0;
                    options.yaxis.max = max * 1.1;
                }"""


def patch_dashboard(html: Path, vendor: Path = VENDOR_DIR) -> list[str]:
    """Serve the dashboard's scripts from ``html/vendor`` and set useful graph defaults; returns the
    CDN URLs that were replaced. Raises SystemExit naming `make setup` when an asset is missing."""
    index = html / "index.html"
    text = index.read_text(encoding="utf-8")
    urls = re.findall(r'(?:src|href)="(https://[^"]+)"', text)
    replaced = []
    (html / "vendor").mkdir(exist_ok=True)
    for url in urls:
        name = url.rsplit("/", 1)[-1]
        if name not in VENDOR:
            continue
        src = vendor / VENDOR[name]
        if not src.exists():
            raise SystemExit(f"dashboard asset {src} is missing: run `make setup` (npm install of "
                             f"{' '.join(NPM_PACKAGES)})")
        shutil.copyfile(src, html / "vendor" / name)
        text = text.replace(url, f"vendor/{name}")
        replaced.append(url)
    if "bootstrap.min.css" in VENDOR and (vendor / "bootstrap/dist/fonts").is_dir():
        shutil.copytree(vendor / "bootstrap/dist/fonts", html / "fonts", dirs_exist_ok=True)
    # local copies differ from the CDN's minified bytes: drop the CDN integrity hashes
    text = re.sub(r'\s+integrity="[^"]*"', "", text)
    text = re.sub(r'\s+crossorigin="anonymous"', "", text)
    text = re.sub(r'\s+referrerpolicy="no-referrer"', "", text)
    _atomic_write(index, text)
    graph = html / "graphdisplay.js"
    js = graph.read_text(encoding="utf-8")
    for old, new in ((_GRAPH_DEFAULT_OLD, _GRAPH_DEFAULT_NEW), (_ZERO_BASED_OLD, _ZERO_BASED_NEW)):
        if new not in js:
            if old not in js:
                raise SystemExit(f"{graph}: asv's graph code changed; update benchmarks/publish.py's patch")
            js = js.replace(old, new, 1)
    _atomic_write(graph, js)
    return replaced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "asv", help="asv results directory")
    parser.add_argument("--out", type=Path, default=REPO / "results", help="where the table, plots and Markdown go")
    parser.add_argument("--machine", default=None, help="machine of the recommendation (default: newest results)")
    parser.add_argument("--html", type=Path, default=None, help="asv's published dashboard to patch")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    results = args.results.resolve()
    if args.html is not None and (args.html / "index.html").exists():
        patch_dashboard(args.html)
        print(f"dashboard:      {args.html}/index.html  (serve it: .venv/bin/python -m http.server -d {args.html}; "
              "file:// does not work)")
    try:
        csv_text, md, rec, run = generate(results, args.machine)
    except EegbenchError as exc:
        print(f"no recommendation: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    _atomic_write(args.out / "results.csv", csv_text)
    _atomic_write(args.out / "RECOMMENDATION.md", md)
    if not args.no_plots:
        from benchmarks import plots

        plots.write_all(run, args.out / "plots", header_of(rec), rec.profile or "unknown", REAL_MD)
    print(f"recommendation from {header_of(rec)}:")
    for w, res in rec.workloads.items():
        score = "n/a" if math.isinf(res.winner.score) else f"{res.winner.score:.2f}"
        print(f"  {w:<14} {res.winner.config.name:<26} (score {score}) -> {res.winner.config.save_call()}")
    print(f"table:          {args.out / 'results.csv'}")
    print(f"recommendation: {args.out / 'RECOMMENDATION.md'}")
    if not args.no_plots:
        print(f"plots:          {args.out / 'plots'}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
