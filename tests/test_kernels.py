"""The fused calibration kernels (C built with the package, numba as its fallback) are bitwise equal
to the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from eegbench import quantization as qm
from eegbench.quantization import Quantization

EDGE_SCALES = [1.0, -1.0, 1e-7, -3.0517578125e-05, 5e-324, 1e300, 0.1, 2.0**-40, 7.62939453125e-08]
EDGE_OFFSETS = [0.0, -0.0, 1e-3, -1e-3, 0.5, 1e-310, -2.5e-5]
EDGE_GAINS = [1.0, 1e-6, -1.0, 1e-3, 3.0, 0.999999]


def _random_map(rng: np.random.Generator, n: int, dtype: str) -> Quantization:
    def pick(edge: list[float], lo: float, hi: float) -> np.ndarray:
        values = rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
        edges = rng.random(n) < 0.5
        values[edges] = rng.choice(edge, int(edges.sum()))
        return values

    return Quantization(pick(EDGE_SCALES, 1e-9, 1e-5), pick(EDGE_OFFSETS, 0, 1e-2), pick(EDGE_GAINS, 1e-7, 2), dtype)


def _counts(rng: np.random.Generator, shape: tuple[int, int], dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    flat = x.reshape(-1)
    k = max(1, flat.size // 20)
    flat[rng.integers(0, flat.size, k)] = rng.choice(np.array([info.min, info.max, 0, -1, 1], dtype=dtype), k)
    return x


def _use(kernel: str, monkeypatch) -> None:
    """Make ``calibrate_into`` use ``kernel`` ("c", "numba" or "numpy"), skipping when unavailable."""
    if kernel == "c":
        fn, checks = pytest.importorskip("eegbench._ckernels", reason="C kernels not built").calibrate, True
    elif kernel == "numba":
        pytest.importorskip("numba")
        from eegbench._kernels_numba import calibrate as fn
        checks = False
    else:
        fn, checks = False, False
    monkeypatch.setattr(qm, "_KERNEL", fn)
    monkeypatch.setattr(qm, "_KERNEL_CHECKS", checks)


KERNELS = ["c", "numba", "numpy"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", ["int16", "int32"])
@pytest.mark.parametrize("shared", [False, True])
def test_calibrate_into_is_bitwise_equal_to_reconstruct(dtype, shared, kernel, monkeypatch):
    _use(kernel, monkeypatch)
    rng = np.random.default_rng(7 + shared + (dtype == "int32"))
    for trial in range(40):
        n_ch = int(rng.integers(1, 40))
        n = int(rng.integers(1, 700))
        q = _random_map(rng, n_ch, dtype)
        if shared:  # one parameter set for every channel (the scalar path of the reference)
            q = Quantization(np.full(n_ch, q.scale[0]), np.full(n_ch, q.offset[0]), np.full(n_ch, q.gain[0]), dtype)
        src = _counts(rng, (n_ch, n), dtype)
        if trial % 3 == 0:
            src.flags.writeable = False  # cached chunks are read-only
        a = int(rng.integers(0, n))
        b = int(rng.integers(a, n + 1))
        channels = None if trial % 2 else rng.integers(0, n_ch, int(rng.integers(1, n_ch + 3)))
        picked = src[:, a:b] if channels is None else src[channels, a:b]
        with np.errstate(all="ignore"):  # 1e300 scales overflow to inf in both
            expected = q.reconstruct(picked, channels)
        n_out = src.shape[0] if channels is None else len(channels)
        o0 = int(rng.integers(0, 5))
        out = np.full((n_out, o0 + (b - a) + 3), np.nan, dtype=np.float32)
        with np.errstate(all="ignore"):
            q.calibrate_into(src, a, b, channels, out, o0)
        np.testing.assert_array_equal(out[:, o0:o0 + b - a].view(np.uint32), expected.view(np.uint32))
        assert np.isnan(out[:, :o0]).all() and np.isnan(out[:, o0 + b - a:]).all()  # nothing outside written


def test_compiled_kernel_is_used_when_built(monkeypatch):
    """The C kernel when the package built it, else numba's when installed; ``EEGBENCH_NUMBA=0``: NumPy."""
    monkeypatch.setattr(qm, "_KERNEL", None)
    monkeypatch.setattr(qm, "_KERNEL_CHECKS", False)
    monkeypatch.delenv("EEGBENCH_NUMBA", raising=False)
    kernel = qm._kernel()
    try:
        from eegbench._ckernels import calibrate
    except ImportError:
        pytest.importorskip("numba")
        assert kernel is not False and not qm._KERNEL_CHECKS
    else:
        assert kernel is calibrate and qm._KERNEL_CHECKS
    monkeypatch.setattr(qm, "_KERNEL", None)
    monkeypatch.setenv("EEGBENCH_NUMBA", "0")
    assert qm._kernel() is False


def test_c_kernel_checks_everything_it_indexes_and_falls_back_on_layouts(monkeypatch):
    """Bounds the caller got wrong are a ValueError with nothing written (never a read or write out of
    bounds); dtypes and layouts the kernel was not built for are a TypeError, on which
    ``calibrate_into`` calibrates with NumPy (the same bits)."""
    _use("c", monkeypatch)
    fn = qm._KERNEL
    q = Quantization(np.full(3, 0.5), np.zeros(3), np.ones(3), "int16")
    src = np.arange(30, dtype=np.int16).reshape(3, 10)
    rows, out = np.arange(3, dtype=np.int64), np.full((3, 10), np.nan, np.float32)
    args = (q.scale, q.offset, q.gain)
    for bad in [dict(a=5, b=11), dict(a=6, b=5), dict(a=-1, b=3), dict(o0=1), dict(o0=-1),
                dict(rows=np.array([0, 3, 1], np.int64)), dict(rows=np.array([0, -1, 1], np.int64)),
                dict(rows=np.arange(2, dtype=np.int64))]:
        kw = dict(a=0, b=10, rows=rows, o0=0) | bad
        with pytest.raises(ValueError):
            fn(src, kw["a"], kw["b"], kw["rows"], *args, out, kw["o0"])
        assert np.isnan(out).all(), bad
    with pytest.raises(ValueError):  # one scale short
        fn(src, 0, 10, rows, q.scale[:2], q.offset, q.gain, out, 0)
    for bad_src in (src.astype(np.float32), src.astype(np.int64), src.astype(np.uint16), src.astype(">i2"),
                    src[:, ::2]):
        with pytest.raises(TypeError):
            fn(bad_src, 0, 5, rows, *args, out, 0)
    with pytest.raises(TypeError):
        fn(src, 0, 5, rows.astype(np.int32), *args, out, 0)
    frozen = np.zeros((3, 10), np.float32)
    frozen.flags.writeable = False
    with pytest.raises((TypeError, ValueError)):
        fn(src, 0, 10, rows, *args, frozen, 0)
    assert not frozen.any()
    # through calibrate_into: a strided source is calibrated by NumPy, bit for bit the reference
    wide = np.arange(60, dtype=np.int16).reshape(3, 20)
    got = np.empty((3, 10), np.float32)
    q.calibrate_into(wide[:, ::2], 0, 10, None, got)
    np.testing.assert_array_equal(got.view(np.uint32), q.reconstruct(wide[:, ::2]).view(np.uint32))


@pytest.mark.parametrize("kernel", ["c", "numba"])
def test_calibrate_into_refuses_shapes_that_do_not_fit(kernel, monkeypatch):
    _use(kernel, monkeypatch)
    q = Quantization(np.ones(3), np.zeros(3), np.ones(3), "int16")
    src = np.zeros((3, 10), dtype=np.int16)
    with pytest.raises(ValueError):
        q.calibrate_into(src, 0, 10, None, np.empty((3, 5), np.float32))
    with pytest.raises(ValueError):
        q.calibrate_into(src, 0, 5, np.array([0, 3]), np.empty((2, 5), np.float32))


def test_c_single_multiply_rows_are_bitwise_equal_to_reconstruct(monkeypatch):
    """The C kernel computes ``float32(x * k)`` with one multiply when that gives the same bits as
    ``((x * s) + o) * g`` (o = +-0.0 that cannot change a sign, and g == 1 or s a power of two with
    s * g normal). Every combination of scales at the edges of that rule (powers of two inside and
    outside its range, subnormal, negative, not a power of two), signed zero and other offsets, and
    gains whose product with the scale under- or overflows, against NumPy, bit for bit."""
    _use("c", monkeypatch)
    scales = [0.5, 1.0, 2.0, -0.5, -1.0, 2.0**-899, 2.0**-900, 2.0**-901, 2.0**899, 2.0**900, 2.0**901,
              2.0**-1074, 2.0**-1022, 0.25, 0.3, -3.0517578125e-05, 3.0517578125e-05]
    offsets = [0.0, -0.0, 1e-300, -1e-3]
    gains = [1.0, 1e-6, -1e-6, 2.0**-1000, 2.0**-100, 1e300, 2.0**1000, 0.0, -0.0, 3.0, np.inf, np.nan]
    grid = [(s, o, g) for s in scales for o in offsets for g in gains]
    for dtype in ("int16", "int32"):
        info = np.iinfo(dtype)
        edge = np.array([info.min, info.min + 1, -2, -1, 0, 1, 2, 12345, info.max - 1, info.max], dtype=dtype)
        rng = np.random.default_rng(3)
        x = np.concatenate([edge, rng.integers(info.min, info.max, 54, dtype=dtype, endpoint=True)])
        src = np.tile(x, (len(grid), 1))
        q = Quantization(np.array([p[0] for p in grid]), np.array([p[1] for p in grid]),
                         np.array([p[2] for p in grid]), dtype)
        with np.errstate(all="ignore"):
            expected = q.reconstruct(src)
            out = np.full(src.shape, np.nan, dtype=np.float32)
            q.calibrate_into(src, 0, src.shape[1], None, out)
        bad = np.flatnonzero((out.view(np.uint32) != expected.view(np.uint32)).any(axis=1))
        assert bad.size == 0, [grid[i] for i in bad[:5]]
