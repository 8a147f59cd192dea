"""Runs saved by an earlier version of the project still load, resume and test.

``tests/fixtures/runs`` holds one 3-epoch run per task (regression on the
line, binary classification on the circles, four classes on the blobs), as
``fit --trainer.max_epochs 3 --checkpoint.every_n_seconds 0`` wrote them
before the project's files were reorganised. A checkpoint records the module
and net by class path, so a move that forgot one would break these.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.base import WorkflowModule
from tests.conftest import RunCLI, assert_same_state, load_state_dict

SAVED = Path(__file__).parent / "fixtures" / "runs"

# What ``test --ckpt_path best`` reported for each saved run when it was written.
TESTED = {
    "linear": {"test/loss": 0.5470, "test/mse": 0.2993},
    "circles": {"test/acc": 0.5950, "test/auroc": 0.6478, "test/f1": 0.5574, "test/loss": 0.6887},
    "blobs": {"test/acc": 0.8700, "test/auroc": 1.0, "test/f1": 0.8633, "test/loss": 0.3733},
}
MODULES: dict[str, type[WorkflowModule]] = {
    "linear": RegressionModule,
    "circles": ClassificationModule,
    "blobs": ClassificationModule,
}


@pytest.fixture
def saved_run(tmp_path: Path) -> Path:
    root = tmp_path / "saved"
    shutil.copytree(SAVED, root)
    return root


@pytest.mark.parametrize("task", sorted(TESTED))
def test_a_saved_run_loads_and_tests_as_it_did(task: str, saved_run: Path, run_cli: RunCLI) -> None:
    module = MODULES[task].load_from_checkpoint(saved_run / "checkpoints" / task / "best.ckpt")
    assert isinstance(module, MODULES[task])
    where = ["--trainer.default_root_dir", str(saved_run)]
    assert run_cli("test", f"{task}.yaml", *where, "--ckpt_path", "best")[0] == 0
    with open(saved_run / "logs" / task / "test" / "metrics.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert {k: round(float(row[k]), 4) for k in TESTED[task]} == TESTED[task]


@pytest.mark.parametrize("task", sorted(TESTED))
def test_a_saved_run_resumes_to_where_one_longer_fit_ends(
    task: str, saved_run: Path, run_cli: RunCLI, tmp_path: Path
) -> None:
    common = ["--trainer.max_epochs", "5", "--checkpoint.every_n_seconds", "0"]
    straight = tmp_path / "straight"
    assert (
        run_cli("fit", f"{task}.yaml", *common, "--trainer.default_root_dir", str(straight))[0] == 0
    )
    where = ["--trainer.default_root_dir", str(saved_run)]
    assert run_cli("fit", f"{task}.yaml", *common, *where, "--ckpt_path", "last")[0] == 0
    last = Path("checkpoints") / task / "last.ckpt"
    assert_same_state(load_state_dict(saved_run / last), load_state_dict(straight / last))
    metrics = Path("logs") / task / "metrics.csv"
    assert (saved_run / metrics).read_text() == (straight / metrics).read_text()
