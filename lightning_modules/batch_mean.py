"""The epoch's mean loss, from each batch's mean and size."""

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
        self.total += batch_mean * batch_size
        self.count += batch_size

    def compute(self) -> Tensor:
        return self.total / self.count
