"""A dataset of your own: columns of a CSV file, split as the notes split the circles.

The file is read with pandas when the datamodule is built, so a bad file is
refused in one line before a run writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from datamodules.sklearn_split import SklearnSplitDataModule

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Task = Literal["classification", "regression"]


class CSVDataModule(SklearnSplitDataModule):
    """The ``features`` columns of ``path`` as inputs and its ``target`` column as targets.

    Split as the circles are: ``test_size`` of the rows test and ``val_size``
    more validate, cut by ``train_test_split`` seeded by ``random_state``.
    Features are float32 of shape ``(N, len(features))``. For ``classification``
    the target holds class indices ``0 .. C-1``: with two classes they become
    float32 labels of shape ``(N,)`` for ``BCEWithLogitsLoss``, with more int64
    indices for ``CrossEntropyLoss``. For ``regression`` they are float32 of
    shape ``(N, 1)``, like the straight line's.
    """

    def __init__(
        self,
        path: str,
        features: list[str],
        target: str,
        task: Task = "classification",
        random_state: int = 42,
        test_size: float = 0.2,
        val_size: float = 0.0,
        batch_size: int | None = None,
        seed: int = 0,
        standardize: bool = False,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {task!r}")
        if not features:
            raise ValueError("features must name at least one column")
        table = read_columns(Path(path), [*features, target])
        # Copies: pandas may hand out read-only views, and a tensor made from one
        # (torch.from_numpy) would share memory that must not be written.
        self.X = table[features].to_numpy(dtype="float32", copy=True)
        self.y = table[target].to_numpy(dtype="float32", copy=True)
        super().__init__(
            len(table), random_state, test_size, val_size, batch_size, seed, standardize
        )
        self.num_classes = count_classes(self.y, target) if task == "classification" else 0
        self.path = path
        self.features = features
        self.target = target
        self.task = task

    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X, self.y

    def as_targets(self, y: np.ndarray) -> Tensor:
        targets = torch.from_numpy(y)
        if self.task == "regression":
            return targets.unsqueeze(dim=1)
        return targets if self.num_classes == 2 else targets.long()


# np.finfo(np.float32).max: a larger value becomes inf in the float32 tensors.
FLOAT32_MAX = 3.4028234663852886e38


def read_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    """The named columns of a CSV file, every value a finite number that float32 holds."""
    import numpy as np
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"{path} is not a file; pass the path of a CSV file as --data.path")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; it needs a header row and data rows") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"{path} is not a well-formed CSV file: {error}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path} has no column {missing[0]!r}; its columns are {', '.join(table.columns)}"
        )
    if table.empty:
        raise ValueError(f"{path} has a header but no data rows")
    positions = {column: list(table.columns).index(column) for column in columns}
    table = table[columns]
    for column in columns:
        numbers = pd.to_numeric(table[column], errors="coerce")
        # One comparison refuses what pandas could not read (NaN), inf, -inf and
        # values beyond float32: a NaN compares false.
        bad = ~(np.abs(numbers.to_numpy()) <= FLOAT32_MAX)
        if bad.any():
            row = int(bad.argmax())
            line, cell = data_row(path, row, positions[column])
            raise ValueError(
                f"{path} line {line}, column {column!r}: {why_not_a_value(cell, numbers.iloc[row])}"
            )
        table[column] = numbers
    return table


def data_row(path: Path, row: int, position: int) -> tuple[int, str | None]:
    """The line data row ``row`` (from 0) starts on, and its cell at ``position`` as written.

    pandas skips blank lines (empty, or only spaces and tabs) before counting
    rows, and a quoted cell may hold line breaks, so the line is found by
    reading the file again as ``csv`` does. Only a refusal reads it.
    """
    import csv

    with path.open(newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.reader(file)
        start, seen = 1, -1  # the header is record -1
        for cells in reader:
            if cells and not (len(cells) == 1 and not cells[0].strip(" \t")):
                if seen == row:
                    return start, cells[position] if position < len(cells) else None
                seen += 1
            start = reader.line_num + 1
    return row + 2, None


def why_not_a_value(cell: str | None, number: float) -> str:
    """Why a cell read as ``number`` (NaN, infinite or beyond float32) is refused."""
    import math

    shown = repr(cell) if cell is not None else f"{number!r}"
    if math.isnan(number):
        if cell is not None and not cell.strip():
            return "an empty cell is not a number"
        if cell is not None and cell.strip().lstrip("+-").lower() == "nan":
            return f"{shown} is NaN; every value must be a finite number"
        return f"{shown} is not a number"
    if cell is not None and cell.strip().lstrip("+-").lower() in ("inf", "infinity"):
        return f"{shown} is infinite; every value must be a finite number"
    return f"{shown} is beyond float32's range (±{FLOAT32_MAX:.1e}); every value must be finite"


def count_classes(y: np.ndarray, target: str) -> int:
    """The number of classes in a column of class indices ``0 .. C-1``."""
    import numpy as np

    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"target {target!r} holds one class ({classes[0]:g}); classification needs two or more"
        )
    if not np.array_equal(classes, np.arange(len(classes))):
        shown = ", ".join(f"{c:g}" for c in classes[:5])
        raise ValueError(
            f"target {target!r} holds {shown}{', ...' if len(classes) > 5 else ''};"
            f" classification needs class indices 0 to {len(classes) - 1}"
            " (or use --data.task regression)"
        )
    return len(classes)
