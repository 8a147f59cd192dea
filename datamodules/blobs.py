"""Exercise: multi-class classification of Gaussian blobs from ``sklearn.datasets.make_blobs``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from datamodules.sklearn_split import SklearnSplitDataModule

if TYPE_CHECKING:
    import numpy as np


class BlobsDataModule(SklearnSplitDataModule):
    """``make_blobs`` split by ``train_test_split``, both seeded by ``random_state``.

    Features are float32 of shape ``(N, n_features)``; targets are int64 class
    indices ``0 .. centers-1`` of shape ``(N,)``, ready for ``CrossEntropyLoss``.
    """

    target_dtype: ClassVar[torch.dtype] = torch.long

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 2,
        centers: int = 4,
        cluster_std: float = 1.5,
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
        if n_features <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        if centers < 2:
            raise ValueError(f"centers must be 2 or more (one per class), got {centers}")
        if n_samples < centers:
            raise ValueError(
                f"n_samples={n_samples} cannot give each of the {centers} centers a point;"
                f" use n_samples {centers} or more"
            )
        if not cluster_std > 0:
            raise ValueError(f"cluster_std must be positive, got {cluster_std}")
        self.n_features = n_features
        self.centers = centers
        self.cluster_std = cluster_std

    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_blobs

        return make_blobs(
            self.n_samples,
            n_features=self.n_features,
            centers=self.centers,
            cluster_std=self.cluster_std,
            random_state=self.random_state,
        )
