"""``logs/<name>/events.out.tfevents.*``: a fit's scalars for TensorBoard, beside ``metrics.csv``.

Lightning's ``TensorBoardLogger`` writes the values ``metrics.csv`` holds, at the
same steps, into the run's own log folder, so ``tensorboard --logdir logs`` shows
each run under its name (``circles``, ``circles.1``, ``sweep/trial-3``).

An event file is only ever appended to, and each process writes a new one. A
killed fit may have logged epochs that its last checkpoint does not hold; the
resume trains them again. So the resume opens its file with ``SummaryWriter``'s
``purge_step``: TensorBoard drops every event of the earlier files from that step
on. The step is the one at which the checkpoint's last epoch logged its rows,
because that epoch's training row may never have reached the file (Lightning
logs it just after the checkpoint is written, see ``metrics_csv``); the rows of
that step are written again from ``metrics.csv`` as the resume keeps it. A run
begun without TensorBoard gets its whole history on its first resume with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from training.run.metrics_csv import METRICS_FILE, row_values, rows_of_checkpoint
from training.run.run_checkpoint import ROW_KEY

EVENT_FILES = "events.out.tfevents.*"


class ResumableTensorBoardLogger(TensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` in ``log_dir`` itself, continued across resumes.

    Args:
        log_dir: the run's log folder, ``logs/<name>``.
        resumed_from: the checkpoint a resumed fit starts from; ``None`` for a fresh fit.
    """

    def __init__(self, log_dir: str | Path, resumed_from: dict[str, Any] | None = None) -> None:
        self._metrics_path = Path(log_dir) / METRICS_FILE
        self._rewrite_from: int | None = None
        purge: dict[str, Any] = {}
        if resumed_from is not None:
            self._rewrite_from = last_step(resumed_from) if has_events(log_dir) else 0
            purge["purge_step"] = self._rewrite_from
        # No name or version: the events go in log_dir, not log_dir/version_0.
        super().__init__(
            save_dir=str(log_dir), name="", version="", default_hp_metric=False, **purge
        )

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The resolved config goes to ``config.yaml`` beside the events instead."""

    @rank_zero_only
    def save(self) -> None:
        """Flushes the events after every logged row (and no ``hparams.yaml``: see above)."""
        self.experiment.flush()

    @rank_zero_only
    def continue_from(self, epochs_done: int, carried: dict[str, Any] | None = None) -> None:
        """Writes again the rows a resume keeps from the purge step on (see the module doc)."""
        if self._rewrite_from is None:
            return
        for row in rows_of_checkpoint(self._metrics_path, epochs_done, carried):
            step = int(float(row["step"]))
            if step >= self._rewrite_from:
                self.log_metrics(row_values(row), step)
        self.save()


def last_step(checkpoint: dict[str, Any]) -> int:
    """The step at which the checkpoint's last epoch logged its rows; 0 if it does not say."""
    row = checkpoint.get(ROW_KEY)
    return int(row["step"]) if isinstance(row, dict) and row.get("step") is not None else 0


def has_events(log_dir: str | Path) -> bool:
    return any(Path(log_dir).glob(EVENT_FILES))
