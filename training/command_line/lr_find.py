"""``scripts/train.py lr_find``: Lightning's learning-rate range test, and the ``fit`` that uses it.

``Tuner.lr_find`` trains from the config's initial weights for ``num_training``
steps while the learning rate grows from ``min_lr`` to ``max_lr``, records the
(smoothed) loss of each step, and puts the weights back. Its suggestion is the
rate where the loss falls fastest. The plot of loss against rate, with the
suggestion marked, goes to ``logs/<name>/lr_find.png``; the line printed is the
suggestion and the ``fit`` command that trains with it. No checkpoint, log or
run is written: the Tuner's own copy of the initial weights lives in a
temporary folder and goes with it.

LightningCLI builds a subcommand's options from the Trainer method of the same
name, so ``LRFindTrainer.lr_find`` is the subcommand's signature.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import lightning as L
from lightning.pytorch.tuner import Tuner

from training.command_line.script_process import script_command
from training.errors import UserError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LR_FIND = "lr_find"
LR_FIND_PNG = "lr_find.png"
# Lightning's suggestion skips the first 10 and the last step, and takes a gradient of 2 or more.
SKIP_BEGIN, SKIP_END = 10, 1
MIN_STEPS = SKIP_BEGIN + SKIP_END + 2
# The subcommand's own options: a fit has none of them.
SEARCH_OPTIONS = ("--min_lr", "--max_lr", "--num_training", "--mode", "--early_stop_threshold")


class RangeTest(Protocol):
    """What the project reads of the Tuner's result: each step's rate and loss, and its plot."""

    results: dict[str, Any]

    def suggestion(self, skip_begin: int = ..., skip_end: int = ...) -> float | None: ...

    def plot(self, suggest: bool = ..., show: bool = ..., ax: Axes | None = ...) -> Any: ...


class LRFindTrainer(L.Trainer):
    """Lightning's Trainer, with the learning-rate finder as a method for LightningCLI to offer."""

    def lr_find(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: Literal["exponential", "linear"] = "exponential",
        early_stop_threshold: float | None = 4.0,
    ) -> RangeTest | None:
        """Finds a learning rate: the loss of each step as the rate grows from min_lr to max_lr.

        Args:
            min_lr: the rate of the first step.
            max_lr: the rate of the last step.
            num_training: how many steps (batches) the search trains.
            mode: how the rate grows from step to step: exponential or linear.
            early_stop_threshold: stop once the loss exceeds this many times its lowest value;
                null searches the whole range.
        """
        return Tuner(self).lr_find(
            model,
            datamodule=datamodule,
            min_lr=min_lr,
            max_lr=max_lr,
            num_training=num_training,
            mode=mode,
            early_stop_threshold=early_stop_threshold,
            update_attr=False,
        )


def check_search(config: Any) -> None:
    """Refuses a search range or length the finder could not suggest from, before it runs."""
    low, high, steps = config.min_lr, config.max_lr, config.num_training
    if low <= 0:
        raise UserError(
            f"--min_lr {low:g} is not a learning rate; pass a rate above 0 (1e-8 by default)"
        )
    if low >= high:
        raise UserError(
            f"--min_lr {low:g} is not below --max_lr {high:g}; the search runs from --min_lr"
            " up to --max_lr: pass a --min_lr below --max_lr"
        )
    if steps < MIN_STEPS:
        raise UserError(
            f"--num_training {steps} is too few steps: the suggestion leaves out the first"
            f" {SKIP_BEGIN} and the last, and needs 2 more; pass {MIN_STEPS} or more"
            " (100 by default)"
        )
    threshold = config.early_stop_threshold
    if threshold is not None and threshold <= 1:
        raise UserError(
            f"--early_stop_threshold {threshold:g} would stop the search at its first step;"
            " pass a factor above 1 (4 by default), or null to search the whole range"
        )


def suggested_lr(finder: RangeTest) -> float | None:
    """Lightning's suggestion: the rate where the loss falls fastest; ``None`` if too few steps."""
    lr = finder.suggestion(skip_begin=SKIP_BEGIN, skip_end=SKIP_END)
    return None if lr is None else float(lr)


def no_suggestion(finder: RangeTest, path: Path) -> UserError:
    """The search stopped too soon (the loss diverged) for Lightning to suggest a rate."""
    return UserError(
        f"the loss diverged after {len(finder.results['lr'])} steps, too soon to suggest a"
        f" rate (see {path}); pass a lower --max_lr, or a larger --early_stop_threshold"
    )


def plot_lr_find(
    finder: RangeTest, lr: float | None, configured_lr: float | None, path: Path
) -> Path:
    """Lightning's plot of the loss against the rate, the suggestion marked, as a PNG."""
    from training.outputs.plots import new_figure, save_png

    figure = new_figure()
    ax = figure.subplots()
    finder.plot(suggest=lr is not None, ax=ax)
    title = f"Learning-rate range test: the loss of {len(finder.results['lr'])} steps"
    if lr is not None:
        ax.axvline(lr, color="red", linestyle="--", label=f"suggested lr {lr:.3g} (red dot)")
        title += f"; suggested lr {lr:.3g}, where it falls fastest"
    if configured_lr is not None:
        ax.axvline(
            configured_lr, color="grey", linestyle=":", label=f"config's lr {configured_lr:g}"
        )
    ax.set_title(title)
    ax.set_ylabel("Loss (smoothed)")
    # The first steps, which the suggestion leaves out, would squash the rest: Lightning's
    # smoothing starts from 0 and its correction is a step behind, so they read low.
    considered = [x for x in finder.results["loss"][SKIP_BEGIN:] if math.isfinite(x)]
    if considered:
        low, high = min(considered), max(considered)
        margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
        ax.set_ylim(low - margin, high + margin)
    if lr is not None or configured_lr is not None:
        ax.legend()
    return save_png(figure, path)


def fit_command(argv: list[str], lr: float) -> str:
    """The ``lr_find`` command as it was typed, as a ``fit`` with ``--model.lr lr``."""
    args: list[str] = []
    given = iter(argv)
    subcommand_seen = False
    for arg in given:
        option = arg.partition("=")[0]
        if option in (*SEARCH_OPTIONS, "--model.lr"):
            if "=" not in arg:
                next(given, None)
        elif arg == LR_FIND and not subcommand_seen:
            subcommand_seen = True
            args.append("fit")
        else:
            args.append(arg)
    return script_command([*args, "--model.lr", f"{lr:.3g}"])
