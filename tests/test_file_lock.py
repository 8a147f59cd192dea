"""The one file lock of the project: what a run's and a sweep's locks are made of.

``flock`` locks belong to an open file, so two opens in this one process
stand for two processes; that the kernel drops a killed process's lock is
proved with real processes in ``test_run_lock.py`` and ``test_sweep.py``.
"""

from __future__ import annotations

from pathlib import Path

from training.run.file_lock import locked, release, try_lock, wait_for_lock


def test_an_exclusive_lock_keeps_out_every_other_until_released(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "run.lock"
    held = try_lock(path)
    assert held is not None and path.is_file()
    assert try_lock(path) is None
    assert try_lock(path, shared=True) is None
    release(held)
    again = try_lock(path)
    assert again is not None
    release(again)
    assert path.is_file(), "the file stays: a deleted one could be locked twice"


def test_shared_locks_are_held_together_and_keep_out_an_exclusive_one(tmp_path: Path) -> None:
    path = tmp_path / "readers.lock"
    readers = [wait_for_lock(path, shared=True), wait_for_lock(path, shared=True)]
    assert try_lock(path) is None
    release(readers.pop())
    assert try_lock(path) is None
    release(readers.pop())
    writer = try_lock(path)
    assert writer is not None
    release(writer)


def test_locked_holds_the_lock_for_its_block_only(tmp_path: Path) -> None:
    path = tmp_path / "sweep.lock"
    with locked(path):
        assert try_lock(path) is None
    after = try_lock(path)
    assert after is not None
    release(after)
