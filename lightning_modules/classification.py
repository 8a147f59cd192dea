"""Notes §3: telling classes apart from the logits a net outputs."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAUROC

from lightning_modules.auroc import BinaryAUROC
from lightning_modules.base import WorkflowModule
from lightning_modules.counting_metrics import Accuracy, BinaryF1, MulticlassF1


class ClassificationModule(WorkflowModule):
    """Binary or multi-class classification; logs accuracy; validation and test add F1 and AUROC.

    With ``num_classes=2`` the net outputs one logit per sample and the loss is
    ``BCEWithLogitsLoss``, as in the course; with more classes it outputs one
    logit per class and the loss is ``CrossEntropyLoss``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: str = "SGD",
        lr: float = 0.1,
        num_classes: int = 2,
        compile: bool = False,
        optimizer_args: dict[str, Any] | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(net, optimizer, lr, compile, optimizer_args, lr_scheduler)
        if num_classes < 2:
            raise ValueError(f"num_classes must be 2 or more, got {num_classes}")
        self.num_classes = num_classes
        # validate_args=False: the checks cost as much as a training step, and
        # the datamodules already guarantee shapes and label values.
        metrics: dict[str, Metric]
        if num_classes == 2:
            self.loss_fn = nn.BCEWithLogitsLoss()
            metrics = {
                "f1": BinaryF1(),
                "auroc": BinaryAUROC(validate_args=False),
            }
        else:
            self.loss_fn = nn.CrossEntropyLoss()
            metrics = {
                "f1": MulticlassF1(num_classes),
                "auroc": MulticlassAUROC(num_classes, validate_args=False),
            }
        # The notes' loop prints the loss and accuracy while training; F1 and
        # AUROC (which sorts every prediction of the epoch) are for evaluation.
        # Separate updates feed each metric its own input, so no compute groups.
        self.make_metrics(
            train=MetricCollection({"acc": Accuracy()}, compute_groups=False),
            evaluation=MetricCollection({"acc": Accuracy(), **metrics}, compute_groups=False),
        )

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    def loss_input(self, outputs: Tensor) -> Tensor:
        return outputs.squeeze(dim=1) if self.binary else outputs

    def update_metrics(self, metrics: MetricCollection, outputs: Tensor, targets: Tensor) -> None:
        """Accuracy and F1 count predicted labels; AUROC ranks probabilities.

        Labels, not probabilities, go to F1 as well: given floats, torchmetrics
        first checks on every batch whether they lie in [0, 1], which makes the
        host wait for the device. Binary targets are compared as booleans, like
        the labels, rather than converting the labels to floats for each count.
        """
        labels = self.labels(outputs)
        target_labels = targets == 1 if self.binary else targets
        for name, metric in metrics.items(keep_base=True, copy_state=False):
            if name == "auroc":
                metric.update(self.probabilities(outputs), targets)
            else:
                metric.update(labels, target_labels)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Sigmoid of the one logit, or softmax over the classes."""
        if self.binary:
            return torch.sigmoid(outputs.squeeze(dim=1))
        return torch.softmax(outputs, dim=1)

    def labels(self, outputs: Tensor) -> Tensor:
        """The predicted label: a positive logit (probability above 0.5), or the most likely class.

        Binary labels are booleans here, which the metrics count as they are.
        """
        if self.binary:
            return outputs.squeeze(dim=1) > 0
        return outputs.argmax(dim=1)

    def prediction(self, outputs: Tensor) -> Tensor:
        """The predicted label as ``predict`` writes it.

        Binary labels are floats, 0.0 or 1.0, like the targets ``BCEWithLogitsLoss`` takes.
        """
        labels = self.labels(outputs)
        return labels.to(outputs.dtype) if self.binary else labels

    def predicted(self, outputs: Tensor) -> dict[str, Tensor]:
        """The label, and the probability of class 1 (binary) or of each class."""
        probabilities = self.probabilities(outputs)
        return {"prediction": self.prediction(outputs), "probabilities": probabilities}
