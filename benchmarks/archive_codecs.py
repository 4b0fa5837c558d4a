"""Ratio and decode time per 2-s window of each codec, on EEGBCI and on a synthetic profile.

    python -m benchmarks.archive_codecs                       # real (EEGBCI) + standard (2 recordings)
    python -m benchmarks.archive_codecs --profiles real --chunk-seconds 1 2

Codec level only (no store around it): each recording's integer counts are cut into all-channel
chunks of ``--chunk-seconds`` and encoded with the exact numcodecs pipeline eegbench stores
(:func:`eegbench.codecs.numcodecs_pipeline`); every chunk is decoded back and compared bit for
bit. Ratio = float32 bytes of the samples / encoded bytes (signal bytes only: the whole-store
ratio, tables included, is in ``results/compression-real.md``). "decode ms" is the median over
chunks of the fastest of ``--repeats`` decodes of one chunk (a 2-s chunk is what a 2-s window
needs when aligned; an unaligned window decodes two). Prints Markdown; writes nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CODECS = [("blosc-zstd", False), ("blosc-zstd", True), ("jpegls", False), ("jpeg2k", False), ("jpegxl", False),
          ("htj2k", False)]


def counts_of(profile: str, n_recordings: int) -> list[tuple[np.ndarray, float]]:
    """(int counts, sfreq) of each recording of ``profile`` (real: all EEGBCI runs)."""
    from benchmarks import _fixtures as fx

    if profile == "real":
        ds = fx.source_dataset("real")
    else:
        from eegbench.sources.synthetic import make_profile

        ds = make_profile(profile, seed=0, n_recordings=n_recordings)
    out = []
    for rec in ds:
        out.append((rec.quantization.to_counts(rec.get_data()), rec.sfreq))
    return out


def measure(recordings, codec: str, delta: bool, chunk_seconds: float, repeats: int) -> tuple[float, float]:
    from eegbench.codecs import decode_chunk, encode_chunk, numcodecs_pipeline, resolve

    spec = resolve(codec, delta=delta)
    raw = enc = 0
    times = []
    for counts, sfreq in recordings:
        pipeline = numcodecs_pipeline(spec, counts.dtype)
        cs = max(1, int(round(chunk_seconds * sfreq)))
        raw += counts.size * 4
        for a in range(0, counts.shape[1], cs):
            chunk = np.ascontiguousarray(counts[:, a:a + cs])
            data = encode_chunk(chunk, pipeline)
            enc += len(data)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                back = decode_chunk(data, pipeline, counts.dtype, chunk.shape)
                best = min(best, time.perf_counter() - t0)
            if not np.array_equal(back, chunk):
                raise AssertionError(f"{codec}: chunk at {a} does not round-trip")
            if chunk.shape[1] == cs:
                times.append(best)
    return raw / enc, 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["real", "standard"])
    parser.add_argument("--recordings", type=int, default=2, help="synthetic profiles: recordings used")
    parser.add_argument("--chunk-seconds", type=float, nargs="+", default=[2.0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("| profile | codec | chunk s | ratio vs float32 (signal bytes) | decode ms per chunk (median) |")
    print("|---|---|---|---|---|")
    for profile in args.profiles:
        recordings = counts_of(profile, args.recordings)
        for codec, delta in CODECS:
            for chunk in args.chunk_seconds:
                ratio, ms = measure(recordings, codec, delta, chunk, args.repeats)
                label = codec + ("+delta" if delta else "")
                print(f"| {profile} | {label} | {chunk:g} | {ratio:.2f} | {ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
