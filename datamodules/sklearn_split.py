"""What circles, moons and blobs share: an sklearn toy dataset split by ``train_test_split``."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from datamodules.split import SplitDataModule

if TYPE_CHECKING:
    import numpy as np


class SklearnSplitDataModule(SplitDataModule):
    """``n_samples`` points from an ``sklearn.datasets`` generator, split by ``train_test_split``.

    Generator and split are both seeded by ``random_state``, as in the notes.
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
        batch_size: int | None,
        seed: int,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if n_samples <= 0:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        if not 0 < test_size < 1:
            raise ValueError(f"test_size must lie in (0, 1), got {test_size}")
        if math.ceil(test_size * n_samples) >= n_samples:
            raise ValueError(
                f"test_size={test_size} of n_samples={n_samples} leaves a split empty;"
                " use more samples"
            )
        # Called here, it also records the arguments of the subclass's __init__;
        # the seed is kept too, so a resume can check it shuffles the same way.
        self.save_hyperparameters()
        self.n_samples = n_samples
        self.random_state = random_state
        self.test_size = test_size

    @abstractmethod
    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole dataset ``X, y`` from the generator, seeded by ``random_state``."""

    def make_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        from sklearn.model_selection import train_test_split

        X, y = self.generate()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=self.test_size, random_state=self.random_state
        )
        return (
            torch.from_numpy(X_train).type(torch.float),
            torch.from_numpy(y_train).type(self.target_dtype),
            torch.from_numpy(X_test).type(torch.float),
            torch.from_numpy(y_test).type(self.target_dtype),
        )
