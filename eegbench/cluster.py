"""Conversion on a dask.distributed cluster: ``save(..., client=)`` and ``convert --scheduler``.

The coordinator (the process calling :func:`eegbench.save`) plans every recording's layout as
usual, then submits one task per recording to the cluster. Each task writes its recording into
the destination's temporary store -- the same hidden sibling the local path uses, so workers
must see the destination's file system (a shared file system on a real cluster; the machine's
own disk for a ``LocalCluster``) -- and returns only the small storage description. The
coordinator then writes the tables, the manifest and the header and publishes the store
atomically, exactly as for ``jobs=N``: the result is byte-for-byte the local path's (the
manifests are equal). A recording whose task fails (an exception, or a worker that died) is
retried ``retries`` times on any worker before the conversion fails; a failed conversion leaves
nothing behind. Progress comes from the cluster: a tqdm bar over ``as_completed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import OptionError

#: times a recording's task is resubmitted after a failure (an exception or a lost worker)
DEFAULT_RETRIES = 2


def connect(scheduler: Any, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` for ``scheduler`` (an address such as ``tcp://HOST:8786``, or an
    existing client/cluster). Raises :class:`~eegbench.errors.OptionError` when unreachable."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise OptionError("conversion on a cluster needs dask.distributed: pip install 'eegbench[cluster]'") from exc
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise OptionError(f"cannot reach the dask scheduler at {scheduler!r} ({exc}); start one with "
                          "`dask scheduler` and workers with `dask worker ADDRESS`") from exc


def run_writes(client: Any, format_name: str, root: Path, keys: list[str], dataset: Any, layouts: list[Any],
               progress: bool = False, retries: int = DEFAULT_RETRIES,
               strict: bool = False) -> list[tuple[Any, dict[str, Any]]]:
    """Write every recording on the cluster behind ``client``; results in ``keys`` order.

    Each task is :func:`eegbench.store._write_recording` for one recording (its source is
    pickled to the worker; stores and MNE-readable files are reopened there by path). Tasks are
    pure (same input, same bytes), so a retry after a failure writes the same recording again.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    from .store import _write_recording

    client = connect(client)
    futures = {}
    for i, (key, rec, layout) in enumerate(zip(keys, dataset, layouts)):
        fut = client.submit(_write_recording, format_name, root, key, rec, layout, strict, retries=retries,
                            pure=False, key=f"eegbench-write-{root.name}-{key}")
        futures[fut] = i
    out: list[Any] = [None] * len(keys)
    bar = tqdm(total=len(keys), unit="rec", desc=f"writing {format_name} (cluster)", disable=not progress)
    try:
        for fut in as_completed(list(futures)):
            out[futures[fut]] = fut.result()  # re-raises the task's exception after its retries
            bar.update()
    except BaseException:
        client.cancel(list(futures))
        # a cancelled task that is already running is not stopped: it would go on writing into the
        # temporary store after the caller removed it (re-creating folders). Wait until no worker
        # holds any of these tasks, so the cleanup that follows is the last word.
        _wait_released(client, [f.key for f in futures])
        raise
    finally:
        bar.close()
    return out


def _wait_released(client: Any, keys: list[str], timeout: float = 120.0) -> None:
    """Block until no worker holds a task of ``keys`` (running, cancelled-while-running or queued)."""
    import time

    wanted = frozenset(keys)

    def held(dask_worker: Any) -> int:  # runs on each worker
        return sum(1 for k in dask_worker.state.tasks if k in wanted)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not any(client.run(held).values()):
                return
        except Exception:  # noqa: BLE001 - a lost worker or a closing client: nothing left to wait for
            return
        time.sleep(0.05)
