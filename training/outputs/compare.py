"""Runs side by side: one table, one PNG (``scripts/compare.py logs/circles_v0 logs/circles``).

The table gives each run's epochs, the final and best value of each validation
metric the runs share, and the config values in which they differ, one column
per run. The PNG overlays their loss and metric curves, one colour per run,
labelled by its name. Everything comes from what a fit leaves in its log
folder: ``metrics.csv`` and ``config.yaml``.

A loss is shared only by runs of one module: a regression's L1 loss and a
classifier's cross-entropy carry one name but measure different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import UserError
from training.run.metrics_csv import METRICS_FILE, read_metrics
from training.run.read_config_yaml import read_config_yaml

COMPARE_PNG = "compare.png"
VAL = "val/"
# Lower is better for these; higher for every other metric (accuracy, F1, AUROC).
LOWER_IS_BETTER = ("loss", "mse", "mae")
# What says where or how a run ran, not what it learned: the same run under any of them.
NOT_THE_EXPERIMENT = {
    "name",
    "ckpt_path",
    "weights_only",
    "inputs",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
}


@dataclass
class Run:
    """A fit's log folder, read: its name, its rows of ``metrics.csv`` and its options."""

    name: str
    folder: Path
    rows: list[dict[str, Any]]
    options: dict[str, str]

    @property
    def module(self) -> str:
        return self.options.get("model", "")

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        """The epochs at which ``metric`` was logged, and its values."""
        logged = [r for r in self.rows if r.get(metric) not in ("", None)]
        return [int(float(r["epoch"])) for r in logged], [float(r[metric]) for r in logged]

    @property
    def epochs(self) -> int:
        return 1 + max((int(float(r["epoch"])) for r in self.rows), default=-1)

    def val_metrics(self) -> set[str]:
        return {k for r in self.rows for k, v in r.items() if k.startswith(VAL) and v}


def read_run(folder: Path) -> Run:
    """A run's log folder, or one line saying why ``folder`` is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; pass the log folders of runs, logs/<name>")
    if not (folder / METRICS_FILE).is_file():
        raise UserError(
            f"{folder} is not a run: it has no {METRICS_FILE}; pass the log folder of a fit,"
            " logs/<name>"
        )
    config = read_config_yaml(folder)
    rows = read_metrics(folder / METRICS_FILE)
    if not rows:
        raise UserError(f"{folder / METRICS_FILE} holds no epoch; fit the run first")
    return Run(run_name(folder), folder, rows, options(config))


def run_name(folder: Path) -> str:
    """The run's name: its path below ``logs/`` (``sweep/trial-3``), else its folder's name."""
    resolved = folder.resolve()
    for logs in resolved.parents:
        if logs.name == "logs":
            return resolved.relative_to(logs).as_posix()
    return resolved.name


def options(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The config as the command line's options: ``model.net.hidden_units`` -> ``"10"``.

    A class given as ``class_path`` and ``init_args`` is its class name under
    its own key (``model.net`` -> ``CircleModelV2``), its arguments below it.
    """
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "class_path" in value:
            flat[name] = str(value["class_path"]).rpartition(".")[2]
            flat.update(options(value.get("init_args") or {}, f"{name}."))
        elif isinstance(value, dict):
            flat.update(options(value, f"{name}."))
        else:
            flat[name] = str(value)
    return {k: v for k, v in flat.items() if k not in NOT_THE_EXPERIMENT}


def comparable(run: Run, metric: str) -> str:
    """What a metric measures: a loss is the loss of its module (see the module docstring)."""
    return f"{metric} ({run.module}'s)" if metric.endswith("loss") else metric


def shared_metrics(runs: list[Run]) -> list[str]:
    """The validation metrics every run logs and measures alike, the loss first."""
    measured = [{comparable(run, m): m for m in run.val_metrics()} for run in runs]
    common = set(measured[0]).intersection(*measured[1:])
    if not common:
        logged = "; ".join(
            f"{run.name} logs {', '.join(sorted(kinds)) or 'no validation metric'}"
            for run, kinds in zip(runs, measured, strict=True)
        )
        raise UserError(
            f"the runs share no validation metric to compare ({logged});"
            " compare runs of one kind, all classifiers or all regressions, that validate"
        )
    names = {measured[0][kind] for kind in common}
    return sorted(names, key=lambda m: (not m.endswith("loss"), m))


def best(run: Run, metric: str) -> tuple[float, int]:
    """The best value of ``metric`` over the run, and the first epoch that had it."""
    epochs, values = run.series(metric)
    lower = metric.rpartition("/")[2] in LOWER_IS_BETTER
    value = min(values) if lower else max(values)
    return value, epochs[values.index(value)]


def compare_table(runs: list[Run]) -> str:
    """One column per run: epochs, each shared metric's final and best value, what differs."""
    metrics = shared_metrics(runs)
    rows: list[list[str]] = [["run", *(run.name for run in runs)]]
    rows.append(["epochs", *(str(run.epochs) for run in runs)])
    for metric in metrics:
        finals = [f"{run.series(metric)[1][-1]:.4g}" for run in runs]
        rows.append([f"{metric} final", *finals])
        bests = [f"{value:.4g} (epoch {epoch})" for value, epoch in (best(r, metric) for r in runs)]
        rows.append([f"{metric} best", *bests])
    keys = sorted(set().union(*(run.options for run in runs)))
    for key in keys:
        values = [run.options.get(key, "-") for run in runs]
        if len(set(values)) > 1:
            rows.append([key, *values])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def plot_compare(runs: list[Run], path: Path) -> Path:
    """The runs' loss and validation metric curves overlaid, one colour per run."""
    from matplotlib.ticker import MaxNLocator

    from training.outputs.plots import new_figure, save_png

    metrics = shared_metrics(runs)
    columns = 1 if len(metrics) == 1 else 2
    rows = -(-len(metrics) // columns)
    figure = new_figure((7 * columns, 4.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for ax, metric in zip(axes, metrics, strict=False):
        train = f"train/{metric.removeprefix(VAL)}"
        for run, colour in zip(runs, colours, strict=True):
            ax.plot(*run.series(metric), color=colour, label=run.name)
            if metric.endswith("loss") and run.series(train)[0]:
                ax.plot(*run.series(train), color=colour, linestyle="--", alpha=0.6)
        what = (
            "validation (solid) and training (dashed)" if metric.endswith("loss") else "validation"
        )
        ax.set_title(f"{metric.removeprefix(VAL)}: {what}")
        ax.set_xlabel("Epochs")
        ax.set_ylabel(metric.removeprefix(VAL))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    figure.suptitle(f"{len(runs)} runs side by side: {', '.join(run.name for run in runs)}")
    figure.tight_layout()
    return save_png(figure, path)


def compare_runs(folders: list[Path], out: Path) -> tuple[str, Path]:
    """Reads the runs, checks that they share a metric, then returns the table and the PNG."""
    runs = [read_run(folder) for folder in folders]
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        for run, folder in zip(runs, folders, strict=True):
            run.name = str(folder)
    table = compare_table(runs)
    return table, plot_compare(runs, out)
