"""PyTorch access: :class:`WindowDataset` cuts a (lazy) eegbench dataset into fixed-length windows.

Safe with ``DataLoader(num_workers>0)`` under ``fork`` and ``spawn``: the dataset pickles without
file handles, and every format's reader opens its files lazily in the process that reads (a
forked worker never touches the parent's h5py/zarr/mmap handles). ``__getitems__`` reads a whole
batch grouped by recording, so each chunk a batch touches is decoded once.

Units: window lengths, strides and offsets are in samples; annotation onsets in seconds are
converted with the recording's ``sfreq``.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as _TorchDataset

from .errors import SelectionError, UnknownColumnError
from .io import batch as _batch
from .model import Dataset


def worker_init_fn(worker_id: int) -> None:  # noqa: ARG001 - DataLoader's signature
    """Use in ``DataLoader(worker_init_fn=...)``: one compute thread per worker (2 cores here;
    oversubscription costs more than it gains) and no codec-internal threads."""
    torch.set_num_threads(1)
    import numcodecs

    numcodecs.blosc.use_threads = False


# --- worker batches in reused shared memory -----------------------------------------------------
#: batch buffers kept per process and batch shape: shared memory in DataLoader workers, ordinary
#: memory in a process that reads its own batches (0: a fresh tensor for every batch, as PyTorch's
#: own collate allocates)
RING_SLOTS = int(os.environ.get("EEGBENCH_BATCH_RING", "4"))


class _Ring:
    """Shared-memory batch buffers of one shape, reused by one worker process.

    PyTorch moves a worker's batch to the main process through shared memory; a fresh segment per
    batch costs its allocation and the page faults of its first write (27 ms for a 33 MB batch
    here, as much as reading its windows). A slot's flag (one byte in shared memory) is set when
    the slot is handed out; it is cleared only by the process that received the batch, from a
    finalizer on the received *storage*, which runs once the last tensor and view of it there are
    gone. The slot is written again only when its flag is clear and this process holds no tensor,
    view or array of it either. A batch that leaves the worker any other way (a custom
    ``collate_fn`` returning views, a copy by the default collate) keeps its slot busy for good,
    and when every slot is busy a batch gets a fresh shared tensor, as PyTorch's collate does:
    a buffer the consumer may still read is never overwritten. (Do not send received batches on
    to a third process without copying them.)"""

    def __init__(self, shape: tuple[int, ...], slots: int) -> None:
        self.shape, self.slots = shape, slots
        self.flags = torch.zeros(slots, dtype=torch.uint8).share_memory_()
        self.buffers: list[tuple[torch.Tensor, Any, int]] = []  # (base, storage, use count when idle)
        self.allocated = self.reused = 0
        self.token = uuid.uuid4().hex  # names this ring's slots in the receiving process (see _x_payload)
        self.sent: list[bool] = []  # per slot: its mapping has been sent once (later batches send its name)

    def acquire(self) -> tuple[torch.Tensor, int | None]:
        flags = self.flags.numpy()
        for k, (base, storage, idle) in enumerate(self.buffers):
            if flags[k] == 0 and _use_count(storage) == idle:
                flags[k] = 1
                self.reused += 1
                return base.view(self.shape), k
        self.allocated += 1
        x = torch.empty(self.shape, dtype=torch.float32).share_memory_()
        if len(self.buffers) >= self.slots or _use_count(x.untyped_storage()) < 0:
            return x, None  # every slot busy (or no way to count users): a one-off batch
        storage = x.untyped_storage()
        self.buffers.append((x, storage, _use_count(storage)))
        self.sent.append(False)
        flags[len(self.buffers) - 1] = 1
        return x.view(self.shape), len(self.buffers) - 1


def _use_count(storage: Any) -> int:
    """How many tensors and views use ``storage`` in this process (-1: PyTorch cannot say)."""
    fn = getattr(torch._C, "_storage_Use_Count", None)
    return -1 if fn is None else int(fn(storage._cdata))


_RINGS: dict[tuple[int, tuple[int, ...]], _Ring] = {}


def _worker_tensor(shape: tuple[int, ...]) -> tuple[torch.Tensor, Any]:
    """A float32 shared-memory tensor for a worker's batch and its ring slot (None: not reused)."""
    if RING_SLOTS <= 0:
        return torch.empty(shape, dtype=torch.float32).share_memory_(), None
    key = (os.getpid(), shape)
    ring = _RINGS.get(key)
    if ring is None:
        ring = _RINGS[key] = _Ring(shape, RING_SLOTS)
    x, k = ring.acquire()
    return x, (None if k is None else (ring, k))


class _LocalRing:
    """Batch buffers of one shape reused by the process that reads *and* consumes the batches
    (``DataLoader(num_workers=0)``, or ``__getitems__`` called directly).

    A fresh 33 MB batch is first-touch page faults (~5,700 per batch here when the heap had no free
    33 MB block: 12 ms of a 23 ms batch, the reads being the rest); whether malloc hands back a
    block already faulted in depends on the process's heap. A buffer is reused only when this
    process holds no tensor, view or NumPy array of it any more (PyTorch's storage use count);
    otherwise the batch gets a fresh tensor, so a batch you keep is never overwritten."""

    def __init__(self, shape: tuple[int, ...], slots: int) -> None:
        self.shape, self.slots = shape, slots
        self.buffers: list[tuple[torch.Tensor, Any, int]] = []  # (base, storage, use count when idle)
        self.allocated = self.reused = 0

    def acquire(self) -> torch.Tensor:
        for base, storage, idle in self.buffers:
            if _use_count(storage) == idle:
                self.reused += 1
                return base.view(self.shape)
        self.allocated += 1
        x = torch.empty(self.shape, dtype=torch.float32)
        if len(self.buffers) >= self.slots:
            return x
        storage = x.untyped_storage()
        idle = _use_count(storage)
        if idle < 0:  # no way to count users: never reuse
            return x
        self.buffers.append((x, storage, idle))
        return x.view(self.shape)


_LOCAL_RINGS: dict[tuple[int, tuple[int, ...]], _LocalRing] = {}


def _local_tensor(shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 batch tensor for this process's own use, from a reused buffer when one is free."""
    if RING_SLOTS <= 0:
        return torch.empty(shape, dtype=torch.float32)
    key = (os.getpid(), shape)
    ring = _LOCAL_RINGS.get(key)
    if ring is None:
        ring = _LOCAL_RINGS[key] = _LocalRing(shape, RING_SLOTS)
    return ring.acquire()


def ring_stats() -> dict[str, int]:
    """This process's batch buffers: ``allocated`` (fresh tensors) and ``reused`` (batches written
    into a released buffer), over every ring (a DataLoader worker has one per batch shape; a
    process reading its own batches, ``num_workers=0``, has its own)."""
    rings = [r for rings in (_RINGS, _LOCAL_RINGS) for (pid, _), r in rings.items() if pid == os.getpid()]
    return {"allocated": sum(r.allocated for r in rings), "reused": sum(r.reused for r in rings)}


def _x_payload(x: torch.Tensor, slot: Any) -> Any:
    """What a worker sends for a batch tensor ``x`` (while the batch is pickled): ``x`` itself when
    it is not a ring slot; for a slot, ``(name, x, flags)`` the first time (PyTorch hands over the
    shared memory's file descriptors: the slot's and its ring's flags') and ``(name, None, None)``
    afterwards. The receiving process keeps a slot mapped once it has it (:data:`_MAPPED`), so a
    later batch costs neither descriptor hand-overs (each a connection to the worker's
    resource-sharer thread with an authentication handshake, and a fresh ``mmap``) nor, when the
    consumer reads the batch, the page faults of a fresh mapping (~8,000 for 33 MB).

    A slot's first batch that never reached the receiver (a loader shut down with batches in
    flight) keeps the slot's flag set, so that slot is never written or named again."""
    if slot is None:
        return x
    ring, k = slot
    name = (os.getpid(), ring.token, k)
    if ring.sent[k]:
        return name, None, None
    ring.sent[k] = True
    return name, x, ring.flags


def _y_payload(y: Any) -> Any:
    """Targets by value (a few hundred bytes; a tensor would get a shared-memory segment of its
    own, and a descriptor hand-over, per batch)."""
    if isinstance(y, torch.Tensor) and y.device.type == "cpu" and not y.is_shared() and y.numel() <= 1 << 16:
        return _YArray(y.numpy())
    return y


class _YArray:
    __slots__ = ("a",)

    def __init__(self, a: np.ndarray) -> None:
        self.a = a


#: in a process that receives worker batches: every ring slot it was sent, mapped once
#: ((worker pid, ring, slot) -> (the slot's whole tensor, the ring's flags)), dropped when the
#: worker's ``multiprocessing.Process`` object is (the DataLoader let go of its workers)
_MAPPED: dict[tuple[int, str, int], tuple[torch.Tensor, torch.Tensor]] = {}
_WATCHED: set[int] = set()
_TRANSFERS = {"mapped": 0, "named": 0}


def transfer_stats() -> dict[str, int]:
    """In a process that receives worker batches: ``mapped`` (ring-slot batches that came with
    their shared memory's descriptor: a slot's first batch), ``named`` (batches that named a slot
    already mapped here) and ``slots`` (slots mapped now, of workers still held by a DataLoader)."""
    return {**_TRANSFERS, "slots": len(_MAPPED)}


def _forget(pid: int) -> None:
    _WATCHED.discard(pid)
    for name in [n for n in _MAPPED if n[0] == pid]:
        del _MAPPED[name]


def _watch(pid: int) -> None:
    """Drop ``pid``'s mappings with its Process object (or, if this process is not its parent,
    with the next first batch of another worker after it ended)."""
    import multiprocessing

    if pid in _WATCHED:
        return
    for proc in multiprocessing.active_children():
        if proc.pid == pid:
            weakref.finalize(proc, _forget, pid).atexit = False
            _WATCHED.add(pid)
            return
    for other in {n[0] for n in _MAPPED} - _WATCHED - {pid}:
        try:
            os.kill(other, 0)
        except ProcessLookupError:
            _forget(other)
        except OSError:
            pass


def _receive(xp: Any, yp: Any) -> tuple[torch.Tensor, Any, Any, Any]:
    """Rebuild a sent batch: ``(x, y, flags, k)`` (flags None: ``x`` is no ring slot)."""
    y = torch.from_numpy(yp.a) if isinstance(yp, _YArray) else yp
    if isinstance(xp, torch.Tensor):
        return xp, y, None, None
    name, x, flags = xp
    if x is not None:
        _watch(name[0])
        _MAPPED[name] = x, flags
        _TRANSFERS["mapped"] += 1
    else:
        x, flags = _MAPPED.get(name, (None, None))
        if x is None:
            from .errors import EegbenchError

            raise EegbenchError(f"a DataLoader batch names shared-memory slot {name} that this process was never "
                                "sent (received batches must not be forwarded to another process)")
        _TRANSFERS["named"] += 1
    # a storage of this batch's own over the kept mapping: its death (the last tensor or view of
    # this batch gone) releases the slot, while the mapping stays for the slot's next batch
    return torch.from_numpy(x.numpy()), y, flags, name[2]


def _clear(flags: torch.Tensor, k: int) -> None:
    flags[k] = 0


def _received(x: torch.Tensor, flags: Any, k: Any) -> None:
    """In the receiving process: release the sender's slot once the storage of ``x`` dies."""
    if flags is not None:
        weakref.finalize(x.untyped_storage(), _clear, flags, k).atexit = False


def _rebuild_batch(xp: Any, yp: Any) -> WindowBatch:
    x, y, flags, k = _receive(xp, yp)
    _received(x, flags, k)
    return WindowBatch(x, y)


def _rebuild_pair(xp: Any, yp: Any) -> tuple[torch.Tensor, Any]:
    x, y, flags, k = _receive(xp, yp)
    _received(x, flags, k)
    return x, y


class _SentPair(tuple):
    """``(x, y)`` of a worker batch whose ``x`` lives in a ring slot: arrives as a plain tuple."""

    _slot: Any = None

    def __reduce__(self) -> Any:
        return _rebuild_pair, (_x_payload(self[0], self._slot), _y_payload(self[1]))


class WindowBatch(Sequence):
    """A batch from :meth:`WindowDataset.__getitems__`: ``x`` is one ``(n, channels, samples)``
    float32 tensor, ``y`` the targets (a tensor when numeric, else a list).

    It is also a sequence of ``(x[k], y[k])`` pairs, created only when indexed, so PyTorch's
    default ``collate_fn`` still works (and stacks a copy); :func:`collate` returns
    ``(x, y)`` as they are."""

    def __init__(self, x: torch.Tensor, y: Any, slot: Any = None) -> None:
        self.x, self.y = x, y
        self._slot = slot  # (ring, k) in a DataLoader worker when x is a reused buffer

    def __reduce__(self) -> Any:
        return _rebuild_batch, (_x_payload(self.x, self._slot), _y_payload(self.y))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        y = self.y[k]
        return self.x[k], (y.item() if isinstance(y, torch.Tensor) else y)


def collate(batch: Any) -> Any:
    """``collate_fn`` for DataLoaders over a :class:`WindowDataset`: a :class:`WindowBatch` becomes
    ``(x, y)`` with no copy and no per-window objects; anything else goes to PyTorch's default."""
    if isinstance(batch, WindowBatch):
        if batch._slot is None:
            return batch.x, batch.y
        pair = _SentPair((batch.x, batch.y))  # a worker's reused buffer: released when the main process drops it
        pair._slot = batch._slot
        return pair
    from torch.utils.data import default_collate

    return default_collate(batch)


class WindowDataset(_TorchDataset):
    """Fixed-length windows over every recording, or around annotations, as ``(x, y)`` pairs.

    Parameters
    ----------
    dataset : eegbench.Dataset or path of a store
        Opened lazily if a path is given.
    window_samples : int, optional
        Window length in samples. ``None`` means: use the store's window index (every window in
        it must have the same length), which is required to exist.
    stride_samples : int, optional
        Step between consecutive fixed windows (default: ``window_samples``, no overlap).
    target : str or callable, optional
        What ``y`` is: a column of the window index or of ``dataset.description`` (e.g.
        ``"target"``, ``"age"``), ``"event"`` for the annotation code with ``from_events``, or a
        callable ``f(metadata_row) -> y``. Default: the window's index, so the default
        ``collate_fn`` always works.
    from_events : bool
        One window per annotation, starting ``event_offset_samples`` after its onset.
    event_id : dict, optional
        Annotation description -> integer code (``from_events``); default: sorted descriptions
        numbered from 0. Annotations not in it are ignored.
    picks : channel names or indices, optional
        Channels of every window (all recordings must have them).
    out_of_range : {"raise", "drop"}
        What to do with event windows that do not fit inside their recording. Windows are never
        silently short.
    """

    def __init__(self, dataset: Dataset | str | os.PathLike, window_samples: int | None = None,
                 stride_samples: int | None = None, target: str | Callable[[pd.Series], Any] | None = None, *,
                 from_events: bool = False, event_offset_samples: int = 0, event_id: dict[str, int] | None = None,
                 picks: Any = None, out_of_range: str = "raise") -> None:
        if isinstance(dataset, (str, os.PathLike, Path)):
            from .store import open as open_store

            dataset = open_store(dataset)
        if out_of_range not in ("raise", "drop"):
            raise SelectionError(f"out_of_range must be 'raise' or 'drop', got {out_of_range!r}")
        self.dataset = dataset
        self.picks = picks
        self._channels = [rec.pick_indices(picks) for rec in dataset]
        if window_samples is None:
            if dataset.windows is None:
                raise SelectionError("give window_samples, or use a store that has a window index")
            meta = self._from_index(dataset.windows)
        else:
            window_samples = int(window_samples)
            if window_samples <= 0:
                raise SelectionError(f"window_samples must be > 0, got {window_samples}")
            if from_events:
                meta = self._from_events(window_samples, int(event_offset_samples), event_id, out_of_range)
            else:
                meta = self._fixed(window_samples, int(stride_samples or window_samples))
        self.window_samples = int(meta["stop"].iloc[0] - meta["start"].iloc[0]) if len(meta) else window_samples
        self.metadata = meta
        self._targets = self._resolve_target(target)
        self._rec = meta["recording"].to_numpy(np.int64)
        self._start = meta["start"].to_numpy(np.int64)

    # --- window tables --------------------------------------------------------------------
    def _fixed(self, length: int, stride: int) -> pd.DataFrame:
        if stride <= 0:
            raise SelectionError(f"stride_samples must be > 0, got {stride}")
        parts = []
        for i, rec in enumerate(self.dataset):
            if rec.n_times < length:
                raise SelectionError(f"{rec.name}: window of {length} samples is longer than the recording "
                                     f"({rec.n_times} samples); shorten the window or select recordings")
            starts = np.arange(0, rec.n_times - length + 1, stride, dtype=np.int64)
            parts.append(pd.DataFrame({"recording": i, "i_window_in_recording": np.arange(starts.size),
                                       "start": starts, "stop": starts + length}))
        return pd.concat(parts, ignore_index=True)

    def _from_events(self, length: int, offset: int, event_id: dict[str, int] | None,
                     out_of_range: str) -> pd.DataFrame:
        if event_id is None:
            names = sorted({d for rec in self.dataset for d in rec.annotations.description})
            event_id = {d: k for k, d in enumerate(names)}
        rows = []
        for i, rec in enumerate(self.dataset):
            ann = rec.annotations
            for onset, desc in zip(ann.onset, ann.description):
                if desc not in event_id:
                    continue
                start = int(round(onset * rec.sfreq)) + offset
                if start < 0 or start + length > rec.n_times:
                    if out_of_range == "drop":
                        continue
                    raise SelectionError(f"{rec.name}: the window for annotation {desc!r} at {onset:g} s "
                                         f"([{start}, {start + length}) samples) is outside 0..{rec.n_times}; "
                                         "pass out_of_range='drop' or change the offset/length")
                rows.append({"recording": i, "start": start, "stop": start + length,
                             "onset_s": float(onset), "description": desc, "event": event_id[desc]})
        if not rows:
            raise SelectionError("no annotation matches event_id; nothing to window")
        return pd.DataFrame(rows)

    def _from_index(self, windows: pd.DataFrame) -> pd.DataFrame:
        meta = windows.reset_index(drop=True).copy()
        lengths = (meta["stop"] - meta["start"]).unique()
        if len(lengths) != 1:
            raise SelectionError(f"the window index has windows of different lengths {sorted(lengths)[:5]}; "
                                 "pass window_samples to cut fixed-length windows instead")
        n_times = np.array([rec.n_times for rec in self.dataset])
        bad = (meta["start"] < 0) | (meta["stop"] > n_times[meta["recording"].to_numpy()])
        if bad.any():
            row = meta[bad].iloc[0]
            raise SelectionError(f"window index row {int(bad.idxmax())} ([{row['start']}, {row['stop']}) of "
                                 f"recording {row['recording']}) lies outside its recording")
        return meta

    def _resolve_target(self, target: Any) -> np.ndarray | None:
        meta = self.metadata
        if target is None:
            return None
        if callable(target):
            return np.array([target(row) for _, row in meta.iterrows()])
        if target in meta.columns:
            return meta[target].to_numpy()
        if target in self.dataset.description.columns:
            values = self.dataset.description[target].to_numpy()
            return values[meta["recording"].to_numpy()]
        raise UnknownColumnError(f"target {target!r} is neither a window column ({', '.join(meta.columns)}) "
                                 f"nor a description column ({', '.join(map(str, self.dataset.description.columns))})")

    # --- torch Dataset API ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.metadata)

    def _y(self, index: int) -> Any:
        if self._targets is None:
            return index
        value = self._targets[index]
        return value.item() if isinstance(value, np.generic) else value

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        index %= len(self)
        r, s = int(self._rec[index]), int(self._start[index])
        rec = self.dataset.recordings[r]
        x = rec.source.read(s, s + self.window_samples, self._channels[r])
        return torch.from_numpy(x), self._y(index)

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch | list[tuple[torch.Tensor, Any]]:
        """A whole batch as one ``(n, channels, samples)`` float32 tensor, each window read straight
        into its slot (in a DataLoader worker the tensor is allocated in shared memory, so the
        batch crosses to the main process without another copy). Returns a :class:`WindowBatch`;
        pass ``collate_fn=eegbench.torch.collate`` to get ``(x, y)`` without per-window objects."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows")
        idx %= max(len(self), 1)
        recs = self._rec[idx]
        n_ch = {int(r): (self.dataset.recordings[int(r)].n_channels if self._channels[int(r)] is None
                         else len(self._channels[int(r)])) for r in np.unique(recs)}
        if len(set(n_ch.values())) != 1:
            return [self[int(i)] for i in idx]  # heterogeneous channel counts: collate will complain clearly
        shape = (idx.size, next(iter(n_ch.values())), self.window_samples)
        slot = None
        if torch.utils.data.get_worker_info() is not None:
            # shared memory, as default_collate would allocate, filled once instead of twice; reused
            # across batches once the main process has dropped it (see _Ring)
            x, slot = _worker_tensor(shape)
        else:  # read and consumed here (workers=0): a released buffer of this shape, if any
            x = _local_tensor(shape)
        out = x.numpy()
        length = self.window_samples
        if idx.size and _batch.is_concurrent(self.dataset.recordings[int(recs[0])].source):
            # a remote store: one coalesced fetch per recording, all recordings at the same time
            sources = {r: self.dataset.recordings[r].source for r in n_ch}
            _batch.read_windows(sources, self._channels, recs, self._start[idx], length, out)
            return WindowBatch(x, self._batch_y(idx), slot)
        for k, (r, s) in enumerate(zip(recs.tolist(), self._start[idx].tolist())):
            source, channels = self.dataset.recordings[r].source, self._channels[r]
            if getattr(source, "reads_into", False):
                # straight into the slot (a batch larger than the caches: non-temporal stores where the
                # window is a plain copy, see eegbench.formats._chunks.STREAM_MIN_BYTES)
                source.read(s, s + length, channels, out=out[k])
            else:
                out[k] = source.read(s, s + length, channels)
        return WindowBatch(x, self._batch_y(idx), slot)

    def _batch_y(self, idx: np.ndarray) -> Any:
        if self._targets is None:
            return torch.from_numpy(idx.copy())
        values = self._targets[idx]
        if values.dtype.kind in "biuf":
            return torch.from_numpy(np.ascontiguousarray(values))
        return [v.item() if isinstance(v, np.generic) else v for v in values]

    def close(self) -> None:
        """Release file handles (they reopen lazily)."""
        self.dataset.close()
