"""What callbacks, the progress bar and the loggers see is what ``self.log`` gives them.

The reference is a module written the way Lightning's docs show and nothing
else: every value goes through ``self.log`` in the step, ``on_epoch=True``.
The project's modules must show callbacks the same keys at the same hooks,
with the current epoch's values, and write the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import Tensor, nn
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
)

from datamodules import CirclesDataModule
from lightning_modules import ClassificationModule
from lightning_modules.models import CircleModelV2
from tests.conftest import RunCLI
from training.run.metrics_csv import ResumableCSVLogger, read_metrics

EPOCHS = 3
HOOKS = ("on_validation_epoch_end", "on_validation_end", "on_train_epoch_end")


class OnlySelfLog(L.LightningModule):
    """The docs' pattern: loss and metrics of each batch through ``self.log``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        features, targets = batch
        logits = self.net(features).squeeze(dim=1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        probabilities = torch.sigmoid(logits)
        values = {"loss": loss, "acc": binary_accuracy(probabilities, targets)}
        if stage != "train":
            values["f1"] = binary_f1_score(probabilities, targets)
            values["auroc"] = binary_auroc(probabilities, targets.long())
        for name, value in values.items():
            self.log(
                f"{stage}/{name}", value, on_step=False, on_epoch=True, prog_bar=name == "loss"
            )
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Spy(L.Callback):
    """Records ``trainer.callback_metrics`` at the hooks where callbacks read them."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bool, dict[str, float]]] = []

    def _record(self, trainer: L.Trainer, hook: str) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.records.append((hook, trainer.current_epoch, trainer.sanity_checking, values))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "on_validation_epoch_end")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "on_train_epoch_end")


def fit(module: L.LightningModule, root: Path) -> tuple[Spy, L.Trainer, list[dict[str, Any]]]:
    spy = Spy()
    logger = ResumableCSVLogger(root / "logs")
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        default_root_dir=root,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        callbacks=[spy],
    )
    trainer.fit(module, CirclesDataModule())  # full batch: an epoch's value is its batch's
    return spy, trainer, read_metrics(logger.metrics_path)


def test_callbacks_see_what_self_log_gives_them_at_every_hook(tmp_path: Path) -> None:
    torch.manual_seed(0)
    project = ClassificationModule(net=CircleModelV2())
    torch.manual_seed(0)
    reference = OnlySelfLog(CircleModelV2())
    spy, trainer, rows = fit(project, tmp_path / "project")
    reference_spy, reference_trainer, reference_rows = fit(reference, tmp_path / "reference")

    assert [r[:3] for r in spy.records] == [r[:3] for r in reference_spy.records]
    assert len(spy.records) == len(HOOKS) * EPOCHS + 2  # and the sanity check's two
    for (hook, epoch, _, ours), (*_, theirs) in zip(
        spy.records, reference_spy.records, strict=True
    ):
        assert ours.keys() == theirs.keys(), f"{hook}, epoch {epoch}"
        assert ours == pytest.approx(theirs, abs=1e-6), f"{hook}, epoch {epoch}"

    # The current epoch's values, not the previous one's: at each hook, the
    # values of the stages that have finished the epoch are the logger's rows.
    logged = {
        (int(row["epoch"]), key): float(value)
        for row in rows
        for key, value in row.items()
        if value and key not in ("epoch", "step")
    }
    for hook, epoch, sanity, values in spy.records:
        if sanity:
            continue
        finished = ("val/", "train/") if hook == "on_train_epoch_end" else ("val/",)
        expected = {k: v for (e, k), v in logged.items() if e == epoch and k.startswith(finished)}
        assert {k: values[k] for k in expected} == pytest.approx(expected), f"{hook}, {epoch}"
        assert len(expected) == (6 if hook == "on_train_epoch_end" else 4)
    assert [r.keys() for r in rows] == [r.keys() for r in reference_rows]
    assert len(rows) == 2 * EPOCHS  # one row per epoch and stage
    assert trainer.progress_bar_metrics == pytest.approx(reference_trainer.progress_bar_metrics)
    assert set(trainer.progress_bar_metrics) == {"train/loss", "val/loss"}


def test_validate_and_test_report_every_metric(tmp_path: Path) -> None:
    module = ClassificationModule(net=CircleModelV2())
    trainer = L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu")
    datamodule = CirclesDataModule()
    (validated,) = trainer.validate(module, datamodule, verbose=False)
    (tested,) = trainer.test(module, datamodule, verbose=False)
    assert set(validated) == {"val/loss", "val/acc", "val/f1", "val/auroc"}
    assert set(tested) == {"test/loss", "test/acc", "test/f1", "test/auroc"}
    assert validated["val/loss"] == pytest.approx(tested["test/loss"])  # the same held-out split


def test_early_stopping_reads_the_current_epoch(tmp_path: Path) -> None:
    """val/acc cannot beat 1.0 once reached: patience 1 stops the fit one epoch later."""
    accuracies: list[float] = []

    class Record(L.Callback):
        def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if not trainer.sanity_checking:
                accuracies.append(float(trainer.callback_metrics["val/acc"]))

    stop = EarlyStopping(monitor="val/acc", mode="max", patience=1)
    trainer = L.Trainer(
        max_epochs=50,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        accelerator="cpu",
        callbacks=[Record(), stop],
    )
    torch.manual_seed(0)
    trainer.fit(
        ClassificationModule(net=CircleModelV2(), optimizer="Adam", lr=0.05), CirclesDataModule()
    )
    best = accuracies.index(max(accuracies))
    assert stop.stopped_epoch == best + 1 == len(accuracies) - 1


def test_a_resume_adds_the_training_row_a_kill_kept_from_the_file(tmp_path: Path) -> None:
    """Lightning logs the training row after last.ckpt is written; the checkpoint carries it."""
    logger = ResumableCSVLogger(tmp_path)
    rows = [
        ({"epoch": 0, "val/loss": 0.5}, 0),
        ({"epoch": 0, "train/loss": 0.6}, 0),
        ({"epoch": 1, "val/loss": 0.4}, 1),  # killed after last.ckpt: no training row for 1
    ]
    for values, step in rows:
        logger.log_metrics(values, step)
        logger.save()
    carried = {"epoch": 1, "step": 1, "train/loss": 0.45}  # what last.ckpt (2 epochs) holds
    ResumableCSVLogger(tmp_path).continue_from(2, carried)
    again = ResumableCSVLogger(tmp_path)
    again.continue_from(2, carried)  # a second resume from the same checkpoint adds nothing
    assert [
        (r["epoch"], r["step"], r["train/loss"], r["val/loss"])
        for r in read_metrics(logger.metrics_path)
    ] == [
        ("0", "0", "", "0.5"),
        ("0", "0", "0.6", ""),
        ("1", "1", "", "0.4"),
        ("1", "1", "0.45", ""),
    ]


def test_a_resume_with_a_schedule_logs_each_epoch_once(run_cli: RunCLI, tmp_path: Path) -> None:
    """The epoch's training row carries ``lr`` too; the resume must find it in the file."""
    schedule = ["--model.lr_scheduler", "StepLR", "--model.lr_scheduler.step_size", "1"]
    straight = tmp_path / "straight"
    common = ["circles.yaml", *schedule, "--checkpoint.every_n_seconds", "0"]
    where = ["--trainer.default_root_dir", str(straight)]
    assert run_cli("fit", *common, "--trainer.max_epochs", "4", *where)[0] == 0
    assert run_cli("fit", *common, "--trainer.max_epochs", "2")[0] == 0
    assert run_cli("fit", *common, "--trainer.max_epochs", "4", "--ckpt_path", "last")[0] == 0
    metrics = Path("logs/circles/metrics.csv")
    assert (tmp_path / metrics).read_text() == (straight / metrics).read_text()
