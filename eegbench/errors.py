"""One exception hierarchy for everything eegbench raises on purpose.

Every error says what went wrong *and* what to do next. Catch :class:`EegbenchError`
to handle them all; the subclasses also derive from the matching builtin
(``FileNotFoundError``, ``ValueError``, ``KeyError`` ...) so generic handlers work too.
"""

from __future__ import annotations


class EegbenchError(Exception):
    """Base class of every error eegbench raises deliberately."""


# --- stores on disk -------------------------------------------------------------------------
class StoreError(EegbenchError):
    """Something is wrong with a store on disk."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The path does not exist."""


class NotAStoreError(StoreError):
    """The path exists but is not an eegbench store (no readable ``eegbench.json``)."""


class StoreExistsError(StoreError, FileExistsError):
    """The destination exists and ``overwrite`` was not given."""


class SchemaVersionError(StoreError):
    """The store was written by a newer eegbench schema than this version can read."""


class CorruptStoreError(StoreError):
    """A file of the store is truncated, modified or undecodable. Never returned as data."""


class PackMismatchError(CorruptStoreError):
    """``tables.pack`` (the tables ``open`` reads) disagrees with the store's own metadata tables
    (Parquet files, ``tables.h5`` or Zarr ``tables/``): a crafted or damaged store (``eegbench verify``)."""


class ResourceLimitError(EegbenchError, OSError):
    """The process ran out of a system resource (file descriptors: ``EMFILE``/``ENFILE``).
    The store is fine: raise the limit (``ulimit -n``) or lower ``EEGBENCH_MAX_OPEN_FILES``."""


class StoreChangedError(StoreError):
    """The store was replaced (e.g. ``convert --overwrite``) after this dataset was opened: its
    files now belong to another store, so reading on would mix two stores. Open it again."""


# --- options --------------------------------------------------------------------------------
class OptionError(EegbenchError, ValueError):
    """An option value is invalid."""


class UnknownFormatError(OptionError):
    """The storage format name is not registered."""


class FormatMismatchError(OptionError):
    """The destination's name says one format (``out.zarr``) and the format asked for is another."""


class UnsupportedCodecError(OptionError):
    """The compression codec or level is unknown or not supported by the format."""


class IntegerStorageError(OptionError):
    """``integer=True`` was asked for, but the samples cannot be stored as integer counts losslessly."""


# --- data -----------------------------------------------------------------------------------
class EmptyDatasetError(EegbenchError, ValueError):
    """A dataset with no recordings (or a recording with no samples/channels)."""


class MetadataError(EegbenchError, TypeError):
    """A metadata value cannot be stored losslessly without pickle."""


class SourceReadError(EegbenchError):
    """A source file (EDF, BDF, FIF, BrainVision, EEGLAB, BIDS) could not be read."""


class SourceNotFoundError(SourceReadError, FileNotFoundError):
    """A source path (file, folder, BIDS root) does not exist."""


class SelectionError(EegbenchError, ValueError):
    """A read request is invalid: out of range, reversed, or empty."""


class ChannelNotFoundError(SelectionError, KeyError):
    """A channel name in ``picks`` does not exist in the recording."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class EmptySelectionError(SelectionError):
    """``Dataset.select`` matched no recording (pass ``allow_empty=True`` to allow it)."""


class UnknownColumnError(SelectionError, KeyError):
    """``Dataset.select`` was given a column that the description table lacks."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- benchmark results (eegbench recommend) ------------------------------------------------------
class ResultsError(EegbenchError):
    """Benchmark results cannot be used for a recommendation."""


class MissingResultsError(ResultsError, FileNotFoundError):
    """No results, or none of the benchmarks a workload needs: run the benchmarks first."""


class ForeignVersionError(ResultsError):
    """Results were measured by another version of a benchmark (its measurement changed meaning)."""


class StaleResultsError(ResultsError):
    """Results were measured on reader code other than the installed one: rerun the benchmarks."""


# --- Hugging Face Hub and the local cache ---------------------------------------------------
class HubError(EegbenchError):
    """Pushing to or pulling from the Hugging Face Hub failed (the message never holds a token)."""


class HubLimitError(HubError, ValueError):
    """A store would exceed the Hub's repository limits (files per repo / per folder, file size)."""


class CacheMissError(HubError, FileNotFoundError):
    """Offline (or after a failed pull), the local cache lacks the repository, revision or files asked for."""


class UnsafeRepoError(CorruptStoreError):
    """A downloaded repository names paths outside itself, links out of the cache or holds pickled objects."""


class ChunkSizeWarning(EegbenchError, UserWarning):
    """A chunk larger than the decoded-chunk cache: every window inside it decodes the whole chunk."""
