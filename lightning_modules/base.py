"""The notes' training loop (§2.3) once, for every task: ``training_step`` is the forward pass
and the loss (steps 1-2); the Trainer does zero_grad, backward and step (3-5), switches
``train()`` and ``eval()``, and runs validation under ``inference_mode``."""

from __future__ import annotations

from typing import Any, Literal

from lightning.pytorch.cli import LRSchedulerCallable
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn
from torchmetrics import MetricCollection

from lightning_modules.compiled import compile_net
from lightning_modules.counting_metrics import BatchMean
from lightning_modules.data_parallel import no_share_loss, scaled_to_global_batch
from lightning_modules.input_scaling import InputScaling
from lightning_modules.optim_spec import build_scheduler
from lightning_modules.plain_data_checkpoints import PlainDataCheckpoints

Stage = Literal["train", "val", "test"]


class WorkflowModule(InputScaling, PlainDataCheckpoints):
    """A net, its loss, its optimizer and per-stage metrics.

    Args:
        net: the ``nn.Module`` to train.
        optimizer: the name of the ``torch.optim`` optimizer that updates the net.
        lr: the learning rate (with a scheduler, the rate it starts from).
        compile: run the net through ``torch.compile`` (``compiled.py``).
        optimizer_args: the optimizer's other arguments, e.g. ``{"weight_decay": 0.01}``.
        lr_scheduler: a ``torch.optim.lr_scheduler`` class and its arguments, stepped per epoch.
    """

    loss_fn: nn.Module

    def __init__(
        self,
        net: nn.Module,
        optimizer: str,
        lr: float,
        compile: bool = False,
        optimizer_args: dict[str, Any] | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "compile"])
        self.record_as_plain_data(net, optimizer, lr, optimizer_args, lr_scheduler)
        self.optimizer = optimizer
        self.lr = lr
        self.compile_net = compile

    def make_metrics(self, train: MetricCollection, evaluation: MetricCollection) -> None:
        """Separate metric objects per stage (``train/acc``, ``val/acc``) and its mean loss."""
        self.train_metrics = train.clone(prefix="train/")
        self.val_metrics = evaluation.clone(prefix="val/")
        self.test_metrics = evaluation.clone(prefix="test/")
        self.train_loss = BatchMean()
        self.val_loss = BatchMean()
        self.test_loss = BatchMean()

    def configure_model(self) -> None:
        if self.compile_net:
            compile_net(self, self.net)

    def forward(self, features: Tensor) -> Tensor:
        """Predictions, or logits; float32 at any precision (in bf16, 0.998 and up is 1.0)."""
        return self.net(self.scaled(features)).float()

    def loss_input(self, outputs: Tensor) -> Tensor:
        return outputs  # what the loss compares with the targets

    def update_metrics(self, metrics: MetricCollection, outputs: Tensor, targets: Tensor) -> None:
        metrics.update(outputs, targets)

    def _step(self, batch: tuple[Tensor, Tensor], stage: Stage) -> Tensor:
        """Forward pass and loss; the batch is added to the stage's epoch loss and metrics."""
        features, targets = batch
        outputs = self(features)
        if len(targets) == 0:
            return no_share_loss(outputs)
        loss = self.loss_fn(self.loss_input(outputs), targets)
        getattr(self, f"{stage}_loss").update(loss.detach(), len(targets))
        self.update_metrics(getattr(self, f"{stage}_metrics"), outputs.detach(), targets)
        return loss

    def _log_epoch(self, stage: Stage) -> None:
        """Hands the stage's metric objects to ``self.log``, once per epoch, not in every step.

        Lightning computes each at the epoch's end and resets it; ``self.log`` costs
        about a millisecond a call on a CPU, more than a training step of the notes' nets.
        """
        loss: BatchMean = getattr(self, f"{stage}_loss")
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(getattr(self, f"{stage}_metrics"), on_step=False, on_epoch=True)

    def on_train_epoch_start(self) -> None:
        self._log_epoch("train")
        if self.scheduler is not None:
            # The rate this epoch trains with: the scheduler steps after each epoch.
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log("lr", lr, on_step=False, on_epoch=True)

    def on_validation_epoch_start(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._log_epoch("test")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        return scaled_to_global_batch(self.trainer, loss, batch_idx, len(batch[1]))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        features, targets = batch
        return {"features": features, "target": targets, **self.predicted(self(features))}

    def predicted(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"prediction": outputs}  # a classifier adds each class's probability

    def configure_optimizers(self) -> OptimizerLRScheduler:
        optimizer_class: Any = self.optimizer_class
        optimizer = optimizer_class(self.parameters(), lr=self.lr, **self.optimizer_args)
        if self.scheduler is None:
            return optimizer
        scheduler: Any = build_scheduler(self.scheduler, optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
