"""Notes §2.1: points on the straight line ``y = weight * X + bias``, split in order."""

from __future__ import annotations

import torch

from datamodules.split import SplitDataModule, Splits
from datamodules.split_checks import check_line_split


class LinearDataModule(SplitDataModule):
    """``X = arange(start, end, step)`` as a column, split in order.

    The first ``train_fraction`` of the points train and the rest test, as in
    the notes; with ``val_size`` > 0, that fraction of all the points, the last
    ones before the test points, validate instead of training. The test split
    stays the same, and the model is still asked to extrapolate beyond every
    point it has seen. With ``val_size=0`` (the notes' two-way split) the test
    split also validates.

    Each ``X`` keeps its own ``y``: the notes' first version wrote
    ``X[:n], y[n:]``, which mismatches features and targets (and its shapes,
    40 against 10).
    """

    def __init__(
        self,
        weight: float = 0.7,
        bias: float = 0.3,
        start: float = 0.0,
        end: float = 1.0,
        step: float = 0.02,
        train_fraction: float = 0.8,
        val_size: float = 0.0,
        batch_size: int | None = None,
        seed: int = 0,
        standardize: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, standardize=standardize)
        check_line_split(start, end, step, train_fraction, val_size)
        self.weight = weight
        self.bias = bias
        self.start = start
        self.end = end
        self.step = step
        self.train_fraction = train_fraction
        self.val_size = val_size

    def make_splits(self) -> Splits:
        X = torch.arange(self.start, self.end, self.step).unsqueeze(dim=1)
        y = self.weight * X + self.bias
        test_start = int(self.train_fraction * len(X))
        train_end = test_start - round(self.val_size * len(X))
        train = X[:train_end], y[:train_end]
        test = X[test_start:], y[test_start:]
        val = (X[train_end:test_start], y[train_end:test_start]) if self.val_size else None
        return Splits(train, val, test)
