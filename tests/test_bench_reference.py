"""benchmarks/bench_reference.py: cold means cold, even with a live mapping of the files."""

from __future__ import annotations

import numpy as np

from benchmarks import _fixtures as fx
from benchmarks import bench_reference as br


class _Mapped:
    """A reader that keeps its memmap alive across release() (as a library's map cache might)."""

    def __init__(self, path) -> None:
        self.param, self.path = "mapped", path
        self.map = np.load(path, mmap_mode="r")

    @property
    def files(self):
        return [self.path]

    def release(self) -> None:
        pass


def test_evict_verified_pages_out_live_mappings(tmp_path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(1 << 20, dtype=np.float32))  # 4 MiB
    reader = _Mapped(path)
    assert float(np.asarray(reader.map).sum()) > 0  # touch every page through the map
    assert fx.resident_bytes([path]) > 0
    assert br.pageout_own_mappings([path]) >= 1
    br.evict_verified(reader)  # raises if anything stayed resident
    assert fx.resident_bytes([path]) == 0
    assert float(reader.map[123]) == 123.0  # the mapping still works (pages come back from disk)


def test_rows_pair_each_store_with_its_reference_libraries() -> None:
    rows = br.rows("quick")
    assert rows[-1] == "memmap-npy"
    for store in br.stores("quick"):
        assert f"eegbench {store}" in rows
    fmts = {r.split()[0]: r.split()[1] for r in rows if r != "memmap-npy" and not r.startswith("eegbench")}
    assert fmts == {"h5py": "hdf5", "zarr-python": "zarr", "tensorstore": "zarr", "numpy": "parquet"}


def test_numpy_reference_reads_the_chunk_blocked_npy(tmp_path, monkeypatch) -> None:
    """The ``numpy`` reference reader (np.load + the blocks of a window) returns eegbench's samples."""
    import eegbench
    from benchmarks import _reference as ref

    monkeypatch.setattr(fx, "CACHE", tmp_path)
    target = ref.RefTarget("numpy parquet none 1s", "smoke")
    with eegbench.open(target.build()) as ds:
        target.open()
        rng = np.random.default_rng(0)
        for r in range(len(ds)):
            n = int(round(2 * ds[r].sfreq))
            for s in [0, *rng.integers(0, ds[r].n_times - n, 5).tolist(), ds[r].n_times - n]:
                np.testing.assert_array_equal(target.read(r, s, n), ds[r].get_data(start=s, stop=s + n))
        target.close()


def test_numpy_reference_evicts_files_eegbench_also_mapped(tmp_path, monkeypatch) -> None:
    """A page mapped twice in one process survives MADV_PAGEOUT: the ``numpy`` reference row reads
    the files an earlier eegbench row of the same process left mapped in eegbench's file manager,
    so opening the reference target drops those maps and its evicted reads are cold (mincore 0)."""
    import eegbench
    from benchmarks import _evicted
    from benchmarks import _reference as ref
    from eegbench.io import FILES

    monkeypatch.setattr(fx, "CACHE", tmp_path)
    target = ref.RefTarget("numpy parquet none 1s", "smoke")
    ds = eegbench.open(target.build())
    n = int(round(2 * ds[0].sfreq))
    ds[0].get_data(start=0, stop=n)  # eegbench maps the recording's .npy and keeps the map (no close)
    signal = [f for f in target.files if FILES.is_open(str(f))]
    assert signal, "eegbench should hold a map of the store's signal file"
    target.open()
    assert not any(FILES.is_open(str(f)) for f in signal)
    target.read(0, 0, n)  # the reference's own memmap: the only map of the file now
    assert _evicted.evict_pages(target.files) == 0
    assert fx.resident_bytes(target.files) == 0
    target.close()
