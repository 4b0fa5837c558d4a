"""Size on disk: bytes, compression ratio against float32 samples, and file count (the Hub limits
file counts)."""

from __future__ import annotations

from . import _fixtures as fx


class Size(fx.Suite):
    params = [fx.store_params()]  # every codec, the archive ones included (fx.TIMING_CODECS is for timings)
    version = 1

    def setup(self, built, store):
        self.target = self._target(store)
        self.files = self.target.files
        self.float32_bytes = 4 * sum(self.target.lengths) * self._n_channels()
        self.target.close()

    def _n_channels(self) -> int:
        import eegbench

        return eegbench.open(fx.source_store())[0].n_channels

    def track_bytes(self, built, store):
        return sum(f.stat().st_size for f in self.files)

    track_bytes.unit = "bytes"

    def track_compression_ratio(self, built, store):
        return self.float32_bytes / self.track_bytes(built, store)

    track_compression_ratio.unit = "x vs float32"

    def track_file_count(self, built, store):
        return len(self.files)

    track_file_count.unit = "files"
