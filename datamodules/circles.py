"""Notes §3.1: two noisy concentric circles from ``sklearn.datasets.make_circles``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from datamodules.sklearn_split import SklearnSplitDataModule

if TYPE_CHECKING:
    import numpy as np


class CirclesDataModule(SklearnSplitDataModule):
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
        val_size: float = 0.0,
        batch_size: int | None = None,
        seed: int = 0,
        standardize: bool = False,
    ) -> None:
        super().__init__(
            n_samples, random_state, test_size, val_size, batch_size, seed, standardize
        )
        if noise < 0:
            raise ValueError(f"noise must be zero or more, got {noise}")
        self.noise = noise

    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_circles

        return make_circles(self.n_samples, noise=self.noise, random_state=self.random_state)
