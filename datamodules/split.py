"""What every datamodule shares: three splits held as tensors, batched reproducibly."""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from typing import NamedTuple

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.batches import (
    BatchLoader,
    EpochBatchSampler,
    Loader,
    TensorPairs,
    sequential_loader,
)

Pair = tuple[Tensor, Tensor]


class Splits(NamedTuple):
    """Each split as ``(features, targets)``.

    ``val`` is ``None`` for the course's two-way split, where the test split
    also serves validation.
    """

    train: Pair
    val: Pair | None
    test: Pair


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive integer or null (one full batch), got {batch_size}"
        )


def check_fraction(name: str, value: float, zero_allowed: bool = False) -> None:
    low_ok = value >= 0 if zero_allowed else value > 0
    if not (low_ok and value < 1):
        interval = "[0, 1)" if zero_allowed else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value}")


def check_not_empty(what: str, sizes: dict[str, int], fix: str) -> None:
    """Refuses ``what`` (the arguments that made ``sizes``) when it leaves a split with no point."""
    if any(size <= 0 for size in sizes.values()):
        counts = ", ".join(f"{size} {name}" for name, size in sizes.items())
        raise ValueError(f"{what} leaves a split empty ({counts}); {fix}")


def shuffled_split_sizes(n_samples: int, test_size: float, val_size: float) -> tuple[int, int, int]:
    """``(train, val, test)`` counts, each fraction of ``n_samples`` rounded up as sklearn does.

    The test points are cut first and the validation points from the rest, so
    with too few samples the validation split, then the training split, comes
    up short: the counts are what the cuts would leave, never negative.
    """
    check_fraction("test_size", test_size)
    check_fraction("val_size", val_size, zero_allowed=True)
    n_test = math.ceil(test_size * n_samples)
    n_val = min(math.ceil(val_size * n_samples), n_samples - n_test)
    n_train = n_samples - n_test - n_val
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    if val_size == 0:
        del sizes["val"]
    check_not_empty(
        f"test_size={test_size} and val_size={val_size} of n_samples={n_samples}",
        sizes,
        "use more samples, or a smaller test_size or val_size",
    )
    return n_train, n_val, n_test


def shuffled_split(
    X: Tensor, y: Tensor, test_size: float, val_size: float, random_state: int
) -> Splits:
    """``train_test_split`` of ``X, y``, then of its training part when ``val_size`` > 0.

    The test split is the same whatever ``val_size`` is: the validation points
    come out of the training points. Both cuts are seeded by ``random_state``.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    _, n_val, n_test = shuffled_split_sizes(len(X), test_size, val_size)
    pairs = TensorPairs(X, y)

    def cut(positions: np.ndarray) -> Pair:
        return pairs[torch.from_numpy(positions)]

    # Splitting positions cuts X and y as train_test_split(X, y) would, and keeps tensors.
    # An array of positions, not a range: sklearn then cuts it without a Python list,
    # and torch indexes with it without converting one: 0.1 s instead of 0.7 s for 1M points.
    positions = np.arange(len(X))
    rest, test = train_test_split(positions, test_size=n_test, random_state=random_state)
    if n_val == 0:
        return Splits(cut(rest), None, cut(test))
    train, val = train_test_split(rest, test_size=n_val, random_state=random_state)
    return Splits(cut(train), cut(val), cut(test))


class SplitDataModule(L.LightningDataModule, ABC):
    """A train, a validation and a test split, made once in ``setup``.

    Validation (every epoch, and the choice of ``best.ckpt``) uses the
    validation split; ``test`` and ``predict`` use the test split, which
    training and the choice of checkpoint never see. A subclass that makes no
    validation split (the course's two-way split) validates on the test split.
    Subclasses only say how the splits are made, from their own arguments and
    never from the global RNG.
    """

    train_set: TensorPairs
    val_set: TensorPairs
    test_set: TensorPairs

    def __init__(self, batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        check_batch_size(batch_size)
        # Called here, it also records the arguments of every subclass's __init__
        # (Lightning reads them from the calling frames): one place for all
        # datamodules. The seed is kept, so a resume can check it shuffles the same way.
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.seed = seed

    @abstractmethod
    def make_splits(self) -> Splits:
        """The train, validation (or ``None``) and test splits."""

    def setup(self, stage: str) -> None:
        if not hasattr(self, "train_set"):
            splits = self.make_splits()
            self.train_set = TensorPairs(*splits.train)
            self.test_set = TensorPairs(*splits.test)
            self.val_set = self.test_set if splits.val is None else TensorPairs(*splits.val)

    def __str__(self) -> str:
        """Lightning's summary of the loaders, ``{Train dataloader: size=800}`` and so on.

        Lightning's own reads the sizes of ``DataLoader``s only; the training,
        validation and test loaders are ``BatchLoader``s. Before ``setup``
        there is no split: ``None``.
        """
        splits = {
            "Train": "train_set",
            "Validation": "val_set",
            "Test": "test_set",
            "Predict": "test_set",
        }
        lines = []
        for name, split in splits.items():
            dataset = getattr(self, split, None)
            size = "None" if dataset is None else f"size={len(dataset)}"
            lines.append(f"{{{name} dataloader: {size}}}")
        return os.linesep.join(lines)

    @property
    def validates_on_test(self) -> bool:
        """Whether validation uses the test split (the course's two-way split)."""
        self.setup("fit")
        return self.val_set is self.test_set

    @property
    def _device(self) -> torch.device:
        return torch.device("cpu") if self.trainer is None else self.trainer.strategy.root_device

    def _loader(self, dataset: TensorPairs, shuffle: bool) -> Loader:
        """Batches of ``dataset``, cut where the model runs.

        On a GPU the split is copied there once, when the loader is made, and
        every batch is a slice of that copy: no per-batch host-to-device copy.
        The splits themselves stay on the CPU for plots and for the next run.
        """
        rank, replicas, device = 0, 1, self._device
        if self.trainer is not None:
            rank, replicas = self.trainer.global_rank, self.trainer.world_size
            if getattr(self.trainer, "overfit_batches", 0):
                return self._sequential_loader(dataset)
        sampler = EpochBatchSampler(
            len(dataset),
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            rank=rank,
            num_replicas=replicas,
            device=device,
        )
        return BatchLoader(dataset.to(device), sampler)

    def train_dataloader(self) -> Loader:
        return self._loader(self.train_set, shuffle=self.batch_size is not None)

    def val_dataloader(self) -> Loader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> Loader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test split in order, through a ``DataLoader``.

        Lightning records which samples each batch of a ``DataLoader`` holds and
        hands their positions to a ``BasePredictionWriter`` callback; it cannot
        for other loaders. Predicting runs once, so the loader's per-batch cost
        does not matter here. Its batches are copies (``index_select``), not
        views, of the split, so the predictions ``predict_step`` returns hold a
        copy of the test split's features and targets.
        """
        return self._sequential_loader(self.test_set)

    def _sequential_loader(self, dataset: TensorPairs) -> DataLoader:
        return sequential_loader(dataset.to(self._device), self.batch_size or len(dataset))
