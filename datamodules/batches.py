"""Batches cut from in-memory tensors, in an order that can be replayed exactly.

The data of these datasets fit in memory as two tensors, so a batch is one
indexing operation (``features[index]``), not a per-sample collate. The shuffle
order of an epoch is a pure function of ``(seed, epoch)``: a resumed run sees
the same batches as an uninterrupted one, whatever the global RNG did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

    def __getitems__(self, positions: list[int]) -> tuple[Tensor, Tensor]:
        """A batch asked for as a list of positions, by a loader's own ``BatchSampler``."""
        return self[torch.tensor(positions, device=self.features.device)]

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

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

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


class BatchLoader:
    """The batches of a split: ``dataset[index]`` for each index the sampler yields.

    Lightning takes any iterable with a length as a dataloader. A
    ``DataLoader`` here would add nothing (no workers, no collate: the sampler
    already yields whole batches) but its per-batch bookkeeping, about 40 µs
    per batch on a 2-core CPU, where the notes' whole training step of the
    circles net at batch 1024 takes about 1 ms. Lightning calls the sampler's
    ``set_epoch`` through ``sampler`` before every epoch, as it would a
    ``DataLoader``'s; nothing here draws from the global RNG.
    """

    # What Lightning reads of a DataLoader to tell whether it shuffles: the sampler decides.
    batch_sampler = None

    def __init__(self, dataset: TensorPairs, sampler: EpochBatchSampler) -> None:
        self.dataset = dataset
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for index in self.sampler:
            yield self.dataset[index]


# What a datamodule hands Lightning: its own batches, or a ``DataLoader`` (``sequential_loader``).
Loader = BatchLoader | DataLoader


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
