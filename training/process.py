"""How the scripts start and end a process, and the command that runs one again.

Importing torch, Lightning and the libraries they import makes millions of
objects that live as long as the process. Python's collector would walk all of
them again at every full collection during the imports (about a second here)
and once more at exit (about another second). Both are avoided by freezing
them: frozen objects are kept out of every collection and left to the OS.

A script that stops early says how to carry on: ``script_command``.
"""

from __future__ import annotations

import gc
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Imports in this block run without collection; what they made is frozen after."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


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
