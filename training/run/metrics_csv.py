"""``logs/<name>/metrics.csv``: one row per finished epoch and stage, across resumes.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it reuses a
folder, so a resumed run would lose its history. This logger continues the
file instead: on resume it keeps the rows of the epochs the checkpoint holds,
drops what a killed run wrote after it, and appends from there.

Lightning logs an epoch's training row after the callbacks' ``on_train_epoch_end``,
where ``last.ckpt`` is written, so that row reaches this file just after the
checkpoint. The checkpoint carries it (``training_row``), and a resume adds it
if the killed run did not get to write it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from training.run.atomic_files import append_whole, atomic_write_text

METRICS_FILE = "metrics.csv"


class ResumableCSVLogger(Logger):
    """Appends the logged rows to ``<log_dir>/metrics.csv`` on every ``save()``."""

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self._log_dir = Path(log_dir)
        self._columns: list[str] = []
        self._pending: list[dict[str, Any]] = []
        self._started = False

    @property
    def name(self) -> str:
        return self._log_dir.name

    @property
    def version(self) -> str:
        return ""

    @property
    def root_dir(self) -> str:
        return str(self._log_dir.parent)

    @property
    def log_dir(self) -> str:
        return str(self._log_dir)

    @property
    def save_dir(self) -> str:
        return str(self._log_dir)

    @property
    def metrics_path(self) -> Path:
        return self._log_dir / METRICS_FILE

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The resolved config goes to ``config.yaml`` beside the metrics instead."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._pending.append(metrics_row(metrics, step))

    @rank_zero_only
    def continue_from(self, epochs_done: int, carried: dict[str, Any] | None = None) -> None:
        """Keeps the rows of the epochs a checkpoint holds, ``0 .. epochs_done - 1``.

        Rows a killed run wrote after its checkpoint are dropped. ``carried`` is
        the row the checkpoint carries (see the module docstring); it is added
        when the file does not have it yet.
        """
        rows = rows_of_checkpoint(self.metrics_path, epochs_done, carried)
        self._columns = _columns_of(rows)
        self._rewrite(rows)
        self._started = True

    @rank_zero_only
    def save(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        new_columns = _columns_of(rows, self._columns)
        if not self._started or new_columns != self._columns:
            kept = read_metrics(self.metrics_path) if self._started else []
            self._columns = new_columns
            self._rewrite(kept + rows)
            self._started = True
            return
        append_whole(self.metrics_path, self._csv(rows, header=False))

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.metrics_path, self._csv(rows, header=True))

    def _csv(self, rows: list[dict[str, Any]], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self._columns)
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a metrics file; a line cut short by a kill is dropped."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        return [
            row
            for row in reader
            if None not in row and None not in row.values() and len(row) == len(columns)
        ]


def rows_of_checkpoint(
    path: Path, epochs_done: int, carried: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The rows of a metrics file that a resume from a checkpoint of ``epochs_done`` epochs keeps.

    Those of epochs ``0 .. epochs_done - 1``, with ``carried``, the checkpoint's
    training row, added if the file lacks it (see the module docstring).
    """
    rows = [row for row in read_metrics(path) if _epoch(row) < epochs_done]
    if (
        carried is not None
        and _epoch(carried) == epochs_done - 1
        and not any(_same_row(row, carried) for row in rows)
    ):
        rows.append(carried)
    return rows


def row_values(row: dict[str, Any]) -> dict[str, float]:
    """A row's logged values as numbers, ``epoch`` among them: what Lightning gave the loggers."""
    return {k: float(v) for k, v in row.items() if k != "step" and v not in ("", None)}


def final_metrics(path: Path) -> dict[str, float]:
    """Each metric's last value in a metrics file: the end of the run."""
    final: dict[str, float] = {}
    for row in read_metrics(path):
        final.update((k, float(v)) for k, v in row.items() if v and k not in ("epoch", "step"))
    return final


def metrics_row(metrics: dict[str, float], step: int | None) -> dict[str, Any]:
    """One row of ``metrics.csv``: the epoch, the step, and the values Lightning logged."""
    row = {"epoch": metrics.get("epoch"), "step": step}
    row.update((k, v) for k, v in metrics.items() if k != "epoch")
    return row


def training_row(trainer: L.Trainer, epoch: int) -> dict[str, Any]:
    """The row Lightning logs for training epoch ``epoch`` once its ``on_train_epoch_end`` is over.

    Lightning logs a training epoch's values at the step before the next
    epoch's first: everything logged in it but the validation's ``val/``
    values (its ``train/`` values, and ``lr`` with a schedule).
    """
    values = {
        k: float(v)
        for k, v in trainer.logged_metrics.items()
        if not k.startswith("val/") and k != "epoch"
    }
    return metrics_row({"epoch": epoch, **values}, trainer.global_step - 1)


def _same_row(row: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two rows were logged at the same epoch and step for the same values.

    A validation row and a training row can share epoch and step; their values
    tell them apart. A file's rows hold strings, with ``""`` where a row has no value.
    """

    def place(r: dict[str, Any]) -> tuple[str, str, set[str]]:
        values = {k for k, v in r.items() if v not in ("", None)} - {"epoch", "step"}
        return str(r.get("epoch")), str(r.get("step")), values

    return place(row) == place(other)


def _epoch(row: dict[str, Any]) -> int:
    try:
        return int(float(row["epoch"]))
    except (TypeError, ValueError):
        return -1


def _columns_of(rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[str]:
    found = dict.fromkeys(columns or ["epoch", "step"])
    for row in rows:
        found.update(dict.fromkeys(row))
    return ["epoch", "step", *sorted(k for k in found if k not in ("epoch", "step"))]
