"""On a GPU: the accelerator flag, and checkpoints that move between GPU and CPU.

Skipped where there is no CUDA GPU; ``scripts/gpu_check.sh`` runs them on one.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from datamodules import BlobsDataModule, CirclesDataModule, LinearDataModule
from datamodules.batches import EpochBatchSampler
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.models import CircleModelV2, LinearRegressionModelV2
from tests.conftest import RunCLI, assert_same_state, load_state_dict

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def inputs_and_targets(predictions: Path) -> list[tuple[str, ...]]:
    """The rows of ``predictions.csv`` without the prediction column, in order."""
    with open(predictions, newline="") as f:
        return [tuple(v for k, v in row.items() if k != "prediction") for row in csv.DictReader(f)]


def test_fit_on_the_gpu_then_resume_and_test_on_the_cpu_and_predict_on_both(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    assert (
        run_cli("fit", "circles.yaml", "--trainer.max_epochs", "5", "--trainer.accelerator", "gpu")[
            0
        ]
        == 0
    )
    cpu = ["--trainer.accelerator", "cpu"]
    assert (
        run_cli("fit", "circles.yaml", "--trainer.max_epochs", "8", "--ckpt_path", "last", *cpu)[0]
        == 0
    )
    assert run_cli("test", "circles.yaml", "--ckpt_path", "best", *cpu)[0] == 0
    assert run_cli("predict", "circles.yaml", "--ckpt_path", "best", *cpu)[0] == 0
    predictions = tmp_path / "logs/circles/predictions.csv"
    on_cpu = inputs_and_targets(predictions)
    gpu = ["--trainer.accelerator", "gpu"]
    assert run_cli("predict", "circles.yaml", "--ckpt_path", "best", *gpu)[0] == 0
    assert inputs_and_targets(predictions) == on_cpu
    state = load_state_dict(tmp_path / "checkpoints/circles/last.ckpt")
    assert all(t.device.type == "cpu" for t in state.values())


def test_fit_on_the_cpu_then_resume_on_the_gpu(run_cli: RunCLI, tmp_path: Path) -> None:
    assert (
        run_cli("fit", "linear.yaml", "--trainer.max_epochs", "5", "--trainer.accelerator", "cpu")[
            0
        ]
        == 0
    )
    gpu = ["--trainer.accelerator", "gpu"]
    assert (
        run_cli("fit", "linear.yaml", "--trainer.max_epochs", "10", "--ckpt_path", "last", *gpu)[0]
        == 0
    )
    assert run_cli("test", "linear.yaml", "--ckpt_path", "best", *gpu)[0] == 0


def test_gpu_resume_is_exact(run_cli: RunCLI, tmp_path: Path) -> None:
    """Shuffled mini-batches: the order drawn on the GPU replays on resume."""
    gpu = ["--trainer.accelerator", "gpu", "--checkpoint.every_n_seconds", "0"]
    gpu += ["--data.batch_size", "64"]
    straight = tmp_path / "straight"
    assert (
        run_cli(
            "fit",
            "circles.yaml",
            *gpu,
            "--trainer.max_epochs",
            "6",
            "--trainer.default_root_dir",
            str(straight),
        )[0]
        == 0
    )
    assert run_cli("fit", "circles.yaml", *gpu, "--trainer.max_epochs", "3")[0] == 0
    assert (
        run_cli("fit", "circles.yaml", *gpu, "--trainer.max_epochs", "6", "--ckpt_path", "last")[0]
        == 0
    )
    run = Path("checkpoints/circles/last.ckpt")
    assert_same_state(load_state_dict(tmp_path / run), load_state_dict(straight / run))


def test_batches_are_cut_from_one_copy_of_the_data_on_the_gpu() -> None:
    devices: list[str] = []

    class RecordBatchDevice(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            devices.append(batch[0].device.type)
            assert trainer.train_dataloader.dataset.features.device.type == "cuda"

    dm = CirclesDataModule(batch_size=64)
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[RecordBatchDevice()],
    )
    trainer.fit(ClassificationModule(CircleModelV2()), dm)
    assert devices and set(devices) == {"cuda"}
    assert dm.train_set.features.device.type == "cpu"  # the split itself stays for plots


class NoWaitInSteps(L.Callback):
    """Makes any host-device synchronisation inside a training, validation or test step raise.

    From batch start to batch end: forward, loss, metric updates, backward and
    the optimizer step. What must wait is outside: the once-per-epoch
    collective and metric computation at the epoch's end. With ``from_epoch``
    the first epochs are left out: a compiled net compiles (and records its
    CUDA graphs) in its first steps.
    """

    def __init__(self, from_epoch: int = 0) -> None:
        self.from_epoch = from_epoch

    def _start(self, trainer: L.Trainer) -> None:
        if trainer.current_epoch >= self.from_epoch:
            torch.cuda.set_sync_debug_mode("error")

    def _end(self) -> None:
        torch.cuda.set_sync_debug_mode("default")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        self._start(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        self._end()

    def on_validation_batch_start(
        self, trainer, pl_module, batch, batch_idx, dataloader_idx=0
    ) -> None:  # type: ignore[no-untyped-def]
        if not trainer.sanity_checking:
            self._start(trainer)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:  # type: ignore[no-untyped-def]
        self._end()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:  # type: ignore[no-untyped-def]
        self._start(trainer)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:  # type: ignore[no-untyped-def]
        self._end()


def binary(**options: Any) -> tuple[L.LightningModule, L.LightningDataModule]:
    return ClassificationModule(CircleModelV2(), **options), CirclesDataModule(batch_size=64)


SYNC_CASES: dict[str, tuple[Callable[[], tuple[Any, Any]], str, int]] = {
    "binary, SGD": (lambda: binary(), "32-true", 0),
    "binary, Adam": (lambda: binary(optimizer="Adam"), "32-true", 0),
    "multi-class": (
        lambda: (
            ClassificationModule(CircleModelV2(out_features=4), num_classes=4),
            BlobsDataModule(batch_size=64),
        ),
        "32-true",
        0,
    ),
    "regression": (
        lambda: (RegressionModule(LinearRegressionModelV2()), LinearDataModule(batch_size=8)),
        "32-true",
        0,
    ),
    "bf16-mixed": (lambda: binary(), "bf16-mixed", 0),
    "compiled": (lambda: binary(compile=True), "32-true", 1),
}


@pytest.mark.parametrize("case", sorted(SYNC_CASES))
def test_no_training_validation_or_test_step_waits_for_the_gpu(case: str, tmp_path: Path) -> None:
    """Every step stays queued on the device; the host never reads a value back mid-step."""
    make, precision, from_epoch = SYNC_CASES[case]
    module, datamodule = make()
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=3,
        precision=precision,  # type: ignore[arg-type]
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        callbacks=[NoWaitInSteps(from_epoch)],
    )
    try:
        trainer.fit(module, datamodule)
        trainer.test(module, datamodule)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.current_epoch == 3 and any(
        k.startswith("test/") for k in trainer.callback_metrics
    )


def test_the_shuffle_order_is_drawn_on_the_gpu_without_waiting() -> None:
    def orders(epoch: int) -> list[torch.Tensor]:
        sampler = EpochBatchSampler(1000, 64, shuffle=True, seed=3, device=torch.device("cuda"))
        sampler.set_epoch(epoch)
        return list(sampler)  # type: ignore[arg-type]

    torch.cuda.set_sync_debug_mode("error")
    try:
        first, again, next_epoch = orders(0), orders(0), orders(1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(index.device.type == "cuda" for index in first)
    assert all(
        torch.equal(a, b) for a, b in zip(first, again, strict=True)
    )  # (seed, epoch) replays
    assert not torch.equal(first[0], next_epoch[0])
    assert torch.equal(torch.cat(first).sort().values.cpu(), torch.arange(1000))


def test_a_compiled_gpu_fit_equals_an_eager_one(run_cli: RunCLI, tmp_path: Path) -> None:
    """CUDA graphs (``reduce-overhead``) train the same model; checkpoints keep eager keys."""
    common = ["--trainer.accelerator", "gpu", "--data.batch_size", "64", "--trainer.max_epochs"]
    roots = {compile: tmp_path / compile for compile in ("false", "true")}
    for compile, root in roots.items():
        args = [*common, "3", "--model.compile", compile, "--trainer.default_root_dir", str(root)]
        assert run_cli("fit", "circles.yaml", *args)[0] == 0
    run = Path("checkpoints/circles/last.ckpt")
    eager, compiled = (load_state_dict(root / run) for root in roots.values())
    assert eager.keys() == compiled.keys()
    for key, weight in compiled.items():
        torch.testing.assert_close(weight, eager[key], atol=1e-5, rtol=0)
