"""Data parallel training on the CPU: two processes equal one, never hang, stop on SIGTERM.

Each run is a real CLI process (DDP never runs inside pytest), bounded in
time, on loopback with a free port, in its own process group that is killed
whole if it overruns.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import (
    CONFIGS,
    ROOT,
    TRAIN,
    RunCLI,
    assert_same_state,
    callback_option,
    load_state_dict,
    process_env,
)
from training.run import run_checkpoint
from training.run.rng_states import capture_rng_states, offset_by_rank, restore_rng_states
from training.run.run_checkpoint import RunCheckpoint, epochs_done

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


def both_outputs(cwd: Path) -> str:
    """The two torchrun nodes' output: either may hold rank 0, as the rendezvous decides."""
    return output(cwd, 0) + output(cwd, 1)


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


def torchrun_node(*args: str) -> list[str]:
    """One node's command: torchrun, on a free port, running a one-process share of ``fit``."""
    return [
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
        *fit(
            *args,
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


def test_two_nodes_through_torchrun(run_cli: RunCLI, tmp_path: Path) -> None:
    single, nodes = tmp_path / "single", tmp_path / "nodes"
    epochs = ["--trainer.max_epochs", "4"]
    assert (
        run_cli("fit", "circles.yaml", *DATA, *epochs, "--trainer.default_root_dir", str(single))[0]
        == 0
    )
    nodes.mkdir()
    node = torchrun_node(*epochs)
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


MINI_BATCH_DROPOUT = ["--data.batch_size", "64", "--model.net.dropout", "0.2"]


def test_each_rank_draws_its_own_dropout_masks(tmp_path: Path) -> None:
    """Seeded alike, both ranks drew the same masks for their halves of a batch."""
    record = callback_option("RecordDropoutMasks", folder=str(tmp_path))
    run_group([fit("--trainer.max_epochs", "1", *MINI_BATCH_DROPOUT, record, *DDP)], cwd=tmp_path)
    rank_0, rank_1 = (torch.load(tmp_path / f"masks-{rank}.pt") for rank in (0, 1))
    # The first batch of 64 is two shares of 32; only where both inputs are live do masks show.
    both_live = rank_0["live"] & rank_1["live"]
    assert both_live.sum() > 20
    assert not torch.equal(rank_0["kept"][both_live], rank_1["kept"][both_live])


def test_ddp_with_dropout_resumes_exactly(tmp_path: Path) -> None:
    """Killed mid-epoch, two processes resume each rank's own generators, bit for bit."""
    common = ["--trainer.max_epochs", "5", "--checkpoint.every_n_seconds", "0"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    killed.mkdir()
    run_group([fit(*common, *MINI_BATCH_DROPOUT, *DDP)], cwd=reference)
    kill = callback_option("KillAt", epoch=3, batch=4)
    with process_groups([fit(*common, *MINI_BATCH_DROPOUT, kill, *DDP)], cwd=killed) as (p,):
        assert p.wait(timeout=120) == -signal.SIGKILL, output(killed)[-3000:]
    last = killed / "checkpoints/circles/last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert epochs_done(checkpoint) == 3
    assert len(checkpoint["rng_states"]) == 2  # one set of states per rank
    run_group([fit(*common, *MINI_BATCH_DROPOUT, "--ckpt_path", "last", *DDP)], cwd=killed)
    assert_same_state(load_state_dict(last), load_state_dict(reference / last.relative_to(killed)))
    metrics_csv = Path("logs/circles/metrics.csv")
    assert (killed / metrics_csv).read_text() == (reference / metrics_csv).read_text()


def test_a_rank_the_saved_run_did_not_have_takes_rank_0s_states_offset() -> None:
    """A resume with more processes than the checkpoint's: reproducible, and each rank its own."""
    saved = [capture_rng_states()]
    restore_rng_states(saved, rank=1)
    rank_1 = torch.rand(4)
    restore_rng_states(saved, rank=0)
    rank_0 = torch.rand(4)
    restore_rng_states(saved, rank=0)
    offset_by_rank(1)
    assert torch.equal(torch.rand(4), rank_1)
    restore_rng_states(saved, rank=1)
    assert torch.equal(torch.rand(4), rank_1)
    assert not torch.equal(rank_0, rank_1)
    # A checkpoint of before per-rank states: one dict, read as rank 0's.
    restore_rng_states(saved[0], rank=0)
    assert torch.equal(torch.rand(4), rank_0)


class OnAnotherDevice(torch.Tensor):
    """A tensor that says it is on a GPU until it is copied to the CPU with ``to``."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.as_subclass(torch.Tensor).to(*args, **kwargs)


def test_the_snapshot_a_give_up_saves_is_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Saved from another thread while a collective is stuck, it must not wait for the GPU."""
    weight = torch.ones(3).as_subclass(OnAnotherDevice)
    moment = torch.zeros(3).as_subclass(OnAnotherDevice)
    groups = [{"lr": 0.1, "params": [0]}]
    checkpoint = {
        "state_dict": OrderedDict(weight=weight),
        "optimizer_states": [{"state": {0: {"exp_avg": moment}}, "param_groups": groups}],
        "epoch": 2,
    }
    monkeypatch.setattr(run_checkpoint, "dump_checkpoint", lambda trainer, weights_only: checkpoint)
    run = RunCheckpoint(dirpath=str(tmp_path))
    run._keep_snapshot(trainer=None, epochs_done=2)  # type: ignore[arg-type]
    assert run._snapshot is not None
    epochs, snapshot = run._snapshot
    kept = [
        snapshot["state_dict"]["weight"],
        snapshot["optimizer_states"][0]["state"][0]["exp_avg"],
    ]
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in kept)
    # A copy: the next steps change the live tensors, not what a give-up would save.
    weight.add_(1)
    assert torch.equal(kept[0], torch.ones(3))
    assert snapshot["optimizer_states"][0]["param_groups"] == groups
    assert snapshot["optimizer_states"][0]["param_groups"] is not groups
    assert (epochs, snapshot["epoch"]) == (2, 2)


def test_a_training_step_runs_no_collective_of_its_own(tmp_path: Path) -> None:
    """Between on_train_batch_start and on_train_batch_end only DDP's gradient reduction runs.

    That reduction runs from C++, in backward (DDP's reducer), never through
    the Python functions counted here; the counts outside the steps (the
    epoch's agreement, the metrics' sync) show that calls are counted. With a
    schedule, whose learning rate is logged every epoch, no warning asks to sync it.
    """
    count = callback_option("CountCollectives", folder=str(tmp_path))
    schedule = ["--model.lr_scheduler", "StepLR", "--model.lr_scheduler.step_size", "1"]
    epochs = ["--trainer.max_epochs", "2", "--data.batch_size", "64", *schedule]
    run_group([fit(*epochs, count, *DDP)], cwd=tmp_path)
    for rank in (0, 1):
        counts = json.loads((tmp_path / f"collectives-{rank}.json").read_text())
        assert counts["steps"] >= 2 * 9  # 600 training samples in batches of 64, 2 epochs
        assert counts["in_steps"] == {}, counts
        assert counts["outside"].get("all_gather_object", 0) >= 2, counts
    assert "sync_dist=True" not in output(tmp_path)


def test_sigterm_under_torchrun_prints_the_torchrun_command_that_resumes(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    """A scheduler signals each node's torchrun; the stop line gives torchrun's command.

    torchrun itself exits 1 with its own SignalException, whatever its
    workers' codes: that is what a scheduler sees (docs/devices.md).
    """
    single, nodes = tmp_path / "single", tmp_path / "nodes"
    common = ["--trainer.max_epochs", "5", "--data.batch_size", "64"]
    stop = ["--checkpoint.every_n_seconds", "3600"]
    assert (
        run_cli("fit", "circles.yaml", *DATA, *common, "--trainer.default_root_dir", str(single))[0]
        == 0
    )
    nodes.mkdir()
    signal_at = callback_option("SignalLauncherAt", epoch=2, signal_name="SIGTERM", batch=3)
    node = torchrun_node(*common, *stop, signal_at)
    with process_groups([node, node], cwd=nodes) as processes:
        codes = [p.wait(timeout=120) for p in processes]
    log = both_outputs(nodes)
    assert codes == [1, 1], log[-3000:]
    assert "SignalException" in log
    kept = "SIGTERM stopped the fit; checkpoints/circles/last.ckpt holds its 3 finished epochs;"
    line = next(line for line in log.splitlines() if line.startswith(kept))
    resume = shlex.split(line.partition("resume with: ")[2])
    assert resume[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert resume[-2:] == ["--ckpt_path", "last"]
    # Run as printed, on each node (one machine here, two nodes of it).
    run_group([resume, resume], cwd=nodes)
    assert_close_runs(single, nodes)


def test_a_stop_under_torchrun_ends_before_torchrun_kills_its_workers(tmp_path: Path) -> None:
    """torchrun sends SIGKILL 30 s after it passes SIGTERM on; the default grace is shorter.

    Rank 1 stops taking part in epoch 2; rank 0 gives up, writes the last
    finished epoch and says so, all before torchrun's kill.
    """
    marker = tmp_path / "rank-1-hangs"
    hang = callback_option("HangAt", epoch=2, rank=1, marker=str(marker))
    node = torchrun_node("--trainer.max_epochs", "50", hang)
    with process_groups([node, node], cwd=tmp_path, timeout=150) as processes:
        deadline = time.monotonic() + 100
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), output(tmp_path)[-3000:]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for process in processes:
            process.wait(timeout=60)
        assert time.monotonic() - started < 30
    log = both_outputs(tmp_path)
    assert (
        "SIGTERM: the ranks did not reach the end of the epoch within 20 s, so it is dropped;"
        " checkpoints/circles/last.ckpt holds its 2 finished epochs" in log
    ), log[-3000:]
    checkpoint = torch.load(
        tmp_path / "checkpoints/circles/last.ckpt", map_location="cpu", weights_only=True
    )
    assert epochs_done(checkpoint) == 2


def test_a_lost_node_ends_the_other_in_one_line(tmp_path: Path) -> None:
    """Node 1 (torchrun and its worker) dies in epoch 2; node 0's worker says so in one line.

    What follows it, torchrun's own report of its failed worker, is torchrun's.
    """
    kill = callback_option("KillNodeAt", epoch=2, rank=1, batch=3)
    node = torchrun_node("--trainer.max_epochs", "50", "--data.batch_size", "64", kill)
    with process_groups([node, node], cwd=tmp_path) as processes:
        codes = [p.wait(timeout=120) for p in processes]
    # The node that died was killed; the other one's torchrun reports its worker's exit 1.
    assert sorted(codes) == [-signal.SIGKILL, 1], both_outputs(tmp_path)[-3000:]
    log = output(tmp_path, codes.index(1))
    lost = [line for line in log.splitlines() if line.startswith("error: lost contact with")]
    assert len(lost) == 1, log[-3000:]
    assert (
        "; this epoch is dropped; checkpoints/circles/last.ckpt holds its 2 finished epochs;"
        in lost[0]
    )
    assert "resume with: " + shlex.join(node[:3]) in lost[0]
    # Nothing else of the worker's: no traceback (torch prefixes a rank's with [rank0]:).
    assert not [line for line in log.splitlines() if line.startswith("[rank0]:")]
    assert sum("gloo/transport" in line for line in log.splitlines()) == 1
