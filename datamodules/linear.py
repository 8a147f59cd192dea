"""Notes §2.1: points on the straight line ``y = weight * X + bias``, split in order."""

from __future__ import annotations

import torch
from torch import Tensor

from datamodules.split import SplitDataModule


class LinearDataModule(SplitDataModule):
    """``X = arange(start, end, step)`` as a column; the first ``train_fraction`` trains.

    The split is ordered, as in the notes, but pairs each ``X`` with its own
    ``y``: the notes' first version wrote ``X[:n], y[n:]``, which mismatches
    features and targets (and its shapes, 40 against 10).
    """

    def __init__(
        self,
        weight: float = 0.7,
        bias: float = 0.3,
        start: float = 0.0,
        end: float = 1.0,
        step: float = 0.02,
        train_fraction: float = 0.8,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        if start >= end:
            raise ValueError(f"start must be below end, got start={start} and end={end}")
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
        num_points = len(torch.arange(start, end, step))
        if not 0 < int(train_fraction * num_points) < num_points:
            raise ValueError(
                f"train_fraction={train_fraction} of {num_points} points leaves a split empty;"
                " use more points (a smaller step) or a fraction nearer 0.5"
            )
        self.save_hyperparameters()
        self.weight = weight
        self.bias = bias
        self.start = start
        self.end = end
        self.step = step
        self.train_fraction = train_fraction

    def make_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        X = torch.arange(self.start, self.end, self.step).unsqueeze(dim=1)
        y = self.weight * X + self.bias
        train_split = int(self.train_fraction * len(X))
        return X[:train_split], y[:train_split], X[train_split:], y[train_split:]
