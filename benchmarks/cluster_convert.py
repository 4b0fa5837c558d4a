"""Conversion on a 2-worker dask LocalCluster vs the local ``jobs=2`` path: same bytes, throughput.

``python -m benchmarks.cluster_convert [--recordings 8] [--repeats 3]`` converts one synthetic
uncompressed source store (64 ch x 250 Hz x 120 s per recording) to each format with
``save(..., jobs=2)`` and ``save(..., client=Client(LocalCluster(n_workers=2)))``, checks that the
manifests (size + SHA-256 of every file) are equal, and prints the median MB/s (float32 bytes per
second of wall time) of each path. The cluster is started once, outside the timed calls, as a
long-running cluster would be; joblib's worker pool is warmed by one untimed call likewise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:  # pragma: no cover - a script
    import dask
    from distributed import Client, LocalCluster

    import eegbench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["hdf5", "zarr", "parquet"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eegbench-cluster-"))
    try:
        src = eegbench.save(eegbench.synthetic.make_dataset(n_recordings=args.recordings, n_channels=64,
                                                            sfreq=250.0, duration_s=120.0, seed=0),
                            work / "src.parquet", "parquet", compression="none", integer=True)
        ds = eegbench.open(src)
        raw_mb = sum(r.n_channels * r.n_times * 4 for r in ds) / 1e6
        dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
        print("| format | jobs=2 MB/s | LocalCluster(2) MB/s | cluster / jobs | same manifest |")
        print("|---|---:|---:|---:|---|")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=50) as cluster, Client(cluster) as client:
            eegbench.save(ds, work / "warm.zarr", "zarr", jobs=2)  # start joblib's pool (untimed)
            for fmt in args.formats:
                times: dict[str, list[float]] = {"jobs": [], "cluster": []}
                manifests = {}
                for i in range(args.repeats):
                    for how in ("jobs", "cluster"):
                        out = work / f"{how}-{fmt}-{i}.{fmt}"
                        t0 = time.perf_counter()
                        if how == "jobs":
                            eegbench.save(ds, out, fmt, jobs=2)
                        else:
                            eegbench.save(ds, out, fmt, client=client)
                        times[how].append(time.perf_counter() - t0)
                        manifests[how] = json.loads((out / "eegbench.json").read_text())["files"]
                        shutil.rmtree(out)
                jobs = raw_mb / statistics.median(times["jobs"])
                clus = raw_mb / statistics.median(times["cluster"])
                print(f"| {fmt} | {jobs:.1f} | {clus:.1f} | {clus / jobs:.2f} | "
                      f"{manifests['jobs'] == manifests['cluster']} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    main()
