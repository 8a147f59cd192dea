"""On a GPU: the accelerator flag, and checkpoints that move between GPU and CPU.

Skipped where there is no CUDA GPU; ``scripts/gpu_check.sh`` runs them on one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import CirclesDataModule
from lightning_modules import ClassificationModule
from lightning_modules.models import CircleModelV2
from tests.conftest import RunCLI, assert_same_state, load_state_dict

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_fit_on_the_gpu_then_resume_test_and_predict_on_the_cpu(
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
    gpu = ["--trainer.accelerator", "gpu", "--checkpoint.every_n_seconds", "0"]
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
    import lightning as L

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
