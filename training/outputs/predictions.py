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

from datamodules.batches import TensorPairs, prediction_batches
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
    loader = prediction_batches(TensorPairs(everything, no_targets), PREDICT_CHUNK, None)
    batches: Any = bare_trainer().predict(module, dataloaders=loader)
    predictions = torch.cat([batch["prediction"] for batch in batches])
    return list(predictions.split([len(f) for f in features]))


def _column(tensor: Tensor, what: str) -> Tensor:
    """One value per sample: ``(N,)`` or ``(N, 1)`` becomes ``(N,)``."""
    flat = tensor.reshape(len(tensor), -1)
    if flat.shape[1] != 1:
        raise ValueError(f"expected one {what} per sample, got shape {tuple(tensor.shape)}")
    return flat[:, 0]


def write_predictions(
    batches: list[dict[str, Tensor]], path: Path, feature_names: list[str] | None = None
) -> Path:
    """Writes ``predict_step``'s batches as rows: the inputs, the prediction, then the target.

    One row per sample, in the order of the batches. The inputs are named
    ``feature_names`` (default ``x0, .., x{d-1}``); a classifier's rows add the
    probability of class 1 (``probability``, binary) or of each class
    (``probability_0``, ...); rows of new inputs, which have no target, have
    no ``target`` column. Written whole or not at all (``atomic_file``).
    """
    if not batches:
        raise ValueError("no predictions to write: the predict dataloader gave no batches")

    def joined(key: str) -> Tensor:
        return torch.cat([b[key] for b in batches]).detach().cpu()

    features = joined("features")
    features = features.reshape(len(features), -1)
    names = feature_names or [f"x{i}" for i in range(features.shape[1])]
    columns = {
        **dict(zip(names, features.T, strict=True)),
        "prediction": _column(joined("prediction"), "prediction"),
    }
    if "probabilities" in batches[0]:
        probabilities = joined("probabilities")
        if probabilities.ndim == 1:
            columns["probability"] = probabilities
        else:
            columns.update((f"probability_{k}", p) for k, p in enumerate(probabilities.T))
    target = joined("target")
    if target.numel():
        columns["target"] = _column(target, "target")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    # numpy's str() of a float32 is its shortest exact form: 0.02, not 0.019999999552965164.
    values = [column.numpy() for column in columns.values()]
    with atomic_file(Path(path)) as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(zip(*(map(str, column) for column in values), strict=True))
    return Path(path)


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
