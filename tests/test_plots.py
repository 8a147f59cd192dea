"""The plots, predictions and summary line a fit leaves behind (notes §2.1.2, §2.6.4, §2.6.6).

Each config is fitted once, for a few epochs, into a temporary root; the tests
then draw from what that fit wrote, as a user would after ``fit``.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from datamodules import CirclesDataModule, LinearDataModule
from datamodules.split import SplitDataModule, Splits
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.base import WorkflowModule
from lightning_modules.models import CircleModelV2
from tests.conftest import RunCLI, assert_same_state, fit_once, load_script, load_state_dict
from tests.test_configs import metric_from_test
from training.outputs import plots
from training.outputs.plots import plot_decision_boundary, write_fit_plots
from training.outputs.predictions import (
    PREDICT_CHUNK,
    bare_trainer,
    fit_summary,
    predict,
    write_predictions,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

pytestmark = pytest.mark.plots


def fit(root: Path, config: str, epochs: int) -> Path:
    """Fits ``configs/<config>.yaml`` under ``root`` and returns its log dir."""
    fit_once(root, f"{config}.yaml", "--trainer.max_epochs", str(epochs))
    return root / "logs" / config


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit(tmp_path_factory.mktemp("linear"), "linear", epochs=5)


@pytest.fixture(scope="module")
def circles_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit(tmp_path_factory.mktemp("circles"), "circles", epochs=10)


def last_checkpoint(log_dir: Path) -> Path:
    return log_dir.parents[1] / "checkpoints" / log_dir.name / "last.ckpt"


def copy_of_run(run: Path, root: Path) -> Path:
    """``run``'s log dir and checkpoints copied under ``root``; returns the copy's log dir."""
    log_dir = root / "logs" / run.name
    shutil.copytree(run, log_dir)
    shutil.copytree(last_checkpoint(run).parent, root / "checkpoints" / run.name)
    return log_dir


def plot_script() -> ModuleType:
    return load_script("plot")


def assert_readable_pngs(paths: list[Path], names: list[str]) -> None:
    assert [p.name for p in paths] == names
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            width, height = image.size
        assert width >= 600 and height >= 400, f"{path.name} is only {width}x{height}"


def test_linear_fit_plots(linear_run: Path) -> None:
    datamodule = LinearDataModule(weight=0.7, bias=0.3)
    module = RegressionModule.load_from_checkpoint(
        last_checkpoint(linear_run), map_location="cpu", weights_only=True
    )
    paths = write_fit_plots(linear_run, datamodule, module)
    assert_readable_pngs(paths, ["data.png", "loss_curves.png", "predictions.png"])
    assert all(p.parent == linear_run for p in paths)


def test_circles_fit_plots(circles_run: Path) -> None:
    datamodule = CirclesDataModule(n_samples=1000, noise=0.03, random_state=42)
    module = ClassificationModule.load_from_checkpoint(
        last_checkpoint(circles_run), map_location="cpu", weights_only=True
    )
    paths = write_fit_plots(circles_run, datamodule, module)
    names = ["data.png", "loss_curves.png", "decision_boundary.png", "confusion_matrix.png"]
    assert_readable_pngs(paths, names)


def drawn_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """The figures the plots would save, by file name, instead of saving them."""
    figures: dict[str, Figure] = {}

    def keep(figure: Figure, path: Path) -> Path:
        figures[path.name] = figure
        return path

    monkeypatch.setattr(plots, "save_png", keep)
    return figures


def test_the_mistakes_on_the_test_split_are_ringed_and_counted(
    circles_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model still learning: the rings are its wrong test points, the matrix its counts."""
    datamodule = CirclesDataModule(n_samples=1000, noise=0.03, random_state=42)
    module = ClassificationModule.load_from_checkpoint(
        last_checkpoint(circles_run), map_location="cpu", weights_only=True
    )
    figures = drawn_figures(monkeypatch)
    write_fit_plots(circles_run, datamodule, module)

    test = datamodule.test_set
    (predicted,) = predict(module, test.features)
    wrong = predicted != test.targets
    assert 0 < int(wrong.sum()) < len(wrong) / 2, "a model with some mistakes to show"
    _, test_panel = figures["decision_boundary.png"].axes
    (rings,) = [c for c in test_panel.collections if str(c.get_label()).startswith("test, wrong")]
    assert rings.get_label() == f"test, wrong ({int(wrong.sum())})"
    ringed = {tuple(point) for point in np.asarray(rings.get_offsets()).tolist()}
    assert ringed == {tuple(point) for point in test.features[wrong].tolist()}

    matrix = figures["confusion_matrix.png"].axes[0]
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in matrix.texts
    }
    for true in (0, 1):
        for guess in (0, 1):
            count = int(((test.targets == true) & (predicted == guess)).sum())
            assert cells[(true, guess)] == str(count)
    accuracy = float((~wrong).float().mean())
    assert f"200 points, accuracy {accuracy:.1%}" in matrix.get_title()
    assert test_panel.get_title() == f"Test (200 points, accuracy {accuracy:.1%})"


def test_a_matrix_of_four_classes_counts_each_test_point_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An untrained net on four classes: its mistakes are the off-diagonal and the rings."""
    torch.manual_seed(0)
    module = ClassificationModule(CircleModelV2(out_features=4), num_classes=4)
    figures = drawn_figures(monkeypatch)
    plot_decision_boundary(Blobs(), module, tmp_path / "decision_boundary.png")
    plots.plot_confusion_matrix(Blobs(), module, tmp_path / "confusion_matrix.png")
    (matrix,) = [ax for ax in figures["confusion_matrix.png"].axes if ax.texts]
    assert len(matrix.texts) == 16
    total = sum(int(t.get_text()) for t in matrix.texts)
    assert total == 50
    _, test_panel = figures["decision_boundary.png"].axes
    labels = [str(c.get_label()) for c in test_panel.collections]
    wrong = [label for label in labels if label.startswith("test, wrong")]
    diagonal = sum(
        int(t.get_text()) for t in matrix.texts if t.get_position()[0] == t.get_position()[1]
    )
    assert wrong == ([] if diagonal == 50 else [f"test, wrong ({50 - diagonal})"])


class Blobs(SplitDataModule):
    """Four classes in the plane: what a multi-class decision boundary is drawn over."""

    def make_splits(self) -> Splits:
        from sklearn.datasets import make_blobs

        X, y = make_blobs(200, centers=4, random_state=1)
        features, labels = torch.tensor(X, dtype=torch.float), torch.tensor(y)
        return Splits((features[:150], labels[:150]), None, (features[150:], labels[150:]))


def test_decision_boundary_of_several_classes(tmp_path: Path) -> None:
    module = ClassificationModule(CircleModelV2(out_features=4), num_classes=4)
    path = plot_decision_boundary(Blobs(), module, tmp_path / "decision_boundary.png")
    assert_readable_pngs([path], ["decision_boundary.png"])


def predict_test_split(module: WorkflowModule, datamodule: SplitDataModule) -> list:
    """``predict_step``'s batches of the datamodule's predict split, as the CLI gets them."""
    batches: list = bare_trainer().predict(module, datamodule=datamodule)  # type: ignore[assignment]
    return batches


def test_predict_gives_the_eval_mode_predictions_of_every_row_in_order() -> None:
    """More rows than one batch holds, through a net with dropout, in train mode."""
    torch.manual_seed(0)
    module = ClassificationModule(CircleModelV2(dropout=0.5))
    grid, points = torch.randn(PREDICT_CHUNK + 5, 2), torch.randn(7, 2)

    on_grid, on_points = predict(module, grid, points)

    assert module.training, "predict gives the module back in the mode it had"
    module.eval()  # the reference: the notes' predictions, made by hand (§2.4)
    with torch.inference_mode():
        assert torch.equal(on_grid, module.prediction(module(grid)))
        assert torch.equal(on_points, module.prediction(module(points)))


@pytest.mark.parametrize("batch_size", [None, 3])
def test_write_predictions_gives_one_row_per_sample(
    circles_run: Path, tmp_path: Path, batch_size: int | None
) -> None:
    datamodule = CirclesDataModule(n_samples=100, batch_size=batch_size)
    module = ClassificationModule.load_from_checkpoint(
        last_checkpoint(circles_run), map_location="cpu", weights_only=True
    )
    batches = predict_test_split(module, datamodule)

    path = write_predictions(batches, tmp_path / "predictions.csv")

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["x0", "x1", "prediction", "probability", "target"]
    assert len(rows) == len(datamodule.test_set) == 20
    assert [float(r["target"]) for r in rows] == datamodule.test_set.targets.tolist()
    assert {float(r["prediction"]) for r in rows} <= {0.0, 1.0}
    assert all((float(r["probability"]) > 0.5) == (float(r["prediction"]) == 1.0) for r in rows)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"], "temp file left behind"


def test_write_predictions_of_a_regression(linear_run: Path, tmp_path: Path) -> None:
    datamodule = LinearDataModule()
    module = RegressionModule.load_from_checkpoint(
        last_checkpoint(linear_run), map_location="cpu", weights_only=True
    )
    path = write_predictions(predict_test_split(module, datamodule), tmp_path / "p.csv")

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["x0", "prediction", "target"]
    assert len(rows) == 10
    assert rows[0]["x0"] == "0.8"


def test_fit_summary_is_one_line_train_then_val() -> None:
    metrics = {
        "val/mse": 0.000331,
        "val/loss": 0.000331,
        "train/mse": 1.234567e-6,
        "train/loss": 0.0013123,
    }
    line = fit_summary(200, metrics, "checkpoints/linear/best.ckpt", "logs/linear")
    assert line == (
        "Done: epoch 199 | train/loss 0.001312 train/mse 1.235e-06"
        " | val/loss 0.000331 val/mse 0.000331"
        " | best: checkpoints/linear/best.ckpt | logs: logs/linear"
    )


def test_plot_script_redraws_a_fit(
    linear_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_dir = copy_of_run(linear_run, tmp_path)
    for png in log_dir.glob("*.png"):
        png.unlink()

    assert plot_script().main([str(log_dir)]) == 0

    names = ["data.png", "loss_curves.png", "predictions.png"]
    assert capsys.readouterr().out.split() == [str(log_dir / n) for n in names]
    assert_readable_pngs([log_dir / n for n in names], names)


def assert_fails_cleanly(argv: list[str], capsys: pytest.CaptureFixture[str], says: str) -> None:
    assert plot_script().main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err
    assert "Traceback" not in err


def test_plot_script_refuses_a_missing_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_fails_cleanly([str(tmp_path / "logs" / "nope")], capsys, "is not a directory")


def test_plot_script_refuses_a_dir_without_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_fails_cleanly([str(tmp_path)], capsys, "has no config.yaml")


def test_plot_script_refuses_a_run_without_checkpoint(
    linear_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_dir = tmp_path / "logs" / "linear"
    shutil.copytree(linear_run, log_dir)
    (log_dir / "config.yaml").write_text(
        (log_dir / "config.yaml").read_text().replace(str(linear_run.parents[1]), str(tmp_path))
    )
    assert_fails_cleanly([str(log_dir)], capsys, "fit the run first")


@pytest.mark.parametrize("class_path", ["collections.OrderedDict", "no_such_module.Data", "Data"])
def test_plot_script_refuses_a_config_naming_other_data(
    linear_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], class_path: str
) -> None:
    log_dir = copy_of_run(linear_run, tmp_path)
    config = yaml.safe_load((log_dir / "config.yaml").read_text())
    config["data"]["class_path"] = class_path
    (log_dir / "config.yaml").write_text(yaml.safe_dump(config))
    says = (
        f"config.yaml names data {class_path!r}, which is not a SplitDataModule;"
        " pass the log dir of a fit of this project"
    )
    assert_fails_cleanly([str(log_dir)], capsys, says)


def test_a_damaged_config_yaml_is_one_line_to_plot_and_export(
    linear_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both read it through ``read_config_yaml``: the same line, whatever PyYAML says below it."""
    log_dir = copy_of_run(linear_run, tmp_path)
    (log_dir / "config.yaml").write_text("model: [\n")
    says = (
        f"error: cannot read {log_dir / 'config.yaml'} (expected the node content, but found"
        " '<stream end>' at line 2, column 1); fit the run again to rewrite it\n"
    )
    assert plot_script().main([str(log_dir)]) == 2
    assert capsys.readouterr().err == says
    assert load_script("export").main(["--name", "linear", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == says


def test_the_plots_read_the_checkpoint_once_and_draw_its_weights(
    linear_run: Path, monkeypatch: pytest.MonkeyPatch, torch_loads: list[object]
) -> None:
    """The file that ``read_checkpoint`` checked is the one drawn: no second read to disagree."""
    drawn: list[WorkflowModule] = []
    monkeypatch.setattr(
        plots, "write_fit_plots", lambda _dir, _data, module, _w: drawn.append(module)
    )
    checkpoint = last_checkpoint(linear_run)
    plots.plot_run(linear_run, checkpoint, LinearDataModule(), RegressionModule, [])
    monkeypatch.undo()

    assert torch_loads == [checkpoint]
    (module,) = drawn
    assert_same_state(module.state_dict(), load_state_dict(checkpoint))


def test_a_large_dataset_is_drawn_from_a_fixed_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MAX_POINTS`` of each split, the same ones every time; the title counts them all."""
    drawn: list[tuple[str, dict[str, Any]]] = []

    def save(figure: Figure, path: Path) -> Path:
        (ax,) = figure.axes
        points = {str(c.get_label()): np.asarray(c.get_offsets()) for c in ax.collections}
        drawn.append((ax.get_title(), points))
        return path

    monkeypatch.setattr(plots, "save_png", save)
    datamodule = CirclesDataModule(n_samples=3 * plots.MAX_POINTS)
    for _ in range(2):
        plots.plot_data(datamodule, tmp_path / "data.png")

    (title, points), (title_again, points_again) = drawn
    assert title_again == title and points_again.keys() == points.keys()
    assert all(np.array_equal(points_again[label], points[label]) for label in points)
    assert title == "Training and test data (24000 train, 6000 test)"
    per_split = {"train": 0, "test": 0}
    for label, offsets in points.items():
        per_split[label.partition(",")[0]] += len(offsets)
    assert per_split == {"train": plots.MAX_POINTS, "test": 6000}


def test_plots_and_predictions_score_the_model_as_test_does(
    run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With dropout, only eval mode makes the plotted accuracy the one ``test`` reports."""
    titles: dict[str, list[str]] = {}

    def save(figure: Figure, path: Path) -> Path:
        titles[path.name] = [ax.get_title() for ax in figure.axes]
        return path

    monkeypatch.setattr(plots, "save_png", save)
    dropout = ["--model.net.dropout", "0.2", "--trainer.max_epochs", "20"]
    assert run_cli("fit", "circles.yaml", *dropout)[0] == 0
    assert run_cli("test", "circles.yaml", *dropout, "--ckpt_path", "best")[0] == 0
    assert run_cli("predict", "circles.yaml", *dropout, "--ckpt_path", "best")[0] == 0

    accuracy = metric_from_test(tmp_path, "circles")
    assert 0.6 < accuracy < 1.0, "a model still learning, whose predictions dropout would change"
    assert titles["decision_boundary.png"][1] == f"Test (200 points, accuracy {accuracy:.1%})"
    with open(tmp_path / "logs" / "circles" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(r["prediction"] == r["target"] for r in rows) / len(rows) == pytest.approx(accuracy)


def test_the_fit_and_plot_script_draw_the_same_checkpoint_and_name_it(
    run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best epoch is not the last here: both pictures show the best, and say so."""
    titles: list[list[str]] = []

    def save(figure: Figure, path: Path) -> Path:
        if path.name == "decision_boundary.png":
            titles.append([figure.get_suptitle(), *(ax.get_title() for ax in figure.axes)])
        return path

    monkeypatch.setattr(plots, "save_png", save)
    assert run_cli("fit", "circles.yaml", "--trainer.max_epochs", "30", "--model.lr", "0.5")[0] == 0
    assert plot_script().main([str(tmp_path / "logs" / "circles")]) == 0
    best = torch.load(tmp_path / "checkpoints" / "circles" / "best.ckpt", weights_only=True)
    assert best["epoch"] < 29, "a run whose best epoch is its last would not tell them apart"
    after_fit, redrawn = titles
    assert after_fit == redrawn
    assert after_fit[0].endswith(f"(best.ckpt, epoch {best['epoch']})")


def test_the_plots_of_a_compiled_fit_do_not_compile(
    run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plots build the net from the checkpoint, uncompiled: no second compile, on any device."""
    from lightning_modules import base

    compiled: list[str] = []
    monkeypatch.setattr(
        base, "compile_net", lambda module, net: compiled.append(type(net).__name__)
    )
    assert (
        run_cli("fit", "circles.yaml", "--trainer.max_epochs", "2", "--model.compile", "true")[0]
        == 0
    )
    assert compiled == ["CircleModelV2"]  # the fit's own
    assert plot_script().main([str(tmp_path / "logs" / "circles")]) == 0
    assert compiled == ["CircleModelV2"]
    assert (tmp_path / "logs" / "circles" / "decision_boundary.png").is_file()
