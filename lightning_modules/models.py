"""The plain ``nn.Module``s of notes §2.2, §2.6 and §3, named as in the course.

Each model keeps its constructor arguments as attributes of the same name, so
a checkpoint can record the architecture as plain data (see ``net_spec``).
"""

from __future__ import annotations

import torch
from torch import nn


class LinearRegressionModel(nn.Module):
    """Notes §2.2: ``y = weights * x + bias`` with two hand-made ``nn.Parameter``s."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(1, dtype=torch.float))
        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x + self.bias


class LinearRegressionModelV2(nn.Module):
    """Notes §2.6: the same line, with ``nn.Linear`` holding the parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class CircleModelV0(nn.Module):
    """Two stacked linear layers (2 → 5 → 1): still a straight decision boundary."""

    def __init__(self, in_features: int = 2, hidden_units: int = 5, out_features: int = 1) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden_units = hidden_units
        self.out_features = out_features
        self.layer_1 = nn.Linear(in_features, hidden_units)
        self.layer_2 = nn.Linear(hidden_units, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_2(self.layer_1(x))


class CircleModelV1(nn.Module):
    """Deeper (2 → 10 → 10 → 1) but with no activation, so still linear."""

    def __init__(self, in_features: int = 2, hidden_units: int = 10, out_features: int = 1) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden_units = hidden_units
        self.out_features = out_features
        self.layer_1 = nn.Linear(in_features, hidden_units)
        self.layer_2 = nn.Linear(hidden_units, hidden_units)
        self.layer_3 = nn.Linear(hidden_units, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_3(self.layer_2(self.layer_1(x)))


class CircleModelV2(nn.Module):
    """V1 with ReLU between the layers: the non-linearity that can bend around a circle.

    ``dropout`` (0 by default, as in the course) adds ``nn.Dropout`` after each ReLU.
    """

    def __init__(
        self,
        in_features: int = 2,
        hidden_units: int = 10,
        out_features: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden_units = hidden_units
        self.out_features = out_features
        self.dropout = dropout
        self.layer_1 = nn.Linear(in_features, hidden_units)
        self.layer_2 = nn.Linear(hidden_units, hidden_units)
        self.layer_3 = nn.Linear(hidden_units, out_features)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.relu(self.layer_1(x)))
        x = self.drop(self.relu(self.layer_2(x)))
        return self.layer_3(x)
