"""eegbench: store EEG datasets in HDF5, Zarr v3 or NumPy+Parquet, read them lazily and fast,
and benchmark which format suits a dataset and workload.

Public API::

    import eegbench
    ds = eegbench.from_files(["S001R03.edf", ...])          # or from_mne / from_bids / synthetic
    eegbench.save(ds, "eeg.zarr")                           # format from the name; blosc-zstd level 5
    ds = eegbench.open("eeg.zarr")                          # lazy: metadata only
    x = ds[0].get_data(picks=["C3", "C4"], start=0, stop=320)   # samples, float32 volts (MNE's arguments)
"""

from __future__ import annotations

from typing import Any

from . import errors
from .codecs import COMPRESSIONS, CodecSpec
from .formats import available_formats
from .model import Annotations, Dataset, Recording
from .quantization import Quantization
from .store import info, open, save, verify

__version__ = "0.1.0"

__all__ = [
    "COMPRESSIONS", "Annotations", "CodecSpec", "Dataset", "Quantization", "Recording",
    "available_formats", "eegbci_description", "errors", "from_bids", "synthetic", "from_files", "from_mne", "info",
    "open", "save", "verify", "__version__", "from_pretrained", "push_to_hub",
]


def __getattr__(name: str) -> Any:
    """``eegbench.synthetic`` (``eegbench.synthetic.make_dataset(...)``), imported on first use:
    ``import eegbench`` + ``open`` do not need the generator (issue #9: open cost)."""
    if name == "synthetic":
        from .sources import synthetic

        return synthetic
    raise AttributeError(f"module 'eegbench' has no attribute {name!r}")


def push_to_hub(path_or_dataset: Any, repo_id: str, **kwargs: Any) -> Any:
    """Upload a store or dataset to the Hugging Face Hub (see :func:`eegbench.hub.push_to_hub`)."""
    from .hub import push_to_hub as _push

    return _push(path_or_dataset, repo_id, **kwargs)


def from_pretrained(repo_id: str, **kwargs: Any) -> Dataset:
    """Open a Hub dataset (or part of it, by description filters), online or from the cache
    (see :func:`eegbench.hub.from_pretrained`)."""
    from .hub import from_pretrained as _from_pretrained

    return _from_pretrained(repo_id, **kwargs)


def from_mne(raws: Any, description: Any = None) -> Dataset:
    """A :class:`Dataset` from one or more ``mne.io.Raw`` (see :mod:`eegbench.sources.mne`)."""
    from .sources.mne import from_mne as _from_mne

    return _from_mne(raws, description=description)


def from_files(paths: Any, *, skip_errors: bool = False, preload: bool = False, sha256: bool = True,
               description: Any = None) -> Dataset:
    """A :class:`Dataset` from files MNE reads: EDF/EDF+/BDF, BrainVision, EEGLAB, FIF.

    ``description``: extra description columns per file, a function ``path -> dict`` (e.g.
    :func:`eegbci_description`) or a mapping ``{file name: dict}``; BIDS file names fill subject,
    session, task and run by themselves. ``sha256=False`` skips hashing each source file into the
    provenance (one extra full read). See :func:`eegbench.sources.mne.from_files`."""
    from .sources.mne import from_files as _from_files

    return _from_files(paths, skip_errors=skip_errors, preload=preload, sha256=sha256, description=description)


def eegbci_description(path: Any) -> dict[str, Any]:
    """``S001R03.edf`` -> ``{"subject": "001", "run": 3, "task": "fists"}`` (EEG Motor Movement/Imagery
    file names); ``{}`` for other names. For ``from_files(..., description=eegbci_description)``."""
    from .sources.mne import eegbci_description as _eegbci

    return _eegbci(path)


def from_bids(root: Any, subject: Any = None, session: Any = None, task: Any = None, run: Any = None,
              **kwargs: Any) -> Dataset:
    """A :class:`Dataset` from a BIDS folder via mne-bids, entities in ``description``."""
    from .sources.bids import from_bids as _from_bids

    return _from_bids(root, subject=subject, session=session, task=task, run=run, **kwargs)
