"""What a run tells its user when it is done: predictions as a CSV, and one summary line.

The notes look at the predictions of the trained model next to the true
values (§2.4, §2.6.4) and print the epoch's losses as training goes (§2.3.2).
``write_predictions`` keeps the first as a file a person can open;
``fit_summary`` says the second once, at the end of a fit, with where the
checkpoint and the logs are. ``predict`` makes predictions for the plots.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from datamodules.batches import TensorPairs, sequential_loader
from training.run.atomic_files import atomic_file

# Rows per forward pass when predicting for a plot: a million rows at once
# would hold a million rows of every layer's activations.
PREDICT_CHUNK = 65_536


def bare_trainer(**options: Any) -> L.Trainer:
    """A Trainer on one CPU that writes and says nothing: the plots' predictions, a sweep's probe.

    No logger, checkpoint, progress bar, model summary or device report (the
    run has said which devices it found); ``options`` add to them.
    """
    device_info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = device_info.level
    device_info.setLevel(logging.WARNING)
    try:
        return L.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            **options,
        )
    finally:
        device_info.setLevel(level)


def predict(module: L.LightningModule, *features: Tensor) -> list[Tensor]:
    """The module's predictions for each of ``features``, made by ``Trainer.predict``.

    The Trainer puts the module in eval mode (no dropout) and runs it under
    ``inference_mode``, as the notes make predictions (§2.4), then gives it
    back in the mode it had. All the rows go through one predict call,
    ``PREDICT_CHUNK`` rows per batch.
    """
    everything = torch.cat(features)
    no_targets = torch.empty(len(everything), 0)
    loader = sequential_loader(TensorPairs(everything, no_targets), PREDICT_CHUNK)
    batches: Any = bare_trainer().predict(module, dataloaders=loader)
    predictions = torch.cat([batch["prediction"] for batch in batches])
    return list(predictions.split([len(f) for f in features]))


def _column(tensor: Tensor, what: str) -> Tensor:
    """One value per sample: ``(N,)`` or ``(N, 1)`` becomes ``(N,)``."""
    flat = tensor.reshape(len(tensor), -1)
    if flat.shape[1] != 1:
        raise ValueError(f"expected one {what} per sample, got shape {tuple(tensor.shape)}")
    return flat[:, 0]


def write_predictions(batches: list[dict[str, Tensor]], path: Path) -> Path:
    """Writes ``predict_step``'s batches as ``x0, .., x{d-1}, prediction, target`` rows.

    One row per sample, in the order of the batches. The file is written to a
    temporary file beside ``path`` and renamed over it, so a reader never sees
    half of it.
    """
    if not batches:
        raise ValueError("no predictions to write: the predict dataloader gave no batches")
    features = torch.cat([b["features"] for b in batches]).detach().cpu()
    features = features.reshape(len(features), -1)
    prediction = _column(torch.cat([b["prediction"] for b in batches]).detach().cpu(), "prediction")
    target = _column(torch.cat([b["target"] for b in batches]).detach().cpu(), "target")
    if not len(features) == len(prediction) == len(target):
        raise ValueError(
            f"{len(features)} features, {len(prediction)} predictions and {len(target)} targets"
        )
    header = [f"x{i}" for i in range(features.shape[1])] + ["prediction", "target"]
    # numpy's str() of a float32 is its shortest exact form: 0.02, not 0.019999999552965164.
    rows = zip(features.numpy(), prediction.numpy(), target.numpy(), strict=True)

    path = Path(path)
    with atomic_file(path) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for x, p, t in rows:
            writer.writerow([*(str(v) for v in x), str(p), str(t)])
    return path


def fit_summary(
    epochs_done: int,
    metrics: Mapping[str, float],
    best_path: str | Path | None,
    log_dir: str | Path,
) -> str:
    """One line: the last epoch's train and val metrics, the best checkpoint and the logs.

    It predicts nothing itself. The ``val/`` values come from the Trainer's
    validation loop, which runs the model in eval mode under ``inference_mode``;
    the ``train/`` values are the means over the epoch's training steps, taken
    in train mode (with dropout, if the net has any) as the weights changed.

    ``Done: epoch 199 | train/loss 0.001312 train/mse ... | val/loss ... | best: ... | logs: ...``
    """
    parts = [f"Done: epoch {epochs_done - 1}" if epochs_done > 0 else "Done: no epoch trained"]
    for stage in ("train/", "val/"):
        values = [f"{key} {metrics[key]:.4g}" for key in sorted(metrics) if key.startswith(stage)]
        if values:
            parts.append(" ".join(values))
    parts.append(f"best: {best_path or 'none'}")
    parts.append(f"logs: {log_dir}")
    return " | ".join(parts)
