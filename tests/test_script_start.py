"""A signal in a script's first second, while it imports torch and Lightning.

Each process sends the signal to itself as it starts importing ``torch``: a
``sitecustomize`` on its ``PYTHONPATH`` adds an import hook that does it, so
the signal lands at the same point of the imports every time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, env_signalling_at_import

pytestmark = pytest.mark.slow


def start_with_signal_at_import(
    tmp_path: Path, script: str, signum: signal.Signals
) -> subprocess.CompletedProcess[str]:
    run = tmp_path / "run"
    run.mkdir()
    command = [sys.executable, str(ROOT / "scripts" / f"{script}.py")]
    env = env_signalling_at_import(tmp_path / "hook", signum)
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
