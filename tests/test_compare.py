"""``scripts/compare.py``: runs side by side, one table and one PNG (``docs/runs.md``).

``circles_v0`` and ``circles`` are fitted once, as their configs train them;
the page's ``compare.py`` commands then run in that root and must print the
table the page shows.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tests.conftest import fit_once, load_script, snapshot
from tests.test_readme import PAGES, blocks, commands
from training.outputs import plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAGE = "docs/runs.md"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """circles_v0 and circles as configured; a short linear run, which shares no metric."""
    root = tmp_path_factory.mktemp("runs")
    fit_once(root, "circles_v0.yaml")
    fit_once(root, "circles.yaml")
    fit_once(root, "linear.yaml", "--trainer.max_epochs", "5")
    return root


def compare(
    root: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    capsys.readouterr()
    code = load_script("compare").main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def shown(page: str = PAGE) -> list[str]:
    return blocks(PAGES[page], "text")


def test_the_pages_command_prints_the_table_the_page_shows(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [c for c in commands(PAGES[PAGE]) if "scripts/compare.py" in c]
    assert runs
    (table,) = [block for block in shown() if block.startswith("run ")]
    for command in runs:
        code, out, err = compare(root, shlex.split(command)[2:], monkeypatch, capsys)
        assert code == 0, err
        assert out == table
        with Image.open(root / "compare.png") as image:
            assert image.format == "PNG" and image.size[0] >= 600


def test_only_the_config_values_that_differ_are_shown(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same recipe at another rate: one config row, the rate; the rest is the same."""
    rate = tmp_path / "logs" / "circles_fast"
    shutil.copytree(root / "logs" / "circles", rate)
    config = rate / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.02", "lr: 0.05"))
    args = [str(root / "logs" / "circles"), str(rate), "--out", str(tmp_path / "c.png")]
    code, out, err = compare(root, args, monkeypatch, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["run", "circles", "circles_fast"]
    assert [line.split() for line in lines if not line.startswith(("run", "epochs", "val/"))] == [
        ["model.lr", "0.02", "0.05"],
        ["Curves:", str(tmp_path / "c.png")],
    ]


def test_the_png_overlays_each_runs_curves_under_its_name(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    drawn: list[Figure] = []

    def save(figure: Figure, path: Path) -> Path:
        drawn.append(figure)
        return path

    monkeypatch.setattr(plots, "save_png", save)
    args = ["logs/circles_v0", "logs/circles", "--out", "side_by_side.png"]
    code, out, err = compare(root, args, monkeypatch, capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "Curves: side_by_side.png"
    (figure,) = drawn
    shown_axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in shown_axes] == ["loss", "acc", "auroc", "f1"]
    for ax in shown_axes:
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["circles_v0", "circles"]
        validation = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        epochs = [np.asarray(line.get_xdata()).size for line in validation]
        assert epochs == [100, 300]
    loss = shown_axes[0]
    assert len(loss.get_lines()) == 4, "validation and training loss of each run"


def test_a_sweeps_trials_and_any_number_of_runs_compare_by_name(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "logs" / "sweep"
    for number, run in enumerate(["circles_v0", "circles", "circles"]):
        shutil.copytree(root / "logs" / run, sweep / f"trial-{number}")
    trials = sorted(str(p) for p in sweep.glob("trial-*"))
    code, out, err = compare(tmp_path, trials, monkeypatch, capsys)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["run", "sweep/trial-0", "sweep/trial-1", "sweep/trial-2"]
    assert (tmp_path / "compare.png").is_file()


def no_config(root: Path) -> str:
    folder = root / "logs" / "only_metrics"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "logs" / "circles" / "metrics.csv", folder)
    return "logs/only_metrics"


REFUSED = {
    "a folder that does not exist": (["logs/nope", "logs/circles"], "logs/nope is not a folder"),
    "a checkpoint folder": (["checkpoints/circles", "logs/circles"], "it has no metrics.csv"),
    "a folder of runs": (["logs", "logs/circles"], "logs is not a run: it has no metrics.csv"),
    "a folder without config.yaml": ([], "logs/only_metrics has no config.yaml"),
    "runs that share no metric": (["logs/linear", "logs/circles"], "share no validation metric"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_is_not_a_run_to_compare_is_one_line_and_writes_nothing(
    case: str,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, says = REFUSED[case]
    if not args:
        args = [no_config(root), "logs/circles"]
    before = snapshot(root)
    code, out, err = compare(root, args, monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert snapshot(root) == before
    documented = [line for block in shown() for line in block.splitlines()]
    if case in ("a folder that does not exist", "a checkpoint folder", "runs that share no metric"):
        assert err.strip() in documented
    shutil.rmtree(root / "logs" / "only_metrics", ignore_errors=True)
