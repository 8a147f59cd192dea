"""``predict --inputs points.csv``: the model asked about inputs nobody has labelled.

The course does it by hand, ``model(X_new)`` under ``inference_mode`` (§2.4).
Here the file's rows go through ``Trainer.predict``, as the test split does.
The file must hold exactly the feature columns the model was trained on, every
value a finite number, or the command stops in one line and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from datamodules.csv_file import CSVDataModule, read_columns
from datamodules.split import SplitDataModule
from training.errors import UserError


def feature_names(datamodule: SplitDataModule) -> list[str]:
    """The input columns: a CSV dataset's own, else ``x0, x1, ..`` as in ``predictions.csv``."""
    if isinstance(datamodule, CSVDataModule):
        return list(datamodule.features)
    datamodule.setup("predict")  # makes the splits once; a no-op when they exist
    width = datamodule.train_set.features.reshape(len(datamodule.train_set), -1).shape[1]
    return [f"x{i}" for i in range(width)]


def read_new_inputs(path: Path, names: list[str]) -> Tensor:
    """The rows of ``path`` as float32 features, in the order of ``names``."""
    import pandas as pd

    takes = f"the model takes the columns {', '.join(names)}"
    if not path.is_file():
        raise UserError(f"{path} is not a file; pass a CSV file of new inputs ({takes})")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        header = names  # read_columns says what is wrong with the file
    extra = [column for column in header if column not in names]
    if extra:
        raise UserError(
            f"{path} has columns the model was not trained on ({', '.join(extra)}); {takes}"
        )
    try:
        table = read_columns(path, names)
    except ValueError as error:
        raise UserError(f"{error}; {takes}") from None
    return torch.from_numpy(table.to_numpy(dtype="float32", copy=True))
