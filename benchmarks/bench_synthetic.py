"""Synthetic data generation: how long the quantized HBN-like generator takes for one recording.

The benchmarks' fixtures and every synthetic store are generated, so a slow generator slows the main job;
this replaces a timed unit test (speed goals live in benchmarks, not in tests)."""

from __future__ import annotations

from eegbench.sources.synthetic import make_profile


class Generate:
    """One recording of the standard profile (129 ch x 500 Hz x 5 min), all samples as ADC counts."""

    number = 1
    repeat = (3, 10, 20.0)
    version = 1
    timeout = 120

    def setup(self):
        self.recording = make_profile("standard", n_recordings=1)[0]

    def time_generate_standard_recording(self):
        self.recording.source.read_counts(0, self.recording.n_times)
