"""A run's name, its neighbours and what it reads back: nothing of another run is touched.

``--name`` becomes ``checkpoints/<name>`` and ``logs/<name>``. A name that is
not a plain relative path, or a checkpoint of another run, is refused before
anything is written; ``validate``, ``test`` and ``predict`` read the run's own
trained weights, and each call's log holds that call's rows only.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.callbacks import Callback

from tests.conftest import RunCLI, fit_once, load_script, snapshot
from training.errors import WriteFailed
from training.run.atomic_files import atomic_write_text

BAD_NAMES = {
    "empty": "",
    "dot": ".",
    "dot dot": "..",
    "absolute": "/tmp/elsewhere",
    "inside then up": "group/../other",
    "empty part": "group//run",
    "trailing slash": "group/",
    "too long for the file system": "x" * 250,
}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs ``linear`` (3 epochs) and ``other`` (2 epochs, another lr) under one root."""
    root = fit_once(tmp_path_factory.mktemp("runs"), "linear.yaml", "--trainer.max_epochs", "3")
    fit_once(
        root, "linear.yaml", "--name", "other", "--trainer.max_epochs", "2", "--model.lr", "0.05"
    )
    return root


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
@pytest.mark.parametrize("subcommand", ["fit", "test"])
def test_a_name_that_is_not_a_plain_folder_is_refused_before_anything_moves(
    two_runs: Path, run_cli: RunCLI, case: str, subcommand: str
) -> None:
    before = snapshot(two_runs)
    code, err = run_cli(
        subcommand,
        "linear.yaml",
        "--trainer.default_root_dir",
        str(two_runs),
        "--name",
        BAD_NAMES[case],
    )
    assert code == 2
    assert one_line(err).startswith("error: run name")
    assert snapshot(two_runs) == before
    assert not Path("/tmp/elsewhere/checkpoints").exists()


def test_a_name_whose_folder_is_a_file_is_refused(run_cli: RunCLI, tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "group").write_text("a file where the run's folder would be")
    before = snapshot(tmp_path)
    for name in ("group", "group/run"):
        code, err = run_cli("fit", "linear.yaml", "--name", name)
        assert code == 2
        assert "checkpoints/group is a file, not a folder" in one_line(err)
        assert snapshot(tmp_path) == before


def test_a_write_under_a_file_names_the_file_in_one_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    with pytest.raises(WriteFailed, match=r"cannot write .*blocker/metrics.csv"):
        atomic_write_text(tmp_path / "blocker" / "metrics.csv", "epoch\n")


def test_a_nested_name_keeps_its_earlier_run_beside_it(run_cli: RunCLI, tmp_path: Path) -> None:
    for epochs in ("1", "2"):
        code, err = run_cli(
            "fit", "linear.yaml", "--name", "group/run", "--trainer.max_epochs", epochs
        )
        assert code == 0, err
    assert "the earlier run is kept in" in err
    for kind in ("checkpoints", "logs"):
        folders = sorted(p.name for p in (tmp_path / kind / "group").iterdir() if p.is_dir())
        assert folders == ["run", "run.1"]


def test_a_fit_refuses_to_resume_from_another_runs_checkpoint(
    two_runs: Path, run_cli: RunCLI
) -> None:
    before = snapshot(two_runs)
    linear_last = two_runs / "checkpoints" / "linear" / "last.ckpt"
    code, err = run_cli(
        "fit",
        "linear.yaml",
        "--trainer.default_root_dir",
        str(two_runs),
        "--name",
        "other",
        "--model.lr",
        "0.05",
        "--ckpt_path",
        str(linear_last),
        "--trainer.max_epochs",
        "5",
    )
    assert code == 2
    assert one_line(err) == (
        f"error: {linear_last} is not a checkpoint of run 'other'; resume that run with"
        " --name linear --ckpt_path last, or start a new run with another --name and no"
        " --ckpt_path"
    )
    assert snapshot(two_runs) == before


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("subcommand", ["validate", "test"])
@pytest.mark.parametrize("ckpt_path", ["best", "last"])
def test_each_evaluation_logs_its_own_rows_only(
    two_runs: Path, run_cli: RunCLI, subcommand: str, ckpt_path: str
) -> None:
    where = ["--trainer.default_root_dir", str(two_runs), "--ckpt_path", ckpt_path]
    metrics = two_runs / "logs" / "linear" / subcommand / "metrics.csv"
    for _ in range(2):
        assert run_cli(subcommand, "linear.yaml", *where)[0] == 0
        (row,) = rows(metrics)
        stage = "val" if subcommand == "validate" else "test"
        assert set(row) == {"epoch", "step", f"{stage}/loss", f"{stage}/mse"}


def test_evaluating_a_run_without_ckpt_path_uses_its_best_weights_and_says_so(
    two_runs: Path, run_cli: RunCLI
) -> None:
    where = ["--trainer.default_root_dir", str(two_runs)]
    code, err = run_cli("test", "linear.yaml", *where)
    assert code == 0
    best = two_runs / "checkpoints" / "linear" / "best.ckpt"
    assert f"test uses {best} (pass --ckpt_path to choose another)" in err
    without = rows(two_runs / "logs" / "linear" / "test" / "metrics.csv")
    assert run_cli("test", "linear.yaml", *where, "--ckpt_path", "best")[0] == 0
    assert rows(two_runs / "logs" / "linear" / "test" / "metrics.csv") == without


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_a_run_that_has_no_checkpoint_is_refused(
    run_cli: RunCLI, tmp_path: Path, subcommand: str
) -> None:
    code, err = run_cli(subcommand, "linear.yaml", "--name", "never_fitted")
    assert code == 2
    assert one_line(err).startswith(f"error: run 'never_fitted' has no checkpoint to {subcommand}")
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("option", ["max_epochs", "max_steps", "limit_train_batches"])
def test_a_fit_that_would_train_nothing_is_refused(
    run_cli: RunCLI, tmp_path: Path, option: str
) -> None:
    code, err = run_cli("fit", "linear.yaml", f"--trainer.{option}", "0")
    assert code == 2
    assert one_line(err).startswith(f"error: --trainer.{option} 0 trains nothing")
    assert snapshot(tmp_path) == {}


def test_a_fit_removes_what_a_killed_write_left_in_its_log_folder(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "1")[0] == 0
    logs = tmp_path / "logs" / "linear"
    dead = logs / "loss_curves.png.999999999.tmp"  # no process has this pid
    dead.write_bytes(b"half a png")
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "2", "--ckpt_path", "last")[0] == 0
    assert not dead.exists()


def test_plot_script_finds_a_nested_runs_checkpoint(
    run_cli: RunCLI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("fit", "linear.yaml", "--name", "group/run", "--trainer.max_epochs", "1")[0] == 0
    capsys.readouterr()
    assert load_script("plot").main([str(tmp_path / "logs" / "group" / "run")]) == 0


SLURM_JOB = {
    "SLURM_NTASKS": "1",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_ID": "7",
    "SLURM_NODELIST": "localhost",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}
REQUEUES: list[bool] = []


class RecordsLightningsRequeue(Callback):
    """Records whether Lightning's own SLURM requeue (SIGUSR1, hpc_ckpt_N.ckpt) is on."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning has registered its signal handlers by now.
        REQUEUES.append(signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None))


def test_lightnings_slurm_checkpoint_never_starts_another_run(
    run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "3")[0] == 0
    # What Lightning's SIGUSR1 handler writes at the root: another run's state.
    shutil.copy(tmp_path / "checkpoints" / "linear" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt")
    for key, value in SLURM_JOB.items():
        monkeypatch.setenv(key, value)
    REQUEUES.clear()
    record = {"class_path": f"{__name__}.RecordsLightningsRequeue"}
    code, err = run_cli(
        "fit",
        "linear.yaml",
        "--name",
        "fresh",
        "--model.lr",
        "0.05",
        "--trainer.max_epochs",
        "2",
        f"--trainer.callbacks={json.dumps([record])}",
    )
    assert code == 0, err
    assert REQUEUES == [False]
    assert "hpc_ckpt" not in err
    assert [row["epoch"] for row in rows(tmp_path / "logs" / "fresh" / "metrics.csv")] == [
        "0",
        "0",
        "1",
        "1",
    ]
