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
``jpegls``      JPEG-LS, lossless (CharLS via imagecodecs / hdf5plugin) --        --
``jpeg2k``      JPEG 2000 reversible (OpenJPEG via imagecodecs)        --         --
``jpegxl``      JPEG XL lossless (libjxl via imagecodecs)              --         --
``htj2k``       High-Throughput JPEG 2000 reversible (OpenJPH)         --         --
==============  =====================================================  =========  =======

``"default"`` names the default codec, :data:`DEFAULT_COMPRESSION` (``blosc-zstd`` level 5);
``None`` means *no* compression, as it does in h5py, zarr and pandas.

Zarr stores use only codecs of the Zarr v3 specification (so tensorstore and zarrs read them too):
the specification has byte-shuffle only inside Blosc, so Zarr's ``zstd`` and ``gzip`` are plain
Zstandard / gzip without shuffle (EEGBCI counts: 3.3x instead of 3.8x); ``blosc-zstd`` is the
shuffled, portable choice.

**Archive codecs** (``jpegls``, ``jpeg2k``, ``jpegxl``, ``htj2k``): predictive lossless image
coders from well-kept libraries (imagecodecs' numcodecs codecs; hdf5plugin's FCIDECOMP and HTJ2K
filters in HDF5), applied to each all-channels x time chunk as a 16-bit (``jpeg2k``: up to 24-bit)
grayscale image. They store integer ADC counts only (float32 raises
:class:`~eegbench.errors.UnsupportedCodecError`), take no level (they are lossless by construction:
no lossy setting can be chosen), and cost ~0.1-3 ms to decode a chunk, so they suit archives and
downloads rather than training loops. JPEG-LS and JPEG XL code unsigned samples: int16 counts pass
through ``numcodecs.FixedScaleOffset(offset=-32768, scale=1, astype=uint16)`` first (exact).
Counts wider than a codec holds (24-bit BDF/BrainVision counts are stored as int32) are refused
before anything is written; ``jpeg2k`` holds them when every count fits in 24 signed bits
(checked on every block: OpenJPEG silently truncates wider values).

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
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UnsupportedCodecError

if TYPE_CHECKING:
    import numcodecs

# name -> (min level, max level, default level); None means "takes no level"
_LEVELS: dict[str, tuple[int, int, int] | None] = {
    "none": None,
    "zstd": (1, 22, 5),
    "blosc-zstd": (1, 9, 5),
    "blosc-lz4": (1, 9, 5),
    "gzip": (1, 9, 4),
    "lzf": None,
    "jpegls": None,
    "jpeg2k": None,
    "jpegxl": None,
    "htj2k": None,
}
#: archive (image) codecs -> the widest signed integer counts they reproduce exactly, in bits
IMAGE_CODEC_BITS: dict[str, int] = {"jpegls": 16, "jpeg2k": 24, "jpegxl": 16, "htj2k": 16}
#: why a format cannot carry a codec (used in the error message)
WHY_NOT: dict[tuple[str, str], str] = {
    ("hdf5", "jpeg2k"): "hdf5plugin has no JPEG 2000 filter (its Htj2k filter is the High-Throughput "
                        "variant: compression='htj2k')",
    ("hdf5", "jpegxl"): "hdf5plugin has no JPEG XL filter",
}
COMPRESSIONS: tuple[str, ...] = tuple(_LEVELS)
#: the codec ``compression="default"`` (and the CLI's default) stands for
DEFAULT_COMPRESSION = "blosc-zstd"
#: the name of the default codec, accepted wherever a compression name is
DEFAULT = "default"

_NUMCODECS: Any = None


def load_numcodecs() -> Any:
    """numcodecs, imported on first use (``import eegbench`` and ``open`` do not need it), with
    Blosc's own threads turned off: they must not start inside DataLoader workers or forked children."""
    global _NUMCODECS
    if _NUMCODECS is None:
        import numcodecs
        import numcodecs.blosc

        numcodecs.blosc.use_threads = False
        _NUMCODECS = numcodecs
    return _NUMCODECS


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

    @property
    def integer_only(self) -> bool:
        """True for the archive (image) codecs, which store integer counts only."""
        return self.compression in IMAGE_CODEC_BITS


def formats_carrying(name: str) -> list[str]:
    """Names of the built-in formats that can store compression ``name``."""
    from .formats import available_formats, get_backend

    return [f for f in available_formats() if name in get_backend(f).compressions]


def check_integer_storage(spec: CodecSpec, dtype: str | np.dtype, what: str = "") -> None:
    """Refuse a stored dtype that ``spec`` cannot reproduce bit for bit (archive codecs).

    Archive codecs store integer counts only, at most :data:`IMAGE_CODEC_BITS` bits.
    """
    bits = IMAGE_CODEC_BITS.get(spec.compression)
    if bits is None:
        return
    dtype = np.dtype(dtype)
    where = f"{what}: " if what else ""
    if dtype.kind not in "iu":
        raise UnsupportedCodecError(
            f"{where}compression {spec.compression!r} stores integer ADC counts only, but this recording would be "
            f"stored as {dtype} (its samples are not on a known integer grid, or integer=False); "
            "use a general codec (blosc-zstd, zstd, gzip) for float32 data")
    if dtype.itemsize * 8 > 16 and bits < 24:
        raise UnsupportedCodecError(
            f"{where}compression {spec.compression!r} holds at most {bits}-bit counts, but this recording's counts "
            f"are {dtype} (24-bit BDF/BrainVision data); use compression='jpeg2k' (24-bit) or a general codec")
    if spec.delta:
        raise UnsupportedCodecError(
            f"{where}compression {spec.compression!r} predicts samples itself; the delta filter cannot be combined "
            "with it (delta=False)")


def check_counts_range(spec: CodecSpec, block: np.ndarray) -> None:
    """Refuse a block of counts wider than the archive codec of ``spec`` reproduces exactly."""
    bits = IMAGE_CODEC_BITS.get(spec.compression)
    if bits is None or block.size == 0 or block.dtype.itemsize * 8 <= bits:
        return
    lo, hi = int(block.min()), int(block.max())
    if lo < -(1 << (bits - 1)) or hi >= 1 << (bits - 1):
        raise UnsupportedCodecError(
            f"compression {spec.compression!r} reproduces counts of at most {bits} signed bits exactly; this "
            f"recording has counts in {lo}..{hi}; use a general codec (blosc-zstd, zstd, gzip)")


#: int16 counts -> uint16 image samples (x + 32768) for the unsigned-only image codecs; exact both ways
OFFSET_FILTER: dict[str, Any] = {"id": "fixedscaleoffset", "scale": 1, "offset": -32768, "dtype": "<i2",
                                 "astype": "<u2"}


def image_codec_config(name: str) -> dict[str, Any]:
    """The numcodecs config (imagecodecs' codec ids) of archive codec ``name``: lossless settings only."""
    return {
        "jpegls": {"id": "imagecodecs_jpegls", "level": 0},  # NEAR = 0: lossless
        "jpeg2k": {"id": "imagecodecs_jpeg2k", "level": 0, "reversible": True},  # 5/3 wavelet, no quantization
        "jpegxl": {"id": "imagecodecs_jpegxl", "lossless": True},
        "htj2k": {"id": "imagecodecs_htj2k", "level": 0.0, "reversible": True},
    }[name]


def needs_offset(name: str, dtype: str | np.dtype) -> bool:
    """Whether int16 counts go through :data:`OFFSET_FILTER` before codec ``name`` (unsigned-only coders)."""
    return name in ("jpegls", "jpegxl") and np.dtype(dtype).newbyteorder("<") == np.dtype("<i2")


def _register_imagecodecs() -> Any:
    """imagecodecs' numcodecs codecs, registered with numcodecs' registry (once)."""
    numcodecs = load_numcodecs()
    try:
        import imagecodecs.numcodecs as icn
    except ImportError as exc:  # pragma: no cover - imagecodecs is a dependency
        raise UnsupportedCodecError("the archive codecs need the imagecodecs package (pip install imagecodecs)") from exc
    ids = [image_codec_config(n)["id"] for n in IMAGE_CODEC_BITS]
    missing = []
    for codec_id in ids:
        try:
            numcodecs.get_codec({"id": codec_id})
        except (ValueError, KeyError):
            missing.append(codec_id)
        except TypeError:
            pass  # registered (needs arguments)
    if missing:
        icn.register_codecs(codecs=missing, verbose=False)
    return icn


def image_codec(name: str) -> numcodecs.abc.Codec:
    """The imagecodecs numcodecs codec of archive codec ``name`` (lossless settings)."""
    numcodecs = load_numcodecs()
    _register_imagecodecs()
    return numcodecs.get_codec(dict(image_codec_config(name)))


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
        why = WHY_NOT.get((format_name, name))
        carried = [f for f in formats_carrying(name) if f != format_name] if name in IMAGE_CODEC_BITS else []
        raise UnsupportedCodecError(
            f"the {format_name or 'chosen'} format cannot store {name!r}"
            + (f": {why}" if why else "")
            + (f"; formats that can: {', '.join(carried)}" if carried else "")
            + f"; it supports: {', '.join(sorted(supported))}")
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
    numcodecs = load_numcodecs()
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
    elif name in IMAGE_CODEC_BITS:
        check_integer_storage(spec, dtype)
        if needs_offset(name, dtype):
            pipeline.append(numcodecs.get_codec(dict(OFFSET_FILTER)))
        pipeline.append(image_codec(name))
    else:
        raise UnsupportedCodecError(f"compression {name!r} has no numcodecs equivalent; use HDF5 for it")
    return pipeline


def encode_chunk(chunk: np.ndarray, pipeline: list[numcodecs.abc.Codec]) -> bytes:
    """Encode one chunk (C order, little-endian) through ``pipeline``."""
    chunk = np.ascontiguousarray(chunk)
    buf: Any = chunk
    for codec in pipeline:
        if getattr(codec, "codec_id", "").startswith("imagecodecs_") and isinstance(buf, np.ndarray):
            buf = buf.reshape(chunk.shape)  # an image codec codes channels x time as a 2-D image
        buf = codec.encode(buf)
    return bytes(buf) if not isinstance(buf, bytes) else buf


def decode_chunk(data: bytes | memoryview, pipeline: list[numcodecs.abc.Codec], dtype: np.dtype,
                 shape: tuple[int, ...]) -> np.ndarray:
    """Decode bytes made by :func:`encode_chunk` back to an array of ``shape``.

    Raises whatever the codec raises on corrupt input; callers wrap it in
    :class:`~eegbench.errors.CorruptStoreError` with the file name.
    """
    numcodecs = load_numcodecs()
    buf: Any = data
    delta = bool(pipeline) and isinstance(pipeline[0], numcodecs.Delta)
    for codec in reversed(pipeline[1:] if delta else pipeline):
        buf = unoffset(buf) if is_offset_filter(codec) else codec.decode(buf)
    arr = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<"))
    n = math.prod(shape)
    if arr.size != n:
        raise ValueError(f"decoded {arr.size} values, expected {n}")
    arr = arr.reshape(shape)
    return undelta(arr) if delta else arr


def is_offset_filter(codec: Any) -> bool:
    """Whether ``codec`` is exactly :data:`OFFSET_FILTER` (int16 -> uint16 by +32768)."""
    numcodecs = load_numcodecs()
    return (isinstance(codec, numcodecs.FixedScaleOffset) and codec.scale == 1 and codec.offset == -32768
            and codec.dtype == np.dtype("<i2") and codec.astype == np.dtype("<u2"))


def unoffset(buf: Any) -> np.ndarray:
    """Inverse of :data:`OFFSET_FILTER`: uint16 image samples -> int16 counts (u - 32768, as flipping
    the top bit), bit for bit what ``FixedScaleOffset.decode`` returns, without its float64 pass."""
    u = np.asarray(buf) if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype="<u2")
    return np.bitwise_xor(u.view("<u2"), np.uint16(0x8000)).view("<i2")


def undelta(arr: np.ndarray) -> np.ndarray:
    """Inverse of ``numcodecs.Delta`` (prefix sum of the flattened chunk, wrapping), bit exact.

    ``numcodecs.Delta.decode`` runs ``np.cumsum`` in int16, which NumPy does ~4x slower than in
    32-bit; modular arithmetic makes the unsigned 32-bit sum, truncated to the stored width,
    identical bit for bit (and overflow is well defined for unsigned integers).
    """
    numcodecs = load_numcodecs()
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
