"""On a GPU: the accelerator flag, and checkpoints that move between GPU and CPU.

Skipped where there is no CUDA GPU; ``scripts/gpu_check.sh`` runs them on one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
