"""Data that do not fit the model are refused in one line before the first step, writing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from datamodules import BlobsDataModule, CirclesDataModule, LinearDataModule
from datamodules.sklearn_split import shuffled_split_sizes
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.models import CircleModelV2, LinearRegressionModelV2
from tests.conftest import RunCLI, snapshot
from training.errors import UserError
from training.run.data_fits_model import check_data_fits_model

THREE_CLASSES = "x1,x2,label\n" + "".join(f"{i / 10},{-i / 10},{i % 3}\n" for i in range(30))
THREE_FEATURES = "x1,x2,x3,label\n" + "".join(
    f"{i / 10},{-i / 10},{i},{i % 2}\n" for i in range(30)
)

# (config, a CSV file to write as data.csv or None, extra arguments, what the one line says)
CASES = {
    "labels 0 to 2 for a binary model": (
        "circles_csv.yaml",
        THREE_CLASSES,
        ["--data.path", "data.csv"],
        "data.csv holds 3 classes (labels 0 to 2) but the model is a ClassificationModule of"
        " 2 classes (--model.num_classes 2); pass --model.num_classes 3 and"
        " --model.net.init_args.out_features 3",
    ),
    "three features for a net of two": (
        "circles_csv.yaml",
        THREE_FEATURES,
        ["--data.path", "data.csv", "--data.features", "[x1, x2, x3]"],
        "CircleModelV2(in_features=2, hidden_units=10, out_features=1, dropout=0.0) cannot take"
        " the 3 features per row of data.csv (mat1 and mat2 shapes cannot be multiplied"
        " (2x3 and 2x10)); pass --model.net.init_args.in_features 3, or --data.features with"
        " 2 columns",
    ),
    "regression targets for a classifier": (
        "circles_csv.yaml",
        None,
        ["--data.task", "regression"],
        "data/circles.csv holds regression targets (--data.task regression), a value per row,"
        " but the model is a ClassificationModule of 2 classes (--model.num_classes 2); use a"
        " RegressionModule (as configs/linear.yaml does), or pass --data.task classification",
    ),
    "three classes asked of binary data": (
        "circles.yaml",
        None,
        ["--model.num_classes", "3"],
        "CirclesDataModule holds 2 classes (labels 0 to 1) but the model is a"
        " ClassificationModule of 3 classes (--model.num_classes 3); pass --model.num_classes 2",
    ),
    "fewer logits than classes": (
        "blobs.yaml",
        None,
        ["--model.net.init_args.out_features", "3"],
        "outputs 3 values per row but the model is a ClassificationModule of 4 classes"
        " (--model.num_classes 4), which needs 4 (one logit per class);"
        " pass --model.net.init_args.out_features 4",
    ),
    "class labels for a regression model": (
        "circles.yaml",
        None,
        ["--model", "lightning_modules.RegressionModule"],
        "CirclesDataModule holds class labels but the model is a RegressionModule, which"
        " predicts a value per row; use a ClassificationModule",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_data_that_do_not_fit_the_model_get_one_line_and_change_nothing(
    case: str, run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, contents, args, message = CASES[case]
    if contents is not None:
        (tmp_path / "data.csv").write_text(contents)
        monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, err = run_cli("fit", config, *args)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert snapshot(tmp_path) == before


class NormedDropoutNet(nn.Module):
    """A net with running statistics (BatchNorm) and random numbers (dropout) in training mode."""

    def __init__(self, in_features: int = 2, out_features: int = 1) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.body = nn.Sequential(
            nn.BatchNorm1d(in_features), nn.Linear(in_features, 8), nn.Dropout(0.5)
        )
        self.head = nn.Linear(8, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_the_check_changes_neither_the_model_its_mode_nor_the_random_numbers() -> None:
    """What the fit starts from is what it would start from without the check."""
    module = ClassificationModule(NormedDropoutNet())
    before = {key: value.clone() for key, value in module.state_dict().items()}
    rng = torch.get_rng_state()
    check_data_fits_model(CirclesDataModule(n_samples=50), module)
    assert torch.equal(torch.get_rng_state(), rng)
    after = module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all(m.training for m in module.modules())


@pytest.mark.parametrize(
    "datamodule, module",
    [
        (LinearDataModule(), RegressionModule(LinearRegressionModelV2())),
        (CirclesDataModule(n_samples=50), ClassificationModule(CircleModelV2(dropout=0.5))),
        (
            BlobsDataModule(n_samples=50, n_features=3, centers=5),
            ClassificationModule(CircleModelV2(in_features=3, out_features=5), num_classes=5),
        ),
    ],
    ids=["regression", "binary", "five classes"],
)
def test_data_made_for_the_model_pass(
    datamodule: LinearDataModule, module: RegressionModule | ClassificationModule
) -> None:
    check_data_fits_model(datamodule, module)


def test_a_label_beyond_the_classes_in_the_test_split_alone_is_refused() -> None:
    """Every split's labels count: the test step would otherwise meet the stray one."""
    datamodule = CirclesDataModule(n_samples=50)
    datamodule.setup("fit")
    datamodule.test_set.targets[0] = 2.0
    with pytest.raises(UserError, match=re.escape("holds 3 classes (labels 0 to 2)")):
        check_data_fits_model(datamodule, ClassificationModule(CircleModelV2()))


def test_one_sample_reports_the_splits_it_would_leave(run_cli: RunCLI, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    code, err = run_cli("fit", "circles.yaml", "--data.n_samples", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: invalid configuration: test_size=0.2 and val_size=0.2 of n_samples=1 leaves a"
        " split empty (0 train, 0 val, 1 test); use more samples, or a smaller test_size or"
        " val_size"
    ]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("n_samples", range(1, 8))
@pytest.mark.parametrize("val_size", [0.0, 0.2, 0.5, 0.7])
def test_split_counts_are_never_negative_and_add_up(n_samples: int, val_size: float) -> None:
    try:
        sizes = shuffled_split_sizes(n_samples, 0.25, val_size)
    except ValueError as error:
        counts = re.search(r"\((.*)\)", str(error))
        assert counts is not None
        numbers = [int(part.split()[0]) for part in counts.group(1).split(", ")]
        assert min(numbers) == 0 and sum(numbers) == n_samples
    else:
        assert min(sizes) > 0 or (val_size == 0 and sizes[1] == 0)
        assert sum(sizes) == n_samples
