"""Killed fits resume exactly: the same weights and the same log as one uninterrupted fit.

Each fit runs as a real process that SIGKILLs itself at a chosen point (see
``tests/kill_points.py``): mid-epoch, halfway through writing ``last.ckpt``,
after writing it but before the rename, and after the rename but before the
epoch's training row reaches ``metrics.csv``. ``last.ckpt`` is written after
every epoch here (``--checkpoint.every_n_seconds 0``) so every kill point has
a checkpoint before it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    CONFIGS,
    TRAIN,
    RunCLI,
    assert_same_state,
    callback_option,
    env_signalling_at_import,
    load_state_dict,
    process_env,
    train_process,
)

EPOCHS = 6

SCENARIOS = {
    "linear": ("linear.yaml", []),
    "circles": ("circles.yaml", []),
    "minibatch_dropout": (
        "circles.yaml",
        ["--data.batch_size", "64", "--model.net.dropout", "0.2"],
    ),
}

# (epoch, where) of the kill in each successive process; the last process finishes.
KILLS = [(1, "after_save"), (2, "batch"), (3, "mid_write"), (4, "before_rename")]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kills_and_resumes_end_where_an_uninterrupted_fit_ends(
    scenario: str, run_cli: RunCLI, tmp_path: Path
) -> None:
    config, extra = SCENARIOS[scenario]
    name = Path(config).stem
    reference = tmp_path / "reference"
    common = ["--checkpoint.every_n_seconds", "0", "--trainer.max_epochs", str(EPOCHS), *extra]
    assert run_cli("fit", config, *common, "--trainer.default_root_dir", str(reference))[0] == 0

    killed = tmp_path / "killed"
    killed.mkdir()
    args = ["fit", "--config", str(CONFIGS / config), *common]
    for number, (epoch, at) in enumerate(KILLS):
        # Mid-epoch for mini-batches: the kill lands after a few of the epoch's batches.
        where = callback_option("KillAt", epoch=epoch, at=at, batch=3 if extra else 0)
        resume = ["--ckpt_path", "last"] if number else []
        result = train_process(killed, *args, *resume, where)
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    finished = train_process(killed, *args, "--ckpt_path", "last")
    assert finished.returncode == 0, finished.stderr[-2000:]

    run = Path("checkpoints") / name / "last.ckpt"
    assert_same_state(load_state_dict(killed / run), load_state_dict(reference / run))
    metrics = Path("logs") / name / "metrics.csv"
    assert (killed / metrics).read_text() == (reference / metrics).read_text()
    assert not list((killed / "checkpoints" / name).glob("*.tmp"))


@pytest.mark.slow
def test_a_kill_from_outside_at_any_moment_loses_nothing(run_cli: RunCLI, tmp_path: Path) -> None:
    """SIGKILL from another process, whenever it lands, then resume to the end."""
    epochs = ["--trainer.max_epochs", "400", "--checkpoint.every_n_seconds", "0"]
    reference = tmp_path / "reference"
    assert (
        run_cli("fit", "linear.yaml", *epochs, "--trainer.default_root_dir", str(reference))[0] == 0
    )

    killed = tmp_path / "killed"
    killed.mkdir()
    command = [sys.executable, str(TRAIN), "fit", "--config", str(CONFIGS / "linear.yaml"), *epochs]
    last = killed / "checkpoints" / "linear" / "last.ckpt"
    with subprocess.Popen(
        command,
        cwd=killed,
        env=process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as process:
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert last.exists(), "the fit wrote no last.ckpt within 60 s"
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    # Hundreds of fsynced checkpoint writes: slow on a busy disk.
    finished = train_process(killed, *command[2:], "--ckpt_path", "last", timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert_same_state(
        load_state_dict(last), load_state_dict(reference / "checkpoints/linear/last.ckpt")
    )
    metrics = Path("logs/linear/metrics.csv")
    assert (killed / metrics).read_text() == (reference / metrics).read_text()


def test_a_finished_fit_continues_exactly_with_more_epochs(run_cli: RunCLI, tmp_path: Path) -> None:
    extra = [
        "--data.batch_size",
        "64",
        "--model.net.dropout",
        "0.2",
        "--checkpoint.every_n_seconds",
        "60",
    ]
    straight = tmp_path / "straight"
    assert (
        run_cli(
            "fit",
            "circles.yaml",
            *extra,
            "--trainer.max_epochs",
            "4",
            "--trainer.default_root_dir",
            str(straight),
        )[0]
        == 0
    )
    assert run_cli("fit", "circles.yaml", *extra, "--trainer.max_epochs", "2")[0] == 0
    assert (
        run_cli("fit", "circles.yaml", *extra, "--trainer.max_epochs", "4", "--ckpt_path", "last")[
            0
        ]
        == 0
    )
    run = Path("checkpoints/circles/last.ckpt")
    assert_same_state(load_state_dict(tmp_path / run), load_state_dict(straight / run))


# Where in a run's life ``fit --ckpt_path auto`` is killed (tests/kill_points.py: KillAt).
PHASES: dict[str, dict[str, Any]] = {
    "the imports": {},
    "before the first checkpoint": {"epoch": 0, "at": "batch"},
    "mid-epoch": {"epoch": 2, "at": "batch", "batch": 0},
    "during a checkpoint write": {"epoch": 1, "at": "mid_write"},
    "during the plots": {"epoch": 0, "at": "plots"},
    "during the final summary": {"epoch": 0, "at": "summary"},
}


@pytest.mark.slow
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_a_kill_at_any_phase_of_a_run_never_blocks_the_same_command_again(
    phase: str, run_cli: RunCLI, tmp_path: Path
) -> None:
    """The same requeued command finishes the run, with each epoch logged once."""
    common = ["--checkpoint.every_n_seconds", "0", "--trainer.max_epochs", "4"]
    reference = tmp_path / "reference"
    assert (
        run_cli("fit", "circles.yaml", *common, "--trainer.default_root_dir", str(reference))[0]
        == 0
    )

    killed = tmp_path / "killed"
    killed.mkdir()
    command = ["fit", "--config", str(CONFIGS / "circles.yaml"), *common, "--ckpt_path", "auto"]
    if PHASES[phase]:
        result = train_process(killed, *command, callback_option("KillAt", **PHASES[phase]))
    else:
        at_import = env_signalling_at_import(tmp_path / "hook", signal.SIGKILL)
        result = train_process(killed, *command, env=at_import)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    again = train_process(killed, *command)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Done: epoch 3" in again.stdout

    run = Path("checkpoints/circles/last.ckpt")
    assert_same_state(load_state_dict(killed / run), load_state_dict(reference / run))
    metrics = Path("logs/circles/metrics.csv")
    assert (killed / metrics).read_text() == (reference / metrics).read_text()
    for folder in ("checkpoints/circles", "logs/circles"):
        assert not list((killed / folder).glob("*.tmp"))
    pngs = sorted(p.name for p in (killed / "logs/circles").glob("*.png"))
    assert pngs == ["confusion_matrix.png", "data.png", "decision_boundary.png", "loss_curves.png"]
