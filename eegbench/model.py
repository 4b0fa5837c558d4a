"""The format-agnostic data model: :class:`Recording`, :class:`Dataset`, :class:`Annotations`.

A :class:`Recording` never holds its samples itself: it reads them through a small *signal
source* (:class:`SignalSource`): an in-memory array, a lazy reader of one of the storage formats,
an MNE reader or the synthetic generator. Range checks, channel picks, deferred slicing and
padding live here once, so a format only answers "samples [start, stop) of channels C".

Units: sample indices are integers counted from the recording's first stored sample; times are
seconds (float) from that same sample; signals are float32 volts unless a channel's ``units``
entry says otherwise.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ._frame import Table
from .errors import (
    ChannelNotFoundError,
    EmptyDatasetError,
    EmptySelectionError,
    MetadataError,
    SelectionError,
    UnknownColumnError,
)
from .quantization import Quantization

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd

Picks = "str | int | Sequence[str] | Sequence[int] | np.ndarray | None"


# ---------------------------------------------------------------------------------------------
# signal sources
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class SignalSource(Protocol):
    """What a Recording needs from whatever stores its samples.

    ``read`` is only called with ``0 <= start <= stop <= n_times`` and ``channels`` either
    ``None`` (all) or a sorted-or-not int64 array of valid channel indices. It returns a new
    float32 C-contiguous array of shape ``(n_selected_channels, stop - start)`` in volts.
    Sources may also provide ``read_counts(start, stop)`` (integer ADC counts, all channels)
    when ``quantization`` is not None, ``read_batch(starts, length, channels)`` for many
    equal-length windows at once, and ``close()``. Sources must be picklable (no open handles in
    their pickled state) so that DataLoader workers and joblib can use them.
    """

    n_channels: int
    n_times: int
    quantization: Quantization | None

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray: ...


class ArraySource:
    """Samples held in memory (float32, n_channels x n_times)."""

    quantization: Quantization | None = None

    def __init__(self, data: np.ndarray, quantization: Quantization | None = None) -> None:
        data = np.asarray(data)
        if data.ndim != 2:
            raise SelectionError(f"signals must be 2-D (n_channels x n_times), got shape {data.shape}")
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.n_channels, self.n_times = self.data.shape
        self.quantization = quantization

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        block = self.data[:, start:stop] if channels is None else self.data[channels, start:stop]
        return np.array(block, dtype=np.float32, order="C")


class ViewSource:
    """A deferred time window and/or channel subset of another source. Reads nothing itself."""

    def __init__(self, parent: SignalSource, start: int, stop: int, channels: np.ndarray | None) -> None:
        self.parent, self.start, self.stop = parent, int(start), int(stop)
        self.channels = None if channels is None else np.asarray(channels, dtype=np.int64)
        self.n_times = self.stop - self.start
        self.n_channels = parent.n_channels if channels is None else int(self.channels.size)
        q = getattr(parent, "quantization", None)
        self.quantization = None if q is None else q.pick(self.channels)

    def _map(self, channels: np.ndarray | None) -> np.ndarray | None:
        if self.channels is None:
            return channels
        return self.channels if channels is None else self.channels[channels]

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        return self.parent.read(self.start + start, self.start + stop, self._map(channels))

    def read_batch(self, starts: np.ndarray, length: int, channels: np.ndarray | None) -> np.ndarray:
        return read_batch(self.parent, np.asarray(starts, dtype=np.int64) + self.start, length, self._map(channels))

    @property
    def read_counts(self) -> Any:
        """The parent's integer counts of this view, or None when the parent has no counts
        (files, MNE raws, arrays: the writer then derives the counts from the volts)."""
        if getattr(self.parent, "read_counts", None) is None:
            return None
        return self._read_counts

    def _read_counts(self, start: int, stop: int) -> np.ndarray:
        counts = self.parent.read_counts(self.start + start, self.start + stop)
        return counts if self.channels is None else counts[self.channels]

    def close(self) -> None:
        pass


def read_batch(source: SignalSource, starts: np.ndarray, length: int,
               channels: np.ndarray | None) -> np.ndarray:
    """Read equal-length windows ``[s, s + length)`` for every ``s`` in ``starts``.

    Uses the source's own ``read_batch`` when it has one (fewer store calls); otherwise one
    ``read`` per window. Returns float32 ``(len(starts), n_channels, length)``.
    """
    fast = getattr(source, "read_batch", None)
    if fast is not None:
        return fast(starts, length, channels)
    n_ch = source.n_channels if channels is None else len(channels)
    out = np.empty((len(starts), n_ch, length), dtype=np.float32)
    for i, s in enumerate(starts):
        out[i] = source.read(int(s), int(s) + length, channels)
    return out


# ---------------------------------------------------------------------------------------------
# annotations
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Annotations:
    """Time-stamped events of one recording.

    ``onset`` and ``duration`` are float64 seconds; onsets count from the recording's first
    stored sample (not from ``meas_date``). ``ch_names`` lists, per annotation, the channels it
    applies to (empty tuple: all channels).
    """

    onset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0))
    description: list[str] = field(default_factory=list)
    ch_names: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.onset = np.asarray(self.onset, dtype=np.float64).reshape(-1)
        self.duration = np.asarray(self.duration, dtype=np.float64).reshape(-1)
        if self.duration.size == 1 and self.onset.size != 1:
            self.duration = np.full(self.onset.size, self.duration[0])
        self.description = [str(d) for d in self.description]
        if not self.ch_names:
            self.ch_names = [() for _ in range(self.onset.size)]
        self.ch_names = [tuple(str(c) for c in names) for names in self.ch_names]
        if not (self.onset.size == self.duration.size == len(self.description) == len(self.ch_names)):
            raise SelectionError("annotations need one onset, duration, description (and ch_names) each")

    def __len__(self) -> int:
        return int(self.onset.size)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Annotations) and np.array_equal(self.onset, other.onset)
                and np.array_equal(self.duration, other.duration)
                and self.description == other.description and self.ch_names == other.ch_names)

    def to_frame(self) -> pd.DataFrame:
        """One row per annotation: onset (s), duration (s), description, ch_names."""
        import pandas as pd

        return pd.DataFrame({"onset": self.onset, "duration": self.duration,
                             "description": pd.Series(self.description, dtype=object),
                             "ch_names": pd.Series([list(c) for c in self.ch_names], dtype=object)})

    def crop(self, tmin: float, tmax: float) -> Annotations:
        """Annotations overlapping ``[tmin, tmax)`` s, with onsets shifted so ``tmin`` is 0."""
        keep = (self.onset < tmax) & (self.onset + self.duration >= tmin)
        idx = np.flatnonzero(keep)
        return Annotations(self.onset[idx] - tmin, self.duration[idx],
                           [self.description[i] for i in idx], [self.ch_names[i] for i in idx])

    def events(self, sfreq: float, event_id: dict[str, int] | None = None) -> tuple[np.ndarray, dict[str, int]]:
        """MNE-style events ``(n, 3)`` int64 array [sample, 0, code] and the code mapping."""
        if event_id is None:
            event_id = {d: i + 1 for i, d in enumerate(sorted(set(self.description)))}
        rows = [(int(round(o * sfreq)), 0, event_id[d])
                for o, d in zip(self.onset, self.description) if d in event_id]
        return np.array(rows, dtype=np.int64).reshape(-1, 3), event_id


# ---------------------------------------------------------------------------------------------
# recording
# ---------------------------------------------------------------------------------------------
_VOLT_PREFIXES = {"": 1.0, "m": 1e3, "u": 1e6, "µ": 1e6, "μ": 1e6, "n": 1e9, "k": 1e-3}
_VOLT_PREFIXES_SHOWN = ("V", "mV", "uV", "µV", "nV")


def _require_utf8(what: str, names: Sequence[str]) -> None:
    """Refuse strings that cannot be stored: every format writes names as UTF-8, and a lone
    surrogate (e.g. from ``os.fsdecode`` of undecodable bytes) has no UTF-8 encoding."""
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise SelectionError(f"{what} {name!r} is not valid Unicode text (it holds a lone surrogate); "
                                 "rename it, e.g. name.encode('utf-8', 'replace').decode()") from None


def require_storable_text(recording: Recording) -> None:
    """Raise :class:`MetadataError` if any text a store would hold (recording name, description,
    history, provenance, annotation descriptions and channels) has no UTF-8 encoding."""
    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise MetadataError(f"{recording.name!r}: {where} holds {value!r}, which is not valid Unicode "
                                    "text (a lone surrogate) and cannot be stored; replace it, e.g. "
                                    "text.encode('utf-8', 'replace').decode()") from None
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key, f"{where} key")
                walk(item, f"{where}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, where)

    walk(recording.name, "the name")
    walk(recording.description, "description")
    walk(recording.history, "history")
    walk(recording.provenance, "provenance")
    walk(recording.annotations.description, "an annotation description")
    walk(recording.annotations.ch_names, "an annotation's channel list")


def _volt_factor(unit: str) -> float | None:
    """How many of ``unit`` make one volt (``"uV"`` -> 1e6), or None if it is not a voltage."""
    unit = unit.strip()
    if not unit.endswith("V"):
        return None
    return _VOLT_PREFIXES.get(unit[:-1])


class Recording:
    """One continuous multichannel recording, read lazily through a :class:`SignalSource`.

    Parameters
    ----------
    data : ndarray or SignalSource
        ``(n_channels, n_times)`` samples in volts (converted to float32) or a source.
    sfreq : float
        Sampling rate in Hz.
    ch_names, ch_types, units : list of str
        One entry per channel. ``ch_types`` defaults to ``"eeg"``, ``units`` to ``"V"``.
    meas_date : datetime or None
        Time of the first sample of the original acquisition (timezone-aware, UTC).
    first_samp : int
        Index of the first stored sample in the original acquisition (MNE's ``first_samp``).
    annotations : Annotations
    description : dict
        Per-recording fields (BIDS entities subject/session/task/run and anything else that
        typed JSON can hold: None, unicode, dates, nested dicts).
    history : list of dict
        Preprocessing steps, oldest first, e.g. ``{"operation": "filter", "l_freq": 1.0}``.
    provenance : dict
        Where the samples came from: ``file``, ``reader``, ``sha256``...
    """

    def __init__(self, data: np.ndarray | SignalSource, sfreq: float, ch_names: Sequence[str], *,
                 ch_types: Sequence[str] | None = None, units: Sequence[str] | None = None,
                 meas_date: _dt.datetime | None = None, first_samp: int = 0,
                 annotations: Annotations | None = None, description: dict[str, Any] | None = None,
                 history: list[dict[str, Any]] | None = None, provenance: dict[str, Any] | None = None,
                 name: str | None = None) -> None:
        source = data if isinstance(data, SignalSource) and not isinstance(data, np.ndarray) else ArraySource(data)
        self.source: SignalSource = source
        self.sfreq = float(sfreq)
        if not np.isfinite(self.sfreq) or self.sfreq <= 0:
            raise SelectionError(f"sfreq must be a positive number of Hz, got {sfreq!r}")
        self.ch_names = [str(c) for c in ch_names]
        n = source.n_channels
        if len(self.ch_names) != n:
            raise SelectionError(f"{len(self.ch_names)} channel names for {n} channels")
        if len(set(self.ch_names)) != n:
            raise SelectionError("channel names must be unique")
        if any("\x00" in c for c in self.ch_names):  # HDF5/netCDF string coordinates cannot hold NUL
            raise SelectionError("channel names must not contain NUL characters ('\\x00')")
        _require_utf8("channel name", self.ch_names)
        self.ch_types = [str(t) for t in (ch_types if ch_types is not None else ["eeg"] * n)]
        self.units = [str(u) for u in (units if units is not None else ["V"] * n)]
        if len(self.ch_types) != n or len(self.units) != n:
            raise SelectionError("ch_types and units need one entry per channel")
        _require_utf8("channel type", self.ch_types)
        _require_utf8("unit", self.units)
        if meas_date is not None and meas_date.tzinfo is None:
            meas_date = meas_date.replace(tzinfo=_dt.timezone.utc)
        self.meas_date = meas_date
        self.first_samp = int(first_samp)
        self.annotations = annotations if annotations is not None else Annotations()
        self.description: dict[str, Any] = dict(description or {})
        self.history: list[dict[str, Any]] = [dict(h) for h in (history or [])]
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.name = name or str(self.description.get("name") or self.provenance.get("file") or "recording")

    # --- shape ----------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return int(self.source.n_channels)

    @property
    def n_times(self) -> int:
        """Number of samples."""
        return int(self.source.n_times)

    @property
    def duration(self) -> float:
        """Length in seconds (``n_times / sfreq``)."""
        return self.n_times / self.sfreq

    @property
    def quantization(self) -> Quantization | None:
        """The integer grid the samples are known to lie on, if any (see :mod:`eegbench.quantization`)."""
        return getattr(self.source, "quantization", None)

    def __repr__(self) -> str:
        return (f"<Recording {self.name!r}: {self.n_channels} ch x {self.n_times} samples "
                f"@ {self.sfreq:g} Hz ({self.duration:.1f} s), {len(self.annotations)} annotations>")

    # --- selection ------------------------------------------------------------------------
    def pick_indices(self, picks: Any) -> np.ndarray | None:
        """Channel indices for ``picks`` (names, indices, or None for all)."""
        if picks is None:
            return None
        items = [picks] if isinstance(picks, (str, int, np.integer)) else list(picks)
        lookup = self._name_lookup()
        if items:  # fast paths (names that all exist; integers all in range), else the checks below
            if isinstance(items[0], str):
                try:
                    return np.fromiter(map(lookup.__getitem__, items), dtype=np.int64, count=len(items))
                except (KeyError, TypeError):
                    pass
            elif bool not in map(type, items) and np.bool_ not in map(type, items):
                arr = np.asarray(items)
                n = self.n_channels
                if arr.ndim == 1 and arr.dtype.kind in "iu" and arr.min() >= -n and arr.max() < n:
                    return arr.astype(np.int64) % n
        out = np.empty(len(items), dtype=np.int64)
        for i, item in enumerate(items):
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not -self.n_channels <= int(item) < self.n_channels:
                    raise ChannelNotFoundError(f"{self.name}: channel index {item} out of range "
                                               f"0..{self.n_channels - 1}")
                out[i] = int(item) % self.n_channels
            elif str(item) in lookup:
                out[i] = lookup[str(item)]
            else:
                raise ChannelNotFoundError(f"{self.name}: no channel named {item!r}; "
                                           f"available: {', '.join(self.ch_names[:8])}"
                                           f"{' ...' if self.n_channels > 8 else ''}")
        if out.size == 0:
            raise SelectionError(f"{self.name}: picks selects no channel")
        return out

    def _name_lookup(self) -> dict[str, int]:
        """``{channel name: index}``, rebuilt when ``ch_names`` changed since it was made."""
        cached = self.__dict__.get("_lookup")
        if cached is None or cached[0] != self.ch_names:
            cached = self._lookup = (list(self.ch_names), {c: i for i, c in enumerate(self.ch_names)})
        return cached[1]

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        if stop is None:
            stop = self.n_times
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, stop)):
            raise SelectionError(f"{self.name}: start/stop are sample indices (int), got {start!r}, {stop!r}; "
                                 "use slice(tmin, tmax) for seconds")
        return int(start), int(stop)

    def get_data(self, picks: Any = None, start: int = 0, stop: int | None = None, *,
                 tmin: float | None = None, tmax: float | None = None, units: str | dict[str, str] | None = None,
                 pad: bool | float = False) -> np.ndarray:
        """Samples as float32, ``(n_picked, stop - start)``; the arguments of MNE's ``Raw.get_data``.

        ``picks``: channel names or indices (None: all). ``start``/``stop``: sample indices,
        stop exclusive. ``tmin``/``tmax``: the same in seconds from the first stored sample
        (``int(t * sfreq)`` as MNE does), used when ``start``/``stop`` are left at their defaults.
        ``units``: volts by default; ``"uV"`` (or ``"µV"``, ``"mV"``, ``"nV"``) scales every voltage
        channel, a dict ``{"eeg": "uV"}`` only channels of those types (float64 product rounded to
        float32 once). A request beyond the recording raises :class:`~eegbench.errors.SelectionError`
        unless ``pad`` is given: ``pad=True`` fills missing samples with 0, ``pad=<number>`` with that
        value. Reversed ranges always raise. Reads only the chunks overlapping the request.
        """
        if picks is None and units is None and tmin is None and tmax is None and type(start) is int \
                and type(stop) is int and 0 <= start <= stop <= self.n_times:
            return self.source.read(start, stop, None)  # a plain window (what loaders ask): nothing to parse
        if isinstance(picks, (int, np.integer)) and not isinstance(picks, bool) and start != 0 and stop is None \
                and tmax is None:
            # get_data(a, b) meant samples [a, b) before this API followed MNE: refuse rather than
            # silently read channel a from sample b to the end
            raise SelectionError(f"{self.name}: get_data takes MNE's order (picks, start, stop); get_data({picks}, "
                                 f"{start}) reads channel {picks} from sample {start} to the end. Write "
                                 f"get_data(start={picks}, stop={start}) for samples, or picks=[{picks}] for the channel")
        if tmin is not None and start == 0:
            start = self._time_index(tmin, "tmin")
        if tmax is not None and stop is None:
            stop = self._time_index(tmax, "tmax")
        start, stop = self._check_range(start, stop)
        channels = self.pick_indices(picks)
        if channels is not None and channels.size == self.n_channels and \
                np.array_equal(channels, np.arange(self.n_channels)):
            channels = None  # every channel in order: the plain copy, no fancy indexing
        data = self._read(start, stop, channels, pad)
        return data if units is None else self._scale_units(data, channels, units)

    def _time_index(self, t: Any, name: str) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not np.isfinite(t):
            raise SelectionError(f"{self.name}: {name} is a time in seconds, got {t!r}")
        return int(float(t) * self.sfreq)  # MNE's time_as_index (truncation)

    def _scale_units(self, data: np.ndarray, channels: np.ndarray | None, units: Any) -> np.ndarray:
        factors = self._unit_factors(channels, units)
        if factors is None:
            return data
        # float64 product rounded to float32 once, in one pass (a source may hand out a view of its own samples)
        return np.multiply(data, factors[:, None], out=np.empty_like(data, dtype=np.float32), dtype=np.float64,
                           casting="unsafe")

    def _unit_factors(self, channels: np.ndarray | None, units: Any) -> np.ndarray | None:
        """Per-row float64 factors for ``units`` (None: all 1), cached per request, channel units and types."""
        try:
            key = (tuple(sorted(units.items())) if isinstance(units, dict) else units,
                   None if channels is None else channels.tobytes(), tuple(self.units), tuple(self.ch_types))
            cache = self.__dict__.setdefault("_factors", {})
            if key in cache:
                return cache[key]
        except TypeError:  # unhashable or unorderable units: computed (and checked) below, not cached
            key = cache = None
        factors = self._compute_unit_factors(channels, units)
        if cache is not None:
            if len(cache) > 64:
                cache.clear()
            cache[key] = factors
        return factors

    def _compute_unit_factors(self, channels: np.ndarray | None, units: Any) -> np.ndarray | None:
        idx = range(self.n_channels) if channels is None else channels
        factors = np.ones(len(idx))
        for row, c in enumerate(idx):
            target = units.get(self.ch_types[c]) if isinstance(units, dict) else units
            if target is None:
                continue
            have, want = _volt_factor(self.units[c]), _volt_factor(str(target))
            if want is None:
                raise SelectionError(f"{self.name}: units={target!r} is not a voltage unit; use one of "
                                     f"{', '.join(_VOLT_PREFIXES_SHOWN)}")
            if have is None:
                if isinstance(units, dict):
                    raise SelectionError(f"{self.name}: channel {self.ch_names[c]!r} is in {self.units[c]!r}, "
                                         f"not a voltage; cannot express it in {target!r}")
                continue  # a str applies to voltage channels only (MNE: channels of the unit's type)
            factors[row] = want / have
        if np.all(factors == 1.0):
            return None
        factors.flags.writeable = False  # cached and shared
        return factors

    def _read(self, start: int, stop: int, channels: np.ndarray | None, pad: bool | float) -> np.ndarray:
        if stop < start:
            raise SelectionError(f"{self.name}: reversed range start={start} > stop={stop}")
        if start >= 0 and stop <= self.n_times:
            return self.source.read(start, stop, channels)
        if pad is False or pad is None:
            raise SelectionError(
                f"{self.name}: samples [{start}, {stop}) are outside 0..{self.n_times}; "
                "pass pad=True to zero-fill, or request a range inside the recording")
        n_ch = self.n_channels if channels is None else channels.size
        out = np.full((n_ch, stop - start), 0.0 if pad is True else float(pad), dtype=np.float32)
        lo, hi = max(start, 0), min(stop, self.n_times)
        if hi > lo:
            out[:, lo - start:hi - start] = self.source.read(lo, hi, channels)
        return out

    def get_windows(self, starts: Sequence[int] | np.ndarray, length: int, picks: Any = None) -> np.ndarray:
        """Many windows of ``length`` samples at once: float32 ``(n_windows, n_picked, length)``.

        Every window must lie inside the recording (no padding, no short windows).
        """
        starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        length = int(length)
        if length <= 0:
            raise SelectionError(f"{self.name}: window length must be > 0 samples, got {length}")
        if length > self.n_times:
            raise SelectionError(f"{self.name}: window of {length} samples is longer than the recording "
                                 f"({self.n_times} samples)")
        if starts.size and (starts.min() < 0 or starts.max() + length > self.n_times):
            bad = int(starts[(starts < 0) | (starts + length > self.n_times)][0])
            raise SelectionError(f"{self.name}: window [{bad}, {bad + length}) is outside 0..{self.n_times}")
        return read_batch(self.source, starts, length, self.pick_indices(picks))

    def crop_samples(self, start: int, stop: int) -> Recording:
        """Deferred crop to samples ``[start, stop)``: reads nothing until data is asked for."""
        start, stop = self._check_range(start, stop)
        if not 0 <= start <= stop <= self.n_times:
            raise SelectionError(f"{self.name}: crop [{start}, {stop}) outside 0..{self.n_times} samples "
                                 "or reversed")
        return self._derive(ViewSource(self.source, start, stop, None), start)

    def slice(self, tmin: float = 0.0, tmax: float | None = None) -> Recording:
        """Deferred crop to ``[tmin, tmax)`` seconds (rounded to the nearest sample)."""
        start = int(round(float(tmin) * self.sfreq))
        stop = self.n_times if tmax is None else int(round(float(tmax) * self.sfreq))
        if not 0 <= start <= stop <= self.n_times:
            raise SelectionError(f"{self.name}: slice({tmin}, {tmax}) s is outside 0..{self.duration:g} s "
                                 "or reversed")
        return self.crop_samples(start, stop)

    def crop(self, tmin: float = 0.0, tmax: float | None = None, include_tmax: bool = True) -> Recording:
        """MNE's ``Raw.crop`` arguments (seconds, ``tmax`` included by default, times rounded to the
        nearest sample as MNE does), but deferred and returning a new recording: MNE crops in place.
        Out-of-range or reversed times raise :class:`~eegbench.errors.SelectionError`."""
        start = self._time_round(tmin, "tmin")
        stop = self.n_times if tmax is None else self._time_round(tmax, "tmax") + (1 if include_tmax else 0)
        if not 0 <= start <= stop <= self.n_times:
            raise SelectionError(f"{self.name}: crop(tmin={tmin}, tmax={tmax}) s is outside 0..{self.duration:g} s "
                                 "or reversed")
        return self.crop_samples(start, stop)

    def _time_round(self, t: Any, name: str) -> int:
        self._time_index(t, name)  # type check
        return int(round(float(t) * self.sfreq))

    def pick(self, picks: Any) -> Recording:
        """Deferred channel selection (names or indices, in the given order)."""
        channels = self.pick_indices(picks)
        return self._derive(ViewSource(self.source, 0, self.n_times, channels), 0, channels)

    def _derive(self, source: SignalSource, start: int, channels: np.ndarray | None = None) -> Recording:
        keep = range(self.n_channels) if channels is None else channels
        tmin = start / self.sfreq
        ann = self.annotations.crop(tmin, tmin + source.n_times / self.sfreq) if start or \
            source.n_times != self.n_times else self.annotations
        return Recording(source, self.sfreq, [self.ch_names[i] for i in keep],
                         ch_types=[self.ch_types[i] for i in keep], units=[self.units[i] for i in keep],
                         meas_date=self.meas_date, first_samp=self.first_samp + start, annotations=ann,
                         description=self.description, history=self.history, provenance=self.provenance,
                         name=self.name)

    def iter_blocks(self, block_samples: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, float32 block)`` over the whole recording, ``block_samples`` at a time."""
        for start in range(0, self.n_times, block_samples):
            yield start, self.source.read(start, min(start + block_samples, self.n_times), None)

    def load(self) -> Recording:
        """An in-memory copy (reads every sample once)."""
        rec = self._derive(ArraySource(self.get_data(), self.quantization), 0)
        return rec

    def close(self) -> None:
        """Release file handles held by the source (it reopens on the next read)."""
        closer = getattr(self.source, "close", None)
        if closer is not None:
            closer()

    # --- MNE ------------------------------------------------------------------------------
    def to_mne(self) -> mne.io.RawArray:
        """An ``mne.io.RawArray`` with the same samples (float64 of the float32 values), channel
        names/types, sfreq, meas_date, first_samp and annotations."""
        import mne

        info = mne.create_info(self.ch_names, self.sfreq, ch_types=self.ch_types)
        raw = mne.io.RawArray(self.get_data().astype(np.float64), info, first_samp=self.first_samp,
                              verbose="error")
        if self.meas_date is not None:
            raw.set_meas_date(self.meas_date)
        if len(self.annotations):
            shift = self.first_samp / self.sfreq if self.meas_date is not None else 0.0
            raw.set_annotations(mne.Annotations(
                self.annotations.onset + shift, self.annotations.duration, self.annotations.description,
                orig_time=self.meas_date, ch_names=[list(c) for c in self.annotations.ch_names]))
        return raw


# ---------------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _meaning(value: Any) -> Any:
    """A comparison key: numbers and numeric strings by value, missing values as None, text stripped."""
    pd = sys.modules.get("pandas")  # a pandas missing value exists only once pandas is imported
    if value is None or (isinstance(value, float) and np.isnan(value)) \
            or (pd is not None and (value is pd.NA or value is pd.NaT)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        return float(text) if _NUMBER.match(text) else text
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _existing(column: pd.Series, limit: int = 12) -> list[str]:
    values = sorted({repr(v) for v in column.dropna().tolist()} if len(column) else set())
    return values[:limit] + (["..."] if len(values) > limit else []) or ["(none)"]


WINDOW_COLUMNS = ("recording", "start", "stop")


class LazyRecordings(Sequence[Recording]):
    """A sequence of ``n`` recordings, recording ``i`` built by ``factory(i)`` on first access and
    kept. ``eegbench.open`` returns datasets over one, so opening N recordings builds none."""

    def __init__(self, n: int, factory: Any) -> None:
        self._items: list[Recording | None] = [None] * int(n)
        self._factory = factory

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        rec = self._items[index]
        if rec is None:
            rec = self._items[index] = self._factory(range(len(self._items))[index])
        return rec

    def __iter__(self) -> Iterator[Recording]:
        for i in range(len(self._items)):
            yield self[i]

    def built(self) -> list[Recording]:
        """The recordings built so far."""
        return [r for r in self._items if r is not None]


class _Deferred:
    """A DataFrame made from a stored table when first read: :meth:`Dataset.take` of an opened
    store keeps its description and window index unparsed, so opening a partial copy
    (``eegbench.open(..., recordings=[...])``) imports neither pandas nor pyarrow. Plain data
    (a module-level function and its arguments): a dataset holding one pickles (spawn workers)."""

    unparsed = True

    def __init__(self, n_rows: int | None, make: Any, args: tuple[Any, ...], where: str | None = None) -> None:
        self._n, self._make, self._args, self.where = n_rows, make, args, where

    def __len__(self) -> int:
        if self._n is None:
            self._n = len(self.to_pandas())
        return self._n

    def to_pandas(self) -> pd.DataFrame:
        frame = self.__dict__.get("_frame")
        if frame is None:
            frame = self._frame = self._make(*self._args)
        return frame


def _frame_of(value: Any) -> Any:
    return value.to_pandas() if isinstance(value, (Table, _Deferred)) else value


def _take_description(description: Any, idx: list[int]) -> pd.DataFrame:
    """Rows ``idx`` of a description table (a DataFrame or a stored table), renumbered from 0."""
    return _frame_of(description).iloc[idx].reset_index(drop=True)


def _take_windows(windows: Any, idx: list[int], n_recordings: int | None = None) -> pd.DataFrame | None:
    """The windows of recordings ``idx`` with ``recording`` renumbered to their new positions.
    ``n_recordings``: the dataset the (stored) table belongs to, checked as its ``windows`` would be."""
    if windows is None:
        return None
    where = getattr(windows, "where", None)
    windows = _frame_of(windows)
    if n_recordings is not None:
        rec = windows["recording"].to_numpy() if "recording" in windows.columns else None
        if rec is None or (len(rec) and (rec.min() < 0 or rec.max() >= n_recordings)):
            from .errors import CorruptStoreError

            raise CorruptStoreError(f"{where or 'the window table'}: the window index does not fit its "
                                    f"{n_recordings} recordings; run `eegbench verify` on the store")
    remap = {old: new for new, old in enumerate(idx)}
    w = windows[windows["recording"].isin(remap)].copy()
    w["recording"] = w["recording"].map(remap).astype(windows["recording"].dtype)
    return w.reset_index(drop=True)


def _stored(value: Any) -> bool:
    """A table as read from a store, not parsed yet (see :class:`_Deferred`)."""
    return isinstance(value, (Table, _Deferred)) and value.unparsed


class Dataset(Sequence[Recording]):
    """Ordered recordings + a description table + attributes + an optional window index.

    ``description`` has one row per recording (default: the recordings' ``description`` dicts).
    ``windows`` is a DataFrame with integer columns ``recording`` (position in this dataset),
    ``start`` and ``stop`` (samples, stop exclusive), plus any metadata columns such as
    ``target`` — braindecode's windows metadata.
    """

    def __init__(self, recordings: Sequence[Recording], description: pd.DataFrame | None = None,
                 attrs: dict[str, Any] | None = None, windows: pd.DataFrame | None = None) -> None:
        self.recordings = recordings if isinstance(recordings, LazyRecordings) else list(recordings)
        if description is None:
            import pandas as pd

            for recording in self.recordings:  # a typed error, not pandas' UnicodeEncodeError
                require_storable_text(recording)
            description = pd.DataFrame([dict(r.description) for r in self.recordings],
                                       index=pd.RangeIndex(len(self.recordings)))
        if len(description) != len(self.recordings):
            raise SelectionError(f"description has {len(description)} rows for {len(self.recordings)} recordings")
        self.description = description
        self.attrs: dict[str, Any] = dict(attrs or {})
        # a stored window table not parsed yet (``open``: its Parquet bytes, row count known) is
        # checked when it is first read, so opening a store imports no pyarrow (see eegbench.pack)
        if windows is not None and not _stored(windows):
            self._check_windows(windows)
        self.windows = windows

    def _check_windows(self, windows: Any) -> None:
        missing = [c for c in WINDOW_COLUMNS if c not in windows.columns]
        if missing:
            raise SelectionError(f"window index lacks column(s) {missing}; it needs {list(WINDOW_COLUMNS)}")
        rec = windows["recording"].to_numpy()
        if len(windows) and (rec.min() < 0 or rec.max() >= len(self.recordings)):
            raise SelectionError("window index refers to a recording that is not in the dataset")

    # ``description`` and ``windows`` may arrive as stored tables (:class:`eegbench._frame.Table`,
    # from ``open``): they become pandas DataFrames the first time they are read, so opening a
    # store imports no pandas.
    @property
    def description(self) -> pd.DataFrame:
        """One row per recording (a pandas DataFrame)."""
        value = self._description
        if isinstance(value, (Table, _Deferred)):
            value = self._description = value.to_pandas()
        return value

    @description.setter
    def description(self, value: Any) -> None:
        self._description = value

    @property
    def windows(self) -> pd.DataFrame | None:
        """The window index (a pandas DataFrame) or None."""
        value = self._windows
        if isinstance(value, (Table, _Deferred)):
            stored, value = value, value.to_pandas()
            try:
                self._check_windows(value)
            except SelectionError as exc:  # a stored window index that does not fit its store
                from .errors import CorruptStoreError

                raise CorruptStoreError(f"{stored.where or 'the window table'}: {exc}; run `eegbench verify` "
                                        "on the store") from None
            self._windows = value
        return value

    @windows.setter
    def windows(self, value: Any) -> None:
        self._windows = value

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        return self.recordings[index]

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.recordings)

    def __repr__(self) -> str:
        n_t = sum(r.n_times for r in self.recordings)
        return (f"<Dataset: {len(self)} recordings, {n_t} samples in all"
                f"{', heterogeneous' if self.is_heterogeneous else ''}"
                f"{f', {len(self._windows)} windows' if self._windows is not None else ''}>")

    def require_nonempty(self) -> None:
        if not self.recordings:
            raise EmptyDatasetError("the dataset has no recordings; nothing to store")
        for rec in self.recordings:
            if rec.n_times == 0 or rec.n_channels == 0:
                raise EmptyDatasetError(f"recording {rec.name!r} has no samples or no channels")

    @property
    def is_heterogeneous(self) -> bool:
        """True if recordings differ in sampling rate or channel list."""
        keys = {(r.sfreq, tuple(r.ch_names)) for r in self.recordings}
        return len(keys) > 1

    def take(self, indices: Sequence[int]) -> Dataset:
        """A dataset of the recordings at ``indices`` (lazy, shares sources)."""
        idx = [int(i) for i in indices]
        recordings = [self.recordings[i] for i in idx]
        if _stored(self._description) and (self._windows is None or _stored(self._windows)):
            # an opened store's tables, not parsed yet: parse (and take) them when first read
            windows = None if self._windows is None else _Deferred(
                None, _take_windows, (self._windows, idx, len(self)), getattr(self._windows, "where", None))
            return Dataset(recordings, _Deferred(len(idx), _take_description, (self._description, idx)),
                           self.attrs, windows)
        return Dataset(recordings, _take_description(self.description, idx), self.attrs,
                       _take_windows(self.windows, idx))

    def select(self, *, allow_empty: bool = False, **filters: Any) -> Dataset:
        """Recordings whose description matches every filter, e.g. ``select(subject="001",
        task=["rest", "motor"], run=[3, 4])``. A list means "any of".

        Values compare by meaning: numbers and numeric strings by value (``run=4`` matches ``4``,
        ``"4"``, ``"04"`` and ``4.0``), other strings exactly (surrounding spaces ignored). Unknown
        columns raise :class:`~eegbench.errors.UnknownColumnError`; a selection that matches no
        recording raises :class:`~eegbench.errors.EmptySelectionError` listing the values that
        exist, unless ``allow_empty=True``. Lazy: reads no signal."""
        mask = np.ones(len(self), dtype=bool)
        for column, wanted in filters.items():
            if column not in self.description.columns:
                raise UnknownColumnError(f"no description column {column!r}; columns are: "
                                         f"{', '.join(map(str, self.description.columns))}")
            pd = sys.modules["pandas"]  # imported by self.description
            values = wanted if isinstance(wanted, (list, tuple, set, frozenset, np.ndarray, pd.Series)) else [wanted]
            keys = {_meaning(v) for v in values}
            mask &= np.array([_meaning(v) in keys for v in self.description[column]], dtype=bool)
        if not mask.any() and not allow_empty and filters:
            existing = "; ".join(f"{c}: {', '.join(_existing(self.description[c]))}" for c in filters)
            raise EmptySelectionError(f"select({', '.join(f'{k}={v!r}' for k, v in filters.items())}) matches none "
                                      f"of the {len(self)} recordings; values that exist: {existing} "
                                      "(pass allow_empty=True to get an empty dataset instead)")
        return self.take(np.flatnonzero(mask))

    def summary(self) -> pd.DataFrame:
        """One row per recording: name, n_channels, sfreq (Hz), n_times, duration (s), n_annotations."""
        import pandas as pd

        return pd.DataFrame([{"name": r.name, "n_channels": r.n_channels, "sfreq": r.sfreq,
                              "n_times": r.n_times, "duration_s": r.duration,
                              "n_annotations": len(r.annotations),
                              "integer": r.quantization is not None} for r in self.recordings])

    def close(self) -> None:
        """Release every file handle (sources reopen lazily on the next read)."""
        built = getattr(self.recordings, "built", None)
        for rec in built() if built is not None else self.recordings:
            rec.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
