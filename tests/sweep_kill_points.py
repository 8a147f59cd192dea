"""A kill point for sweeps: the whole sweep SIGKILLed once, while one of its files is written.

A sweep's rerun passes the same options, so the same callback: a marker file
makes it fire once, as ``kill_points.KillSweepOnce`` does after a batch.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

_replace = os.replace


class KillSweepOnceWriting(Callback):
    """SIGKILLs the process group when ``file`` is written whole to its temporary file, not
    yet renamed over ``file``.

    With ``run`` and ``epoch``, only in that trial's epoch (for ``last.ckpt``).
    Without them, at the first such write in the process, after the trial's
    fit too: the report's ``history.png`` is written once every trial has ended.
    """

    def __init__(
        self, file: str, marker: str, run: str | None = None, epoch: int | None = None
    ) -> None:
        self.file = file
        self.marker = Path(marker)
        self.run = run
        self.epoch = epoch
        self.trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Each trial builds its own callback: the last one built decides.
        self.trainer = trainer

        def kill_instead(src: Any, dst: Any) -> None:
            if self.due(Path(os.fsdecode(dst))):
                self.marker.touch()
                os.killpg(os.getpgrp(), signal.SIGKILL)
            _replace(src, dst)

        os.replace = kill_instead  # type: ignore[assignment]

    def due(self, path: Path) -> bool:
        if path.name != self.file or self.marker.exists():
            return False
        if self.run is None:
            return True
        trainer = self.trainer
        assert trainer is not None
        in_run = Path(str(trainer.log_dir)).name == self.run
        return in_run and trainer.current_epoch == self.epoch
