"""Ctrl-C and SIGTERM stop a fit at the end of its epoch, with nothing lost.

Each fit is a real process that signals itself at a chosen batch (see
``tests/kill_points.py``), so the epoch it stops after is known exactly.
``last.ckpt`` is written only when a fit ends or stops here
(``--checkpoint.every_n_seconds 3600``): what it holds comes from the stop.
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    CONFIGS,
    RunCLI,
    assert_same_state,
    callback_option,
    load_state_dict,
    train_process,
)
from training.run.run_checkpoint import epochs_done

pytestmark = pytest.mark.slow

EPOCHS = 6
STOP_EPOCH = 2  # the signal comes during this epoch; the fit stops at its end
FIT = [
    "fit",
    "--config",
    str(CONFIGS / "circles_course.yaml"),
    "--trainer.max_epochs",
    str(EPOCHS),
    "--checkpoint.every_n_seconds",
    "3600",
    "--data.batch_size",
    "64",
    "--model.net.dropout",
    "0.2",
]
LAST = Path("checkpoints/circles_course/last.ckpt")
METRICS = Path("logs/circles_course/metrics.csv")


def signal_at(name: str, again_while_saving: bool = False) -> str:
    return callback_option(
        "SignalAt",
        epoch=STOP_EPOCH,
        signal_name=name,
        batch=3,
        again_while_saving=again_while_saving,
    )


def logged_epochs(root: Path) -> list[int]:
    lines = (root / METRICS).read_text().splitlines()[1:]
    return sorted({int(line.split(",")[0]) for line in lines})


@pytest.fixture
def reference(run_cli: RunCLI, tmp_path: Path) -> Path:
    """The same fit, never interrupted."""
    root = tmp_path / "reference"
    assert (
        run_cli("fit", "circles_course.yaml", *FIT[3:], "--trainer.default_root_dir", str(root))[0]
        == 0
    )
    return root


@pytest.mark.parametrize(
    ("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)], ids=["ctrl_c", "sigterm"]
)
def test_a_signal_stops_at_the_epoch_end_and_resumes_exactly(
    name: str, code: int, reference: Path, tmp_path: Path
) -> None:
    root = tmp_path / "stopped"
    root.mkdir()
    stopped = train_process(root, *FIT, signal_at(name))
    assert stopped.returncode == code, stopped.stderr[-2000:]
    # One line says what was kept and how to go on.
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"{name} stopped the fit; {LAST} holds its 3 finished epochs;")
    assert last_line.endswith("--ckpt_path last")
    assert f"{name} received: stopping at the end of this epoch" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    # last.ckpt holds every finished epoch, and the log agrees with it.
    checkpoint = torch.load(root / LAST, map_location="cpu", weights_only=True)
    assert epochs_done(checkpoint) == STOP_EPOCH + 1
    assert logged_epochs(root) == list(range(STOP_EPOCH + 1))

    resumed = train_process(root, *FIT, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_state(load_state_dict(root / LAST), load_state_dict(reference / LAST))
    assert (root / METRICS).read_text() == (reference / METRICS).read_text()


def test_a_second_ctrl_c_while_saving_leaves_a_valid_checkpoint(tmp_path: Path) -> None:
    stopped = train_process(tmp_path, *FIT, signal_at("SIGINT", again_while_saving=True))
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "SIGINT again: already stopping at the end of this epoch" in stopped.stderr
    checkpoint = torch.load(tmp_path / LAST, map_location="cpu", weights_only=True)
    assert epochs_done(checkpoint) == STOP_EPOCH + 1
    assert not list((tmp_path / LAST.parent).glob("*.tmp"))


def test_requeued_jobs_resume_if_there_is_a_checkpoint_else_start(
    reference: Path, tmp_path: Path
) -> None:
    """The same command each time, as a batch job that is requeued after SIGTERM."""
    job = [*FIT, "--ckpt_path", "auto"]
    first = train_process(tmp_path, *job, signal_at("SIGTERM"))
    assert first.returncode == 143, first.stderr[-2000:]
    assert first.stderr.splitlines()[0] == f"Starting run 'circles_course': it has no {LAST} yet"
    # The resume command it gives is the same command.
    resume = first.stderr.strip().splitlines()[-1].partition("resume with: ")[2]
    assert shlex.split(resume)[2:] == [*job, signal_at("SIGTERM")]

    second = train_process(tmp_path, *job)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr.splitlines()[0] == f"Resuming run 'circles_course' from {LAST}"
    assert_same_state(load_state_dict(tmp_path / LAST), load_state_dict(reference / LAST))
    assert (tmp_path / METRICS).read_text() == (reference / METRICS).read_text()


def test_the_handlers_are_the_fits_only_while_it_trains(run_cli: RunCLI) -> None:
    """After a fit, Ctrl-C and SIGTERM act as they did before it (in a notebook, say)."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert run_cli("fit", "circles_course.yaml", "--trainer.max_epochs", "2")[0] == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
