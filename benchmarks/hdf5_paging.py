"""HDF5 over HTTP with and without paged aggregation: requests and bytes, counted at the server.

``python -m benchmarks.hdf5_paging`` writes the same dataset (2 recordings, 64 ch x 250 Hz x 300 s,
blosc-zstd) as HDF5 stores with HDF5's default file space, and with paged aggregation
(``EEGBENCH_HDF5_PAGE_SIZE`` = 4 KiB and 64 KiB), serves them on the local range server and counts:

* ``h5py open+index``: plain h5py reading ``/chunk_index`` through a file object over HTTP (what
  an HDF5 user streaming the file without eegbench pays: HDF5 metadata walked by small reads;
  fsspec-style block cache of 4 KiB or 64 KiB);
* ``eegbench 1st window``: eegbench's reader's first window in a recording (the chunk index by its
  recorded byte range + the window's chunks); ``eegbench next window``: a later window.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def main() -> None:  # pragma: no cover - a script
    import h5py

    import eegbench
    from benchmarks._servers import RangeHTTPServer
    from eegbench.formats._chunks import CHUNK_CACHE
    from eegbench.io import SourceFile
    from eegbench.io.remote import RemoteSource

    work = Path(tempfile.mkdtemp(prefix="eegbench-paging-"))
    try:
        ds = eegbench.synthetic.make_dataset(n_recordings=2, n_channels=64, duration_s=300, sfreq=250)
        variants = {"default": "0", "paged 4 KiB": "4096", "paged 64 KiB": "65536"}
        for page in variants.values():
            os.environ["EEGBENCH_HDF5_PAGE_SIZE"] = page
            eegbench.save(ds, work / f"{page}.h5", "hdf5", compression="blosc-zstd")
        os.environ.pop("EEGBENCH_HDF5_PAGE_SIZE")
        print("| layout | block | file bytes | h5py open+index requests | bytes | eegbench 1st window requests "
              "| bytes | next window requests | bytes |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        with RangeHTTPServer(work) as server:
            for label, page in variants.items():
                rel = "signals/rec-00000.h5"
                size = (work / f"{page}.h5" / rel).stat().st_size
                for block in (4096, 65536):
                    src = RemoteSource(f"{server.url}/{page}.h5", block_size=block)
                    server.traffic.reset()
                    with h5py.File(SourceFile(src, rel), "r") as f:
                        f["chunk_index"][()]
                    h5 = server.traffic.snapshot()
                    CHUNK_CACHE.clear()
                    remote = eegbench.open(f"{server.url}/{page}.h5")
                    remote.byte_source.block_size = block
                    server.traffic.reset()
                    remote[0].get_data(start=1000, stop=1500)
                    first = server.traffic.snapshot()
                    server.traffic.reset()
                    remote[0].get_data(start=40000, stop=40500)
                    nxt = server.traffic.snapshot()
                    print(f"| {label} | {block} | {size} | {h5[0]} | {h5[1]} | {first[0]} | {first[1]} | "
                          f"{nxt[0]} | {nxt[1]} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    main()
