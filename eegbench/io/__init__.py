"""Where stored bytes come from: one file manager and one narrow byte-range door for all readers.

Two pieces, used by every format's reader (``formats/hdf5.py``, ``zarr.py``, ``parquet.py`` via
``formats/_chunks.py``); no reader calls ``os.open``/``os.pread`` itself.

1. :data:`FILES` (:class:`~eegbench.io.files.FileManager`): the process-wide, capped LRU of open
   descriptors and read-only maps (cap ``EEGBENCH_MAX_OPEN_FILES``, default 128). Readers keep
   paths, never handles; a handle is lent for one call and reopened transparently after eviction;
   fork- and pickle-safe; running out of descriptors raises
   :class:`~eegbench.errors.ResourceLimitError`, never ``CorruptStoreError``.

2. :class:`ByteSource`: the protocol a reader gets bytes through::

       size(path) -> int
       get(path, start, stop) -> bytes-like                  # [start, stop), short at EOF
       get_ranges(path, [(start, stop), ...]) -> [bytes-like, ...]   # neighbours fetched together

   ``path`` is a POSIX path relative to the store root (``signals/000/rec-00000.h5``). Results are
   ``bytes`` or read-only uint8 NumPy views (``np.frombuffer`` them; ``google_crc32c`` accepts
   both). :class:`LocalSource` implements it with ``pread`` through :data:`FILES` and adds
   ``mapped(path)`` (a pinned read-only ``mmap``; readers use it when present, for the
   uncompressed ``.npy`` path) and ``release(paths)``; both are optional for other sources.

Adding a remote location (HTTP ranges, S3, ``hf://``): implement the three methods -- plan
``get_ranges`` with :func:`coalesce` (choose a ``max_gap`` suited to the transport's latency,
e.g. zarr's 1 MiB for object stores) and cut the results with :func:`split_reads`; return short
data at the end of a file rather than padding; retry transport errors only (a checksum failure
is the reader's ``CorruptStoreError``); hold no live connection in the pickled state -- then
``register_scheme("https", factory)`` so :func:`source_for` builds ``factory(root)`` for roots
``https://...``. :class:`SourceFile` turns any source into a seekable file object for libraries
that want one (h5py reads HDF5 metadata through it).
"""

from __future__ import annotations

from .bytes import (
    LOCAL_MAX_GAP,
    ByteSource,
    LocalSource,
    SourceFile,
    coalesce,
    register_scheme,
    source_for,
    split_reads,
)
from .files import FILES, FileManager, is_exhausted, open_random_access

__all__ = ["FILES", "LOCAL_MAX_GAP", "ByteSource", "FileManager", "LocalSource", "SourceFile", "coalesce",
           "is_exhausted", "open_random_access", "register_scheme", "source_for", "split_reads"]
