"""The classification exercises: make_moons and make_blobs, their datamodules and configs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from datamodules import BlobsDataModule, LinearDataModule, MoonsDataModule
from datamodules.sklearn_split import SklearnSplitDataModule
from datamodules.split import SplitDataModule
from training.command_line.cli import main
from training.run.metrics_csv import read_metrics

CONFIGS = Path(__file__).parents[1] / "configs"


def splits(datamodule: SklearnSplitDataModule) -> list[torch.Tensor]:
    datamodule.setup("fit")
    return [
        datamodule.train_set.features,
        datamodule.train_set.targets,
        datamodule.test_set.features,
        datamodule.test_set.targets,
    ]


# Datamodules


def test_moons_are_float_features_and_float_0_1_labels() -> None:
    X_train, y_train, X_test, y_test = splits(MoonsDataModule())
    assert X_train.shape == (800, 2) and X_test.shape == (200, 2)
    assert y_train.shape == (800,) and y_test.shape == (200,)
    assert X_train.dtype == X_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.float32  # what BCEWithLogitsLoss expects
    assert set(y_train.unique().tolist()) == {0.0, 1.0}


def test_blobs_are_float_features_and_int64_class_indices() -> None:
    X_train, y_train, X_test, y_test = splits(BlobsDataModule())
    assert X_train.shape == (800, 2) and X_test.shape == (200, 2)
    assert y_train.shape == (800,) and y_test.shape == (200,)
    assert X_train.dtype == X_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64  # what CrossEntropyLoss expects
    assert set(y_train.unique().tolist()) == {0, 1, 2, 3}


def test_blobs_follow_n_features_and_centers() -> None:
    X_train, y_train, X_test, _ = splits(
        BlobsDataModule(n_samples=500, n_features=3, centers=5, test_size=0.3)
    )
    assert X_train.shape == (350, 3) and X_test.shape == (150, 3)
    assert set(y_train.unique().tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("datamodule_class", [MoonsDataModule, BlobsDataModule])
def test_same_arguments_give_identical_tensors(
    datamodule_class: Callable[..., SklearnSplitDataModule],
) -> None:
    torch.manual_seed(0)
    first = splits(datamodule_class())
    torch.manual_seed(1)  # the global RNG plays no part: random_state alone decides
    second = splits(datamodule_class())
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("datamodule_class", [MoonsDataModule, BlobsDataModule])
def test_another_random_state_gives_other_data(
    datamodule_class: Callable[..., SklearnSplitDataModule],
) -> None:
    first = splits(datamodule_class(random_state=42))
    second = splits(datamodule_class(random_state=7))
    assert not torch.equal(first[0], second[0])


def test_datamodule_records_its_arguments_as_hyperparameters() -> None:
    assert dict(MoonsDataModule(noise=0.1).hparams) == {
        "n_samples": 1000,
        "noise": 0.1,
        "random_state": 42,
        "test_size": 0.2,
        "val_size": 0.0,
        "batch_size": None,
        "seed": 0,
        "standardize": False,
    }
    assert BlobsDataModule(centers=3).hparams["centers"] == 3
    assert LinearDataModule(weight=0.5).hparams["weight"] == 0.5


def test_a_datamodule_must_say_how_its_data_are_made() -> None:
    with pytest.raises(TypeError, match="abstract"):
        SplitDataModule()  # type: ignore[abstract]


@pytest.mark.parametrize("datamodule_class", [MoonsDataModule, BlobsDataModule])
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_samples": 0}, "n_samples must be positive, got 0"),
        ({"test_size": 0.0}, r"test_size must lie in \(0, 1\), got 0.0"),
        ({"test_size": 1.0}, r"test_size must lie in \(0, 1\), got 1.0"),
        (
            {"n_samples": 4, "test_size": 0.9},
            r"leaves a split empty \(0 train, 4 test\); use more samples",
        ),
        (
            {"n_samples": 10, "val_size": 0.8},
            r"leaves a split empty \(0 train, 8 val, 2 test\); use more samples",
        ),
        ({"val_size": -0.1}, r"val_size must lie in \[0, 1\), got -0.1"),
        ({"batch_size": 0}, "batch_size must be a positive integer or null"),
    ],
)
def test_bad_common_arguments_are_refused(
    datamodule_class: Callable[..., SklearnSplitDataModule], arguments: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        datamodule_class(**arguments)


@pytest.mark.parametrize(
    ("datamodule_class", "arguments", "message"),
    [
        (MoonsDataModule, {"noise": -0.1}, "noise must be zero or more, got -0.1"),
        (BlobsDataModule, {"n_features": 0}, "n_features must be positive, got 0"),
        (BlobsDataModule, {"centers": 1}, r"centers must be 2 or more \(one per class\), got 1"),
        (BlobsDataModule, {"n_samples": 3}, "cannot give each of the 4 centers a point"),
        (BlobsDataModule, {"cluster_std": 0.0}, "cluster_std must be positive, got 0.0"),
    ],
)
def test_bad_dataset_arguments_are_refused(
    datamodule_class: Callable[..., SklearnSplitDataModule], arguments: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        datamodule_class(**arguments)


# Configs: the real recipe, fit and then tested from best.ckpt


@pytest.mark.parametrize(("name", "threshold"), [("moons", 0.96), ("blobs", 0.99)])
def test_config_reaches_its_test_accuracy(
    name: str, threshold: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LightningCLI warns when pytest's own arguments sit in sys.argv beside the args it is given.
    monkeypatch.setattr(sys, "argv", sys.argv[:1])
    config = [
        "--config",
        str(CONFIGS / f"{name}.yaml"),
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    assert main(["fit", *config]) == 0
    assert main(["test", *config, "--ckpt_path", "best"]) == 0
    rows = read_metrics(tmp_path / "logs" / name / "test" / "metrics.csv")
    assert len(rows) == 1
    assert float(rows[0]["test/acc"]) >= threshold
