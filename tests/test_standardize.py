"""``--data.standardize``: features scaled by the training split's statistics, saved with the run.

The circles moved to a mean of 5,000 and stretched by 1,000 are what a user's
own CSV looks like: areas in the thousands. Fed raw, the net cannot learn them
in the recipe's epochs; standardized, they train as the original circles do.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules import ClassificationModule
from tests.conftest import ROOT, RunCLI, fit_once, load_script, train_in_process
from tests.test_configs import metric_from_test
from training.outputs import plots

pytestmark = pytest.mark.plots

MOVE, STRETCH = 5000.0, 1000.0
CSV_CONFIG = "circles_csv.yaml"
RAW_POINTS = [[0.1, 0.2], [0.9, 0.1], [-0.5, 0.5]]


def moved(points: list[list[float]]) -> list[list[float]]:
    return [[MOVE + STRETCH * v for v in point] for point in points]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The original circles CSV, and the moved one fitted raw and standardized."""
    root = tmp_path_factory.mktemp("standardize")
    with open(ROOT / "data" / "circles.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "moved.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["x1", "x2", "label"])
        writer.writeheader()
        for row in rows:
            x1, x2 = moved([[float(row["x1"]), float(row["x2"])]])[0]
            writer.writerow({"x1": repr(x1), "x2": repr(x2), "label": row["label"]})
    data = ["--data.path", str(root / "moved.csv")]
    fit_once(root, CSV_CONFIG, "--data.path", str(ROOT / "data" / "circles.csv"))
    fit_once(root, CSV_CONFIG, *data, "--name", "raw")
    fit_once(root, CSV_CONFIG, *data, "--name", "scaled", "--data.standardize", "true")
    for options in (
        ["--data.path", str(ROOT / "data" / "circles.csv")],
        [*data, "--name", "raw"],
        [*data, "--name", "scaled", "--data.standardize", "true"],
    ):
        assert train_in_process(root, "test", CSV_CONFIG, *options, "--ckpt_path", "best") == 0
    return root


def scaled_options(root: Path) -> list[str]:
    return [
        "--trainer.default_root_dir",
        str(root),
        "--data.path",
        str(root / "moved.csv"),
        "--name",
        "scaled",
        "--data.standardize",
        "true",
    ]


def test_standardized_far_off_data_train_as_the_original_circles(runs: Path) -> None:
    original = metric_from_test(runs, "circles_csv")
    assert original >= 0.99
    assert metric_from_test(runs, "scaled") == original
    assert metric_from_test(runs, "raw") < 0.9  # fed raw, the same recipe does not get there


def test_the_scaling_is_the_training_split_s_and_travels_in_the_checkpoint(runs: Path) -> None:
    checkpoint = torch.load(runs / "checkpoints/scaled/best.ckpt", weights_only=True)
    mean, std = checkpoint["state_dict"]["input_mean"], checkpoint["state_dict"]["input_std"]
    from datamodules import CSVDataModule

    datamodule = CSVDataModule(str(runs / "moved.csv"), ["x1", "x2"], "label", standardize=True)
    datamodule.setup("fit")
    train = datamodule.train_set.features.double()
    torch.testing.assert_close(mean, train.mean(0).float())
    torch.testing.assert_close(std, train.std(0, correction=0).float())
    everything = torch.cat([train, datamodule.test_set.features.double()])
    assert not torch.allclose(mean, everything.mean(0).float())  # training rows only
    raw = torch.load(runs / "checkpoints/raw/best.ckpt", weights_only=True)
    assert "input_mean" not in raw["state_dict"]  # off: checkpoints as they always were


def test_predict_and_onnx_take_raw_inputs_and_agree_with_the_module(
    runs: Path, run_cli: RunCLI, tmp_path: Path
) -> None:
    import onnxruntime

    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n" + "".join(f"{a},{b}\n" for a, b in moved(RAW_POINTS)))
    code, err = run_cli(
        "predict", CSV_CONFIG, *scaled_options(runs), "--ckpt_path", "best", "--inputs", str(points)
    )
    assert code == 0, err
    module = ClassificationModule.load_from_checkpoint(runs / "checkpoints/scaled/best.ckpt")
    module.eval()
    raw = torch.tensor(moved(RAW_POINTS))
    with torch.inference_mode():
        logits = module(raw)[:, 0]
    with open(runs / "logs/scaled/predictions_points.csv", newline="") as f:
        written = list(csv.DictReader(f))
    got = torch.tensor([float(r["probability"]) for r in written])
    torch.testing.assert_close(got, torch.sigmoid(logits), atol=1e-5, rtol=0)
    assert [r["prediction"] for r in written] == ["1.0", "0.0", "1.0"]  # inner, outer, inner

    assert load_script("export").main(["--name", "scaled", "--root", str(runs)]) == 0
    session = onnxruntime.InferenceSession(str(runs / "checkpoints/scaled/best.onnx"))
    (onnx_logits,) = session.run(None, {"features": raw.numpy()})
    np.testing.assert_allclose(onnx_logits[:, 0], logits.numpy(), atol=1e-5)
    assert (runs / "checkpoints/scaled/best.standardize.json").is_file()


def test_a_resume_with_another_standardize_is_refused(runs: Path, run_cli: RunCLI) -> None:
    options = [*scaled_options(runs)[:-1], "false", "--ckpt_path", "last"]
    code, err = run_cli("fit", CSV_CONFIG, *options, "--trainer.max_epochs", "400")
    assert code == 2
    assert "was trained with --data.standardize true (now false)" in err


def test_the_plots_show_the_data_in_its_own_units(
    runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits: dict[str, tuple[float, float]] = {}

    def save(figure, path):  # type: ignore[no-untyped-def]
        limits[path.name] = figure.axes[0].get_xlim()
        return path

    monkeypatch.setattr(plots, "save_png", save)
    assert load_script("plot").main([str(runs / "logs" / "scaled")]) == 0
    for name in ("data.png", "decision_boundary.png"):
        low, high = limits[name]
        assert low < MOVE - 0.9 * STRETCH and high > MOVE + 0.9 * STRETCH, (name, low, high)
