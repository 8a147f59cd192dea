"""What a module's checkpoint records, and how it is loaded back: plain data only.

A checkpoint is untrusted data, loaded with ``weights_only=True``, which
refuses any pickled object. So the net, the optimizer and the schedule are
recorded as plain data (``net_spec``, ``optim_spec``) and rebuilt from it, and
a net's class is imported only from the project's models or a module the
caller trusts. A learning rate given on resume applies over the checkpoint's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from typing_extensions import Self

from lightning_modules.net_spec import build_net, check_net_matches, check_trusted, net_spec
from lightning_modules.optim_spec import optimizer_class, scheduler_spec


class PlainDataCheckpoints(L.LightningModule):
    """Records a module's net, optimizer and schedule as plain data, and loads them back safely."""

    lr: float

    def record_as_plain_data(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: str,
        lr: float,
        optimizer_args: Any,
        lr_scheduler: Any,
    ) -> None:
        """Checks the optimizer and schedule, and puts their plain-data specs in ``hparams``.

        Sets ``net`` (built from a spec when given one), ``optimizer_class``,
        ``optimizer_args`` and ``scheduler``, which ``configure_optimizers`` uses.
        """
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.optimizer_class = optimizer_class(optimizer, lr, optimizer_args or {})
        self.net = build_net(net) if isinstance(net, Mapping) else net
        self.hparams["net"] = net_spec(self.net)
        self.optimizer_args = dict(optimizer_args or {})
        self.hparams["optimizer_args"] = self.optimizer_args
        self.scheduler = None if lr_scheduler is None else scheduler_spec(lr_scheduler)
        self.hparams["lr_scheduler"] = self.scheduler

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The module is recorded once: its arguments, the net as its spec.

        LightningCLI adds the module's class path and its own instantiator,
        which would rebuild the module through jsonargparse, importing every
        class path in the arguments, trusted or not.
        """
        for key in ("_class_path", "_instantiator"):
            checkpoint.get("hyper_parameters", {}).pop(key, None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A learning rate given when resuming applies, rather than the checkpoint's.

        With a scheduler it becomes the schedule's base rate, and the current
        rate is scaled by the same factor: a schedule proportional to its base
        (StepLR, ExponentialLR, CosineAnnealingLR with ``eta_min`` 0) goes on
        as if it had started from the new rate.
        """
        schedulers = checkpoint.get("lr_schedulers", [])
        if self.scheduler is None or not schedulers:
            for optimizer_state in checkpoint.get("optimizer_states", []):
                for group in optimizer_state["param_groups"]:
                    group["lr"] = self.lr
            return
        factor = self.lr / schedulers[0]["base_lrs"][0]
        for scheduler_state in schedulers:
            scheduler_state["base_lrs"] = [lr * factor for lr in scheduler_state["base_lrs"]]
            scheduler_state["_last_lr"] = [lr * factor for lr in scheduler_state["_last_lr"]]
        for optimizer_state in checkpoint.get("optimizer_states", []):
            for group in optimizer_state["param_groups"]:
                group["lr"] *= factor
                group["initial_lr"] *= factor

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = "cpu",
        trust: Sequence[str] = (),
        **kwargs: Any,
    ) -> Self:
        """Rebuilds the module, its net included, from a checkpoint; never unpickles code.

        ``weights_only=True`` is always used: a checkpoint whose pickle would run
        code is refused by torch before anything in it runs. The net is built
        from its spec only if its class comes from the project's models or from
        a module named in ``trust`` (``["my_nets"]`` for a net of your own):
        importing a module runs its code. The recorded net must fit the
        checkpoint's weights before it is built (``check_net_matches``).
        """
        if kwargs.pop("weights_only", True) is not True:
            raise ValueError("checkpoints are only loaded with weights_only=True")
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        spec = checkpoint.get("hyper_parameters", {}).get("net")
        if isinstance(spec, Mapping) and "net" not in kwargs:
            check_trusted(spec, trust)
            check_net_matches(spec, checkpoint["state_dict"], trust)
            kwargs["net"] = build_net(spec, trust)
        # None: a checkpoint written before on_save_checkpoint dropped the
        # CLI's instantiator still builds the module by calling the class.
        return super().load_from_checkpoint(
            checkpoint_path,
            map_location=map_location,
            weights_only=True,
            _instantiator=None,
            **kwargs,
        )
