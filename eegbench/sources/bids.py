"""Recordings from a BIDS folder through mne-bids (``find_matching_paths`` + ``read_raw_bids``).

Each recording's description holds its BIDS entities (``subject``, ``session``, ``task``,
``run`` always; ``acquisition``, ``processing``, ``recording``, ``space``... when present) as the
strings of the file name (``run="01"`` stays ``"01"``), the ``datatype``, the file name, and the
subject's ``participants.tsv`` columns (``age``, ``sex``... numbers where the whole column is
numeric; ``n/a`` becomes None). Annotations come from ``*_events.tsv`` via ``read_raw_bids``.

Samples are read lazily: the source pickles the BIDS path and each process re-runs
``read_raw_bids`` on first use.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import EmptyDatasetError, OptionError, SourceNotFoundError, SourceReadError
from ..model import Dataset, Recording
from .mne import FileSource, _quantization_of, read_each, recording_from_raw

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import mne_bids

__all__ = ["BidsSource", "from_bids", "read_participants"]

_ENTITY_ARGS = {"acquisition": "acquisitions", "processing": "processings", "recording": "recordings",
                "space": "spaces", "description": "descriptions"}
_ALWAYS = ("subject", "session", "task", "run")


def _data_extensions() -> list[str]:
    """File endings of recordings: the file that names a recording (BrainVision's .vhdr, not its
    .eeg/.vmrk); sidecars (.json/.tsv) never match."""
    try:  # mne-bids' own table of the endings read_raw_bids can read
        from mne_bids.config import reader

        return sorted(set(reader))
    except ImportError:  # pragma: no cover
        return [".vhdr", ".edf", ".EDF", ".bdf", ".set", ".fif", ".cnt", ".snirf", ".mefd"]


class BidsSource(FileSource):
    """A BIDS recording read lazily with ``mne_bids.read_raw_bids`` (pickles the path only)."""

    def __init__(self, bids_path: mne_bids.BIDSPath, n_channels: int, n_times: int, quantization: Any = None,
                 extra_params: dict[str, Any] | None = None, raw: mne.io.BaseRaw | None = None) -> None:
        super().__init__(bids_path.fpath, n_channels, n_times, quantization, raw=raw)
        self.root = str(bids_path.root)
        self.entities = {k: v for k, v in bids_path.entities.items() if v is not None}
        self.datatype, self.suffix, self.extension = bids_path.datatype, bids_path.suffix, bids_path.extension
        self.extra_params = dict(extra_params or {})

    def _bids_path(self) -> mne_bids.BIDSPath:
        from mne_bids import BIDSPath

        return BIDSPath(root=self.root, datatype=self.datatype, suffix=self.suffix, extension=self.extension,
                        **self.entities)

    def _open(self) -> mne.io.BaseRaw:
        try:
            return _read(self._bids_path(), self.extra_params)
        except Exception as exc:
            raise SourceReadError(f"{self.path}: cannot reopen the BIDS recording ({type(exc).__name__}: {exc}); "
                                  "was the BIDS folder moved or modified?") from exc


def _read(bids_path: mne_bids.BIDSPath, extra_params: dict[str, Any] | None) -> mne.io.BaseRaw:
    from mne_bids import read_raw_bids

    with warnings.catch_warnings():
        # mne-bids warns about missing optional sidecars, unknown channel types... per file
        warnings.simplefilter("ignore", RuntimeWarning)
        return read_raw_bids(bids_path, extra_params=extra_params or None, verbose="error")


def _values(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return [str(v) for v in items]


def _run_matches(run: str | None, wanted: list[str]) -> bool:
    """``run`` equals one of ``wanted`` as a string or as an integer (run=1 matches run-01)."""
    if run is None:
        return False
    for w in wanted:
        if run == w:
            return True
        if run.isdigit() and w.isdigit() and int(run) == int(w):
            return True
    return False


def _parse_column(values: pd.Series) -> list[Any]:
    cells = [None if v.strip() in ("n/a", "") else v for v in values.astype(str)]
    present = [c for c in cells if c is not None]
    for kind in (int, float):
        try:
            parsed = [kind(c) for c in present]
        except ValueError:
            continue
        it = iter(parsed)
        return [None if c is None else next(it) for c in cells]
    return cells


def read_participants(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``participants.tsv`` as {subject label (without ``sub-``): {column: value}}.

    ``n/a`` becomes None; a column whose other values are all integers (floats) holds ints
    (floats). Missing file: {}.
    """
    path = Path(root) / "participants.tsv"
    if not path.exists():
        return {}
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:
        raise SourceReadError(f"{path}: cannot read participants.tsv ({exc}); fix or remove it") from exc
    if "participant_id" not in frame.columns:
        raise SourceReadError(f"{path}: participants.tsv has no participant_id column")
    columns = {c: _parse_column(frame[c]) for c in frame.columns if c != "participant_id"}
    out = {}
    for i, pid in enumerate(frame["participant_id"].astype(str)):
        out[pid.removeprefix("sub-")] = {c: vals[i] for c, vals in columns.items()}
    return out


def _describe_filters(filters: dict[str, Any]) -> str:
    given = {k: v for k, v in filters.items() if v is not None}
    return ", ".join(f"{k}={v!r}" for k, v in given.items()) or "no filter"


def _available(root: Path, datatype: str) -> str:
    from mne_bids import get_entity_vals

    parts = []
    for key in ("subject", "session", "task", "run"):
        try:
            vals = get_entity_vals(root, key)
        except Exception:
            continue
        if vals:
            parts.append(f"{key}: {', '.join(vals[:10])}{' ...' if len(vals) > 10 else ''}")
    return "; ".join(parts) or "no BIDS entities found"


def from_bids(root: str | os.PathLike, subject: Any = None, session: Any = None, task: Any = None, run: Any = None,
              datatype: str = "eeg", *, acquisition: Any = None, processing: Any = None, recording: Any = None,
              space: Any = None, description: Any = None, extra_params: dict[str, Any] | None = None,
              preload: bool = False, skip_errors: bool = False) -> Dataset:
    """The recordings of a BIDS folder matching every filter (a value or a list of values).

    ``subject``/``session``/``task``/``run`` and the other entity filters compare with the labels
    in the file names (``subject="001"``); ``run`` also matches numerically (``run=1`` finds
    ``run-01``). ``datatype`` is the BIDS datatype folder (``eeg``, ``meg``, ``ieeg``).
    Only ``root/sub-*`` is searched (pass a ``derivatives/<pipeline>`` folder as ``root`` to read
    derivatives). ``extra_params`` go to the MNE reader. No match raises
    :class:`~eegbench.errors.EmptyDatasetError` listing the filters and the available labels.
    """
    from mne_bids import find_matching_paths

    root = Path(root).expanduser()
    if not root.is_dir():
        raise SourceNotFoundError(f"{root}: no such BIDS folder; check the path")
    filters = {"subject": subject, "session": session, "task": task, "run": run, "datatype": datatype,
               "acquisition": acquisition, "processing": processing, "recording": recording, "space": space,
               "description": description}
    if not isinstance(datatype, str):
        raise OptionError(f"datatype must be one BIDS datatype name such as 'eeg', got {datatype!r}")
    entity_kwargs = {plural: _values(filters[key]) for key, plural in _ENTITY_ARGS.items()}
    paths = find_matching_paths(root, subjects=_values(subject), sessions=_values(session), tasks=_values(task),
                                datatypes=datatype, suffixes=datatype, extensions=_data_extensions(),
                                ignore_nosub=True,  # only root/sub-*: not derivatives/ or sourcedata/
                                **entity_kwargs)
    wanted_runs = _values(run)
    if wanted_runs is not None:
        paths = [p for p in paths if _run_matches(p.run, wanted_runs)]
    # FIF recordings split in parts are read through their first part
    paths = [p for p in paths if p.split is None or int(p.split) <= 1]
    paths = sorted(paths, key=lambda p: str(p.fpath))
    if not paths:
        raise EmptyDatasetError(f"{root}: no {datatype} recording matches {_describe_filters(filters)}; "
                                f"available {_available(root, datatype)}")
    participants = read_participants(root)
    recordings = read_each(paths, lambda bp: _recording(bp, participants, extra_params, preload), skip_errors)
    if not recordings:
        raise EmptyDatasetError(f"{root}: none of the {len(paths)} matching recordings could be read")
    return Dataset(recordings)


def _recording(bp: mne_bids.BIDSPath, participants: dict[str, dict[str, Any]],
               extra_params: dict[str, Any] | None, preload: bool) -> Recording:
    import mne_bids

    try:
        raw = _read(bp, extra_params)
        if preload:
            raw.load_data(verbose="error")
    except Exception as exc:
        raise SourceReadError(f"{bp.fpath}: mne-bids cannot read this recording ({type(exc).__name__}: {exc}); "
                              "check its sidecar files (e.g. with the BIDS validator) or pass skip_errors=True (CLI: --skip-errors)") from exc
    desc: dict[str, Any] = {k: bp.entities.get(k) for k in _ALWAYS}
    desc.update({k: v for k, v in bp.entities.items() if v is not None})
    desc["datatype"] = bp.datatype
    desc["file"] = bp.fpath.name
    for key, value in participants.get(str(bp.subject), {}).items():
        desc.setdefault(key, value)
    reader = f"mne_bids.read_raw_bids {mne_bids.__version__} ({type(raw).__name__})"
    source = None
    if not preload:
        source = BidsSource(bp, len(raw.ch_names), raw.n_times, _quantization_of(raw), extra_params, raw=raw)
    rec = recording_from_raw(raw, source=source, description=desc, path=bp.fpath, reader=reader,
                             as_acquired=True, name=bp.fpath.name)
    rec.provenance["bids_root"] = str(Path(bp.root).resolve())
    return rec
