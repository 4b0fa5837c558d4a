"""Compiled copies of 2-D blocks with whole-cache-line stores (numba; imported on first use):
:func:`copy_rows` (ordinary stores) and :func:`stream_rows` (non-temporal stores) are the copy
kernels ``benchmarks/loader_breakdown.py`` compares with NumPy (the library's own streaming copy is
``copy_window(stream=True)`` in ``eegbench/_ckernels.c``).

Each row: bytes one at a time until the destination is 64-byte aligned, then 64-byte vector
loads (any alignment) and 64-byte aligned stores, then the tail bytes. The vector type is
``<16 x i32>``: LLVM emits one AVX-512 store per cache line where the CPU has AVX-512, two
AVX2 or four SSE stores elsewhere. :func:`copy_rows` uses ordinary stores, :func:`stream_rows`
non-temporal (streaming) ones, which bypass the caches, then an ``sfence``. Bytes move
unchanged: the copy is exact for every dtype.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _line_codegen(streaming: bool):
    def codegen(context, builder, sig, args):
        vec = ir.VectorType(ir.IntType(32), 16)
        d = builder.inttoptr(args[0], vec.as_pointer())
        s = builder.inttoptr(args[1], vec.as_pointer())
        store = builder.store(builder.load(s, align=1), d, align=64)
        if streaming:
            store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return codegen


@intrinsic
def _line(typingctx, dst, src):  # noqa: ARG001 - numba's intrinsic signature
    """Copy the 64 bytes at address ``src`` (any alignment) to address ``dst`` (64-byte aligned)."""
    return types.void(types.intp, types.intp), _line_codegen(False)


@intrinsic
def _stream(typingctx, dst, src):  # noqa: ARG001 - numba's intrinsic signature
    """As :func:`_line`, with a non-temporal store."""
    return types.void(types.intp, types.intp), _line_codegen(True)


@intrinsic
def _sfence(typingctx):  # noqa: ARG001 - numba's intrinsic signature
    """Order the streaming stores before everything after (another process may read them next)."""

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _word(typingctx, dst, src):  # noqa: ARG001 - numba's intrinsic signature
    """Copy the 4 bytes at address ``src`` to address ``dst``."""

    def codegen(context, builder, sig, args):
        word = ir.IntType(32).as_pointer()
        builder.store(builder.load(builder.inttoptr(args[1], word), align=1),
                      builder.inttoptr(args[0], word), align=1)
        return context.get_dummy_value()

    return types.void(types.intp, types.intp), codegen


@intrinsic
def _byte(typingctx, dst, src):  # noqa: ARG001 - numba's intrinsic signature
    """Copy the byte at address ``src`` to address ``dst``."""

    def codegen(context, builder, sig, args):
        byte = ir.IntType(8).as_pointer()
        builder.store(builder.load(builder.inttoptr(args[1], byte)), builder.inttoptr(args[0], byte))
        return context.get_dummy_value()

    return types.void(types.intp, types.intp), codegen


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _copy(dst, src, streaming):  # pragma: no cover - compiled
    """The one body of :func:`copy_rows` and :func:`stream_rows` (``streaming``: non-temporal
    stores and an ``sfence``; a constant in each caller, so LLVM takes the branch out of the loop)."""
    rows = dst.shape[0]
    row_bytes = dst.shape[1] * dst.itemsize
    if rows > 1 and dst.strides[0] == row_bytes and src.strides[0] == row_bytes:
        row_bytes *= rows  # both contiguous: one long row
        rows = 1
    d0 = numba.intp(dst.ctypes.data)
    s0 = numba.intp(src.ctypes.data)
    ds = dst.strides[0]
    ss = src.strides[0]
    for r in range(rows):
        d = d0 + r * ds
        delta = s0 + r * ss - d  # source address = destination address + delta
        end = d + row_bytes
        p = d
        head = min(d + (-d) % 64, end)
        if d % 4 == 0 and delta % 4 == 0:  # 4-byte samples: head and tail a word at a time
            while p + 4 <= head:
                _word(p, p + delta)
                p += 4
        while p < head:
            _byte(p, p + delta)
            p += 1
        while p + 64 <= end:
            if streaming:
                _stream(p, p + delta)
            else:
                _line(p, p + delta)
            p += 64
        while p + 4 <= end:
            _word(p, p + delta)
            p += 4
        while p < end:
            _byte(p, p + delta)
            p += 1
    if streaming:
        _sfence()


@numba.njit(cache=True, nogil=True, boundscheck=False)
def copy_rows(dst, src):  # pragma: no cover - compiled
    """``dst[...] = src`` for 2-D arrays of one shape and dtype whose rows are contiguous (any
    row strides, checked by the caller). Addresses are signed 64-bit throughout: mixing unsigned
    and signed integers makes numba compute in float64."""
    _copy(dst, src, False)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def stream_rows(dst, src):  # pragma: no cover - compiled
    """:func:`copy_rows` with streaming stores (and an ``sfence`` at the end)."""
    _copy(dst, src, True)
