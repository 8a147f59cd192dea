"""The plain side: the notes' §2.6 loop over in-memory tensors, with no Lightning.

Same nets, losses, optimizers, data and validation cadence (every epoch) as
the project's configs. Mini-batches, where asked for, are a ``randperm`` per
epoch cut by index slicing; validation walks the held-out split in order.

The nets are written out here, as in the notes, rather than imported from
``lightning_modules``: importing that package loads Lightning and torchmetrics,
which would blur the memory and start-up comparisons.

Run as a script (``python benchmarks/plain.py circles --n-samples 1000000
--batch-size 1024``) it is one whole plain process, for the memory comparison.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

SEED = 42


class LinearRegressionModelV2(nn.Module):
    """Notes §2.6.2.1."""

    def __init__(self) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_layer(x)


class CircleModelV2(nn.Module):
    """The course's circle net: 2 → 10 → 10 → 1 with ReLU, as the project's default."""

    def __init__(self, in_features: int = 2, hidden_units: int = 10) -> None:
        super().__init__()
        self.layer_1 = nn.Linear(in_features, hidden_units)
        self.layer_2 = nn.Linear(hidden_units, hidden_units)
        self.layer_3 = nn.Linear(hidden_units, 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.layer_3(self.relu(self.layer_2(self.relu(self.layer_1(x)))))


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


def _batches(
    X: Tensor, y: Tensor, batch_size: int | None, shuffle: bool
) -> Iterator[tuple[Tensor, Tensor]]:
    if batch_size is None:
        yield X, y
    elif shuffle:
        order = torch.randperm(len(X), device=X.device)
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
    device: str = "cpu",
) -> float:
    """The notes' loop, training and validating every epoch; returns its seconds.

    On a GPU the splits are copied there once (inside the timed part, as the
    project does) and the batches are slices of that copy.
    """
    squeeze = data.y_train.dim() == 1  # one logit per sample against 0/1 labels
    torch.manual_seed(SEED)
    start = time.perf_counter()
    data = Splits(*(t.to(device) for t in (data.X_train, data.y_train, data.X_test, data.y_test)))
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
                loss_fn(test_pred.squeeze(dim=1) if squeeze else test_pred, y)
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def fit_linear(data: Splits, epochs: int = 200) -> float:
    """configs/linear.yaml: L1 loss, SGD at lr 0.01, full batch."""
    torch.manual_seed(SEED)
    model = LinearRegressionModelV2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return fit(model, nn.L1Loss(), optimizer, data, epochs)


def fit_circles(
    data: Splits, epochs: int, batch_size: int | None = None, device: str = "cpu"
) -> float:
    """configs/circles_course.yaml: BCEWithLogits, SGD at lr 0.1."""
    torch.manual_seed(SEED)
    model = CircleModelV2().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return fit(model, nn.BCEWithLogitsLoss(), optimizer, data, epochs, batch_size, device)


def main() -> None:
    parser = argparse.ArgumentParser(description="One plain circles fit, as a whole process.")
    parser.add_argument("task", choices=["circles"])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    seconds = fit_circles(circles_data(args.n_samples), args.epochs, args.batch_size)
    print(f"fit {seconds:.3f}s")


if __name__ == "__main__":
    main()
