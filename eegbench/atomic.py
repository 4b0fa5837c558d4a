"""Publishing a store atomically, and recovering from a save or overwrite that was interrupted.

A save writes everything into a hidden temporary sibling ``.<name>.eegbench-tmp-<id>`` and
publishes it with a rename; nothing else ever touches ``<name>``. The writer holds an exclusive
``flock`` on ``.<name>.eegbench-tmp-<id>.lock`` for the whole write, so any other process can
*prove* a temporary abandoned (it can take the lock) rather than guess from a pid, which is
meaningless across the machines that share a network file system. A writer removes its own
temporary in ``finally``; everyone else removes one only when its lock is free (or, on a file
system without working locks, when it is older than ``EEGBENCH_STALE_TMP_SECONDS``, if the user
set it).

Overwrite (the destination is an existing store):

1. ``renameat2(tmp, dest, RENAME_EXCHANGE)`` swaps the two directories in one step (Linux local
   file systems): ``dest`` is the new store and the temporary name holds the old one, which is
   then removed. Every crash point leaves ``dest`` = old store or new store; the leftover
   temporary (a complete old store, or a partial new one) is garbage that the next
   :func:`recover` removes.
2. Where the exchange is not supported (NFS, macOS, ...): ``dest`` is renamed to
   ``.<name>.eegbench-old-<id>``, then the temporary to ``dest``, then the old copy is removed.
   A crash between the two renames leaves no ``dest``: the next :func:`recover` (run by every
   ``open`` and ``save``) renames the old store back; a crash while removing it leaves a partial
   ``-old-`` folder that :func:`recover` removes because ``dest`` exists.

Only an eegbench store is ever replaced: a directory (or file) without ``eegbench.json`` is
refused with :class:`~eegbench.errors.StoreExistsError` and left untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreExistsError

HEADER = "eegbench.json"
TMP_TAG = ".eegbench-tmp-"
OLD_TAG = ".eegbench-old-"
LOCK_SUFFIX = ".lock"

_RENAME_EXCHANGE = 2
_OWN: set[str] = set()  # ids of temporaries written by this process (POSIX locks are per process)
_OWN_LOCK = threading.Lock()

#: test hook: called with a step name at every step of publish (fault injection in tests/fuzz)
STEP_HOOK = None


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def is_store(path: Path) -> bool:
    """Whether ``path`` is an eegbench store (a real directory holding a regular ``eegbench.json``).

    A damaged store still counts (its header exists); a symlink, a plain file or a folder of
    anything else does not.
    """
    try:
        return path.is_dir() and not path.is_symlink() and (path / HEADER).is_file() \
            and not (path / HEADER).is_symlink()
    except OSError:
        return False


def check_replaceable(path: Path) -> None:
    """Raise :class:`StoreExistsError` unless ``path`` is absent or an eegbench store."""
    if os.path.lexists(path) and not is_store(path):
        kind = "a symlink" if path.is_symlink() else "a folder" if path.is_dir() else "a file"
        raise StoreExistsError(f"{path} exists and is {kind} that is not an eegbench store (no {HEADER}); "
                               "overwrite only replaces eegbench stores — remove it yourself or choose "
                               "another destination")


# ---------------------------------------------------------------------------------------------
# temporaries
# ---------------------------------------------------------------------------------------------
def _names(path: Path, ident: str) -> tuple[Path, Path, Path]:
    parent, name = path.parent, path.name
    return (parent / f".{name}{TMP_TAG}{ident}", parent / f".{name}{TMP_TAG}{ident}{LOCK_SUFFIX}",
            parent / f".{name}{OLD_TAG}{ident}")


@contextlib.contextmanager
def temporary(path: Path) -> Iterator[Path]:
    """A locked temporary sibling of ``path`` for a writer; removed in ``finally`` unless published.

    The lock file is created and locked *before* the directory exists and removed *after* the
    directory is gone, so a temporary without a lock file is always abandoned.
    """
    ident = uuid.uuid4().hex[:12]
    tmp, lock, _old = _names(path, ident)
    with _OWN_LOCK:
        _OWN.add(ident)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _lock(fd, blocking=True)
        tmp.mkdir()
        try:
            yield tmp
        finally:
            _rmtree(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)  # releases the lock
        with _OWN_LOCK:
            _OWN.discard(ident)


def _lock(fd: int, blocking: bool) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            path.unlink()
    else:
        import shutil  # here, not at import: shutil loads bz2 and lzma (import eegbench, issue #9)

        shutil.rmtree(path, ignore_errors=True)


def _stale_age() -> float | None:
    text = os.environ.get("EEGBENCH_STALE_TMP_SECONDS")
    try:
        return float(text) if text else None
    except ValueError:
        return None


@contextlib.contextmanager
def _abandoned(lock: Path, entry: Path) -> Iterator[bool]:
    """Yields whether the writer of ``lock`` is provably gone; holds its lock meanwhile."""
    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield True  # the writer creates its lock first and removes it last
        return
    except OSError:
        yield False  # read-only folder or similar: cannot prove anything
        return
    try:
        try:
            free = _lock(fd, blocking=False)
        except OSError:  # no working locks here: only the user's age limit can decide
            age = _stale_age()
            free = age is not None and time.time() - entry.lstat().st_mtime > age
        yield free
    finally:
        os.close(fd)


def recover(path: Path) -> None:
    """Finish what an interrupted save or overwrite of ``path`` left behind.

    Restores an old store whose overwrite died between its two renames (``path`` missing), and
    removes abandoned temporaries and old copies. Never touches anything a live writer holds.
    Best effort: a read-only folder is left as it is.
    """
    path = Path(path)
    prefix = f".{path.name}."
    try:
        with os.scandir(path.parent) as it:
            names = [e.name for e in it if e.name.startswith(prefix)]
    except OSError:
        return
    if not names:
        return
    for name in sorted(names):
        rest = name[len(prefix) - 1:]
        for tag in (TMP_TAG, OLD_TAG):
            if rest.startswith(tag) and not rest.endswith(LOCK_SUFFIX):
                ident = rest[len(tag):]
                _recover_one(path, ident, tag)
    # lock files whose temporary is gone and whose writer is gone
    for name in names:
        rest = name[len(prefix) - 1:]
        if rest.startswith(TMP_TAG) and rest.endswith(LOCK_SUFFIX):
            ident = rest[len(TMP_TAG):-len(LOCK_SUFFIX)]
            tmp, lock, old = _names(path, ident)
            if ident in _OWN or os.path.lexists(tmp) or os.path.lexists(old):
                continue
            with _abandoned(lock, lock) as gone:
                if gone:
                    with contextlib.suppress(OSError):
                        os.unlink(lock)


def wait_published(path: Path, timeout: float = 2.0) -> None:
    """If ``path`` is missing because a live overwrite is between its two renames, wait for it."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    prefix = f".{path.name}{OLD_TAG}"
    while not os.path.lexists(path) and time.monotonic() < deadline:
        try:
            with os.scandir(path.parent) as it:
                busy = any(e.name.startswith(prefix) for e in it)
        except OSError:
            return
        if not busy:
            return
        time.sleep(0.005)
        recover(path)


def _recover_one(path: Path, ident: str, tag: str) -> None:
    if ident in _OWN:
        return
    tmp, lock, old = _names(path, ident)
    entry = tmp if tag == TMP_TAG else old
    if not os.path.lexists(entry):
        return
    with _abandoned(lock, entry) as gone:
        if not gone:
            return
        if tag == OLD_TAG and not os.path.lexists(path) and is_store(old):
            try:
                os.rename(old, path)  # the overwrite died between its renames: the old store returns
                _fsync_dir(path.parent)
                return
            except OSError:
                pass
        _rmtree(entry)


# ---------------------------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------------------------
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    global _libc
    if os.environ.get("EEGBENCH_NO_RENAME_EXCHANGE"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished store ``tmp`` to ``path``: old store or new store at every instant."""
    ident = tmp.name.rsplit(TMP_TAG, 1)[-1]
    _step("publish")
    if not os.path.lexists(path):
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise StoreExistsError(f"{path} appeared while writing; pass overwrite=True to replace it") from exc
            raise
        # rename() replaces an empty directory that appeared meanwhile; that is no data loss
        _step("renamed")
        _fsync_dir(path.parent)
        return
    if not overwrite:
        raise StoreExistsError(f"{path} appeared while writing; pass overwrite=True to replace it")
    check_replaceable(path)
    if _exchange(tmp, path):
        _step("exchanged")
        _fsync_dir(path.parent)
        _rmtree(tmp)  # now the old store
        _step("removed-old")
        return
    old = _names(path, ident)[2]
    os.rename(path, old)
    _step("moved-old")
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    _step("renamed")
    _fsync_dir(path.parent)
    _rmtree(old)
    _step("removed-old")
