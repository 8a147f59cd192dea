"""``--data.standardize``: each feature scaled as scikit-learn's ``StandardScaler`` scales it.

The mean and standard deviation come from the training split only
(``datamodules.feature_scaling``), once, when a fresh fit sets the module up.
They are buffers of the module, so the checkpoint keeps them: a resume,
``test``, ``predict``, the plots and the export use the saved numbers, never
fresh ones, and everything around the module (the data, ``predictions.csv``,
the plots, new inputs, the exported ONNX graph) is in the data's own units.
Without ``--data.standardize`` the module has no such buffers and its
checkpoints are what they always were.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import Tensor

MEAN, STD = "input_mean", "input_std"


class InputScaling(L.LightningModule):
    """Scales the inputs by the training split's statistics, where the data ask for it."""

    def scaled(self, features: Tensor) -> Tensor:
        """``(features - mean) / std``, or ``features`` themselves when not standardized."""
        if not hasattr(self, MEAN):
            return features
        mean: Tensor = getattr(self, MEAN)
        std: Tensor = getattr(self, STD)
        return (features - mean) / std

    def setup(self, stage: str) -> None:
        scaling = getattr(getattr(self.trainer, "datamodule", None), "feature_scaling", None)
        statistics = scaling() if callable(scaling) else None
        if statistics is not None and not hasattr(self, MEAN):
            # A resume or a checkpoint loaded next puts the saved numbers over these.
            self._register(*statistics)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict", {})
        if MEAN in state and not hasattr(self, MEAN):
            self._register(state[MEAN], state[STD])
        super().on_load_checkpoint(checkpoint)

    def _register(self, mean: Tensor, std: Tensor) -> None:
        device = next(self.parameters()).device
        self.register_buffer(MEAN, mean.detach().clone().float().to(device))
        self.register_buffer(STD, std.detach().clone().float().to(device))
