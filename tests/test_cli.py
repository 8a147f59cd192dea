"""The command line as a user runs it: real processes, one after another."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIGS, ROOT, RunCLI, process_env, snapshot, train_process


def test_training_processes_keep_the_pythonpath_the_tests_run_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the project is not installed (``scripts/gpu_check.sh`` with ``PY=python3``),
    the ``PYTHONPATH`` that finds it must reach the processes the tests start."""
    tests = str(ROOT / "tests")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/project", "", "site"]))
    paths = [tests, "/project", os.path.abspath("site")]
    assert process_env()["PYTHONPATH"].split(os.pathsep) == paths
    monkeypatch.delenv("PYTHONPATH")
    assert process_env()["PYTHONPATH"] == tests


@pytest.mark.slow
def test_fit_then_test_from_the_best_checkpoint_in_a_new_process(tmp_path: Path) -> None:
    config = str(CONFIGS / "circles.yaml")
    fit = train_process(tmp_path, "fit", "--config", config, "--trainer.max_epochs", "30")
    assert fit.returncode == 0, fit.stderr
    run = tmp_path / "checkpoints" / "circles"
    assert (run / "last.ckpt").is_file() and (run / "best.ckpt").is_file()
    logs = tmp_path / "logs" / "circles"
    assert {"metrics.csv", "config.yaml", "data.png", "loss_curves.png"} <= {
        p.name for p in logs.iterdir()
    }
    summary = fit.stdout.strip().splitlines()[-1]
    assert summary.startswith("Done: epoch 29") and "best: checkpoints/circles/best.ckpt" in summary
    assert "Traceback" not in fit.stderr and "Warning" not in fit.stderr

    test = train_process(tmp_path, "test", "--config", config, "--ckpt_path", "best")
    assert test.returncode == 0, test.stderr
    assert "test/acc" in test.stdout
    with open(logs / "test" / "metrics.csv") as f:
        assert 0.0 <= float(next(csv.DictReader(f))["test/acc"]) <= 1.0


def test_validate_test_and_predict_leave_the_fit_alone(run_cli: RunCLI, tmp_path: Path) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "5")[0] == 0
    fit_files = {
        k: v for k, v in snapshot(tmp_path).items() if not k.startswith("logs/linear/predict")
    }
    for subcommand in ("validate", "test", "predict"):
        assert run_cli(subcommand, "linear.yaml", "--ckpt_path", "last")[0] == 0
    after = snapshot(tmp_path)
    assert all(after[k] == v for k, v in fit_files.items())
    with open(tmp_path / "logs" / "linear" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and set(rows[0]) == {"x0", "prediction", "target"}


def test_a_new_fit_under_a_used_name_keeps_the_earlier_run(run_cli: RunCLI, tmp_path: Path) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "2")[0] == 0
    first = snapshot(tmp_path / "checkpoints" / "linear")
    code, err = run_cli("fit", "linear.yaml", "--trainer.max_epochs", "3")
    assert code == 0
    assert "earlier run is kept in" in err
    assert snapshot(tmp_path / "checkpoints" / "linear.1") == first
    assert (tmp_path / "logs" / "linear.1" / "metrics.csv").is_file()
    assert (tmp_path / "checkpoints" / "linear" / "last.ckpt").is_file()


def test_resume_applies_a_longer_max_epochs(run_cli: RunCLI, tmp_path: Path) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "3")[0] == 0
    assert run_cli("fit", "linear.yaml", "--ckpt_path", "last", "--trainer.max_epochs", "7")[0] == 0
    with open(tmp_path / "logs" / "linear" / "metrics.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [e for e in range(7) for _ in ("val", "train")]


@pytest.mark.slow
def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = train_process(tmp_path, "--help")
    assert result.returncode == 0
    assert "{fit,validate,test,predict,lr_find}" in result.stdout
    result = train_process(tmp_path, "fit", "--help")
    assert result.returncode == 0
    assert "--trainer.max_epochs" in result.stdout and "--ckpt_path" in result.stdout


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["fit", "--config", "configs/linear.yaml"], {"fit"}),
        (["-c", "configs/linear.yaml", "test", "--ckpt_path", "best"], {"test"}),
        (["--config", "test", "validate"], {"validate"}),  # a config file named "test"
        (["--config=configs/linear.yaml", "predict"], {"predict"}),
        (["lr_find", "-c", "configs/linear.yaml"], {"lr_find"}),
        (["--help"], {"fit", "validate", "test", "predict", "lr_find"}),
        (["fitt"], {"fit", "validate", "test", "predict", "lr_find"}),
    ],
)
def test_only_the_named_subcommands_parser_is_built(argv: list[str], built: set[str]) -> None:
    from training.command_line.cli import WorkflowCLI

    cli = WorkflowCLI.__new__(WorkflowCLI)  # LightningCLI builds a parser per subcommands() key
    cli.argv = argv
    assert set(cli.subcommands()) == built


def test_a_mistyped_subcommand_is_shown_them_all(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.command_line.cli import main

    monkeypatch.setattr("sys.argv", ["scripts/train.py"])
    assert main(["fitt", "--config", str(CONFIGS / "linear.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: argument subcommand: invalid choice: 'fitt'"
        " (choose from 'fit', 'validate', 'test', 'predict', 'lr_find')"
        " (see --help for the options)"
    )


def test_config_yaml_is_jsonargparse_s_yaml_text(
    run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.yaml is the text of jsonargparse's own dumper (``yaml.safe_dump``), header and all.

    libyaml writes it where it writes the same text; any string it would write
    otherwise sends the whole config through PyYAML's emitter.
    """
    import random

    import lightning
    import yaml

    from training.run.config_yaml import libyaml_writes_alike, yaml_dump

    options = {"default_flow_style": False, "allow_unicode": True, "sort_keys": False}
    generator = random.Random(0)
    alphabet = " " * 20 + "".join(map(chr, range(0x21, 0x7F))) + "äéñß·\u2013\u2019“…€東京"
    texts = [
        "".join(generator.choices(alphabet, k=generator.choice([1, 9, 40, 79, 81, 200])))
        for _ in range(300)
    ]
    plain: list[dict[str, Any]] = [{"value": t, t: [t, {"nested": t}]} for t in texts]
    plain.append({"values": [1e-05, 0.1, None, True, "null", "1e3", ""], "Köln · 東京": {}})
    others = [
        {"name": "sweep 🚀 run"},
        {"note": "a\ttab and a line break\n " * 4},
        {"next line": "a\x85b"},
        {"": 1},
    ]
    for data in plain + others:
        assert libyaml_writes_alike(data) == (data in plain)
        assert yaml_dump(data) == yaml.safe_dump(data, **options)

    dumpers: list[type | None] = []
    dump = yaml.dump

    def recording(*args: Any, **kwargs: Any) -> Any:
        dumpers.append(kwargs.get("Dumper"))
        return dump(*args, **kwargs)

    monkeypatch.setattr(yaml, "dump", recording)
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "1", "--name", "Köln run")[0] == 0
    assert dumpers and set(dumpers) == {getattr(yaml, "CSafeDumper", yaml.SafeDumper)}
    text = (tmp_path / "logs" / "Köln run" / "config.yaml").read_text()
    header = f"# lightning.pytorch=={lightning.__version__}\n"
    assert text == header + yaml.safe_dump(yaml.safe_load(text), **options)
