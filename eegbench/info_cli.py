"""``eegbench info URL``: the ``info`` command for stores at a URL (``https://``, ``s3://``, ``hf://``).

A remote store is summarised from its header and ``tables.pack`` only (2 ranged GETs; no signal
byte), with the same fields as a local store plus the requests and bytes the summary cost.
Local paths go to the ``info`` command as before. ``--storage-option KEY=VALUE`` (repeatable)
passes options to the file system (``endpoint_url=http://127.0.0.1:9000`` for an S3-compatible
server, ``anon=true``); values ``true``/``false`` and integers are converted.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

_EPILOG = """\
remote stores:
  eegbench info https://example.org/data/eegbci.zarr
  eegbench info s3://bucket/eegbci.zarr -o endpoint_url=http://127.0.0.1:9000 -o anon=true
  eegbench info hf://datasets/me/eegbci@main/eegbci.zarr
"""


def add_parser(subparsers: Any) -> None:
    """Teach the existing ``info`` command URLs (and ``--storage-option``)."""
    info = subparsers.choices["info"]
    info.add_argument("--storage-option", "-o", action="append", default=[], metavar="KEY=VALUE",
                      help="file-system option for a URL (repeatable), e.g. endpoint_url=http://127.0.0.1:9000")
    info.epilog = (info.epilog + "\n" if info.epilog else "") + _EPILOG
    info.formatter_class = argparse.RawDescriptionHelpFormatter
    info.set_defaults(handler=run_info)


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text


def storage_options(pairs: list[str]) -> dict[str, Any] | None:
    """``["k=v", ...]`` as a dict (None when empty); a pair without ``=`` is an OptionError."""
    from .errors import OptionError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OptionError(f"--storage-option wants KEY=VALUE, got {pair!r}")
        out[key] = _value(value)
    return out or None


def run_info(args: argparse.Namespace) -> int:
    """The ``info`` command: a URL here, a local path through :mod:`eegbench.cli`."""
    from .cli import _cmd_info, _human, _print_info

    if "://" not in args.path:
        return _cmd_info(args)
    from .remote import _info

    summary, dataset = _info(args.path, storage_options(args.storage_option))
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    _print_info(summary)
    print(f"{'read':<17}  {summary['requests']} request(s), {_human(summary['bytes_received'])} "
          "(header + tables; no signal bytes)")
    if args.recordings:
        print()
        print(dataset.summary().to_string(index=False))
    return 0
