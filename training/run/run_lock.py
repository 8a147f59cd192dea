"""One fit at a time per run, and no folder moved under a reader's feet.

Two fits under one name would move each other's folders aside and mix their
files. So a fit, fresh or resumed, holds ``logs/.<name>.lock`` for its whole
life, and a second one is refused at once. ``validate``, ``test`` and
``predict`` share ``logs/.<name>.readers.lock`` instead: they run side by
side, and beside a fit of their own run, whose checkpoints are replaced
whole. Only a fresh fit's moving of the earlier run aside needs them gone.

The locks are ``training/run/file_lock.py``'s, which a process keeps until it
ends, however it ends, so a lock left by a dead run never blocks the next one.
The fit's file holds the pid of the fit that locked it last, for the message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from training.errors import UserError
from training.run import file_lock
from training.run.folders import log_dir


class RunInUse(UserError):
    """Another live process holds the run."""


class RunLock:
    """The locks of the run ``name`` under ``root``; each is held until ``release``."""

    def __init__(self, root: str | Path | None, name: str) -> None:
        # Beside the run's log folder, not in it: a fresh fit moves that folder aside.
        # A trial ``sweep/trial-3`` locks ``logs/sweep/.trial-3.lock``.
        run = log_dir(root, name)
        self.fit_path = run.parent / f".{run.name}.lock"
        self.readers_path = run.parent / f".{run.name}.readers.lock"
        self.name = name
        self._held: list[int] = []

    def hold_for_fit(self) -> None:
        """Takes the run for a fit, or raises ``RunInUse`` naming the fit that has it."""
        fd = file_lock.try_lock(self.fit_path)
        if fd is None:
            owner = self.fit_path.read_bytes()[:256].decode(errors="replace")
            pid, _, host = owner.strip().partition(" ")
            where = "" if host in ("", socket.gethostname()) else f" on {host}"
            holder = f"a fit in process {pid}{where}" if pid else "a fit in another process"
            raise self._in_use(holder, self.fit_path)
        owner_line = f"{os.getpid()} {socket.gethostname()}\n".encode()
        os.pwrite(fd, owner_line, 0)
        os.ftruncate(fd, len(owner_line))
        self._held.append(fd)

    def hold_for_reading(self) -> None:
        """Shares the run with other readers; waits while a fresh fit moves folders."""
        self._held.append(file_lock.wait_for_lock(self.readers_path, shared=True))

    @contextmanager
    def without_readers(self) -> Iterator[None]:
        """Holds off readers while the caller moves the run's folders."""
        fd = file_lock.try_lock(self.readers_path)
        if fd is None:
            raise self._in_use("a validate, test, predict or lr_find process", self.readers_path)
        try:
            yield
        finally:
            file_lock.release(fd)

    def release(self) -> None:
        while self._held:
            file_lock.release(self._held.pop())

    def _in_use(self, holder: str, path: Path) -> RunInUse:
        return RunInUse(
            f"run {self.name!r} is in use by {holder} ({path});"
            " wait for it to end, or pass another --name"
        )
