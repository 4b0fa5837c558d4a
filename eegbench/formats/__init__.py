"""Storage formats: one module per format behind one small protocol, registered by name.

The core (:mod:`eegbench.store`) never says "if hdf5": it asks the registry for a
:class:`FormatBackend` and calls these methods. Adding a format is one new module that defines
a backend and calls :func:`register`.

The core owns everything that is the same for every format: options and codec validation,
quantization to integer counts (blocks arrive already converted), metadata tables (as Parquet
bytes), atomic temp-and-rename, the SHA-256 manifest and schema version. A backend owns only:

* ``write_recording``: store one recording's sample blocks under a key;
* ``write_table`` / ``read_table``: keep a named metadata table (Parquet bytes) somewhere;
* ``open_signals``: a lazy, picklable :class:`~eegbench.model.SignalSource` for one recording,
  built from the layout and the storage info ``write_recording`` returned, **without I/O**.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..codecs import CodecSpec
from ..errors import FormatMismatchError, UnknownFormatError
from ..model import SignalSource
from ..quantization import Quantization


@dataclass(frozen=True)
class SignalLayout:
    """How one recording's samples are stored; means the same in every format.

    ``dtype`` is the stored element type: ``float32`` (volts) or ``int16``/``int32`` (ADC counts,
    mapped to volts by ``quantization``). Chunks span all channels x ``chunk_samples`` samples.
    """

    n_channels: int
    n_times: int
    dtype: str
    chunk_samples: int
    codec: CodecSpec
    quantization: Quantization | None = None
    #: what the writers also describe for readers without eegbench (dimension coordinates, CF units)
    ch_names: tuple[str, ...] = ()
    sfreq: float | None = None
    units: tuple[str, ...] = ()

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return (self.n_channels, self.chunk_samples)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_times // self.chunk_samples)


class FormatBackend(Protocol):
    """What a storage format implements. See the module docstring."""

    name: ClassVar[str]
    #: compression names from :data:`eegbench.codecs.COMPRESSIONS` this format can store
    compressions: ClassVar[frozenset[str]]
    #: whether the delta filter (integer storage) can be stored portably
    supports_delta: ClassVar[bool]

    def write_recording(self, root: Path, key: str, blocks: Iterable[tuple[int, np.ndarray]],
                        layout: SignalLayout) -> dict[str, Any]:
        """Write ``blocks`` (``(start, array)`` in time order, each a whole number of chunks
        except possibly the last; ``array`` has ``layout.dtype``) for recording ``key``.
        Must overwrite anything already stored under ``key``. Returns JSON-able storage info
        that :meth:`open_signals` receives back."""
        ...

    def write_table(self, root: Path, name: str, data: bytes) -> None: ...

    def read_table(self, root: Path, name: str) -> bytes | None: ...

    def finalize(self, root: Path, keys: list[str]) -> None:
        """Called once after every recording and table is written (e.g. consolidate metadata)."""
        ...

    def open_signals(self, root: Path, key: str, layout: SignalLayout, storage: dict[str, Any]) -> SignalSource:
        """A lazy source for one recording. Must not read signal bytes; must be picklable."""
        ...


_REGISTRY: dict[str, FormatBackend] = {}
_BUILTIN = {"hdf5": "eegbench.formats.hdf5", "zarr": "eegbench.formats.zarr",
            "parquet": "eegbench.formats.parquet"}
ALIASES = {"h5": "hdf5", "npy": "parquet", "numpy": "parquet", "numpy+parquet": "parquet"}


def register(backend: FormatBackend) -> FormatBackend:
    """Make ``backend`` available under ``backend.name``."""
    _REGISTRY[backend.name] = backend
    return backend


def get_backend(name: str) -> FormatBackend:
    """The backend registered under ``name`` (``hdf5``, ``zarr``, ``parquet`` or an alias)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _REGISTRY and key in _BUILTIN:
        importlib.import_module(_BUILTIN[key])
    if key not in _REGISTRY:
        raise UnknownFormatError(f"unknown format {name!r}; choose one of: {', '.join(available_formats())}")
    return _REGISTRY[key]


#: the format a store gets when neither ``format`` nor its name says one
DEFAULT_FORMAT = "zarr"
#: store name endings that name a format (``eegbench.save(ds, "eeg.h5")`` writes HDF5)
SUFFIXES = {".zarr": "zarr", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".parquet": "parquet",
            ".pq": "parquet"}


def format_from_path(path: str | Path) -> str | None:
    """The format a store's name ends with (``.zarr``, ``.h5``/``.hdf5``, ``.parquet``/``.pq``), or None."""
    return SUFFIXES.get(Path(str(path).rstrip("/\\")).suffix.lower())


def resolve_format(path: str | Path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else the one its suffix names, else
    :data:`DEFAULT_FORMAT`. A store named for another format than ``format`` is an error
    (``eegbench.save(ds, "out.zarr", format="parquet")`` would mislead every later reader)."""
    named = format_from_path(path)
    if format is None:
        return named or DEFAULT_FORMAT
    backend = get_backend(format)
    if named is not None and named != backend.name:
        raise FormatMismatchError(
            f"{path} is named like a {named} store but the format asked for is {backend.name}; "
            f"name the destination with a {_suffix_for(backend.name)} suffix, or leave out "
            f"format={backend.name!r} (CLI: --format {backend.name}) to write {named}")
    return backend.name


def _suffix_for(name: str) -> str:
    return next(s for s, f in SUFFIXES.items() if f == name)


def available_formats() -> list[str]:
    """Names of every built-in and registered format."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))
