"""Checks that a run's data fit its model before the first step.

Data and model are configured apart (``--data.*`` and ``--model.*``), so they
can disagree: three feature columns for a net that takes two, labels 0 to 2
for a binary model, regression targets for a classifier. Unchecked, the first
training step stops with a shape or dtype error from inside torch, or worse,
trains on a broadcast loss, after the run's folders and ``config.yaml`` are
written. Here a couple of training rows go through the model, and the targets'
range is compared with what its loss takes, before anything is written.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datamodules.csv_file import CSVDataModule
from datamodules.split import SplitDataModule
from lightning_modules.base import WorkflowModule
from lightning_modules.classification import ClassificationModule
from lightning_modules.net_spec import describe
from lightning_modules.regression import RegressionModule
from training.errors import UserError

# Two, not one: a net with BatchNorm cannot normalise a batch of one row in training mode.
ROWS = 2

# What torch says when a batch does not fit a net or its loss: a shape (RuntimeError,
# ValueError from the losses), an index out of range (IndexError) or a dtype (RuntimeError).
SHAPE_ERRORS = (RuntimeError, ValueError, IndexError)


def check_data_fits_model(datamodule: SplitDataModule, module: WorkflowModule) -> None:
    """Raises ``UserError`` in one line when the data cannot go through the model."""
    datamodule.setup("fit")  # makes the splits once; a no-op when they exist
    features, targets = datamodule.train_set[:ROWS]
    data = _data_name(datamodule)
    net = describe(module.hparams["net"])
    outputs = _outputs(datamodule, module, features, data, net)
    if isinstance(module, ClassificationModule):
        _check_classes(datamodule, module, data, net, outputs)
    elif isinstance(module, RegressionModule):
        _check_values(datamodule, module, data, net, features, outputs, targets)
    try:
        with torch.no_grad():
            module.loss_fn(module.loss_input(outputs), targets)
    except SHAPE_ERRORS as error:
        raise UserError(
            f"the loss of {type(module).__name__} ({type(module.loss_fn).__name__}) cannot take"
            f" the targets of {data} ({_dtype(targets)}, shape {tuple(targets.shape)} for"
            f" {len(targets)} rows): {_first_line(error)}; pass data made for this model"
        ) from None


def _outputs(
    datamodule: SplitDataModule, module: WorkflowModule, features: Tensor, data: str, net: str
) -> Tensor:
    """The module's outputs for ``features``, computed without changing anything that trains.

    The Trainer owns the module's mode, so the net runs as it is. Its buffers
    (BatchNorm's running statistics) are handed in as copies, and the global
    RNG that dropout draws from is restored after: the fit that follows sees
    the same weights, statistics and random numbers as without the check.
    """
    buffers = {name: buffer.clone() for name, buffer in module.named_buffers()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            outputs: Tensor = torch.func.functional_call(module, buffers, (features,))
    except SHAPE_ERRORS as error:
        width = features.shape[1] if features.ndim == 2 else 1
        in_features = _int_attribute(module.net, "in_features")
        fixes = [f"pass a net that takes {width} features per row"]
        if in_features is not None:
            fixes = [f"pass --model.net.init_args.in_features {width}"]
            if isinstance(datamodule, CSVDataModule):
                fixes.append(f"--data.features with {in_features} columns")
        raise UserError(
            f"{net} cannot take the {width} features per row of {data} ({_first_line(error)});"
            f" {', or '.join(fixes)}"
        ) from None
    return outputs


def _check_classes(
    datamodule: SplitDataModule, module: ClassificationModule, data: str, net: str, outputs: Tensor
) -> None:
    """Labels ``0 .. num_classes-1`` in every split, and one logit (binary) or one per class."""
    count = module.num_classes
    model = (
        f"the model is a {type(module).__name__} of {count} classes (--model.num_classes {count})"
    )
    if datamodule.train_set.targets.ndim != 1:
        raise UserError(
            f"{data} holds regression targets{_csv_task(datamodule, 'regression')}, a value per"
            f" row, but {model}; use a RegressionModule (as configs/linear.yaml does)"
            + _or_csv_task(datamodule, "classification")
        )
    low, high = _target_range(datamodule)
    if low < 0:
        raise UserError(
            f"{data} holds the label {low:g} but class labels run from 0 and {model};"
            " relabel the classes 0, 1, ..."
        )
    # Float labels up to 1 are binary (0/1 for BCEWithLogitsLoss); indices 0 .. C-1 make C classes.
    classes = 2 if high <= 1 else math.floor(high) + 1
    if classes != count:
        fix = f"pass --model.num_classes {classes}"
        logits = _logits(classes)
        if _int_attribute(module.net, "out_features") not in (None, logits):
            fix += f" and --model.net.init_args.out_features {logits}"
        raise UserError(
            f"{data} holds {classes} classes (labels {low:g} to {high:g}) but {model}; {fix}"
        )
    logits = _logits(count)
    if outputs.ndim != 2 or outputs.shape[1] != logits:
        what = "one logit" if logits == 1 else "one logit per class"
        raise UserError(
            f"{net} outputs {_per_row(outputs)} but {model}, which needs {logits} ({what});"
            f" pass --model.net.init_args.out_features {logits}"
        )


def _check_values(
    datamodule: SplitDataModule,
    module: RegressionModule,
    data: str,
    net: str,
    features: Tensor,
    outputs: Tensor,
    targets: Tensor,
) -> None:
    """A value per row in the targets, and as many outputs per row as targets.

    ``L1Loss`` broadcasts: outputs of shape ``(N, 1)`` against targets of shape
    ``(N,)`` give an ``(N, N)`` loss, a silent wrong fit rather than an error.
    """
    if targets.ndim == 1:
        raise UserError(
            f"{data} holds class labels{_csv_task(datamodule, 'classification')} but the model"
            f" is a {type(module).__name__}, which predicts a value per row; use a"
            " ClassificationModule (as configs/circles.yaml does)"
            + _or_csv_task(datamodule, "regression")
        )
    if outputs.shape != targets.shape:
        width = targets.shape[1]
        raise UserError(
            f"{net} outputs {_per_row(outputs)} for the {features.shape[1]} features per row of"
            f" {data}, which holds {width} target value{'s' if width > 1 else ''} per row;"
            f" pass a net that takes {features.shape[1]} features and outputs {width}"
        )


def _logits(classes: int) -> int:
    """One logit for two classes (``BCEWithLogitsLoss``), else one per class."""
    return 1 if classes == 2 else classes


def _target_range(datamodule: SplitDataModule) -> tuple[float, float]:
    """The smallest and the largest target of all splits (validation may be the test split)."""
    splits = {id(s): s for s in (datamodule.train_set, datamodule.val_set, datamodule.test_set)}
    lows, highs = zip(*(torch.aminmax(s.targets) for s in splits.values()), strict=True)
    return min(float(low) for low in lows), max(float(high) for high in highs)


def _data_name(datamodule: SplitDataModule) -> str:
    return datamodule.path if isinstance(datamodule, CSVDataModule) else type(datamodule).__name__


def _csv_task(datamodule: SplitDataModule, task: str) -> str:
    return f" (--data.task {task})" if isinstance(datamodule, CSVDataModule) else ""


def _or_csv_task(datamodule: SplitDataModule, task: str) -> str:
    return f", or pass --data.task {task}" if isinstance(datamodule, CSVDataModule) else ""


def _int_attribute(net: torch.nn.Module, name: str) -> int | None:
    """A net's ``in_features`` or ``out_features``, where it keeps one (the project's nets do)."""
    value = getattr(net, name, None)
    return value if isinstance(value, int) else None


def _per_row(outputs: Tensor) -> str:
    if outputs.ndim == 2:
        return f"{outputs.shape[1]} value{'s' if outputs.shape[1] > 1 else ''} per row"
    return f"shape {tuple(outputs.shape)} for {ROWS} rows"


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
