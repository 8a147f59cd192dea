"""What every datamodule shares: three splits held as tensors, batched reproducibly."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.batches import TensorPairs, epoch_batches, prediction_batches
from datamodules.feature_scaling import training_statistics
from datamodules.split_checks import check_batch_size

Pair = tuple[Tensor, Tensor]


class Splits(NamedTuple):
    """Each split as ``(features, targets)``; ``val`` is ``None`` in the course's two-way split."""

    train: Pair
    val: Pair | None
    test: Pair


class SplitDataModule(L.LightningDataModule, ABC):
    """A train, a validation and a test split, made once in ``setup``.

    Validation (every epoch; it chooses ``best.ckpt``) uses the validation split, or the
    test split in the course's two-way split; ``test`` and ``predict`` the test split.
    """

    train_set: TensorPairs
    val_set: TensorPairs
    test_set: TensorPairs

    def __init__(
        self, batch_size: int | None = None, seed: int = 0, standardize: bool = False
    ) -> None:
        super().__init__()
        check_batch_size(batch_size)
        # Records every subclass's arguments too, the seed included (a resume checks it).
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.seed = seed
        self.standardize = standardize

    @abstractmethod
    def make_splits(self) -> Splits:
        """The train, validation (or ``None``) and test splits."""

    def setup(self, stage: str) -> None:
        if not hasattr(self, "train_set"):
            splits = self.make_splits()
            self.train_set = TensorPairs(*splits.train)
            self.test_set = TensorPairs(*splits.test)
            self.val_set = self.test_set if splits.val is None else TensorPairs(*splits.val)

    @property
    def validates_on_test(self) -> bool:
        """Whether validation uses the test split (the course's two-way split)."""
        self.setup("fit")
        return self.val_set is self.test_set

    def feature_scaling(self) -> tuple[Tensor, Tensor] | None:
        """``--data.standardize``: the training split's mean and std, which the module scales by."""
        self.setup("fit")
        return training_statistics(self.train_set.features) if self.standardize else None

    def train_dataloader(self) -> DataLoader:
        shuffle = self.batch_size is not None  # one full batch (the notes'): nothing to shuffle
        return epoch_batches(self.train_set, self.batch_size, shuffle, self.seed, self.trainer)

    def val_dataloader(self) -> DataLoader:
        return epoch_batches(self.val_set, self.batch_size, False, self.seed, self.trainer)

    def test_dataloader(self) -> DataLoader:
        return epoch_batches(self.test_set, self.batch_size, False, self.seed, self.trainer)

    def predict_dataloader(self) -> DataLoader:
        return prediction_batches(self.test_set, self.batch_size, self.trainer)
