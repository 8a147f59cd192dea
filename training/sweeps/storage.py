"""Where a sweep's trials are recorded.

The default storage is Optuna's journal file in the sweep's folder: it needs no
server, and Optuna recommends it over SQLite for several processes. Its appends
are serialised by ``training/run/file_lock.py``'s lock, which the kernel drops
when its process dies, even by SIGKILL: Optuna's own journal locks (a symlink
or an ``O_EXCL`` file) outlive a killed process and make the next run wait out
their 30-second grace period.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

# Optuna exports its two journal locks but not their base class.
from optuna.storages.journal._file import BaseJournalFileLock
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

from training.errors import UserError
from training.run import file_lock

JOURNAL = "study.journal"
# How many times a storage URL is opened while other machines create its tables.
TABLE_TRIES = 5


class FlockJournalLock(BaseJournalFileLock):
    """Serialises appends to the journal; released by the kernel if its holder is killed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self._fd = file_lock.wait_for_lock(self._path)
        return True

    def release(self) -> None:
        if self._fd is not None:
            file_lock.release(self._fd)
            self._fd = None


def open_storage(url: str | None, folder: Path) -> optuna.storages.BaseStorage:
    """The journal file in ``folder``, or the Optuna storage at ``url`` (connected now)."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        journal = folder / JOURNAL
        backend = JournalFileBackend(
            str(journal), lock_obj=FlockJournalLock(folder / "journal.lock")
        )
        return JournalStorage(backend)
    try:
        return _connect(url)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot open storage {url}: {reason}; check the URL and that its server is running"
        ) from error


def _connect(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url``, which creates the tables of a database that has none.

    Machines that start on a new database together each create them; all but
    one find them made meanwhile (a duplicate key or table), and the next try
    sees them.
    """
    for _ in range(TABLE_TRIES - 1):
        with contextlib.suppress(IntegrityError, ProgrammingError):
            return optuna.storages.RDBStorage(url)
    return optuna.storages.RDBStorage(url)
