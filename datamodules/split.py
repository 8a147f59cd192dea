"""What every datamodule shares: two splits held as tensors, batched reproducibly."""

from __future__ import annotations

from abc import abstractmethod

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.batches import EpochBatchSampler, TensorPairs, batch_loader


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive integer or null (one full batch), got {batch_size}"
        )


class SplitDataModule(L.LightningDataModule):
    """A train split and a held-out split, made once in ``setup``.

    The held-out split serves validation (evaluated every epoch, as in the
    notes' loop), ``test`` and ``predict``. Subclasses only say how the two
    splits are made, from their own arguments and never from the global RNG.
    """

    train_set: TensorPairs
    test_set: TensorPairs

    def __init__(self, batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        check_batch_size(batch_size)
        self.batch_size = batch_size
        self.seed = seed

    @abstractmethod
    def make_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns ``X_train, y_train, X_test, y_test``."""

    def setup(self, stage: str) -> None:
        if not hasattr(self, "train_set"):
            X_train, y_train, X_test, y_test = self.make_splits()
            self.train_set = TensorPairs(X_train, y_train)
            self.test_set = TensorPairs(X_test, y_test)

    def _loader(self, dataset: TensorPairs, shuffle: bool) -> DataLoader:
        """Batches of ``dataset``, cut where the model runs.

        On a GPU the split is copied there once, when the loader is made, and
        every batch is a slice of that copy: no per-batch host-to-device copy.
        The splits themselves stay on the CPU for plots and for the next run.
        """
        rank, replicas, device = 0, 1, torch.device("cpu")
        if self.trainer is not None:
            rank, replicas = self.trainer.global_rank, self.trainer.world_size
            device = self.trainer.strategy.root_device
        sampler = EpochBatchSampler(
            len(dataset),
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            rank=rank,
            num_replicas=replicas,
            device=device,
        )
        return batch_loader(dataset.to(device), sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=self.batch_size is not None)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
