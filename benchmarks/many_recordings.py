"""Many short recordings vs few long ones, in every format: save, open, random reads under a low
open-file limit, files per folder. Prints a Markdown table (and JSON with ``--json``).

    python -m benchmarks.many_recordings                       # 10,000 x 10 s vs 100 x 1,000 s
    python -m benchmarks.many_recordings --n 1000 --formats zarr --nofile 256
    python -m benchmarks.many_recordings --pack never          # one file (set) per recording

``--pack`` (default ``auto``: 10,000 short recordings are packed, 100 long ones are not; see
:mod:`eegbench.packing`) is passed to ``save``; the table's "packs" column says how many packs
each store holds (0: not packed).

Recordings: synthetic, 4 channels, 100 Hz, blosc-zstd (the issue's example), loaded into memory
first so generation is not timed. The "few" case holds the same samples in ``--few`` recordings.
Open and reads run in a fresh child process with ``RLIMIT_NOFILE`` set to ``--nofile`` (default
256): open time, the growth of the child's RSS during open (imports done first), ``--reads``
random 1-s windows across all recordings (ms per window, median of 3 passes), and "open + build
all": a second open that builds every recording (open checks whole columns only; each recording's
rows and files are checked when it is first built).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from ._many import dataset, run_child


def _measure(fmt: str, ds, where: Path, nofile: int, reads: int, pack: str = "auto") -> dict:
    import eegbench
    from eegbench import manifest
    from eegbench.io.layout import max_folder_entries

    path = where / f"{fmt}-{len(ds)}"
    t = time.perf_counter()
    eegbench.save(ds, path, format=fmt, compression="blosc-zstd", pack=pack)
    save_s = time.perf_counter() - t
    header = manifest.read_header(path)
    files = header["files"]
    folder, entries = max_folder_entries(list(files))
    child = run_child(path, nofile, reads, passes=3, check=False)
    shutil.rmtree(path, ignore_errors=True)
    return {"format": fmt, "n_recordings": len(ds), "save_s": save_s, "files": len(files),
            "packs": len(header.get("packs", {})), "pack": pack,
            "max_folder_entries": entries, "fullest_folder": folder, **child}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="short recordings (default 10,000)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of a short recording (s)")
    p.add_argument("--few", type=int, default=100, help="long recordings holding the same samples")
    p.add_argument("--formats", nargs="+", default=["hdf5", "zarr", "parquet"])
    p.add_argument("--nofile", type=int, default=256, help="RLIMIT_NOFILE of the reading child")
    p.add_argument("--reads", type=int, default=2000, help="random 1-s windows per pass")
    p.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.add_argument("--pack", choices=("auto", "always", "never"), default="auto", help="save(pack=...)")
    args = p.parse_args(argv)
    where = Path(tempfile.mkdtemp(prefix="eegbench-many-", dir=args.dir))
    rows = []
    try:
        many = dataset(args.n, args.seconds)
        few = dataset(args.few, args.seconds * args.n / args.few)
        for fmt in args.formats:
            for ds in (many, few):
                row = _measure(fmt, ds, where, args.nofile, args.reads, args.pack)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    print()
    print(f"pack={args.pack}")
    print(f"| format | recordings | packs | save s | save ratio | open s | open RSS growth | ms/window "
          f"(RLIMIT_NOFILE={args.nofile}) | open + build all s | files | max entries/folder |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["format"] == row["format"] and r["n_recordings"] == args.few)
        ratio = row["save_s"] / base["save_s"] if base["save_s"] else float("nan")
        read = f"{row['read_ms']:.3f}" if "read_ms" in row else f"failed: {row.get('error')}"
        open_s = f"{row['open_s']:.3f}" if "open_s" in row else "-"
        rss = f"{row['open_rss_bytes'] / 2**20:.1f} MiB" if "open_rss_bytes" in row else "-"
        build = f"{row['build_all_s']:.2f}" if "build_all_s" in row else "-"
        print(f"| {row['format']} | {row['n_recordings']} | {row['packs']} | {row['save_s']:.1f} | {ratio:.2f}x | {open_s} | {rss} | "
              f"{read} | {build} | {row['files']} | {row['max_folder_entries']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
