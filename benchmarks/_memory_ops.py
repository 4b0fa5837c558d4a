"""Operations whose peak memory :func:`benchmarks._fixtures.peak_memory` measures in a fresh process.

Each entry maps a name to ``(prepare(*args) -> state, run(state))``: ``prepare`` is excluded from
the measurement (imports, opening a baseline), ``run`` is what is measured.
"""

from __future__ import annotations

import numpy as np


def _prep_open(path: str):
    # imports happen once per process, not per open: load eegbench and every backend first so
    # the measurement is what opening a store allocates (it must not grow with the data)
    import eegbench
    from eegbench.formats import available_formats, get_backend

    for name in available_formats():
        get_backend(name)
    eegbench.open(path).close()  # also warms lazy module state such as pyarrow's
    return path


def _run_open(path: str) -> None:
    import eegbench

    ds = eegbench.open(path)
    assert len(ds) > 0


def _prep_read_recording(path: str):
    import eegbench

    return eegbench.open(path)


def _run_read_recording(ds) -> None:
    x = ds[0].get_data()
    assert x.size > 0


def _prep_read_windows(path: str):
    import eegbench

    return eegbench.open(path)


def _run_read_windows(ds) -> None:
    rec = ds[0]
    w = int(2 * rec.sfreq)
    for s in np.linspace(0, rec.n_times - w, 50).astype(int):
        rec.get_data(start=int(s), stop=int(s) + w)


def _prep_fif_open(path: str):
    import mne  # noqa: F401

    return path


def _run_fif_open(path: str) -> None:
    import mne

    mne.io.read_raw_fif(path, preload=False, verbose="error")


def _prep_alloc(nbytes: str):
    return int(nbytes)


def _run_alloc(nbytes: int) -> None:
    buf = np.ones(nbytes, dtype=np.uint8)
    assert buf[-1] == 1


OPERATIONS = {
    "open": (_prep_open, _run_open),
    "read_recording": (_prep_read_recording, _run_read_recording),
    "read_windows": (_prep_read_windows, _run_read_windows),
    "fif_open": (_prep_fif_open, _run_fif_open),
    "alloc": (_prep_alloc, _run_alloc),
}
