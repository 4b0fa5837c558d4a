"""Zarr v3 array->bytes codecs for eegbench's archive codecs, backed by imagecodecs.

A chunk is coded as one 2-D image (channels x time) by imagecodecs (CharLS, OpenJPEG, libjxl,
OpenJPH); nothing here compresses anything itself. The JSON form of each codec is exactly the one
imagecodecs' own Zarr 3 codecs use (``imagecodecs.zarr``, registered by the ``imagecodecs-zarr``
entry points from imagecodecs 2026.5.10, Python >= 3.12)::

    {"name": "imagecodecs_jpegls", "configuration": {"level": 0}}
    {"name": "imagecodecs_jpeg2k", "configuration": {"level": 0, "reversible": true}}
    {"name": "imagecodecs_jpegxl", "configuration": {"lossless": true}}
    {"name": "imagecodecs_htj2k",  "configuration": {"level": 0.0, "reversible": true}}

so zarr-python reads an eegbench archive store with either those entry points or these classes
(registered by :func:`register`, which eegbench calls when it writes or reads such a store). The
names are outside the Zarr v3 specification: tensorstore and zarrs cannot read them.

Encoding reshapes the incoming chunk to the chunk shape before coding it: a preceding
``numcodecs.fixedscaleoffset`` (int16 -> uint16 for the unsigned-only JPEG-LS / JPEG XL) hands
over a flat array, and a flat array would be coded as a 1 x N image (no prediction across
channels). Only lossless settings can be constructed: a lossy configuration raises ValueError.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

#: eegbench codec name -> (zarr codec name, lossless configuration)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "jpegls": ("imagecodecs_jpegls", {"level": 0}),
    "jpeg2k": ("imagecodecs_jpeg2k", {"level": 0, "reversible": True}),
    "jpegxl": ("imagecodecs_jpegxl", {"lossless": True}),
    "htj2k": ("imagecodecs_htj2k", {"level": 0.0, "reversible": True}),
}
ZARR_NAMES = {zname: name for name, (zname, _) in CONFIGS.items()}


def _same(cfg: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal configurations, with ``true`` never standing in for ``1`` or the reverse."""
    return cfg.keys() == expected.keys() and all(
        cfg[k] == v and isinstance(cfg[k], bool) == isinstance(v, bool) for k, v in expected.items())


def lossless_config(zarr_name: str, cfg: dict[str, Any] | None) -> str:
    """The eegbench codec name of a stored array->bytes codec, if its configuration is the lossless
    one eegbench writes; ValueError otherwise (a lossy or unknown setting is never accepted)."""
    name = ZARR_NAMES.get(zarr_name)
    if name is None:
        raise ValueError(f"unknown archive codec {zarr_name!r}")
    if not _same(dict(cfg or {}), CONFIGS[name][1]):
        raise ValueError(f"codec {zarr_name!r} has configuration {cfg!r}; only the lossless "
                         f"{CONFIGS[name][1]!r} is accepted")
    return name


def _coders(name: str) -> tuple[Any, Any]:
    import imagecodecs

    if name == "jpegls":
        return (lambda a: imagecodecs.jpegls_encode(a, level=0)), imagecodecs.jpegls_decode
    if name == "jpeg2k":
        return (lambda a: imagecodecs.jpeg2k_encode(a, level=0, reversible=True)), imagecodecs.jpeg2k_decode
    if name == "jpegxl":
        return (lambda a: imagecodecs.jpegxl_encode(a, lossless=True)), imagecodecs.jpegxl_decode
    if name == "htj2k":
        return (lambda a: imagecodecs.htj2k_encode(a, level=0.0, reversible=True)), imagecodecs.htj2k_decode
    raise ValueError(name)


def decoder(name: str) -> Any:
    """bytes -> 2-D array for eegbench codec ``name`` (the fast readers use it directly)."""
    return _coders(name)[1]


@dataclass(frozen=True)
class _ImageCodec(ArrayBytesCodec):
    """A lossless imagecodecs coder of one channels x time chunk (see the module docstring)."""

    is_fixed_size = False
    eegbench_name: ClassVar[str] = ""

    @property
    def zarr_name(self) -> str:
        return CONFIGS[self.eegbench_name][0]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _ImageCodec:
        name, cfg = parse_named_configuration(data, CONFIGS[cls.eegbench_name][0], require_configuration=False)
        lossless_config(name, cfg)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.zarr_name, "configuration": dict(CONFIGS[self.eegbench_name][1])}

    def _encode_sync(self, chunk_array: Any, chunk_spec: Any) -> Any:
        arr = np.ascontiguousarray(chunk_array.as_numpy_array()).reshape(chunk_spec.shape)
        if arr.ndim != 2:
            arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 2 else arr.reshape(1, -1)
        return chunk_spec.prototype.buffer.from_bytes(_coders(self.eegbench_name)[0](arr))

    def _decode_sync(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        decoded = _coders(self.eegbench_name)[1](chunk_bytes.as_numpy_array())
        decoded = np.asarray(decoded).view(chunk_spec.dtype.to_native_dtype()).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    async def _encode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Jpegls(_ImageCodec):
    eegbench_name: ClassVar[str] = "jpegls"


@dataclass(frozen=True)
class Jpeg2k(_ImageCodec):
    eegbench_name: ClassVar[str] = "jpeg2k"


@dataclass(frozen=True)
class Jpegxl(_ImageCodec):
    eegbench_name: ClassVar[str] = "jpegxl"


@dataclass(frozen=True)
class Htj2k(_ImageCodec):
    eegbench_name: ClassVar[str] = "htj2k"


CLASSES: dict[str, type[_ImageCodec]] = {"jpegls": Jpegls, "jpeg2k": Jpeg2k, "jpegxl": Jpegxl, "htj2k": Htj2k}
_registered = False


def register() -> None:
    """Make zarr-python resolve the ``imagecodecs_*`` names, unless an implementation (e.g. the
    ``imagecodecs-zarr`` entry points) is already registered."""
    global _registered
    if _registered:
        return
    from zarr.registry import get_codec_class, register_codec

    for name, cls in CLASSES.items():
        zname = CONFIGS[name][0]
        try:
            get_codec_class(zname)
        except KeyError:
            register_codec(zname, cls)
    _registered = True


def codec(name: str) -> _ImageCodec:
    """The Zarr v3 codec object eegbench writes for archive codec ``name``."""
    register()
    return CLASSES[name]()
