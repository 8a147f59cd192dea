"""Bad input: one line that names the problem and the fix, a non-zero exit, nothing written.

Each case runs the CLI in this process (fast) and checks the exit code, the
message, that no traceback was printed and that no file changed. A few run as
real processes, where what a user's terminal shows is the point.
"""

from __future__ import annotations

import pickle
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn, cast

import lightning as L
import pytest
import torch

from datamodules.circles import CirclesDataModule
from lightning_modules import RegressionModule
from tests.conftest import CONFIGS, RunCLI, fit_once, snapshot, train_process
from training.errors import FitStopped, TrainingDiverged, run_script
from training.outputs import plots
from training.run.run_checkpoint import RunCheckpoint, epochs_done

# (config, extra arguments, what the one line says)
CASES = {
    "missing checkpoint file": (
        "linear.yaml",
        ["--ckpt_path", "nope.ckpt"],
        "checkpoint nope.ckpt does not exist",
    ),
    "no last checkpoint": (
        "linear.yaml",
        ["--name", "other", "--ckpt_path", "last"],
        "run 'other' has no last checkpoint",
    ),
    "no best checkpoint": (
        "linear.yaml",
        ["--name", "other", "--ckpt_path", "best"],
        "best.ckpt holds the best weights",
    ),
    "truncated checkpoint": (
        "linear.yaml",
        ["--ckpt_path", "truncated.ckpt"],
        "it is truncated, corrupt",
    ),
    "not a checkpoint": (
        "linear.yaml",
        ["--ckpt_path", "garbage.ckpt"],
        "corrupt or not a checkpoint",
    ),
    "another task's checkpoint": (
        "circles.yaml",
        ["--ckpt_path", "checkpoints/linear/last.ckpt"],
        "--model.net LinearRegressionModelV2() (now CircleModelV2(",
    ),
    "another optimizer": (
        "linear.yaml",
        ["--ckpt_path", "last", "--model.optimizer", "Adam"],
        "was trained with --model.optimizer SGD (now Adam); a resume continues the same"
        " experiment: pass the values it was trained with, or start a new --name",
    ),
    "another seed": (
        "linear.yaml",
        ["--ckpt_path", "last", "--seed_everything", "7"],
        "was trained with --seed_everything 42 (now 7);",
    ),
    "other data on resume": (
        "linear.yaml",
        ["--ckpt_path", "last", "--data.weight", "0.5", "--data.step", "0.01"],
        "checkpoints/linear/last.ckpt was trained with --data.weight 0.7 (now 0.5),"
        " --data.step 0.02 (now 0.01); a resume continues the same experiment",
    ),
    "another net to test": (
        "circles.yaml",
        ["--ckpt_path", "checkpoints/linear/best.ckpt"],
        "best.ckpt was trained with --model.net LinearRegressionModelV2() (now CircleModelV2(",
    ),
    "gpu without a gpu": (
        "linear.yaml",
        ["--trainer.accelerator", "gpu"],
        "asks for a GPU but this machine has none",
    ),
    "cuda without a gpu": (
        "linear.yaml",
        ["--trainer.accelerator", "cuda"],
        "use --trainer.accelerator cpu",
    ),
    "max_epochs below the checkpoint": (
        "linear.yaml",
        ["--ckpt_path", "last", "--trainer.max_epochs", "2"],
        "has already trained 3 epochs, more than --trainer.max_epochs 2;"
        " pass --trainer.max_epochs 3 or more",
    ),
    "n_samples zero": (
        "circles.yaml",
        ["--data.n_samples", "0"],
        "n_samples must be positive, got 0",
    ),
    "negative noise": (
        "circles.yaml",
        ["--data.noise", "-0.1"],
        "noise must be zero or more, got -0.1",
    ),
    "train_fraction above 1": (
        "linear.yaml",
        ["--data.train_fraction", "1.5"],
        "train_fraction must lie in (0, 1)",
    ),
    "train_fraction zero": (
        "linear.yaml",
        ["--data.train_fraction", "0"],
        "train_fraction must lie in (0, 1)",
    ),
    "val_size leaves no training point": (
        "circles.yaml",
        ["--data.val_size", "0.8"],
        "test_size=0.2 and val_size=0.8 of n_samples=1000 leaves a split empty"
        " (0 train, 800 val, 200 test); use more samples, or a smaller test_size or val_size",
    ),
    "step zero": ("linear.yaml", ["--data.step", "0"], "step must be positive, got 0.0"),
    "start not below end": ("linear.yaml", ["--data.start", "2"], "start must be below end"),
    "lr zero": ("linear.yaml", ["--model.lr", "0"], "lr must be positive, got 0.0"),
    "lr negative": ("circles.yaml", ["--model.lr", "-1"], "lr must be positive, got -1.0"),
    "batch_size zero": (
        "circles.yaml",
        ["--data.batch_size", "0"],
        "batch_size must be a positive integer or null",
    ),
    "unknown model key": ("linear.yaml", ["--model.foo", "1"], "Option 'foo' is not accepted"),
    "unknown top-level key": ("linear.yaml", ["--bogus", "1"], "unrecognized arguments: --bogus 1"),
    "devices the accelerator cannot take": (
        "linear.yaml",
        ["--trainer.devices", "-1", "--trainer.accelerator", "cpu"],
        "invalid --trainer options: devices selected with CPUAccelerator should be an int > 0",
    ),
    "unwritable root": (
        "linear.yaml",
        ["--trainer.default_root_dir", "a_file/root"],
        "pass a writable --trainer.default_root_dir",
    ),
}


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-epoch linear run, a truncated and a garbage checkpoint, and a plain file.

    Shared by the module's tests: each refuses before writing, and checks it wrote nothing.
    """
    root = fit_once(tmp_path_factory.mktemp("trained"), "linear.yaml", "--trainer.max_epochs", "3")
    last = root / "checkpoints" / "linear" / "last.ckpt"
    (root / "truncated.ckpt").write_bytes(last.read_bytes()[:500])
    (root / "garbage.ckpt").write_bytes(b"not a checkpoint" * 10)
    (root / "a_file").write_text("a file where a folder is needed")
    return root


@pytest.fixture
def in_trained_run(run_cli: RunCLI, trained_root: Path, monkeypatch: pytest.MonkeyPatch) -> RunCLI:
    """``run_cli`` in the shared trained run, as the current directory and the root."""
    monkeypatch.chdir(trained_root)

    def run(subcommand: str, config: str, *args: str) -> tuple[int, str]:
        return run_cli(subcommand, config, "--trainer.default_root_dir", str(trained_root), *args)

    return run


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_one_line_and_changes_nothing(
    case: str, trained_root: Path, in_trained_run: RunCLI
) -> None:
    config, args, message = CASES[case]
    subcommand = "test" if case in ("no best checkpoint", "another net to test") else "fit"
    if case == "no best checkpoint":
        args = [*args[:-1], "best"]
        message = "run 'other' has no best checkpoint"
    before = snapshot(trained_root)
    code, err = in_trained_run(subcommand, config, *args)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert snapshot(trained_root) == before


def test_a_resume_may_change_what_does_not_change_the_experiment(
    trained_root: Path, run_cli: RunCLI, tmp_path: Path
) -> None:
    """Each setting that ``training/run/same_experiment.py`` lists as free, changed at once."""
    root = tmp_path / "resumed"
    shutil.copytree(trained_root, root)
    code, err = run_cli(
        "fit",
        "linear.yaml",
        "--trainer.default_root_dir",
        str(root),
        "--ckpt_path",
        "last",
        "--trainer.max_epochs",
        "5",
        "--model.lr",
        "0.02",
        "--trainer.accelerator",
        "cpu",
        "--checkpoint.every_n_seconds",
        "0",
    )
    assert code == 0, err
    checkpoint = torch.load(root / "checkpoints/linear/last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["lr"] == 0.02
    assert epochs_done(checkpoint) == 5


def test_resuming_from_best_is_refused(in_trained_run: RunCLI) -> None:
    code, err = in_trained_run("fit", "linear.yaml", "--ckpt_path", "best")
    assert code == 2 and "resume with --ckpt_path last" in err


def test_a_diverging_fit_stops_and_keeps_the_last_good_checkpoint(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    code, err = run_cli(
        "fit", "linear.yaml", "--model.lr", "1e37", "--checkpoint.every_n_seconds", "0"
    )
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: train/loss became inf at epoch 1; training stopped")
    assert "checkpoints/linear/last.ckpt (trained 1 epochs)" in line and "--model.lr" in line
    checkpoint = torch.load(tmp_path / "checkpoints/linear/last.ckpt", weights_only=True)
    assert checkpoint["callbacks"]
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("error", "gives_up"),
    [(TrainingDiverged("train/loss became nan at epoch 3"), False), (RuntimeError("closed"), True)],
)
def test_after_a_stop_signal_a_data_parallel_rank_gives_up_only_when_its_collective_fails(
    error: Exception, gives_up: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that gave up first makes this rank's collective fail: the rank stops as a
    give-up, saying so. The project's own errors, such as a diverged loss, keep their line."""
    checkpoint = RunCheckpoint()
    checkpoint.signals.received = signal.SIGTERM
    whys: list[str] = []
    monkeypatch.setattr(checkpoint, "_give_up", lambda trainer, signum, why: whys.append(why))
    trainer = cast(L.Trainer, SimpleNamespace(world_size=2))
    checkpoint.on_exception(trainer, cast(L.LightningModule, None), error)
    expected = ["another rank stopped before the end of the epoch (RuntimeError: closed)"]
    assert whys == (expected if gives_up else [])


class _RunsCode:
    """Unpickling this would create ``path``: the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.makedirs, (str(self.path),))


@pytest.mark.slow
def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": _RunsCode(marker)}}, evil)

    result = train_process(
        tmp_path, "test", "--config", str(CONFIGS / "linear.yaml"), "--ckpt_path", str(evil)
    )
    assert result.returncode == 2
    assert "refused to load" in result.stderr and "would run code" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(pickle.UnpicklingError):
        RegressionModule.load_from_checkpoint(evil)
    assert not marker.exists()


@pytest.mark.slow
def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    result = train_process(
        tmp_path, "fit", "--config", str(CONFIGS / "circles.yaml"), "--data.noise", "-1"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid configuration: noise must be zero or more, got -1.0"
    ]
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "logs").exists()


@pytest.mark.slow
def test_a_real_process_refuses_to_resume_another_experiment(tmp_path: Path) -> None:
    """The refusal is the only line the process prints, and the run is left as it was."""
    config = str(CONFIGS / "circles_course.yaml")
    fit = ["fit", "--config", config, "--trainer.max_epochs", "2"]
    assert train_process(tmp_path, *fit).returncode == 0
    before = snapshot(tmp_path)
    result = train_process(
        tmp_path, *fit, "--ckpt_path", "last", "--data.n_samples", "3000", "--data.noise", "0.2"
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: checkpoints/circles_course/last.ckpt was trained with --data.n_samples 1000"
        " (now 3000), --data.noise 0.03 (now 0.2); a resume continues the same experiment:"
        " pass the values it was trained with, or start a new --name"
    ]
    assert snapshot(tmp_path) == before


def test_an_unknown_key_in_a_config_file_is_named(run_cli: RunCLI, tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    text = (CONFIGS / "linear.yaml").read_text().replace("    lr: 0.01", "    learning_rate: 0.01")
    config.write_text(text)
    code, err = run_cli("fit", str(config))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "error: Parser key \"model\": Option 'learning_rate' is not accepted"
        " (see --help for the options)"
    )
    assert not (tmp_path / "checkpoints").exists()


def test_max_epochs_is_checked_against_the_epochs_the_checkpoint_holds(run_cli: RunCLI) -> None:
    """A checkpoint written at an epoch's end holds that epoch: 3 epochs, not 2."""
    every_epoch = ["--checkpoint.every_n_seconds", "0"]
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "3", *every_epoch)[0] == 0
    code, err = run_cli("fit", "linear.yaml", "--ckpt_path", "last", "--trainer.max_epochs", "2")
    assert code == 2 and "has already trained 3 epochs" in err


@pytest.fixture
def sigint_handler_kept() -> Iterator[None]:
    """Lightning's handling of a Ctrl-C leaves SIGINT ignored; the test puts the handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.mark.usefixtures("sigint_handler_kept")
@pytest.mark.parametrize("where", ["making the data", "drawing the plots"])
def test_ctrl_c_outside_the_epochs_is_one_line_and_exit_code_130(
    where: str, run_cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the first epoch (inside the Trainer) and after the fit (outside it)."""

    def ctrl_c(*args: object, **kwargs: object) -> NoReturn:
        raise KeyboardInterrupt

    if where == "making the data":
        monkeypatch.setattr(CirclesDataModule, "generate", ctrl_c)
    else:
        monkeypatch.setattr(plots, "write_fit_plots", ctrl_c)
    code, err = run_cli("fit", "circles.yaml", "--trainer.max_epochs", "2")
    assert code == 130
    last_line = err.strip().splitlines()[-1]
    assert not list(tmp_path.rglob("*.tmp"))
    last = tmp_path / "checkpoints" / "circles" / "last.ckpt"
    if where == "drawing the plots":
        assert last_line == (
            "SIGINT stopped the plots; the fit finished and its checkpoints are written:"
            f" draw the plots with python scripts/plot.py {tmp_path / 'logs' / 'circles'}"
        )
        assert epochs_done(torch.load(last, weights_only=True)) == 2
    else:
        assert last_line == "SIGINT stopped the script; the files it wrote are whole"
        assert not last.exists()


def test_a_second_ctrl_c_while_a_stopped_fit_ends_still_gives_its_resume_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last = tmp_path / "last.ckpt"
    last.write_bytes(b"")

    def stopped_then_ctrl_c() -> None:
        try:
            raise FitStopped(signal.SIGINT, 3, last, "python scripts/train.py fit ...")
        except FitStopped:
            raise KeyboardInterrupt from None  # as in Lightning's teardown after the stop

    assert run_script(stopped_then_ctrl_c) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"SIGINT stopped the fit; {last} holds its 3 finished epochs;"
        " resume with: python scripts/train.py fit ..."
    ]


def test_predict_refuses_several_processes(trained_root: Path, in_trained_run: RunCLI) -> None:
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    before = snapshot(trained_root)
    code, err = in_trained_run("predict", "linear.yaml", "--ckpt_path", "last", *ddp)
    assert code == 2 and "predict writes one predictions.csv from one process" in err
    assert snapshot(trained_root) == before
