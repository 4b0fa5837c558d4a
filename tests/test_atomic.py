"""Never data loss: overwrite replaces only stores, every crash point of save/overwrite ends in
"old store" or "new store", and temporaries of live writers are never removed by others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import eegbench
from conftest import make_recording
from eegbench import atomic
from eegbench.cli import main as cli_main
from eegbench.errors import NotAStoreError, StoreExistsError, StoreNotFoundError


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


@pytest.mark.parametrize("kind", ["folder", "file", "empty-folder", "symlink"])
def test_overwrite_refuses_what_is_not_a_store(tmp_path, kind):
    dest = tmp_path / "mydir"
    if kind == "folder":
        dest.mkdir()
        (dest / "thesis.tex").write_text("years of work")
        (dest / "sub").mkdir()
        (dest / "sub" / "data.bin").write_bytes(b"x" * 100)
    elif kind == "empty-folder":
        dest.mkdir()
    elif kind == "file":
        dest.write_text("precious")
    else:
        target = tmp_path / "real"
        eegbench.save(make_recording(2, 100), target, "parquet")
        dest.symlink_to(target)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(StoreExistsError, match="not an eegbench store"):
        eegbench.save(make_recording(2, 100), dest, "zarr", overwrite=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    if kind == "folder":
        assert (dest / "thesis.tex").read_text() == "years of work"
    assert _leftovers(dest) == []


def test_cli_overwrite_of_a_non_store_is_a_one_line_error(tmp_path, capsys):
    src = tmp_path / "src"
    eegbench.save(make_recording(2, 100), src, "hdf5")
    dest = tmp_path / "mydir"
    dest.mkdir()
    (dest / "keep.txt").write_text("keep")
    assert cli_main(["convert", str(src), str(dest), "--format", "zarr", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "not an eegbench store" in err and "Traceback" not in err
    assert (dest / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("exchange", [True, False])
def test_overwrite_replaces_a_store_and_leaves_nothing(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setenv("EEGBENCH_NO_RENAME_EXCHANGE", "1")
    dest = tmp_path / "s"
    eegbench.save(make_recording(2, 100, seed=1), dest, "parquet")
    eegbench.save(make_recording(3, 120, seed=2), dest, "zarr", overwrite=True)
    assert eegbench.open(dest)[0].n_channels == 3
    assert _leftovers(dest) == []


# --- kill points -------------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import eegbench
    from eegbench import atomic
    kill_at, fmt = int(sys.argv[1]), sys.argv[2]
    count = [0]
    def hit(name):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    atomic.STEP_HOOK = hit
    # also kill inside the file-system operations of the write, the publish and the old store's removal
    for attr in ("rename", "unlink", "rmdir", "fsync", "mkdir"):
        real = getattr(os, attr)
        def wrap(*a, _real=real, _attr=attr, **k):
            hit(_attr)
            return _real(*a, **k)
        setattr(os, attr, wrap)
    rec = eegbench.Recording(np.arange(900, dtype=np.float32).reshape(3, 300), 100.0, ["a", "b", "c"])
    eegbench.save(rec, sys.argv[3], fmt, overwrite=sys.argv[4] == "1", chunk_seconds=0.5)
    print("DONE", count[0])
""")

OLD = np.arange(400, dtype=np.float32).reshape(2, 200)
NEW = np.arange(900, dtype=np.float32).reshape(3, 300)


def kill_points(total: int, full: bool, last: int = 10) -> list[int]:
    """Every step when ``full``; otherwise the publish (the ``last`` steps) and 2 earlier ones."""
    if full or total <= last + 2:
        return list(range(1, total + 1))
    return sorted({1, total // 2} | set(range(total - last + 1, total + 1)))


def run_kill_points(tmp_path: Path, fmt: str, exchange: bool, full: bool, overwrite: bool = True) -> dict[str, int]:
    """SIGKILL a save-with-overwrite (``overwrite``; else a save to a new path) at each step; after
    each, the next open must see exactly the old store (none, for a new path) or the new one,
    with nothing left beside it."""
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {k: v for k, v in os.environ.items() if k != "EEGBENCH_NO_RENAME_EXCHANGE"}
    if not exchange:
        env["EEGBENCH_NO_RENAME_EXCHANGE"] = "1"

    def trial(kill_at: int) -> tuple[int, subprocess.CompletedProcess]:
        dest = tmp_path / f"{fmt}-{int(exchange)}-{int(overwrite)}-{kill_at}"
        if overwrite:
            eegbench.save(eegbench.Recording(OLD, 100.0, ["a", "b"]), dest, fmt, chunk_seconds=0.5)
        proc = subprocess.run([sys.executable, str(script), str(kill_at), fmt, str(dest), str(int(overwrite))],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
        if not overwrite and proc.returncode:
            # killed before the publish: no store at the path; the next save removes what was left
            if not dest.exists():
                with pytest.raises(StoreNotFoundError):
                    eegbench.open(dest)
                eegbench.save(eegbench.Recording(OLD, 100.0, ["a", "b"]), dest, fmt, chunk_seconds=0.5)
        data = eegbench.open(dest)[0].get_data()  # the next open recovers
        state = "old" if data.shape == OLD.shape else "new"
        np.testing.assert_array_equal(data, OLD if state == "old" else NEW)
        assert _leftovers(dest) == [], (kill_at, _leftovers(dest))
        eegbench.verify(dest)
        return state, proc

    _, done = trial(0)
    total = int(done.stdout.split()[-1])
    outcomes = {"old": 0, "new": 1, "points": total}
    for k in kill_points(total, full, 10 if overwrite else 5):  # a fresh save publishes with one rename
        state, _ = trial(k)
        outcomes[state] += 1
    return outcomes


@pytest.mark.parametrize(("fmt", "exchange"), [("parquet", True), ("parquet", False), ("zarr", True),
                                               ("hdf5", False)])
def test_every_kill_point_of_overwrite_ends_in_old_or_new(tmp_path, fmt, exchange):
    # every step of every format and mode: EEGBENCH_FUZZ_FULL=1 (or python -m tests.fuzz.run --full)
    outcomes = run_kill_points(tmp_path, fmt, exchange, full=bool(os.environ.get("EEGBENCH_FUZZ_FULL")))
    assert outcomes["old"] and outcomes["new"] > 1


_FULL = pytest.mark.skipif(not os.environ.get("EEGBENCH_FUZZ_FULL"), reason="every kill point of the other "
                           "format x publish-mode pairs and of fresh saves: set EEGBENCH_FUZZ_FULL=1")


@_FULL
@pytest.mark.parametrize(("fmt", "exchange"), [("zarr", False), ("hdf5", True)])
def test_every_kill_point_of_overwrite_other_modes(tmp_path, fmt, exchange):
    outcomes = run_kill_points(tmp_path, fmt, exchange, full=True)
    assert outcomes["old"] and outcomes["new"] > 1


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
def test_every_kill_point_of_a_fresh_save_leaves_no_store_or_the_new_one(tmp_path, fmt):
    # the default run samples the steps of one format's fresh save; the full run all steps of all
    full = bool(os.environ.get("EEGBENCH_FUZZ_FULL"))
    if fmt != "parquet" and not full:
        pytest.skip("fresh-save kill points of hdf5/zarr: set EEGBENCH_FUZZ_FULL=1")
    outcomes = run_kill_points(tmp_path, fmt, True, full=full, overwrite=False)
    assert outcomes["old"] and outcomes["new"] > 1


# --- shared-storage-safe temporaries ------------------------------------------------------------
_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from eegbench import atomic
    with atomic.temporary(Path(sys.argv[1])) as tmp:
        (tmp / "partial.bin").write_bytes(b"x" * 1000)
        print(tmp, flush=True)
        time.sleep(600)
""")


def test_live_writer_temporary_is_never_removed_by_another_process(tmp_path):
    dest = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(dest)], stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.is_dir()
        eegbench.save(make_recording(2, 100), dest, "parquet")  # a concurrent save
        eegbench.save(make_recording(2, 100), dest, "zarr", overwrite=True)
        eegbench.open(dest)
        atomic.recover(dest)
        assert (tmp / "partial.bin").stat().st_size == 1000  # untouched: its writer is alive
    finally:
        proc.kill()
        proc.wait()
    # its writer is gone now (SIGKILL: no finally ran): the next save proves it and removes it
    assert tmp.is_dir()
    eegbench.save(make_recording(2, 100), dest, "hdf5", overwrite=True)
    assert not tmp.exists() and _leftovers(dest) == []


def test_writer_removes_its_own_temporary_on_error(tmp_path):
    dest = tmp_path / "s"
    with pytest.raises(RuntimeError):
        with atomic.temporary(dest) as tmp:
            (tmp / "x").write_text("x")
            raise RuntimeError("boom")
    assert _leftovers(dest) == []


def test_age_limit_only_when_locks_do_not_work(tmp_path, monkeypatch):
    dest = tmp_path / "s"
    tmp = tmp_path / f".s{atomic.TMP_TAG}abc"
    tmp.mkdir()
    lock = tmp_path / f".s{atomic.TMP_TAG}abc{atomic.LOCK_SUFFIX}"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)  # held by "someone": an open file description of ours
    try:
        old = time.time() - 3600
        os.utime(tmp, (old, old))
        monkeypatch.setenv("EEGBENCH_STALE_TMP_SECONDS", "60")
        atomic.recover(dest)
        assert tmp.is_dir()  # the lock is held and works: the age never overrides a held lock
    finally:
        os.close(fd)
    atomic.recover(dest)
    assert not tmp.exists() and not lock.exists()


# --- readers against a concurrent overwrite ----------------------------------------------------
@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_reader_never_mixes_two_generations(tmp_path, fmt, codec):
    from eegbench.errors import StoreChangedError

    old = eegbench.Dataset([eegbench.Recording(np.full((2, 300), i + 1, np.float32), 100.0, ["a", "b"])
                            for i in range(3)])
    new = eegbench.Dataset([eegbench.Recording(np.full((2, 300), -(i + 1), np.float32), 100.0, ["a", "b"])
                            for i in range(3)])
    dest = tmp_path / "s"
    eegbench.save(old, dest, fmt, compression=codec)
    ds = eegbench.open(dest)
    np.testing.assert_array_equal(ds[0].get_data(), old[0].get_data())  # recording 0's files are open
    eegbench.save(new, dest, fmt, compression=codec, overwrite=True)
    mixed = 0
    for i in range(3):
        try:
            got = ds[i].get_data()
        except StoreChangedError:
            continue
        mixed += not np.array_equal(got, old[i].get_data())
    assert mixed == 0
    with pytest.raises(StoreChangedError):
        ds[2].get_data(start=0, stop=10)
    np.testing.assert_array_equal(eegbench.open(dest)[2].get_data(), new[2].get_data())


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "parquet"])
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_reader_thread_against_repeated_overwrites_never_mixes(tmp_path, fmt, codec):
    """A reader thread reads every recording in a loop while the store is overwritten 4 times:
    every read it gets equals the generation it opened (else StoreChangedError, then it reopens)."""
    import threading

    from eegbench.errors import StoreChangedError

    def generation(g: int) -> eegbench.Dataset:  # sample values name the generation and recording
        return eegbench.Dataset([eegbench.Recording(np.full((2, 300), 10 * g + i, np.float32), 100.0, ["a", "b"])
                                 for i in range(3)])

    dest = tmp_path / "s"
    eegbench.save(generation(1), dest, fmt, compression=codec)
    done = threading.Event()
    seen: dict[str, int] = {"reads": 0, "changed": 0, "mixed": 0, "other": 0}

    def reader() -> None:
        ds, gen = None, None
        while not done.is_set() or seen["reads"] < 20:
            try:
                if ds is None:
                    ds = eegbench.open(dest)
                    gen = int(ds[0].get_data(start=0, stop=1)[0, 0]) // 10
                for i in range(3):
                    got = ds[i].get_data(start=37 * i, stop=37 * i + 200)
                    seen["reads"] += 1
                    seen["mixed"] += not np.array_equal(got, np.full((2, 200), 10 * gen + i, np.float32))
            except StoreChangedError:
                seen["changed"] += 1
                ds.close()
                ds = None
            except (NotAStoreError, FileNotFoundError):
                ds = None  # caught between the two renames of the fallback publish: open again
            except Exception as exc:  # noqa: BLE001 - counted and shown
                seen["other"] += 1
                seen.setdefault("errors", []).append(repr(exc)[:200])
                ds = None

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for g in range(2, 6):
            eegbench.save(generation(g), dest, fmt, compression=codec, overwrite=True)
    finally:
        done.set()
        thread.join(timeout=300)
    assert not thread.is_alive()
    assert seen["mixed"] == 0 and seen["other"] == 0, seen
    assert seen["reads"] >= 20
