"""The errors a user can fix, each said in one line with the fix."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from training.stop_signals import exit_code


class UserError(Exception):
    """A problem with what the user asked for; the CLI prints it without a traceback."""

    exit_code = 2


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""

    exit_code = 1


class FitStopped(UserError):
    """SIGINT or SIGTERM stopped a fit at the end of an epoch, with every finished epoch saved."""

    def __init__(self, signum: int, epochs: int, last: Path, resume_command: str) -> None:
        self.signum = signum
        self.exit_code = exit_code(signum)
        name = signal.Signals(signum).name
        super().__init__(f"{name} stopped the fit; " + self.kept(epochs, last, resume_command))

    @staticmethod
    def kept(epochs: int, last: Path, resume_command: str) -> str:
        """What a stopped fit kept, and the command that continues it."""
        if epochs == 0 or not last.is_file():
            return "no epoch had finished, so there is nothing to resume; start the fit again"
        return f"{last} holds its {epochs} finished epochs; resume with: {resume_command}"


class ScriptArgumentParser(argparse.ArgumentParser):
    """``argparse`` for the scripts: a bad argument is a ``UserError`` naming the usage."""

    def __init__(self, doc: str | None, usage_line: str) -> None:
        super().__init__(description=doc.splitlines()[0] if doc else None)
        self.usage_line = usage_line

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (usage: {self.usage_line})")


def run_script(body: Callable[[], None]) -> int:
    """Runs a script's ``body``; a ``UserError`` becomes one line on stderr and its exit code."""
    try:
        body()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


class WriteFailed(UserError):
    """A file could not be written: a full disk, a quota, a file-size limit.

    Raised by the project's writers, which leave the previous file as it was
    and nothing half-written beside it. ``then`` says what was kept and what to
    do; the command that knows more says it with ``instead``.
    """

    exit_code = 1

    def __init__(
        self, path: object, reason: str, then: str = "free some space, then run it again"
    ) -> None:
        super().__init__(f"cannot write {path} ({reason}); {then}")
        self.path = path
        self.reason = reason

    @classmethod
    def of(cls, path: object, error: OSError) -> WriteFailed:
        return cls(path, error.strerror or str(error))

    def instead(self, then: str) -> WriteFailed:
        return WriteFailed(self.path, self.reason, then)
