"""How the scripts start and end a process, and the command that runs one again.

Importing torch, Lightning and the libraries they import makes millions of
objects that live as long as the process. Python's collector would walk all of
them again at every full collection during the imports (about a second here)
and once more at exit (about another second). Both are avoided by freezing
them: frozen objects are kept out of every collection and left to the OS.

Those imports take a second or two, before the script's ``run_script`` runs:
``script_imports`` makes a Ctrl-C during them end the script as one anywhere
else does. A script that stops early says how to carry on: ``script_command``.
"""

from __future__ import annotations

import gc
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import NoReturn

from training.errors import run_script
from training.run.stop_signals import launcher


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Imports in this block run without collection; what they made is frozen after."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@contextmanager
def script_imports() -> Iterator[None]:
    """A script's imports of torch and Lightning: ``long_lived_imports``, stoppable by Ctrl-C.

    A Ctrl-C during them is said as ``run_script`` says one later: its one
    line, exit code 130, no traceback. A SIGTERM needs nothing here: no
    handler is installed yet, so it ends the process at once, and the shell
    reports 143, as for any process it ends.
    """
    try:
        with long_lived_imports():
            yield
    except KeyboardInterrupt as interrupt:
        exit_without_collecting(run_script(partial(_raise, interrupt)))


def _raise(error: BaseException) -> NoReturn:
    raise error


def exit_without_collecting(code: int) -> NoReturn:
    """Exits with ``code`` once everything is written and closed, leaving the objects to the OS."""
    gc.freeze()
    sys.exit(code)


def script_command(args: Sequence[str]) -> str:
    """The shell line that runs this script again with ``args``, through its launcher if any.

    The interpreter is given relative to the working directory when it lies
    inside it (``.venv/bin/python``), and the script as it was started. A
    process that torchrun started is started again by the same torchrun
    command (read from the torchrun process, its parent), with ``args``; where
    that cannot be read, and under srun, whose command no task can see, the
    launcher's own options are a placeholder: the ones it was started with.
    """
    script = shlex.join([sys.argv[0], *args])
    started_by = launcher()
    if started_by == "torchrun":
        torchrun = _torchrun_command()
        line = f"{torchrun or 'torchrun ' + AS_BEFORE} {script}"
        if "SLURM_STEP_ID" in os.environ:
            line = f"srun {AS_BEFORE} {line}"
        return line
    line = f"{shlex.quote(_runnable(sys.executable))} {script}"
    return f"srun {AS_BEFORE} {line}" if started_by == "srun" else line


# Where a launcher's options go that this process cannot know.
AS_BEFORE = "<its options as before>"


def _runnable(path: str) -> str:
    """``path`` relative to the working directory if inside it (``./x`` if there), else absolute."""
    relative = os.path.relpath(path)
    if relative.startswith(".."):
        return os.path.abspath(path)
    if os.sep not in relative:  # the working directory's own: not one on PATH
        return os.path.join(os.curdir, relative)
    return relative


def _torchrun_command() -> str | None:
    """The torchrun command that started this process, up to the script; None if unknown.

    torchrun runs ``python -u <script> <args>`` as a child of its own process,
    whose command line (Linux's ``/proc``) ends with that script and those args.
    """
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            parent = [word.decode() for word in f.read().split(b"\0")[:-1]]
    except (OSError, UnicodeDecodeError):
        return None
    mine = sys.argv
    start = len(parent) - len(mine)
    if start < 1 or parent[start:] != mine:
        return None
    before = parent[:start]
    if os.path.basename(before[1] if len(before) > 1 else "") == "torchrun":
        before = before[1:]  # python running the torchrun script: the script alone runs it
    elif "torch.distributed.run" not in before and os.path.basename(before[0]) != "torchrun":
        return None
    return shlex.join([_runnable(before[0]), *before[1:]])
