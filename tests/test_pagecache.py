"""eegbench.pagecache: the page-cache helpers the benchmarks and `recommend --data` share."""

from __future__ import annotations

from eegbench import pagecache


class _Rec:
    def __init__(self, log: list) -> None:
        self.log = log

    def get_data(self, start: int, stop: int):
        self.log.append((start, stop))
        return [0.0] * (stop - start)


def test_warm_window_times_reads_each_window_once_untimed_then_times_it():
    log: list = []
    ds = [_Rec(log), _Rec(log)]
    windows = [(0, 10), (1, 0), (0, 500)]
    times = pagecache.warm_window_times(ds, windows, 100)
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert log == [(10, 110), (0, 100), (500, 600)] * 2  # warm pass, then the timed pass


def test_evict_of_a_missing_file_is_an_error_not_a_silent_warm_figure(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError):
        pagecache.evict([tmp_path / "missing.bin"])
