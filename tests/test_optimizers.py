"""Any torch.optim optimizer with its arguments, and a per-epoch LR scheduler, from the config."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from lightning_modules import ClassificationModule
from lightning_modules.models import CircleModelV2
from tests.conftest import (
    ROOT,
    RunCLI,
    assert_same_state,
    fit_once,
    load_state_dict,
    snapshot,
)
from training.run.metrics_csv import read_metrics

LR = 0.02
COSINE = ["--model.lr_scheduler", "CosineAnnealingLR", "--model.lr_scheduler.T_max", "4"]
EVERY_EPOCH = ["--checkpoint.every_n_seconds", "0"]
LAST = "checkpoints/circles/last.ckpt"


def logged_lr(root: Path) -> dict[int, float]:
    rows = read_metrics(root / "logs/circles/metrics.csv")
    return {int(r["epoch"]): float(r["lr"]) for r in rows if r["lr"]}


@pytest.fixture(scope="module")
def cosine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch SGD run with the cosine schedule, shared by tests that only read it."""
    return fit_once(
        tmp_path_factory.mktemp("cosine"), "circles.yaml", "--trainer.max_epochs", "1", *COSINE
    )


def cosine(epoch: int, lr: float = LR, t_max: int = 4) -> float:
    return lr * (1 + math.cos(math.pi * epoch / t_max)) / 2


def test_adamw_with_weight_decay_trains(run_cli: RunCLI, tmp_path: Path) -> None:
    code, err = run_cli(
        "fit",
        "circles.yaml",
        "--trainer.max_epochs",
        "2",
        "--model.optimizer",
        "AdamW",
        "--model.optimizer_args",
        "{weight_decay: 0.01, betas: [0.8, 0.99]}",
    )
    assert code == 0, err
    checkpoint = torch.load(tmp_path / LAST, weights_only=True)
    group = checkpoint["optimizer_states"][0]["param_groups"][0]
    assert group["weight_decay"] == 0.01 and list(group["betas"]) == [0.8, 0.99]
    assert checkpoint["hyper_parameters"]["optimizer"] == "AdamW"
    # No schedule, no lr column: the course's metrics.csv keeps its columns.
    assert "lr" not in read_metrics(tmp_path / "logs/circles/metrics.csv")[0]


def test_the_cosine_schedule_sets_each_epochs_logged_lr(run_cli: RunCLI, tmp_path: Path) -> None:
    code, err = run_cli("fit", "circles.yaml", "--trainer.max_epochs", "4", *COSINE)
    assert code == 0, err
    assert logged_lr(tmp_path) == pytest.approx({e: cosine(e) for e in range(4)}, rel=1e-6)
    # One training and one validation row per epoch, as without a schedule.
    assert len(read_metrics(tmp_path / "logs/circles/metrics.csv")) == 8


def test_a_resumed_schedule_ends_where_one_fit_ends(run_cli: RunCLI, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["circles.yaml", *COSINE, *EVERY_EPOCH]
    code, err = run_cli(
        "fit", *args, "--trainer.default_root_dir", str(straight), "--trainer.max_epochs", "4"
    )
    assert code == 0, err
    for epochs, resume in (("2", []), ("4", ["--ckpt_path", "last"])):
        code, err = run_cli(
            "fit", *args, "--trainer.default_root_dir", str(resumed),
            "--trainer.max_epochs", epochs, *resume,
        )  # fmt: skip
        assert code == 0, err
    assert_same_state(load_state_dict(straight / LAST), load_state_dict(resumed / LAST))
    assert logged_lr(resumed) == logged_lr(straight)


def test_lr_on_resume_rescales_the_schedule(run_cli: RunCLI, tmp_path: Path) -> None:
    args = ["circles.yaml", *COSINE, *EVERY_EPOCH]
    assert run_cli("fit", *args, "--trainer.max_epochs", "2")[0] == 0
    code, err = run_cli(
        "fit", *args, "--trainer.max_epochs", "4", "--ckpt_path", "last", "--model.lr", "0.01"
    )
    assert code == 0, err
    expected = {0: cosine(0), 1: cosine(1), 2: cosine(2, 0.01), 3: cosine(3, 0.01)}
    assert logged_lr(tmp_path) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ["--model.lr_scheduler.T_max", "8"],
            "was trained with --model.lr_scheduler CosineAnnealingLR(T_max=4, eta_min=0.0,"
            " last_epoch=-1) (now CosineAnnealingLR(T_max=8, eta_min=0.0, last_epoch=-1));"
            " a resume continues the same experiment",
        ),
        (
            ["--model.lr_scheduler", "StepLR", "--model.lr_scheduler.step_size", "2"],
            "(now StepLR(step_size=2, gamma=0.1, last_epoch=-1))",
        ),
        (["--model.lr_scheduler", "null"], "(now null)"),
        (
            ["--model.optimizer_args", "{weight_decay: 0.1}"],
            "--model.optimizer_args {} (now {'weight_decay': 0.1})",
        ),
        (["--model.optimizer", "AdamW"], "--model.optimizer Adam (now AdamW)"),
    ],
)
def test_a_resume_with_another_schedule_is_refused(
    change: list[str], message: str, run_cli: RunCLI, cosine_run: Path
) -> None:
    before = snapshot(cosine_run)
    code, err = run_cli(
        "fit", "circles.yaml", *COSINE, "--trainer.default_root_dir", str(cosine_run),
        "--trainer.max_epochs", "2", "--ckpt_path", "last", *change,
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    assert snapshot(cosine_run) == before


def test_a_checkpoint_from_before_schedules_resumes_only_without_one(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    assert run_cli("fit", "circles.yaml", "--trainer.max_epochs", "1")[0] == 0
    checkpoint = torch.load(tmp_path / LAST, weights_only=True)
    for key in ("optimizer_args", "lr_scheduler"):
        del checkpoint["hyper_parameters"][key]
    torch.save(checkpoint, tmp_path / LAST)
    resume = ["--trainer.max_epochs", "2", "--ckpt_path", "last"]
    code, err = run_cli("fit", "circles.yaml", *resume, *COSINE)
    assert code == 2 and "--model.lr_scheduler null (now CosineAnnealingLR(T_max=4," in err, err
    assert run_cli("fit", "circles.yaml", *resume)[0] == 0


def test_load_from_checkpoint_rebuilds_the_schedule(cosine_run: Path) -> None:
    module = ClassificationModule.load_from_checkpoint(cosine_run / LAST)
    optimizer: Any = module.configure_optimizers()
    scheduler = optimizer["lr_scheduler"]["scheduler"]
    assert type(scheduler) is torch.optim.lr_scheduler.CosineAnnealingLR
    assert scheduler.T_max == 4 and scheduler.base_lrs == [LR]


def test_python_code_passes_a_schedule_as_a_partial() -> None:
    schedule = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3)
    module = ClassificationModule(CircleModelV2(), lr_scheduler=schedule)
    assert module.hparams["lr_scheduler"] == {
        "class_path": "torch.optim.lr_scheduler.StepLR",
        "init_args": {"step_size": 3, "gamma": 0.1, "last_epoch": -1},
    }


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "unknown optimizer": (
        {"optimizer": "Adagradd"},
        "optimizer must be a torch.optim optimizer (ASGD, Adadelta,",
    ),
    "lr among its arguments": (
        {"optimizer_args": {"lr": 0.1}},
        "optimizer_args must not hold lr; set it with --model.lr",
    ),
    "an argument it lacks": (
        {"optimizer": "Adam", "optimizer_args": {"momentum": 0.9}},
        "--model.optimizer_args: Adam refuses its arguments"
        " (got an unexpected keyword argument 'momentum')",
    ),
    "a per-batch schedule": (
        {"lr_scheduler": {"class_path": "torch.optim.lr_scheduler.OneCycleLR"}},
        "OneCycleLR is not supported: it changes the rate every batch, and the scheduler steps"
        " once per epoch; use a per-epoch schedule such as CosineAnnealingLR or StepLR",
    ),
    "a schedule from elsewhere": (
        # A checkpoint is untrusted: what it records is never imported.
        {"lr_scheduler": {"class_path": "os.system", "init_args": {"command": "true"}}},
        "lr_scheduler must be a class of torch.optim.lr_scheduler, got os.system",
    ),
    "a schedule missing an argument": (
        {"lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR"}},
        "--model.lr_scheduler: StepLR refuses its arguments (missing a required argument:",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_optimizer_settings_are_refused_in_one_line(case: str) -> None:
    kwargs, message = REFUSED[case]
    with pytest.raises(ValueError) as error:
        ClassificationModule(CircleModelV2(), **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_cli_refuses_a_per_batch_schedule(run_cli: RunCLI, tmp_path: Path) -> None:
    code, err = run_cli("fit", "circles.yaml", "--model.lr_scheduler", "OneCycleLR",
                        "--model.lr_scheduler.max_lr", "0.1")  # fmt: skip
    assert code == 2 and err.startswith("error: invalid configuration: OneCycleLR is not"), err
    assert snapshot(tmp_path) == {}


def test_the_readmes_config_form_is_the_command_lines(run_cli: RunCLI, tmp_path: Path) -> None:
    page = (ROOT / "docs/extending.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.DOTALL) if "lr_sch" in b)
    extra = tmp_path / "cosine.yaml"
    extra.write_text(block)
    code, err = run_cli("fit", "circles.yaml", "--config", str(extra), "--trainer.max_epochs", "1")
    assert code == 0, err
    hparams = torch.load(tmp_path / LAST, weights_only=True)["hyper_parameters"]
    assert hparams["optimizer"] == "AdamW" and hparams["optimizer_args"] == {"weight_decay": 0.01}
    assert hparams["lr_scheduler"] == {
        "class_path": "torch.optim.lr_scheduler.CosineAnnealingLR",
        "init_args": {"T_max": 300, "eta_min": 0.0, "last_epoch": -1},
    }
