"""The reader settles glibc's malloc thresholds once per process (``_chunks.settle_heap``), so the
transient buffers of each read are reused from the heap instead of being trimmed and faulted in
again on every read (#9: ~355 page faults and 2.2x the time per compressed window in processes
that had never freed a big block). Counted in page faults, in fresh interpreters."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import eegbench
from conftest import make_recording

CHILD = textwrap.dedent("""
    import resource, sys
    import eegbench
    rec = eegbench.open(sys.argv[1])[0]
    x = rec.get_data(start=100, stop=1100)  # the first read of the process
    assert x.shape == (8, 1000)
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def cycle():  # a 4 MiB transient: allocated, every page written, freed
        b = bytearray(4 << 20)
        b[::4096] = b"\\x01" * len(b[::4096])
        del b
    cycle()  # the first one may fault its pages in
    f0 = faults()
    for _ in range(10):
        cycle()
    from eegbench.formats import _chunks
    print(_chunks._HEAP_SETTLED, _chunks.SETTLE_HEAP_BYTES, faults() - f0)
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not sys.platform.startswith("linux"),
                    reason="glibc's malloc thresholds")
def test_after_the_first_read_transients_are_reused_not_faulted_in_again(tmp_path):
    rec = make_recording(8, 5_000, sfreq=500.0)
    path = eegbench.save(rec, tmp_path / "s", format="zarr", compression="blosc-zstd", chunk_seconds=1.0)
    np.testing.assert_array_equal(eegbench.open(path)[0].get_data(start=100, stop=1100),
                                  rec.get_data(start=100, stop=1100))

    def child(settle: str) -> tuple[int, str]:
        # a clean environment: malloc tunables (MALLOC_*_, GLIBC_TUNABLES) or a preload would change the test
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
        env["EEGBENCH_SETTLE_HEAP"] = settle
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True,
                             check=True, timeout=120)
        line = out.stdout.strip().splitlines()[-1]
        return int(line.split()[-1]), f"{line!r}, stderr {out.stderr[-500:]!r}"

    unsettled, _ = child("0")
    if unsettled < 100:  # this interpreter's start-up already raised the thresholds: nothing to tell apart
        pytest.skip(f"10 transient 4 MiB blocks cost only {unsettled} page faults without settling here")
    settled, detail = child("1")
    assert settled < 50, f"transients still faulted in on every cycle after the first read ({unsettled} unsettled): {detail}"
