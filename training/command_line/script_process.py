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
    """The shell line that runs this script again with ``args``.

    The interpreter is given relative to the working directory when it lies
    inside it (``.venv/bin/python``), and the script as it was started.
    """
    python = os.path.relpath(sys.executable)
    if python.startswith(".."):
        python = sys.executable
    elif os.sep not in python:  # the working directory's own: not one on PATH
        python = os.path.join(os.curdir, python)
    return shlex.join([python, sys.argv[0], *args])
