"""Where a recording's signal files live: ``signals/`` fanned out so no folder grows past a limit.

The Hugging Face Hub accepts at most 10,000 entries per folder (and many file systems slow down
well before that). Recording ``rec-01234`` of a store is written under ``signals/001/`` -- its
number divided by :data:`PER_FOLDER` -- so each folder holds at most 1,000 recordings (1 to 2
entries each whatever the format) and ``signals/`` itself one folder per 1,000 recordings:
10,000 entries there would take 10 million recordings. Keys that are not ``<prefix>-<number>``
go to one of 1,000 folders chosen by the CRC32 of the key.

:func:`folder_counts` checks any list of store paths (a real store's manifest or a dry plan) for
the largest folder, so the layout can be tested for 20,000 recordings without writing them.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable

#: recordings per fan-out folder (numbered keys)
PER_FOLDER = 1000
#: the Hub's limit on entries in one folder
MAX_FOLDER_ENTRIES = 10_000
_NUMBERED = re.compile(r"^[A-Za-z_]*-?(\d+)$")


def fanout(key: str) -> str:
    """The sub-folder of ``signals/`` for recording ``key`` (``rec-01234`` -> ``001``)."""
    m = _NUMBERED.match(key)
    if m:
        return f"{int(m.group(1)) // PER_FOLDER:03d}"
    return f"h{zlib.crc32(key.encode()) % 1000:03d}"


def signal_prefix(key: str, signals: str = "signals") -> str:
    """``signals/<fanout>/<key>``: the stem every format appends its suffix or folder to."""
    return f"{signals}/{fanout(key)}/{key}"


def folder_counts(paths: Iterable[str]) -> Counter[str]:
    """Number of direct entries (files and sub-folders) of every folder in ``paths`` (POSIX,
    relative to the store root; ``""`` is the root)."""
    entries: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            entries.setdefault(parent, set()).add(parts[depth])
    return Counter({folder: len(names) for folder, names in entries.items()})


def max_folder_entries(paths: Iterable[str]) -> tuple[str, int]:
    """The folder with the most direct entries and its count."""
    counts = folder_counts(paths)
    if not counts:
        return "", 0
    folder, n = counts.most_common(1)[0]
    return folder, n
