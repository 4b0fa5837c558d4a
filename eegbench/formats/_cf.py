"""What a generic reader needs to see volts, channel names and times without eegbench.

CF conventions (what xarray, netCDF and h5netcdf decode): a variable of integer counts with
``scale_factor`` and ``add_offset`` attributes means ``counts * scale_factor + add_offset``. xarray
computes that in float64 (float64 attributes on int16 counts), so with

    scale_factor = q_scale * q_gain,  add_offset = q_offset * q_gain     (float64)

``float32(counts * scale_factor + add_offset)`` is eegbench's float32 volts
``float32(((counts * q_scale) + q_offset) * q_gain)`` -- *when* it is, which :func:`cf_scale_offset`
proves before a store claims it: for int16 counts over all 65,536 possible counts, for int32 on
every stored block (:func:`cf_exact`). CF has one scale per variable, so the attributes are only
written when every channel shares one calibration (EDF/BDF files usually do, EEGBCI does); the
per-channel form always stays in the store's channels table and the array's ``eegbench`` attributes.

The time axis is stored as the integer sample index with ``scale_factor = 1 / sfreq`` (a few bytes
per recording compressed, where float64 seconds would add 8 bytes per sample).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..quantization import Quantization

CHANNEL_DIM, TIME_DIM = "channel", "time"


def shared_parameters(q: Quantization) -> tuple[float, float, float] | None:
    """(scale, offset, gain) when every channel has bitwise the same ones, else None."""
    if q.n_channels == 0:
        return None
    params = []
    for p in (q.scale, q.offset, q.gain):
        bits = p.view(np.uint64)
        if not np.all(bits == bits[0]):
            return None
        params.append(float(p[0]))
    return params[0], params[1], params[2]


def _cf_volts(counts: np.ndarray, scale_factor: float, add_offset: float) -> np.ndarray:
    """What xarray's CF decoding gives, cast to float32 (float64 multiply, then add)."""
    x = counts.astype(np.float64)
    x *= scale_factor
    x += add_offset
    return x.astype(np.float32)


@lru_cache(maxsize=64)
def _int16_exact(scale: float, offset: float, gain: float, scale_factor: float, add_offset: float) -> bool:
    q = Quantization(np.array([scale]), np.array([offset]), np.array([gain]), "int16")
    counts = np.arange(-32768, 32768, dtype=np.int16)[None, :]
    return bool(np.array_equal(q.reconstruct(counts).view(np.uint32),
                               _cf_volts(counts, scale_factor, add_offset).view(np.uint32)))


def cf_scale_offset(q: Quantization | None) -> tuple[float, float] | None:
    """``(scale_factor, add_offset)`` (float64) reproducing ``q``'s float32 volts bit for bit, or None.

    None when channels differ in calibration, or (int16) when some count would decode differently.
    For int32 counts the pair is a candidate that :func:`cf_exact` must confirm on the data."""
    if q is None:
        return None
    shared = shared_parameters(q)
    if shared is None:
        return None
    scale, offset, gain = shared
    scale_factor, add_offset = scale * gain, offset * gain
    if q.dtype == "int16" and not _int16_exact(scale, offset, gain, scale_factor, add_offset):
        return None
    return scale_factor, add_offset


def cf_exact(q: Quantization, cf: tuple[float, float], counts: np.ndarray) -> bool:
    """Whether the CF pair decodes every count of ``counts`` to ``q``'s float32 volts (int16: proven once)."""
    if q.dtype == "int16":
        return True  # cf_scale_offset checked every possible count
    ref = q.pick(np.zeros(counts.shape[0], dtype=np.int64)).reconstruct(counts)
    return bool(np.array_equal(ref.view(np.uint32), _cf_volts(counts, *cf).view(np.uint32)))


def signal_attributes(layout: Any, cf: tuple[float, float] | None) -> dict[str, Any]:
    """CF attributes of the signal variable: ``scale_factor``/``add_offset`` (counts), ``units``,
    ``long_name``, ``sampling_rate_hz``."""
    attrs: dict[str, Any] = {"long_name": "EEG signals (rows: channels, columns: samples)"}
    units = set(getattr(layout, "units", ()) or ())
    decoded = layout.quantization is None or cf is not None
    if decoded and len(units) == 1:
        attrs["units"] = units.pop()
    if cf is not None:
        attrs["scale_factor"], attrs["add_offset"] = float(cf[0]), float(cf[1])
    if getattr(layout, "sfreq", None):
        attrs["sampling_rate_hz"] = float(layout.sfreq)
    return attrs


def time_index_dtype(n_times: int) -> np.dtype:
    return np.dtype("<i4") if n_times < 2**31 else np.dtype("<i8")


def time_attributes(sfreq: float) -> dict[str, Any]:
    """The time coordinate: sample index x (1 / sfreq) = seconds from the first stored sample."""
    return {"long_name": "time from the first stored sample, in seconds (sample index / sfreq)",
            "scale_factor": 1.0 / float(sfreq), "add_offset": 0.0}
