"""The random number generators a resumed run must continue, as plain data, one set per rank.

Lightning checkpoints weights, optimizer and loop counters but not RNG state,
so a model with dropout would draw different masks after a resume. States are
kept as tensors, ints and strings only, so checkpoints load with
``weights_only=True``.

Every rank of a data-parallel fit is seeded alike, so each would draw the same
dropout masks for its share of a batch. ``offset_by_rank`` gives each rank its
own streams before the first step: rank 0 keeps the seed's (one process is
unchanged), rank r reseeds every generator with stream r of the seed. A
checkpoint holds each rank's states, in rank order (``RunCheckpoint`` gathers
them). On a resume rank r takes state r; a rank the saving run did not have
(a resume with more processes) takes rank 0's, offset by its rank as at a
fit's start; states of ranks the resume does not have are left unused.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_states() -> dict[str, Any]:
    """This process's generators: CPU, Python, NumPy and, if used, its own CUDA device's."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
    }
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def offset_by_rank(rank: int) -> None:
    """Reseeds this rank's generators with stream ``rank`` of their seed; rank 0 keeps its own."""
    if rank == 0:
        return
    sequence = np.random.SeedSequence(torch.initial_seed(), spawn_key=(rank,))
    seed = int(sequence.generate_state(1, dtype=np.uint64)[0])
    torch.manual_seed(seed)  # the CPU and every CUDA device
    random.seed(seed)
    np.random.seed(seed % 2**32)


def restore_rng_states(saved: list[dict[str, Any]] | dict[str, Any], rank: int) -> None:
    """Rank ``rank`` continues its own saved states (see above for a rank that has none).

    ``saved`` may be one dict: a checkpoint of the project before states were
    kept per rank, whose ``cuda`` entry lists every device's state.
    """
    by_rank = saved if isinstance(saved, list) else [saved]
    states = by_rank[rank] if rank < len(by_rank) else by_rank[0]
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, list):
            device = torch.cuda.current_device()
            cuda = cuda[device] if device < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)
    if rank >= len(by_rank):
        offset_by_rank(rank)
