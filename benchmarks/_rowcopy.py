"""Copy a 2-D block (rows of contiguous samples) with whole-cache-line vector stores, ordinary or
non-temporal: the copy kernels ``loader_breakdown`` compares with NumPy's slice assignment.

Why: a DataLoader batch (64 windows x 129 ch x 2 s = 33 MB float32) does not fit in the CPU
caches, so each window is written to lines that are not cached. NumPy's 2-D slice assignment
(``out[:, a:b] = chunk[:, c:d]``) writes them with narrow stores; each line is then first read
from DRAM (read for ownership) and written back later. Stores of a whole 64-byte line at once,
aligned, may let the CPU skip that read; non-temporal (streaming) stores bypass the caches
altogether. ``benchmarks/loader_breakdown.py`` measures all three per window, into a
cache-resident buffer and into a batch slot. The copy is bit for bit (bytes move, nothing is
converted).

:func:`copy2d` falls back to NumPy when numba is missing, for non-contiguous rows, mismatched
dtypes or small blocks. numba is imported (and the kernel compiled, cached on disk) on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: blocks smaller than this many bytes are copied by NumPy (the compiled call's fixed cost wins)
MIN_BYTES = 16 << 10
ENABLED = True

_kernel: Any = None  # the compiled copies (ordinary, streaming), False when numba is unavailable


def _load() -> Any:
    global _kernel
    if _kernel is None:
        try:
            from benchmarks import _rowcopy_numba

            _kernel = (_rowcopy_numba.copy_rows, _rowcopy_numba.stream_rows)
        except Exception:  # noqa: BLE001 - no numba / no LLVM target: NumPy does it
            _kernel = False
    return _kernel


def copy2d(dst: np.ndarray, src: np.ndarray, streaming: bool = False) -> None:
    """``dst[...] = src`` for 2-D arrays of one shape and dtype, bit for bit; rows of whole-line
    aligned vector stores (non-temporal with ``streaming``) when both arrays' rows are contiguous
    (any row strides)."""
    if (not ENABLED or dst.ndim != 2 or dst.shape != src.shape or dst.dtype != src.dtype
            or dst.nbytes < MIN_BYTES or not dst.flags.writeable):
        dst[...] = src
        return
    item = dst.itemsize
    if dst.strides[1] != item or src.strides[1] != item or dst.strides[0] < 0 or src.strides[0] < 0:
        dst[...] = src
        return
    if np.may_share_memory(dst, src):  # overlapping blocks: NumPy handles the order
        dst[...] = src
        return
    kernel = _load()
    if kernel is False:
        dst[...] = src
        return
    kernel[streaming](dst, src)
