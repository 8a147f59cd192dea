"""Every ``scripts/`` command the README shows runs as written (with few epochs)."""
# The DDP and torchrun commands are run, as real processes, by tests/test_ddp.py.

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_script
from training.cli import main

README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.plots  # the commands do all they do for a user, plots included


def readme_commands() -> list[list[str]]:
    """The arguments of every command, after ``PYTHONPATH=<folder>`` where one is given."""
    lines = re.findall(
        r"^((?:PYTHONPATH=\S+ )?)\.venv/bin/python scripts/train\.py (.+)$",
        README,
        flags=re.MULTILINE,
    )
    return [[*shlex.split(env), *shlex.split(line.split("#")[0])] for env, line in lines]


def test_the_readme_shows_the_main_commands() -> None:
    commands = [" ".join(c) for c in readme_commands()]
    assert (
        "fit --config configs/circles.yaml --ckpt_path last --trainer.max_epochs 2000" in commands
    )
    assert "test --config configs/circles.yaml --ckpt_path best" in commands


def test_readme_commands_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.argv", ["scripts/train.py"])
    lines = re.findall(
        r"^((?:PYTHONPATH=\S+ )?)\.venv/bin/python scripts/(train|export)\.py (.+)$",
        README,
        flags=re.MULTILINE,
    )
    assert ("", "export", "--name linear") in lines
    for env, script, line in lines:
        command = shlex.split(line.split("#")[0])
        if env:
            monkeypatch.syspath_prepend(str(ROOT / env.strip().partition("=")[2]))
        if script == "export":
            code = load_script("export").main([*command, "--root", str(tmp_path)])
        elif "ddp" in command:
            # Data-parallel commands start processes of their own: tests/test_ddp.py runs those.
            continue
        else:
            # The last value of an option wins: every run is cut to two epochs, under tmp_path.
            short = ["--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path)]
            code = main([*command, *short])
        assert code == 0, (command, capsys.readouterr().err[-500:])

    # The course's load code the README gives for the exported file.
    monkeypatch.chdir(tmp_path)
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    exec(next(s for s in snippets if "best.pth" in s), {})
