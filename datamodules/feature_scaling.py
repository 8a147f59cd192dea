"""``--data.standardize``: the training split's per-feature mean and standard deviation.

As scikit-learn's ``StandardScaler`` fits them, on the training rows only:
validation, test and new inputs are scaled by the same numbers, so nothing
of them leaks into training. The module applies them
(``lightning_modules/input_scaling.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def training_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Each column's mean and standard deviation (``ddof=0``); a constant column's is 1."""
    flat = features.reshape(len(features), -1).double()
    mean, std = flat.mean(dim=0), flat.std(dim=0, correction=0)
    return mean.float(), torch.where(std > 0, std, torch.ones_like(std)).float()
