"""Many short recordings in few files: *packs* (issue #14).

Writing one file (HDF5) or one set of arrays and folders (Zarr, NumPy+Parquet) per recording
costs a fixed ~5-10 ms each here, whatever its length: 10,000 recordings of 10 s took 3-5x as
long to save as the same samples in 100 recordings. :func:`eegbench.save` therefore stores
consecutive short recordings that share everything but their length -- channel count and
names, units, sampling rate, stored dtype, calibration (gains/offsets), codec and chunk span --
end to end in one signal array, a *pack*, written by the format's own ``write_recording`` under
a pack key (``pack-00003``, fanned out under ``signals/`` exactly like recording keys, so no
folder exceeds 10,000 entries). Nothing format-specific happens here.

On disk (schema 2):

* each member's ``storage`` cell (recordings table) is ``{"pack": "pack-00003", "offset": N}``:
  its samples are columns ``[N, N + n_times)`` of the pack's array; ``N`` is a multiple of the
  member's ``chunk_samples``, so a member's window touches the same number of chunks as when it
  is stored alone. Its own columns (``n_times``, ``dtype``, ``chunk_samples``, ``codec``) and
  channel rows stay its own.
* the store header (``eegbench.json``, covered by ``header_sha256``) gains ``"packs":
  {"pack-00003": {"n_times": total, "members": m, "storage": {...}}}``: the pack's length in
  samples and what the format's ``write_recording`` returned for it (file, array, chunk index
  location...), stored once per pack rather than once per member.
* the columns between the end of one member and the next member's offset (less than one chunk)
  repeat the member's last sample (a value on its ADC grid, so integer storage stays verified bit
  for bit).

When (``save(..., pack=)``, CLI ``convert --pack``):

* ``"auto"`` (default): recordings under :data:`AUTO_BELOW_BYTES` (4 MiB as float32, e.g. 4 min
  of 64 channels at 64 Hz... or 44 min of 4 channels at 100 Hz) are packed when the dataset holds
  at least :data:`AUTO_MIN_RECORDINGS` (256) of them: only then does the fixed cost per file
  dominate the save. Fewer or longer recordings keep one file (set) each, as before.
* ``True`` / ``"always"``: every recording with samples is a pack candidate.
* ``False`` / ``"never"``: one file (set) per recording, exactly as without packing.

A pack holds at most :data:`MAX_PACK_BYTES` of stored samples (bounds the writer's memory, and
what a partial Hub pull of one member downloads). Opening builds one source per pack, shared by
its members (:class:`eegbench.model.ViewSource` windows of it), and checks a member's pack entry
and the pack's files when the member is first built (see :func:`eegbench.validate.check_packed`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import OptionError

#: a recording with fewer float32 bytes than this (n_channels x n_times x 4) is a candidate under "auto"
AUTO_BELOW_BYTES = 4 << 20
#: "auto" packs only when at least this many recordings are candidates
AUTO_MIN_RECORDINGS = 256
#: stored bytes (n_channels x n_times x itemsize, gaps included) of one pack at most
MAX_PACK_BYTES = 16 << 20
#: chunks of one pack at most (a long recording's worth: per-chunk bookkeeping of some writers, e.g. HDF5's
#: chunk lookup, grows with the chunks of one array)
MAX_PACK_CHUNKS = 1024
#: pack keys: ``pack-00000``, ``pack-00001``... (never a recording key: those are ``rec-*``)
PREFIX = "pack-"
#: the store header's field describing the packs
FIELD = "packs"
_CHOICES = {"auto": "auto", "always": True, "never": False, True: True, False: False}


def resolve(pack: Any) -> bool | str:
    """``"auto"``, True or False from ``save``'s / the CLI's value (``"always"``/``"never"`` too)."""
    try:
        return _CHOICES[pack]
    except (KeyError, TypeError):
        raise OptionError(f"pack must be 'auto', True or False (CLI: --pack auto|always|never), got {pack!r}") from None


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
class PackSource:
    """The samples of a pack while it is written: members end to end at their offsets, each gap
    (up to the next offset) filled with the member's last sample. A :class:`SignalSource`
    (``read``, and ``read_counts`` when every member has integer counts on the same grid), so
    the format's ``write_recording`` and :func:`eegbench.store.stored_blocks` write it as they
    write a recording. Picklable when its members' sources are (joblib, dask workers)."""

    def __init__(self, sources: Sequence[Any], lengths: Sequence[int], offsets: Sequence[int], n_times: int,
                 quantization: Any) -> None:
        self.sources, self.lengths, self.offsets = list(sources), [int(v) for v in lengths], [int(v) for v in offsets]
        self.n_channels = int(self.sources[0].n_channels)
        self.n_times = int(n_times)
        self.quantization = quantization

    def _fill(self, start: int, stop: int, out: np.ndarray, get: Any) -> np.ndarray:
        first = max(bisect.bisect_right(self.offsets, start) - 1, 0)
        for j in range(first, len(self.sources)):
            lo = self.offsets[j]
            if lo >= stop:
                break
            hi = self.offsets[j + 1] if j + 1 < len(self.offsets) else self.n_times
            a, b = max(start, lo), min(stop, hi)
            if a >= b:
                continue
            src, end = self.sources[j], lo + self.lengths[j]
            if a < end:
                e = min(b, end)
                out[:, a - start:e - start] = get(src, a - lo, e - lo)
            if b > end:  # the gap to the next chunk boundary: the last sample, repeated
                out[:, max(a, end) - start:b - start] = get(src, self.lengths[j] - 1, self.lengths[j])
        return out

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        n_ch = self.n_channels if channels is None else len(channels)
        out = np.empty((n_ch, stop - start), dtype=np.float32)
        return self._fill(start, stop, out, lambda src, a, b: src.read(a, b, channels))

    @property
    def read_counts(self) -> Any:
        """Integer counts of the pack when every member has them on the pack's grid, else None."""
        q = self.quantization
        if q is None or any(getattr(s, "read_counts", None) is None or s.quantization != q for s in self.sources):
            return None
        return self._read_counts

    def _read_counts(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((self.n_channels, stop - start), dtype=self.quantization.dtype)
        return self._fill(start, stop, out, lambda src, a, b: src.read_counts(a, b))


@dataclass
class Unit:
    """One write: a recording alone (``members`` None) or a pack of recordings."""

    key: str
    recording: Any
    layout: Any  # SignalLayout
    index: int = -1  # the recording stored alone
    members: list[tuple[int, int]] | None = None  # (recording index, offset in samples)


def _stored_bytes(layout: Any, n_times: int) -> int:
    return layout.n_channels * n_times * np.dtype(layout.dtype).itemsize


def candidates(dataset: Sequence[Any], layouts: Sequence[Any], pack: bool | str) -> list[bool]:
    """Which recordings may join a pack (see the module docstring for ``"auto"``)."""
    if pack is False:
        return [False] * len(layouts)
    ok = [lay.n_times > 0 and _stored_bytes(lay, lay.n_times) <= MAX_PACK_BYTES
          and (pack is True or lay.n_channels * lay.n_times * 4 < AUTO_BELOW_BYTES) for lay in layouts]
    if pack == "auto" and sum(ok) < AUTO_MIN_RECORDINGS:
        return [False] * len(layouts)
    return ok


def plan(dataset: Sequence[Any], layouts: Sequence[Any], keys: Sequence[str], pack: bool | str) -> list[Unit]:
    """The writes of a save: consecutive candidates with equal layouts but for ``n_times`` form
    packs (each member at a multiple of its chunk span, at most :data:`MAX_PACK_BYTES` a pack);
    the others are written alone under their own key, in dataset order."""
    ok = candidates(dataset, layouts, pack)
    units: list[Unit] = []
    group: list[int] = []

    def flush() -> None:
        if len(group) == 1:
            i = group[0]
            units.append(Unit(keys[i], dataset[i], layouts[i], index=i))
        elif group:
            units.append(_pack_unit(f"{PREFIX}{sum(u.members is not None for u in units):05d}", dataset, layouts,
                                    group))
        group.clear()

    total = 0
    for i, layout in enumerate(layouts):
        if not ok[i]:
            flush()
            units.append(Unit(keys[i], dataset[i], layout, index=i))
            continue
        start = -(-total // layout.chunk_samples) * layout.chunk_samples  # the next chunk boundary
        if group and (replace(layout, n_times=0) != replace(layouts[group[0]], n_times=0)
                      or _stored_bytes(layout, start + layout.n_times) > MAX_PACK_BYTES
                      or -(-(start + layout.n_times) // layout.chunk_samples) > MAX_PACK_CHUNKS):
            flush()
        if not group:
            start = 0
        total = start + layout.n_times
        group.append(i)
    flush()
    return units


def _pack_unit(key: str, dataset: Sequence[Any], layouts: Sequence[Any], group: list[int]) -> Unit:
    from .model import Recording

    first, chunk = layouts[group[0]], layouts[group[0]].chunk_samples
    members, at = [], 0
    for i in group:
        members.append((i, at))
        at = -(-(at + layouts[i].n_times) // chunk) * chunk
    n_times = members[-1][1] + layouts[group[-1]].n_times
    rec0 = dataset[group[0]]
    source = PackSource([dataset[i].source for i in group], [layouts[i].n_times for i in group],
                        [off for _, off in members], n_times, first.quantization)
    names = [dataset[i].name for i in (group[0], group[-1])]
    recording = Recording(source, rec0.sfreq, rec0.ch_names, ch_types=rec0.ch_types, units=rec0.units,
                          name=f"{key} ({len(group)} recordings, {names[0]} .. {names[1]})")
    return Unit(key, recording, replace(first, n_times=n_times), members=members)


def assign(units: Sequence[Unit], results: Sequence[tuple[Any, dict[str, Any]]],
           n: int) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    """Per-recording ``(layouts, storages)`` from the units' write results, and the header's
    :data:`FIELD` entry (``{}`` when nothing was packed). A pack's layout may have fallen back to
    float32 (off the ADC grid): its members then say so too."""
    layouts: list[Any] = [None] * n
    storages: list[Any] = [None] * n
    packs: dict[str, Any] = {}
    for unit, (layout, storage) in zip(units, results):
        if unit.members is None:
            layouts[unit.index], storages[unit.index] = layout, storage
            continue
        packs[unit.key] = {"n_times": layout.n_times, "members": len(unit.members), "storage": storage}
        for (i, offset), n_times in zip(unit.members, unit.recording.source.lengths):
            layouts[i] = replace(layout, n_times=n_times)
            storages[i] = {"pack": unit.key, "offset": offset}
    return layouts, storages, packs


# ---------------------------------------------------------------------------------------------
# reading: which files a member needs
# ---------------------------------------------------------------------------------------------
def member_packs(keys: Iterable[Any], storages: Iterable[Any]) -> dict[str, str]:
    """``{recording key: pack key}`` from the recordings table's ``key`` and ``storage`` columns
    (typed-JSON text). Lenient: a cell that does not parse names no pack here; the recording's
    own validation (on first build) reports it."""
    from .tables import from_json

    out = {}
    for key, text in zip(keys, storages):
        if not isinstance(text, str) or '"pack"' not in text:
            continue
        try:
            storage = from_json(text)
        except Exception:  # noqa: BLE001 - reported when the recording is built
            continue
        if isinstance(storage, dict) and isinstance(storage.get("pack"), str) and isinstance(key, str):
            out[key] = storage["pack"]
    return out


def is_member(storage: Any) -> bool:
    """Whether a recording's (parsed) ``storage`` places it in a pack."""
    return isinstance(storage, dict) and "pack" in storage


def header_packs(header: Mapping[str, Any]) -> dict[str, Any]:
    """The header's :data:`FIELD` (``{}`` for a store without packs; checked per pack on use)."""
    packs = header.get(FIELD)
    return packs if isinstance(packs, dict) else {}


def summary(header: Mapping[str, Any]) -> tuple[int, int]:
    """``(packs, packed recordings)`` of a store from its header (for ``eegbench info``)."""
    packs = header_packs(header)
    members = sum(e.get("members", 0) for e in packs.values() if isinstance(e, dict)
                  and isinstance(e.get("members"), int))
    return len(packs), members
