"""The LightningModules: raw outputs, optimizers, checkpoints that rebuild their net."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from datamodules import LinearDataModule
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.models import CircleModelV2, LinearRegressionModel, LinearRegressionModelV2
from tests.conftest import RunCLI, fit_once, load_state_dict


def quick_trainer(
    tmp_path: Path, epochs: int = 3, callbacks: list[L.Callback] | None = None
) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=callbacks,
    )


def test_regression_module_returns_the_nets_output() -> None:
    module = RegressionModule(net=LinearRegressionModelV2())
    x = torch.rand(4, 1)
    assert torch.equal(module(x), module.net(x))


def test_classification_module_returns_logits() -> None:
    net = CircleModelV2()
    module = ClassificationModule(net=net)
    with torch.no_grad():
        net.layer_3.bias.fill_(5.0)
    x = torch.rand(4, 2)
    logits = module(x)
    assert torch.equal(logits, module.net(x))
    assert (logits > 1).any()  # not squashed into probabilities


def test_defaults_are_the_notes_recipe() -> None:
    module = RegressionModule(net=LinearRegressionModelV2())
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert isinstance(module.loss_fn, torch.nn.L1Loss)
    assert isinstance(ClassificationModule(net=CircleModelV2()).loss_fn, torch.nn.BCEWithLogitsLoss)


@pytest.mark.parametrize(
    "name, cls",
    [("SGD", torch.optim.SGD), ("AdamW", torch.optim.AdamW), ("RMSprop", torch.optim.RMSprop)],
)
def test_optimizer_is_chosen_by_name(name: str, cls: type[torch.optim.Optimizer]) -> None:
    module = ClassificationModule(net=CircleModelV2(), optimizer=name, lr=0.05)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, cls) and type(optimizer) is cls
    assert optimizer.param_groups[0]["lr"] == 0.05


def test_metrics_are_separate_objects_per_stage() -> None:
    module = ClassificationModule(net=CircleModelV2())
    assert set(module.train_metrics.keys()) == {"train/acc"}
    assert set(module.val_metrics.keys()) == {"val/acc", "val/f1", "val/auroc"}
    assert set(module.test_metrics.keys()) == {"test/acc", "test/f1", "test/auroc"}
    assert module.train_metrics["train/acc"] is not module.val_metrics["val/acc"]
    assert module.val_metrics["val/acc"] is not module.test_metrics["test/acc"]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_accuracy_is_torchmetrics_accuracy(num_classes: int) -> None:
    """The epoch accuracy over batches of uneven sizes is torchmetrics' own."""
    from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

    module = ClassificationModule(
        net=CircleModelV2(out_features=1 if num_classes == 2 else num_classes),
        num_classes=num_classes,
    )
    reference = (
        BinaryAccuracy() if num_classes == 2 else MulticlassAccuracy(num_classes, average="micro")
    )
    generator = torch.Generator().manual_seed(0)
    for size in (64, 64, 17):
        outputs = torch.randn(size, 1 if num_classes == 2 else num_classes, generator=generator)
        targets = torch.randint(0, num_classes, (size,), generator=generator)
        if num_classes == 2:
            targets = targets.float()
        module.update_metrics(module.val_metrics, outputs, targets)
        reference.update(module.prediction(outputs), targets.long())
    accuracy = module.val_metrics["val/acc"].compute()
    assert accuracy == pytest.approx(reference.compute().item(), abs=1e-7)
    assert 0 < accuracy < 1  # random logits: right and wrong labels are both counted


@pytest.mark.parametrize("positive_share", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.filterwarnings("ignore:No (positive|negative) samples in targets")
def test_binary_f1_and_auroc_are_torchmetrics(positive_share: float, dtype: torch.dtype) -> None:
    """Epoch F1 and AUROC over batches of uneven sizes are torchmetrics' own.

    The logits are rounded, so many predictions tie, and some are exactly 0 or
    1 after the sigmoid. With one class only both are 0, as in torchmetrics.
    """
    from torchmetrics.classification import BinaryAUROC, BinaryF1Score

    module = ClassificationModule(net=CircleModelV2())
    f1, auroc = BinaryF1Score(), BinaryAUROC()
    generator = torch.Generator().manual_seed(0)
    for size in (64, 64, 17):
        outputs = (torch.randn(size, 1, generator=generator) * 20).round().to(dtype)
        if positive_share == 0.0:
            outputs = -outputs.abs()  # no positive prediction either: F1 is 0/0, given as 0
        targets = (torch.rand(size, generator=generator) < positive_share).float()
        module.update_metrics(module.val_metrics, outputs, targets)
        f1.update(module.prediction(outputs), targets.long())
        auroc.update(module.probabilities(outputs), targets.long())
    values = module.val_metrics.compute()
    assert values["val/f1"] == pytest.approx(f1.compute().item(), abs=1e-6)
    assert values["val/auroc"] == pytest.approx(auroc.compute().item(), abs=1e-6)
    if positive_share == 0.0:
        assert values["val/f1"] == 0
    else:
        assert 0 < values["val/f1"] < 1
    if positive_share == 0.3:
        assert 0.3 < values["val/auroc"] < 0.7  # random logits
    else:
        assert values["val/auroc"] == 0


@pytest.mark.parametrize("num_classes", [3, 5])
@pytest.mark.filterwarnings("ignore:No positive samples in targets")  # the absent class's AUROC
def test_multiclass_f1_is_torchmetrics_macro_f1(num_classes: int) -> None:
    """Over uneven batches, with one class never predicted nor present (left out of the mean)."""
    from torchmetrics.classification import MulticlassF1Score

    module = ClassificationModule(
        net=CircleModelV2(out_features=num_classes), num_classes=num_classes
    )
    reference = MulticlassF1Score(num_classes)
    generator = torch.Generator().manual_seed(0)
    for size in (64, 64, 17):
        outputs = torch.randn(size, num_classes, generator=generator)
        outputs[:, -1] = -100.0  # the last class is never predicted ...
        targets = torch.randint(0, num_classes - 1, (size,), generator=generator)  # ... nor true
        module.update_metrics(module.val_metrics, outputs, targets)
        reference.update(module.labels(outputs), targets)
    value = module.val_metrics.compute()["val/f1"]
    assert value == pytest.approx(reference.compute().item(), abs=1e-6)
    assert 0 < value < 1


def test_outputs_are_float32_under_bf16_autocast() -> None:
    """The metrics, predictions and plots read float32: bf16 rounds 0.998 up to 1.0."""
    module = ClassificationModule(net=CircleModelV2())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = module(torch.randn(8, 2))
    assert outputs.dtype == torch.float32


@pytest.mark.parametrize("options", [{"thresholds": 5}, {"max_fpr": 0.5}, {"ignore_index": -1}])
def test_binary_auroc_options_take_torchmetrics_own_path(options: dict[str, Any]) -> None:
    """Binned thresholds, a partial area and left-out targets give torchmetrics' values."""
    from torchmetrics.classification import BinaryAUROC as TorchmetricsAUROC

    from lightning_modules.auroc import BinaryAUROC

    generator = torch.Generator().manual_seed(0)
    probabilities = torch.rand(100, generator=generator)
    targets = torch.randint(0, 2, (100,), generator=generator)
    if "ignore_index" in options:
        targets[:30] = -1
    ours, reference = BinaryAUROC(**options), TorchmetricsAUROC(**options)
    ours.update(probabilities, targets)
    reference.update(probabilities, targets)
    assert ours.compute().item() == pytest.approx(reference.compute().item(), abs=1e-6)


def test_regression_logs_the_loss_and_mse_only() -> None:
    """The L1 loss is the mean absolute error: no MAE metric repeats it."""
    module = RegressionModule(net=LinearRegressionModelV2())
    assert set(module.train_metrics.keys()) == {"train/mse"}
    assert set(module.val_metrics.keys()) == {"val/mse"}


def test_checkpoint_of_a_module_built_in_python_rebuilds_its_net(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = RegressionModule(net=LinearRegressionModel())
    trainer = quick_trainer(tmp_path)
    trainer.fit(module, LinearDataModule())
    path = tmp_path / "notebook.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["net"] == {
        "class_path": "lightning_modules.models.LinearRegressionModel",
        "init_args": {},
    }
    loaded = RegressionModule.load_from_checkpoint(path)
    assert isinstance(loaded.net, LinearRegressionModel)
    assert torch.equal(loaded.state_dict()["net.weights"], module.state_dict()["net.weights"])


@pytest.fixture(scope="module")
def circles_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch circles fit with 16 hidden units, for the tests that only read its checkpoints."""
    args = ["--trainer.max_epochs", "2", "--model.net.hidden_units", "16"]
    return (
        fit_once(tmp_path_factory.mktemp("circles"), "circles.yaml", *args) / "checkpoints/circles"
    )


def test_checkpoint_of_a_cli_run_rebuilds_its_net(circles_run: Path) -> None:
    path = circles_run / "last.ckpt"
    loaded = ClassificationModule.load_from_checkpoint(path)
    assert isinstance(loaded.net, CircleModelV2) and loaded.net.hidden_units == 16
    assert torch.equal(
        loaded.state_dict()["net.layer_1.weight"], load_state_dict(path)["net.layer_1.weight"]
    )


def test_load_from_checkpoint_refuses_unsafe_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weights_only=True"):
        RegressionModule.load_from_checkpoint(tmp_path / "x.ckpt", weights_only=False)


def test_learning_rate_given_on_resume_applies(run_cli: RunCLI, tmp_path: Path) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "3")[0] == 0
    code, _ = run_cli(
        "fit",
        "linear.yaml",
        "--trainer.max_epochs",
        "5",
        "--ckpt_path",
        "last",
        "--model.lr",
        "0.05",
    )
    assert code == 0
    checkpoint = torch.load(tmp_path / "checkpoints/linear/last.ckpt", weights_only=True)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == 0.05
    assert checkpoint["hyper_parameters"]["lr"] == 0.05


def test_full_batch_training_matches_the_notes_loop(tmp_path: Path) -> None:
    """Lightning's loop is the notes' loop: the same seed gives the same weights."""
    torch.manual_seed(42)
    model_1 = LinearRegressionModelV2()
    dm = LinearDataModule()
    dm.setup("fit")
    loss_fn = torch.nn.L1Loss()
    optimizer = torch.optim.SGD(params=model_1.parameters(), lr=0.01)
    for _ in range(20):
        model_1.train()
        loss = loss_fn(model_1(dm.train_set.features), dm.train_set.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    torch.manual_seed(42)
    module = RegressionModule(net=LinearRegressionModelV2())
    quick_trainer(tmp_path, epochs=20).fit(module, LinearDataModule())
    for ours, notes in zip(module.net.parameters(), model_1.parameters(), strict=True):
        assert torch.equal(ours, notes)


def test_an_empty_share_of_a_batch_adds_nothing() -> None:
    """Under DDP a rank's share of a last batch smaller than the ranks can be empty."""
    module = RegressionModule(net=LinearRegressionModelV2())
    loss = module._step((torch.zeros(0, 1), torch.zeros(0, 1)), "train")
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())
    assert module.train_loss.count == 0


def test_a_checkpoint_whose_net_disagrees_with_its_weights_is_refused_before_building(
    circles_run: Path, run_cli: RunCLI, tmp_path: Path
) -> None:
    """A 5 KB best.ckpt edited to record 100000 hidden units would make its net 40 GB."""
    checkpoint = torch.load(circles_run / "best.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["net"]["init_args"]["hidden_units"] = 100_000
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    with pytest.raises(ValueError, match=r"records CircleModelV2\(.*hidden_units=100000.*weights"):
        ClassificationModule.load_from_checkpoint(edited)
    code, err = run_cli("test", "circles.yaml", "--ckpt_path", str(edited))

    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 500_000
    assert code == 2 and err.count("\n") == 1, err
    assert "layer_1.bias: (16,) in the weights, (100000,) in the net" in err
