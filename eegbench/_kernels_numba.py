"""Compiled (numba) body of :func:`eegbench.quantization.Quantization.calibrate_into`: the fallback
of the C kernel (``eegbench/_ckernels.c``) where the package was built without it.

Imported lazily, only when integer-stored samples are first read: importing numba costs ~0.3 s.
No fast-math flags: LLVM may then neither contract ``x * s + o`` into an FMA nor reorder, so
every operation rounds exactly as NumPy's float64 ufuncs do (checked bit for bit by
``tests/test_kernels.py`` against the NumPy reference on random and edge-case inputs).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def calibrate(src, a, b, rows, scale, offset, gain, out, o0):  # pragma: no cover - compiled
    """``out[i, o0:o0+b-a] = float32(((float64(src[rows[i], a:b]) * scale[r]) + offset[r]) * gain[r])``."""
    n = b - a
    for i in range(rows.shape[0]):
        r = rows[i]
        s = scale[r]
        o = offset[r]
        g = gain[r]
        # row slices: LLVM then sees two unit-stride 1-D loops and vectorises them (~6x faster
        # than indexing the 2-D arrays with offsets, measured)
        srow = src[r, a:b]
        orow = out[i, o0:o0 + n]
        for j in range(n):
            orow[j] = np.float32((np.float64(srow[j]) * s + o) * g)
