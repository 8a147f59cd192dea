"""The project side: ``scripts/train.py fit`` built in-process, timing only ``trainer.fit``.

``TimedCLI`` is the project's ``WorkflowCLI`` with everything a user gets by
default during the fit (checkpoints, CSV log, metrics, sanity check, model
summary, the saved config). It only makes the datamodule's data before the
clock starts, so ``make_circles`` is not timed, and reads the clock around the
``trainer.fit`` call the CLI makes.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torchmetrics import MetricCollection

from lightning_modules.base import WorkflowModule
from training.command_line.cli import WorkflowCLI
from training.command_line.known_warnings import quiet_known_noise

ROOT = Path(__file__).resolve().parent.parent
LINEAR = ROOT / "configs" / "linear.yaml"
CIRCLES = ROOT / "configs" / "circles_course.yaml"


class TimedCLI(WorkflowCLI):
    fit_seconds = float("nan")
    _start = 0.0

    def before_fit(self) -> None:
        super().before_fit()
        self.datamodule.setup("fit")  # guarded: trainer.fit will not make the data again
        self._start = time.perf_counter()

    def after_fit(self) -> None:
        """Stops the clock; skips the plots ``WorkflowCLI.after_fit`` draws after the fit.

        They are not part of the fit and, drawn from a million points, take many
        times as long; the whole-process scenarios keep them.
        """
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.fit_seconds = time.perf_counter() - self._start


def fit_args(config: Path, root: str, *overrides: str) -> list[str]:
    """What a user types, with a fresh root and the progress bar off (as when not on a TTY)."""
    return [
        "fit",
        "--config",
        str(config),
        "--trainer.default_root_dir",
        root,
        "--trainer.enable_progress_bar",
        "false",
        *overrides,
    ]


def fit(config: Path, *overrides: str) -> float:
    """Seconds ``trainer.fit`` takes for ``config`` with ``overrides``, in a fresh root dir."""
    quiet_known_noise()
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        return TimedCLI(args=fit_args(config, root, *overrides)).fit_seconds


def fit_linear(epochs: int = 200) -> float:
    return fit(LINEAR, "--trainer.max_epochs", str(epochs))


def circles_overrides(
    epochs: int,
    n_samples: int,
    batch_size: int | None,
    accelerator: str = "cpu",
    compile: bool = False,
) -> list[str]:
    return [
        "--model.init_args.compile",
        str(compile).lower(),
        "--trainer.accelerator",
        accelerator,
        "--trainer.max_epochs",
        str(epochs),
        "--data.init_args.n_samples",
        str(n_samples),
        "--data.init_args.batch_size",
        "null" if batch_size is None else str(batch_size),
    ]


def fit_circles(
    epochs: int,
    n_samples: int = 1000,
    batch_size: int | None = None,
    accelerator: str = "cpu",
    compile: bool = False,
) -> float:
    overrides = circles_overrides(epochs, n_samples, batch_size, accelerator, compile)
    return fit(CIRCLES, *overrides)


@contextlib.contextmanager
def metrics_off() -> Iterator[None]:
    """A diagnostic, not a setting: modules built here get empty metric collections.

    The loss is still computed, logged and checkpointed; only accuracy, F1,
    AUROC (or MSE) are left out, to measure what they cost.
    """
    make_metrics = WorkflowModule.make_metrics

    def without_metrics(
        self: WorkflowModule, train: MetricCollection, evaluation: MetricCollection
    ) -> None:
        make_metrics(self, MetricCollection({}), MetricCollection({}))

    WorkflowModule.make_metrics = without_metrics  # type: ignore[method-assign]
    try:
        yield
    finally:
        WorkflowModule.make_metrics = make_metrics  # type: ignore[method-assign]


def fit_circles_without_metrics(epochs: int, n_samples: int, batch_size: int | None) -> float:
    with metrics_off():
        return fit_circles(epochs, n_samples, batch_size)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="One project circles fit, without the plots.")
    parser.add_argument("task", choices=["circles"])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    print(f"fit {fit_circles(args.epochs, args.n_samples, args.batch_size):.3f}s")


if __name__ == "__main__":
    main()
