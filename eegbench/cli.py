"""The ``eegbench`` command line. Run ``eegbench --help`` or ``eegbench COMMAND --help``."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from .codecs import COMPRESSIONS, DEFAULT, DEFAULT_COMPRESSION
from .errors import EegbenchError

_EPILOG_CONVERT = """\
examples:
  eegbench convert ../shared/data/eeg/eegbci_S001 eegbci.zarr     # format from the name: zarr
  eegbench convert sub-*/eeg/*.edf out.h5 --compression gzip --level 6
  eegbench convert bids_root/ bids.parquet --jobs 2
  eegbench convert eegbci.zarr eegbci.store --format hdf5         # store -> store, format given

The format is the one DEST's name ends with (.zarr, .h5/.hdf5, .parquet/.pq), else --format,
else zarr; a DEST named for another format than --format is an error.

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


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for misspelt commands and options."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        hint = _suggestion(self, message)
        super().error(message + hint)


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    m = re.search(r"invalid choice: '([^']*)'", message)
    if m:
        named = re.match(r"argument ([^:]+):", message)
        names = set(named.group(1).split("/")) if named else set()
        actions = [a for a in parser._actions if a.choices]  # noqa: SLF001
        actions = [a for a in actions if names & {*a.option_strings, str(a.metavar), str(a.dest)}] or actions
        choices = [c for a in actions for c in a.choices]
        close = difflib.get_close_matches(m.group(1), [str(c) for c in choices], n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""
    m = re.search(r"unrecognized arguments: (.*)", message)
    if m:
        options = [o for a in parser._actions for o in a.option_strings]  # noqa: SLF001
        hints = []
        for word in m.group(1).split():
            close = difflib.get_close_matches(word.split("=")[0], options, n=1) if word.startswith("-") else []
            if close:
                hints.append((word, close[0]))
        if len(hints) == 1:
            return f" (did you mean {hints[0][1]}?)"
        return f" (did you mean {', '.join(f'{c} for {w}' for w, c in hints)}?)" if hints else ""
    return ""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from .formats import available_formats

    parser = _Parser(
        prog="eegbench",
        description="Store EEG recordings and datasets in HDF5, Zarr v3 or NumPy+Parquet, read them "
                    "lazily, and benchmark the formats.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'eegbench COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"eegbench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    compressions = (DEFAULT, *COMPRESSIONS)

    conv = sub.add_parser("convert", help="convert recordings, a BIDS dataset or a store into a store",
                          description="Convert SRC... into a new store DEST.", epilog=_EPILOG_CONVERT,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("src", nargs="+", metavar="SRC", help="recording files, folders, a BIDS root or a store")
    conv.add_argument("dest", metavar="DEST", help="the store to create (a directory)")
    conv.add_argument("--format", "-f", default=None, choices=available_formats(),
                      help="storage format (parquet = NumPy signals + Parquet tables); default: the one "
                           "DEST's name ends with, else zarr")
    conv.add_argument("--compression", "-c", choices=compressions, default=DEFAULT,
                      help=f"codec (default: {DEFAULT_COMPRESSION}; none = uncompressed; lzf is HDF5-only)")
    conv.add_argument("--level", "-l", type=int, default=None, help="codec level (default: the codec's default)")
    conv.add_argument("--chunk-seconds", type=_positive_float, default=None,
                      help="time span of one chunk in seconds, all channels (default 1.0)")
    conv.add_argument("--integer", choices=("auto", "yes", "no"), default="auto",
                      help="store integer ADC counts when lossless (auto), always or fail (yes), or never (no)")
    conv.add_argument("--delta", action="store_true",
                      help="difference filter on integer counts before the codec (zarr, parquet): smaller "
                           "with zstd/gzip/blosc-zstd (EEGBCI 3.8x -> 4.1x with blosc-zstd) but LARGER with "
                           "blosc-lz4 (3.0x -> 2.5x), and ~2x slower reads; zarr readers other than "
                           "zarr-python cannot decode it")
    conv.add_argument("--jobs", "-j", type=int, default=1, help="recordings converted in parallel (processes)")
    conv.add_argument("--pack", choices=("auto", "always", "never"), default="auto",
                      help="store short recordings end to end in shared files (see eegbench.packing): auto "
                           "= when at least 256 recordings are under 4 MiB each as float32 (default)")
    conv.add_argument("--scheduler", metavar="ADDRESS", default=None,
                      help="convert on a dask.distributed cluster (e.g. tcp://HOST:8786); workers must "
                           "see DEST's file system")
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
    ver.add_argument("path", metavar="PATH_OR_REPO", help="a store folder, or a Hub repository id (owner/name) "
                     "checked in the local cache")
    ver.add_argument("--cache-dir", default=None, help="cache holding the repository (default EEGBENCH_CACHE_DIR)")
    ver.add_argument("--revision", default=None, help="revision of a cached repository (default main)")

    syn = sub.add_parser("synthetic", help="write a realistic synthetic EEG dataset as a store",
                         description="Generate quantized synthetic EEG (1/f background, alpha bursts, line "
                                     "noise, events) recording by recording, straight into a store.")
    syn.add_argument("dest", metavar="DEST")
    syn.add_argument("--profile", default="smoke", help="dataset profile: smoke, standard, eegbci-like")
    syn.add_argument("--format", "-f", default=None, choices=available_formats(),
                     help="storage format; default: the one DEST's name ends with, else zarr")
    syn.add_argument("--compression", "-c", choices=compressions, default=DEFAULT,
                     help=f"codec (default: {DEFAULT_COMPRESSION}; none = uncompressed)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    syn.add_argument("--quiet", "-q", action="store_true")

    from . import recommend_cli

    recommend_cli.add_parser(sub)

    from . import info_cli

    info_cli.add_parser(sub)

    from .hub_cli import add_parser as _add_hub

    _add_hub(sub)
    return parser, dict(sub.choices)


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
        ("files", f"{summary['files_per_recording']:.3g} signal file(s) per recording"
                  + (f" ({summary['packed_recordings']} recordings in {summary['n_packs']} "
                     f"pack{'s' if summary['n_packs'] != 1 else ''})"
                     if summary.get("n_packs") else "")
                  + f"; fullest folder {summary['fullest_folder']} ({summary['max_folder_entries']} entries)"),
        ("float32 size", _human(summary["float32_bytes"])),
        ("compression ratio", f"{summary['compression_ratio']:.2f}x vs float32"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if recordings is not None:
        print()
        print(recordings.to_string(index=False))


def _client(scheduler: str | None) -> Any:
    if scheduler is None:
        return None
    from .cluster import connect

    return connect(scheduler)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .formats import resolve_format
    from .sources import load
    from .store import info, save

    t0 = time.perf_counter()
    resolve_format(args.dest, args.format)  # a misnamed DEST fails before any source is read
    dataset = load([Path(p) for p in args.src], skip_errors=args.skip_errors)
    integer = {"auto": "auto", "yes": True, "no": False}[args.integer]
    client = _client(args.scheduler)
    try:
        save(dataset, args.dest, format=args.format, compression=args.compression, level=args.level,
             chunk_seconds=args.chunk_seconds, overwrite=args.overwrite, integer=integer, delta=args.delta,
             jobs=args.jobs, client=client, pack=args.pack,
             progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
    if not args.quiet and "://" not in args.dest:
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
    from .hub_cli import run_verify

    return run_verify(args.path, cache_dir=args.cache_dir, revision=args.revision)


def _cmd_synthetic(args: argparse.Namespace) -> int:
    from .formats import resolve_format
    from .sources.synthetic import make_profile
    from .store import save

    resolve_format(args.dest, args.format)  # a misnamed DEST fails before anything is generated
    dataset = make_profile(args.profile, seed=args.seed)
    save(dataset, args.dest, format=args.format, compression=args.compression, overwrite=args.overwrite,
         progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {args.dest}: synthetic profile {args.profile!r}, {len(dataset)} recordings")
    return 0


def cli_message(message: str) -> str:
    """A library message in CLI terms: ``pass overwrite=True (CLI: --overwrite)`` -> ``pass --overwrite``."""
    message = re.sub(r"[\w.]+=[^\s()]+ \(CLI: ([^)]*)\)", r"\1", message)
    return re.sub(r" \(CLI: [^)]*\)", "", message)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eegbench`` command; returns the exit status."""
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # a misspelt option: the subcommand's usage and a suggestion, not the top-level usage
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    handler = getattr(args, "handler", None) or {"convert": _cmd_convert, "info": _cmd_info, "verify": _cmd_verify,
                                                 "synthetic": _cmd_synthetic}[args.command]
    try:
        return handler(args)
    except EegbenchError as exc:
        print(f"eegbench {args.command}: error: {cli_message(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eegbench {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `eegbench info X | head`: the reader left; end quietly like a C tool
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        except OSError:
            pass
        return 141  # 128 + SIGPIPE, what `cat` or `git` report


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
