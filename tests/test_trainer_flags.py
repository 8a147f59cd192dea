"""Every Trainer flag a Lightning user debugs and tunes with works from the command line.

Each case is a short ``fit`` of the circles in this process, with mini-batches
of 100 (6 per epoch) so that flags counting batches have batches to count, and
a check that the flag did what a user expects of it.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS, TRAIN, RunCLI
from training.command_line.cli import WorkflowCLI

Check = Callable[[WorkflowCLI, Path, str], None]


def fit(tmp_path: Path, *args: str) -> WorkflowCLI:
    return WorkflowCLI(
        args=[
            "fit",
            "--config",
            str(CONFIGS / "circles.yaml"),
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.batch_size",
            "100",
            "--trainer.max_epochs",
            "3",
            *args,
        ]
    )


def rows(tmp_path: Path, column: str) -> list[dict[str, str]]:
    with open(tmp_path / "logs" / "circles" / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get(column)]


def fast_dev_run(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    # One batch of training and one of validation, and nothing written.
    assert cli.trainer.global_step == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def overfit_batches(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    # The same batch every epoch: its loss falls towards 0.
    losses = [float(r["train/loss"]) for r in rows(tmp_path, "train/loss")]
    assert cli.trainer.global_step == 100
    assert losses[-1] < 0.05 < 0.5 < losses[0]


def limit_batches(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert cli.trainer.global_step == 3 * 2
    assert cli.trainer.num_val_batches == [1]


def check_val_every_n_epoch(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert [r["epoch"] for r in rows(tmp_path, "val/loss")] == ["1", "3"]


def val_check_interval(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert len(rows(tmp_path, "val/loss")) == 3 * 2


def accumulate_grad_batches(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    # 6 batches per epoch (600 training points), one optimizer step per 3.
    assert cli.trainer.global_step == 3 * 2


def learns(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    losses = [float(r["train/loss"]) for r in rows(tmp_path, "train/loss")]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def profiler(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    learns(cli, tmp_path, out)
    timed = cli.trainer.profiler.recorded_durations  # type: ignore[attr-defined]
    assert any("training_step" in action for action in timed)


def stops_early(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert cli.trainer.current_epoch < 1000


def model_checkpoint(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = cli.trainer.callbacks  # type: ignore[attr-defined]
    by_acc = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    best_acc = max(float(r["val/acc"]) for r in rows(tmp_path, "val/acc"))
    assert by_acc.best_model_score == pytest.approx(best_acc)
    assert [p.name for p in (tmp_path / "by_acc").iterdir()] == [Path(by_acc.best_model_path).name]


def learning_rate_monitor(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert [r["lr-Adam"] for r in rows(tmp_path, "lr-Adam")] == ["0.02"] * 3


def rich_progress_bar(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    from lightning.pytorch.callbacks import RichProgressBar

    assert isinstance(cli.trainer.progress_bar_callback, RichProgressBar)
    learns(cli, tmp_path, out)


def events_in(folder: Path) -> list[Path]:
    return list(folder.rglob("events.out.tfevents.*"))


def own_tensorboard(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    # The user's logger replaces Lightning's default, the run's TensorBoard; metrics.csv stays.
    assert events_in(tmp_path / "tb")
    assert not events_in(tmp_path / "logs")
    learns(cli, tmp_path, out)


def no_logger(cli: WorkflowCLI, tmp_path: Path, out: str) -> None:
    assert not events_in(tmp_path)
    learns(cli, tmp_path, out)


CALLBACKS = "--trainer.callbacks+=lightning.pytorch.callbacks."
RICH_MISSING = importlib.util.find_spec("rich") is None

CASES: dict[str, tuple[list[str], Check]] = {
    "fast_dev_run": (["--trainer.fast_dev_run", "true"], fast_dev_run),
    "overfit_batches": (
        [
            "--trainer.overfit_batches",
            "1",
            "--trainer.max_epochs",
            "100",
            "--model.lr",
            "0.1",
            "--model.net.hidden_units",
            "32",
        ],
        overfit_batches,
    ),
    "limit_train_batches and limit_val_batches": (
        ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"],
        limit_batches,
    ),
    "check_val_every_n_epoch": (
        ["--trainer.check_val_every_n_epoch", "2", "--trainer.max_epochs", "4"],
        check_val_every_n_epoch,
    ),
    "val_check_interval": (["--trainer.val_check_interval", "0.5"], val_check_interval),
    "accumulate_grad_batches": (
        ["--trainer.accumulate_grad_batches", "3"],
        accumulate_grad_batches,
    ),
    "gradient_clip_val": (["--trainer.gradient_clip_val", "0.5"], learns),
    "bf16-mixed on the cpu": (
        ["--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed"],
        learns,
    ),
    "simple profiler": (["--trainer.profiler", "simple"], profiler),
    "deterministic": (["--trainer.deterministic", "true"], learns),
    "max_time": (
        ["--trainer.max_time", "00:00:00:01", "--trainer.max_epochs", "1000"],
        stops_early,
    ),
    "no sanity check": (["--trainer.num_sanity_val_steps", "0"], learns),
    "EarlyStopping": (
        [
            f"{CALLBACKS}EarlyStopping",
            "--trainer.callbacks.monitor",
            "val/acc",
            "--trainer.callbacks.mode",
            "max",
            "--trainer.callbacks.patience",
            "1",
            "--trainer.max_epochs",
            "1000",
        ],
        stops_early,
    ),
    "ModelCheckpoint on val/acc": (
        [
            f"{CALLBACKS}ModelCheckpoint",
            "--trainer.callbacks.monitor",
            "val/acc",
            "--trainer.callbacks.mode",
            "max",
            "--trainer.callbacks.dirpath",
            "ROOT/by_acc",
        ],
        model_checkpoint,
    ),
    "LearningRateMonitor": (
        [f"{CALLBACKS}LearningRateMonitor", "--trainer.callbacks.logging_interval", "epoch"],
        learning_rate_monitor,
    ),
    "RichProgressBar": (
        [f"{CALLBACKS}RichProgressBar", "--trainer.enable_progress_bar", "true"],
        rich_progress_bar,
    ),
    "TensorBoard logger of one's own": (
        [
            "--trainer.logger",
            "lightning.pytorch.loggers.TensorBoardLogger",
            "--trainer.logger.save_dir",
            "ROOT/tb",
        ],
        own_tensorboard,
    ),
    "no logger": (["--trainer.logger", "false"], no_logger),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_short_fit_with_the_flag_does_what_it_says(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if case == "RichProgressBar" and RICH_MISSING:
        pytest.skip("Rich is not installed: .venv/bin/pip install rich")
    monkeypatch.setattr(sys, "argv", [str(TRAIN)])
    args, check = CASES[case]
    args = [a.replace("ROOT", str(tmp_path)) for a in args]
    cli = fit(tmp_path, *args)
    captured = capsys.readouterr()
    check(cli, tmp_path, captured.out + captured.err)


def test_bf16_mixed_fits_validates_tests_and_predicts_on_the_cpu(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    bf16 = ["--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed"]
    assert run_cli("fit", "circles.yaml", *bf16, "--trainer.max_epochs", "5")[0] == 0
    for subcommand in ("validate", "test", "predict"):
        code, err = run_cli(subcommand, "circles.yaml", *bf16, "--ckpt_path", "best")
        assert code == 0, err
    with open(tmp_path / "logs" / "circles" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200 and {r["prediction"] for r in rows} <= {"0.0", "1.0"}
