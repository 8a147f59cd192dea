"""Lightning's own floor: a bare Trainer running the plain side's nets on the project's batches.

Nothing logged, no metrics, no checkpoints, no sanity check, no model summary:
what is left is the Lightning loop itself (hooks, automatic optimisation,
train/eval switching, ``inference_mode`` for validation). Batches come from
the project's ``epoch_batches`` (index slices of in-memory tensors), so the gap
between this and ``plain.py`` is Lightning's, and the gap between this and
``project.py`` is what the project adds on top.
"""

from __future__ import annotations

import time

import lightning as L
import plain
import torch
from torch import Tensor, nn

from datamodules.batches import TensorPairs, epoch_batches


class BareModule(L.LightningModule):
    def __init__(self, net: nn.Module, loss_fn: nn.Module, lr: float) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn
        self.lr = lr

    def _loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        X, y = batch
        outputs = self.net(X)
        return self.loss_fn(outputs.squeeze(dim=1) if y.dim() == 1 else outputs, y)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._loss(batch)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._loss(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def fit(
    module: BareModule, data: plain.Splits, epochs: int, batch_size: int | None = None
) -> float:
    """Seconds of ``trainer.fit``, validating every epoch as both other sides do."""
    train = TensorPairs(data.X_train, data.y_train)
    test = TensorPairs(data.X_test, data.y_test)
    shuffle = batch_size is not None
    train_loader = epoch_batches(train, batch_size, shuffle, 0, None)
    val_loader = epoch_batches(test, batch_size, False, 0, None)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    start = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    return time.perf_counter() - start


def fit_linear(data: plain.Splits, epochs: int = 200) -> float:
    torch.manual_seed(plain.SEED)
    return fit(BareModule(plain.LinearRegressionModelV2(), nn.L1Loss(), 0.01), data, epochs)


def fit_circles(data: plain.Splits, epochs: int, batch_size: int | None = None) -> float:
    torch.manual_seed(plain.SEED)
    module = BareModule(plain.CircleModelV2(), nn.BCEWithLogitsLoss(), 0.1)
    return fit(module, data, epochs, batch_size)
