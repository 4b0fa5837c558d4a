"""Lossless compression of a profile per format x codec (integer counts, +delta, float32), in one run.

    python -m benchmarks.compression_table --profile real     # EEGBCI EDF+ from ../shared/data/eeg

Every store is written by ``eegbench.save`` into a scratch folder, re-opened, and checked bit for
bit against the source before its size counts. Ratio = float32 bytes of the samples / bytes on
disk (whole store: signals, tables, manifest). Prints Markdown; writes results/compression-PROFILE.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks import _fixtures as fx


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="real")
    parser.add_argument("--codecs", nargs="+", default=["none", "blosc-lz4", "blosc-zstd", "zstd", "gzip", "lzf"])
    args = parser.parse_args(argv)
    import eegbench
    from eegbench.formats import get_backend

    source = eegbench.open(fx.source_store(args.profile))
    reference = [rec.get_data() for rec in source]
    rows = ["| format | codec | stored as | ratio vs float32 | size MB | save s | bitwise equal |", "|---|---|---|---|---|---|---|"]
    scratch = fx.scratch_dir()
    try:
        for fmt in fx.FORMATS:
            backend = get_backend(fmt)
            for codec in args.codecs:
                if codec not in backend.compressions:
                    continue
                variants = [("int", True, False), ("float32", False, False)]
                if codec != "none" and backend.supports_delta:
                    variants.insert(1, ("int+delta", True, True))
                for label, integer, delta in variants:
                    path = scratch / f"{fmt}-{codec}-{label}"
                    t0 = time.perf_counter()
                    eegbench.save(source, path, format=fmt, compression=codec, integer=integer, delta=delta)
                    seconds = time.perf_counter() - t0
                    back = eegbench.open(path)
                    equal = all(np.array_equal(a.view(np.uint32), r.get_data().view(np.uint32))
                                for a, r in zip(reference, back))
                    info = eegbench.info(path)
                    rows.append(f"| {fmt} | {info['codec']} | {'/'.join(info['stored_dtypes'])} | "
                                f"{info['compression_ratio']:.2f} | {info['size_bytes'] / 1e6:.1f} | {seconds:.1f} | "
                                f"{'yes' if equal else 'NO'} |")
                    print(rows[-1], flush=True)
                    fx.remove(path)
    finally:
        fx.remove(scratch)
    text = "\n".join(rows)
    print(text)
    (fx.REPO / "results" / f"compression-{args.profile}.md").write_text(
        f"Profile {args.profile}: {len(source)} recordings, {source[0].n_channels} ch, {source[0].sfreq:g} Hz\n\n"
        + text + "\n")


if __name__ == "__main__":
    main()
