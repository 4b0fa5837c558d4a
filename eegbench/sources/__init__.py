"""Where recordings come from: MNE raws and files (:mod:`.mne`), BIDS folders (:mod:`.bids`),
the synthetic generator (:mod:`.synthetic`), and :func:`load`, the CLI's "any source" entry.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from ..errors import EegbenchError, EmptyDatasetError, SourceNotFoundError
from ..manifest import HEADER
from ..model import Dataset

__all__ = ["classify", "load"]


def classify(path: str | os.PathLike) -> str:
    """What a path holds: ``"store"`` (eegbench store: a folder with ``eegbench.json``, or that
    file itself), ``"bids"`` (a folder with ``dataset_description.json``), ``"folder"`` (other
    folder: its recording files), or ``"file"`` (one recording file)."""
    path = Path(path)
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        if (path / HEADER).is_file():
            return "store"
        if (path / "dataset_description.json").is_file():
            return "bids"
        return "file" if path.name.lower().endswith(".mff") else "folder"
    return "store" if path.name == HEADER else "file"


def load(paths: str | os.PathLike | Iterable[str | os.PathLike], skip_errors: bool = False) -> Dataset:
    """One :class:`~eegbench.model.Dataset` from any mix of recording files, folders of
    recordings, BIDS roots and eegbench stores (see :func:`classify`), in the given order.

    Recordings and description rows are concatenated (missing description columns are empty);
    a window index and dataset attributes are kept only when a single store is given.
    Consecutive file/folder paths are read together by :func:`~eegbench.sources.mne.from_files`;
    ``skip_errors=True`` skips (with a warning) files, BIDS recordings and whole sources that
    cannot be read instead of raising.
    """
    from .. import store
    from .bids import from_bids
    from .mne import from_files

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise EmptyDatasetError("no source given; pass recording files, folders, a BIDS root or a store")
    groups: list[tuple[str, list[Path]]] = []
    for item in items:
        kind = classify(item)
        path = Path(item)
        if kind == "store" and path.name == HEADER:
            path = path.parent
        if kind in ("file", "folder") and groups and groups[-1][0] == "files":
            groups[-1][1].append(path)
        else:
            groups.append(("files" if kind in ("file", "folder") else kind, [path]))

    parts: list[Dataset] = []
    for kind, group in groups:
        try:
            if kind == "store":
                parts.append(store.open(group[0]))
            elif kind == "bids":
                parts.append(from_bids(group[0], skip_errors=skip_errors))
            else:
                parts.append(from_files(group, skip_errors=skip_errors))
        except EegbenchError as exc:
            if not skip_errors or len(groups) == 1:
                raise
            warnings.warn(f"skipped {', '.join(map(str, group))}: {exc}", stacklevel=2)
    if not parts:
        raise EmptyDatasetError("none of the sources could be read; see the warnings above")
    if len(parts) == 1:
        return parts[0]
    import pandas as pd

    recordings = [rec for part in parts for rec in part]
    description = pd.concat([p.description.reset_index(drop=True) for p in parts], ignore_index=True)
    return Dataset(recordings, description)
