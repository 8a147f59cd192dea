"""How the command line reads the Trainer's options that take a count or a fraction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union, get_args, get_origin


def counts_before_fractions(function: Callable[..., Any]) -> None:
    """Makes ``--trainer.limit_val_batches 1`` one batch, as ``limit_val_batches=1`` is in Python.

    The Trainer annotates these options ``Optional[Union[int, float]]``: an int
    counts batches, a float is a fraction of them. ``typing`` caches
    ``Optional[X]`` by ``X``, and ``Union[float, int]`` equals
    ``Union[int, float]``, so the Trainer gets whichever order was built last:
    ``lightning.fabric`` builds ``Optional[Union[float, int]]`` just before the
    Trainer is defined. jsonargparse tries the types in order, and would parse
    ``1`` as ``1.0``, every batch (Lightning-AI/pytorch-lightning#21259). Each
    such annotation of ``function`` is put back in the int-first order.
    """
    annotations = function.__annotations__
    for name, hint in annotations.items():
        if get_origin(hint) is not Union:
            continue
        types = get_args(hint)
        if float in types and int in types and types.index(float) < types.index(int):
            ordered = (int, float, *(t for t in types if t not in (int, float)))
            # Cached by that exact tuple, so its order holds.
            annotations[name] = Union[ordered]  # noqa: UP007 (X | Y cannot take a tuple)
