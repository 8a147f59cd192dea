"""The plain side: the notes' §2.6 loop over in-memory tensors, no Lightning.

Same nets, losses, optimizers, data and validation cadence (every epoch) as the
project's configs. Mini-batches, where asked for, are a ``randperm`` per epoch
cut by index slicing; validation walks the held-out split in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lightning_modules.models import CircleModelV2, LinearRegressionModelV2

SEED = 42


@dataclass
class Splits:
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor

    @property
    def n_train(self) -> int:
        return len(self.X_train)


def linear_data(weight: float = 0.7, bias: float = 0.3, step: float = 0.02) -> Splits:
    """Notes §2.6.2: 50 points on ``y = 0.7x + 0.3``, the first 80% to train."""
    X = torch.arange(0, 1, step).unsqueeze(dim=1)
    y = weight * X + bias
    train_split = int(0.8 * len(X))
    return Splits(X[:train_split], y[:train_split], X[train_split:], y[train_split:])


def circles_data(n_samples: int = 1000) -> Splits:
    """Notes §3.1: ``make_circles`` split by ``train_test_split``, both with ``random_state=42``."""
    from sklearn.datasets import make_circles
    from sklearn.model_selection import train_test_split

    X, y = make_circles(n_samples, noise=0.03, random_state=SEED)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=SEED)
    return Splits(
        torch.from_numpy(X_train).type(torch.float),
        torch.from_numpy(y_train).type(torch.float),
        torch.from_numpy(X_test).type(torch.float),
        torch.from_numpy(y_test).type(torch.float),
    )


def _batches(X: Tensor, y: Tensor, batch_size: int | None, shuffle: bool):
    if batch_size is None:
        yield X, y
        return
    if shuffle:
        order = torch.randperm(len(X))
        for start in range(0, len(X), batch_size):
            index = order[start : start + batch_size]
            yield X[index], y[index]
    else:
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size], y[start : start + batch_size]


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Splits,
    epochs: int,
    batch_size: int | None = None,
) -> float:
    """The notes' loop; returns its wall-clock seconds."""
    squeeze = data.y_train.dim() == 1  # logits (N, 1) against labels (N,)
    torch.manual_seed(SEED)
    start = time.perf_counter()
    for _epoch in range(epochs):
        model.train()
        for X, y in _batches(data.X_train, data.y_train, batch_size, shuffle=True):
            y_pred = model(X)
            loss = loss_fn(y_pred.squeeze(dim=1) if squeeze else y_pred, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            for X, y in _batches(data.X_test, data.y_test, batch_size, shuffle=False):
                test_pred = model(X)
                test_loss = loss_fn(test_pred.squeeze(dim=1) if squeeze else test_pred, y)
    elapsed = time.perf_counter() - start
    del loss, test_loss
    return elapsed


def fit_linear(data: Splits, epochs: int = 200) -> float:
    """configs/linear.yaml: LinearRegressionModelV2, L1 loss, SGD lr 0.01, full batch."""
    torch.manual_seed(SEED)
    model = LinearRegressionModelV2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return fit(model, nn.L1Loss(), optimizer, data, epochs)


def fit_circles(data: Splits, epochs: int, batch_size: int | None = None) -> float:
    """configs/circles_course.yaml: CircleModelV2, BCEWithLogits, SGD lr 0.1."""
    torch.manual_seed(SEED)
    model = CircleModelV2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return fit(model, nn.BCEWithLogitsLoss(), optimizer, data, epochs, batch_size)
