"""Page-cache helpers shared by the benchmarks and ``eegbench recommend --data``.

"Cold" means the files were evicted from the page cache first: :func:`evict` does it without
root (``fsync`` first, dirty pages stay otherwise, then ``POSIX_FADV_DONTNEED``); pages mapped by a
live mmap are not evicted, so close memmaps first, and a VM host may still cache.
:func:`disk_read_bytes` counts what this process read from the block device, and
:func:`warm_window_times` times random windows that are already in the page cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

__all__ = ["disk_read_bytes", "evict", "warm_window_times"]


def evict(paths: Iterable[str | os.PathLike]) -> None:
    """Drop these files from the page cache (fsync, then ``POSIX_FADV_DONTNEED``)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def disk_read_bytes() -> int:
    """Bytes this process has read from the block device (``/proc/self/io`` ``read_bytes``);
    -1 where the kernel does not report it (then differences are meaningless: treat as n/a)."""
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def warm_window_times(ds, windows: Sequence[tuple[int, int]], window: int) -> list[float]:
    """Seconds per window read of an open dataset ``ds`` (``windows``: ``(recording, start sample)``
    pairs, ``window`` samples, all channels), each window read once untimed first so its bytes are
    in the page cache and the reader's handles are open: the warm figure a training loop sees."""
    for r, s in windows:
        ds[r].get_data(start=s, stop=s + window)
    times = []
    for r, s in windows:
        t0 = time.perf_counter()
        ds[r].get_data(start=s, stop=s + window)
        times.append(time.perf_counter() - t0)
    return times
