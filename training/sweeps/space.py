"""A sweep's YAML: the base config, the search space, the metric and how many trials.

```yaml
config: ../circles_course.yaml      # the base config, relative to this file
metric: val/acc                     # a metric the runs log every epoch
direction: maximize                 # or minimize
trials: 30
seed: 42                            # the TPE sampler's seed
space:                              # keys are train.py options
  model.lr: {low: 0.001, high: 1.0, log: true}    # float range (log scale)
  model.net.hidden_units: {low: 4, high: 64}      # int range: both ends are ints
  model.optimizer: [SGD, Adam]                    # choices
```

Everything here is checked before any trial starts; a mistake is one line
naming the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml

from training.errors import UserError

Choice = None | bool | int | float | str
KEYS = {"name", "config", "metric", "direction", "trials", "seed", "space", "pruner", "plots"}
PRUNER_KEYS = {"n_startup_trials", "n_warmup_steps"}


@dataclass(frozen=True)
class Range:
    """A float range, or an int range when both ends are ints; ``log`` samples evenly in log."""

    low: float
    high: float
    log: bool = False

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial: optuna.Trial, key: str) -> Choice:
        if self.is_int:
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(key, self.low, self.high, log=self.log)

    def candidates(self) -> list[Choice]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Choices:
    values: tuple[Choice, ...]

    def suggest(self, trial: optuna.Trial, key: str) -> Choice:
        return trial.suggest_categorical(key, list(self.values))

    def candidates(self) -> list[Choice]:
        return list(self.values)


Dimension = Range | Choices


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as its YAML describes it (see the module docstring)."""

    name: str
    config: Path
    metric: str
    direction: Literal["minimize", "maximize"]
    trials: int
    seed: int
    space: dict[str, Dimension]
    pruner: dict[str, int] = field(default_factory=dict)
    plots: bool = False

    def fingerprint(self) -> dict[str, Any]:
        """What a rerun must share with the sweep it continues (the trial count may grow)."""
        return {
            "config": str(self.config.resolve()),
            "metric": self.metric,
            "direction": self.direction,
            "seed": self.seed,
            "space": {key: repr(dim) for key, dim in self.space.items()},
            "pruner": self.pruner,
        }


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sweep config {path} does not exist; pass an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping with the keys {', '.join(sorted(KEYS))}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise UserError(
            f"{path}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(KEYS))}"
        )
    for key in ("config", "metric", "direction", "trials", "space"):
        if key not in raw:
            raise UserError(f"{path} has no {key!r}; add it (see configs/sweeps/)")
    config = (path.parent / str(raw["config"])).resolve()
    if not config.is_file():
        raise UserError(f"{path}: base config {config} does not exist; fix 'config'")
    direction = raw["direction"]
    if direction not in ("minimize", "maximize"):
        raise UserError(f"{path}: direction must be minimize or maximize, got {direction!r}")
    trials, seed = raw["trials"], raw.get("seed", 0)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise UserError(f"{path}: trials must be a whole number of 1 or more, got {trials!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{path}: seed must be a whole number, got {seed!r}")
    space = raw["space"]
    if not isinstance(space, dict) or not space:
        raise UserError(f"{path}: space must map train.py options to ranges or choices")
    pruner = raw.get("pruner") or {}
    if set(pruner) - PRUNER_KEYS or not all(isinstance(v, int) for v in pruner.values()):
        raise UserError(f"{path}: pruner takes whole numbers for {', '.join(sorted(PRUNER_KEYS))}")
    return SweepSpec(
        name=str(raw.get("name", path.stem)),
        config=config,
        metric=str(raw["metric"]),
        direction=direction,
        trials=trials,
        seed=seed,
        space={str(key): dimension(str(key), value) for key, value in space.items()},
        pruner=pruner,
        plots=bool(raw.get("plots", False)),
    )


def dimension(key: str, value: Any) -> Dimension:
    """One search-space entry: ``{low, high, log}`` or a list of choices."""
    if isinstance(value, list):
        if not value:
            raise UserError(
                f"search space {key!r} has an empty choice list; list one value or more"
            )
        for choice in value:
            if choice is not None and not isinstance(choice, bool | int | float | str):
                raise UserError(
                    f"search space {key!r}: choice {choice!r} is not a number, string or bool;"
                    " give class paths as strings"
                )
        return Choices(tuple(value))
    if not isinstance(value, dict) or not {"low", "high"} <= set(value) <= {"low", "high", "log"}:
        raise UserError(
            f"search space {key!r} must be a list of choices or {{low, high}} with an optional log,"
            f" got {value!r}"
        )
    low, high, log = value["low"], value["high"], value.get("log", False)
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, int | float):
            raise UserError(f"search space {key!r}: low and high must be numbers, got {end!r}")
    if not low < high:
        raise UserError(f"search space {key!r}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise UserError(
            f"search space {key!r}: a log range must stay above 0, got low {low}; raise low"
        )
    return Range(low, high, bool(log))
