"""One fit at a time per run, and no folder moved under a reader's feet.

Two fits under one name would move each other's folders aside and mix their
files. So a fit, fresh or resumed, holds ``logs/.<name>.lock`` for its whole
life, and a second one is refused at once. ``validate``, ``test`` and
``predict`` share ``logs/.<name>.readers.lock`` instead: they run side by
side, and beside a fit of their own run, whose checkpoints are replaced
whole. Only a fresh fit's moving of the earlier run aside needs them gone.

The locks are the kernel's (``flock``): a lock goes with its process however
that process ends, SIGKILL included, so a lock left by a dead run never
blocks the next one. The files stay: deleting one would let one process lock
the deleted file while another locks its replacement. The fit's file holds
the pid of the fit that locked it last, for the message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from training.errors import UserError
from training.run.folders import log_dir


class RunInUse(UserError):
    """Another live process holds the run."""


class RunLock:
    """The locks of the run ``name`` under ``root``; each is held until ``release``."""

    def __init__(self, root: str | Path | None, name: str) -> None:
        # Beside the run's log folder, not in it: a fresh fit moves that folder aside.
        # Beside the run's log folder: a trial ``sweep/trial-3`` locks ``logs/sweep/.trial-3.lock``.
        run = log_dir(root, name)
        self.fit_path = run.parent / f".{run.name}.lock"
        self.readers_path = run.parent / f".{run.name}.readers.lock"
        self.name = name
        self._held: list[int] = []

    def hold_for_fit(self) -> None:
        """Takes the run for a fit, or raises ``RunInUse`` naming the fit that has it."""
        fd = self._open(self.fit_path)
        if not _try(fd, fcntl.LOCK_EX):
            pid, _, host = os.pread(fd, 256, 0).decode(errors="replace").strip().partition(" ")
            os.close(fd)
            where = "" if host in ("", socket.gethostname()) else f" on {host}"
            holder = f"a fit in process {pid}{where}" if pid else "a fit in another process"
            raise self._in_use(holder, self.fit_path)
        owner = f"{os.getpid()} {socket.gethostname()}\n".encode()
        os.pwrite(fd, owner, 0)
        os.ftruncate(fd, len(owner))
        self._held.append(fd)

    def hold_for_reading(self) -> None:
        """Shares the run with other readers; waits while a fresh fit moves folders."""
        fd = self._open(self.readers_path)
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._held.append(fd)

    @contextmanager
    def without_readers(self) -> Iterator[None]:
        """Holds off readers while the caller moves the run's folders."""
        fd = self._open(self.readers_path)
        try:
            if not _try(fd, fcntl.LOCK_EX):
                raise self._in_use("a validate, test or predict process", self.readers_path)
            yield
        finally:
            os.close(fd)

    def release(self) -> None:
        while self._held:
            os.close(self._held.pop())  # closing the last descriptor drops the lock

    def _open(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def _in_use(self, holder: str, path: Path) -> RunInUse:
        return RunInUse(
            f"run {self.name!r} is in use by {holder} ({path});"
            " wait for it to end, or pass another --name"
        )


def _try(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
