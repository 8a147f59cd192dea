"""Locks that go with their process: the kernel's ``flock`` on a file that stays.

The kernel drops an ``flock`` when the process that holds it ends, however it
ends, SIGKILL included, so a lock left by a dead process never blocks the next
one. The files are never deleted: deleting one would let one process lock the
deleted file while another locks its replacement. A lock is held through the
descriptor these functions return, until ``release`` closes it.

Used by the run's own locks (``training/run/run_lock.py``) and by a sweep's
(``training/sweeps/storage.py``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def try_lock(path: Path, shared: bool = False) -> int | None:
    """The lock on ``path``, held through the returned descriptor; None if another has it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, _operation(shared) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def wait_for_lock(path: Path, shared: bool = False) -> int:
    """The lock on ``path``, waiting while another process has it; held through the descriptor."""
    fd = _open(path)
    try:
        fcntl.flock(fd, _operation(shared))
    except BaseException:
        os.close(fd)  # Ctrl-C while waiting: no descriptor is left open
        raise
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the last descriptor of the file drops its flock


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Holds the exclusive lock on ``path``, waiting for it if another process has it."""
    fd = wait_for_lock(path)
    try:
        yield
    finally:
        release(fd)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _operation(shared: bool) -> int:
    return fcntl.LOCK_SH if shared else fcntl.LOCK_EX
