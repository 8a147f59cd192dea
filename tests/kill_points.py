"""Callbacks that kill, signal or hang their own training process at a chosen point.

Used by the resume, stop and run-lock tests: a kill is as abrupt as a power cut for the
process, and choosing the point makes each test hit the moment it is about.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed
from lightning.pytorch.callbacks import Callback
from torch import nn

from training.run.run_checkpoint import LAST, RunCheckpoint


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """Kills the process in epoch ``epoch``.

    ``at``: ``"batch"`` after training batch ``batch`` (mid-epoch);
    ``"mid_write"`` halfway through writing the epoch's ``last.ckpt``;
    ``"before_rename"`` when it is fully written to its temporary file but not
    yet renamed; ``"after_save"`` right after the rename, before Lightning logs
    the epoch's training metrics. After the last epoch: ``"plots"`` with the
    first plot written to its temporary file but not renamed; ``"summary"`` as
    the fit's closing summary line is printed.
    """

    def __init__(self, epoch: int, at: str = "batch", batch: int = 0) -> None:
        self.epoch = epoch
        self.at = at
        self.batch = batch

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.at == "batch" and trainer.current_epoch == self.epoch and batch_idx == self.batch:
            _die()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at == "plots":
            real_replace = os.replace

            def die_before_png(src: Any, dst: Any) -> None:
                if str(dst).endswith(".png"):
                    _die()
                real_replace(src, dst)

            os.replace = die_before_png  # type: ignore[assignment]
        elif self.at == "summary":
            real_write = sys.stdout.write

            def die_on_summary(text: str) -> int:
                if text.startswith("Done:"):
                    _die()
                return real_write(text)

            sys.stdout.write = die_on_summary  # type: ignore[method-assign]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Armed at the epoch's start, for this epoch's write of last.ckpt (best.ckpt
        # is written just before it; metrics.csv rows are appended, not renamed).
        if trainer.current_epoch != self.epoch:
            return
        real_replace = os.replace

        def is_last(path: Any) -> bool:
            return Path(str(path)).name.startswith(LAST)

        if self.at == "before_rename":

            def die_instead(src: Any, dst: Any) -> None:
                if is_last(dst):
                    _die()
                real_replace(src, dst)

            os.replace = die_instead  # type: ignore[assignment]
        elif self.at == "after_save":

            def replace_then_die(src: Any, dst: Any) -> None:
                real_replace(src, dst)
                if is_last(dst):
                    _die()

            os.replace = replace_then_die  # type: ignore[assignment]
        elif self.at == "mid_write":
            real_save = torch.save

            def half_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
                if not is_last(getattr(f, "name", "")):
                    real_save(obj, f, *args, **kwargs)
                    return
                buffer = io.BytesIO()
                real_save(obj, buffer)
                data = buffer.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                _die()

            torch.save = half_save


class SignalAt(Callback):
    """Sends the process a signal after training batch ``batch`` of epoch ``epoch``.

    With ``again_while_saving`` the same signal comes a second time while the
    epoch's ``last.ckpt`` is being written, just before its rename. Under data
    parallelism only rank 0 sends, as a scheduler signalling the launched command.
    """

    def __init__(
        self, epoch: int, signal_name: str, batch: int = 0, again_while_saving: bool = False
    ) -> None:
        self.epoch = epoch
        self.signum = signal.Signals[signal_name]
        self.batch = batch
        self.again_while_saving = again_while_saving

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.current_epoch != self.epoch or batch_idx != self.batch:
            return
        if not trainer.is_global_zero:
            return
        os.kill(os.getpid(), self.signum)
        if self.again_while_saving:
            real_replace = os.replace

            def signal_then_replace(*args: Any, **kwargs: Any) -> None:
                os.kill(os.getpid(), self.signum)
                real_replace(*args, **kwargs)

            os.replace = signal_then_replace


class SignalLauncherAt(Callback):
    """Every rank signals its launcher (its parent: torchrun) after batch ``batch`` of ``epoch``.

    As a scheduler signals every node's torchrun, which passes the signal on to
    its workers. Each rank then waits until the signal has come back to it, so
    that the epoch the fit stops after is this one, whatever the timing.
    """

    def __init__(self, epoch: int, signal_name: str, batch: int = 0) -> None:
        self.epoch = epoch
        self.signum = signal.Signals[signal_name]
        self.batch = batch

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.current_epoch != self.epoch or batch_idx != self.batch:
            return
        run = next(c for c in trainer.checkpoint_callbacks if isinstance(c, RunCheckpoint))
        os.kill(os.getppid(), self.signum)
        deadline = time.monotonic() + 30
        while run.signals.received is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the launcher did not pass the signal on within 30 s")
            time.sleep(0.01)


class KillNodeAt(Callback):
    """Rank ``rank`` SIGKILLs its launcher (its parent: torchrun) and itself after batch ``batch``.

    As when the machine that runs them is lost, in epoch ``epoch``.
    """

    def __init__(self, epoch: int, rank: int, batch: int = 0) -> None:
        self.epoch = epoch
        self.rank = rank
        self.batch = batch

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        at = (trainer.current_epoch, batch_idx, trainer.global_rank)
        if at == (self.epoch, self.batch, self.rank):
            os.kill(os.getppid(), signal.SIGKILL)
            _die()


class RecordDropoutMasks(Callback):
    """Saves what the net's first ``nn.Dropout`` kept in the first training batch, per rank.

    ``<folder>/masks-<rank>.pt`` holds ``kept`` (the outputs that are not zero)
    and ``live`` (the inputs that are not zero: only where both ranks' inputs
    are can their masks be compared).
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.handle: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dropout = next(m for m in pl_module.modules() if isinstance(m, nn.Dropout))
        path = self.folder / f"masks-{trainer.global_rank}.pt"

        def record(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            torch.save({"kept": output != 0, "live": inputs[0] != 0}, path)
            self.handle.remove()

        self.handle = dropout.register_forward_hook(record)


# The collectives of torch.distributed a Python caller can run (DDP's gradient reduction
# is not one: its reducer runs it from C++ during backward), and DDP's buffer broadcast.
COLLECTIVES = (
    "all_reduce",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_to_all",
    "all_to_all_single",
    "barrier",
    "monitored_barrier",
    "broadcast",
    "broadcast_object_list",
    "gather",
    "gather_object",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "scatter",
    "scatter_object_list",
    "send",
    "recv",
    "isend",
    "irecv",
    "_broadcast_coalesced",
)


class CountCollectives(Callback):
    """Counts each rank's calls of ``COLLECTIVES``, inside its training steps and outside.

    A step is from ``on_train_batch_start`` to ``on_train_batch_end``: forward,
    backward and optimizer step. ``<folder>/collectives-<rank>.json`` gets
    ``{"in_steps": {name: calls}, "outside": {name: calls}, "steps": n}``.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.in_step = False
        self.steps = 0
        self.counts: dict[str, dict[str, int]] = {"in_steps": {}, "outside": {}}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name in COLLECTIVES:
            setattr(torch.distributed, name, self._counting(name))

    def _counting(self, name: str) -> Any:
        real = getattr(torch.distributed, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            where = self.counts["in_steps" if self.in_step else "outside"]
            where[name] = where.get(name, 0) + 1
            return real(*args, **kwargs)

        return counted

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.in_step = True

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.in_step = False
        self.steps += 1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self.folder / f"collectives-{trainer.global_rank}.json"
        path.write_text(json.dumps({**self.counts, "steps": self.steps}))


class HangAt(Callback):
    """Rank ``rank`` stops taking part at the start of epoch ``epoch``, as a stuck peer would.

    It writes ``marker`` when it hangs, so a test knows the others are blocked
    in a collective from then on. With ``exit_on_stop`` it exits (code 0) once
    it has a stop signal, as a peer whose own grace period ran out first does.
    """

    def __init__(self, epoch: int, rank: int, marker: str, exit_on_stop: bool = False) -> None:
        self.epoch = epoch
        self.rank = rank
        self.marker = marker
        self.exit_on_stop = exit_on_stop

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and trainer.global_rank == self.rank:
            run = next(c for c in trainer.checkpoint_callbacks if isinstance(c, RunCheckpoint))
            Path(self.marker).touch()
            while not (self.exit_on_stop and run.signals.received):
                time.sleep(0.05)
            os._exit(0)


class KillSweepOnce(Callback):
    """SIGKILLs the whole process group (a sweep and its workers) once, in run ``run`` at ``epoch``.

    A marker file makes it fire once: the rerun passes the same options, so the
    same callback, and must get past that point.
    """

    def __init__(self, run: str, epoch: int, marker: str) -> None:
        self.run = run
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        in_run = Path(str(trainer.log_dir)).name == self.run
        if in_run and trainer.current_epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            os.killpg(os.getpgrp(), signal.SIGKILL)
