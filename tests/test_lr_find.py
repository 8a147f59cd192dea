"""``scripts/train.py lr_find``: Lightning's learning-rate finder, its plot, the fit it suggests.

Each search runs in this process from the repository root, as a user runs it,
with its run under the test's own folder; the printed line is then compared
with the one ``docs/extending.md`` shows, and the fit it prints is run.
"""

from __future__ import annotations

import csv
import re
import shlex
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CONFIGS, ROOT, RunCLI, snapshot
from tests.test_readme import PAGES, blocks
from training.command_line.cli import main
from training.command_line.lr_find import fit_command
from training.command_line.script_process import script_command

DOCS = "docs/extending.md"


def lr_find(
    tmp_path: Path,
    config: str,
    *args: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """``scripts/train.py lr_find --config configs/<config>`` from the repository root."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["scripts/train.py"])
    capsys.readouterr()
    root = ["--trainer.default_root_dir", str(tmp_path)]
    code = main(["lr_find", "--config", f"configs/{config}", *args, *root])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_from_the_root(line: str, tmp_path: Path) -> str:
    """The printed line as a user who runs the command without the test's root would read it.

    The interpreter is named as the docs name it, whichever runs the tests.
    """
    line = line.replace(f" --trainer.default_root_dir {tmp_path}", "").replace(f"{tmp_path}/", "")
    return line.replace(script_command([]), ".venv/bin/python scripts/train.py")


def shown_lines() -> list[str]:
    return [line for block in blocks(PAGES[DOCS], "text") for line in block.splitlines()]


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 400


def val_acc(log_dir: Path) -> list[float]:
    with open(log_dir / "metrics.csv", newline="") as f:
        return [float(row["val/acc"]) for row in csv.DictReader(f) if row["val/acc"]]


@pytest.mark.parametrize("config", ["circles.yaml", "linear.yaml"])
def test_the_suggestion_and_its_fit_command_are_the_ones_the_docs_show(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lr_find(tmp_path, config, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    (line,) = out.splitlines()
    assert as_from_the_root(line, tmp_path) in shown_lines()
    name = Path(config).stem
    assert_png(tmp_path / "logs" / name / "lr_find.png")
    # No checkpoint, log, config.yaml or Tuner's copy of the weights: the plot, and the lock.
    assert sorted(snapshot(tmp_path)) == [f"logs/.{name}.readers.lock", f"logs/{name}/lr_find.png"]


def test_the_suggested_rate_fits_the_circles_within_the_configs_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed command, run as it is: 300 epochs at the suggested rate."""
    code, out, err = lr_find(tmp_path, "circles.yaml", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    found = re.fullmatch(r"Suggested learning rate (\S+) \((\S+)\); fit with: (.+)", out.strip())
    assert found is not None, out
    lr, plot, command = found.groups()
    assert plot == f"{tmp_path}/logs/circles/lr_find.png"
    _python, script, *args = shlex.split(command)
    assert script == "scripts/train.py"
    assert args == [
        "fit",
        "--config",
        "configs/circles.yaml",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--model.lr",
        lr,
    ]
    assert float(lr) != 0.02, "the config's own rate: the fit would show nothing of the finder"

    assert main(args) == 0
    assert "existed" not in capsys.readouterr().err, "the plot alone is no run to keep aside"
    logs = tmp_path / "logs" / "circles"
    accuracy = val_acc(logs)
    assert len(accuracy) == 300
    assert max(accuracy) >= 0.95 and accuracy[-1] >= 0.95, accuracy[-10:]
    assert (logs / "lr_find.png").is_file(), "the fit keeps the plot in its own folder"


CONFIG_FILES = sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIG_FILES)
def test_every_config_gets_a_suggestion(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression or classification, full batches or mini-batches, few epochs or many."""
    code, out, err = lr_find(
        tmp_path, config, "--num_training", "20", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, err
    (line,) = out.splitlines()
    lr = float(line.split()[3])
    assert 1e-8 <= lr <= 1
    assert line.endswith(f"--model.lr {lr:.3g}")
    name = re.search(r"logs/(\S+)/lr_find\.png", line)
    assert name is not None
    assert_png(tmp_path / "logs" / name[1] / "lr_find.png")


BAD_SEARCHES = {
    "a range upside down": (
        ["--min_lr", "1", "--max_lr", "0.01"],
        "error: --min_lr 1 is not below --max_lr 0.01; the search runs from --min_lr up to"
        " --max_lr: pass a --min_lr below --max_lr",
    ),
    "an empty range": (["--min_lr", "0.1", "--max_lr", "0.1"], "--min_lr 0.1 is not below"),
    "too few steps": (
        ["--num_training", "5"],
        "error: --num_training 5 is too few steps: the suggestion leaves out the first 10 and"
        " the last, and needs 2 more; pass 13 or more (100 by default)",
    ),
    "a rate of 0": (["--min_lr", "0"], "--min_lr 0 is not a learning rate; pass a rate above 0"),
    "a threshold that stops at once": (
        ["--early_stop_threshold", "1"],
        "--early_stop_threshold 1 would stop the search at its first step",
    ),
    "another mode": (["--mode", "cubic"], 'Parser key "mode"'),
    "a checkpoint": (["--ckpt_path", "last"], "unrecognized arguments: --ckpt_path last"),
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES))
def test_a_search_it_cannot_run_is_one_line_and_writes_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, says = BAD_SEARCHES[case]
    code, out, err = lr_find(
        tmp_path, "circles.yaml", *args, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err
    if says.startswith("error: "):
        assert err.strip() in shown_lines(), "the docs show this line"
    assert snapshot(tmp_path) == {}


def test_a_search_that_diverges_too_soon_says_so_beside_its_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steep = ["--min_lr", "0.01", "--max_lr", "1e8", "--num_training", "30"]
    code, out, err = lr_find(
        tmp_path, "linear.yaml", *steep, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and out == ""
    plot = tmp_path / "logs" / "linear" / "lr_find.png"
    assert err.splitlines()[-1] == (
        f"error: the loss diverged after 10 steps, too soon to suggest a rate (see {plot});"
        " pass a lower --max_lr, or a larger --early_stop_threshold"
    )
    assert_png(plot)


def test_a_new_fit_keeps_the_earlier_run_aside_and_the_plot_for_itself(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    two = ["--trainer.max_epochs", "2"]
    assert run_cli("fit", "circles.yaml", *two)[0] == 0
    assert run_cli("lr_find", "circles.yaml", "--num_training", "20")[0] == 0
    code, err = run_cli("fit", "circles.yaml", *two)
    assert code == 0, err
    assert "Run 'circles' existed; the earlier run is kept in" in err
    logs = tmp_path / "logs"
    assert (logs / "circles.1" / "metrics.csv").is_file()
    assert not (logs / "circles.1" / "lr_find.png").exists()
    assert (logs / "circles" / "lr_find.png").is_file()
    assert not list(logs.glob(".*.png")), "the plot's place while the run moves is left empty"


def test_the_fit_command_drops_the_search_and_sets_the_rate() -> None:
    argv = [
        "lr_find",
        "-c",
        "my.yaml",
        "--min_lr=1e-6",
        "--max_lr",
        "0.5",
        "--model.lr",
        "0.3",
        "--mode",
        "linear",
        "--num_training=50",
        "--early_stop_threshold",
        "null",
        "--name",
        "lr_find",
        "--model.lr=0.2",
    ]
    command = shlex.split(fit_command(argv, 0.012345))
    assert command[2:] == ["fit", "-c", "my.yaml", "--name", "lr_find", "--model.lr", "0.0123"]
