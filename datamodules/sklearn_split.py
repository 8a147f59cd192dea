"""What circles, moons and blobs share: an sklearn toy dataset split by ``train_test_split``."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from datamodules.batches import TensorPairs
from datamodules.split import Pair, SplitDataModule, Splits
from datamodules.split_checks import check_fraction, check_not_empty

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
        standardize: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, standardize=standardize)
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
