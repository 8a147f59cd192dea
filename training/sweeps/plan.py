"""A checked sweep: its spec, name, storage and the train.py options of every trial.

What every worker process is handed, and what the report reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from training.sweeps.space import Choice, SweepSpec
from training.sweeps.storage import open_storage


@dataclass(frozen=True)
class Sweep:
    """A checked sweep: what every worker process needs to run its trials."""

    spec: SweepSpec
    name: str
    trials: int
    storage: str | None
    args: tuple[str, ...]  # train.py options given to every trial
    root: str | None  # --trainer.default_root_dir of the trials

    @property
    def folder(self) -> Path:
        return Path(self.root or ".") / "sweeps" / self.name

    def run_name(self, number: int) -> str:
        return f"{self.name}/trial-{number}"

    def trial_args(self, number: int, params: dict[str, Choice]) -> list[str]:
        options = [item for key, value in params.items() for item in (f"--{key}", cli_value(value))]
        return [
            "fit",
            "--config",
            str(self.spec.config),
            *self.args,
            *options,
            "--name",
            self.run_name(number),
        ]

    def open_study(self) -> optuna.Study:
        pruner = optuna.pruners.MedianPruner(**self.spec.pruner)
        storage = open_storage(self.storage, self.folder)
        return optuna.load_study(study_name=self.name, storage=storage, pruner=pruner)


def cli_value(value: Choice) -> str:
    """A parameter as train.py reads it back exactly (``repr`` of a float round-trips)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)
