"""Compressed warm window against the pure codec decode of its chunks + 3 memcpys, read by read.

    python -m benchmarks.compressed_ratio STORE [STORE ...] [--reads 500] [--repeats 1] [--profile]

For each store: random 2-s all-channel windows, the decoded-chunk cache off (every read decodes);
each window read once untimed (page cache warm), then per window, interleaved: the read
(``Recording.get_data``), the decode of the stored bytes of the chunks that cover it with the store's
own numcodecs pipeline (bytes already in memory, encoded the same way; no CRC, no file read, no
copy out), 3 copies of the window's float32 bytes (``np.copyto``), and the same read through the
chunk path (``pread`` of the stored bytes, CRC32C on every read: what reads did before compressed
chunks were decoded straight out of the map; ``EEGBENCH_MAP_COMPRESSED=0`` makes every read take
it). Prints the medians (memcpy: one copy), the allowance (decode + 3 memcpy) and the median of
the per-window ratios read / allowance (issue #9: "compressed warm window <= pure codec decode of
its chunks + 3 memcpys") and chunk path / allowance. Stores interleaved within each repeat.
``--profile``: a cProfile of the reads (where the rest goes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from .warm_ratio import profile_stores  # the same cProfile of warm reads


def measure(store: Path, reads: int, seed: int = 11) -> dict:
    import numpy as np

    import eegbench
    from eegbench.codecs import decode_chunk, encode_chunk, numcodecs_pipeline
    from eegbench.formats._chunks import CHUNK_CACHE

    CHUNK_CACHE.max_bytes = 0
    ds = eegbench.open(store)
    recs = [ds[i] for i in range(len(ds))]
    w = int(round(2.0 * recs[0].sfreq))
    layout = recs[0].source.layout
    dtype = np.dtype(layout.dtype)
    pipeline = numcodecs_pipeline(layout.codec, dtype)
    cs = layout.chunk_samples
    rng = np.random.default_rng(seed)
    windows = [(r, int(rng.integers(recs[r].n_times - w))) for r in rng.integers(len(recs), size=reads).tolist()]
    encoded = {}
    for r, s in windows:
        src = recs[r].source
        for ci in range(s // cs, (s + w - 1) // cs + 1):
            if (r, ci) not in encoded:
                raw = src.read_counts(ci * cs, min((ci + 1) * cs, src.n_times))
                encoded[(r, ci)] = (encode_chunk(raw, pipeline), raw.shape)
        recs[r].get_data(start=s, stop=s + w)  # warm
    a = np.empty((recs[0].n_channels, w), np.float32)
    b = np.empty_like(a)
    srcs = [r.source for r in recs]
    mapped = [bool(getattr(src, "_stored_mappable", False)) for src in srcs]
    clock = time.perf_counter_ns
    t_read, t_dec, t_cpy, t_old, ratios, old_ratios = [], [], [], [], [], []
    for r, s in windows:
        t0 = clock()
        recs[r].get_data(start=s, stop=s + w)
        t1 = clock()
        for ci in range(s // cs, (s + w - 1) // cs + 1):
            data, shape = encoded[(r, ci)]
            decode_chunk(data, pipeline, dtype, shape)
        t2 = clock()
        np.copyto(b, a)
        np.copyto(a, b)
        np.copyto(b, a)
        t3 = clock()
        srcs[r]._smapok = False  # the chunk path (pread + CRC32C every read) for this one read
        t4 = clock()
        recs[r].get_data(start=s, stop=s + w)
        t5 = clock()
        srcs[r]._smapok = mapped[r]
        t_read.append(t1 - t0)
        t_dec.append(t2 - t1)
        t_cpy.append(t3 - t2)
        t_old.append(t5 - t4)
        ratios.append((t1 - t0) / (t3 - t1))
        old_ratios.append((t5 - t4) / (t3 - t1))
    med = statistics.median
    return {"read_ms": med(t_read) / 1e6, "decode_ms": med(t_dec) / 1e6, "memcpy_ms": med(t_cpy) / 3e6,
            "allow_ms": (med(t_dec) + med(t_cpy)) / 1e6, "ratio": med(ratios), "chunk_ms": med(t_old) / 1e6,
            "chunk_ratio": med(old_ratios), "quantized": recs[0].source.quantization is not None,
            "mapped": any(mapped)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.profile:
        profile_stores(args.stores, args.reads)
        return
    print("| store | stored | repeat | read ms | decode ms | memcpy ms | allowance ms | read / allowance "
          "| chunk path ms | chunk path / allowance |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rep in range(args.repeats):
        for store in args.stores:
            m = measure(store, args.reads, seed=11 + rep)
            print(f"| {store.name} | {'int' if m['quantized'] else 'float32'} | {rep} | {m['read_ms']:.3f} | "
                  f"{m['decode_ms']:.3f} | {m['memcpy_ms']:.4f} | {m['allow_ms']:.3f} | {m['ratio']:.2f} | "
                  f"{m['chunk_ms']:.3f} | {m['chunk_ratio']:.2f} |", flush=True)

if __name__ == "__main__":
    main()
