"""A dataset from a CSV file: read, split the project's way, and refused in one line when bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import CirclesDataModule, CSVDataModule
from datamodules.csv_file import read_columns
from tests.conftest import ROOT, RunCLI, snapshot

CIRCLES_CSV = ROOT / "data" / "circles.csv"


def test_the_shipped_csv_splits_like_the_circles_it_was_written_from() -> None:
    from_csv = CSVDataModule(str(CIRCLES_CSV), features=["x1", "x2"], target="label")
    circles = CirclesDataModule()
    from_csv.setup("fit")
    circles.setup("fit")
    for ours, theirs in [
        (from_csv.train_set, circles.train_set),
        (from_csv.test_set, circles.test_set),
    ]:
        assert ours.features.dtype == torch.float and ours.targets.dtype == torch.float
        assert ours.targets.shape == theirs.targets.shape
        assert torch.equal(ours.targets, theirs.targets)  # the same seeded split
        assert torch.allclose(ours.features, theirs.features, atol=1e-6)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return path


def test_regression_targets_are_a_column_and_classes_are_indices(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 3},{0.5 * i}\n" for i in range(20))
    path = write(tmp_path, "a,kind,y\n" + rows)
    regression = CSVDataModule(str(path), features=["a"], target="y", task="regression")
    regression.setup("fit")
    assert regression.train_set.targets.shape == (16, 1)
    three = CSVDataModule(str(path), features=["a", "y"], target="kind")
    three.setup("fit")
    assert three.train_set.targets.dtype == torch.long
    assert three.train_set.features.shape == (16, 2)


def test_the_csv_config_trains(run_cli: RunCLI, tmp_path: Path) -> None:
    code, err = run_cli("fit", "circles_csv.yaml", "--trainer.max_epochs", "3")
    assert code == 0, err
    assert (tmp_path / "checkpoints" / "circles_csv" / "last.ckpt").is_file()


GOOD = "x1,x2,label\n" + "".join(f"{i / 10},{-i / 10},{i % 2}\n" for i in range(10))

# (file contents, or None for no file; what the one line says)
BAD_FILES = {
    "missing file": (None, "is not a file; pass the path of a CSV file as --data.path"),
    "empty file": ("", "is empty; it needs a header row and data rows"),
    "header only": ("x1,x2,label\n", "has a header but no data rows"),
    "missing column": (
        GOOD.replace("x2", "y2", 1),
        "has no column 'x2'; its columns are x1, y2, label",
    ),
    "text in a number column": (
        GOOD.replace("0.3,", "three,", 1),
        "line 5, column 'x1': 'three' is not a number",
    ),
    "an empty cell": (GOOD.replace(",1\n", ",\n", 1), "line 3, column 'label': an empty cell"),
    "a bad cell after blank lines": (
        GOOD.replace("\n", "\n\n", 2).replace("0.3,", "three,", 1),
        "line 7, column 'x1': 'three' is not a number",
    ),
    "a NaN cell": (GOOD.replace(",1\n", ",NaN\n", 1), "line 3, column 'label': 'NaN' is NaN"),
    "an infinite value": (
        GOOD.replace("0.2,", "inf,", 1),
        "line 4, column 'x1': 'inf' is infinite; every value must be a finite number",
    ),
    "one class": (GOOD.replace(",1\n", ",0\n"), "holds one class (0); classification needs two"),
    "labels not indices": (
        GOOD.replace(",1\n", ",2\n"),
        "holds 0, 2; classification needs class indices 0 to 1",
    ),
    "a split would be empty": (
        "x1,x2,label\n0,0,0\n",
        "test_size=0.2 and val_size=0.0 of n_samples=1 leaves a split empty",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_gets_one_line_and_changes_nothing(
    case: str, run_cli: RunCLI, tmp_path: Path
) -> None:
    contents, message = BAD_FILES[case]
    path = tmp_path / "data.csv"
    if contents is not None:
        path.write_text(contents)
    before = snapshot(tmp_path)
    code, err = run_cli("fit", "circles_csv.yaml", "--data.path", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), err
    assert message in lines[0]
    assert snapshot(tmp_path) == before


# (file contents, the line and what it says of the first bad cell)
BAD_CELLS = {
    "blank lines above": ("a,b\n1,2\n\n\n3,x\n", "line 5, column 'b': 'x' is not a number"),
    "lines of spaces and tabs above": (
        "a,b\n  \n1,2\n\t\n3,x\n",
        "line 5, column 'b': 'x' is not a number",
    ),
    "blank lines above the header": ("\n\na,b\n1,2\n,\n", "line 5, column 'a': an empty cell"),
    "windows line ends": ("a,b\r\n1,2\r\n\r\n3,x\r\n", "line 4, column 'b': 'x' is not"),
    "a quoted line break above": ('a,b\n1,"2\n"\n3,x\n', "line 4, column 'b': 'x' is not"),
    "NaN": ("a,b\n1,2\n3,NaN\n", "line 3, column 'b': 'NaN' is NaN; every value must be a"),
    "nan": ("a,b\nnan,2\n", "line 2, column 'a': 'nan' is NaN"),
    "NA": ("a,b\n1,2\n3,NA\n", "line 3, column 'b': 'NA' is not a number"),
    "-inf": ("a,b\n1,2\n3,-inf\n", "line 3, column 'b': '-inf' is infinite"),
    "Infinity": ("a,b\n1,Infinity\n", "line 2, column 'b': 'Infinity' is infinite"),
    "beyond float32": ("a,b\n1,2\n3,1e39\n", "line 3, column 'b': '1e39' is beyond float32's"),
    "beyond float64": ("a,b\n-1e400,2\n", "line 2, column 'a': '-1e400' is beyond float32's"),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_a_bad_cell_is_named_by_its_line_and_what_it_holds(case: str, tmp_path: Path) -> None:
    contents, message = BAD_CELLS[case]
    path = tmp_path / "table.csv"
    path.write_bytes(contents.encode())
    with pytest.raises(ValueError) as refused:
        read_columns(path, ["a", "b"])
    assert str(refused.value).startswith(f"{path} {message}")


def test_the_largest_float32_values_are_read(tmp_path: Path) -> None:
    largest = float(np.finfo(np.float32).max)
    path = tmp_path / "table.csv"
    path.write_text(f"a,b\n{largest!r},{-largest!r}\n")
    table = read_columns(path, ["a", "b"])
    assert (table["a"].iloc[0], table["b"].iloc[0]) == (largest, -largest)
