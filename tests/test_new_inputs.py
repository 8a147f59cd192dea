"""``predict --inputs``: the trained model asked about inputs nobody has labelled (notes §2.4).

And what ``predictions.csv`` holds for a classifier: each class's probability.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.base import WorkflowModule
from tests.conftest import RunCLI, fit_once, snapshot

NEW_POINTS = "x0,x1\n0.1,0.2\n0.9,0.1\n-0.5,0.5\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A circles run, a straight line and four blobs, fitted briefly under one root."""
    root = tmp_path_factory.mktemp("trained")
    fit_once(root, "circles.yaml", "--trainer.max_epochs", "20")
    fit_once(root, "linear.yaml", "--trainer.max_epochs", "20")
    fit_once(root, "blobs.yaml", "--trainer.max_epochs", "3")
    return root


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def own_outputs(
    module_class: type[WorkflowModule], root: Path, run: str, x: torch.Tensor
) -> torch.Tensor:
    """The course's way: the module loaded from its checkpoint, run under ``inference_mode``."""
    module = module_class.load_from_checkpoint(root / "checkpoints" / run / "best.ckpt")
    module.eval()
    with torch.inference_mode():
        return module(x)


def test_new_points_are_predicted_as_the_loaded_module_predicts_them(
    trained: Path, run_cli: RunCLI, tmp_path: Path
) -> None:
    (tmp_path / "points.csv").write_text(NEW_POINTS)
    where = ["--trainer.default_root_dir", str(trained), "--ckpt_path", "best"]
    assert run_cli("predict", "circles.yaml", *where)[0] == 0
    test_split = trained / "logs" / "circles" / "predictions.csv"
    before = test_split.read_bytes()
    code, err = run_cli("predict", "circles.yaml", *where, "--inputs", str(tmp_path / "points.csv"))
    assert code == 0, err
    written = rows(trained / "logs" / "circles" / "predictions_points.csv")
    assert list(written[0]) == ["x0", "x1", "prediction", "probability"]
    x = torch.tensor([[0.1, 0.2], [0.9, 0.1], [-0.5, 0.5]])
    probability = torch.sigmoid(own_outputs(ClassificationModule, trained, "circles", x))[:, 0]
    got = torch.tensor([float(r["probability"]) for r in written])
    torch.testing.assert_close(got, probability, atol=1e-6, rtol=0)
    assert [float(r["prediction"]) for r in written] == (probability > 0.5).float().tolist()
    assert test_split.read_bytes() == before  # the test split's predictions, untouched


def test_the_line_takes_new_x_values(trained: Path, run_cli: RunCLI, tmp_path: Path) -> None:
    (tmp_path / "xs.csv").write_text("x0\n1.5\n2.0\n")
    where = ["--trainer.default_root_dir", str(trained), "--ckpt_path", "best"]
    assert run_cli("predict", "linear.yaml", *where, "--inputs", str(tmp_path / "xs.csv"))[0] == 0
    written = rows(trained / "logs" / "linear" / "predictions_xs.csv")
    assert list(written[0]) == ["x0", "prediction"]
    expected = own_outputs(RegressionModule, trained, "linear", torch.tensor([[1.5], [2.0]]))
    got = torch.tensor([[float(r["prediction"])] for r in written])
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_a_classifier_s_predictions_hold_each_class_s_probability(
    trained: Path, run_cli: RunCLI
) -> None:
    where = ["--trainer.default_root_dir", str(trained), "--ckpt_path", "best"]
    for config, columns in (
        ("circles", ["probability"]),
        ("blobs", [f"probability_{k}" for k in range(4)]),
    ):
        assert run_cli("predict", f"{config}.yaml", *where)[0] == 0
        written = rows(trained / "logs" / config / "predictions.csv")
        assert list(written[0]) == ["x0", "x1", "prediction", *columns, "target"]
        if config == "blobs":
            for row in written:
                probabilities = [float(row[c]) for c in columns]
                assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
                assert int(row["prediction"]) == max(range(4), key=probabilities.__getitem__)


BAD_INPUTS = {
    "an extra column": ("x0,x1,x2\n0.1,0.2,0.3\n", "has columns the model was not trained on (x2)"),
    "a missing column": ("x0\n0.1\n", "has no column 'x1'"),
    "a non-number": ("x0,x1\n0.1,abc\n", "line 2, column 'x1': 'abc' is not a number"),
    "an empty cell": (
        "x0,x1\n0.1,0.2\n0.3,\n",
        "line 3, column 'x1': an empty cell is not a number",
    ),
    "inf": ("x0,x1\ninf,0.2\n", "line 2, column 'x0': 'inf' is infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_new_inputs_that_do_not_fit_the_model_get_one_line_and_write_nothing(
    trained: Path, run_cli: RunCLI, tmp_path: Path, case: str
) -> None:
    text, says = BAD_INPUTS[case]
    (tmp_path / "bad.csv").write_text(text)
    before = snapshot(trained)
    where = ["--trainer.default_root_dir", str(trained), "--ckpt_path", "best"]
    code, err = run_cli("predict", "circles.yaml", *where, "--inputs", str(tmp_path / "bad.csv"))
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert says in err and err.rstrip().endswith("the model takes the columns x0, x1")
    assert snapshot(trained) == before


def test_inputs_are_for_predict_only(trained: Path, run_cli: RunCLI, tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_text(NEW_POINTS)
    where = ["--trainer.default_root_dir", str(trained), "--ckpt_path", "best"]
    code, err = run_cli("test", "circles.yaml", *where, "--inputs", str(tmp_path / "points.csv"))
    assert code == 2
    assert err.strip() == "error: --inputs is for predict; test uses the run's own data"
