"""A callback that SIGKILLs a whole sweep once, inside a chosen trial at a chosen epoch.

The sweep runs in its own process group; killing the group is the power cut
of every worker at once. A marker file makes it fire once: the rerun passes
the same callback (the same options) and must get past that point.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class KillSweepOnce(Callback):
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
