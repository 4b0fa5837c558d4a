"""Zarr v3 backend: one sharded array per recording, read through a direct byte-range fast path.

Layout of a store (a Zarr v3 group hierarchy; the core adds ``eegbench.json`` at the root)::

    zarr.json                         root group + consolidated metadata of everything below
    signals/zarr.json                 group
    signals/<fan>/zarr.json           group (fan-out: at most 1,000 recordings each, eegbench.io.layout)
    signals/<fan>/<key>/zarr.json           one group per recording (attributes: sampling_rate_hz, channel_names)
    signals/<fan>/<key>/signals/zarr.json   array (channel, time), dtype float32 | int16 | int32
    signals/<fan>/<key>/signals/c/0/<s>     shard s: encoded inner chunks, then the shard index
    signals/<fan>/<key>/channel/            coordinate: channel names (string)
    signals/<fan>/<key>/time/               coordinate: sample index, CF scale_factor = 1/sfreq -> seconds
    tables/<name>/zarr.json           1-D uint8 array holding one Parquet file (bytes + crc32c)
    tables/<name>/c/0                 its single chunk

Generic readers: the signal array has ``dimension_names`` ``["channel", "time"]`` and, when stored
as counts with one calibration for every channel, CF ``scale_factor``/``add_offset`` (float64,
proven bit-exact, see :mod:`._cf`) and ``units``, so ``xarray.open_zarr(store,
group="signals/<fan>/<key>")`` gives float volts with channel and time coordinates.

Each signal array uses the ``sharding_indexed`` codec. The inner chunk is
``(n_channels, chunk_samples)`` -- the unit a read decodes -- and a shard is a whole number of
inner chunks: the whole recording when its raw bytes fit in :data:`SHARD_MAX_BYTES`, else the
fewest equal shards that do, so a recording is a handful of files. The inner codec chain is
``[numcodecs.delta] -> bytes(little) -> <compression> -> crc32c`` where ``<compression>`` follows
:mod:`eegbench.codecs` with codecs of the Zarr v3 specification only: nothing, ``zstd``, ``blosc``
(byte-shuffle inside) or ``gzip`` -- tensorstore and zarrs read these stores. Only the opt-in
delta filter is a numcodecs codec outside the specification (zarr-python + numcodecs read it). Inner
chunks equal to the fill value (0) are not stored: index entry (2^64-1, 2^64-1), read back as
zeros. The shard index (n_chunks x (offset, nbytes) uint64 LE + crc32c) sits at the end of the
shard file.

Writing streams: zarr-python encodes the inner chunks (through an in-memory array with the inner
chunk shape and the same codecs, ~16 MiB of chunks per call, so the bytes are exactly what its
sharding codec would store), and the backend appends them to the shard file in order and
finishes each shard with its index. Nothing is ever read back or rewritten and memory stays at
about one incoming block, whatever the shard size. Every shard gets a file (an all-empty one is
just an index), so a missing file always means a damaged store. Arrays are created through a
store rooted at the array's own folder, so parallel workers never write a shared parent
``zarr.json``; :meth:`ZarrBackend.finalize` (one process, at the end) creates the groups and
consolidates the metadata.

Fast read path. zarr-python costs 0.7-1.9 ms of Python/asyncio overhead per read, several times
the decode of a 2-s window. :class:`ZarrSource` therefore bypasses it: per shard it reads and
checks the index once (cached on the source; entries must lie inside the file), then for the
inner chunks a request needs it fetches exactly their bytes -- one coalesced ``get_ranges`` per
shard through the store's :class:`~eegbench.io.ByteSource` (local: ``pread`` through the
process-wide capped file manager) -- verifies each crc32c (google_crc32c) and decodes with
byte-format-identical primitives: ``numcodecs.zstd``/``numcodecs.blosc`` decompress, ``zlib``
with a gzip header (what zarr's ``GzipCodec`` writes -- *not* the raw zlib stream
``numcodecs.Zlib`` expects), a numpy unshuffle and an int32 delta prefix sum (both ~2x faster
than the numcodecs versions). Decoded chunks are read-only and go through
:class:`~eegbench.formats._chunks.ChunkedSource`'s shared LRU. A source holds no descriptor;
the parsed shard indexes (``_h_*``) are dropped when pickled; nothing is read until the first
sample is requested.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import google_crc32c
import numpy as np

from ..codecs import (
    IMAGE_CODEC_BITS,
    OFFSET_FILTER,
    check_integer_storage,
    load_numcodecs,
    needs_offset,
    undelta,
    unoffset,
)
from ..errors import CorruptStoreError
from ..io.layout import fanout, signal_prefix
from ..manifest import HashingWriter, write_file
from . import SignalLayout, register
from ._cf import CHANNEL_DIM, TIME_DIM, cf_exact, cf_scale_offset, signal_attributes, time_attributes, time_index_dtype
from ._chunks import ChunkedSource

#: cap on a shard's raw (decoded) bytes; a recording above it is split into equal shards
SHARD_MAX_BYTES = 256 << 20

SIGNALS = "signals"
TABLES = "tables"
DATA = "signals"  # the signal array inside each recording's group: signals/<key>/signals
_EMPTY = 2**64 - 1  # sharding index sentinel: inner chunk not stored (fill value)
_INDEX_ENTRY = 16  # (offset, nbytes) as two little-endian uint64
_GROUP_BYTES = 16 << 20  # raw bytes of inner chunks encoded per zarr-python call while writing
_CRC = 4
#: bytes of the binding tag each shard file carries just before its index (unreferenced by the
#: index, so Zarr readers skip it): a 16-byte digest of the shard's contents (BLAKE2b of its index
#: and of the crc32c that ends every stored inner chunk), also kept in the sealed storage info
#: (``shard_tags``, hex, one per shard), + the shard number (uint64 LE). Deterministic (the same
#: recording converts to the same bytes) and bound to the contents: a shard file of another
#: recording, shard or store fails it unless it holds the very same samples.
_TAG = 24


def shard_tag(digest: str, shard: int) -> bytes:
    """The binding tag of shard ``shard`` whose sealed content digest is ``digest`` (hex)."""
    return bytes.fromhex(digest) + int(shard).to_bytes(8, "little")


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def shard_samples_for(layout: SignalLayout, max_bytes: int | None = None) -> int:
    """Samples per shard: all chunks of the recording, or the fewest equal shards under the cap."""
    max_bytes = SHARD_MAX_BYTES if max_bytes is None else max_bytes
    chunk_bytes = layout.n_channels * layout.chunk_samples * np.dtype(layout.dtype).itemsize
    max_chunks = max(1, max_bytes // max(chunk_bytes, 1))
    n_shards = -(-layout.n_chunks // max_chunks)
    return -(-layout.n_chunks // n_shards) * layout.chunk_samples  # balanced: little padding in the last


def _inner_codecs(layout: SignalLayout) -> tuple[list[Any], Any, list[Any]]:
    """(filters, serializer, compressors) of one inner chunk for ``layout.codec``."""
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ZstdCodec
    from zarr.codecs.numcodecs import Delta

    dtype = np.dtype(layout.dtype).newbyteorder("<")
    spec = layout.codec
    with warnings.catch_warnings():  # "numcodecs codecs are not in the v3 spec": delta only, opt-in
        warnings.simplefilter("ignore")
        filters = [Delta(dtype=dtype.str)] if spec.delta else []
        name = spec.compression
        # only codecs of the Zarr v3 specification (tensorstore, zarrs, zarr-python all read them):
        # the spec has byte-shuffle only inside blosc, so zstd and gzip are stored without it
        if name == "none":
            compressors: list[Any] = []
        elif name == "zstd":
            compressors = [ZstdCodec(level=spec.level, checksum=False)]
        elif name in ("blosc-zstd", "blosc-lz4"):
            compressors = [BloscCodec(cname=name.split("-")[1], clevel=spec.level, shuffle="shuffle",
                                      typesize=dtype.itemsize, blocksize=0)]
        elif name == "gzip":
            compressors = [GzipCodec(level=spec.level)]
        elif name in IMAGE_CODEC_BITS:  # archive codec: the image coder is the array->bytes step
            from zarr.codecs.numcodecs import FixedScaleOffset

            from . import _zarr_imagecodecs

            check_integer_storage(spec, dtype)
            offset = {k: v for k, v in OFFSET_FILTER.items() if k != "id"}
            filters = [FixedScaleOffset(**offset)] if needs_offset(name, dtype) else []
            return filters, _zarr_imagecodecs.codec(name), [Crc32cCodec()]
        else:  # the core validates against ZarrBackend.compressions first
            raise ValueError(f"zarr backend cannot store compression {name!r}")
    # the checksum is last so it covers the exact bytes on disk: corruption is caught before decoding
    return filters, BytesCodec(endian="little"), [*compressors, Crc32cCodec()]


def _attributes(layout: SignalLayout, shard_samples: int, cf: tuple[float, float] | None = None) -> dict[str, Any]:
    """Self-describing attributes so the array makes sense without eegbench: CF ``scale_factor`` /
    ``add_offset`` / ``units`` (xarray decodes them to volts) and eegbench's own description."""
    attrs: dict[str, Any] = {
        "dims": ["channel", "time"],
        "chunk_samples": layout.chunk_samples,
        "shard_samples": shard_samples,
        "codec": layout.codec.label,
        "stored_dtype": layout.dtype,
        "values": "float32 samples (units: see the channels table)" if layout.quantization is None
                  else "integer ADC counts (see formula)",
    }
    q = layout.quantization
    if q is not None:
        attrs.update({
            "q_scale": [float(v) for v in q.scale],
            "q_offset": [float(v) for v in q.offset],
            "q_gain": [float(v) for v in q.gain],
            "formula": "volts = float32(((counts * q_scale) + q_offset) * q_gain), float64 arithmetic, "
                       "per channel (row)",
        })
    return {**signal_attributes(layout, cf), "eegbench": attrs}


def _group_attributes(layout: SignalLayout) -> dict[str, Any]:
    """The recording group's attributes: what a generic reader shows first."""
    attrs: dict[str, Any] = {"sampling_rate_hz": layout.sfreq, "n_channels": layout.n_channels,
                             "n_times": layout.n_times, "signals": DATA,
                             "channel_names": list(layout.ch_names)}
    return {k: v for k, v in attrs.items() if v is not None}


_TIME_STEP = 1 << 20  # samples per chunk of the time coordinate
_GROUP_META: dict[str, Any] = {"attributes": {}, "zarr_format": 3, "node_type": "group"}  # as zarr-python writes


def _node_json(meta: dict[str, Any]) -> bytes:
    # compact: json's C encoder (an indented dump is pure Python, ~1 ms per node at 10,000 recordings)
    return json.dumps(meta, allow_nan=False).encode()


def _mkdirs(path: str, made: set[str]) -> None:
    """``mkdir -p path`` for one writer's new tree: ``made`` holds folders known to exist (seeded
    with the recording's own folder), so each new folder costs one ``mkdir`` and no failed one."""
    if path in made:
        return
    parent = os.path.dirname(path)
    if parent != path and parent not in made:
        if os.path.isdir(parent):
            made.add(parent)
        else:
            _mkdirs(parent, made)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    made.add(path)


def _write_node(folder: Path, meta: dict[str, Any], chunks: Iterable[tuple[str, bytes]] = (),
                made: set[str] | None = None) -> None:
    """One Zarr node written directly: its chunks, then its ``zarr.json`` (metadata last)."""
    made = set() if made is None else made
    base = os.fspath(folder)
    for rel, data in chunks:
        path = os.path.join(base, rel)
        _mkdirs(os.path.dirname(path), made)
        write_file(path, data)  # hashed while written: the manifest does not read it back
    _mkdirs(base, made)
    write_file(os.path.join(base, "zarr.json"), _node_json(meta))


def _coordinate_template(kind: str, dtype: str, sfreq: float | None) -> dict[str, Any]:
    """zarr.json of a coordinate array as zarr-python writes it (built by zarr-python once per kind,
    dtype and sampling rate, cached; callers patch ``shape`` and the chunk shape)."""
    import zarr
    from zarr.codecs import BloscCodec
    from zarr.storage import MemoryStore

    cache = _CACHE.__dict__.setdefault("coordinates", {})
    key = (kind, dtype, sfreq)
    meta = cache.get(key)
    if meta is None:
        store: dict[str, Any] = {}
        if kind == CHANNEL_DIM:
            zarr.create_array(MemoryStore(store), shape=(1,), dtype=str, chunks=(1,), dimension_names=(CHANNEL_DIM,),
                              attributes={"long_name": "channel name"})
        else:
            dt = np.dtype(dtype)
            zarr.create_array(MemoryStore(store), shape=(1,), dtype=dt, chunks=(1,), dimension_names=(TIME_DIM,),
                              compressors=[BloscCodec(cname="zstd", clevel=5, shuffle="shuffle",
                                                      typesize=dt.itemsize)],
                              attributes=time_attributes(sfreq or 1.0), fill_value=0)
        meta = json.loads(store["zarr.json"].to_bytes())
        if len(cache) > 64:
            cache.clear()
        cache[key] = meta
    return meta


def _shaped(meta: dict[str, Any], n: int, chunk: int) -> dict[str, Any]:
    out = dict(meta, shape=[n])
    out["chunk_grid"] = {**meta["chunk_grid"], "configuration": {**meta["chunk_grid"]["configuration"],
                                                                 "chunk_shape": [chunk]}}
    return out


def _coordinate_nodes(layout: SignalLayout) -> list[tuple[str, dict[str, Any], list[tuple[str, bytes]]]] | None:
    """``(name, zarr.json, [(chunk key, bytes)])`` of the channel and time coordinates, encoded
    without zarr-python (its array creation cost ~25 ms per recording): the bytes zarr-python
    writes (``vlen-utf8`` + ``zstd`` level 0; ``bytes`` + ``blosc`` zstd-5 shuffle; chunks equal
    to the fill value not stored), checked against it in tests/test_io.py. None: an unusual
    case left to zarr-python (:func:`_write_coordinates_zarr`)."""
    import numcodecs.vlen
    import numcodecs.zstd

    numcodecs = load_numcodecs()  # Blosc's own threads off (fork- and DataLoader-safe)
    nodes = []
    if layout.ch_names:
        if layout.n_channels < 1 or len(layout.ch_names) != layout.n_channels:
            return None
        meta = _shaped(_coordinate_template(CHANNEL_DIM, "str", None), layout.n_channels, layout.n_channels)
        names = np.array(list(layout.ch_names), dtype=object)
        chunks = [] if all(n == "" for n in layout.ch_names) else [
            ("c/0", numcodecs.zstd.Zstd(level=0, checksum=False).encode(numcodecs.vlen.VLenUTF8().encode(names)))]
        nodes.append((CHANNEL_DIM, meta, chunks))
    if layout.sfreq:
        if layout.n_times < 1:
            return None
        dtype = time_index_dtype(layout.n_times)
        step = min(layout.n_times, _TIME_STEP)
        meta = _shaped(_coordinate_template(TIME_DIM, dtype.str, float(layout.sfreq)), layout.n_times, step)
        try:  # zarr's BloscCodec passes typesize to numcodecs >= 0.16 only
            blosc = numcodecs.blosc.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.blosc.SHUFFLE, blocksize=0,
                                          typesize=dtype.itemsize)
        except TypeError:
            blosc = numcodecs.blosc.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.blosc.SHUFFLE, blocksize=0)
        chunks = []
        for j, a in enumerate(range(0, layout.n_times, step)):
            block = np.zeros(step, dtype=dtype)  # the last chunk padded with the fill value
            block[:min(step, layout.n_times - a)] = np.arange(a, min(a + step, layout.n_times), dtype=dtype)
            if block.any():
                chunks.append((f"c/{j}", blosc.encode(block)))
        nodes.append((TIME_DIM, meta, chunks))
    return nodes


def _write_coordinates(group_folder: Path, layout: SignalLayout, made: set[str] | None = None) -> None:
    """``channel`` (names) and ``time`` (sample index, CF-scaled to seconds) beside the signals, so
    ``xarray.open_zarr(store, group="signals/<key>")`` labels both axes."""
    nodes = _coordinate_nodes(layout)
    if nodes is None:
        _write_coordinates_zarr(group_folder, layout)
        return
    for name, meta, chunks in nodes:
        _write_node(group_folder / name, meta, chunks, made)


def _write_coordinates_zarr(group_folder: Path, layout: SignalLayout) -> None:
    """``channel`` (names) and ``time`` (sample index, CF-scaled to seconds) beside the signals, so
    ``xarray.open_zarr(store, group="signals/<key>")`` labels both axes -- through zarr-python (the
    reference :func:`_write_coordinates` reproduces byte for byte, and its fallback)."""
    import zarr
    from zarr.codecs import BloscCodec
    from zarr.storage import LocalStore

    if layout.ch_names:
        names = zarr.create_array(LocalStore(group_folder / CHANNEL_DIM), shape=(layout.n_channels,), dtype=str,
                                  chunks=(max(layout.n_channels, 1),), dimension_names=(CHANNEL_DIM,),
                                  attributes={"long_name": "channel name"}, overwrite=True)
        names[:] = np.array(layout.ch_names, dtype=object)
    if layout.sfreq:
        dtype = time_index_dtype(layout.n_times)
        step = 1 << 20
        times = zarr.create_array(
            LocalStore(group_folder / TIME_DIM), shape=(layout.n_times,), dtype=dtype,
            chunks=(min(layout.n_times, step),), dimension_names=(TIME_DIM,),
            compressors=[BloscCodec(cname="zstd", clevel=5, shuffle="shuffle", typesize=dtype.itemsize)],
            attributes=time_attributes(layout.sfreq), fill_value=0, overwrite=True)
        for a in range(0, layout.n_times, step):
            b = min(a + step, layout.n_times)
            times[a:b] = np.arange(a, b, dtype=dtype)


def _as_block(block: Any, layout: SignalLayout) -> np.ndarray:
    arr = np.asarray(block)
    dtype = np.dtype(layout.dtype)
    if arr.ndim != 2 or arr.shape[0] != layout.n_channels:
        raise ValueError(f"block of shape {arr.shape}, expected ({layout.n_channels}, n)")
    if arr.dtype != dtype:
        if not np.can_cast(arr.dtype, dtype, "safe"):  # never round or wrap samples silently
            raise TypeError(f"block dtype {arr.dtype} cannot be stored losslessly as {dtype}")
        arr = arr.astype(dtype)
    return arr


def _rmtree(path: Path) -> None:
    if path.is_dir():
        import shutil  # here, not at import: shutil loads bz2 and lzma at every Zarr open (issue #9)

        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class _ChunkEncoder:
    """Inner chunks encoded by zarr-python itself, a group of chunks per call.

    A throw-away in-memory array with the inner chunk shape and codec chain encodes exactly the
    bytes the sharding codec would put in a shard (edge chunks padded with the fill value,
    chunks equal to the fill value dropped), so we only have to frame them. Groups of
    ~:data:`_GROUP_BYTES` amortise zarr-python's per-call overhead and bound the memory.
    """

    def __init__(self, layout: SignalLayout, filters: list[Any], serializer: Any, compressors: list[Any]) -> None:
        import zarr
        from zarr.storage import MemoryStore

        self.chunk_samples = layout.chunk_samples
        chunk_bytes = layout.n_channels * layout.chunk_samples * np.dtype(layout.dtype).itemsize
        self.group_chunks = max(1, _GROUP_BYTES // max(chunk_bytes, 1))
        self.group_samples = self.group_chunks * layout.chunk_samples
        self.store: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.array = zarr.create_array(
                MemoryStore(self.store), shape=(layout.n_channels, self.group_samples), dtype=layout.dtype,
                chunks=layout.chunk_shape, filters=filters, serializer=serializer, compressors=compressors,
                fill_value=0, config={"write_empty_chunks": False, "order": "C"})
        self.keys = [f"c/0/{j}" for j in range(self.group_chunks)]

    def encode(self, data: np.ndarray) -> list[bytes | None]:
        """Encoded bytes of each chunk of ``data`` (None: equal to the fill value, not stored)."""
        n = -(-data.shape[1] // self.chunk_samples)
        for k in self.keys[:n]:  # a partial last chunk must be merged into fill, not into old bytes
            self.store.pop(k, None)
        self.array[:, :data.shape[1]] = data
        return [None if (buf := self.store.get(k)) is None else buf.to_bytes() for k in self.keys[:n]]


_CACHE = threading.local()  # per thread: an encoder is not safe to share between threads


def _codec_key(layout: SignalLayout, shard: int, filters: list[Any], serializer: Any,
               compressors: list[Any]) -> str:
    return json.dumps([layout.n_channels, layout.chunk_samples, layout.dtype, shard,
                       [c.to_dict() for c in (*filters, serializer, *compressors)]], sort_keys=True, default=str)


def _array_template(layout: SignalLayout, shard: int, filters: list[Any], serializer: Any,
                    compressors: list[Any]) -> dict[str, Any]:
    """zarr.json of a sharded signal array with these codecs, as zarr-python writes it (cached)."""
    import zarr
    from zarr.storage import MemoryStore

    cache = _CACHE.__dict__.setdefault("templates", {})
    key = _codec_key(layout, shard, filters, serializer, compressors)
    meta = cache.get(key)
    if meta is None:
        store: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.create_array(
                MemoryStore(store), shape=(layout.n_channels, shard), dtype=layout.dtype,
                chunks=layout.chunk_shape, shards={"shape": (layout.n_channels, shard), "index_location": "end"},
                filters=filters, serializer=serializer, compressors=compressors, fill_value=0,
                dimension_names=(CHANNEL_DIM, TIME_DIM), attributes={}, overwrite=True, config={"order": "C"})
        meta = json.loads(store["zarr.json"].to_bytes())
        if len(cache) > 16:
            cache.clear()
        cache[key] = meta
    return meta


class _DirectEncoder:
    """Inner chunks encoded without zarr-python for the plain chains ``bytes(little) ->
    [zstd | blosc | gzip] -> crc32c``: the same numcodecs compressors zarr-python's codecs call,
    the same padding of edge chunks with the fill value (0) and the same dropping of chunks equal
    to it, so the bytes are identical (tests/test_save_scaling.py) -- without zarr-python's
    asyncio round trip per call (~25 ms, most of the save of a short recording)."""

    def __init__(self, layout: SignalLayout, compress: Callable[[Any], bytes] | None) -> None:
        self.chunk_samples = layout.chunk_samples
        self.n_channels = layout.n_channels
        self.dtype = np.dtype(layout.dtype).newbyteorder("<")
        chunk_bytes = layout.n_channels * layout.chunk_samples * self.dtype.itemsize
        self.group_chunks = max(1, _GROUP_BYTES // max(chunk_bytes, 1))
        self.group_samples = self.group_chunks * layout.chunk_samples
        self.compress = compress

    def encode(self, data: np.ndarray) -> list[bytes | None]:
        """Encoded bytes of each chunk of ``data`` (None: equal to the fill value, not stored)."""
        cs, out = self.chunk_samples, []
        for a in range(0, data.shape[1], cs):
            chunk = data[:, a:a + cs]
            if not chunk.view(f"u{chunk.dtype.itemsize}").any():  # bitwise 0 (not -0.0): the fill value,
                # not stored (as zarr-python's write_empty_chunks=False)
                out.append(None)
                continue
            if chunk.shape[1] < cs:  # an edge chunk is padded with the fill value
                chunk = np.concatenate([chunk, np.zeros((self.n_channels, cs - chunk.shape[1]), chunk.dtype)], axis=1)
            raw = np.ascontiguousarray(chunk, dtype=self.dtype)
            buf = raw.tobytes() if self.compress is None else bytes(self.compress(raw))
            out.append(buf + google_crc32c.value(buf).to_bytes(_CRC, "little"))
        return out


def _direct_compressor(layout: SignalLayout, filters: list[Any], serializer: Any,
                       compressors: list[Any]) -> tuple[bool, Callable[[Any], bytes] | None]:
    """(usable, compress) for :class:`_DirectEncoder`: the chain must be plain and spec-only."""
    import numcodecs.gzip
    import numcodecs.zstd

    numcodecs = load_numcodecs()  # Blosc's own threads off (fork- and DataLoader-safe)
    if filters or np.dtype(layout.dtype).kind not in "iuf":
        return False, None
    if serializer.to_dict() not in ({"name": "bytes", "configuration": {"endian": "little"}}, {"name": "bytes"}):
        return False, None
    names = [c.to_dict()["name"] for c in compressors]
    if not names or names[-1] != "crc32c" or len(names) > 2:
        return False, None
    if len(names) == 1:
        return True, None
    cfg = compressors[0].to_dict().get("configuration") or {}
    if names[0] == "zstd":
        return True, numcodecs.zstd.Zstd(level=cfg["level"], checksum=cfg.get("checksum", False)).encode
    if names[0] == "gzip":
        return True, numcodecs.gzip.GZip(level=cfg["level"]).encode
    if names[0] == "blosc" and cfg.get("shuffle") in ("noshuffle", "shuffle", "bitshuffle"):
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[cfg["shuffle"]]
        try:  # zarr's BloscCodec passes typesize to numcodecs >= 0.16 only
            blosc = numcodecs.blosc.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle,
                                          blocksize=cfg.get("blocksize", 0), typesize=cfg["typesize"])
        except TypeError:
            blosc = numcodecs.blosc.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle,
                                          blocksize=cfg.get("blocksize", 0))
        return True, blosc.encode
    return False, None


def _encoder_for(layout: SignalLayout, filters: list[Any], serializer: Any,
                 compressors: list[Any]) -> _ChunkEncoder | _DirectEncoder:
    """An encoder for this chunk shape and codec chain, reused across recordings: direct for the
    plain chains, zarr-python's (:class:`_ChunkEncoder`) for the others (delta, archive codecs)."""
    cache = _CACHE.__dict__.setdefault("encoders", {})
    key = _codec_key(layout, 0, filters, serializer, compressors)
    enc = cache.get(key)
    if enc is None:
        if len(cache) > 16:
            cache.clear()
        direct, compress = _direct_compressor(layout, filters, serializer, compressors)
        enc = cache[key] = (_DirectEncoder(layout, compress) if direct
                            else _ChunkEncoder(layout, filters, serializer, compressors))
    return enc


class _ShardWriter:
    """Streams encoded inner chunks, in order, into shard files and appends each shard's index.

    Every shard gets a file, even one whose chunks are all empty (index of sentinels, valid for
    any Zarr reader), so a missing shard file always means a damaged store."""

    def __init__(self, folder: Path, chunks_per_shard: int, n_chunks: int, made: set[str] | None = None) -> None:
        self.folder, self.per_shard, self.n_chunks = folder, chunks_per_shard, n_chunks
        self.shard = -1
        self.crcs: list[int] = []  # the stored crc32c of each chunk of the open shard
        self.tags: list[str] = []  # per shard written: its content digest (hex)
        self.next = 0  # next chunk index
        self.fh: Any = None
        self.index = np.empty((chunks_per_shard, 2), dtype="<u8")
        self.offset = 0
        _mkdirs(os.fspath(folder), set() if made is None else made)

    def add(self, data: bytes | None) -> None:
        if self.next >= self.n_chunks:
            raise ValueError(f"more than {self.n_chunks} chunks")
        j = self.next % self.per_shard
        if j == 0:
            self._open(self.next // self.per_shard)
        if data is None:
            self.index[j] = _EMPTY
        else:
            self.fh.write(data)
            # the chunk's own crc32c (the last codec) covers its other bytes; a CRC over the whole
            # chunk would be the same constant for every chunk (CRC residue of a message + its CRC)
            self.crcs.append(int.from_bytes(data[-_CRC:], "little"))
            self.index[j] = (self.offset, len(data))
            self.offset += len(data)
        self.next += 1

    def _open(self, shard: int) -> None:
        self._close_shard()
        self.fh = HashingWriter(self.folder / str(shard))  # closed by _close_shard / _abort
        self.shard = shard
        self.crcs = []
        self.index[:] = _EMPTY  # chunks past the array's end (last shard) stay empty
        self.offset = 0

    def _close_shard(self) -> None:
        if self.fh is not None:
            raw = self.index.tobytes()
            digest = hashlib.blake2b(raw + np.asarray(self.crcs, dtype="<u4").tobytes(), digest_size=16).hexdigest()
            self.tags.append(digest)
            self.fh.write(shard_tag(digest, self.shard) + raw + google_crc32c.value(raw).to_bytes(_CRC, "little"))
            self.fh.close()
            self.fh = None

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:  # the caller's error propagates; the core discards the store
            self._abort()
        elif self.next != self.n_chunks:
            self._abort()
            raise ValueError(f"wrote {self.next} of {self.n_chunks} chunks")
        else:
            self._close_shard()

    def _abort(self) -> None:
        if self.fh is not None:
            self.fh.abort()
            self.fh = None


# ---------------------------------------------------------------------------------------------
# fast decoding
# ---------------------------------------------------------------------------------------------
class _Decompress:
    """numcodecs' ``zstd``/``blosc`` ``decompress``, imported on the first chunk decoded (building a
    source -- ``eegbench info``, a DataLoader's dataset -- needs no numcodecs). Pickles by name."""

    __slots__ = ("name", "fn")

    def __init__(self, name: str) -> None:
        self.name, self.fn = name, None

    def __call__(self, buf: Any) -> Any:
        fn = self.fn
        if fn is None:
            load_numcodecs()
            import importlib

            fn = self.fn = importlib.import_module(f"numcodecs.{self.name}").decompress
        return fn(buf)

    def __getstate__(self) -> str:
        return self.name

    def __setstate__(self, name: str) -> None:
        self.name, self.fn = name, None


class _Unshuffle:
    """Inverse of numcodecs' byte shuffle (planes of byte k of every element, k = 0..size-1).

    A class, not a closure: decode plans are pickled with their sources (spawn, joblib)."""

    def __init__(self, elementsize: int) -> None:
        self.elementsize = int(elementsize)
        self.utype = np.dtype(f"<u{self.elementsize}") if self.elementsize in (2, 4, 8) else None

    def __call__(self, buf: Any) -> Any:
        size = self.elementsize
        if size <= 1:
            return buf
        if self.utype is None:
            return load_numcodecs().Shuffle(elementsize=size).decode(buf)
        planes = np.frombuffer(buf, dtype=np.uint8)
        if planes.size % size:
            raise ValueError(f"shuffled buffer of {planes.size} bytes is not a multiple of {size}")
        planes = planes.reshape(size, -1)
        # rebuild each element from its byte planes, most significant first (vectorised shifts)
        out = planes[-1].astype(self.utype)
        for k in range(size - 2, -1, -1):
            out <<= 8
            out |= planes[k]
        return out


def _gunzip(buf: Any) -> bytes:
    """zarr's ``gzip`` codec writes a gzip member (header + trailer), not a raw zlib stream."""
    return zlib.decompress(buf, 16 + zlib.MAX_WBITS)


class _DecodePlan:
    """Decoder of one inner chunk for the codec chain recorded in the array metadata."""

    def __init__(self, codecs: list[dict[str, Any]], dtype: np.dtype, shape: tuple[int, int]) -> None:
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.shape = shape
        self.nbytes = shape[0] * shape[1] * self.dtype.itemsize
        names = [c["name"] for c in codecs]
        serializers = [i for i, n in enumerate(names) if n == "bytes" or n.startswith("imagecodecs_")]
        if len(serializers) != 1:
            raise ValueError(f"unsupported codec chain {names}")
        split = serializers[0]
        self.image: Callable[[Any], Any] | None = None  # archive codec: bytes -> 2-D array
        if names[split] != "bytes":
            from . import _zarr_imagecodecs

            name = _zarr_imagecodecs.lossless_config(names[split], codecs[split].get("configuration"))
            self.image = _zarr_imagecodecs.decoder(name)
        endian = (codecs[split].get("configuration") or {}).get("endian", "little") if self.image is None else "little"
        if endian != "little" and self.dtype.itemsize > 1:
            raise ValueError(f"unsupported byte order {endian!r}")
        self.delta = self.offset = False
        for codec in codecs[:split]:
            cfg = codec.get("configuration") or {}
            if codec["name"] == "numcodecs.fixedscaleoffset" and self.image is not None \
                    and {"id": "fixedscaleoffset", **cfg} == OFFSET_FILTER and self.dtype == np.dtype("<i2"):
                self.offset = True  # int16 counts stored as uint16 image samples (+32768)
                continue
            if codec["name"] != "numcodecs.delta" or np.dtype(cfg.get("dtype")) != self.dtype \
                    or cfg.get("astype") not in (None, cfg.get("dtype")):
                raise ValueError(f"unsupported array filter {codec}")
            self.delta = True
        after = codecs[split + 1:]
        self.crc = bool(after) and after[-1]["name"] == "crc32c"
        if self.crc:
            after = after[:-1]
        steps: list[Callable[[Any], Any]] = []
        for codec in reversed(after):  # decode order
            name, cfg = codec["name"], codec.get("configuration") or {}
            if name in ("zstd", "blosc"):
                steps.append(_Decompress(name))
            elif name == "gzip":
                steps.append(_gunzip)
            elif name == "numcodecs.shuffle":
                steps.append(_Unshuffle(int(cfg.get("elementsize") or self.dtype.itemsize)))
            else:
                raise ValueError(f"unsupported codec {name!r}")
        self.steps = steps

    def decode(self, data: Any) -> np.ndarray:
        """Decoded (rows, cols) array of ``data`` (crc already stripped). Raises ValueError."""
        buf = data
        for step in self.steps:
            buf = step(buf)
        if self.image is not None:
            buf = np.ascontiguousarray(self.image(buf)).reshape(-1)
            if self.offset:
                buf = unoffset(buf)
        arr = buf.view(self.dtype) if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype=self.dtype)
        if arr.nbytes != self.nbytes:
            raise ValueError(f"decoded {arr.nbytes} bytes, expected {self.nbytes}")
        arr = arr.reshape(self.shape)
        if self.delta:
            arr = undelta(arr)
        return arr


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class ZarrSource(ChunkedSource):
    """Lazy reader of one recording's sharded array (see the module docstring)."""

    def __init__(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> None:
        super().__init__(root, key, layout, storage)
        self.shard_samples = int(storage["shard_samples"])
        self.chunks_per_shard = self.shard_samples // self.chunk_samples
        self.n_shards = -(-self.n_times // self.shard_samples)
        self.index_at_end = storage.get("index_location", "end") == "end"
        self.shard_path = str(storage["shard_path"])
        if self.shard_samples % self.chunk_samples or self.shard_samples <= 0:
            raise self.corrupt(f"shard of {self.shard_samples} samples is not a whole number of "
                               f"{self.chunk_samples}-sample chunks")
        try:
            self.plan = _DecodePlan(storage["codecs"], self.dtype, layout.chunk_shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise self.corrupt("its codec description cannot be read by this eegbench", exc) from exc

    # --- files --------------------------------------------------------------------------
    def tag(self, shard: int) -> bytes:
        """The binding tag shard ``shard`` must carry (empty: a store written without tags)."""
        tags = self.storage.get("shard_tags")
        if tags is None or not self.index_at_end:
            return b""
        digest = tags[shard] if isinstance(tags, list) and len(tags) == self.n_shards else None
        if not (isinstance(digest, str) and len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)):
            raise self.corrupt(f"its storage info has no valid shard_tags entry for shard {shard}")
        return shard_tag(digest, shard)

    def _rel(self, shard: int) -> str:
        return self.shard_path.replace("{shard}", str(shard))  # not str.format: the path comes from the store

    def _store_files(self) -> list[str]:
        return [self._rel(s) for s in range(self.n_shards)]

    def _prepare(self) -> None:
        if isinstance(self.root, Path):  # the array's own metadata agrees with the tables
            from ..validate import check_zarr_array

            check_zarr_array(self.root, self.storage["array"], (self.n_channels, self.n_times),
                             self.layout.dtype, f"recording {self.key}")
        self._h_index: dict[int, tuple[list[list[int]], str]] = {}

    def _index(self, shard: int) -> tuple[list[list[int]], str]:
        """The shard's (offset, nbytes) entries, read and checked once per process."""
        cached = self._h_index.get(shard)
        if cached is not None:
            return cached
        rel = self._rel(shard)
        n = self.chunks_per_shard
        try:
            size = self.bytes.size(rel)
        except FileNotFoundError as exc:
            raise self.corrupt(f"shard file {rel} is missing", exc) from exc
        isize = n * _INDEX_ENTRY + _CRC
        tag = self.tag(shard)
        if size < isize + len(tag):
            raise self.corrupt(f"shard file {rel} is truncated ({size} bytes, its index alone is {isize})")
        where = size - isize - len(tag) if self.index_at_end else 0
        raw = bytes(self.bytes.get(rel, where, where + isize + len(tag)))  # the tag comes with the index read
        if len(raw) != isize + len(tag):
            raise self.corrupt(f"the chunk index of shard file {rel} fails its crc32c checksum "
                               "(truncated or modified)")
        stored_tag, raw = raw[:len(tag)], raw[len(tag):]
        if google_crc32c.value(raw[:-_CRC]) != int.from_bytes(raw[-_CRC:], "little"):
            raise self.corrupt(f"the chunk index of shard file {rel} fails its crc32c checksum "
                               "(truncated or modified)")
        if stored_tag != tag:
            raise self.corrupt(f"shard file {rel} does not belong to shard {shard} of this recording of this "
                               "store: its binding tag differs from the one sealed in the store's tables (a file "
                               "swapped with another recording's or shard's, or copied from another store)")
        isize += len(tag)
        entries = np.frombuffer(raw, dtype="<u8", count=2 * n).reshape(n, 2).tolist()
        lo, hi = (0, size - isize) if self.index_at_end else (isize, size)
        for j, (off, nb) in enumerate(entries):
            if (off, nb) != (_EMPTY, _EMPTY) and not (lo <= off and nb >= _CRC and off + nb <= hi):
                raise self.corrupt(f"chunk {shard * n + j} in {rel} points outside the file "
                                   f"(offset {off}, {nb} bytes, file {size} bytes)")
        self._h_index[shard] = (entries, rel)
        return entries, rel

    # --- decoding -------------------------------------------------------------------------
    def _raw_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        # uncompressed: the inner chunk's samples (padded to full size) then its crc32c
        if self.plan.steps or self.plan.delta or not self.plan.crc:
            return None
        entries, rel = self._index(index // self.chunks_per_shard)
        off, nb = entries[index % self.chunks_per_shard]
        return None if off == _EMPTY else (rel, off, off + nb - _CRC, None)

    def _stored_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        # compressed: the inner chunk's encoded bytes then its crc32c (stores without one: chunk path)
        if not self.plan.crc:
            return None
        entries, rel = self._index(index // self.chunks_per_shard)
        off, nb = entries[index % self.chunks_per_shard]
        return None if off == _EMPTY else (rel, off, off + nb, None)

    def _decode_stored_bytes(self, index: int, data: np.ndarray) -> np.ndarray:
        return self._decode_checked(index, self._rel(index // self.chunks_per_shard), data[:-_CRC])

    def _blosc_span(self, index: int, spot: tuple[str, int, int, int | None]) -> tuple[int, int] | None:
        # bytes -> blosc -> crc32c and nothing else: the inner chunk (padded to full size) is the frame
        plan = self.plan
        if plan.image is not None or plan.delta or plan.offset or len(plan.steps) != 1 \
                or getattr(plan.steps[0], "name", None) != "blosc" or self.dtype.byteorder == ">":
            return None
        return spot[1], spot[2] - _CRC

    def _load_chunk(self, index: int) -> np.ndarray:
        return self._load_chunks([index])[0]

    def _load_chunks(self, indices: list[int]) -> list[np.ndarray]:
        """Chunks ``indices``: per shard, the stored bytes of all of them in one coalesced
        ``get_ranges`` (adjacent inner chunks are adjacent in the shard file), then check + decode."""
        out: list[np.ndarray | None] = [None] * len(indices)
        by_shard: dict[int, list[int]] = {}
        for k, index in enumerate(indices):
            by_shard.setdefault(index // self.chunks_per_shard, []).append(k)
        for shard, ks in by_shard.items():
            entries, rel = self._index(shard)
            stored = []
            for k in ks:
                off, nb = entries[indices[k] % self.chunks_per_shard]
                if off == _EMPTY:
                    valid = min(self.chunk_samples, self.n_times - indices[k] * self.chunk_samples)
                    out[k] = _zeros(self.n_channels, valid, self.dtype)
                else:
                    stored.append((k, off, nb))
            if not stored:
                continue
            datas = self.bytes.get_ranges(rel, [(off, off + nb) for _, off, nb in stored])
            for (k, _off, nb), data in zip(stored, datas):
                out[k] = self._decode_stored(indices[k], rel, data, nb)
        return out  # type: ignore[return-value]

    def _decode_stored(self, index: int, rel: str, data: Any, nb: int) -> np.ndarray:
        if len(data) != nb:
            raise self.corrupt(f"chunk {index} in {rel} is truncated ({len(data)} of {nb} bytes)")
        view = np.frombuffer(data, dtype=np.uint8)  # zero-copy; google_crc32c refuses memoryviews
        if self.plan.crc:
            stored = int.from_bytes(view[-_CRC:].tobytes(), "little")
            view = view[:-_CRC]
            if google_crc32c.value(view) != stored:
                raise self.corrupt(f"chunk {index} in {rel} fails its crc32c checksum (modified or corrupted)")
        return self._decode_checked(index, rel, view)

    def _decode_checked(self, index: int, rel: str, view: np.ndarray) -> np.ndarray:
        """Decoded chunk ``index`` from its encoded bytes ``view`` (crc32c already checked and stripped)."""
        try:
            arr = self.plan.decode(view)
        except Exception as exc:
            raise self.corrupt(f"chunk {index} in {rel} cannot be decoded", exc) from exc
        valid = min(self.chunk_samples, self.n_times - index * self.chunk_samples)
        if valid < self.chunk_samples:  # the last chunk is stored padded to the full chunk shape
            arr = arr[:, :valid].copy()
        if arr.dtype != self.dtype:  # big-endian host only
            arr = arr.astype(self.dtype)
        # shared through the chunk cache: a caller writing into it must fail, not corrupt the cache
        arr.flags.writeable = False
        return arr


def _zeros(n_channels: int, n: int, dtype: np.dtype) -> np.ndarray:
    arr = np.zeros((n_channels, n), dtype=dtype)
    arr.flags.writeable = False
    return arr


# ---------------------------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------------------------
class ZarrBackend:
    """Zarr v3 format: sharded signal arrays + Parquet tables in uint8 arrays."""

    name: ClassVar[str] = "zarr"
    compressions: ClassVar[frozenset[str]] = frozenset({"none", "zstd", "blosc-zstd", "blosc-lz4", "gzip",
                                                        "jpegls", "jpeg2k", "jpegxl", "htj2k"})
    supports_delta: ClassVar[bool] = True

    def write_recording(self, root: Path, key: str, blocks: Iterable[tuple[int, np.ndarray]],
                        layout: SignalLayout) -> dict[str, Any]:

        n_ch, n_times, cs = layout.n_channels, layout.n_times, layout.chunk_samples
        shard = shard_samples_for(layout)
        group_rel = signal_prefix(key, SIGNALS)  # fanned out: no folder over 10,000 entries
        rel = f"{group_rel}/{DATA}"
        group_folder = Path(root) / group_rel
        folder = group_folder / DATA
        _rmtree(group_folder)  # overwrite: no stale shard of an earlier attempt may survive
        made: set[str] = set()  # folders of this recording's tree known to exist
        filters, serializer, compressors = _inner_codecs(layout)
        cf = cf_scale_offset(layout.quantization)
        encoder = _encoder_for(layout, filters, serializer, compressors)  # reused across recordings
        with _ShardWriter(folder / "c" / "0", shard // cs, layout.n_chunks, made) as shards:
            pos = 0  # samples received
            carry: np.ndarray | None = None  # a partial chunk, only if blocks are not chunk-aligned
            for start, block in blocks:
                block = _as_block(block, layout)
                if int(start) != pos:
                    raise ValueError(f"{key}: block starts at sample {start}, expected {pos} "
                                     "(blocks must be in order)")
                pos += block.shape[1]
                if pos > n_times:
                    raise ValueError(f"{key}: blocks exceed the recording's {n_times} samples")
                if cf is not None and not cf_exact(layout.quantization, cf, block):
                    cf = None  # int32 counts this pair does not reproduce: no CF claim
                if carry is not None:
                    block, carry = np.concatenate([carry, block], axis=1), None
                whole = block.shape[1] if pos == n_times else block.shape[1] // cs * cs
                for g0 in range(0, whole, encoder.group_samples):
                    for data in encoder.encode(block[:, g0:min(g0 + encoder.group_samples, whole)]):
                        shards.add(data)
                if whole < block.shape[1]:
                    carry = block[:, whole:].copy()
            if pos != n_times:
                raise ValueError(f"{key}: blocks cover {pos} of {n_times} samples")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # stores rooted at this recording's own folder: parallel workers never write a shared
            # parent zarr.json (finalize writes the upper groups); the data array's metadata last
            _write_node(group_folder, {**_GROUP_META, "attributes": _group_attributes(layout)}, made=made)
            # the data array's zarr.json: zarr-python builds it once per (channels, chunking,
            # shard, codecs); each recording only sets its shape and attributes (many short
            # recordings would otherwise pay zarr-python's array creation each)
            meta = dict(_array_template(layout, shard, filters, serializer, compressors))
            meta["shape"] = [n_ch, n_times]
            meta["attributes"] = _attributes(layout, shard, cf)
            write_file(folder / "zarr.json", _node_json(meta))
            _write_coordinates(group_folder, layout, made)
        return {
            "array": rel,
            "shard_path": f"{rel}/c/0/{{shard}}",
            "shard_samples": shard,
            "n_shards": -(-n_times // shard),
            "index_location": "end",
            "shard_tags": shards.tags,  # binds every shard file to this recording (see _TAG)
            "fill_value": 0,
            "codecs": [c.to_dict() for c in (*filters, serializer, *compressors)],
        }

    def write_table(self, root: Path, name: str, data: bytes) -> None:
        import zarr
        from zarr.codecs import BytesCodec, Crc32cCodec
        from zarr.storage import LocalStore

        folder = Path(root) / TABLES / name
        _rmtree(folder)
        raw = np.frombuffer(data, dtype=np.uint8)
        # uncompressed (Parquet compresses its own pages); crc32c so a flipped byte is caught on read
        array = zarr.create_array(
            LocalStore(folder), shape=raw.shape, dtype="uint8", chunks=(max(raw.size, 1),), filters=None,
            serializer=BytesCodec(), compressors=[Crc32cCodec()], fill_value=0, overwrite=True,
            attributes={"eegbench": {"content": "one Parquet file (bytes)",
                                     "media_type": "application/vnd.apache.parquet"}},
            config={"write_empty_chunks": True})
        if raw.size:
            array[:] = raw

    def read_table(self, root: Path, name: str) -> bytes | None:
        folder = Path(root) / TABLES / name
        try:
            meta = json.loads((folder / "zarr.json").read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CorruptStoreError(f"{root}: metadata of table {name} is unreadable ({exc}); "
                                    f"run `eegbench verify {root}`") from exc
        n = int(meta["shape"][0])
        simple = ([c["name"] for c in meta.get("codecs", [])] == ["bytes", "crc32c"]
                  and meta.get("data_type") == "uint8"
                  and meta["chunk_grid"]["configuration"]["chunk_shape"][0] >= n)
        if not simple:  # written by someone else: let zarr-python decode it
            import zarr

            return zarr.open_array(str(folder), mode="r")[:].tobytes()
        if n == 0:
            return b""
        try:
            raw = (folder / "c" / "0").read_bytes()
        except FileNotFoundError as exc:
            raise CorruptStoreError(f"{root}: table {name} has no data file ({TABLES}/{name}/c/0); "
                                    "re-convert or re-download the store") from exc
        if len(raw) != n + _CRC or google_crc32c.value(raw[:-_CRC]) != int.from_bytes(raw[-_CRC:], "little"):
            raise CorruptStoreError(f"{root}: table {name} fails its crc32c checksum (truncated or modified); "
                                    f"run `eegbench verify {root}`")
        return raw[:-_CRC]

    def finalize(self, root: Path, keys: list[str]) -> None:
        """The upper groups and the root's consolidated metadata, written directly: zarr-python's
        ``consolidate_metadata`` lists and reads the whole hierarchy through asyncio (~6 ms per
        recording); here each node's ``zarr.json`` is read once from its known place. The result
        equals zarr-python's (tests/test_io.py)."""
        root = Path(root)
        missing = [k for k in keys if not (root / signal_prefix(k, SIGNALS) / DATA / "zarr.json").is_file()]
        if missing:
            raise CorruptStoreError(f"{root}: recordings {missing[:5]} were not written")
        groups = [sub for sub in (SIGNALS, TABLES) if (root / sub).is_dir()]
        groups += [f"{SIGNALS}/{fan}" for fan in sorted({fanout(k) for k in keys})]
        for rel in groups:
            _write_node(root / rel, _GROUP_META)
        nested = {"kind": "inline", "must_understand": False, "metadata": {}}
        metadata: dict[str, Any] = {rel: {**_GROUP_META, "consolidated_metadata": nested} for rel in groups}

        def add(rel: str) -> bool:
            try:
                meta = json.loads((root / rel / "zarr.json").read_bytes())
            except FileNotFoundError:
                return False
            if meta.get("node_type") == "group":
                meta = {**meta, "consolidated_metadata": nested}
            metadata[rel] = meta
            return True

        if (root / TABLES).is_dir():
            for name in sorted(e.name for e in os.scandir(root / TABLES) if e.is_dir()):
                add(f"{TABLES}/{name}")
        for key in keys:
            group_rel = signal_prefix(key, SIGNALS)
            add(group_rel)
            for sub in (CHANNEL_DIM, DATA, TIME_DIM):
                add(f"{group_rel}/{sub}")
        try:
            attrs = json.loads((root / "zarr.json").read_bytes()).get("attributes") or {}
        except FileNotFoundError:
            attrs = {}
        attrs["eegbench"] = {
            "layout": f"{SIGNALS}/<fan>/<key>/{DATA}: (channel, time) samples, sharded, with CF scale_factor/"
                      f"add_offset when stored as counts; {SIGNALS}/<fan>/<key>/{CHANNEL_DIM}, /{TIME_DIM}: "
                      f"coordinates; {TABLES}/<name>: Parquet bytes as uint8; see each array's attributes"}
        (root / "zarr.json").write_bytes(_node_json({
            "attributes": attrs, "zarr_format": 3,
            "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": metadata},
            "node_type": "group"}))

    def open_signals(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> ZarrSource:
        return ZarrSource(root, key, layout, storage)


register(ZarrBackend())
