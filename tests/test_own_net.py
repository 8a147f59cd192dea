"""A net of your own, in a module of your own, trained with no change to the project.

The module lives in a temporary folder outside the project's packages; the
config names it, and ``load_from_checkpoint`` and ``scripts/export.py`` build it
only when trusted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lightning_modules import ClassificationModule
from tests.conftest import RunCLI, load_script, load_state_dict, snapshot

NET = '''
from torch import nn


class WideCircleModel(nn.Module):
    """Keeps its arguments as attributes, so a checkpoint can record them."""

    def __init__(self, hidden_units: int = 8, layers: int = 3) -> None:
        super().__init__()
        self.hidden_units = hidden_units
        self.layers = layers
        sizes = [2] + [hidden_units] * (layers - 1)
        blocks = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        self.body = nn.Sequential(*blocks, nn.Linear(sizes[-1], 1))

    def forward(self, x):
        return self.body(x)
'''


@pytest.fixture
def own_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "wide_nets.py").write_text(NET)
    monkeypatch.syspath_prepend(str(folder))
    yield "wide_nets"
    sys.modules.pop("wide_nets", None)


def test_own_net_trains_resumes_and_loads_only_when_trusted(
    own_module: str, run_cli: RunCLI, tmp_path: Path
) -> None:
    net = ["--model.net", f"{own_module}.WideCircleModel", "--model.net.hidden_units", "12"]
    assert run_cli("fit", "circles.yaml", *net, "--trainer.max_epochs", "2")[0] == 0
    code, err = run_cli(
        "fit", "circles.yaml", *net, "--trainer.max_epochs", "4", "--ckpt_path", "last"
    )
    assert code == 0, err
    last = tmp_path / "checkpoints" / "circles" / "last.ckpt"
    stored = torch.load(last, weights_only=True)
    assert stored["global_step"] == 4  # four full-batch epochs, two of them resumed
    assert stored["hyper_parameters"]["net"] == {
        "class_path": "wide_nets.WideCircleModel",
        "init_args": {"hidden_units": 12, "layers": 3},
    }
    assert "_class_path" not in stored["hyper_parameters"]  # the net is recorded once

    with pytest.raises(ValueError, match=r"pass trust=\['wide_nets'\] to load_from_checkpoint"):
        ClassificationModule.load_from_checkpoint(last)
    module = ClassificationModule.load_from_checkpoint(last, trust=["wide_nets"])
    assert type(module.net).__name__ == "WideCircleModel" and module.net.hidden_units == 12
    state = load_state_dict(last)
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def test_a_resume_with_another_net_of_ones_own_is_refused(own_module: str, run_cli: RunCLI) -> None:
    net = ["--model.net", f"{own_module}.WideCircleModel"]
    assert run_cli("fit", "circles.yaml", *net, "--trainer.max_epochs", "1")[0] == 0
    code, err = run_cli(
        "fit", "circles.yaml", *net, "--model.net.layers", "4", "--ckpt_path", "last"
    )
    assert code == 2
    assert "was trained with --model.net WideCircleModel(hidden_units=10, layers=3)" in err


def test_own_net_exports_by_its_run_name_and_as_a_file_only_when_trusted(
    own_module: str, run_cli: RunCLI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = ["--model.net", f"{own_module}.WideCircleModel", "--model.net.hidden_units", "12"]
    assert run_cli("fit", "circles.yaml", *net, "--trainer.max_epochs", "1")[0] == 0
    export = load_script("export").main
    # By --name: the module the run's own config.yaml names is trusted, as the fit trusted it.
    assert export(["--name", "circles", "--root", str(tmp_path)]) == 0
    folder = tmp_path / "checkpoints" / "circles"
    model = sys.modules[own_module].WideCircleModel(hidden_units=12)
    model.load_state_dict(torch.load(folder / "best.pth"))

    before = snapshot(tmp_path)
    capsys.readouterr()
    assert export(["--ckpt_path", str(folder / "last.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(f"pass --trust {own_module}\n"), err
    assert snapshot(tmp_path) == before
    assert export(["--ckpt_path", str(folder / "last.ckpt"), "--trust", own_module]) == 0
    assert (folder / "last.onnx").is_file()


def test_own_net_plots_again_from_its_log_dir(
    own_module: str, run_cli: RunCLI, tmp_path: Path
) -> None:
    net = ["--model.net", f"{own_module}.WideCircleModel", "--model.net.hidden_units", "12"]
    assert run_cli("fit", "circles.yaml", *net, "--trainer.max_epochs", "1")[0] == 0
    # The module the run's own config.yaml names is trusted, as the fit trusted it.
    assert load_script("plot").main([str(tmp_path / "logs" / "circles")]) == 0
