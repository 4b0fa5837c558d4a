"""One vocabulary of compression names and levels, shared by every format.

``compression`` / ``level`` mean the same codec and setting in HDF5, Zarr and NumPy+Parquet:

==============  =====================================================  =========  =======
name            what it is                                             levels     default
==============  =====================================================  =========  =======
``none``        raw little-endian samples (also ``compression=None``)  --         --
``zstd``        byte-shuffle + Zstandard                               1..22      5
``blosc-zstd``  Blosc (byte-shuffle, zstd inside), single-threaded    1..9       5
``blosc-lz4``   Blosc (byte-shuffle, lz4 inside): fastest decode      1..9       5
``gzip``        byte-shuffle + DEFLATE (zlib)                          1..9       4
``lzf``         HDF5's built-in LZF (HDF5 only)                        --         --
==============  =====================================================  =========  =======

``"default"`` names the default codec, :data:`DEFAULT_COMPRESSION` (``blosc-zstd`` level 5);
``None`` means *no* compression, as it does in h5py, zarr and pandas.

Zarr stores use only codecs of the Zarr v3 specification (so tensorstore and zarrs read them too):
the specification has byte-shuffle only inside Blosc, so Zarr's ``zstd`` and ``gzip`` are plain
Zstandard / gzip without shuffle (EEGBCI counts: 3.3x instead of 3.8x); ``blosc-zstd`` is the
shuffled, portable choice.

An integer-stored signal (ADC counts, see :mod:`eegbench.quantization`) may additionally use a
``delta`` filter (difference of consecutive samples along time, inside each chunk) before the
codec; Zarr and NumPy+Parquet store it (in Zarr as ``numcodecs.delta``, which is *not* in the v3
specification: only zarr-python with numcodecs reads such a store).

An unknown name, an out-of-range level or a codec the format cannot store raises
:class:`~eegbench.errors.UnsupportedCodecError`; nothing silently falls back to "no compression".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numcodecs
import numpy as np

from .errors import UnsupportedCodecError

# name -> (min level, max level, default level); None means "takes no level"
_LEVELS: dict[str, tuple[int, int, int] | None] = {
    "none": None,
    "zstd": (1, 22, 5),
    "blosc-zstd": (1, 9, 5),
    "blosc-lz4": (1, 9, 5),
    "gzip": (1, 9, 4),
    "lzf": None,
}
COMPRESSIONS: tuple[str, ...] = tuple(_LEVELS)
#: the codec ``compression="default"`` (and the CLI's default) stands for
DEFAULT_COMPRESSION = "blosc-zstd"
#: the name of the default codec, accepted wherever a compression name is
DEFAULT = "default"

# Blosc must not start its own threads inside DataLoader workers or forked children.
numcodecs.blosc.use_threads = False


@dataclass(frozen=True)
class CodecSpec:
    """A validated compression choice.

    ``compression`` is a name from :data:`COMPRESSIONS`; ``level`` is ``None`` for codecs without
    levels; ``delta`` adds a sample-difference filter (integer storage only).
    """

    compression: str = "none"
    level: int | None = None
    delta: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CodecSpec:
        return cls(compression=obj["compression"], level=obj.get("level"), delta=bool(obj.get("delta")))

    @property
    def label(self) -> str:
        """Short human label, e.g. ``blosc-zstd-5+delta``."""
        text = self.compression if self.level is None else f"{self.compression}-{self.level}"
        return text + ("+delta" if self.delta else "")


def resolve(compression: str | None, level: int | None = None, *, delta: bool = False,
            supported: frozenset[str] | None = None, format_name: str = "") -> CodecSpec:
    """Validate a compression name and level and fill in the default level.

    ``compression=None`` means no compression (``"none"``), as in h5py, zarr and pandas;
    ``"default"`` (:data:`DEFAULT`) means :data:`DEFAULT_COMPRESSION`. ``supported`` restricts
    the names (a format's own list); ``format_name`` is used in the error message.
    """
    name = "none" if compression is None else str(compression).lower()
    if name == DEFAULT:
        name = DEFAULT_COMPRESSION
    if name not in _LEVELS:
        raise UnsupportedCodecError(
            f"unknown compression {compression!r}; choose one of: {', '.join((DEFAULT, *COMPRESSIONS))}")
    if supported is not None and name not in supported:
        raise UnsupportedCodecError(
            f"the {format_name or 'chosen'} format cannot store {name!r}; "
            f"it supports: {', '.join(sorted(supported))}")
    limits = _LEVELS[name]
    if limits is None:
        if level is not None:
            raise UnsupportedCodecError(f"compression {name!r} takes no level (got level={level!r})")
        return CodecSpec(name, None, delta=bool(delta) and name != "none")
    lo, hi, default = limits
    if level is None:
        level = default
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not lo <= int(level) <= hi:
        raise UnsupportedCodecError(f"level for {name!r} must be an integer in {lo}..{hi}, got {level!r}")
    return CodecSpec(name, int(level), delta=bool(delta))


def numcodecs_pipeline(spec: CodecSpec, dtype: np.dtype) -> list[numcodecs.abc.Codec]:
    """The numcodecs filters + compressor that encode one C-ordered chunk for ``spec``.

    Used by the NumPy+Parquet format for writing and by every fast reader for decoding, so a
    chunk written by Zarr with the equivalent v3 codecs decodes with the same objects.
    """
    dtype = np.dtype(dtype).newbyteorder("<")
    itemsize = dtype.itemsize
    pipeline: list[numcodecs.abc.Codec] = []
    if spec.delta:
        pipeline.append(numcodecs.Delta(dtype=dtype.str))
    name = spec.compression
    if name == "none":
        pass
    elif name == "zstd":
        pipeline += [numcodecs.Shuffle(elementsize=itemsize), numcodecs.Zstd(level=spec.level)]
    elif name in ("blosc-zstd", "blosc-lz4"):
        pipeline.append(numcodecs.Blosc(cname=name.split("-")[1], clevel=spec.level,
                                        shuffle=numcodecs.Blosc.SHUFFLE, blocksize=0))
    elif name == "gzip":
        pipeline += [numcodecs.Shuffle(elementsize=itemsize), numcodecs.Zlib(level=spec.level)]
    else:
        raise UnsupportedCodecError(f"compression {name!r} has no numcodecs equivalent; use HDF5 for it")
    return pipeline


def encode_chunk(chunk: np.ndarray, pipeline: list[numcodecs.abc.Codec]) -> bytes:
    """Encode one chunk (C order, little-endian) through ``pipeline``."""
    buf: Any = np.ascontiguousarray(chunk)
    for codec in pipeline:
        buf = codec.encode(buf)
    return bytes(buf) if not isinstance(buf, bytes) else buf


def decode_chunk(data: bytes | memoryview, pipeline: list[numcodecs.abc.Codec], dtype: np.dtype,
                 shape: tuple[int, ...]) -> np.ndarray:
    """Decode bytes made by :func:`encode_chunk` back to an array of ``shape``.

    Raises whatever the codec raises on corrupt input; callers wrap it in
    :class:`~eegbench.errors.CorruptStoreError` with the file name.
    """
    buf: Any = data
    delta = bool(pipeline) and isinstance(pipeline[0], numcodecs.Delta)
    for codec in reversed(pipeline[1:] if delta else pipeline):
        buf = codec.decode(buf)
    arr = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<"))
    n = math.prod(shape)
    if arr.size != n:
        raise ValueError(f"decoded {arr.size} values, expected {n}")
    arr = arr.reshape(shape)
    return undelta(arr) if delta else arr


def undelta(arr: np.ndarray) -> np.ndarray:
    """Inverse of ``numcodecs.Delta`` (prefix sum of the flattened chunk, wrapping), bit exact.

    ``numcodecs.Delta.decode`` runs ``np.cumsum`` in int16, which NumPy does ~4x slower than in
    32-bit; modular arithmetic makes the unsigned 32-bit sum, truncated to the stored width,
    identical bit for bit (and overflow is well defined for unsigned integers).
    """
    if arr.dtype.kind not in "iu":
        return numcodecs.Delta(dtype=arr.dtype.str).decode(arr).reshape(arr.shape)
    flat = arr.reshape(-1)
    u32 = np.dtype("<u4")
    if arr.dtype.itemsize == 4:
        acc = np.cumsum(flat.view(u32), dtype=u32)
    elif arr.dtype.itemsize == 2:
        acc = np.cumsum(flat.view("<u2").astype(u32), dtype=u32).astype("<u2")
    else:
        return numcodecs.Delta(dtype=arr.dtype.str).decode(arr).reshape(arr.shape)
    return acc.view(arr.dtype).reshape(arr.shape)
