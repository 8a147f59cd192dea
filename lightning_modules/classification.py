"""Notes §3: telling classes apart from the logits a net outputs."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
)

from lightning_modules.base import OptimizerName, WorkflowModule


class ClassificationModule(WorkflowModule):
    """Binary or multi-class classification; logs accuracy, F1 and AUROC.

    With ``num_classes=2`` the net outputs one logit per sample and the loss is
    ``BCEWithLogitsLoss``, as in the course; with more classes it outputs one
    logit per class and the loss is ``CrossEntropyLoss``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerName = "SGD",
        lr: float = 0.1,
        num_classes: int = 2,
    ) -> None:
        super().__init__(net, optimizer, lr)
        if num_classes < 2:
            raise ValueError(f"num_classes must be 2 or more, got {num_classes}")
        self.num_classes = num_classes
        # validate_args=False: the checks cost as much as a training step, and
        # the datamodules already guarantee shapes and label values.
        metrics: MetricCollection
        if num_classes == 2:
            self.loss_fn = nn.BCEWithLogitsLoss()
            metrics = MetricCollection(
                {
                    "acc": BinaryAccuracy(validate_args=False),
                    "f1": BinaryF1Score(validate_args=False),
                    "auroc": BinaryAUROC(validate_args=False),
                }
            )
        else:
            self.loss_fn = nn.CrossEntropyLoss()
            metrics = MetricCollection(
                {
                    "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False),
                    "f1": MulticlassF1Score(num_classes, validate_args=False),
                    "auroc": MulticlassAUROC(num_classes, validate_args=False),
                }
            )
        self.make_metrics(metrics)

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    def loss_input(self, outputs: Tensor) -> Tensor:
        return outputs.squeeze(dim=1) if self.binary else outputs

    def metric_input(self, outputs: Tensor) -> Tensor:
        """Probabilities: sigmoid of the one logit, or softmax over the classes."""
        if self.binary:
            return torch.sigmoid(outputs.squeeze(dim=1))
        return torch.softmax(outputs, dim=1)

    def prediction(self, outputs: Tensor) -> Tensor:
        """The predicted label: probability above 0.5, or the most likely class."""
        if self.binary:
            return torch.round(torch.sigmoid(outputs.squeeze(dim=1)))
        return outputs.argmax(dim=1)
