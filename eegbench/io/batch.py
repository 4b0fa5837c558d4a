"""A batch of windows from a remote store: every recording's byte ranges fetched at the same time.

A DataLoader batch touches several recordings. Read one recording after another, it costs one
round trip per recording (plus one per window when windows are read one by one): at 20 ms per
request and 6 recordings per batch that is >= 120 ms of waiting per batch, whatever the number of
workers. :func:`read_windows` instead groups the batch by recording and reads each group with the
source's ``read_batch`` (each recording's missing chunks in one coalesced ``get_ranges``; its
chunk index first if this process has not read it yet) in a small per-process thread pool, so a
batch costs ~one round trip (two on a recording's first touch) however many recordings it spans.
The requests are the same ones a sequential read sends -- one per recording touched (per run of
chunks closer than the source's ``max_gap``) -- only sent concurrently: within a recording, HTTP
writes all its requests on keep-alive connections before reading the answers
(:meth:`eegbench.io.remote.HTTPClient.get_many`), s3fs multiplexes them on fsspec's event loop,
obstore and ``hf://`` use a few threads.

Local stores never come here: :func:`is_concurrent` is False for them (their reads are page-cache
copies, where threads only add overhead on 2 cores), and :mod:`eegbench.torch` keeps its local
path unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: threads per process that fetch a batch's recordings (each mostly waits for the network)
MAX_THREADS = int(os.environ.get("EEGBENCH_REMOTE_BATCH_THREADS", "16"))

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """This process's pool (a forked DataLoader worker builds its own: the parent's threads do not
    exist in the child)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="eegbench-batch")
            _pool_pid = os.getpid()
        return _pool


def _root_source(source: Any) -> Any:
    """The stored source under views (``ViewSource.parent`` chains)."""
    while getattr(source, "parent", None) is not None:
        source = source.parent
    return source


def is_concurrent(source: Any) -> bool:
    """Whether windows of ``source`` are worth fetching concurrently with other recordings'
    (its bytes come from a :class:`~eegbench.io.remote.RemoteSource`)."""
    from .remote import RemoteSource

    return isinstance(getattr(_root_source(source), "bytes", None), RemoteSource)


def read_windows(sources: Mapping[int, Any], channels: Sequence[np.ndarray | None], recs: np.ndarray, starts: np.ndarray,
                 length: int, out: np.ndarray) -> None:
    """Fill ``out[k]`` (float32 ``(n_channels, length)``) with samples ``[starts[k], starts[k] +
    length)`` of channels ``channels[recs[k]]`` of ``sources[recs[k]]`` for every ``k``: one task
    per recording, all recordings at once (see the module docstring). Errors of any recording
    are raised (the first, in recording order) after every task finished."""
    from ..formats._chunks import ChunkedSource
    from ..model import read_batch

    recs = np.asarray(recs, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    groups = [(int(r), np.flatnonzero(recs == r)) for r in np.unique(recs)]

    def one(group: tuple[int, np.ndarray]) -> None:
        r, ks = group
        source = sources[r]
        if isinstance(source, ChunkedSource):  # straight into the batch's rows: no batch-sized temporary
            source.read_batch(starts[ks], length, channels[r], out=out, rows=ks)
        else:
            out[ks] = read_batch(source, starts[ks], length, channels[r])

    if len(groups) == 1:
        one(groups[0])
        return
    # the other recordings on the pool, the first on this thread (one hand-off fewer per batch)
    futures = [_executor().submit(one, g) for g in groups[1:]]
    first: BaseException | None = None
    try:
        one(groups[0])
    except BaseException as exc:  # noqa: BLE001 - raised below, after every task finished
        first = exc
    errors = [first, *(f.exception() for f in futures)]
    for exc in errors:
        if exc is not None:
            raise exc
