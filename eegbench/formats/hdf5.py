"""HDF5 backend: one standard HDF5 file per recording, read through a direct byte-range fast path.

Layout of a store (the core adds ``eegbench.json`` at the root)::

    signals/<fan>/<key>.h5  /signals       (n_channels, n_times) float32 | int16 | int32, chunked
                       /chunk_index   (n_chunks, 4) uint64: byte_offset, nbytes, filter_mask, crc32c
                       /channel, /time, /chunk, /chunk_field: dimension scales (netCDF coordinates)
    tables.h5          /tables/<name> 1-D uint8: one Parquet file per metadata table

netCDF readers: ``/channel`` (names) and ``/time`` (sample index with CF ``scale_factor`` = 1/sfreq)
are HDF5 dimension scales of ``/signals`` (``/chunk`` and ``/chunk_field`` label ``/chunk_index``),
and counts stored with one calibration for every channel carry CF ``scale_factor``/``add_offset``
(float64, proven bit-exact, see :mod:`._cf`) and ``units``: ``xarray.open_dataset(file,
engine="h5netcdf")`` (after ``import hdf5plugin``) gives float volts with channel and time coordinates.

``/signals`` is chunked ``(n_channels, chunk_samples)`` (all channels x a time span: per-channel
chunks cost ~48 ms per all-channel window) with the filters of :mod:`eegbench.codecs`: ``gzip`` =
HDF5 shuffle + deflate, ``lzf`` = shuffle + LZF, ``zstd`` = shuffle + ``hdf5plugin.Zstd``,
``blosc-*`` = ``hdf5plugin.Blosc`` with its own byte-shuffle, archive codecs ``jpegls`` =
``hdf5plugin.FciDecomp`` (JPEG-LS) and ``htj2k`` = ``hdf5plugin.Htj2k`` (integer counts only, no
shuffle), then **fletcher32**. Attributes
describe it for plain h5py users (``import hdf5plugin`` first for zstd/blosc/jpegls/htj2k): ``chunk_samples``,
``stored_dtype``, ``codec``, ``values`` and, for ADC counts, per-channel ``q_scale``/``q_offset``/
``q_gain`` with the formula in ``to_volts``. Plain h5py reads everything; ``/chunk_index`` is
eegbench's own addition.

Integrity. A damaged chunk must raise :class:`~eegbench.errors.CorruptStoreError`, never decode
into wrong samples, yet raw storage, Blosc and HDF5's Zstd filter carry no checksum. fletcher32
(every dataset) makes HDF5 itself verify each chunk for plain h5py readers and for LZF; it cost
about +10% on writes and +5-20% on HDF5-native window reads here, so it is always on.

Fast path. Reading through HDF5's filter pipeline cost 1.0-1.9x a numcodecs decode of the same
chunk bytes for compressed codecs and ~8x a memcpy for uncompressed ones (h5py per-call overhead,
hdf5plugin's Blosc built without AVX2, an extra copy, fletcher32 as a byte loop); verifying
fletcher32 ourselves in NumPy costs more than decoding. So the writer, as each chunk is complete,
records in ``/chunk_index`` where HDF5 put its stored bytes, HDF5's filter mask for it (HDF5 skips
an optional filter that does not shrink a chunk) and the CRC32C of those bytes. A reader opens
the file with h5py once (checks shape/dtype/chunks/filters, loads the index, closes it); then a
chunk is one byte-range read (``pread`` through :mod:`eegbench.io`), a hardware CRC32C (~7 us per 129 KB) and a decode following the file's
filter list and the chunk's mask: fletcher32 -> drop its 4 bytes (the CRC covers them), Zstd/Blosc
-> numcodecs, deflate -> zlib, shuffle -> a NumPy unshuffle. A stale or damaged index can only
point at bytes that fail their CRC. LZF has no numcodecs decoder: LZF files are read through h5py
(its chunk cache off: decoded chunks go to the shared LRU of :mod:`._chunks`).

Processes and files. h5py reads the file through :class:`eegbench.io.SourceFile` over the store's
byte source, so no reader holds a descriptor of its own (the process-wide file manager of
:mod:`eegbench.io` lends one per read and caps how many are open) and nothing HDF5-related crosses
a ``fork`` on the fast path: a forked child keeps the chunk index (plain data); pickling drops
every ``_h_*`` attribute, so spawn/joblib workers re-read the index (~1 ms). The LZF path keeps
an h5py handle per process (reopened after ``fork``). Signal files are not opened by path, so
HDF5's file locking does not apply to them; ``tables.h5`` is opened with :func:`h5_open` (HDF5's
default file locking, and again with ``locking=False`` when HDF5 refuses because this process
already has the file open with the other flag: a busy file, not a corrupt one).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import google_crc32c
import numpy as np

from ..codecs import CodecSpec
from ..errors import CorruptStoreError, UnsupportedCodecError
from ..io import FILES, SourceFile, is_exhausted
from ..io.layout import signal_prefix
from . import SignalLayout, register
from ._cf import CHANNEL_DIM, TIME_DIM, cf_exact, cf_scale_offset, signal_attributes, time_attributes, time_index_dtype
from ._chunks import ChunkedSource

if TYPE_CHECKING:
    import h5py

# h5py, hdf5plugin and numcodecs are imported on first use: opening a store (``import eegbench``
# + ``open``) needs none of them. HDF5 filter ids (HDF5's own: H5Z_FILTER_*; registered plugins:
# hdf5plugin's ``filter_id``; tests/test_lazy_imports.py checks them against both libraries).
FILTER_DEFLATE, FILTER_SHUFFLE, FILTER_FLETCHER32 = 1, 2, 3
FILTER_BLOSC, FILTER_ZSTD, FILTER_FCIDECOMP, FILTER_HTJ2K = 32001, 32015, 32018, 32033


def _h5py() -> Any:
    """h5py with hdf5plugin's filters registered (any signal file eegbench opens may need them)."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers Blosc, Zstd, FCIDECOMP, HTJ2K with HDF5)

    return h5py

SIGNALS = "/signals"
INDEX = "/chunk_index"
TABLES_FILE = "tables.h5"
_TABLE_CHUNK = 1 << 20  # bytes per chunk of a table dataset (chunking is what allows fletcher32)

# stored bytes -> bytes, per HDF5 filter id (byte-compatible: HDF5's deflate writes a zlib stream,
# the Zstd filter a zstd frame, the Blosc filter a Blosc buffer); shuffle and fletcher32: _decode
_DECODERS: dict[int, Callable[[Any], Any]] = {}  # filled by _decoder() on first use


def _decoder(fid: int) -> Callable[[Any], Any]:
    fn = _DECODERS.get(fid)
    if fn is None:
        from ..codecs import load_numcodecs

        nc = load_numcodecs()
        _DECODERS.update({
            FILTER_DEFLATE: zlib.decompress,
            FILTER_ZSTD: nc.Zstd().decode,
            FILTER_BLOSC: nc.Blosc().decode,
            # archive codecs: FCIDECOMP stores a plain JPEG-LS stream and HTJ2K a plain J2K codestream per
            # chunk (16-bit samples of the chunk's bytes), which imagecodecs decodes as they are
            FILTER_FCIDECOMP: lambda b: _imagecodecs().jpegls_decode(b),
            FILTER_HTJ2K: lambda b: _imagecodecs().htj2k_decode(b),
        })
        fn = _DECODERS[fid]
    return fn


_FAST_FILTERS = {FILTER_DEFLATE, FILTER_ZSTD, FILTER_BLOSC, FILTER_FCIDECOMP, FILTER_HTJ2K, FILTER_SHUFFLE,
                 FILTER_FLETCHER32}


def h5_open(path: Path | str, **kwargs: Any) -> h5py.File:
    """``h5py.File(path, "r")`` that also works while this process has the file open elsewhere.

    HDF5 shares one file object per process and refuses a second open whose locking flag
    differs ("file locking flag values don't match"), e.g. when the user has the same file open
    through ``h5py.File(..., locking=False)``. That is not damage: retry with the other flag.
    Plain h5py (no hdf5plugin): ``tables.h5`` needs no plugin filter; signal files are opened
    through :meth:`HDF5Source._h5`, which registers them first."""
    import h5py

    try:
        return h5py.File(path, "r", **kwargs)
    except OSError as exc:
        if "locking" not in str(exc):
            raise
    return h5py.File(path, "r", locking=False, **kwargs)


def _imagecodecs() -> Any:
    import imagecodecs

    return imagecodecs


def _file_space() -> dict[str, Any]:
    """HDF5 file-space strategy of signal files: ``EEGBENCH_HDF5_PAGE_SIZE=N`` (bytes, e.g. 65536)
    writes them with paged aggregation (``fs_strategy="page"``), so plain HDF5 readers streaming
    the file (h5py over fsspec, remfile, ros3 with a page buffer) fetch metadata in a few pages;
    default 0: HDF5's default layout. eegbench's own remote reader needs neither (it fetches the
    chunk index by its recorded byte range); see ``benchmarks/hdf5_paging.py`` for the counts."""
    page = int(os.environ.get("EEGBENCH_HDF5_PAGE_SIZE", "0") or 0)
    return {"fs_strategy": "page", "fs_page_size": page, "fs_persist": True} if page > 0 else {}


def _filter_kwargs(codec: CodecSpec) -> dict[str, Any]:
    """``create_dataset`` keywords for ``codec`` (meanings from :mod:`eegbench.codecs`)."""
    import hdf5plugin

    name, level = codec.compression, codec.level
    if codec.delta:
        raise UnsupportedCodecError("the hdf5 format cannot store the delta filter portably")
    if name == "none":
        return {}
    if name == "gzip":
        return {"shuffle": True, "compression": "gzip", "compression_opts": level}
    if name == "lzf":
        return {"shuffle": True, "compression": "lzf"}
    if name == "zstd":
        return {"shuffle": True, **hdf5plugin.Zstd(clevel=level)}
    if name in ("blosc-zstd", "blosc-lz4"):
        return dict(hdf5plugin.Blosc(cname=name.split("-")[1], clevel=level, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if name == "jpegls":  # EUMETSAT's FCIDECOMP: CharLS JPEG-LS, lossless, 8/16-bit samples (no options)
        return dict(hdf5plugin.FciDecomp())
    if name == "htj2k":  # OpenJPH High-Throughput JPEG 2000, reversible, (u)int8/(u)int16 (no options)
        return dict(hdf5plugin.Htj2k())
    raise UnsupportedCodecError(f"the hdf5 format cannot store compression {name!r}")


def _unshuffle(buf: Any, itemsize: int) -> np.ndarray:
    """Undo HDF5's byte shuffle (byte k of every element stored together), as little-endian words.

    Shifts and ORs on whole planes: 1.3-2.5x faster than ``numcodecs.Shuffle.decode`` here."""
    planes = np.frombuffer(buf, dtype=np.uint8).reshape(itemsize, -1)
    out = planes[itemsize - 1].astype(np.dtype(f"<u{itemsize}"))
    for k in range(itemsize - 2, -1, -1):
        out <<= 8
        out |= planes[k]
    return out


class HDF5Source(ChunkedSource):
    """Lazy reader of one recording's ``/signals``. No I/O until the first sample is read."""

    # per-process state; class defaults because pickling drops the instance's ``_h_*``
    _h_index: list[list[int]] | None = None  # per chunk: offset, nbytes, filter mask, crc32c
    _h_filters: list[int] | None = None  # HDF5 filter ids of /signals, in pipeline order
    _h_file: h5py.File | None = None  # LZF only: reads go through h5py (over the byte source)
    _h_ds: h5py.Dataset | None = None
    _h_pid: int | None = None  # the process that opened _h_file

    def _rel(self) -> str:
        return str(self.storage["file"])

    def _store_files(self) -> list[str]:
        return [self._rel()]

    def _h5(self, by_path: bool = False) -> h5py.File:
        """The signal file opened by h5py: through the byte source (no descriptor of its own), or
        -- ``by_path``, local stores only, ~2x faster for the one-off structure read -- by its path
        (a descriptor held only until :meth:`_prepare` closes it again)."""
        h5py = _h5py()
        rel = self._rel()
        path = getattr(self.bytes, "path", None) if by_path else None
        for attempt in range(2):
            try:
                if path is not None:
                    return h5_open(path(rel), rdcc_nbytes=0)  # no HDF5 chunk cache: the shared LRU caches
                return h5py.File(SourceFile(self.bytes, rel), "r", rdcc_nbytes=0)
            except FileNotFoundError as exc:
                raise self.corrupt(f"signal file {rel} is missing", exc) from exc
            except OSError as exc:
                if not is_exhausted(exc):
                    raise self.corrupt(f"signal file {rel} is not a readable HDF5 file", exc) from exc
                if attempt:
                    raise
                FILES.clear()  # out of descriptors: close the idle ones of the file manager, retry once
        raise AssertionError("unreachable")

    def _prepare(self) -> None:
        """Check /signals against the layout; load the chunk index, or keep h5py open for LZF."""
        rel = self._rel()
        if getattr(self.bytes, "mapped", None) is None and self._prepare_direct(rel):
            return  # remote: the index in one range request, no HDF5 metadata walk
        f = self._h5(by_path=True)
        try:
            ds = f[self.storage.get("dataset", SIGNALS)]
            expected = ((self.n_channels, self.n_times), self.dtype, self.layout.chunk_shape)
            if (ds.shape, ds.dtype, ds.chunks) != expected:
                raise self.corrupt(f"{rel}: /signals is {ds.shape} {ds.dtype} chunks {ds.chunks}, "
                                   f"the store's tables say {expected[0]} {expected[1]} chunks {expected[2]}")
            self._check_binding(rel, f[INDEX])
            dcpl = ds.id.get_create_plist()
            filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
            if not set(filters) <= _FAST_FILTERS:  # LZF: decode through HDF5, over the byte source
                f.close()
                f = self._h5()
                self._h_file, self._h_ds, self._h_pid = f, f[self.storage.get("dataset", SIGNALS)], os.getpid()
                return
            index = f[INDEX][()]  # fletcher32-checked by HDF5
            n, size = self.layout.n_chunks, self.bytes.size(rel)
        except CorruptStoreError:
            f.close()
            raise
        except Exception as exc:  # damaged HDF5 metadata, missing dataset...
            f.close()
            if is_exhausted(exc):
                raise
            raise self.corrupt(f"{rel}: cannot read {SIGNALS} or {INDEX}", exc) from exc
        f.close()
        if index.shape != (n, 4):
            raise self.corrupt(f"{rel}: {INDEX} has shape {index.shape}, expected ({n}, 4)")
        beyond = np.flatnonzero(index[:, 0] + index[:, 1] > size)
        if beyond.size:
            raise self.corrupt(f"{rel}: chunk {int(beyond[0])} lies beyond the end of the file "
                               f"({size} bytes): the file is truncated")
        self._h_index = index.tolist()  # plain ints: per-chunk lookups are list indexing
        self._h_filters = filters

    def _check_binding(self, rel: str, index_ds: h5py.Dataset) -> None:
        """The file is the one this recording's sealed storage info describes: the CRC32C of
        ``/chunk_index``'s stored bytes (which hold every chunk's own CRC32C) must be the one the
        writer recorded in ``index_at``. A signal file of another recording or another store -- same
        name, same size, valid in itself -- is refused here, once per file open (a few hundred bytes)."""
        at = self.storage.get("index_at")
        if not (isinstance(at, list) and len(at) == 4):
            return  # written before files were bound (nothing to check against)
        try:
            _mask, raw = index_ds.id.read_direct_chunk((0,) * index_ds.ndim)
        except Exception as exc:
            raise self.corrupt(f"{rel}: the stored bytes of {INDEX} cannot be read", exc) from exc
        if google_crc32c.value(bytes(raw)) != int(at[3]):
            raise self.corrupt(f"signal file {rel} does not belong to this recording of this store: its "
                               f"{INDEX} differs from the one sealed in the store's tables (a file swapped with "
                               "another recording's, or copied from another store)")

    def _prepare_direct(self, rel: str) -> bool:
        """Load /chunk_index from the byte range the writer recorded (``storage["index_at"]``),
        CRC32C-checked; False when the store predates it or the codec needs HDF5 (LZF)."""
        at, filters = self.storage.get("index_at"), self.storage.get("filters")
        if not (isinstance(at, list) and len(at) == 4 and isinstance(filters, list)
                and set(filters) <= _FAST_FILTERS and at[2] == 0):
            return False
        offset, nbytes, _mask, crc = (int(v) for v in at)
        n = self.layout.n_chunks
        if nbytes != n * 4 * 8 + 4:  # (n, 4) uint64 + fletcher32
            raise self.corrupt(f"{rel}: the recorded {INDEX} location holds {nbytes} bytes, expected {n * 32 + 4}")
        data = self.bytes.get(rel, offset, offset + nbytes)
        if len(data) != nbytes:
            raise self.corrupt(f"{rel}: {INDEX} is truncated ({len(data)} of {nbytes} bytes at offset {offset})")
        raw = np.frombuffer(data, dtype=np.uint8)
        if google_crc32c.value(raw) != crc:  # also what binds the file to this recording (_check_binding)
            raise self.corrupt(f"signal file {rel} does not belong to this recording of this store: its "
                               f"{INDEX} differs from the one sealed in the store's tables (damaged, a file "
                               "swapped with another recording's, or copied from another store)")
        index = np.frombuffer(raw[:-4].tobytes(), dtype="<u8").reshape(n, 4)
        size = self.bytes.size(rel)
        beyond = np.flatnonzero(index[:, 0] + index[:, 1] > size)
        if beyond.size:
            raise self.corrupt(f"{rel}: chunk {int(beyond[0])} lies beyond the end of the file "
                               f"({size} bytes): the file is truncated")
        self._h_index = index.tolist()
        self._h_filters = [int(f) for f in filters]
        return True

    def _lzf_dataset(self) -> h5py.Dataset:
        if self._h_pid != os.getpid():  # an h5py handle inherited through fork: never read through it
            self._h_file = self._h_ds = None  # drops this process's copy; the parent's stays open
            f = self._h5()
            self._h_file, self._h_ds, self._h_pid = f, f[self.storage.get("dataset", SIGNALS)], os.getpid()
        return self._h_ds

    def close(self) -> None:
        with self._lock:
            f = self.__dict__.get("_h_file")
            if f is not None and self._h_pid == os.getpid():
                f.close()
        super().close()

    def _load_chunk(self, index: int) -> np.ndarray:
        cs = self.chunk_samples
        c0 = index * cs
        n = min(cs, self.n_times - c0)
        if self._h_index is None:
            arr = self._lzf_dataset()[:, c0:c0 + n]  # HDF5 checks fletcher32; errors wrapped by chunk()
            arr.flags.writeable = False  # cached and shared: nobody may modify it
            return arr
        offset, size, mask, crc = self._h_index[index]
        return self._finish(self.fetch_checked(self._rel(), offset, size, crc, index), mask, index)

    def _raw_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        # uncompressed: the chunk's samples (full size, padded at the end) then fletcher32's 4 bytes
        if self._h_index is None or self._h_filters != [FILTER_FLETCHER32]:
            return None
        offset, size, mask, crc = self._h_index[index]
        return None if mask & 1 else (self._rel(), offset, offset + size, crc)

    def _stored_chunk_at(self, index: int) -> tuple[str, int, int, int | None] | None:
        # compressed: the chunk's filtered bytes, CRC32C from the index (as _load_chunk checks)
        if self._h_index is None:
            return None
        offset, size, _mask, crc = self._h_index[index]
        return self._rel(), offset, offset + size, crc

    def _decode_stored_bytes(self, index: int, data: np.ndarray) -> np.ndarray:
        return self._finish(data, self._h_index[index][2], index)

    def _blosc_span(self, index: int, spot: tuple[str, int, int, int | None]) -> tuple[int, int] | None:
        # the Blosc filter (then, as eegbench writes, Fletcher32: its 4 trailing bytes), none skipped
        # for this chunk (mask 0): the chunk is the filter's frame
        filters = self._h_filters
        if filters not in ([FILTER_BLOSC], [FILTER_BLOSC, FILTER_FLETCHER32]) or self._h_index[index][2] != 0 \
                or self.dtype.byteorder == ">":
            return None
        return spot[1], spot[2] - (4 if len(filters) == 2 else 0)

    def _load_chunks(self, indices: list[int]) -> list[np.ndarray]:
        if self._h_index is None or len(indices) == 1:
            return [self._load_chunk(i) for i in indices]
        rel, entries = self._rel(), [self._h_index[i] for i in indices]
        datas = self.bytes.get_ranges(rel, [(e[0], e[0] + e[1]) for e in entries])
        return [self._finish(self.check_bytes(d, e[1], e[3], rel, i, e[0]), e[2], i)
                for d, e, i in zip(datas, entries, indices)]

    def _finish(self, data: np.ndarray, mask: int, index: int) -> np.ndarray:
        cs = self.chunk_samples
        n = min(cs, self.n_times - index * cs)
        arr = self._decode(data, mask).view(self.dtype).reshape(self.n_channels, cs)
        if n < cs:  # HDF5 stores the last chunk at full size, padded; keep the recording's samples
            arr = np.ascontiguousarray(arr[:, :n])
        arr.flags.writeable = False  # cached and shared: nobody may modify it
        return arr

    def _decode(self, data: Any, mask: int) -> np.ndarray:
        """Undo the file's filters (last applied first), skipping those the chunk's mask skipped."""
        buf: Any = data
        for i in range(len(self._h_filters) - 1, -1, -1):
            if mask >> i & 1:
                continue
            fid = self._h_filters[i]
            if fid == FILTER_FLETCHER32:
                buf = memoryview(buf)[:-4]  # the CRC32C above already covers these bytes
            elif fid == FILTER_SHUFFLE:
                buf = _unshuffle(buf, self.dtype.itemsize)
            else:
                buf = _decoder(fid)(buf)
        return np.frombuffer(buf, dtype=np.uint8)


INDEX_COLUMNS = ["byte_offset", "nbytes", "filter_mask", "crc32c"]
_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."


def _cf_holds_for(ds: h5py.Dataset, layout: SignalLayout, cf: tuple[float, float]) -> tuple[float, float] | None:
    """int32 counts: check the CF pair on every stored count (read back block by block)."""
    step = max(layout.chunk_samples, (32 << 20) // max(layout.n_channels * 4, 1))
    for a in range(0, layout.n_times, step):
        if not cf_exact(layout.quantization, cf, ds[:, a:a + step]):
            return None
    return cf


def _dimension_scales(f: h5py.File, ds: h5py.Dataset, layout: SignalLayout) -> None:
    """``/channel`` (names) and ``/time`` (sample index, CF-scaled to seconds) as HDF5 dimension
    scales of ``/signals``: netCDF readers (h5netcdf, xarray) label both axes with them."""
    h5py = _h5py()
    if layout.ch_names:
        names = f.create_dataset(CHANNEL_DIM, data=np.array(layout.ch_names, dtype=object),
                                 dtype=h5py.string_dtype())
        names.attrs["long_name"] = "channel name"
    else:
        names = f.create_dataset(CHANNEL_DIM, shape=(layout.n_channels,), dtype="<i4")
        names.attrs["NAME"] = _NOT_A_VARIABLE
    names.make_scale(CHANNEL_DIM)
    dtype = time_index_dtype(layout.n_times)
    times = f.create_dataset(TIME_DIM, shape=(layout.n_times,), dtype=dtype,
                             chunks=(max(1, min(layout.n_times, 1 << 20)),), shuffle=True, compression="gzip")
    step = 1 << 20
    for a in range(0, layout.n_times, step):
        b = min(a + step, layout.n_times)
        times[a:b] = np.arange(a, b, dtype=dtype)
    if layout.sfreq:
        times.attrs.update(time_attributes(layout.sfreq))
    times.make_scale(TIME_DIM)
    ds.dims[0].attach_scale(names)
    ds.dims[1].attach_scale(times)


def _label_index(f: h5py.File, idx: h5py.Dataset, layout: SignalLayout) -> None:
    """Dimension scales for ``/chunk_index``: the first sample of each chunk and the column names."""
    h5py = _h5py()
    first = f.create_dataset("chunk", data=np.arange(layout.n_chunks, dtype="<i8") * layout.chunk_samples)
    first.attrs["long_name"] = "first sample of the chunk"
    first.make_scale("chunk")
    fields = f.create_dataset("chunk_field", data=np.array(INDEX_COLUMNS, dtype=object), dtype=h5py.string_dtype())
    fields.make_scale("chunk_field")
    idx.dims[0].attach_scale(first)
    idx.dims[1].attach_scale(fields)


class HDF5Backend:
    """Stores recordings as HDF5 files; see the module docstring."""

    name: ClassVar[str] = "hdf5"
    compressions: ClassVar[frozenset[str]] = frozenset({"none", "gzip", "lzf", "zstd", "blosc-zstd", "blosc-lz4",
                                                        "jpegls", "htj2k"})
    supports_delta: ClassVar[bool] = False

    def write_recording(self, root: Path, key: str, blocks: Iterable[tuple[int, np.ndarray]],
                        layout: SignalLayout) -> dict[str, Any]:
        h5py = _h5py()
        rel = f"{signal_prefix(key)}.h5"  # fanned out: no folder over 10,000 entries (eegbench.io.layout)
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)  # parallel workers may race to create it
        shape, cs = (layout.n_channels, layout.n_times), layout.chunk_samples
        index = np.zeros((layout.n_chunks, 4), dtype=np.uint64)
        # chunk cache off: blocks cover whole chunks, so each chunk is filtered and written once
        with h5py.File(path, "w", rdcc_nbytes=0, **_file_space()) as f:
            ds = f.create_dataset(SIGNALS, shape=shape, dtype=layout.dtype, chunks=layout.chunk_shape,
                                  fletcher32=True, **_filter_kwargs(layout.codec))
            self._describe(ds, layout)
            done = written = 0  # chunks [0, done) are complete and indexed
            for start, block in blocks:
                if start != written or block.ndim != 2 or block.shape[0] != layout.n_channels:
                    raise ValueError(f"{key}: block at {start} of shape {block.shape} does not continue "
                                     f"the recording at sample {written}")
                written = start + block.shape[1]
                ds[:, start:written] = block
                complete = layout.n_chunks if written >= layout.n_times else written // cs
                for ci in range(done, complete):  # written for good: index its stored bytes
                    info = ds.id.get_chunk_info_by_coord((0, ci * cs))
                    _, data = ds.id.read_direct_chunk((0, ci * cs))
                    index[ci] = (info.byte_offset, info.size, info.filter_mask, google_crc32c.value(data))
                done = max(done, complete)
            if written != layout.n_times:
                raise ValueError(f"{key}: blocks ended at sample {written} of {layout.n_times}")
            cf = cf_scale_offset(layout.quantization)
            if cf is not None and layout.dtype != "int16":  # int16: proven for every count already
                cf = _cf_holds_for(ds, layout, cf)
            ds.attrs.update(signal_attributes(layout, cf))
            _dimension_scales(f, ds, layout)
            idx = f.create_dataset(INDEX, data=index, chunks=index.shape, fletcher32=True)
            idx.attrs["columns"] = INDEX_COLUMNS
            _label_index(f, idx, layout)
            idx.attrs["description"] = (
                "one row per /signals chunk in time order: where its stored bytes (after all filters, "
                "as H5Dread_chunk returns them) lie in this file, HDF5's filter mask, and their CRC32C "
                "(Castagnoli); eegbench reads chunks through it with pread and verifies the CRC")
            # where /chunk_index's own bytes lie (one chunk, fletcher32 appended) and the filter
            # pipeline of /signals: a remote reader fetches the index with one range request
            # instead of walking HDF5's metadata through many small reads
            dcpl = ds.id.get_create_plist()
            filters = [int(dcpl.get_filter(i)[0]) for i in range(dcpl.get_nfilters())]
            info = idx.id.get_chunk_info(0)
            _, raw = idx.id.read_direct_chunk((0, 0))
            index_at = [int(info.byte_offset), int(info.size), int(info.filter_mask), google_crc32c.value(raw)]
        return {"file": rel, "dataset": SIGNALS, "index_at": index_at, "filters": filters}

    @staticmethod
    def _describe(ds: h5py.Dataset, layout: SignalLayout) -> None:
        """Self-describing attributes for plain h5py users."""
        a = ds.attrs
        a["layout"] = "rows are channels, columns are samples; chunks span all channels x chunk_samples"
        a["chunk_samples"] = layout.chunk_samples
        a["stored_dtype"] = layout.dtype
        a["codec"] = layout.codec.label
        q = layout.quantization
        if q is None:
            a["values"] = "float32 samples in each channel's unit (see the store's channels table)"
            return
        a["values"] = "integer ADC counts; scale_factor/add_offset (CF) or q_* per channel give volts"
        a["q_scale"], a["q_offset"], a["q_gain"] = q.scale, q.offset, q.gain
        a["to_volts"] = ("volts = float32(((counts * q_scale) + q_offset) * q_gain), in float64 "
                         "arithmetic, q_* taken per channel (row)")

    def write_table(self, root: Path, name: str, data: bytes) -> None:
        h5py = _h5py()
        arr = np.frombuffer(data, dtype=np.uint8)
        with h5py.File(Path(root) / TABLES_FILE, "a") as f:
            group = f.require_group("tables")
            if name in group:
                del group[name]
            if arr.size:
                group.create_dataset(name, data=arr, chunks=(min(arr.size, _TABLE_CHUNK),), fletcher32=True)
            else:  # a chunked dataset cannot be empty
                group.create_dataset(name, data=arr)

    def read_table(self, root: Path, name: str) -> bytes | None:
        path = Path(root) / TABLES_FILE
        if not path.exists():
            return None
        try:
            with h5_open(path) as f:
                ds = f.get(f"tables/{name}")
                return None if ds is None else ds[()].tobytes()
        except OSError as exc:  # unreadable file, damaged structure, fletcher32 mismatch
            raise CorruptStoreError(f"{root}: table {name!r} in {TABLES_FILE} cannot be read ({exc}); "
                                    f"run `eegbench verify {root}` and re-convert or re-download the store"
                                    ) from exc

    def finalize(self, root: Path, keys: list[str]) -> None:
        """Nothing to do: every file is complete when its writer closes it."""

    def open_signals(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> HDF5Source:
        return HDF5Source(root, key, layout, storage)


register(HDF5Backend())
