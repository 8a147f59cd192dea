"""One fit per run at a time: a second one is refused at once, and a dead one blocks nothing.

The lock's holder is another process in the slow test; in the fast ones this
test process holds it, through ``RunLock`` itself, while the CLI runs beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    CONFIGS,
    TRAIN,
    RunCLI,
    callback_option,
    process_env,
    snapshot,
    train_process,
)
from training.run.run_lock import RunLock


def refusal(root: Path, name: str, holder: str) -> str:
    return (
        f"error: run {name!r} is in use by {holder} ({root / 'logs' / f'.{name}.lock'});"
        " wait for it to end, or pass another --name"
    )


@pytest.fixture
def finished_run(run_cli: RunCLI, tmp_path: Path) -> Path:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "2")[0] == 0
    return tmp_path


def test_a_fit_of_a_run_in_use_is_refused_and_changes_nothing(
    finished_run: Path, run_cli: RunCLI
) -> None:
    other = RunLock(finished_run, "linear")
    other.hold_for_fit()
    try:
        before = snapshot(finished_run)
        for resume in ([], ["--ckpt_path", "last"]):
            code, err = run_cli("fit", "linear.yaml", *resume)
            assert code == 2
            holder = f"a fit in process {os.getpid()}"
            assert err.strip().splitlines() == [refusal(finished_run, "linear", holder)]
            assert snapshot(finished_run) == before
        # Other runs, and the evaluation of this one, go on beside it.
        assert run_cli("fit", "linear.yaml", "--name", "other", "--trainer.max_epochs", "1")[0] == 0
        for subcommand in ("validate", "test", "predict"):
            assert run_cli(subcommand, "linear.yaml", "--ckpt_path", "best")[0] == 0
    finally:
        other.release()
    assert run_cli("fit", "linear.yaml", "--ckpt_path", "last", "--trainer.max_epochs", "3")[0] == 0


def test_a_fresh_fit_does_not_move_a_run_that_is_being_tested(
    finished_run: Path, run_cli: RunCLI
) -> None:
    reader = RunLock(finished_run, "linear")
    reader.hold_for_reading()
    try:
        before = snapshot(finished_run)
        code, err = run_cli("fit", "linear.yaml")
        assert code == 2
        assert err.strip() == (
            "error: run 'linear' is in use by a validate, test, predict or lr_find process"
            f" ({finished_run / 'logs' / '.linear.readers.lock'});"
            " wait for it to end, or pass another --name"
        )
        assert snapshot(finished_run) == before
        # A resume moves nothing: it goes on while the run is read.
        args = ["--ckpt_path", "last", "--trainer.max_epochs", "3"]
        assert run_cli("fit", "linear.yaml", *args)[0] == 0
    finally:
        reader.release()


@pytest.mark.slow
def test_a_live_fit_holds_its_run_and_a_killed_one_leaves_it_free(tmp_path: Path) -> None:
    """Two real processes on one run; then the first dies by SIGKILL, holding the lock."""
    hung = tmp_path / "hung"
    args = ["fit", "--config", str(CONFIGS / "circles.yaml"), "--checkpoint.every_n_seconds", "0"]
    hang = callback_option("HangAt", epoch=2, rank=0, marker=str(hung))
    command = [sys.executable, str(TRAIN), *args, hang]
    first = subprocess.Popen(
        command, cwd=tmp_path, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not hung.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hung.exists(), first.stderr.read() if first.stderr else ""
        before = snapshot(tmp_path)

        second = train_process(tmp_path, *args)
        assert second.returncode == 2
        holder = f"a fit in process {first.pid}"
        assert second.stderr.strip().splitlines() == [refusal(Path("."), "circles", holder)]
        assert snapshot(tmp_path) == before
    finally:
        first.kill()  # SIGKILL: the lock is left to the kernel to drop
        first.wait(timeout=30)
        if first.stderr:
            first.stderr.close()
    assert first.returncode == -signal.SIGKILL

    resumed = train_process(tmp_path, *args, "--ckpt_path", "last", "--trainer.max_epochs", "4")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Done: epoch 3" in resumed.stdout
    assert not (tmp_path / "logs" / "circles.1").exists()
