"""Every fit logs to TensorBoard what it logs to ``metrics.csv``, and a resume leaves no stale step.

The event files are read back as TensorBoard reads them (its ``EventAccumulator``,
which applies a resume's ``purge_step``), and, after real kills, by the
``tensorboard --logdir logs`` server that ``docs/extending.md`` shows: each
scalar, at each step, is the value ``metrics.csv`` holds there, once.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    CONFIGS,
    RunCLI,
    callback_option,
    process_env,
    train_process,
)
from tests.test_readme import PAGES, commands
from training.run.metrics_csv import read_metrics

Scalars = list[tuple[str, int, float]]

# Six mini-batches an epoch, and last.ckpt after every epoch, so that a kill lands where asked.
ARGS = ["--data.batch_size", "100", "--checkpoint.every_n_seconds", "0"]


def tensorboard_scalars(log_dir: Path) -> Scalars:
    """Every scalar event of the folder's event files, as TensorBoard keeps them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return sorted(
        (tag, event.step, event.value)
        for tag in events.Tags()["scalars"]
        for event in events.Scalars(tag)
    )


def csv_scalars(log_dir: Path) -> Scalars:
    """Every value of ``metrics.csv`` (its epoch among them), at its step, as a float32."""
    return sorted(
        (key, int(row["step"]), float(np.float32(value)))
        for row in read_metrics(log_dir / "metrics.csv")
        for key, value in row.items()
        if key != "step" and value
    )


def event_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("events.out.tfevents.*"))


def test_a_fit_logs_to_tensorboard_what_it_logs_to_metrics_csv(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    assert run_cli("fit", "circles.yaml", *ARGS, "--trainer.max_epochs", "3")[0] == 0
    logs = tmp_path / "logs" / "circles"
    assert len(event_files(logs)) == 1, "in the run's own folder, beside metrics.csv"
    scalars = tensorboard_scalars(logs)
    assert scalars == csv_scalars(logs)
    assert {tag for tag, _, _ in scalars} == {
        "epoch",
        "train/acc",
        "train/loss",
        "val/acc",
        "val/auroc",
        "val/f1",
        "val/loss",
    }
    assert not (logs / "hparams.yaml").exists(), "the config is config.yaml"


def test_a_resume_after_a_kill_leaves_tensorboard_as_one_uninterrupted_fit(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    """Epochs 3 to 5 logged, the checkpoint at 3: a fit killed before it wrote ``last.ckpt`` again.

    Those epochs were trained at another rate, so that a stale value would show.
    """
    reference = tmp_path / "reference"
    six = ["--trainer.max_epochs", "6"]
    at_reference = ["--trainer.default_root_dir", str(reference)]
    assert run_cli("fit", "circles.yaml", *ARGS, *six, *at_reference)[0] == 0

    assert run_cli("fit", "circles.yaml", *ARGS, "--trainer.max_epochs", "3")[0] == 0
    last = tmp_path / "checkpoints" / "circles" / "last.ckpt"
    at_three = last.read_bytes()
    faster = ["--model.lr", "0.5"]
    assert run_cli("fit", "circles.yaml", *ARGS, *six, *faster, "--ckpt_path", "last")[0] == 0
    logs = tmp_path / "logs" / "circles"
    stale = tensorboard_scalars(logs)
    last.write_bytes(at_three)

    assert run_cli("fit", "circles.yaml", *ARGS, *six, "--ckpt_path", "last")[0] == 0
    assert len(event_files(logs)) == 3
    scalars = tensorboard_scalars(logs)
    assert scalars == csv_scalars(logs)
    assert scalars == tensorboard_scalars(reference / "logs" / "circles")
    # Lightning logs the epoch with each row, training's and validation's: nothing else twice.
    twice = Counter((tag, step) for tag, step, _ in scalars)
    assert {tag for (tag, _), count in twice.items() if count > 1} == {"epoch"}
    assert set(stale) - set(scalars), "the epochs trained at 0.5 are gone"


def test_a_run_begun_without_tensorboard_gets_its_whole_history_on_resume(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    assert (
        run_cli(
            "fit", "circles.yaml", *ARGS, "--trainer.max_epochs", "3", "--trainer.logger", "false"
        )[0]
        == 0
    )
    logs = tmp_path / "logs" / "circles"
    assert event_files(logs) == [], "--trainer.logger false turns TensorBoard off"
    assert (logs / "metrics.csv").is_file(), "the run's own record stays"

    assert (
        run_cli("fit", "circles.yaml", *ARGS, "--trainer.max_epochs", "5", "--ckpt_path", "last")[0]
        == 0
    )
    scalars = tensorboard_scalars(logs)
    assert scalars == csv_scalars(logs)
    assert {step for tag, step, _ in scalars if tag == "val/loss"} == {5, 11, 17, 23, 29}


def tensorboard_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    """Starts the page's ``tensorboard --logdir logs`` in ``root``, on a free loopback port."""
    (command,) = [c for c in commands(PAGES["docs/extending.md"]) if "tensorboard " in c]
    program, *args = shlex.split(command)
    assert program == ".venv/bin/tensorboard"
    binary = Path(sys.executable).parent / "tensorboard"
    server = subprocess.Popen(
        [str(binary), *args, "--host", "127.0.0.1", "--port", "0"],
        cwd=root,
        env=process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert server.stderr is not None
    deadline = time.monotonic() + 120
    said = ""
    while time.monotonic() < deadline and server.poll() is None:
        ready, _, _ = select.select([server.stderr], [], [], 1)
        if ready:
            said += server.stderr.readline()
            found = re.search(r"at (http://127\.0\.0\.1:\d+)/", said)
            if found:
                return server, found[1]
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError(f"TensorBoard did not start: {said[-2000:]}")


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def runs_shown(address: str) -> list[str]:
    runs = get(f"{address}/data/runs")
    assert isinstance(runs, list)
    return sorted(runs)


def served_scalars(address: str, run: str) -> Scalars:
    tags = get(f"{address}/data/plugin/scalars/tags")
    assert isinstance(tags, dict)
    scalars = []
    for tag in tags[run]:
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        points = get(f"{address}/data/plugin/scalars/scalars?{query}")
        assert isinstance(points, list)
        scalars += [(tag, int(step), float(value)) for _, step, value in points]
    return sorted(scalars)


@pytest.mark.slow
def test_tensorboard_shows_each_run_by_name_and_a_killed_one_as_if_never_killed(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    """Killed after a checkpoint's rename (its epoch's training row not yet logged), then
    mid-epoch two epochs on; TensorBoard's server then shows what metrics.csv holds."""
    six = ["--trainer.max_epochs", "6"]
    assert run_cli("fit", "circles.yaml", *ARGS, *six, "--name", "reference")[0] == 0
    fit = ["fit", "--config", str(CONFIGS / "circles.yaml"), *ARGS, *six]
    for number, (epoch, at) in enumerate([(1, "after_save"), (4, "batch")]):
        resume = ["--ckpt_path", "last"] if number else []
        killed = train_process(
            tmp_path, *fit, *resume, callback_option("KillAt", epoch=epoch, at=at, batch=2)
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    finished = train_process(tmp_path, *fit, "--ckpt_path", "last")
    assert finished.returncode == 0, finished.stderr[-2000:]

    logs = tmp_path / "logs"
    assert tensorboard_scalars(logs / "circles") == csv_scalars(logs / "circles")
    server, address = tensorboard_server(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while runs_shown(address) != ["circles", "reference"]:
            assert time.monotonic() < deadline, runs_shown(address)
            time.sleep(0.5)
        for run in ("circles", "reference"):
            # The server keeps one value a step: the epoch, logged with both rows, shows once.
            expected = sorted(set(csv_scalars(logs / run)))
            while served_scalars(address, run) != expected and time.monotonic() < deadline:
                time.sleep(0.5)
            assert served_scalars(address, run) == expected
        assert csv_scalars(logs / "circles") == csv_scalars(logs / "reference")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
