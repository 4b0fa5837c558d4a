"""Lossless compression of a profile per format x codec (integer counts, +delta, float32), in one run.

    python -m benchmarks.compression_table --profile real     # EEGBCI EDF+ from ../shared/data/eeg
    python -m benchmarks.compression_table --profile standard --recordings 2 --codecs blosc-zstd jpegls

Every store is written by ``eegbench.save`` into a scratch folder, re-opened, and checked bit for
bit against the source before its size counts (profile ``real``: against MNE's own float32 reading
of each EDF file). Ratio = float32 bytes of the samples / bytes on disk (whole store: signals,
tables, manifest). General codecs use ``--chunk-seconds``; the archive codecs (integer counts
only: jpegls, jpeg2k, jpegxl, htj2k) are measured at each of ``--archive-chunk-seconds``.
"window ms" is the median time to read one random all-channel 2-s window from the open store with
its files in the page cache and eegbench's decoded-chunk cache off (decode + calibration: what a
training loop pays per window). Prints Markdown; writes results/compression-PROFILE.md unless
``--no-write``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks import _fixtures as fx

GENERAL = ["none", "blosc-lz4", "blosc-zstd", "zstd", "gzip", "lzf"]
ARCHIVE = ["jpegls", "jpeg2k", "jpegxl", "htj2k"]


def window_ms(path, n: int = 60) -> float:
    """Median ms per random 2-s all-channel window, files warm, decoded-chunk cache off."""
    import eegbench
    from eegbench.formats import _chunks
    from eegbench.pagecache import warm_window_times

    ds = eegbench.open(path)
    lengths = [rec.n_times for rec in ds]
    window = int(round(fx.WINDOW_SECONDS * ds[0].sfreq))
    windows = fx.random_windows(lengths, window, n, seed=4)
    saved, _chunks.CHUNK_CACHE.max_bytes = _chunks.CHUNK_CACHE.max_bytes, 0
    try:
        times = warm_window_times(ds, windows, window)
    finally:
        _chunks.CHUNK_CACHE.max_bytes = saved
        ds.close()
    return 1000 * statistics.median(times)


def mne_reference(profile: str) -> list[np.ndarray] | None:
    """MNE's float32 reading of each real recording (profile ``real``), else None."""
    if profile != "real":
        return None
    import mne

    return [mne.io.read_raw_edf(p, preload=True, verbose="error").get_data().astype(np.float32)
            for p in sorted((fx.REAL_DATA / "eegbci_S001").glob("*.edf"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="real")
    parser.add_argument("--codecs", nargs="+", default=GENERAL + ARCHIVE)
    parser.add_argument("--formats", nargs="+", default=fx.FORMATS)
    parser.add_argument("--chunk-seconds", type=float, default=1.0, help="chunk span of the general codecs")
    parser.add_argument("--archive-chunk-seconds", type=float, nargs="+", default=[1.0, 2.0],
                        help="chunk spans at which the archive codecs are measured")
    parser.add_argument("--recordings", type=int, default=None, help="only the first N recordings")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    args = parser.parse_args(argv)
    import eegbench
    from eegbench.formats import get_backend

    if args.recordings:  # a quick look: the first N recordings, straight from the profile's source
        from eegbench.sources.synthetic import make_profile

        full = fx.source_dataset(args.profile) if args.profile == "real" else make_profile(
            args.profile, seed=0, n_recordings=args.recordings)
        source = full.take(range(min(args.recordings, len(full))))
    else:
        source = eegbench.open(fx.source_store(args.profile))
    mne_ref = mne_reference(args.profile)
    reference = mne_ref[:len(source)] if mne_ref is not None else [rec.get_data() for rec in source]
    against = "MNE's float32 reading" if mne_ref is not None else "the source"
    rows = ["| format | codec | stored as | chunk s | ratio vs float32 | size MB | save s | window ms | "
            f"bitwise equal to {against} |", "|---|---|---|---|---|---|---|---|---|"]
    scratch = fx.scratch_dir()
    try:
        for fmt in args.formats:
            backend = get_backend(fmt)
            for codec in args.codecs:
                if codec not in backend.compressions:
                    continue
                archive = codec in ARCHIVE
                variants = [("int", True, False)] if archive else [("int", True, False), ("float32", False, False)]
                if codec != "none" and backend.supports_delta and not archive:
                    variants.insert(1, ("int+delta", True, True))
                for chunk in args.archive_chunk_seconds if archive else [args.chunk_seconds]:
                    for label, integer, delta in variants:
                        path = scratch / f"{fmt}-{codec}-{label}-{chunk:g}"
                        t0 = time.perf_counter()
                        eegbench.save(source, path, format=fmt, compression=codec, integer=integer, delta=delta,
                                      chunk_seconds=chunk)
                        seconds = time.perf_counter() - t0
                        back = eegbench.open(path)
                        equal = len(back) == len(reference) and all(
                            np.array_equal(a.view(np.uint32), r.get_data().view(np.uint32))
                            for a, r in zip(reference, back))
                        back.close()
                        info = eegbench.info(path)
                        rows.append(f"| {fmt} | {info['codec']} | {'/'.join(info['stored_dtypes'])} | {chunk:g} | "
                                    f"{info['compression_ratio']:.2f} | {info['size_bytes'] / 1e6:.1f} | "
                                    f"{seconds:.1f} | {window_ms(path):.3f} | {'yes' if equal else 'NO'} |")
                        print(rows[-1], flush=True)
                        fx.remove(path)
    finally:
        fx.remove(scratch)
    text = "\n".join(rows)
    print(text)
    if not args.no_write:
        (fx.REPO / "results" / f"compression-{args.profile}.md").write_text(
            f"Profile {args.profile}: {len(source)} recordings, {source[0].n_channels} ch, {source[0].sfreq:g} Hz. "
            f"Written by `python -m benchmarks.compression_table --profile {args.profile}` on a shared 2-core VM "
            "(times are noisy: save s and window ms vary run to run).\n\n" + text + "\n")


if __name__ == "__main__":
    main()
