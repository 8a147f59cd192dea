"""A signal in a script's first second, while it imports torch and Lightning.

Each process sends the signal to itself as it starts importing ``torch``: a
``sitecustomize`` on its ``PYTHONPATH`` adds an import hook that does it, so
the signal lands at the same point of the imports every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, process_env

pytestmark = pytest.mark.slow

SITECUSTOMIZE = """
import os
import signal
import sys


class SignalAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.{signal})
        return None


sys.meta_path.insert(0, SignalAtImport())
"""


def start_with_signal_at_import(
    tmp_path: Path, script: str, signum: signal.Signals
) -> subprocess.CompletedProcess[str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE.format(signal=signum.name))
    env = process_env()
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    run = tmp_path / "run"
    run.mkdir()
    command = [sys.executable, str(ROOT / "scripts" / f"{script}.py")]
    return subprocess.run(command, cwd=run, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", ["train", "sweep", "export", "plot"])
def test_ctrl_c_while_a_script_imports_says_one_line_and_exits_130(
    tmp_path: Path, script: str
) -> None:
    result = start_with_signal_at_import(tmp_path, script, signal.SIGINT)
    assert result.stderr == "SIGINT stopped the script; the files it wrote are whole\n"
    assert result.returncode == 130
    assert not any((tmp_path / "run").iterdir())


def test_sigterm_while_a_script_imports_ends_it_silently_as_the_shell_expects(
    tmp_path: Path,
) -> None:
    result = start_with_signal_at_import(tmp_path, "train", signal.SIGTERM)
    assert result.returncode == -signal.SIGTERM  # the shell reports 128 + 15 = 143
    assert result.stderr == ""
