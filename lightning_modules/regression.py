"""Notes §2.3-2.6: fitting the straight line with L1 loss and SGD."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LRSchedulerCallable
from torch import nn
from torchmetrics import MeanSquaredError, MetricCollection

from lightning_modules.base import WorkflowModule


class RegressionModule(WorkflowModule):
    """``nn.L1Loss`` (mean absolute error) with SGD at lr 0.01, as in the notes; logs MSE too."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: str = "SGD",
        lr: float = 0.01,
        compile: bool = False,
        optimizer_args: dict[str, Any] | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(net, optimizer, lr, compile, optimizer_args, lr_scheduler)
        self.loss_fn = nn.L1Loss()
        metrics = MetricCollection({"mse": MeanSquaredError()})
        self.make_metrics(train=metrics, evaluation=metrics)
