"""Shared fixtures: every run writes under ``tmp_path``, never into the repository."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from training.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TRAIN = ROOT / "scripts" / "train.py"

RunCLI = Callable[..., tuple[int, str]]

# The nets here are too small to gain from a second thread, and on a busy
# 2-core machine torch's threads spin against other processes, making a fit
# many times slower (benchmarks/run.py uses one thread for the same reason).
torch.set_num_threads(1)


@pytest.fixture
def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RunCLI:
    """Runs ``scripts/train.py`` in this process with its root in ``tmp_path``.

    Returns the exit code and what went to stderr.
    """

    monkeypatch.setattr(sys, "argv", [str(TRAIN)])

    def run(subcommand: str, config: str, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(
            [
                subcommand,
                "--config",
                str(CONFIGS / config),
                "--trainer.default_root_dir",
                str(tmp_path),
                *args,
            ]
        )
        return code, capsys.readouterr().err

    return run


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module, to call its ``main`` in this process."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_process(
    root: Path,
    *args: str,
    timeout: float = 120,
    script: Path = TRAIN,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``scripts/train.py`` (or another ``script``) as a real process in ``root``.

    It runs in a process group of its own, killed whole if it overruns, so
    neither it nor any process it started outlives the test. ``preexec_fn`` runs
    in the child before it starts, e.g. to limit its resources.
    """
    command = [sys.executable, str(script), *args]
    with subprocess.Popen(
        command,
        cwd=root,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=preexec_fn,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def callback_option(class_name: str, **init_args: Any) -> str:
    """The option that adds a callback of ``tests/kill_points.py`` to a training process."""
    callback = {"class_path": f"kill_points.{class_name}", "init_args": init_args}
    return "--trainer.callbacks=" + json.dumps([callback])


def process_env() -> dict[str, str]:
    """The environment of a training process: ``tests/`` importable for ``kill_points``."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "tests")}


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs: {a[key]} != {b[key]}"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
