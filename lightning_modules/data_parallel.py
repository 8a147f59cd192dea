"""A rank's share of a batch: what data parallelism adds to the training step.

The datamodules cut every batch into one contiguous share per rank
(``datamodules.batches.EpochBatchSampler``), so that several processes train
exactly the model one process trains. The shares differ by at most one
sample, and a batch smaller than the number of ranks leaves some ranks none.
"""

from __future__ import annotations

import lightning as L
from torch import Tensor


def no_share_loss(outputs: Tensor) -> Tensor:
    """The loss of a rank whose share of the batch is empty: zero, with the graph DDP expects."""
    return outputs.sum() * 0.0


def scaled_to_global_batch(
    trainer: L.Trainer, loss: Tensor, batch_idx: int, local_size: int
) -> Tensor:
    """``loss`` weighted so that data-parallel gradients are those of the global batch's mean loss.

    Each rank holds a share of the batch and DDP averages the ranks'
    gradients. The mean of per-rank means is the global mean only when the
    shares are equal; weighting each rank's mean loss by
    ``local_size * world_size / global_size`` makes it exact for any split.
    The global size is the sampler's arithmetic, known on the host: no copy
    to the device and no collective in the step. One process: ``loss`` itself.
    """
    if trainer.world_size == 1:
        return loss
    sampler = trainer.train_dataloader.batch_sampler  # type: ignore[union-attr]
    return loss * (local_size * trainer.world_size / sampler.global_batch_size(batch_idx))
