"""The split's arguments checked when a datamodule is built, so bad ones fail in one line.

Each check raises ``ValueError`` with the fix; LightningCLI reports it as the
one-line error of the option that was given.
"""

from __future__ import annotations

import torch


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive integer or null (one full batch), got {batch_size}"
        )


def check_fraction(name: str, value: float, zero_allowed: bool = False) -> None:
    low_ok = value >= 0 if zero_allowed else value > 0
    if not (low_ok and value < 1):
        interval = "[0, 1)" if zero_allowed else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value}")


def check_not_empty(what: str, sizes: dict[str, int], fix: str) -> None:
    """Refuses ``what`` (the arguments that made ``sizes``) when it leaves a split with no point."""
    if any(size <= 0 for size in sizes.values()):
        counts = ", ".join(f"{size} {name}" for name, size in sizes.items())
        raise ValueError(f"{what} leaves a split empty ({counts}); {fix}")


def check_line_split(
    start: float, end: float, step: float, train_fraction: float, val_size: float
) -> None:
    """The straight line's arguments: a range with points, and no split left empty."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if start >= end:
        raise ValueError(f"start must be below end, got start={start} and end={end}")
    check_fraction("train_fraction", train_fraction)
    check_fraction("val_size", val_size, zero_allowed=True)
    num_points = len(torch.arange(start, end, step))
    before_test, num_val = int(train_fraction * num_points), round(val_size * num_points)
    sizes = {"train": before_test - num_val, "val": num_val, "test": num_points - before_test}
    if val_size == 0:
        del sizes["val"]
    check_not_empty(
        f"train_fraction={train_fraction} and val_size={val_size} of {num_points} points",
        sizes,
        "use more points (a smaller step), or another train_fraction or val_size",
    )
