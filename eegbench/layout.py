"""Which files of a store belong to which recording (format-independent).

A store names each recording's files after the recording's ``key`` (``rec-00000``): a file
belongs to recording ``k`` when one of its path components is ``k`` or starts with ``k.``
(``signals/rec-00000.h5``, ``signals/rec-00000/c/0/0``, ``signals/ab/rec-00000.index.npy``: any
fan-out prefix folders are fine). Every other file (tables, group metadata, the header) is
*metadata*, needed by every recording. Recordings stored together in a pack
(:mod:`eegbench.packing`) own the pack's files (named after the pack key) together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def owner(path: str, keys: frozenset[str] | set[str]) -> str | None:
    """The recording key that ``path`` (POSIX, relative) belongs to, or None for metadata."""
    for part in path.split("/"):
        if part in keys:
            return part
        head = part.split(".", 1)[0]
        if head != part and head in keys:
            return head
    return None


def files_by_recording(paths: Iterable[str], keys: Iterable[str],
                       packs: Mapping[str, str] | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Split ``paths`` into ``({key: [files]}, [metadata files])``, each list sorted.

    ``packs`` (``{recording key: pack key}``, see :mod:`eegbench.packing`): a packed recording's
    files are its pack's files (named after the pack key), shared by every member of the pack;
    they are not metadata."""
    keys = list(keys)
    packs = dict(packs or {})
    keyset = frozenset(keys) | frozenset(packs.values())
    owned: dict[str, list[str]] = {k: [] for k in keyset}
    meta: list[str] = []
    for path in sorted(paths):
        k = owner(path, keyset)
        (meta if k is None else owned[k]).append(path)
    by_key = {k: sorted(set(owned[k]) | set(owned[packs[k]])) if k in packs else owned[k] for k in keys}
    return by_key, meta
