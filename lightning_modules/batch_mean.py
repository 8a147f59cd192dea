"""Epoch means from per-batch values: the epoch's mean loss, and accuracy."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class BatchMean(Metric):
    """Mean over all samples of a value given per batch as ``(batch mean, batch size)``.

    Weighting by the batch size keeps the epoch mean exact when the last batch
    is smaller, and across data-parallel ranks with uneven shares. A NaN or
    infinite loss shows in the result, so a diverging fit is noticed. (In
    torchmetrics 1.9, ``MeanMetric`` either drops NaNs or, with
    ``nan_strategy="disable"``, ignores the weights.)
    """

    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, batch_mean: Tensor, batch_size: int) -> None:
        # In place: two kernels, no temporary and no attribute assignment per step.
        self.total.add_(batch_mean, alpha=batch_size)
        self.count.add_(batch_size)

    def compute(self) -> Tensor:
        return self.total / self.count


class Accuracy(BatchMean):
    """The fraction of predicted labels that equal the targets, over the epoch.

    The value of torchmetrics' ``BinaryAccuracy`` and of ``MulticlassAccuracy``
    with ``average="micro"`` (``tests/test_modules.py`` checks both), for a
    fraction of the cost per step: they count the whole confusion matrix (true
    and false positives and negatives) on every batch, about 150 µs at batch
    1024 on a 2-core CPU against 35 µs here, while a whole training step of
    the circles net takes about 1 ms.
    """

    def update(self, labels: Tensor, targets: Tensor) -> None:  # type: ignore[override]
        # The batch's count of right labels: its mean times its size.
        self.total.add_((labels == targets).sum())
        self.count.add_(len(targets))
