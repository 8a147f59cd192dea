"""Notes §2.3-2.6: fitting the straight line with L1 loss and SGD."""

from __future__ import annotations

from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from lightning_modules.base import OptimizerName, WorkflowModule


class RegressionModule(WorkflowModule):
    """``nn.L1Loss`` (MAE, as in the notes) with SGD at lr 0.01; logs MAE and MSE."""

    def __init__(self, net: nn.Module, optimizer: OptimizerName = "SGD", lr: float = 0.01) -> None:
        super().__init__(net, optimizer, lr)
        self.loss_fn = nn.L1Loss()
        self.make_metrics(MetricCollection({"mae": MeanAbsoluteError(), "mse": MeanSquaredError()}))
