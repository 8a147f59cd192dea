"""What a sweep leaves in ``sweeps/<name>/``: the ranked trials, the best config, two plots.

- ``results.csv``: one row per trial, best first (also printed as a table);
- ``best.yaml``: the best trial's full config, for ``train.py fit --config``;
- ``history.png`` and ``importances.png``: Optuna's matplotlib plots of the
  optimisation history and of the parameters' importances.

Each is written whole (``atomic_file``) by one report at a time: machines that
share the folder may end together.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from typing import TYPE_CHECKING, Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from training.outputs.plots import save_png
from training.run.atomic_files import atomic_write_text, remove_stale_tmp_files
from training.run.file_lock import locked
from training.run.folders import log_dir

if TYPE_CHECKING:
    from training.sweeps.plan import Sweep

STATE_ORDER = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING]


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials best first, then pruned ones by their last value, then the rest."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0

    def key(trial: FrozenTrial) -> tuple[int, float, int]:
        order = STATE_ORDER.index(trial.state) if trial.state in STATE_ORDER else len(STATE_ORDER)
        value = trial_value(trial)
        return order, sign * value if value is not None else math.inf, trial.number

    return sorted(study.get_trials(deepcopy=False), key=key)


def trial_value(trial: FrozenTrial) -> float | None:
    if trial.value is not None:
        return trial.value
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def rows(sweep: Sweep, study: optuna.Study) -> list[dict[str, Any]]:
    metric = sweep.spec.metric
    table = []
    for trial in ranked(study):
        state = trial.state.name.lower()
        if "pruned_at_epoch" in trial.user_attrs:
            state += f" at epoch {trial.user_attrs['pruned_at_epoch']}"
        value = trial_value(trial)
        table.append(
            {
                "trial": trial.number,
                **{key: trial.params.get(key, "") for key in sweep.spec.space},
                metric: "" if value is None else value,
                "epochs": trial.user_attrs.get("epochs", ""),
                "state": state,
                "run": sweep.run_name(trial.number),
            }
        )
    return table


def format_table(table: list[dict[str, Any]]) -> str:
    columns = list(table[0])
    widths = {c: max(len(c), *(len(_shown(row[c])) for row in table)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(_shown(row[c]).ljust(widths[c]) for c in columns) for row in table]
    return "\n".join(line.rstrip() for line in lines)


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def best_config(sweep: Sweep, trial: FrozenTrial) -> str:
    """The best trial's ``config.yaml`` as a fresh run's config, named ``<sweep>/best``."""
    path = log_dir(sweep.root, sweep.run_name(trial.number)) / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["name"] = f"{sweep.name}/best"
    config["ckpt_path"] = None  # a resumed trial records its last.ckpt here
    params = ", ".join(f"{key}={value}" for key, value in trial.params.items())
    header = (
        f"# Trial {trial.number} of sweep {sweep.name!r}: {sweep.spec.metric} {trial.value}"
        f" after {trial.user_attrs.get('epochs')} epochs, with {params}.\n"
        f"# Reproduce it: scripts/train.py fit --config <this file>\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def write_plots(sweep: Sweep, study: optuna.Study) -> list[str]:
    """Optuna's history and importance plots; importances need two finished trials."""
    from optuna.visualization import matplotlib as plots

    written = []
    with warnings.catch_warnings():
        # Optuna marks its matplotlib plots experimental; they are used as documented.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        metric = sweep.spec.metric
        figures = {"history.png": plots.plot_optimization_history(study, target_name=metric)}
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(finished) >= 2:
            # Seeded: fANOVA fits a random forest, and the same trials should draw the same plot.
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=sweep.spec.seed)
            figures["importances.png"] = plots.plot_param_importances(
                study, evaluator=evaluator, target_name=metric
            )
        for filename, axes in figures.items():
            figure = axes.get_figure(root=True)
            assert figure is not None, "Optuna's plots draw on a figure of their own"
            save_png(figure, sweep.folder / filename, dpi=100, bbox_inches="tight")
            written.append(filename)
    import matplotlib.pyplot as plt

    plt.close("all")
    return written


def report(sweep: Sweep, study: optuna.Study) -> None:
    """Prints the ranked table and writes the results, best config and plots.

    A report is the only writer of temporary files in the sweep's folder, and
    holds its lock while it writes: any it finds there were left by a killed one.
    """
    with locked(sweep.folder / "locks" / "report.lock"):
        remove_stale_tmp_files(sweep.folder)
        write_report(sweep, study)


def write_report(sweep: Sweep, study: optuna.Study) -> None:
    table = rows(sweep, study)
    if not table:
        print("No trial has run.")
        return
    print(format_table(table))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(sweep.folder / "results.csv", buffer.getvalue())
    written = ["results.csv", *write_plots(sweep, study)]
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if finished:
        best = study.best_trial
        print(f"Best: trial {best.number}, {sweep.spec.metric} {best.value:.6g}")
        if (log_dir(sweep.root, sweep.run_name(best.number)) / "config.yaml").is_file():
            atomic_write_text(sweep.folder / "best.yaml", best_config(sweep, best))
            written.append("best.yaml")
        else:  # another machine of a shared sweep ran it
            host = best.user_attrs.get("host")
            print(f"Trial {best.number} ran on {host}: the same command there writes best.yaml")
    print(f"Written to {sweep.folder}: {', '.join(written)}")
