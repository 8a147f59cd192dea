"""A net of your own, outside the project's packages, for the README's "Extend it".

Any ``nn.Module`` trains; to be recorded in a checkpoint, it keeps each
constructor argument as an attribute of the same name.
"""

from __future__ import annotations

import torch
from torch import nn


class DeeperCircleModel(nn.Module):
    """``layers`` hidden layers of ``hidden_units``, each followed by ReLU, then one logit."""

    def __init__(
        self, in_features: int = 2, hidden_units: int = 16, layers: int = 3, out_features: int = 1
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden_units = hidden_units
        self.layers = layers
        self.out_features = out_features
        blocks: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden_units), nn.ReLU()]
            width = hidden_units
        self.body = nn.Sequential(*blocks, nn.Linear(width, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
