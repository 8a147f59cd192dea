"""Batches cut from in-memory tensors, in an order that can be replayed exactly.

The data of these datasets fit in memory as two tensors, so a batch is one
indexing operation (``features[index]``), not a per-sample collate. The shuffle
order of an epoch is a pure function of ``(seed, epoch)``: a resumed run sees
the same batches as an uninterrupted one, whatever the global RNG did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

Index = Tensor | slice


class TensorPairs(Dataset[tuple[Tensor, Tensor]]):
    """``(features, targets)`` indexed by a whole batch of positions at once."""

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        if len(features) != len(targets):
            raise ValueError(f"{len(features)} features but {len(targets)} targets")
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: Index) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if isinstance(index, slice):
            return self.features[index], self.targets[index]
        # The same rows as features[index], in a third of the time on a CPU.
        return self.features.index_select(0, index), self.targets.index_select(0, index)

    def __getitems__(self, positions: Index | list[int]) -> tuple[Tensor, Tensor]:
        """A whole batch, as the ``DataLoader`` asks for it: what its batch sampler yielded.

        ``EpochBatchSampler`` yields a slice or an index tensor; a loader's own
        ``BatchSampler`` a list of positions.
        """
        if isinstance(positions, list):
            # In order, as predict asks for them: a slice, with no list copied to the device.
            first, last = positions[0], positions[-1]
            if positions == list(range(first, last + 1)):
                return self[slice(first, last + 1)]
            positions = torch.tensor(positions, device=self.features.device)
        return self[positions]

    def to(self, device: torch.device) -> TensorPairs:
        """The pairs on ``device``: itself when already there, else one copy made there."""
        if self.features.device == device:
            return self
        return TensorPairs(self.features.to(device), self.targets.to(device))


class EpochBatchSampler(Sampler[Index]):
    """Yields one index per batch: a slice in order, or a shuffled index tensor.

    ``batch_size=None`` gives the whole split as one batch (full-batch gradient
    descent, as in the notes). With ``shuffle=True`` the permutation of epoch
    ``e`` comes from a generator seeded with ``seed`` and ``e``; Lightning calls
    ``set_epoch`` before every epoch. Under data parallelism each of
    ``num_replicas`` ranks takes its own contiguous share of every batch, so no
    sample is duplicated or dropped, even when the batch does not divide evenly.

    The permutation is drawn on ``device``, where the data are: on a GPU the
    host neither computes it nor copies it over, and never waits for the
    device. The same ``(seed, epoch)`` gives the same order on every run on the
    same kind of device; a GPU's order differs from a CPU's.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int | None,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        num_replicas: int = 1,
        device: torch.device | None = None,
    ) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size or num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.num_replicas = num_replicas
        self.device = device or torch.device("cpu")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> EpochBatchSampler:
        """Itself: Lightning sets the epoch of a ``DataLoader``'s ``batch_sampler.sampler``.

        That is where torch's own ``BatchSampler`` keeps the sampler that orders the epoch.
        """
        return self

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def global_batch_size(self, batch_idx: int) -> int:
        """The size of batch ``batch_idx`` before it is shared among the ranks."""
        return min(self.batch_size, self.num_samples - batch_idx * self.batch_size)

    def _share(self, start: int, stop: int) -> tuple[int, int]:
        size = stop - start
        return (
            start + self.rank * size // self.num_replicas,
            start + (self.rank + 1) * size // self.num_replicas,
        )

    def __iter__(self) -> Iterator[Index]:
        order = None
        if self.shuffle:
            generator = torch.Generator(self.device)
            generator.manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator, device=self.device)
        for start in range(0, self.num_samples, self.batch_size):
            lo, hi = self._share(start, min(start + self.batch_size, self.num_samples))
            yield slice(lo, hi) if order is None else order[lo:hi]


def _as_batch(pair: Any) -> tuple[Tensor, Tensor]:
    return pair


def sequential_loader(dataset: TensorPairs, batch_size: int) -> DataLoader:
    """Batches in order, drawn through the loader's own ``SequentialSampler``.

    Lightning can see and replace this loader's sampler, as it does in two
    places: ``--trainer.overfit_batches`` replaces any other sampler with a
    ``SequentialSampler`` of single positions (a loader that already has one
    is left as it is, so its batches keep their size), and ``predict`` wraps
    it to record the positions of each batch.
    """
    return DataLoader(
        dataset, batch_size=batch_size, collate_fn=_as_batch, generator=torch.Generator()
    )


def epoch_batches(
    dataset: TensorPairs,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    trainer: L.Trainer | None,
) -> DataLoader:
    """A ``DataLoader`` of ``dataset``, cut by ``EpochBatchSampler`` where the model runs.

    On a GPU the split is copied there once, when the loader is made, and
    every batch is a slice of that copy: no per-batch host-to-device copy.
    The splits themselves stay on the CPU for plots and for the next run.
    Under data parallelism each rank gets its share of every batch.
    ``--trainer.overfit_batches`` gets Lightning's own sequential batches.
    """
    rank, replicas, device = 0, 1, torch.device("cpu")
    if trainer is not None:
        rank, replicas = trainer.global_rank, trainer.world_size
        device = trainer.strategy.root_device
        if getattr(trainer, "overfit_batches", 0):
            return sequential_loader(dataset.to(device), batch_size or len(dataset))
    sampler = EpochBatchSampler(
        len(dataset),
        batch_size,
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        num_replicas=replicas,
        device=device,
    )
    # The sampler yields a slice or an index tensor per batch, which TensorPairs takes whole.
    batches: Any = sampler
    # A generator of its own: each iterator draws a seed from it, not from the global RNG
    # that dropout draws from (a resumed epoch must draw what the uninterrupted one drew).
    return DataLoader(
        dataset.to(device),
        batch_sampler=batches,
        collate_fn=_as_batch,
        generator=torch.Generator(),
    )


def prediction_batches(
    dataset: TensorPairs, batch_size: int | None, trainer: L.Trainer | None
) -> DataLoader:
    """The split in order, on the model's device, through the loader's own ``BatchSampler``.

    Lightning records which samples each batch of such a loader holds and
    hands their positions to a ``BasePredictionWriter`` callback. Predicting
    runs once, so its per-batch cost does not matter here.
    """
    device = torch.device("cpu") if trainer is None else trainer.strategy.root_device
    return sequential_loader(dataset.to(device), batch_size or len(dataset))
