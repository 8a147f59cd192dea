"""Data parallel training on the CPU: two processes equal one, and resume across both.

Each run is a real CLI process (DDP never runs inside pytest), bounded in
time, on loopback with a free port, in its own process group that is killed
if it overruns.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS, TRAIN, RunCLI, load_state_dict, process_env

pytestmark = pytest.mark.slow

# 1002 samples split 801 / 201: neither split divides evenly between two ranks.
DATA = ["--data.n_samples", "1002"]
DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_group(commands: list[list[str]], cwd: Path, timeout: float = 180) -> None:
    """Runs the commands together, each in its own process group; kills all on overrun.

    Output goes to files, so that no process can block on a full pipe.
    """
    env = {**process_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    logs = [cwd / f"process-{i}.log" for i in range(len(commands))]
    processes = []
    for command, log in zip(commands, logs, strict=True):
        with open(log, "w") as out:
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
    try:
        for process in processes:
            process.wait(timeout=timeout)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log.read_text()[-3000:]


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
        for key in ("val/loss", "val/acc", "train/loss", "train/acc"):
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
    assert sorted(p.name for p in (ddp / "logs").iterdir()) == ["circles"]
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
