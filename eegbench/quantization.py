"""Integer (ADC count) storage that reconstructs float32 samples bit for bit.

EDF/BDF/BrainVision store 16/24-bit integers; MNE turns them into volts with a per-channel
affine map. Storing the integers plus that map compresses ~2.7x better than the float32 volts
(measured on EEGBCI: 3.8x vs 1.4x with blosc-zstd) and loses nothing, *provided* the float32
reconstruction is bitwise equal to the float32 samples. This module owns that contract:

    volts_float32 = float32(((counts * scale) + offset) * gain)     (float64 arithmetic, per channel)

The operation order mirrors MNE's EDF reader (``data * cal + offsets`` then ``* units``), so the
reader's own calibration reproduces its output exactly. Every block written in integer mode is
verified against the float32 samples; a mismatch means the recording is stored as float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

_KERNEL: Any = None  # the compiled calibration kernel, False when none is available or EEGBENCH_NUMBA=0
_KERNEL_CHECKS = False  # the kernel checks its own bounds (the C one: ValueError; numba's does not)


def _kernel() -> Any:
    """The compiled body of :meth:`Quantization.calibrate_into`, or False: the C kernel built with
    the package (``calibrate`` of ``eegbench/_ckernels.c``; a call costs ~0.3 us), else the numba one (compiled on
    first use; its import costs ~0.3 s a process and a call ~2-3 us), else False (NumPy). All three
    give the same bits. ``EEGBENCH_NUMBA=0`` forces NumPy (same bits, ~3-4x slower per window)."""
    global _KERNEL, _KERNEL_CHECKS
    if _KERNEL is None:
        _KERNEL = False
        if os.environ.get("EEGBENCH_NUMBA", "1") != "0":
            try:
                from ._ckernels import calibrate

                _KERNEL_CHECKS = True
            except ImportError:  # not built here (no C compiler at install)
                try:
                    from ._kernels_numba import calibrate
                except Exception:  # numba missing or unusable on this machine: NumPy gives the same bits
                    calibrate = False
            _KERNEL = calibrate
    return _KERNEL


class QuantizationMismatch(Exception):
    """Internal: a block's samples are not on the quantization grid (store float32 instead)."""


@dataclass(frozen=True, eq=False)
class Quantization:
    """Per-channel affine map from integer ADC counts to volts.

    ``scale``, ``offset``, ``gain`` are float64 arrays of length n_channels; ``dtype`` is the
    integer type of the stored counts (``int16`` or ``int32``).
    """

    scale: np.ndarray
    offset: np.ndarray
    gain: np.ndarray
    dtype: str = "int16"

    def __post_init__(self) -> None:
        for name in ("scale", "offset", "gain"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        if not (self.scale.shape == self.offset.shape == self.gain.shape) or self.scale.ndim != 1:
            raise ValueError("scale, offset and gain must be 1-D arrays of one length")
        if self.dtype not in ("int16", "int32"):
            raise ValueError(f"count dtype must be int16 or int32, got {self.dtype}")
        # Decided once, because reconstruction is on every read's hot path:
        # x + (+0.0) differs from x only for x == -0.0, which counts * scale cannot give when
        # scale > 0, and x + (-0.0) == x always; x * 1.0 == x always.
        object.__setattr__(self, "_add_offset", not bool(np.all(
            (self.offset == 0) & (np.signbit(self.offset) | (self.scale > 0)))))
        object.__setattr__(self, "_mul_gain", not bool(np.all(self.gain == 1.0)))
        # parameters shared bitwise by every channel are applied as scalars (2-3x faster than a
        # broadcast column); bit patterns are compared so 0.0 and -0.0 stay distinct
        shared = self.scale.size > 0 and all(
            bool(np.all(p.view(np.uint64) == p.view(np.uint64)[0])) for p in (self.scale, self.offset, self.gain))
        object.__setattr__(self, "_shared", shared)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Quantization) and self.dtype == other.dtype
                and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in ("scale", "offset", "gain")))

    @property
    def n_channels(self) -> int:
        return int(self.scale.size)

    def pick(self, channels: np.ndarray | None) -> Quantization:
        """The map for a subset of channels (indices)."""
        if channels is None:
            return self
        return Quantization(self.scale[channels], self.offset[channels], self.gain[channels], self.dtype)

    def reconstruct(self, counts: np.ndarray, channels: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
        """Counts -> float32 volts. ``counts`` rows are the channels ``channels`` (indices into
        this map; None: all), already picked. Writes into ``out`` (float32) when given."""
        return self.finish(counts.astype(np.float64), channels, out)  # astype: never aliases counts

    def finish(self, x: np.ndarray, channels: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`reconstruct` from counts already converted to float64 in ``x`` (changed in place).

        The same float64 operations in the same order as the contract in the module docstring,
        with exact identities skipped and the last product rounded once straight into float32.
        """
        if self._shared:
            s, o, g = float(self.scale[0]), float(self.offset[0]), float(self.gain[0])
        elif channels is None:
            s, o, g = self.scale[:, None], self.offset[:, None], self.gain[:, None]
        else:
            s, o, g = self.scale[channels, None], self.offset[channels, None], self.gain[channels, None]
        x *= s
        if self._add_offset:
            x += o
        if out is None:
            out = np.empty(x.shape, dtype=np.float32)
        if self._mul_gain:
            np.multiply(x, g, out=out, casting="same_kind")  # float64 product, rounded once to float32
        else:
            out[...] = x
        return out

    def calibrate_into(self, src: np.ndarray, a: int, b: int, channels: np.ndarray | None,
                       out: np.ndarray, o0: int = 0) -> np.ndarray:
        """``out[:, o0:o0 + b - a]`` = volts of counts ``src[channels, a:b]`` in one fused pass.

        ``src`` is a 2-D array of counts whose rows are *all* channels of this map (a chunk or a
        whole recording, not a picked copy); ``channels`` are row indices (None: all rows);
        ``out`` is float32 with one row per selected channel. Bitwise equal to
        :meth:`reconstruct` (same float64 operations in the same order, rounded once to float32),
        without temporaries: the compiled kernel (C, else numba) when available, else NumPy.
        """
        kernel = _kernel()
        if kernel is not False and out.dtype == np.float32 and src.ndim == out.ndim == 2:
            rows = self._all_rows() if channels is None else np.ascontiguousarray(channels, dtype=np.int64)
            if _KERNEL_CHECKS:  # the C kernel checks everything it indexes (ValueError, nothing written)
                try:
                    kernel(src, a, b, rows, self.scale, self.offset, self.gain, out, o0)
                    return out
                except TypeError:  # a dtype or layout it was not built for: NumPy below
                    kernel = False
        if kernel is not False and out.dtype == np.float32 and src.ndim == out.ndim == 2:
            n = self.scale.size
            # numba's kernel does not check bounds: everything it indexes is checked here
            if not (src.shape[0] == n and 0 <= a <= b <= src.shape[1] and out.shape[0] == rows.size
                    and 0 <= o0 and o0 + b - a <= out.shape[1]
                    and (channels is None or rows.size == 0 or (rows.min() >= 0 and rows.max() < n))):
                raise ValueError(f"calibrate_into: counts {src.shape}[{a}:{b}] rows {rows.size} do not fit "
                                 f"out {out.shape} at {o0} for {n} channels")
            try:
                kernel(src, a, b, rows, self.scale, self.offset, self.gain, out, o0)
                return out
            except Exception:  # an input type the kernel was not built for: NumPy below
                pass
        view = src[:, a:b] if channels is None else src[channels, a:b]
        self.reconstruct(view, channels, out=out[:, o0:o0 + b - a])
        return out

    def _all_rows(self) -> np.ndarray:
        rows = self.__dict__.get("_rows")
        if rows is None:
            rows = np.arange(self.scale.size, dtype=np.int64)
            object.__setattr__(self, "_rows", rows)
        return rows

    def to_counts(self, samples: np.ndarray) -> np.ndarray:
        """Float32 volts -> integer counts, verified to reconstruct bit for bit.

        Raises :class:`QuantizationMismatch` if any sample is off the grid or out of range.
        """
        x = samples.astype(np.float64)
        x /= self.gain[:, None]
        x -= self.offset[:, None]
        x /= self.scale[:, None]
        if not np.isfinite(x).all():
            raise QuantizationMismatch("non-finite samples")
        np.rint(x, out=x)
        info = np.iinfo(self.dtype)
        # float32 volts of counts near the type's limits can round one step past them (2**31 for
        # int32); clip, and let the bitwise check below decide (a value truly out of range fails it)
        np.clip(x, info.min, info.max, out=x)
        counts = x.astype(self.dtype)
        back = self.reconstruct(counts)
        if not np.array_equal(back.view(np.uint32), np.ascontiguousarray(samples, dtype=np.float32).view(np.uint32)):
            raise QuantizationMismatch("samples are not on the quantization grid")
        return counts

    # --- JSON-friendly form (stored in the channels table) ---------------------------------
    def to_columns(self) -> dict[str, Any]:
        return {"q_scale": self.scale, "q_offset": self.offset, "q_gain": self.gain}

    @classmethod
    def from_columns(cls, scale: Any, offset: Any, gain: Any, dtype: str) -> Quantization:
        return cls(np.asarray(scale), np.asarray(offset), np.asarray(gain), dtype)


def choose_dtype(digital_min: np.ndarray, digital_max: np.ndarray) -> str:
    """Smallest integer dtype (int16/int32) that holds the given count range."""
    lo, hi = float(np.min(digital_min)), float(np.max(digital_max))
    return "int16" if lo >= -32768 and hi <= 32767 else "int32"


def from_mne_raw(raw: Any) -> Quantization | None:
    """The calibration MNE used to read ``raw`` from an integer file, if it is known.

    Supports MNE's EDF/BDF/GDF reader (``cal``, ``offsets``, ``units`` per channel) and readers
    that scale integers by ``raw._cals`` alone (BrainVision, integer FIF). Returns ``None`` when
    the data were not read from integers or were modified; the writer verifies every block anyway.
    """
    n = len(raw.ch_names)
    cals = np.asarray(getattr(raw, "_cals", np.ones(n)), dtype=np.float64)
    extras = getattr(raw, "_raw_extras", None) or [{}]
    extra = extras[0] if isinstance(extras[0], dict) else {}
    if len(extras) == 1 and {"cal", "offsets", "units"} <= set(extra) and np.all(cals == 1.0):
        # MNE's EDF/BDF/GDF reader keeps cal/offsets/units/digital_min/max per channel *after*
        # ``exclude`` and calibrates channel i of the raw with index raw._read_picks[0][i]
        # (which also follows raw.pick()/reorder_channels() on a raw that is not preloaded).
        read_picks = getattr(raw, "_read_picks", None)
        idx = np.asarray(read_picks[0] if read_picks is not None and len(read_picks) == 1 else np.arange(n))
        size = len(extra["cal"])
        if idx.size != n or (n and (idx.min() < 0 or idx.max() >= size)):
            return None
        sel = np.asarray(extra.get("sel", np.arange(size)))
        n_samps = extra.get("n_samps")
        if n_samps is not None and len(sel) == size:
            per_record = np.asarray(n_samps)[sel[idx]]
            if per_record.size and np.any(per_record != per_record.max()):
                return None  # MNE resamples channels recorded at a lower rate: off any grid
        cal = np.asarray(extra["cal"], dtype=np.float64)[idx]
        off = np.asarray(extra["offsets"], dtype=np.float64)[idx]
        gain = np.asarray(extra["units"], dtype=np.float64)[idx]
        dmin = np.asarray(extra.get("digital_min", np.full(size, -32768)), dtype=np.float64)[idx]
        dmax = np.asarray(extra.get("digital_max", np.full(size, 32767)), dtype=np.float64)[idx]
        return Quantization(cal, off, gain, choose_dtype(dmin, dmax))
    fmt = {"int16": "int16", "short": "int16", "int32": "int32", "int": "int32"}.get(
        str(extra.get("fmt", extra.get("dtype", ""))), None)
    if fmt is not None and cals.size == n and np.all(cals > 0):
        return Quantization(cals, np.zeros(n), np.ones(n), fmt)
    return None
