"""The notes' models: parameters, shapes, and the architecture recorded as plain data."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

from datamodules import CirclesDataModule, LinearDataModule
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.models import (
    CircleModelV0,
    CircleModelV1,
    CircleModelV2,
    LinearRegressionModel,
    LinearRegressionModelV2,
)
from lightning_modules.net_spec import TRUSTED_MODULES, build_net, net_spec
from tests.conftest import assert_same_state, load_state_dict
from tests.test_modules import quick_trainer


def test_parameter_model_starts_as_in_the_notes() -> None:
    torch.manual_seed(42)
    model_0 = LinearRegressionModel()
    assert [name for name, _ in model_0.named_parameters()] == ["weights", "bias"]
    assert torch.allclose(model_0.weights, torch.tensor([0.3367]), atol=1e-4)
    assert torch.allclose(model_0.bias, torch.tensor([0.1288]), atol=1e-4)


@pytest.mark.parametrize("model", [LinearRegressionModel(), LinearRegressionModelV2()])
def test_linear_models_map_a_column_to_a_column(model: nn.Module) -> None:
    assert model(torch.zeros(7, 1)).shape == (7, 1)


def test_linear_v2_holds_an_nn_linear() -> None:
    model = LinearRegressionModelV2()
    assert isinstance(model.linear_layer, nn.Linear)
    x = torch.rand(5, 1)
    assert torch.equal(model(x), model.linear_layer(x))


@pytest.mark.parametrize(
    "model, hidden",
    [
        (CircleModelV0(), [5]),
        (CircleModelV1(), [10, 10]),
        (CircleModelV2(), [10, 10]),
        (CircleModelV2(hidden_units=32), [32, 32]),
    ],
)
def test_circle_models_output_one_logit_per_sample(model: nn.Module, hidden: list[int]) -> None:
    assert model(torch.rand(9, 2)).shape == (9, 1)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears[:-1]] == hidden


def test_only_v2_bends() -> None:
    """V0 and V1 have no activation: the output is an affine function of the input."""
    torch.manual_seed(0)
    x, y = torch.rand(2, 2)
    for model, is_affine in [
        (CircleModelV0(), True),
        (CircleModelV1(), True),
        (CircleModelV2(), False),
    ]:
        mid = model((x + y).unsqueeze(0) / 2)
        average = (model(x.unsqueeze(0)) + model(y.unsqueeze(0))) / 2
        assert torch.allclose(mid, average, atol=1e-6) == is_affine


@pytest.mark.parametrize(
    "model",
    [
        LinearRegressionModel(),
        LinearRegressionModelV2(),
        CircleModelV0(hidden_units=7),
        CircleModelV2(hidden_units=16, dropout=0.1),
    ],
)
def test_spec_rebuilds_the_same_architecture(model: nn.Module) -> None:
    spec = net_spec(model)
    rebuilt = build_net(spec)
    assert type(rebuilt) is type(model)
    assert net_spec(rebuilt) == spec
    # So a checkpoint's weights load into it: the same keys, each of the same shape.
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_spec_from_a_checkpoint_builds_only_trusted_modules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="is not a net this project builds"):
        build_net({"class_path": "os.system", "init_args": {"command": "true"}})
    with pytest.raises(ValueError, match="is not a net this project builds"):
        build_net({"class_path": "this.s"})  # importing `this` would print the Zen of Python
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match=r"'lightning_modules\.models\.nn' is not a Module class"):
        build_net({"class_path": "lightning_modules.models.nn"})


def test_a_net_that_keeps_no_plain_argument_cannot_be_recorded() -> None:
    """``nn.Linear`` keeps its ``bias`` argument as a Parameter, which no checkpoint can hold."""
    with pytest.raises(TypeError, match="keeps its argument 'bias' as a Parameter"):
        net_spec(nn.Linear(1, 1))


def trusted_nets() -> list[type[nn.Module]]:
    """Every nn.Module class a checkpoint may name."""
    nets = []
    for module_name in TRUSTED_MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(module_name), inspect.isclass):
            if issubclass(cls, nn.Module) and cls.__module__ == module_name:
                nets.append(cls)
    return nets


@pytest.mark.parametrize("net_class", trusted_nets(), ids=lambda cls: cls.__name__)
def test_every_trusted_net_fits_checkpoints_reloads_and_resumes(
    net_class: type[nn.Module], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    net = net_class()
    one_feature = getattr(net, "in_features", 1) == 1
    module_class = RegressionModule if one_feature else ClassificationModule
    datamodule = LinearDataModule if one_feature else CirclesDataModule

    first = quick_trainer(tmp_path, epochs=2)
    first.fit(module_class(net=net), datamodule(val_size=0.1))
    path = tmp_path / "net.ckpt"
    first.save_checkpoint(path)

    loaded = module_class.load_from_checkpoint(path)
    assert type(loaded.net) is net_class
    assert_same_state(loaded.state_dict(), load_state_dict(path))

    resumed = module_class(net=net_class())
    quick_trainer(tmp_path, epochs=3).fit(resumed, datamodule(val_size=0.1), ckpt_path=path)
    assert resumed.trainer.current_epoch == 3
