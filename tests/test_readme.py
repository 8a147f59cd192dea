"""Every ``scripts/`` command the README shows runs as written (with few epochs)."""
# The DDP and torchrun commands are run, as real processes, by tests/test_ddp.py.

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, load_script
from training.command_line.cli import main

README = (ROOT / "README.md").read_text()


def readme_runs() -> dict[str, list[tuple[str, str, list[str]]]]:
    """The README's ``train.py`` and ``export.py`` commands, in order, grouped by the run they use.

    Each command is ``(PYTHONPATH folder or "", script, arguments)``. A run is
    named by ``--name`` or by its config's ``name``; ``export.py --name``
    exports one. Runs do not share files, so each is tested on its own.
    """
    lines = re.findall(
        r"^((?:PYTHONPATH=\S+ )?)\.venv/bin/python scripts/(train|export)\.py (.+)$",
        README,
        flags=re.MULTILINE,
    )
    runs: dict[str, list[tuple[str, str, list[str]]]] = {}
    for env, script, line in lines:
        command = shlex.split(line.split("#")[0])
        tokens = [p for arg in command for p in (arg.split("=", 1) if arg[:1] == "-" else [arg])]
        options = dict(itertools.pairwise(tokens))
        name = options.get("--name")
        if name is None:
            config = options.get("--config") or options["-c"]
            name = yaml.safe_load((ROOT / config).read_text())["name"]
        runs.setdefault(name, []).append((env.strip().partition("=")[2], script, command))
    return runs


RUNS = readme_runs()


def test_the_readme_shows_the_main_commands() -> None:
    commands = [" ".join(c) for run in RUNS.values() for _, script, c in run if script == "train"]
    assert (
        "fit --config configs/circles.yaml --ckpt_path last --trainer.max_epochs 2000" in commands
    )
    assert "test --config configs/circles.yaml --ckpt_path best" in commands


def test_the_readme_trains_and_exports_these_runs() -> None:
    assert list(RUNS) == ["circles", "linear", "circles_csv", "deeper", "circles_cosine"]
    assert ("", "export", ["--name", "linear"]) in RUNS["linear"]


@pytest.mark.parametrize("name", RUNS)
def test_readme_commands_run_in_order(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.argv", ["scripts/train.py"])
    for folder, script, command in RUNS[name]:
        if folder:
            monkeypatch.syspath_prepend(str(ROOT / folder))
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

    if any(script == "export" for _, script, _ in RUNS[name]):
        # The course's load code the README gives for the exported file.
        monkeypatch.chdir(tmp_path)
        snippets = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
        exec(next(s for s in snippets if "best.pth" in s), {})
