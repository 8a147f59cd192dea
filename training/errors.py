"""The errors a user can fix, each said in one line with the fix."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from training.run.stop_signals import exit_code


class UserError(Exception):
    """A problem with what the user asked for; the scripts say it in one line, no traceback."""

    exit_code = 2

    def line(self) -> str:
        """What the scripts print on stderr."""
        return f"error: {self}"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""

    exit_code = 1


class Stopped(UserError):
    """SIGINT or SIGTERM stopped a script where what it finished is kept.

    Not an error: the message is said as it is, and the exit code is the shell's for the signal.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = exit_code(signum)

    def line(self) -> str:
        return str(self)


class FitStopped(Stopped):
    """SIGINT or SIGTERM stopped a fit at the end of an epoch, with every finished epoch saved."""

    def __init__(self, signum: int, epochs: int, last: Path, resume_command: str) -> None:
        name = signal.Signals(signum).name
        kept = self.kept(epochs, last, resume_command)
        super().__init__(signum, f"{name} stopped the fit; {kept}")

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


def run_script(body: Callable[[], int | None]) -> int:
    """Runs a script's ``body`` and returns its exit code (0 when it returns none).

    What ends it early is said in one line on stderr, without a traceback: a
    ``UserError``, or Ctrl-C. During a fit, Ctrl-C stops it at the end of the
    epoch (``FitStopped``); anywhere else (while the data is made, during
    ``test``) it stops the script where it is, with the shell's exit code
    130. Nothing is left half-written: every file is written whole or not at
    all (``training.run.atomic_files``).
    """
    try:
        code = body()
    except UserError as error:
        print(error.line(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        # A second Ctrl-C while a stopped fit ends: the stop still says what it kept.
        stop = interrupt.__context__
        if not isinstance(stop, Stopped):
            stop = Stopped(signal.SIGINT, "SIGINT stopped the script; the files it wrote are whole")
        print(stop.line(), file=sys.stderr)
        return stop.exit_code
    return 0 if code is None else code


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
