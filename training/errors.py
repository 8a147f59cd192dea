"""The errors a user can fix, each said in one line with the fix."""

from __future__ import annotations

import signal
from pathlib import Path

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
