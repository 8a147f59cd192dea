"""The notes' training loop (§2.3) once, for every task: the Trainer runs it.

``training_step`` is the forward pass and the loss (steps 1-2 of the notes'
loop); the Trainer does zero_grad, backward and step (3-5), switches between
``train()`` and ``eval()``, and runs validation under ``inference_mode``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import _load as pl_load
from lightning.pytorch.cli import LRSchedulerCallable
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn
from torchmetrics import MetricCollection
from typing_extensions import Self

from lightning_modules.batch_mean import BatchMean
from lightning_modules.net_spec import build_net, check_net_matches, check_trusted, net_spec
from lightning_modules.optim_spec import build_scheduler, optimizer_class, scheduler_spec
from lightning_modules.unchecked import UncheckedAttributes

Stage = Literal["train", "val", "test"]


class WorkflowModule(UncheckedAttributes, L.LightningModule):
    """A net, its loss, its optimizer and per-stage metrics.

    Args:
        net: the ``nn.Module`` to train. Checkpoints record it as plain data
            (class path and arguments), so ``load_from_checkpoint`` rebuilds it.
        optimizer: the name of the ``torch.optim`` optimizer that updates the net.
        lr: the learning rate (with a scheduler, the rate it starts from).
        optimizer_args: the optimizer's other keyword arguments, such as
            ``{"weight_decay": 0.01}``.
        lr_scheduler: a ``torch.optim.lr_scheduler`` class and its arguments,
            stepped once per epoch. Checkpoints record it as plain data, with
            every default filled in (``lightning_modules/optim_spec.py``).
        compile: run the net through ``torch.compile`` (see ``configure_model``).
            Not a hyperparameter: a compiled and an eager run train the same
            model, and each resumes the other's checkpoints.
    """

    loss_fn: nn.Module
    # Lightning sets the name of the hook it runs before and after every hook,
    # about 40 times per training step: about 3% of a CPU epoch at batch 1024.
    unchecked_attributes = frozenset({"_current_fx_name"})

    def __init__(
        self,
        net: nn.Module,
        optimizer: str,
        lr: float,
        compile: bool = False,
        optimizer_args: dict[str, Any] | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.optimizer_class = optimizer_class(optimizer, lr, optimizer_args or {})
        self.save_hyperparameters(ignore=["net", "compile"])
        self.net = build_net(net) if isinstance(net, Mapping) else net
        self.hparams["net"] = net_spec(self.net)
        self.optimizer_args = dict(optimizer_args or {})
        self.hparams["optimizer_args"] = self.optimizer_args
        self.scheduler = None if lr_scheduler is None else scheduler_spec(lr_scheduler)
        self.hparams["lr_scheduler"] = self.scheduler
        self.optimizer = optimizer
        self.lr = lr
        self.compile_net = compile

    def make_metrics(self, train: MetricCollection, evaluation: MetricCollection) -> None:
        """Separate metric objects per stage: ``train/acc``, ``val/acc``, ``test/acc``.

        ``train`` is what the training epoch reports; ``evaluation`` what
        validation and test report. Each stage also gets its epoch mean loss.
        """
        self.train_metrics = train.clone(prefix="train/")
        self.val_metrics = evaluation.clone(prefix="val/")
        self.test_metrics = evaluation.clone(prefix="test/")
        self.train_loss = BatchMean()
        self.val_loss = BatchMean()
        self.test_loss = BatchMean()

    def configure_model(self) -> None:
        """With ``compile``: the net compiled in place, with CUDA graphs on a GPU.

        ``nn.Module.compile`` keeps the net's parameter names, so checkpoint
        keys are those of an eager run (no ``_orig_mod.``). On a GPU the
        batches have a fixed shape, so CUDA graphs (``reduce-overhead``) replay
        each step's kernels in one launch.
        """
        if self.compile_net:
            on_gpu = self.trainer.strategy.root_device.type == "cuda"
            self.net.compile(mode="reduce-overhead" if on_gpu else None)

    def forward(self, features: Tensor) -> Tensor:
        """The raw model output: predictions for regression, logits for classification."""
        return self.net(features)

    def loss_input(self, outputs: Tensor) -> Tensor:
        """What the loss compares with the targets."""
        return outputs

    def update_metrics(self, metrics: MetricCollection, outputs: Tensor, targets: Tensor) -> None:
        """Adds a batch's detached outputs to the stage's metrics."""
        metrics.update(outputs, targets)

    def _step(self, batch: tuple[Tensor, Tensor], stage: Stage) -> Tensor:
        """Forward pass and loss; the batch is added to the stage's epoch loss and metrics."""
        features, targets = batch
        outputs = self(features)
        if len(targets) == 0:
            # A rank's share of a batch smaller than the number of ranks: no loss,
            # no gradient, but the graph DDP expects.
            return outputs.sum() * 0.0
        loss = self.loss_fn(self.loss_input(outputs), targets)
        getattr(self, f"{stage}_loss").update(loss.detach(), len(targets))
        self.update_metrics(getattr(self, f"{stage}_metrics"), outputs.detach(), targets)
        return loss

    def _log_epoch(self, stage: Stage) -> None:
        """Hands the stage's metric objects to ``self.log`` for the epoch that starts.

        Lightning computes a logged metric object once, at the end of the
        epoch, from everything the steps added to it; then it gives the value
        to callbacks, the progress bar (the loss) and the loggers, and resets
        the object. The objects are logged when the epoch starts, not in every
        step, because ``self.log`` costs about a millisecond per call on a CPU
        (it moves its record of the value to the value's device each time),
        more than a training step of the notes' nets at batch 1024. Every rank
        logs, so all of them compute, and synchronise, the same metrics.
        """
        loss: BatchMean = getattr(self, f"{stage}_loss")
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(getattr(self, f"{stage}_metrics"), on_step=False, on_epoch=True)

    def on_train_epoch_start(self) -> None:
        self._log_epoch("train")
        if self.scheduler is not None:
            # The rate this epoch trains with: the scheduler steps after each epoch.
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log("lr", lr, on_step=False, on_epoch=True)

    def on_validation_epoch_start(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._log_epoch("test")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        if self.trainer.world_size > 1:
            loss = loss * self._share_of_global_batch(len(batch[1]))
        return loss

    def _share_of_global_batch(self, local_size: int) -> Tensor:
        """Makes data-parallel gradients those of the global batch's mean loss.

        Each rank holds a share of the batch and DDP averages the ranks'
        gradients. The mean of per-rank means is the global mean only when the
        shares are equal; weighting each rank's mean loss by
        ``local_size * world_size / global_size`` makes it exact for any split.
        """
        local = torch.tensor(float(local_size), device=self.device)
        global_size = self.trainer.strategy.reduce(local.clone(), reduce_op="sum")
        return local * self.trainer.world_size / global_size

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        features, targets = batch
        return {
            "features": features,
            "prediction": self.prediction(self(features)),
            "target": targets,
        }

    def prediction(self, outputs: Tensor) -> Tensor:
        return outputs

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The module is recorded once: its arguments, the net as its spec.

        LightningCLI adds the module's class path and its own instantiator,
        which would rebuild the module through jsonargparse, importing every
        class path in the arguments, trusted or not.
        """
        for key in ("_class_path", "_instantiator"):
            checkpoint.get("hyper_parameters", {}).pop(key, None)

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
        checkpoint = pl_load(checkpoint_path, map_location="cpu", weights_only=True)
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

    def configure_optimizers(self) -> OptimizerLRScheduler:
        optimizer_class: Any = self.optimizer_class
        optimizer = optimizer_class(self.parameters(), lr=self.lr, **self.optimizer_args)
        if self.scheduler is None:
            return optimizer
        scheduler: Any = build_scheduler(self.scheduler, optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
