"""The notes' plots of a fit, written as PNGs beside its ``metrics.csv``.

The notes look at every stage of the workflow: the data before training
(§2.1.2, §3.1), the predictions against the data after it (§2.6.4) and the
loss curves (§2.6.6); for the circles, the course draws the decision boundary.
For a classifier, the confusion matrix of the test split shows which
classes it mistakes for which, and the decision boundary rings the test points
it gets wrong. ``write_fit_plots`` draws all of them for a finished fit; ``redraw_fit_plots``
draws them again later from what the fit left behind (``config.yaml`` and a
checkpoint), for ``scripts/plot.py``.

Figures are built with ``matplotlib.figure.Figure`` and saved with the Agg
canvas, never through ``pyplot``: no window, no global figure state, nothing
to close, and a plot can be drawn on a machine without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from datamodules.split import Pair, SplitDataModule
from lightning_modules.base import WorkflowModule
from lightning_modules.classification import ClassificationModule
from lightning_modules.net_spec import NotASubclass, import_class
from training.errors import UserError
from training.outputs.predictions import predict
from training.outputs.trained_module import trained_module
from training.run.atomic_files import atomic_file
from training.run.folders import checkpoint_dir, read_checkpoint, trusted_net_module
from training.run.metrics_csv import METRICS_FILE, read_metrics
from training.run.read_config_yaml import CONFIG_FILE, read_config_yaml
from training.run.run_checkpoint import BEST, LAST

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

DATA_PNG = "data.png"
LOSS_CURVES_PNG = "loss_curves.png"
PREDICTIONS_PNG = "predictions.png"
DECISION_BOUNDARY_PNG = "decision_boundary.png"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"

FIGSIZE = (10, 7)
MAX_POINTS = 10_000
DPI = 100
CMAP = "RdYlBu"  # the notes' plt.cm.RdYlBu: class 0 red, the last class blue


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI)


def save_png(figure: Figure, path: Path, **options: Any) -> Path:
    """Writes the PNG whole or not at all: a killed redraw leaves the previous file.

    ``options`` go to ``Figure.savefig`` (``dpi``, ``bbox_inches``).
    """
    with atomic_file(path, "wb") as f:
        figure.savefig(f, format="png", **options)
    return path


def _splits(datamodule: SplitDataModule) -> tuple[Pair, Pair | None, Pair]:
    """``(X, y)`` of the train, validation (``None`` when it is the test split) and test splits."""
    datamodule.setup("fit")  # makes the splits once; a no-op when they exist
    train, val, test = datamodule.train_set, datamodule.val_set, datamodule.test_set
    return (
        (train.features, train.targets),
        None if datamodule.validates_on_test else (val.features, val.targets),
        (test.features, test.targets),
    )


def _sample(num_points: int) -> Tensor | slice:
    """Which of a split's points to draw: all, or ``MAX_POINTS`` of them, the same every time.

    A million points draw as a solid blob, take half a minute and hundreds of
    MiB; a fixed sample shows the same picture. Titles and scores use them all.
    """
    if num_points <= MAX_POINTS:
        return slice(None)
    return torch.randperm(num_points, generator=torch.Generator().manual_seed(0))[:MAX_POINTS]


def _class_colours(num_classes: int) -> Normalize:
    from matplotlib.colors import Normalize

    return Normalize(vmin=0, vmax=num_classes - 1)


def _scatter_classes(
    ax: Axes, features: Tensor, labels: Tensor, num_classes: int, marker: str, split: str
) -> None:
    """One scatter per class, so that each class has its own legend entry."""
    keep = _sample(len(features))
    features, labels = features[keep], labels[keep]
    norm = _class_colours(num_classes)
    for k in range(num_classes):
        chosen = labels == k
        if chosen.any():
            ax.scatter(
                features[chosen, 0],
                features[chosen, 1],
                c=[k] * int(chosen.sum()),
                cmap=CMAP,
                norm=norm,
                marker=marker,
                s=40 if marker == "x" else 20,
                edgecolors=None if marker == "x" else "k",
                linewidths=1.5 if marker == "x" else 0.5,
                label=f"{split}, class {k}",
            )


def _notes_legend(ax: Axes) -> None:
    """The notes' ``legend(prop={"size": 14})``, with markers large enough to see."""
    from matplotlib.collections import PathCollection

    legend = ax.legend(prop={"size": 14})
    for handle in legend.legend_handles:
        if isinstance(handle, PathCollection):
            handle.set_sizes([40])


def _num_classes(*labels: Tensor) -> int:
    return max(2, int(max(int(y.max()) for y in labels)) + 1)


def plot_data(datamodule: SplitDataModule, path: Path) -> Path:
    """Notes §2.1.2 and §3.1: the training, validation and test data before any model.

    One feature (the straight line): ``y`` against ``X``, train in blue, test
    in green and validation, where it is a split of its own, in orange. Two
    features (the circles): the points in the plane coloured by label, train
    as circles, validation as squares and test as crosses.
    """
    (X_train, y_train), val, (X_test, y_test) = _splits(datamodule)
    figure = new_figure()
    ax = figure.subplots()
    features = X_train.shape[1] if X_train.ndim == 2 else 1
    if features == 1:
        train, test = _sample(len(X_train)), _sample(len(X_test))
        ax.scatter(X_train[train], y_train[train], c="b", s=4, label="Training data")
        if val is not None:
            keep = _sample(len(val[0]))
            ax.scatter(val[0][keep], val[1][keep], c="orange", s=4, label="Validation data")
        ax.scatter(X_test[test], y_test[test], c="g", s=4, label="Testing data")
        ax.set_xlabel("X")
        ax.set_ylabel("y")
        _notes_legend(ax)
    elif features == 2:
        labels = [y_train, y_test] if val is None else [y_train, val[1], y_test]
        num_classes = _num_classes(*labels)
        _scatter_classes(ax, X_train, y_train, num_classes, "o", "train")
        if val is not None:
            _scatter_classes(ax, val[0], val[1], num_classes, "s", "validation")
        _scatter_classes(ax, X_test, y_test, num_classes, "x", "test")
        ax.set_xlabel("X0")
        ax.set_ylabel("X1")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend()
    else:
        raise ValueError(f"plot_data draws data with 1 or 2 features, not {features}")
    counts = f"{len(X_train)} train, {len(X_test)} test"
    if val is not None:
        counts = f"{len(X_train)} train, {len(val[0])} validation, {len(X_test)} test"
    ax.set_title(f"Training and test data ({counts})")
    return save_png(figure, path)


def plot_loss_curves(metrics_csv: Path, path: Path) -> Path:
    """Notes §2.6.6: the train and validation loss of every epoch, from ``metrics.csv``."""
    rows = read_metrics(metrics_csv)
    figure = new_figure()
    ax = figure.subplots()
    drawn = False
    for key, label in (("train/loss", "Train loss"), ("val/loss", "Validation loss")):
        epochs = [int(float(r["epoch"])) for r in rows if r.get(key)]
        if epochs:
            ax.plot(epochs, [float(r[key]) for r in rows if r.get(key)], label=label)
            drawn = True
    if not drawn:
        raise ValueError(f"{metrics_csv} holds no train/loss or val/loss rows")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Training and validation loss curves")
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Loss")
    ax.legend()
    return save_png(figure, path)


def plot_predictions(
    datamodule: SplitDataModule, module: WorkflowModule, path: Path, weights: str = ""
) -> Path:
    """Notes §2.6.4: the model's predictions on the test data beside the true line.

    ``weights`` says in the title which checkpoint made them.
    """
    (X_train, y_train), _, (X_test, y_test) = _splits(datamodule)
    (predictions,) = predict(module, X_test)
    mae = float((predictions - y_test).abs().mean())
    train, test = _sample(len(X_train)), _sample(len(X_test))
    figure = new_figure()
    ax = figure.subplots()
    ax.scatter(X_train[train], y_train[train], c="b", s=4, label="Training data")
    ax.scatter(X_test[test], y_test[test], c="g", s=4, label="Testing data")
    # Hollow rings, so that the test points stay visible where the predictions meet them.
    ax.scatter(
        X_test[test],
        predictions[test],
        s=60,
        facecolors="none",
        edgecolors="r",
        label="Predictions",
    )
    ax.set_title(f"Predictions on the test data (mean absolute error {mae:.3g}){_from(weights)}")
    ax.set_xlabel("X")
    ax.set_ylabel("y")
    _notes_legend(ax)
    return save_png(figure, path)


def plot_decision_boundary(
    datamodule: SplitDataModule, module: ClassificationModule, path: Path, weights: str = ""
) -> Path:
    """The class the model predicts at every point of the plane, train and test side by side.

    The course's ``plot_decision_boundary``: predictions over a grid that spans
    the data, filled with the colour of the predicted class, the data on top.
    The test points the model gets wrong are ringed in black. ``weights`` says
    in the title which checkpoint made them.
    """
    import numpy as np

    (X_train, y_train), _, (X_test, y_test) = _splits(datamodule)
    low = torch.minimum(X_train.min(dim=0).values, X_test.min(dim=0).values)
    high = torch.maximum(X_train.max(dim=0).values, X_test.max(dim=0).values)
    margin = 0.1 * (high - low)
    low, high = low - margin, high + margin
    xx, yy = torch.meshgrid(
        torch.linspace(float(low[0]), float(high[0]), 201),
        torch.linspace(float(low[1]), float(high[1]), 201),
        indexing="xy",
    )
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    surface, on_train, on_test = predict(module, grid, X_train, X_test)
    surface = surface.reshape(xx.shape)
    num_classes = module.num_classes
    levels = np.arange(num_classes + 1) - 0.5

    figure = new_figure((14, 7))
    for ax, split, X, y, predicted in zip(
        figure.subplots(1, 2, sharex=True, sharey=True),
        ("Train", "Test"),
        (X_train, X_test),
        (y_train, y_test),
        (on_train, on_test),
        strict=True,
    ):
        ax.contourf(
            xx, yy, surface, levels=levels, cmap=CMAP, norm=_class_colours(num_classes), alpha=0.7
        )
        _scatter_classes(ax, X, y, num_classes, "o", split.lower())
        if split == "Test":
            _ring_wrong(ax, X, predicted != y)
        accuracy = float((predicted == y).float().mean())
        ax.set_title(f"{split} ({len(X)} points, accuracy {accuracy:.1%})")
        ax.set_xlabel("X0")
        ax.set_ylabel("X1")
        ax.set_aspect("equal", adjustable="box")
        ax.legend(loc="upper right")
    figure.suptitle(
        f"Decision boundary: the class predicted at every point{_from(weights)}", fontsize=14
    )
    return save_png(figure, path)


def _ring_wrong(ax: Axes, features: Tensor, wrong: Tensor) -> None:
    """Rings the points the model gets wrong, in black over any class colour."""
    count = int(wrong.sum())
    if count == 0:
        return
    points = features[wrong]
    points = points[_sample(len(points))]
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=160,
        facecolors="none",
        edgecolors="k",
        linewidths=2,
        label=f"test, wrong ({count})",
    )


def plot_confusion_matrix(
    datamodule: SplitDataModule, module: ClassificationModule, path: Path, weights: str = ""
) -> Path:
    """How many test points of each true class the model puts in each class.

    The diagonal holds the points it gets right; every other cell, one kind of
    mistake. ``weights`` says in the title which checkpoint made the predictions.
    """
    from torchmetrics.functional import confusion_matrix

    _, _, (X_test, y_test) = _splits(datamodule)
    (predicted,) = predict(module, X_test)
    num_classes = module.num_classes
    counts = confusion_matrix(
        predicted.long(), y_test.long(), task="multiclass", num_classes=num_classes
    )
    accuracy = float(counts.diagonal().sum() / counts.sum())

    figure = new_figure((8, 7))
    ax = figure.subplots()
    darkest = int(counts.max())
    image = ax.imshow(counts.numpy(), cmap="Blues", vmin=0, vmax=max(darkest, 1))
    figure.colorbar(image, ax=ax, label="test points")
    for true in range(num_classes):
        for guess in range(num_classes):
            count = int(counts[true, guess])
            ax.text(
                guess,
                true,
                str(count),
                ha="center",
                va="center",
                fontsize=16,
                color="white" if count > darkest / 2 else "black",
            )
    classes = [f"class {k}" for k in range(num_classes)]
    ax.set_xticks(range(num_classes), classes)
    ax.set_yticks(range(num_classes), classes)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(
        f"Confusion matrix of the test split\n{len(y_test)} points, accuracy {accuracy:.1%}"
        f"{_from(weights)}"
    )
    return save_png(figure, path)


def _from(weights: str) -> str:
    return f" ({weights})" if weights else ""


def write_fit_plots(
    log_dir: Path, datamodule: SplitDataModule, module: WorkflowModule, weights: str = ""
) -> list[Path]:
    """Writes the plots of a fit into ``log_dir`` and returns their paths.

    ``data.png`` and ``loss_curves.png`` always; then ``predictions.png`` for a
    regression, or ``decision_boundary.png`` and ``confusion_matrix.png`` for a
    classification, whose titles name the ``weights`` they show.
    """
    log_dir = Path(log_dir)
    paths = [
        plot_data(datamodule, log_dir / DATA_PNG),
        plot_loss_curves(log_dir / METRICS_FILE, log_dir / LOSS_CURVES_PNG),
    ]
    if isinstance(module, ClassificationModule):
        paths.append(
            plot_decision_boundary(datamodule, module, log_dir / DECISION_BOUNDARY_PNG, weights)
        )
        paths.append(
            plot_confusion_matrix(datamodule, module, log_dir / CONFUSION_MATRIX_PNG, weights)
        )
    else:
        paths.append(plot_predictions(datamodule, module, log_dir / PREDICTIONS_PNG, weights))
    return paths


def plot_run(
    log_dir: Path,
    checkpoint: Path,
    datamodule: SplitDataModule,
    model_class: type[WorkflowModule],
    trust: list[str],
) -> list[Path]:
    """The plots of a run, its model loaded from ``checkpoint``: the fit's and plot.py's alike.

    Both draw the same weights (``best.ckpt`` where there is one, see
    ``find_checkpoint``), and the titles say which, so the two pictures of
    one run never show two models.
    """
    recorded = read_checkpoint(checkpoint, trust)  # says in one line what is wrong with a bad file
    module = trained_module(model_class, recorded, trust)
    weights = f"{checkpoint.name}, epoch {recorded.get('epoch', 0)}"
    return write_fit_plots(log_dir, datamodule, module, weights)


def _import_class(class_path: object, base: type, what: str) -> Any:
    """The class ``config.yaml`` names for ``what`` (data or model), a subclass of ``base``."""
    try:
        return import_class(class_path, base)
    except (ImportError, NotASubclass) as error:
        raise UserError(
            f"config.yaml names {what} {class_path!r}, which is not a {base.__name__};"
            " pass the log dir of a fit of this project"
        ) from error


def find_checkpoint(log_dir: Path, config: dict[str, Any]) -> Path:
    """``checkpoints/<name>/best.ckpt``, else ``last.ckpt``, beside ``logs/<name>``.

    ``<name>`` is the log dir's path below ``logs/`` (``sweep/trial-3`` for a
    sweep's trial), so an earlier run moved aside to ``logs/<name>.1`` finds
    ``checkpoints/<name>.1``. The root is the folder that holds that ``logs/``;
    if the logs were moved away from the checkpoints, the
    ``trainer.default_root_dir`` the fit ran with.
    """
    log_dir = Path(log_dir)
    runs = [
        (logs.parent, log_dir.relative_to(logs).as_posix())
        for logs in log_dir.parents
        if logs.name == "logs"
    ] or [(log_dir.parent.parent, log_dir.name)]
    configured = (config.get("trainer") or {}).get("default_root_dir")
    if configured:
        runs.append((Path(configured), runs[0][1]))
    for root, name in runs:
        for file in (BEST, LAST):
            path = checkpoint_dir(root, name) / file
            if path.is_file():
                return path
    looked = " or ".join(dict.fromkeys(str(checkpoint_dir(root, name)) for root, name in runs))
    raise UserError(
        f"no {BEST} or {LAST} in {looked}; fit the run first (or resume it with --ckpt_path last)"
    )


def redraw_fit_plots(log_dir: Path) -> list[Path]:
    """Draws a finished fit's plots again from its ``config.yaml`` and checkpoint.

    The datamodule is rebuilt from the config, so the data are the ones the
    fit saw; the module comes from the checkpoint, loaded the safe way, its
    net built only from the project's models or the module the run's own
    config names.
    """
    log_dir = Path(log_dir)
    config = read_config_yaml(log_dir)
    if not (log_dir / METRICS_FILE).is_file():
        raise UserError(f"{log_dir} has no {METRICS_FILE}; fit the run first")
    data_class: type[SplitDataModule] = _import_class(
        config["data"].get("class_path"), SplitDataModule, "data"
    )
    model_class: type[WorkflowModule] = _import_class(
        config["model"].get("class_path"), WorkflowModule, "model"
    )
    try:
        datamodule = data_class(**(config["data"].get("init_args") or {}))
    except (TypeError, ValueError) as error:
        raise UserError(
            f"cannot rebuild the data from {log_dir / CONFIG_FILE}: {error};"
            " fit the run again to rewrite it"
        ) from error
    checkpoint = find_checkpoint(log_dir, config)
    return plot_run(log_dir, checkpoint, datamodule, model_class, trusted_net_module(config))
