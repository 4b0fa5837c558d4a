"""Move a window into its slot of a DataLoader batch with non-temporal (streaming) stores.

A batch of 64 windows x 129 ch x 2 s is 33 MB of float32: it does not fit in the CPU caches, so
a window read straight into its slot writes lines that are not cached; each is first read from
DRAM (read for ownership), then written back. Measured here (2-core Intel Xeon VM, an
uncompressed store, CPU per batch of 64): reads into a cache-resident window buffer 4.1-5.0 ms,
straight into the batch slots 8.9-10.2 ms, into the window buffer and then streamed into the
slot 6.9-7.9 ms (``benchmarks/loader_breakdown.py`` prints the per-window figures). Streaming
stores write whole lines without reading them and leave the caches to the reader's data.

:func:`stream_copy` is bit for bit (bytes move, nothing is converted). It uses a small numba
kernel (64-byte aligned ``<16 x i32>`` non-temporal stores, then ``sfence``) on x86-64 and
falls back to NumPy assignment anywhere else, without numba, or when ``EEGBENCH_BATCH_STREAM=0``.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

#: batches smaller than this many bytes are written directly (they stay in the caches anyway)
MIN_BATCH_BYTES = 8 << 20

_kernel: Any = None  # the compiled streaming copy; False: unavailable here


def available() -> bool:
    """Whether streaming copies are compiled and usable in this process (compiles on first call:
    numba's import plus its on-disk cache, ~0.3-0.9 s once per process that reads batches)."""
    global _kernel
    if _kernel is None:
        _kernel = False
        if os.environ.get("EEGBENCH_BATCH_STREAM", "1") != "0" and platform.machine().lower() in ("x86_64", "amd64"):
            try:
                from . import _rowcopy_numba

                probe = np.arange(32, dtype=np.float32).reshape(2, 16)
                dst = np.zeros_like(probe)
                _rowcopy_numba.stream_rows(dst, probe)
                if np.array_equal(dst, probe):
                    _kernel = _rowcopy_numba.stream_rows
            except Exception:  # noqa: BLE001 - no numba, no LLVM target: NumPy copies instead
                _kernel = False
    return _kernel is not False


def stream_copy(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for two 2-D arrays of one shape and dtype whose rows are contiguous, with
    streaming stores when :func:`available` (else NumPy's assignment)."""
    if (_kernel or available()) and dst.shape == src.shape and dst.dtype == src.dtype and dst.ndim == 2 \
            and dst.strides[1] == dst.itemsize and src.strides[1] == src.itemsize and not np.may_share_memory(dst, src):
        _kernel(dst, src)
    else:
        dst[...] = src
