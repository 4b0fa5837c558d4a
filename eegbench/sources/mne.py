"""Recordings from MNE-Python: ``mne.io.Raw`` objects (:func:`from_mne`) and any file that
``mne.io.read_raw`` reads (:func:`from_files`: EDF/EDF+/BDF/GDF, BrainVision, EEGLAB, FIF...).

Samples are never copied eagerly unless MNE already holds them in memory:

* a preloaded raw is snapshotted as float32 volts (:class:`~eegbench.model.ArraySource`);
* a raw that is not preloaded is read on demand with ``raw.get_data(start, stop, picks)``
  (:class:`RawSource`);
* :func:`from_files` keeps only the path and the reader options (:class:`FileSource`): each
  process opens the file itself with ``mne.io.read_raw(path, preload=False)`` on first use, so
  the source pickles in a few hundred bytes and works in joblib and DataLoader workers.

When MNE read the samples from integers (EDF/BDF/GDF, 16-bit BrainVision) and nothing modified
them, the source's ``quantization`` is the reader's calibration (see
:mod:`eegbench.quantization`), so :func:`eegbench.save` stores the ADC counts losslessly; the store
verifies every block bit for bit and falls back to float32 when the grid is wrong.

Times: annotation onsets are seconds from the first *stored* sample (MNE counts them from
``meas_date`` / the first sample of the acquisition, hence the ``raw.first_time`` shift).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import EmptyDatasetError, OptionError, SourceNotFoundError, SourceReadError
from ..model import Annotations, ArraySource, Dataset, Recording
from ..quantization import Quantization, QuantizationMismatch, from_mne_raw

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["READABLE_SUFFIXES", "FileSource", "RawSource", "annotations_from_raw", "eegbci_description", "expand_paths",
           "from_files", "from_mne", "recording_from_raw", "sha256_file"]

#: File name endings that :func:`from_files` picks up when given a *folder* (explicit file paths
#: are handed to ``mne.io.read_raw`` whatever their ending). Only the file that names a
#: recording is listed: BrainVision ``.vhdr`` (not ``.vmrk``/``.eeg``), EEGLAB ``.set`` (not
#: ``.fdt``). ``.eeg`` is left out because it is BrainVision's sample file as often as a
#: Nihon Kohden recording.
READABLE_SUFFIXES: tuple[str, ...] = (".edf", ".bdf", ".gdf", ".vhdr", ".set", ".fif", ".fif.gz",
                                      ".cnt", ".mff")

# FIFF unit codes (mne._fiff.constants names without the FIFF_UNIT_ prefix) -> unit strings
_UNIT_NAMES = {"V": "V", "T": "T", "T_M": "T/m", "AM": "Am", "MOL": "mol", "CEL": "°C", "NONE": "NA",
               "S": "S", "PX": "px", "HZ": "Hz", "PA": "Pa", "M": "m", "RAD": "rad"}
_HASH_BLOCK = 1 << 20
_GRID_CHECK_SAMPLES = 4_000_000  # values per block when verifying a preloaded raw's grid


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------
class RawSource:
    """Samples of a live ``mne.io.Raw`` read on demand with ``raw.get_data``.

    Pickles together with the raw (MNE raws that are not preloaded hold file names, not open
    handles). Returns float32 volts (MNE's float64 cast to float32).
    """

    def __init__(self, raw: mne.io.BaseRaw, quantization: Quantization | None = None) -> None:
        self._raw: mne.io.BaseRaw | None = raw
        self.n_channels = len(raw.ch_names)
        self.n_times = int(raw.n_times)
        self.quantization = quantization

    @property
    def raw(self) -> mne.io.BaseRaw:
        """The MNE raw the samples are read from."""
        assert self._raw is not None
        return self._raw

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        # explicit indices: MNE's picks=None could mean "good data channels" in some readers
        picks = np.arange(self.n_channels) if channels is None else np.asarray(channels, dtype=np.int64)
        data = self.raw.get_data(picks=picks, start=int(start), stop=int(stop), verbose="error")
        return np.ascontiguousarray(data, dtype=np.float32)

    def close(self) -> None:
        pass  # MNE opens and closes the file on every read


class FileSource(RawSource):
    """A recording file read lazily through ``mne.io.read_raw(path, preload=False, **kwargs)``.

    Only the path and reader options are pickled; each process opens the file on first use
    (MNE then opens/closes it per read, so forked workers share nothing).
    """

    def __init__(self, path: str | os.PathLike, n_channels: int, n_times: int,
                 quantization: Quantization | None = None, reader_kwargs: dict[str, Any] | None = None,
                 raw: mne.io.BaseRaw | None = None) -> None:
        self.path = str(path)
        self.reader_kwargs = dict(reader_kwargs or {})
        self.n_channels, self.n_times = int(n_channels), int(n_times)
        self.quantization = quantization
        self._raw = raw
        self._pid = os.getpid()

    def _open(self) -> mne.io.BaseRaw:
        import mne

        try:
            return mne.io.read_raw(self.path, preload=False, verbose="error", **self.reader_kwargs)
        except Exception as exc:  # the file changed or vanished since the dataset was built
            raise SourceReadError(f"{self.path}: cannot reopen the recording ({type(exc).__name__}: {exc}); "
                                  "was it moved or modified after from_files()?") from exc

    @property
    def raw(self) -> mne.io.BaseRaw:
        if self._raw is None or self._pid != os.getpid():
            raw = self._open()
            if len(raw.ch_names) != self.n_channels or raw.n_times != self.n_times:
                raise SourceReadError(f"{self.path}: the file now has {len(raw.ch_names)} channels x "
                                      f"{raw.n_times} samples, not {self.n_channels} x {self.n_times}; "
                                      "it was modified after the dataset was built")
            self._raw, self._pid = raw, os.getpid()
        return self._raw

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_raw"] = None  # reopened in the receiving process
        return state

    def close(self) -> None:
        self._raw = None


# ---------------------------------------------------------------------------------------------
# metadata helpers
# ---------------------------------------------------------------------------------------------
def annotations_from_raw(raw: mne.io.BaseRaw) -> Annotations:
    """``raw.annotations`` with onsets in seconds from the first stored sample.

    MNE keeps ``raw.annotations.onset`` relative to ``meas_date`` (``orig_time``) when there is
    one and relative to the acquisition's sample 0 otherwise; in both cases the first stored
    sample sits at ``raw.first_time`` (checked on MNE 1.13, both with and without meas_date).
    """
    ann = raw.annotations
    if len(ann) == 0:
        return Annotations()
    ch_names = [tuple(c) for c in getattr(ann, "ch_names", [()] * len(ann))]
    return Annotations(np.asarray(ann.onset, dtype=np.float64) - raw.first_time,
                       np.asarray(ann.duration, dtype=np.float64), [str(d) for d in ann.description],
                       ch_names)


def channel_units(raw: mne.io.BaseRaw) -> list[str]:
    """One unit string per channel: ``"V"`` for voltage channels, MNE's FIFF unit otherwise."""
    out = []
    for ch in raw.info["chs"]:
        name = getattr(ch["unit"], "_name", None) or str(ch["unit"])
        name = name.removeprefix("FIFF_UNIT_")
        out.append(_UNIT_NAMES.get(name, name))
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (a folder such as ``.mff``: of its files, sorted by name)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def _raw_files(raw: mne.io.BaseRaw) -> list[Path]:
    return [Path(f) for f in getattr(raw, "filenames", ()) if f is not None]


def _description_from_raw(raw: mne.io.BaseRaw) -> dict[str, Any]:
    """Fields of ``raw.info`` worth a description column: ``sex`` ("M"/"F") and ``age`` (years
    at ``meas_date``, from the birthday) when the file has them, and ``info_description``.
    Identifiers (his_id, names, the birthday itself) are left out on purpose: EDF headers often
    hold real patient data."""
    out: dict[str, Any] = {}
    subject = raw.info.get("subject_info") or {}
    sex = {1: "M", 2: "F"}.get(int(subject.get("sex", 0) or 0))
    if sex is not None:
        out["sex"] = sex
    birthday, meas_date = subject.get("birthday"), raw.info.get("meas_date")
    if isinstance(birthday, _dt.date) and isinstance(meas_date, _dt.datetime):
        age = (meas_date.date() - birthday).days / 365.25
        if 0 <= age < 130:
            out["age"] = round(age, 1)
    if raw.info.get("description"):
        out["info_description"] = str(raw.info["description"])
    return out


def _history_from_raw(raw: mne.io.BaseRaw, as_acquired: bool) -> list[dict[str, Any]]:
    """Processing history that ``raw.info`` documents.

    ``as_acquired``: the samples are known to be unmodified (read from the file, or still on the
    reader's integer grid), so highpass/lowpass are the acquisition filter the file declares;
    otherwise they may also reflect filters applied in MNE and are recorded as such.
    """
    sfreq = float(raw.info["sfreq"])
    hp, lp = float(raw.info["highpass"]), float(raw.info["lowpass"])
    entry: dict[str, Any] = {"operation": "acquisition_filter" if as_acquired else "mne_info_bandwidth",
                             "highpass_hz": hp, "lowpass_hz": lp, "source": "raw.info"}
    if not as_acquired:
        entry["note"] = ("raw.info highpass/lowpass of a preloaded raw: the acquisition filter, or filters "
                         "applied in MNE since loading")
    elif hp == 0.0 and lp == sfreq / 2:
        entry["note"] = "0 Hz / Nyquist: no band limit is known beyond the sampling rate"
    history = [entry]
    projs = [p["desc"] for p in raw.info.get("projs", []) if p.get("active")]
    if projs:
        history.append({"operation": "projection", "projections": projs})
    if raw.info.get("custom_ref_applied"):
        history.append({"operation": "rereference", "custom_ref_applied": int(raw.info["custom_ref_applied"])})
    return history


def _provenance(raw: mne.io.BaseRaw, path: Path | None, reader: str, sha256: bool = True) -> dict[str, Any]:
    import mne

    prov: dict[str, Any] = {"reader": reader, "mne_class": type(raw).__name__, "mne_version": mne.__version__}
    files = _raw_files(raw)
    main = path if path is not None else (files[0] if files else None)
    if main is not None:
        prov["file"] = main.name
        prov["path"] = str(main.resolve())
        if sha256 and main.exists():
            prov["sha256"] = sha256_file(main)
            # e.g. BrainVision's .eeg sample file next to the .vhdr, FIF split files
            extra = {f.name: sha256_file(f) for f in files if f.exists() and f.resolve() != main.resolve()}
            if extra:
                prov["data_files"] = extra
    return prov


def _verified_grid(q: Quantization | None, data: np.ndarray) -> Quantization | None:
    """``q`` if every float32 sample of ``data`` lies on its grid, else None (block-wise)."""
    if q is None or q.n_channels != data.shape[0]:
        return None
    step = max(1, _GRID_CHECK_SAMPLES // max(data.shape[0], 1))
    try:
        for s in range(0, data.shape[1], step):
            q.to_counts(data[:, s:s + step])
    except QuantizationMismatch:
        return None
    return q


def _quantization_of(raw: mne.io.BaseRaw) -> Quantization | None:
    """The reader's integer calibration, unless MNE will transform samples on read."""
    if getattr(raw, "_projector", None) is not None or getattr(raw, "_comp", None) is not None:
        return None
    extras = getattr(raw, "_raw_extras", None) or [{}]
    extra = extras[0] if isinstance(extras[0], dict) else {}
    if "n_samps" in extra and "sel" in extra:
        # EDF/GDF channels stored at a lower rate are resampled by MNE: off any integer grid
        per_record = np.asarray(extra["n_samps"])[np.asarray(extra["sel"])]
        if per_record.size and np.any(per_record != per_record.max()):
            return None
    try:
        q = from_mne_raw(raw)
    except Exception:  # unknown reader internals: just store float32
        return None
    return q if q is not None and q.n_channels == len(raw.ch_names) else None


def recording_from_raw(raw: mne.io.BaseRaw, *, source: Any = None, description: dict[str, Any] | None = None,
                       path: Path | None = None, reader: str | None = None, as_acquired: bool | None = None,
                       name: str | None = None, sha256: bool = True) -> Recording:
    """One :class:`~eegbench.model.Recording` from an MNE raw.

    ``source`` defaults to a float32 snapshot of a preloaded raw or a :class:`RawSource` of a
    lazy one. ``description`` entries override the ones read from ``raw.info``. ``sha256``:
    hash the source file(s) into ``provenance`` (one extra read of each file).
    """
    quantization: Quantization | None
    if source is None:
        if raw.preload:
            data = np.empty((len(raw.ch_names), raw.n_times), dtype=np.float32)
            step = max(1, _GRID_CHECK_SAMPLES // max(data.shape[0], 1))
            for s in range(0, raw.n_times, step):  # block-wise: no full float64 copy
                data[:, s:s + step] = raw.get_data(start=s, stop=min(s + step, raw.n_times), verbose="error")
            quantization = _verified_grid(_quantization_of(raw), data)
            source = ArraySource(data, quantization)
        else:
            quantization = _quantization_of(raw)
            source = RawSource(raw, quantization)
    else:
        quantization = getattr(source, "quantization", None)
    if as_acquired is None:
        # a raw that is not preloaded cannot have been filtered; a preloaded one still on the
        # reader's integer grid has not been either; otherwise we cannot tell
        as_acquired = (not raw.preload) or quantization is not None
    desc = _description_from_raw(raw)
    desc.update(description or {})
    files = _raw_files(raw)
    rec_name = name or (path.name if path is not None else (files[0].name if files else None))
    return Recording(source, raw.info["sfreq"], raw.ch_names, ch_types=raw.get_channel_types(),
                     units=channel_units(raw), meas_date=raw.info["meas_date"], first_samp=raw.first_samp,
                     annotations=annotations_from_raw(raw), description=desc,
                     history=_history_from_raw(raw, as_acquired),
                     provenance=_provenance(raw, path, reader or f"mne ({type(raw).__name__})", sha256),
                     name=rec_name)


def _user_rows(description: Any, n: int) -> tuple[list[dict[str, Any]], pd.DataFrame | None]:
    """User-given description (DataFrame, list of dicts, or one dict for one raw) as rows."""
    if description is None:
        return [{} for _ in range(n)], None
    if isinstance(description, pd.DataFrame):
        frame = description.reset_index(drop=True)
    elif isinstance(description, dict) and n == 1:
        frame = pd.DataFrame([description])
    elif isinstance(description, Sequence) and not isinstance(description, (str, bytes)):
        frame = pd.DataFrame(list(description))
    else:
        raise OptionError("description must be a DataFrame or a list of dicts (one row per raw), "
                          f"got {type(description).__name__}")
    if len(frame) != n:
        raise OptionError(f"description has {len(frame)} rows for {n} raws; give one row per raw")
    rows = [{str(k): (None if _is_missing(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]
    return rows, frame


def _is_missing(value: Any) -> bool:
    try:
        return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))
    except (TypeError, ValueError):
        return False


def from_mne(raws: mne.io.BaseRaw | Iterable[mne.io.BaseRaw], description: Any = None) -> Dataset:
    """A :class:`~eegbench.model.Dataset` from one ``mne.io.Raw`` or a list of them.

    Preloaded raws are copied as float32 volts (later changes to the raw do not show); raws
    that are not preloaded are read on demand. ``description`` (a DataFrame or a list of dicts,
    one row per raw) is merged into each recording's description and becomes the dataset's
    description table (its column dtypes are kept).
    """
    import mne

    items = [raws] if isinstance(raws, mne.io.BaseRaw) else list(raws)
    for i, raw in enumerate(items):
        if not isinstance(raw, mne.io.BaseRaw):
            raise OptionError(f"from_mne needs mne.io.Raw objects; item {i} is {type(raw).__name__} "
                              "(use from_files for paths)")
    rows, frame = _user_rows(description, len(items))
    recordings = [recording_from_raw(raw, description=row) for raw, row in zip(items, rows)]
    desc = None
    if frame is not None:
        auto = pd.DataFrame([r.description for r in recordings]).drop(columns=list(frame.columns), errors="ignore")
        desc = pd.concat([auto.reset_index(drop=True), frame], axis=1)
    return Dataset(recordings, desc)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def _is_readable_name(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and any(name.endswith(s) for s in READABLE_SUFFIXES)


def _is_split_continuation(path: Path) -> bool:
    """FIF continuation files (``x-1.fif`` next to ``x.fif``, BIDS ``_split-02``): MNE reads
    them through the first part."""
    m = re.match(r"^(.*)-(\d+)(\.fif(?:\.gz)?)$", path.name)
    if m and (path.parent / f"{m.group(1)}{m.group(3)}").exists():
        return True
    m = re.search(r"_split-(\d+)_", path.name)
    return bool(m and int(m.group(1)) > 1)


def expand_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Paths as a flat list: a folder becomes its recording files (non-recursive, sorted by
    name; see :data:`READABLE_SUFFIXES`). A path that does not exist raises
    :class:`~eegbench.errors.SourceReadError`."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if not path.exists():
            raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
        if path.is_dir() and not path.name.lower().endswith(".mff"):
            found = sorted((p for p in path.iterdir() if _is_readable_name(p) and not _is_split_continuation(p)),
                           key=lambda p: p.name)
            if not found:
                raise EmptyDatasetError(f"{path}: no recording files in this folder (looked for "
                                        f"{', '.join(READABLE_SUFFIXES)}); give file paths or another folder")
            out.extend(found)
        else:
            out.append(path)
    return out


def _bids_entities(path: Path) -> dict[str, Any]:
    """BIDS entities in a BIDS-style file name (``sub-01_task-rest_run-1_eeg.edf``), else {}."""
    if not re.match(r"^sub-[A-Za-z0-9]+_", path.name):
        return {}
    try:
        from mne_bids import get_entities_from_fname

        ents = get_entities_from_fname(path.name, on_error="ignore")
    except Exception:
        return {}
    return {k: v for k, v in ents.items() if v is not None}


_EEGBCI_NAME = re.compile(r"^S(\d{3})R(\d{2})\.edf$", re.IGNORECASE)
#: PhysioNet EEG Motor Movement/Imagery runs: 1 eyes open, 2 eyes closed, then 4 tasks x 3 runs
_EEGBCI_TASKS = {1: "rest_eyes_open", 2: "rest_eyes_closed", 3: "fists", 4: "imagine_fists", 5: "fists_feet",
                 6: "imagine_fists_feet"}


def eegbci_description(path: str | os.PathLike) -> dict[str, Any]:
    """Description columns from an EEG Motor Movement/Imagery (EEGBCI) file name.

    ``S001R03.edf`` -> ``{"subject": "001", "run": 3, "task": "fists"}`` (runs 3/7/11: real left/right
    fist movement, 4/8/12 imagined, 5/9/13 real fists/feet, 6/10/14 imagined; 1 and 2 are eyes-open
    and eyes-closed rest). Other names give ``{}``. Use it as ``from_files(..., description=eegbci_description)``."""
    m = _EEGBCI_NAME.match(Path(path).name)
    if not m:
        return {}
    run = int(m.group(2))
    task = _EEGBCI_TASKS.get(run if run <= 2 else 3 + (run - 3) % 4)
    return {"subject": m.group(1), "run": run, **({"task": task} if task else {})}


def _file_description(path: Path, description: Any) -> dict[str, Any]:
    """The caller's description entries for one file: a function of the path, or a mapping keyed
    by file name (or full path) -> dict."""
    if description is None:
        return {}
    if callable(description):
        extra = description(path)
    elif isinstance(description, Mapping):
        extra = description.get(path.name, description.get(str(path), {}))
    else:
        raise OptionError("description must be a function (path -> dict) or a mapping {file name: dict}, "
                          f"got {type(description).__name__}")
    if not isinstance(extra, Mapping):
        raise OptionError(f"description for {path.name} must be a dict of columns, got {type(extra).__name__}")
    return dict(extra)


def _read_file(path: Path, preload: bool, sha256: bool, extra: dict[str, Any] | None = None) -> Recording:
    import mne

    try:
        raw = mne.io.read_raw(path, preload=preload, verbose="error")
    except Exception as exc:
        suffix = path.suffix.lower()
        if suffix in (".eeg", ".vmrk", ".fdt"):
            header = path.with_suffix(".set" if suffix == ".fdt" else ".vhdr")
            kind = "an EEGLAB" if suffix == ".fdt" else "a BrainVision"
            raise SourceReadError(
                f"{path}: MNE cannot read this file ({type(exc).__name__}). If it is part of {kind} recording, "
                f"give its header file instead: {header.name}"
                f"{'' if header.exists() else ' (not found next to it)'}") from exc
        raise SourceReadError(
            f"{path}: MNE cannot read this file ({type(exc).__name__}: {exc}). eegbench reads what "
            "mne.io.read_raw reads (EDF/BDF/GDF, BrainVision .vhdr, EEGLAB .set, FIF, ...): convert the "
            "file, remove it from the list, or pass skip_errors=True (CLI: --skip-errors) to skip it") from exc
    description = {"file": path.name, **_bids_entities(path), **(extra or {})}
    reader = f"mne.io.read_raw ({type(raw).__name__})"
    if preload:
        return recording_from_raw(raw, description=description, path=path, reader=reader, as_acquired=True,
                                  sha256=sha256)
    source = FileSource(path.resolve(), len(raw.ch_names), raw.n_times, _quantization_of(raw), raw=raw)
    return recording_from_raw(raw, source=source, description=description, path=path, reader=reader,
                              as_acquired=True, sha256=sha256)


def read_each(items: Iterable[Any], read: Any, skip_errors: bool) -> list[Recording]:
    """``read(item)`` for every item. A :class:`SourceReadError` stops everything, or with
    ``skip_errors`` becomes a warning naming the item and the others are still read."""
    recordings = []
    for item in items:
        try:
            recordings.append(read(item))
        except SourceReadError as exc:
            if not skip_errors:
                raise
            warnings.warn(f"skipped: {exc}", stacklevel=3)
    return recordings


def from_files(paths: str | os.PathLike | Iterable[str | os.PathLike], skip_errors: bool = False,
               preload: bool = False, sha256: bool = True, description: Any = None) -> Dataset:
    """A :class:`~eegbench.model.Dataset` of the recordings in ``paths`` (files or folders).

    Each file is opened with ``mne.io.read_raw``; ``preload=False`` (default) reads samples on
    demand, ``preload=True`` holds them in memory as float32 volts. A file MNE cannot read
    raises :class:`~eegbench.errors.SourceReadError` naming it; ``skip_errors=True`` warns and
    continues. ``provenance`` records the reader and, unless ``sha256=False``, the SHA-256 of each
    file (one extra sequential read of every file).

    Description columns (what :meth:`~eegbench.model.Dataset.select` and ``WindowDataset(target=)``
    use): ``file`` (the file name); the BIDS entities of a BIDS file name
    (``sub-01_ses-1_task-rest_run-2_eeg.edf`` -> subject, session, task, run); and your own via
    ``description``: a function ``path -> dict`` (e.g. :func:`eegbci_description` for
    ``S001R03.edf`` names, or one parsing your naming scheme) or a mapping
    ``{file name: dict}``. Your entries override the automatic ones.
    """
    files = expand_paths(paths)
    recordings = read_each(files, lambda path: _read_file(path, preload, sha256, _file_description(path, description)),
                           skip_errors)
    if not recordings:
        raise EmptyDatasetError(f"none of the {len(files)} file(s) could be read; see the warnings above")
    return Dataset(recordings)
