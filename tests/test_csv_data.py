"""A dataset from a CSV file: read, split the project's way, and refused in one line when bad."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import CirclesDataModule, CSVDataModule
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
