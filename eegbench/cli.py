"""The ``eegbench`` command line. Run ``eegbench --help`` or ``eegbench COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .codecs import COMPRESSIONS, DEFAULT_COMPRESSION
from .errors import EegbenchError

_EPILOG_CONVERT = """\
examples:
  eegbench convert ../shared/data/eeg/eegbci_S001 eegbci.zarr --format zarr
  eegbench convert sub-*/eeg/*.edf out.h5store --format hdf5 --compression gzip --level 6
  eegbench convert bids_root/ bids.parquet --format parquet --jobs 2
  eegbench convert eegbci.zarr eegbci.h5store --format hdf5        # store -> store

SRC may be recording files (EDF/EDF+/BDF, BrainVision .vhdr, EEGLAB .set, FIF), folders of
them, a BIDS root (has dataset_description.json) or an existing eegbench store (any format).
Signals are stored losslessly: as integer ADC counts + calibration when every sample provably
lies on the recording's integer grid (verified bit for bit), as float32 volts otherwise.
The write is atomic: DEST appears only when complete.
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .formats import available_formats

    parser = argparse.ArgumentParser(
        prog="eegbench",
        description="Store EEG recordings and datasets in HDF5, Zarr v3 or NumPy+Parquet, read them "
                    "lazily, and benchmark the formats.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'eegbench COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"eegbench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    conv = sub.add_parser("convert", help="convert recordings, a BIDS dataset or a store into a store",
                          description="Convert SRC... into a new store DEST.", epilog=_EPILOG_CONVERT,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("src", nargs="+", metavar="SRC", help="recording files, folders, a BIDS root or a store")
    conv.add_argument("dest", metavar="DEST", help="the store to create (a directory)")
    conv.add_argument("--format", "-f", required=True, choices=available_formats(),
                      help="storage format (parquet = NumPy signals + Parquet tables)")
    conv.add_argument("--compression", "-c", choices=COMPRESSIONS, default=None,
                      help=f"codec (default {DEFAULT_COMPRESSION}; lzf is HDF5-only)")
    conv.add_argument("--level", "-l", type=int, default=None, help="codec level (default: the codec's default)")
    conv.add_argument("--chunk-seconds", type=_positive_float, default=None,
                      help="time span of one chunk in seconds, all channels (default 1.0)")
    conv.add_argument("--integer", choices=("auto", "yes", "no"), default="auto",
                      help="store integer ADC counts when lossless (auto), always (yes) or never (no)")
    conv.add_argument("--delta", action="store_true",
                      help="difference filter on integer counts: ~9%% smaller, ~2x slower reads (zarr, parquet)")
    conv.add_argument("--jobs", "-j", type=int, default=1, help="recordings converted in parallel (processes)")
    conv.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    conv.add_argument("--skip-errors", action="store_true",
                      help="skip source files MNE cannot read (with a warning) instead of stopping")
    conv.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")

    info = sub.add_parser("info", help="describe a store: format, codec, chunking, size, ratio",
                          description="Print what a store holds and what it costs on disk.")
    info.add_argument("path", metavar="PATH")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--recordings", action="store_true", help="also list every recording")

    ver = sub.add_parser("verify", help="check every file of a store against its SHA-256 manifest",
                         description="Re-hash every file of the store; exit status 1 if any differs.")
    ver.add_argument("path", metavar="PATH")

    syn = sub.add_parser("synthetic", help="write a realistic synthetic EEG dataset as a store",
                         description="Generate quantized synthetic EEG (1/f background, alpha bursts, line "
                                     "noise, events) recording by recording, straight into a store.")
    syn.add_argument("dest", metavar="DEST")
    syn.add_argument("--profile", default="smoke", help="dataset profile: smoke, standard, eegbci-like")
    syn.add_argument("--format", "-f", default="parquet", choices=available_formats())
    syn.add_argument("--compression", "-c", choices=COMPRESSIONS, default=None,
                     help=f"codec (default {DEFAULT_COMPRESSION})")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--overwrite", action="store_true")
    syn.add_argument("--quiet", "-q", action="store_true")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return str(n)


def _print_info(summary: dict[str, Any], recordings: Any = None) -> None:
    rows = [
        ("path", summary["path"]),
        ("format", summary["format"]),
        ("schema version", summary["schema_version"]),
        ("codec", summary["codec"]),
        ("chunking", f"{summary['chunk_seconds']} s -> {summary['chunk_samples']} samples x all channels"),
        ("stored as", ", ".join(summary["stored_dtypes"])),
        ("recordings", f"{summary['n_recordings']}{' (heterogeneous)' if summary['heterogeneous'] else ''}"),
        ("channels", ", ".join(map(str, summary["n_channels"]))),
        ("sfreq (Hz)", ", ".join(f"{s:g}" for s in summary["sfreq"])),
        ("duration", f"{summary['duration_s']:.1f} s ({summary['duration_s'] / 3600:.2f} h)"),
        ("annotations", summary["n_annotations"]),
        ("windows", summary["n_windows"] if summary["n_windows"] is not None else "none"),
        ("size on disk", f"{_human(summary['size_bytes'])} in {summary['n_files']} files"),
        ("float32 size", _human(summary["float32_bytes"])),
        ("compression ratio", f"{summary['compression_ratio']:.2f}x vs float32"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if recordings is not None:
        print()
        print(recordings.to_string(index=False))


def _cmd_convert(args: argparse.Namespace) -> int:
    from .sources import load
    from .store import info, save

    t0 = time.perf_counter()
    dataset = load([Path(p) for p in args.src], skip_errors=args.skip_errors)
    integer = {"auto": "auto", "yes": True, "no": False}[args.integer]
    save(dataset, args.dest, format=args.format, compression=args.compression, level=args.level,
         chunk_seconds=args.chunk_seconds, overwrite=args.overwrite, integer=integer, delta=args.delta,
         jobs=args.jobs,
         progress=not args.quiet)
    if not args.quiet:
        summary = info(args.dest)
        print(f"wrote {args.dest}: {summary['n_recordings']} recordings, {_human(summary['size_bytes'])} "
              f"({summary['compression_ratio']:.2f}x vs float32), {summary['codec']}, "
              f"{time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .store import info, open

    summary = info(args.path)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        _print_info(summary, open(args.path).summary() if args.recordings else None)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .store import verify

    verify(args.path)
    print(f"{args.path}: every file matches its SHA-256")
    return 0


def _cmd_synthetic(args: argparse.Namespace) -> int:
    from .sources.synthetic import make_profile
    from .store import save

    dataset = make_profile(args.profile, seed=args.seed)
    save(dataset, args.dest, format=args.format, compression=args.compression, overwrite=args.overwrite,
         progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {args.dest}: synthetic profile {args.profile!r}, {len(dataset)} recordings")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eegbench`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    handler = {"convert": _cmd_convert, "info": _cmd_info, "verify": _cmd_verify,
               "synthetic": _cmd_synthetic}[args.command]
    try:
        return handler(args)
    except EegbenchError as exc:
        print(f"eegbench {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eegbench {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
