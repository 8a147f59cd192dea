"""Every private part of Lightning the project uses, and every patch of its API, in one place.

Each is checked by ``changed_private_parts()``, which ``tests/test_lightning_private.py``
runs: after a Lightning upgrade that changes one, that test fails with one
line naming it. Nothing outside this module touches a name of Lightning's
that starts with an underscore.

- ``LightningCLI._parse_ckpt_path``: the CLI's step that reads ``--ckpt_path``
  before the classes are built, replaced (``ResolvesCkptPath``).
- ``LightningCLI.subcommands``: a static method, made one of the instance
  (``ResolvesCkptPath.offered_subcommands``).
- ``Trainer._checkpoint_connector.dump_checkpoint``: a checkpoint built
  without writing it (``dump_checkpoint``).
- ``Trainer.__init__.__annotations__``: the count-or-fraction options put
  back in int-first order (``counts_before_fractions``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.trainer.connectors.checkpoint_connector import _CheckpointConnector


class ResolvesCkptPath(LightningCLI):
    """LightningCLI whose ``--ckpt_path`` step and offered subcommands a subclass decides.

    LightningCLI parses the command line, then (``_parse_ckpt_path``) loads
    the checkpoint's hyperparameters over the configured model's arguments.
    Here ``resolve_ckpt_path`` runs instead, at the same moment, before any
    class is built. ``subcommands`` is a static method in LightningCLI;
    ``offered_subcommands`` sees the instance, so the command line can choose.
    """

    def _parse_ckpt_path(self) -> None:
        self.resolve_ckpt_path()

    def resolve_ckpt_path(self) -> None:
        """Resolves and checks ``--ckpt_path``; LightningCLI's own step is not run."""

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        return self.offered_subcommands(LightningCLI.subcommands())

    def offered_subcommands(self, every: dict[str, set[str]]) -> dict[str, set[str]]:
        """The subcommands LightningCLI builds a parser for: ``every`` one by default."""
        return every


def dump_checkpoint(trainer: L.Trainer, weights_only: bool) -> dict[str, Any]:
    """What ``trainer.save_checkpoint`` would write, built in memory.

    Lightning has no public way to build a checkpoint without writing it.
    """
    connector: _CheckpointConnector = trainer._checkpoint_connector
    return connector.dump_checkpoint(weights_only=weights_only)


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


COUNT_OR_FRACTION = ("limit_train_batches", "limit_val_batches", "overfit_batches")


def changed_private_parts() -> list[str]:
    """One line for each private part above that this Lightning no longer has as used here."""
    changed = []
    cli_init = inspect.getsource(LightningCLI.__init__)
    if "self._parse_ckpt_path()" not in cli_init:
        changed.append(
            "LightningCLI.__init__ no longer calls self._parse_ckpt_path(): --ckpt_path"
            " would not be checked (ResolvesCkptPath)"
        )
    if not isinstance(inspect.getattr_static(LightningCLI, "subcommands"), staticmethod):
        changed.append("LightningCLI.subcommands is no longer a static method (ResolvesCkptPath)")
    elif set(LightningCLI.subcommands()) != {"fit", "validate", "test", "predict"}:
        changed.append("LightningCLI.subcommands() no longer offers fit, validate, test, predict")
    dump = getattr(_CheckpointConnector, "dump_checkpoint", None)
    if dump is None or "weights_only" not in inspect.signature(dump).parameters:
        changed.append(
            "Trainer._checkpoint_connector.dump_checkpoint(weights_only=...) is gone"
            " (dump_checkpoint)"
        )
    hints = L.Trainer.__init__.__annotations__
    for option in COUNT_OR_FRACTION:
        if not {int, float} <= set(get_args(hints.get(option))):
            changed.append(
                f"Trainer's {option} is no longer annotated int or float (counts_before_fractions)"
            )
    return changed
