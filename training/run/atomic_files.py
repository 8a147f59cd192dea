"""Checkpoints and run files that are either the old one or the new one, never half of each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from training.errors import WriteFailed

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write that replaces ``path`` only once it is whole and on disk.

    Every file the project writes goes through here. It is written beside
    ``path``, fsynced, then renamed over it: a process killed at any moment
    leaves either the previous file or the new one; at worst a stray ``*.tmp``
    that the next run removes.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    with failed_write_reported(path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, mode, newline=None if "b" in mode else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    with atomic_file(path, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as error:
            # torch's zip writer, closing after a failed write, raises its own error over it.
            if isinstance(error.__context__, OSError):
                raise error.__context__ from error
            raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)


def append_whole(path: Path, text: str) -> None:
    """Appends ``text`` to ``path`` whole or not at all.

    A full disk can take part of a write: the file is cut back to where it ended.
    """
    data = memoryview(text.encode())
    with failed_write_reported(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            end = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError:
                os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)


@contextmanager
def failed_write_reported(path: Path, tmp: Path | None = None) -> Iterator[None]:
    """Turns a failed write of ``path`` into ``WriteFailed``, which names the file.

    A full disk fails a write with an ``OSError`` that names no file. ``tmp``,
    the half-written file beside ``path``, is removed whatever happens.
    """
    try:
        yield
    except OSError as error:
        raise WriteFailed.of(path, error) from error
    finally:
        if tmp is not None:
            # Where the folder could not be made, there is no tmp to remove, and the
            # error that says so would replace the one that names the file.
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def remove_stale_tmp_files(directory: Path) -> None:
    """Removes what a killed write left behind in ``directory``.

    A temporary file is named for the process writing it (``atomic_file``);
    one whose process is still running may be another command's write in
    progress (``predict`` beside a fit), and is left alone.
    """
    for tmp in directory.glob(f"*{TMP_SUFFIX}"):
        pid = tmp.name.removesuffix(TMP_SUFFIX).rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and _running(int(pid)):
            continue
        tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, saving atomically and loading with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Tensors saved on a GPU load on the CPU first; the Trainer then moves them.
        location: Any = map_location or "cpu"  # torch.load takes a device name too
        return super().load_checkpoint(path, map_location=location, weights_only=True)
