"""``checkpoints/<name>/last.ckpt`` and ``best.ckpt``: what a run resumes and tests from.

With a monitored ``save_top_k=1`` and ``save_last=True``, Lightning's
``ModelCheckpoint`` refreshes ``last.ckpt`` only when the best improves. This
callback writes ``last.ckpt`` at the end of every training epoch (Lightning's
own end-of-epoch resume point), with what Lightning leaves out: the RNG
states, and the epoch's training row of ``metrics.csv``, which Lightning logs
just after this hook. A resume drops the rows a killed run wrote after its
checkpoint and adds that row if it is missing, so ``metrics.csv`` reads as one run.

Writing a file every epoch would cost more than a tiny epoch itself, so
``last.ckpt`` is written at most every ``every_n_seconds`` and always when the
fit ends. ``best.ckpt`` (lowest ``val/loss``, weights only: for
``test``/``predict``) is kept in memory when it improves and written with it.

Under data parallelism every rank takes part in a checkpoint write (it ends in
a barrier), so what decides a write is agreed by all ranks at each epoch's end:
rank 0's clock decides the cadence, and a stop signal or a diverged loss on any
rank stops them all. The same collective brings every rank's RNG states to
rank 0, which alone writes checkpoints: each rank draws its own dropout masks
and resumes its own generators (``training.run.rng_states``).

Why not Lightning's ``ModelCheckpoint(train_time_interval=...)`` and
``EarlyStopping(check_finite=True)``, which do the nearest jobs:

- a resume must be bit-exact, and ``ModelCheckpoint`` saves no RNG states and
  not the epoch's training row, which Lightning logs only after it has saved;
- with a time interval every rank reads its own clock, so under data
  parallelism one rank can enter the checkpoint's barrier while another does
  not, and both wait for good; here rank 0's clock decides, agreed in the
  one collective per epoch that also carries stop signals and divergence;
- ``EarlyStopping`` stops a diverged fit but says nothing of the last good
  checkpoint, and exits 0; here it is one line, exit code 1, and
  ``last.ckpt`` still holds the last finite epoch;
- ``best.ckpt`` is kept in memory and written just before ``last.ckpt``, so
  that a full disk never leaves ``last.ckpt`` ahead of ``best.ckpt``.

SIGINT or SIGTERM stops the fit at the end of the current epoch, with that
epoch in ``last.ckpt``. A data-parallel rank that cannot get there (a peer is
stuck in a collective) gives up after ``stop_grace_seconds``; rank 0 then
writes the last finished epoch, which it keeps in memory for this, on the CPU:
a copy on the GPU would be saved behind the stuck collective. It does the same
when a peer that gave up first leaves its collective failing, and when a peer
is lost (its process or node died): each surviving rank says so in one line.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

from training.errors import FitStopped, TrainingDiverged
from training.lightning_private import dump_checkpoint
from training.run.atomic_files import atomic_torch_save, remove_stale_tmp_files
from training.run.metrics_csv import training_row
from training.run.rng_states import capture_rng_states, offset_by_rank, restore_rng_states
from training.run.stop_signals import StopSignals, default_grace_seconds, exit_code

LAST = "last.ckpt"
BEST = "best.ckpt"
RNG_KEY = "rng_states"
ROW_KEY = "training_row"


class RunCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` and ``best.ckpt`` into ``dirpath``; stops a diverging fit.

    Args:
        dirpath: the run's checkpoint folder, ``checkpoints/<name>``.
        every_n_seconds: the shortest time between two writes of ``last.ckpt``
            during a fit; 0 writes it after every epoch. A killed fit loses at
            most this much training; it resumes exactly all the same.
        monitor: the validation metric that decides the best checkpoint (lower is better).
        stop_grace_seconds: after SIGINT or SIGTERM, how long a data-parallel
            rank may take to reach the end of its epoch before it stops without it;
            by default 60, or 20 under torchrun, which kills its workers 30 s
            after it passes the signal on.
    """

    def __init__(
        self,
        dirpath: str = "checkpoints/run",
        every_n_seconds: float = 2.0,
        monitor: str = "val/loss",
        stop_grace_seconds: float | None = None,
    ) -> None:
        if every_n_seconds < 0:
            raise ValueError(f"every_n_seconds must be 0 or more, got {every_n_seconds}")
        if stop_grace_seconds is not None and stop_grace_seconds <= 0:
            raise ValueError(f"stop_grace_seconds must be positive, got {stop_grace_seconds}")
        self.dirpath = Path(dirpath)
        self.every_n_seconds = every_n_seconds
        self.monitor = monitor
        self.stop_grace_seconds = stop_grace_seconds
        # Set by the CLI: the command that resumes this run, for the line a stop prints.
        self.resume_command = ""
        self.signals = StopSignals()
        self.stopped_by: int | None = None  # the agreed stop signal, acted on next epoch start
        self._snapshot: tuple[int, dict[str, Any]] | None = None
        self._write_lock = threading.Lock()
        self.best_score = math.inf
        self.best_epoch = -1
        self._best_state: dict[str, Any] | None = None
        self._best_step = 0
        self._last_write = 0.0
        self._finished_epochs = 0  # what a checkpoint made now holds
        self._saved_epoch = 0  # epochs finished when last.ckpt was written
        self._rng_to_restore: list[dict[str, Any]] | dict[str, Any] | None = None
        # Every rank's RNG states and the epochs finished when they were gathered.
        self._rng_by_rank: tuple[int, list[dict[str, Any]]] | None = None

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
            "epochs_done": self._finished_epochs,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RNG_KEY] = self._rng_states(trainer)
        # Lightning logs the epoch's training row right after this hook (see csv_log).
        checkpoint[ROW_KEY] = training_row(trainer, self._finished_epochs - 1)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            # validate, test and predict only read the weights: their logs start empty.
            return
        self._rng_to_restore = checkpoint.get(RNG_KEY)
        self._saved_epoch = self._finished_epochs = epochs_done(checkpoint)
        for logger in trainer.loggers:
            continue_from = getattr(logger, "continue_from", None)
            if callable(continue_from):
                continue_from(self._saved_epoch, checkpoint.get(ROW_KEY))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.dirpath.is_dir():
            remove_stale_tmp_files(self.dirpath)
        self._last_write = time.monotonic()

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_stop_signals(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Each rank draws its own dropout masks; a resume restores each rank's own states.
        offset_by_rank(trainer.global_rank)
        self._take_stop_signals(trainer)

    def _take_stop_signals(self, trainer: L.Trainer) -> None:
        """Installed after Lightning registers its own SIGTERM handler, which they replace."""
        if self.signals.installed:
            return
        self.signals.announce = trainer.is_global_zero
        if trainer.world_size > 1:
            launcher = trainer.strategy.launcher
            seconds = self.stop_grace_seconds or default_grace_seconds()
            late = f"the ranks did not reach the end of the epoch within {seconds:g} s"
            self.signals.watch(
                forward=launcher.kill if launcher is not None else None,
                grace_seconds=seconds,
                give_up=lambda signum: self._give_up(trainer, signum, late),
            )
        self.signals.install()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        stopping = self.signals.received
        if stopping and trainer.world_size > 1 and isinstance(exception, RuntimeError):
            # Every rank gives up after the same grace period: a peer whose period ended
            # first has exited, and this rank's collective failed (torch raises a
            # RuntimeError). It stops as a give-up. The project's own errors pass on.
            why = f"another rank stopped before the end of the epoch ({_first_line(exception)})"
            self._give_up(trainer, stopping, why)
        elif trainer.world_size > 1 and _peer_is_gone(exception):
            # A peer's process or node died: its connections closed, and this rank's
            # collective failed. The error (and its traceback) would fill screens.
            self._lost_peer(trainer, exception)
        # Before Lightning's teardown, which puts back the handlers it found.
        self.signals.restore()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopped_by is not None:
            # The finished epochs are saved and their rows logged: stop before the next one.
            raise FitStopped(
                self.stopped_by, self._saved_epoch, self.last_path, self.resume_command
            )
        # The first epoch after a resume draws its random numbers where the saved run stopped.
        if self._rng_to_restore is not None:
            restore_rng_states(self._rng_to_restore, trainer.global_rank)
            self._rng_to_restore = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # fast_dev_run is a smoke test: like Lightning's own checkpoints, it writes none.
        if getattr(trainer, "fast_dev_run", False):
            return
        # Validation has run by now. callback_metrics recomputes on every read: read once.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        epoch = trainer.current_epoch
        self._finished_epochs = epoch + 1
        diverged = self._first_not_finite(metrics)
        due, stop, any_diverged = self._agree(
            trainer, self._due(), self.signals.received or 0, diverged is not None
        )
        if any_diverged:
            self._diverged(metrics, diverged, epoch)
        score = metrics.get(self.monitor)
        if score is not None and score < self.best_score:
            self.best_score, self.best_epoch = score, epoch
            # The weights only: the rest of best.ckpt is filled in when it is written.
            self._best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            self._best_step = trainer.global_step
        if stop:
            self.stopped_by = stop
        if due or stop:
            self._save(trainer, epoch + 1)
        elif trainer.world_size > 1 and trainer.is_global_zero:
            self._keep_snapshot(trainer, epoch + 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finished_epochs = trainer.current_epoch
        if getattr(trainer, "fast_dev_run", False):
            return
        if trainer.current_epoch > self._saved_epoch:
            self._save(trainer, trainer.current_epoch)
        else:
            self._write_best(trainer)
        # Saved: from here a signal acts as it did before the fit. (Lightning's teardown,
        # next, puts back the handlers it found before it registered its own.)
        self.signals.restore()

    def _due(self) -> bool:
        return time.monotonic() - self._last_write >= self.every_n_seconds

    def _agree(
        self, trainer: L.Trainer, due: bool, signum: int, diverged: bool
    ) -> tuple[bool, int, bool]:
        """The same decisions on every rank, from one collective per epoch.

        Rank 0's clock alone decides the cadence (each rank's own clock would
        send some ranks into a checkpoint's barrier that the others never
        reach); a stop signal or a diverged loss on any rank counts for all.
        The collective also brings every rank's RNG states, for the checkpoint
        or snapshot that rank 0 alone writes or keeps: nothing draws a random
        number between here and the end of the epoch.
        """
        if trainer.world_size == 1:
            return due, signum, diverged
        mine = (int(due and trainer.is_global_zero), signum, int(diverged), capture_rng_states())
        every: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(every, mine)
        self._rng_by_rank = (self._finished_epochs, [states for *_, states in every])
        return any(v[0] for v in every), max(v[1] for v in every), any(v[2] for v in every)

    def _rng_states(self, trainer: L.Trainer) -> list[dict[str, Any]]:
        """Every rank's RNG states, in rank order, as they are at the end of the finished epochs.

        Under data parallelism, those gathered at this epoch's end; without
        them (no epoch ended since), this rank's alone, which a resume offsets
        for the others.
        """
        if trainer.world_size > 1 and self._rng_by_rank is not None:
            epochs, states = self._rng_by_rank
            if epochs == self._finished_epochs:
                return states
        return [capture_rng_states()]

    def _save(self, trainer: L.Trainer, epochs_done: int) -> None:
        with self._write_lock:
            # best.ckpt first: a last.ckpt records the best as written, and a write that
            # fails (a full disk) must not leave last.ckpt ahead of best.ckpt.
            self._write_best(trainer)
            self._saved_epoch = epochs_done
            self._snapshot = None
            trainer.save_checkpoint(self.last_path, weights_only=False)
        self._last_write = time.monotonic()

    def _keep_snapshot(self, trainer: L.Trainer, epochs_done: int) -> None:
        """What ``last.ckpt`` would hold now, kept in memory for a stop that cannot wait."""
        checkpoint = dump_checkpoint(trainer, weights_only=False)
        self._snapshot = (epochs_done, copy_to_cpu(checkpoint))

    def _give_up(self, trainer: L.Trainer, signum: int, why: str) -> None:
        """Ends a data-parallel rank that could not reach a safe point in time (another thread)."""
        name = signal.Signals(signum).name
        # Rank 0 says how the run ended; the other ranks exit quietly.
        said = f"{name}: {why}, so it is dropped" if trainer.is_global_zero else None
        self._end_rank(trainer, said, exit_code(signum) if trainer.is_global_zero else 0)

    def _lost_peer(self, trainer: L.Trainer, error: BaseException) -> None:
        """Ends a rank whose peer died, in one line: every surviving rank says it, exit code 1."""
        said = f"error: lost contact with a peer rank ({_first_line(error)}); this epoch is dropped"
        self._end_rank(trainer, said, 1)

    def _end_rank(self, trainer: L.Trainer, said: str | None, code: int) -> None:
        """Rank 0 writes the last finished epoch; ``said`` goes on stderr with what is kept.

        The process exits at once: what is left of the fit would wait on the
        ranks that are stuck or gone.
        """
        with self._write_lock:
            if trainer.is_global_zero and self._snapshot is not None:
                epochs, checkpoint = self._snapshot
                atomic_torch_save(checkpoint, self.last_path)
                self._saved_epoch = epochs
            if said is not None:
                kept = FitStopped.kept(self._saved_epoch, self.last_path, self.resume_command)
                print(f"{said}; {kept}", file=sys.stderr, flush=True)
            launcher = trainer.strategy.launcher
            if launcher is not None:
                launcher.kill(signal.SIGKILL)
            os._exit(code)

    def _write_best(self, trainer: L.Trainer) -> None:
        if self._best_state is not None and trainer.is_global_zero:
            checkpoint = dump_checkpoint(trainer, weights_only=True)
            checkpoint.update(
                state_dict=self._best_state, epoch=self.best_epoch, global_step=self._best_step
            )
            atomic_torch_save(checkpoint, self.best_path)
        self._best_state = None

    def _first_not_finite(self, metrics: dict[str, float]) -> str | None:
        for key in ("train/loss", self.monitor):
            if key in metrics and not math.isfinite(metrics[key]):
                return key
        return None

    def _diverged(self, metrics: dict[str, float], key: str | None, epoch: int) -> None:
        last = (
            f"{self.last_path} (trained {self._saved_epoch} epochs)"
            if self._saved_epoch > 0 and self.last_path.exists()
            else "none was written yet"
        )
        where = f"{key} became {metrics[key]}" if key else "the loss diverged on another rank"
        raise TrainingDiverged(
            f"{where} at epoch {epoch}; training stopped and the last good checkpoint is"
            f" kept: {last}. Lower the learning rate (--model.lr)"
        )


def copy_to_cpu(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``checkpoint`` whose tensors are copies on the CPU.

    Kept in memory by rank 0 for a give-up, which saves it from another thread
    while the main thread may be stuck in a collective: a tensor left on the
    GPU would be copied back to the host behind that collective, for good.
    """
    on_cpu: dict[int, Any] = {}

    def find_tensors(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            on_cpu[id(value)] = value.detach().to("cpu", copy=True)
        elif isinstance(value, dict):
            for item in value.values():
                find_tensors(item)
        elif isinstance(value, list | tuple):
            for item in value:
                find_tensors(item)

    find_tensors(checkpoint)
    # deepcopy takes each tensor's CPU copy from its memo, and copies all else as it is.
    return deepcopy(checkpoint, on_cpu)


def _peer_is_gone(error: BaseException) -> bool:
    """Whether ``error`` is a collective's that failed because a peer is gone or unreachable.

    torch raises its ``DistError``s for NCCL and the rendezvous store; gloo's own
    errors (a connection reset or closed by the peer, a timeout) come as plain
    ``RuntimeError``s that name gloo's transport.
    """
    return isinstance(error, torch.distributed.DistError) or (
        isinstance(error, RuntimeError) and "gloo/transport" in str(error)
    )


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0].rstrip(": ")


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many epochs a checkpoint holds.

    ``last.ckpt`` is written at the end of an epoch, before Lightning counts
    that epoch in ``checkpoint["epoch"]``; this callback records the count.
    """
    state = checkpoint.get("callbacks", {}).get(RunCheckpoint.__qualname__, {})
    return int(state.get("epochs_done", checkpoint.get("epoch", 0)))
