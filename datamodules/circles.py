"""Notes §3.1: two noisy concentric circles from ``sklearn.datasets.make_circles``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datamodules.split import SplitDataModule


class CirclesDataModule(SplitDataModule):
    """``make_circles`` split by ``train_test_split``, both seeded by ``random_state``.

    Features are float32 of shape ``(N, 2)``; targets are float32 labels 0/1 of
    shape ``(N,)``, ready for ``BCEWithLogitsLoss``.
    """

    def __init__(
        self,
        n_samples: int = 1000,
        noise: float = 0.03,
        random_state: int = 42,
        test_size: float = 0.2,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if n_samples <= 0:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        if noise < 0:
            raise ValueError(f"noise must be zero or more, got {noise}")
        if not 0 < test_size < 1:
            raise ValueError(f"test_size must lie in (0, 1), got {test_size}")
        if math.ceil(test_size * n_samples) >= n_samples:
            raise ValueError(
                f"test_size={test_size} of n_samples={n_samples} leaves a split empty;"
                " use more samples"
            )
        self.save_hyperparameters(ignore=["seed"])
        self.n_samples = n_samples
        self.noise = noise
        self.random_state = random_state
        self.test_size = test_size

    def make_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        from sklearn.datasets import make_circles
        from sklearn.model_selection import train_test_split

        X, y = make_circles(self.n_samples, noise=self.noise, random_state=self.random_state)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=self.test_size, random_state=self.random_state
        )
        return (
            torch.from_numpy(X_train).type(torch.float),
            torch.from_numpy(y_train).type(torch.float),
            torch.from_numpy(X_test).type(torch.float),
            torch.from_numpy(y_test).type(torch.float),
        )
