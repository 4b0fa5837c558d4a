"""Compiled copy of a window out of a leased map of uncompressed chunks (numba; imported on first
use by :mod:`eegbench.formats._chunks`).

A window of ``C`` channels spanning ``k`` chunks is ``C * k`` short row pieces (e.g. 64 x 3 pieces
of 40-640 bytes for a 2-s window of 1-s chunks at 160 Hz); NumPy copies them at ~40 ns a row plus
~1 us of Python per chunk, which on small windows costs as much as the bytes. One call here
copies every piece: 64-byte vector loads and stores (any alignment), then 4-byte words, then
bytes. Bytes move unchanged: the copy is exact for every dtype.
"""

from __future__ import annotations

import numba

# the byte-moving intrinsics are the batch copy's (one definition of each)
from eegbench.io._rowcopy_numba import _byte, _word
from eegbench.io._rowcopy_numba import _line_unaligned as _line


@numba.njit(cache=True, nogil=True, boundscheck=False)
def copy_window(out, view, offsets, start, stop, chunk_samples, itemsize):  # pragma: no cover - compiled
    """``out[c, :] = samples [start, stop) of channel c`` for every channel ``c < out.shape[0]``, where
    chunk ``i`` is ``(out.shape[0], chunk_samples)`` samples of ``itemsize`` bytes, C order, at byte
    ``offsets[i]`` of ``view`` (uint8). ``out``'s rows must be contiguous (the caller checks) and every
    chunk wholly inside ``view`` (the caller's checked offsets and size). False, nothing written:
    a chunk's offset is negative (not checked yet in this process)."""
    cs = chunk_samples
    first, last = start // cs, (stop - 1) // cs
    for ci in range(first, last + 1):
        if offsets[ci] < 0:
            return False
    rows = out.shape[0]
    d0 = numba.intp(out.ctypes.data)
    s0 = numba.intp(view.ctypes.data)
    drow = out.strides[0]
    srow = cs * itemsize
    # row by row (each output row written once, front to back, its pieces read from the chunks in
    # turn): 5-10 % faster than chunk by chunk on windows that come from DRAM (measured)
    for r in range(rows):
        for ci in range(first, last + 1):
            c0 = ci * cs
            a = max(start, c0) - c0
            d = d0 + r * drow + (c0 + a - start) * itemsize
            delta = s0 + offsets[ci] + a * itemsize + r * srow - d  # source address = destination + delta
            end = d + (min(stop, c0 + cs) - c0 - a) * itemsize
            p = d
            while p + 64 <= end:
                _line(p, p + delta)
                p += 64
            while p + 4 <= end:
                _word(p, p + delta)
                p += 4
            while p < end:
                _byte(p, p + delta)
                p += 1
    return True
