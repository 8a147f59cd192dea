"""Data parallel training on the CPU: two processes equal one, never hang, stop on SIGTERM.

Each run is a real CLI process (DDP never runs inside pytest), bounded in
time, on loopback with a free port, in its own process group that is killed
whole if it overruns.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    CONFIGS,
    ROOT,
    TRAIN,
    RunCLI,
    callback_option,
    load_state_dict,
    process_env,
)
from training.run.run_checkpoint import epochs_done

pytestmark = pytest.mark.slow

# 1002 samples split 801 / 201: neither split divides evenly between two ranks.
DATA = ["--data.n_samples", "1002"]
DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process_groups(
    commands: list[list[str]], cwd: Path, timeout: float = 180
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Starts the commands together, each in a process group of its own.

    On leaving, every group still alive after ``timeout`` seconds in all is
    killed whole, ranks included, so no test can hang. Output goes to files,
    so that no process can block on a full pipe.
    """
    env = {**process_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    processes = []
    for i, command in enumerate(commands):
        with open(cwd / f"process-{i}.log", "w") as out:
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + timeout
    try:
        yield processes
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def output(cwd: Path, i: int = 0) -> str:
    return (cwd / f"process-{i}.log").read_text()


def run_group(commands: list[list[str]], cwd: Path, timeout: float = 180) -> None:
    """Runs the commands together to the end; each must succeed within ``timeout`` seconds."""
    with process_groups(commands, cwd, timeout) as processes:
        pass
    for i, process in enumerate(processes):
        assert process.returncode == 0, output(cwd, i)[-3000:]


def group_ended(process: subprocess.Popen[bytes], within: float = 10) -> bool:
    """Whether every process of ``process``'s group (all its ranks) has ended."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def fit(*args: str) -> list[str]:
    return [
        sys.executable,
        str(TRAIN),
        "fit",
        "--config",
        str(CONFIGS / "circles.yaml"),
        *DATA,
        *args,
    ]


def metrics(root: Path) -> list[dict[str, str]]:
    with open(root / "logs" / "circles" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def assert_close_runs(a: Path, b: Path) -> None:
    state_a = load_state_dict(a / "checkpoints/circles/last.ckpt")
    state_b = load_state_dict(b / "checkpoints/circles/last.ckpt")
    for key in state_a:
        assert torch.allclose(state_a[key], state_b[key], atol=1e-5), key
    rows_a, rows_b = metrics(a), metrics(b)
    assert len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        assert row_a["epoch"] == row_b["epoch"]
        for key in ("val/loss", "val/acc", "val/f1", "val/auroc", "train/loss", "train/acc"):
            if row_a[key]:
                assert float(row_a[key]) == pytest.approx(float(row_b[key]), abs=1e-5), key


@pytest.mark.parametrize(
    "batches", [[], ["--data.batch_size", "64"]], ids=["full_batch", "mini_batch"]
)
def test_two_processes_train_like_one(batches: list[str], run_cli: RunCLI, tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    epochs = ["--trainer.max_epochs", "5", *batches]
    assert (
        run_cli("fit", "circles.yaml", *DATA, *epochs, "--trainer.default_root_dir", str(single))[0]
        == 0
    )
    ddp.mkdir()
    run_group([fit(*epochs, *DDP)], cwd=ddp)
    assert_close_runs(single, ddp)
    # Only rank 0 wrote: one run folder each, one config, the plots.
    assert sorted(p.name for p in (ddp / "checkpoints").iterdir()) == ["circles"]
    assert sorted(p.name for p in (ddp / "logs").iterdir() if p.is_dir()) == ["circles"]
    assert (ddp / "logs/circles/decision_boundary.png").is_file()


def test_ddp_resumes_under_ddp_and_in_one_process(run_cli: RunCLI, tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert (
        run_cli(
            "fit",
            "circles.yaml",
            *DATA,
            "--trainer.max_epochs",
            "6",
            "--trainer.default_root_dir",
            str(single),
        )[0]
        == 0
    )
    ddp.mkdir()
    run_group([fit("--trainer.max_epochs", "3", *DDP)], cwd=ddp)
    run_group([fit("--trainer.max_epochs", "4", "--ckpt_path", "last", *DDP)], cwd=ddp)
    code, err = run_cli(
        "fit",
        "circles.yaml",
        *DATA,
        "--trainer.max_epochs",
        "6",
        "--ckpt_path",
        "last",
        "--trainer.default_root_dir",
        str(ddp),
    )
    assert code == 0, err
    assert_close_runs(single, ddp)


def test_two_nodes_through_torchrun(run_cli: RunCLI, tmp_path: Path) -> None:
    single, nodes = tmp_path / "single", tmp_path / "nodes"
    epochs = ["--trainer.max_epochs", "4"]
    assert (
        run_cli("fit", "circles.yaml", *DATA, *epochs, "--trainer.default_root_dir", str(single))[0]
        == 0
    )
    nodes.mkdir()
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
    ]
    node = [
        *torchrun,
        *fit(
            *epochs,
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.num_nodes",
            "2",
            "--trainer.strategy",
            "ddp",
        )[1:],
    ]
    run_group([node, node], cwd=nodes)
    assert_close_runs(single, nodes)


@pytest.mark.parametrize("repeat", range(3))
def test_timed_checkpoint_writes_never_hang(repeat: int, tmp_path: Path) -> None:
    """A cadence far below an epoch's time: each rank's own clock would disagree often."""
    epochs = 150
    command = [
        sys.executable,
        str(TRAIN),
        "fit",
        "--config",
        str(CONFIGS / "linear.yaml"),
        "--data.step",
        "0.03",
        "--trainer.max_epochs",
        str(epochs),
        "--checkpoint.every_n_seconds",
        "0.005",
        *DDP,
    ]
    run_group([command], cwd=tmp_path, timeout=150)
    last = tmp_path / "checkpoints/linear/last.ckpt"
    assert epochs_done(torch.load(last, map_location="cpu", weights_only=True)) == epochs


def readme_ddp_commands() -> list[list[str]]:
    """The README's data-parallel commands, runnable here: this Python, a free port."""
    text = (ROOT / "docs/devices.md").read_text().replace("\\\n", " ")
    lines = re.findall(r"^(?:\.venv/bin/python|torchrun) .*--trainer\.strategy ddp.*$", text, re.M)
    commands = []
    for line in lines:
        words = shlex.split(line)
        if words[0] == "torchrun":
            words[:1] = [sys.executable, "-m", "torch.distributed.run"]
            at = words.index("--rdzv-endpoint") + 1
            words[at] = f"127.0.0.1:{free_port()}"
        else:
            words[0] = sys.executable
        commands.append(
            [w if not w.startswith(("configs/", "scripts/")) else str(ROOT / w) for w in words]
        )
    return commands


def test_the_readme_shows_both_data_parallel_commands() -> None:
    commands = readme_ddp_commands()
    assert len(commands) == 2
    assert sum("torch.distributed.run" in c for c in commands) == 1


@pytest.mark.parametrize("which", ["one_machine", "torchrun"])
def test_the_readme_data_parallel_commands_finish(which: str, tmp_path: Path) -> None:
    command = next(
        c for c in readme_ddp_commands() if ("torch.distributed.run" in c) == (which == "torchrun")
    )
    # torchrun's two "nodes" are two copies of the command, as on two machines.
    run_group([command] * (2 if which == "torchrun" else 1), cwd=tmp_path, timeout=600)
    checkpoint = torch.load(
        tmp_path / "checkpoints/circles/last.ckpt", map_location="cpu", weights_only=True
    )
    assert epochs_done(checkpoint) == 300


def test_sigterm_stops_every_rank_at_the_epoch_end(tmp_path: Path) -> None:
    signal_at = callback_option("SignalAt", epoch=2, signal_name="SIGTERM", batch=0)
    command = fit(
        "--trainer.max_epochs", "50", "--checkpoint.every_n_seconds", "3600", signal_at, *DDP
    )
    with process_groups([command], cwd=tmp_path, timeout=120) as (process,):
        assert process.wait(timeout=120) == 143, output(tmp_path)[-3000:]
        assert group_ended(process)
    log = output(tmp_path)
    assert (
        "SIGTERM stopped the fit; checkpoints/circles/last.ckpt holds its 3 finished epochs" in log
    )
    assert "Traceback" not in log
    checkpoint = torch.load(
        tmp_path / "checkpoints/circles/last.ckpt", map_location="cpu", weights_only=True
    )
    assert epochs_done(checkpoint) == 3
    assert sorted({int(row["epoch"]) for row in metrics(tmp_path)}) == [0, 1, 2]


@pytest.mark.parametrize("peer", ["stays stuck", "gives up first"])
def test_sigterm_ends_a_fit_whose_peer_is_stuck(peer: str, tmp_path: Path) -> None:
    """Rank 1 stops taking part in epoch 2; rank 0 blocks in a collective; SIGTERM still works.

    Every rank gives up after the same grace period; when rank 1 does so first,
    rank 0's collective fails before its own period ends, and it stops the same way.
    """
    marker = tmp_path / "rank-1-hangs"
    exit_on_stop = peer == "gives up first"
    hang = callback_option("HangAt", epoch=2, rank=1, marker=str(marker), exit_on_stop=exit_on_stop)
    command = fit("--trainer.max_epochs", "50", "--checkpoint.stop_grace_seconds", "3", hang, *DDP)
    with process_groups([command], cwd=tmp_path, timeout=120) as (process,):
        deadline = time.monotonic() + 100
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), output(tmp_path)[-3000:]
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=60) == 143, output(tmp_path)[-3000:]
        assert time.monotonic() - started < 30
        assert group_ended(process)
    log = output(tmp_path)
    assert "checkpoints/circles/last.ckpt holds its 2 finished epochs" in log
    assert "Traceback" not in log
    if exit_on_stop:
        assert "SIGTERM: another rank stopped before the end of the epoch (" in log
    checkpoint = torch.load(
        tmp_path / "checkpoints/circles/last.ckpt", map_location="cpu", weights_only=True
    )
    assert epochs_done(checkpoint) == 2
    assert sorted({int(row["epoch"]) for row in metrics(tmp_path)}) == [0, 1]
