"""What circles, moons and blobs share: an sklearn toy dataset split by ``train_test_split``."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from datamodules.split import SplitDataModule, Splits, shuffled_split, shuffled_split_sizes

if TYPE_CHECKING:
    import numpy as np


class SklearnSplitDataModule(SplitDataModule):
    """``n_samples`` points from an ``sklearn.datasets`` generator, split by ``train_test_split``.

    Generator and split are both seeded by ``random_state``, as in the notes.
    ``test_size`` of the points test; ``val_size`` more validate, taken from
    the rest, so the test split is the same with or without them. With
    ``val_size=0`` (the course's two-way split) the test split also validates.
    Features are float32 of shape ``(N, n_features)``; targets have shape
    ``(N,)`` and the subclass's ``target_dtype``: float32 0/1 labels for
    ``BCEWithLogitsLoss``, int64 class indices for ``CrossEntropyLoss``.
    Subclasses check their own arguments and say how the points are generated.
    """

    target_dtype: ClassVar[torch.dtype] = torch.float

    def __init__(
        self,
        n_samples: int,
        random_state: int,
        test_size: float,
        val_size: float,
        batch_size: int | None,
        seed: int,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if n_samples <= 0:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        shuffled_split_sizes(n_samples, test_size, val_size)
        self.n_samples = n_samples
        self.random_state = random_state
        self.test_size = test_size
        self.val_size = val_size

    @abstractmethod
    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole dataset ``X, y`` from the generator, seeded by ``random_state``."""

    def make_splits(self) -> Splits:
        X, y = self.generate()
        return shuffled_split(
            torch.from_numpy(X).type(torch.float),
            self.as_targets(y),
            self.test_size,
            self.val_size,
            self.random_state,
        )

    def as_targets(self, y: np.ndarray) -> Tensor:
        """The targets as the loss expects them, of the class's ``target_dtype``."""
        return torch.from_numpy(y).type(self.target_dtype)
