"""Notes §2.3-2.6: fitting the straight line with L1 loss and SGD."""

from __future__ import annotations

from torch import nn
from torchmetrics import MeanSquaredError, MetricCollection

from lightning_modules.base import OptimizerName, WorkflowModule


class RegressionModule(WorkflowModule):
    """``nn.L1Loss`` with SGD at lr 0.01, as in the notes; logs the loss and MSE.

    The L1 loss is the mean absolute error, so no separate MAE metric repeats it.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerName = "SGD",
        lr: float = 0.01,
        compile: bool = False,
    ) -> None:
        super().__init__(net, optimizer, lr, compile)
        self.loss_fn = nn.L1Loss()
        metrics = MetricCollection({"mse": MeanSquaredError()})
        self.make_metrics(train=metrics, evaluation=metrics)
