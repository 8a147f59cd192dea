"""``--model.compile``: the net run through ``torch.compile``, for speed only.

A compiled and an eager run train the same model, and each resumes the
other's checkpoints: ``nn.Module.compile`` compiles in place and keeps the
net's parameter names (no ``_orig_mod.`` in the checkpoint's keys).
"""

from __future__ import annotations

import lightning as L
from torch import nn


def compile_net(module: L.LightningModule, net: nn.Module) -> None:
    """Compiles ``net``, the net of ``module``, in place, with CUDA graphs on a GPU.

    On a GPU the batches have a fixed shape, so CUDA graphs
    (``reduce-overhead``) replay each step's kernels in one launch.
    """
    on_gpu = module.trainer.strategy.root_device.type == "cuda"
    net.compile(mode="reduce-overhead" if on_gpu else None)
