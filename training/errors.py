"""The errors a user can fix, each said in one line with the fix."""


class UserError(Exception):
    """A problem with what the user asked for; the CLI prints it without a traceback."""

    exit_code = 2


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""

    exit_code = 1
