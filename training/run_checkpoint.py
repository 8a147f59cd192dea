"""``checkpoints/<name>/last.ckpt`` and ``best.ckpt``: what a run resumes and tests from.

With a monitored ``save_top_k=1`` and ``save_last=True``, Lightning's
``ModelCheckpoint`` refreshes ``last.ckpt`` only when the best improves. This
callback writes ``last.ckpt`` at the end of every training epoch (Lightning's
own end-of-epoch resume point), after the epoch's rows are logged, with what
Lightning leaves out: the RNG states. A resume drops the rows a killed run
wrote after its checkpoint, so ``metrics.csv`` reads as one run.

Writing a file every epoch would cost more than a tiny epoch itself, so
``last.ckpt`` is written at most every ``every_n_seconds`` and always when the
fit ends. ``best.ckpt`` (lowest ``val/loss``, weights only: for
``test``/``predict``) is kept in memory when it improves and written with it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from training.checkpoint_io import atomic_torch_save, remove_stale_tmp_files
from training.errors import TrainingDiverged
from training.rng import capture_rng_states, restore_rng_states

LAST = "last.ckpt"
BEST = "best.ckpt"
RNG_KEY = "rng_states"


class RunCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` and ``best.ckpt`` into ``dirpath``; stops a diverging fit.

    Args:
        dirpath: the run's checkpoint folder, ``checkpoints/<name>``.
        every_n_seconds: the shortest time between two writes of ``last.ckpt``
            during a fit; 0 writes it after every epoch. A killed fit loses at
            most this much training; it resumes exactly all the same.
        monitor: the validation metric that decides the best checkpoint (lower is better).
    """

    def __init__(
        self,
        dirpath: str = "checkpoints/run",
        every_n_seconds: float = 2.0,
        monitor: str = "val/loss",
    ) -> None:
        if every_n_seconds < 0:
            raise ValueError(f"every_n_seconds must be 0 or more, got {every_n_seconds}")
        self.dirpath = Path(dirpath)
        self.every_n_seconds = every_n_seconds
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch = -1
        self._best_state: dict[str, Any] | None = None
        self._best_step = 0
        self._last_write = 0.0
        self._saved_epoch = 0  # epochs finished when last.ckpt was written
        self._rng_to_restore: dict[str, Any] | None = None

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST

    @property
    def best_path(self) -> Path:
        return self.dirpath / BEST

    @property
    def best_model_path(self) -> str:
        return str(self.best_path) if self.best_path.exists() else ""

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "epochs_done": self._saved_epoch,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RNG_KEY] = capture_rng_states()

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._rng_to_restore = checkpoint.get(RNG_KEY)
        self._saved_epoch = epochs_done(checkpoint)
        for logger in trainer.loggers:
            continue_from = getattr(logger, "continue_from", None)
            if callable(continue_from):
                continue_from(self._saved_epoch)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.dirpath.is_dir():
            remove_stale_tmp_files(self.dirpath)
        self._last_write = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The first epoch after a resume draws its random numbers where the saved run stopped.
        if self._rng_to_restore is not None:
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has run by now. callback_metrics recomputes on every read: read once.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self._check_finite(metrics, "train/loss", trainer.current_epoch)
        score = self._check_finite(metrics, self.monitor, trainer.current_epoch)
        if score is not None and score < self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            # The weights only: the rest of best.ckpt is filled in when it is written.
            self._best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            self._best_step = trainer.global_step
        if self._due():
            self._save(trainer, trainer.current_epoch + 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > self._saved_epoch:
            self._save(trainer, trainer.current_epoch)
        else:
            self._write_best(trainer)

    def _due(self) -> bool:
        return time.monotonic() - self._last_write >= self.every_n_seconds

    def _save(self, trainer: L.Trainer, epochs_done: int) -> None:
        self._saved_epoch = epochs_done
        trainer.save_checkpoint(self.last_path, weights_only=False)
        self._write_best(trainer)
        self._last_write = time.monotonic()

    def _write_best(self, trainer: L.Trainer) -> None:
        if self._best_state is not None and trainer.is_global_zero:
            # Lightning has no public way to build a checkpoint without writing it.
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=True)
            checkpoint.update(
                state_dict=self._best_state, epoch=self.best_epoch, global_step=self._best_step
            )
            atomic_torch_save(checkpoint, self.best_path)
        self._best_state = None

    def _check_finite(self, metrics: dict[str, float], key: str, epoch: int) -> float | None:
        score = metrics.get(key)
        if score is None:
            return None
        if not math.isfinite(score):
            last = (
                f"{self.last_path} (trained {self._saved_epoch} epochs)"
                if self._saved_epoch > 0 and self.last_path.exists()
                else "none was written yet"
            )
            raise TrainingDiverged(
                f"{key} became {score} at epoch {epoch}; training stopped and"
                f" the last good checkpoint is kept: {last}. Lower the learning rate (--model.lr)"
            )
        return score


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many epochs a checkpoint holds.

    ``last.ckpt`` is written at the end of an epoch, before Lightning counts
    that epoch in ``checkpoint["epoch"]``; this callback records the count.
    """
    state = checkpoint.get("callbacks", {}).get(RunCheckpoint.__qualname__, {})
    return int(state.get("epochs_done", checkpoint.get("epoch", 0)))
