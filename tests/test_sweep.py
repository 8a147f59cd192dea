"""Sweeps: seeded, resumable, parallel, every trial a normal run (tiny sweeps, few epochs)."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import (
    CONFIGS,
    ROOT,
    callback_option,
    process_env,
    snapshot,
    train_process,
)
from training.command_line.cli import main as train_main
from training.errors import UserError
from training.run.file_lock import release
from training.run.metrics_csv import METRICS_FILE as METRICS
from training.run.metrics_csv import final_metrics, read_metrics
from training.sweeps import sweep
from training.sweeps.report import report
from training.sweeps.storage import open_storage

SWEEP = ROOT / "scripts" / "sweep.py"
EPOCHS = ["--trainer.max_epochs", "3"]

RunSweep = Callable[..., tuple[int, str, str]]


def sweep_file(directory: Path, **changes: Any) -> Path:
    """A tiny sweep over the project's circles recipe; ``changes`` replace its keys."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "config": str(CONFIGS / "circles.yaml"),
        "metric": "val/loss",
        "direction": "minimize",
        "trials": 3,
        "seed": 7,
        "space": {
            "model.lr": {"low": 0.001, "high": 0.1, "log": True},
            "model.net.hidden_units": {"low": 4, "high": 16},
            "model.optimizer": ["SGD", "Adam"],
        },
    }
    spec.update(changes)
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep_args(config: Path, root: Path, *args: str) -> list[str]:
    return ["--config", str(config), "--trainer.default_root_dir", str(root), *args]


@pytest.fixture
def run_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RunSweep:
    """Runs ``scripts/sweep.py`` in this process; returns exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])

    def run(config: Path, root: Path, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = sweep.main(sweep_args(config, root, *args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def results(root: Path, name: str = "tiny") -> list[dict[str, str]]:
    with open(root / "sweeps" / name / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def by_trial(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["trial"]: row for row in rows}


def metrics_csv(root: Path, run: str) -> str:
    return (root / "logs" / run / "metrics.csv").read_text()


def test_a_seeded_sweep_is_reproducible_and_its_best_config_reproduces_the_best_trial(
    run_sweep: RunSweep, tmp_path: Path
) -> None:
    config = sweep_file(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    code, out, err = run_sweep(config, first, *EPOCHS)
    assert code == 0, err
    assert run_sweep(config, second, *EPOCHS)[0] == 0
    table = results(first)
    assert table == results(second)
    assert sorted(int(row["trial"]) for row in table) == [0, 1, 2]
    assert all(row["state"] == "complete" and row["epochs"] == "3" for row in table)
    for row in table:
        assert metrics_csv(first, row["run"]) == metrics_csv(second, row["run"])
    # Ranked best first; the table is printed too.
    values = [float(row["val/loss"]) for row in table]
    assert values == sorted(values)
    assert f"Best: trial {table[0]['trial']}" in out
    folder = first / "sweeps" / "tiny"
    assert (folder / "history.png").stat().st_size > 0
    assert (folder / "importances.png").stat().st_size > 0

    # Every trial is a normal run: train.py tests its best checkpoint with the run's config.
    best = table[0]["run"]
    assert (first / "checkpoints" / best / "last.ckpt").is_file()
    trial_config = first / "logs" / best / "config.yaml"
    code = train_main(
        ["test", "--config", str(trial_config), "--name", best, "--ckpt_path", "best"]
    )
    assert code == 0
    assert (first / "logs" / best / "test" / "metrics.csv").is_file()

    # best.yaml, fitted from scratch, ends with the best trial's validation metric.
    assert train_main(["fit", "--config", str(folder / "best.yaml")]) == 0
    refit = final_metrics(first / "logs" / "tiny" / "best" / "metrics.csv")["val/loss"]
    assert abs(refit - values[0]) <= 1e-6


def test_pruned_trials_stop_as_normal_runs_and_say_at_which_epoch(
    run_sweep: RunSweep, tmp_path: Path
) -> None:
    # One good and one hopeless learning rate; each epoch's val/loss goes to the pruner.
    config = sweep_file(
        tmp_path,
        trials=4,
        seed=3,
        space={"model.lr": [0.05, 0.00001]},
        pruner={"n_startup_trials": 1, "n_warmup_steps": 1},
    )
    code, out, err = run_sweep(config, tmp_path, "--trainer.max_epochs", "6")
    assert code == 0, err
    table = sorted(results(tmp_path), key=lambda row: int(row["trial"]))
    good_done = False
    for row in table:
        epochs = {int(r["epoch"]) for r in read_metrics(tmp_path / "logs" / row["run"] / METRICS)}
        if float(row["model.lr"]) == 0.00001 and good_done:
            epoch = int(row["state"].removeprefix("pruned at epoch "))
            assert row["state"] == f"pruned at epoch {epoch}" and epoch < 5
            assert f"trial {row['trial']}: pruned at epoch {epoch}" in out
            # The pruned epoch itself is trained and logged; its checkpoints are written.
            assert epochs == set(range(epoch + 1)) and row["epochs"] == str(epoch + 1)
            assert (tmp_path / "checkpoints" / row["run"] / "best.ckpt").is_file()
        else:
            assert row["state"] == "complete" and epochs == set(range(6))
        good_done = good_done or (float(row["model.lr"]) == 0.05)
    assert any(row["state"].startswith("pruned") for row in table)
    # What the pruner saw each epoch is what the run logged for that epoch.
    study = sweep.Sweep(sweep.load_spec(config), "tiny", 4, None, (), str(tmp_path)).open_study()
    for trial in study.get_trials():
        rows = read_metrics(tmp_path / "logs" / f"tiny/trial-{trial.number}" / METRICS)
        logged = {int(r["epoch"]): float(r["val/loss"]) for r in rows if r["val/loss"]}
        assert trial.intermediate_values == logged


BAD_SPACES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown key": (
        {"space": {"model.no_such_option": [1, 2]}},
        "search space model.no_such_option",
    ),
    "empty choices": ({"space": {"model.optimizer": []}}, "has an empty choice list"),
    "low >= high": (
        {"space": {"model.lr": {"low": 0.1, "high": 0.1}}},
        "low (0.1) must be below high (0.1)",
    ),
    "log touching 0": (
        {"space": {"model.lr": {"low": 0.0, "high": 0.1, "log": True}}},
        "a log range must stay above 0",
    ),
    "a metric no run logs": ({"metric": "val/accuracy"}, "no run logs the metric 'val/accuracy'"),
    "a choice the model refuses": (
        {"space": {"model.optimizer": ["SGD", "Adagradd"]}},
        "search space model.optimizer='Adagradd'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_input_is_one_line_and_starts_nothing(
    case: str, run_sweep: RunSweep, tmp_path: Path
) -> None:
    changes, expected = BAD_SPACES[case]
    config = sweep_file(tmp_path, **changes)
    root = tmp_path / "root"
    root.mkdir()
    code, _, err = run_sweep(config, root, *EPOCHS)
    assert code == 2
    assert err.startswith("error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(root) == {}


@pytest.mark.parametrize(
    "options, says",
    [
        (["--workers", "two"], "argument --workers: invalid int value: 'two'"),
        (["--trials"], "argument --trials: expected one argument"),
        ([], "the following arguments are required: --config"),
    ],
)
def test_a_bad_sweep_option_is_one_line_and_starts_nothing(
    options: list[str],
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As ``train.py`` says a bad option: one line with the usage, not argparse's usage text."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    monkeypatch.chdir(tmp_path)
    config = ["--config", str(sweep_file(tmp_path))] if options else []
    before = snapshot(tmp_path)
    assert sweep.main([*config, *options]) == 2
    usage = "python scripts/sweep.py --config SWEEP.yaml [train.py options]"
    assert capsys.readouterr().err == f"error: {says} (usage: {usage})\n"
    assert snapshot(tmp_path) == before


# Trial options under which a sweep has nothing to compare, or trials would not be one process.
REFUSED_TRIAL_OPTIONS: dict[str, tuple[list[str], str]] = {
    "no validation": (
        ["--trainer.limit_val_batches", "0"],
        "--trainer.limit_val_batches 0: the trials never validate, so they log no 'val/loss';"
        " drop it, or sweep on a metric they log: train/acc,",
    ),
    "validation after the last epoch": (
        ["--trainer.check_val_every_n_epoch", "5"],
        "--trainer.check_val_every_n_epoch 5 with --trainer.max_epochs 3: the trials never",
    ),
    # train.py fit refuses these itself; the sweep says so, not that its space is wrong.
    "no epoch": (["--trainer.max_epochs", "0"], "error: --trainer.max_epochs 0 "),
    "no step": (["--trainer.max_steps", "0"], "error: --trainer.max_steps 0 "),
    "no training batch": (
        ["--trainer.limit_train_batches", "0"],
        "error: --trainer.limit_train_batches 0 ",
    ),
    "a smoke test": (
        ["--trainer.fast_dev_run", "true"],
        "--trainer.fast_dev_run true is a smoke test that logs nothing, so the trials would have"
        " no 'val/loss' to compare; drop it",
    ),
    "two devices": (
        ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"],
        "a sweep runs each trial as one process on one device, not devices 2, num_nodes 1,"
        " strategy ddp; drop those options and pass --workers N to run N trials at once",
    ),
    "two nodes": (["--trainer.num_nodes", "2"], "not devices 1, num_nodes 2, strategy auto;"),
    "a data-parallel strategy": (["--trainer.strategy", "ddp_spawn"], "strategy ddp_spawn;"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_TRIAL_OPTIONS))
def test_trial_options_a_sweep_cannot_use_are_one_line_and_start_nothing(
    case: str, run_sweep: RunSweep, tmp_path: Path
) -> None:
    """Before, trials that log no metric ended the sweep in an IndexError (on every rerun
    too), and a data-parallel trial's launcher started the whole sweep again as rank 1."""
    options, expected = REFUSED_TRIAL_OPTIONS[case]
    root = tmp_path / "root"
    root.mkdir()
    code, _, err = run_sweep(sweep_file(tmp_path), root, *EPOCHS, *options)
    assert code == 2
    assert err.startswith("error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(root) == {}


def test_a_sweep_on_a_training_metric_needs_no_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    spec = sweep.load_spec(sweep_file(tmp_path, metric="train/loss"))
    root = ["--trainer.default_root_dir", str(tmp_path / "root")]
    probe = sweep.check(spec, [*root, *EPOCHS, "--trainer.limit_val_batches", "0"])
    assert "train/loss" in probe.logged and "val/loss" not in probe.logged


def test_a_trial_that_logged_no_metric_is_failed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Such a trial is refused before it starts; one of a study started before that is
    told FAIL (it used to end the sweep in an IndexError, and every rerun with it)."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    tiny, study = tiny_study(tmp_path)
    args = ("--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    no_validation = replace(tiny, args=(*args, "--trainer.limit_val_batches", "0"))
    trial, lock = claim(no_validation, study)
    sweep.run_trial(no_validation, study, trial)
    release(lock)
    [failed] = study.get_trials()
    reason = f"{tmp_path / 'logs' / 'tiny' / 'trial-0' / METRICS} holds no 'val/loss'"
    assert failed.state == TrialState.FAIL and failed.user_attrs["error"] == reason
    assert f"trial 0: failed: {reason}" in capsys.readouterr().out


def test_a_report_removes_the_temporary_files_of_a_killed_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny, study = tiny_study(tmp_path)
    study.add_trial(optuna.trial.create_trial(value=0.5))
    with subprocess.Popen(["true"]) as killed:  # a process that is gone, as a killed one is
        pass
    for name in ("history.png", "results.csv"):
        (tiny.folder / f"{name}.{killed.pid}.tmp").write_bytes(b"half a file")
    report(tiny, study)
    assert not list(tiny.folder.glob("*.tmp"))
    assert (tiny.folder / "results.csv").is_file() and (tiny.folder / "history.png").is_file()


def test_an_unreachable_storage_is_one_line_and_starts_nothing(
    run_sweep: RunSweep, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing"
    code, _, err = run_sweep(sweep_file(tmp_path), root, "--storage", url, *EPOCHS)
    assert code == 2
    assert err.startswith(f"error: cannot open storage {url}: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert snapshot(root) == {}


def sweep_process(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``scripts/sweep.py`` as a real process, in a process group of its own."""
    return train_process(root, *args, timeout=600, script=SWEEP)


@pytest.mark.slow
def test_killed_sweep_reruns_to_the_same_result_losing_and_repeating_nothing(
    run_sweep: RunSweep, tmp_path: Path
) -> None:
    config = sweep_file(tmp_path)
    common = ["--trainer.max_epochs", "4", "--checkpoint.every_n_seconds", "0"]
    reference = tmp_path / "reference"
    assert run_sweep(config, reference, *common)[0] == 0

    killed = tmp_path / "killed"
    killed.mkdir()
    kill = callback_option("KillSweepOnce", run="trial-1", epoch=2, marker=str(tmp_path / "once"))
    command = ["--config", str(config), *common, kill]
    first = sweep_process(killed, *command)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    rerun = sweep_process(killed, *command)
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    # Trial 0 had finished: not run again. Trial 1 resumed from its own last.ckpt.
    assert "trial 0:" not in rerun.stdout
    assert "Resuming run 'tiny/trial-1' from checkpoints/tiny/trial-1/last.ckpt" in rerun.stderr
    assert not list((killed / "logs" / "tiny").glob("trial-*.*"))  # no run restarted aside
    assert by_trial(results(killed)) == by_trial(results(reference))
    for row in results(reference):
        assert metrics_csv(killed, row["run"]) == metrics_csv(reference, row["run"])


# scripts/sweep.py, SIGKILLed with its process group as it starts to import Optuna (torch and
# Lightning imported), once: argv[1] is a marker file, argv[2] the script, the rest its options.
KILLED_IN_IMPORTS = """
import os, runpy, signal, sys
from pathlib import Path

marker, sys.argv = Path(sys.argv[1]), sys.argv[2:]

class KillOnOptuna:
    def find_spec(self, name, path=None, target=None):
        if name == "optuna" and not marker.exists():
            marker.touch()
            os.killpg(os.getpgrp(), signal.SIGKILL)

sys.meta_path.insert(0, KillOnOptuna())
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# The callbacks of tests/kill_points.py and tests/sweep_kill_points.py that fire once (their
# marker file), each where a sweep of two trials of three epochs is SIGKILLed.
KILL_POINTS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "during the imports": None,
    "before the running trial's first checkpoint": (
        "kill_points.KillSweepOnce",
        {"run": "trial-1", "epoch": 0},
    ),
    "mid-epoch": ("kill_points.KillSweepOnce", {"run": "trial-1", "epoch": 1}),
    "during a checkpoint write": (
        "sweep_kill_points.KillSweepOnceWriting",
        {"file": "last.ckpt", "run": "trial-1", "epoch": 1},
    ),
    "during the report": ("sweep_kill_points.KillSweepOnceWriting", {"file": "history.png"}),
}
SHORT = ["--trials", "2", "--trainer.max_epochs", "3", "--checkpoint.every_n_seconds", "0"]


@pytest.fixture(scope="module")
def never_killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The short sweep's YAML and the root of its run, in this process, with no kill."""
    folder = tmp_path_factory.mktemp("never_killed")
    config = sweep_file(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [str(SWEEP)])
        assert sweep.main(sweep_args(config, folder, *SHORT)) == 0
    return config, folder


@pytest.mark.slow
@pytest.mark.parametrize("phase", KILL_POINTS)
def test_a_sweep_killed_at_any_phase_completes_on_the_same_command(
    phase: str, never_killed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each trial's metrics.csv then holds each epoch once, as the run never killed has it,
    and no temporary file of a killed write is left."""
    config, reference = never_killed
    marker = tmp_path / "killed"
    root = tmp_path / "root"
    root.mkdir()
    command = ["--config", str(config), *SHORT]
    script = SWEEP
    kill = KILL_POINTS[phase]
    if kill is None:
        script = tmp_path / "killed_in_imports.py"
        script.write_text(KILLED_IN_IMPORTS)
        command = [str(marker), str(SWEEP), *command]
    else:
        callback = {"class_path": kill[0], "init_args": {**kill[1], "marker": str(marker)}}
        command.append("--trainer.callbacks=" + json.dumps([callback]))
    first = train_process(root, *command, timeout=600, script=script)
    assert first.returncode == -signal.SIGKILL and marker.exists(), first.stderr[-2000:]
    rerun = train_process(root, *command, timeout=600, script=script)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert by_trial(results(root)) == by_trial(results(reference))
    for row in results(reference):
        assert metrics_csv(root, row["run"]) == metrics_csv(reference, row["run"])
    assert not list(root.rglob("*.tmp"))


@pytest.mark.slow
def test_workers_take_distinct_trials_each_equal_to_a_single_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(ROOT / "scripts" / "train.py")])
    config = sweep_file(tmp_path, trials=4)
    done = sweep_process(tmp_path, "--config", str(config), "--workers", "2", *EPOCHS)
    assert done.returncode == 0, done.stderr[-2000:]
    table = results(tmp_path)
    assert sorted(int(row["trial"]) for row in table) == [0, 1, 2, 3]
    assert all(row["state"] == "complete" for row in table)
    assert sorted(p.name for p in (tmp_path / "logs" / "tiny").iterdir() if p.is_dir()) == [
        f"trial-{n}" for n in range(4)
    ]
    for row in table:
        args = ["--model.lr", row["model.lr"], "--model.optimizer", row["model.optimizer"]]
        args += ["--model.net.hidden_units", row["model.net.hidden_units"]]
        single = tmp_path / "single" / row["trial"]
        root = ["--trainer.default_root_dir", str(single)]
        code = train_main(["fit", "--config", str(CONFIGS / "circles.yaml"), *EPOCHS, *args, *root])
        assert code == 0
        assert metrics_csv(single, "circles") == metrics_csv(tmp_path, row["run"])


def tiny_study(root: Path, storage: str | None = None) -> tuple[sweep.Sweep, optuna.Study]:
    """The tiny sweep's study, created empty in ``storage`` (default: its journal)."""
    tiny = sweep.Sweep(sweep.load_spec(sweep_file(root)), "tiny", 3, storage, (), str(root))
    optuna.create_study(study_name="tiny", storage=open_storage(storage, tiny.folder))
    return tiny, tiny.open_study()


def claim(tiny: sweep.Sweep, study: optuna.Study) -> tuple[optuna.Trial, int]:
    """What ``sweep.claim`` hands a worker: its next trial and the lock held for it."""
    claimed = sweep.claim(tiny, study)
    assert claimed is not None
    return claimed


def test_a_trial_its_worker_finishes_while_another_looks_is_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker reads the running trials; before it tries a trial's lock, that trial's own
    worker tells its result and lets go. The lock is then free, but the trial is done."""
    tiny, study = tiny_study(tmp_path)
    first, first_lock = claim(tiny, study)
    try_lock = sweep.try_lock

    def first_finishes_meanwhile(path: Path) -> int | None:
        if path == sweep.trial_lock(tiny, first.number):
            study.tell(first, 0.5)
            release(first_lock)
        return try_lock(path)

    monkeypatch.setattr(sweep, "try_lock", first_finishes_meanwhile)
    second, second_lock = claim(tiny, study)
    release(second_lock)
    assert (first.number, second.number) == (0, 1)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE, TrialState.RUNNING]


def test_ctrl_c_between_trials_is_one_line_and_the_same_command_carries_on(
    run_sweep: RunSweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after trial 1 is claimed, before its fit: exit 130, and the rerun takes it up."""
    config = sweep_file(tmp_path)
    run_trial = sweep.run_trial

    def ctrl_c_before_trial_1(tiny: sweep.Sweep, study: optuna.Study, trial: Any) -> None:
        if trial.number == 1:
            raise KeyboardInterrupt
        run_trial(tiny, study, trial)

    monkeypatch.setattr(sweep, "run_trial", ctrl_c_before_trial_1)
    code, out, err = run_sweep(config, tmp_path, *EPOCHS)
    assert code == 130
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("SIGINT stopped the sweep; ")
    command = shlex.split(last_line.partition("Resume with: ")[2])
    assert command[1:] == [str(SWEEP), *sweep_args(config, tmp_path, *EPOCHS)]
    assert "trial 0:" in out and "trial 1:" not in out

    monkeypatch.setattr(sweep, "run_trial", run_trial)
    code, out, err = run_sweep(config, tmp_path, *EPOCHS)
    assert code == 0, err
    assert "trial 0:" not in out and "trial 1:" in out
    assert sorted(by_trial(results(tmp_path))) == ["0", "1", "2"]


@pytest.mark.parametrize("storage", ["journal", "database"])
def test_a_killed_trial_is_resumed_by_the_next_run_on_any_host_that_shares_its_locks(
    storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requeued job or a new container reruns a journal sweep under another host name, and
    resumes the trial it finds unlocked. With a storage URL the trial may be running on
    another machine, whose locks are not these: it is left to its host."""
    url = None if storage == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    tiny, study = tiny_study(tmp_path, url)
    killed, lock = claim(tiny, study)
    release(lock)  # its process was killed
    monkeypatch.setattr(sweep, "HOST", "another-" + sweep.HOST)
    taken, lock = claim(tiny, study)
    release(lock)
    assert (taken.number == killed.number) == (storage == "journal")


@pytest.mark.parametrize("changed", ["settings", "train.py options"])
def test_a_sweep_recorded_with_other_settings_or_options_is_refused_and_kept(
    changed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the study records only what differs: a machine that started it with other
    options may still be recording the rest."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    tiny, study = tiny_study(tmp_path)
    key = "sweep" if changed == "settings" else "args"
    study.set_user_attr(key, "other")
    args = ["--trainer.default_root_dir", str(tmp_path)]
    with pytest.raises(UserError, match=f"^sweep 'tiny' was started with other {changed} "):
        sweep.prepare(tiny.spec, args, "tiny", 3, None)
    assert study.user_attrs == {key: "other"}


def test_of_two_machines_starting_a_sweep_with_other_settings_one_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both find nothing recorded and record their own; the other machine's settings land
    after this one's options, and this one refuses."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    tiny, _ = tiny_study(tmp_path)
    set_user_attr = optuna.Study.set_user_attr

    def and_the_other_machine(study: optuna.Study, key: str, value: Any) -> None:
        set_user_attr(study, key, value)
        if key == "args":
            set_user_attr(study, "sweep", "other")

    monkeypatch.setattr(optuna.Study, "set_user_attr", and_the_other_machine)
    args = ["--trainer.default_root_dir", str(tmp_path)]
    with pytest.raises(UserError, match=r"^sweep 'tiny' was started with other settings "):
        sweep.prepare(tiny.spec, args, "tiny", 3, None)


def test_a_sweep_whose_other_machine_is_still_recording_it_is_joined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two machines start the same sweep at once: one has created the study and recorded
    its settings, but not yet its train.py options. The other joins it."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    tiny, study = tiny_study(tmp_path)
    study.set_user_attr("sweep", tiny.spec.fingerprint())
    args = ["--trainer.default_root_dir", str(tmp_path)]
    joined = sweep.prepare(tiny.spec, args, "tiny", 3, None)
    assert joined.open_study().user_attrs == {"sweep": tiny.spec.fingerprint(), "args": []}


def test_machines_each_writing_under_a_root_of_their_own_share_a_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's recipe for many machines, the root in either form: where a machine
    writes is not part of the experiment, and its trials write there."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    spec = sweep.load_spec(sweep_file(tmp_path))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = ["--trainer.default_root_dir", str(tmp_path / "a")]
    sweep.prepare(spec, [*first, *EPOCHS], "tiny", 3, url)
    second = f"--trainer.default_root_dir={tmp_path / 'b'}"
    joined = sweep.prepare(spec, [second, *EPOCHS], "tiny", 3, url)
    assert joined.open_study().user_attrs["args"] == EPOCHS
    assert joined.root == str(tmp_path / "b") and second in joined.trial_args(0, {})
    other = [f"--trainer.default_root_dir={tmp_path / 'c'}", "--trainer.max_epochs", "4"]
    with pytest.raises(UserError, match=r"^sweep 'tiny' was started with other train.py options"):
        sweep.prepare(spec, other, "tiny", 3, url)


def test_a_sweep_recorded_with_its_first_machines_root_is_joined_from_another_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweeps recorded before the root was left out hold it among their options."""
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    tiny, study = tiny_study(tmp_path)
    study.set_user_attr("sweep", tiny.spec.fingerprint())
    study.set_user_attr("args", ["--trainer.default_root_dir", "/first/machine", *EPOCHS])
    args = ["--trainer.default_root_dir", str(tmp_path), *EPOCHS]
    assert sweep.prepare(tiny.spec, args, "tiny", 3, None).root == str(tmp_path)


def postgres_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL server of its own on localhost, for this test only."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries missing: apt-get install -y postgresql")
    # pytest's tmp_path is private to root; the server's own user must enter this folder.
    folder = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
    folder.chmod(0o755)
    data = folder / "pgdata"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    # -l: the server writes to its own log, not to the pipes this test reads (it would hold them).
    log = str(folder / "server.log")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_sweep_in_postgresql(postgres_url: str, tmp_path: Path) -> None:
    config = sweep_file(tmp_path, trials=4)
    args = ["--config", str(config), "--storage", postgres_url, *EPOCHS]
    done = sweep_process(tmp_path, *args, "--workers", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    table = results(tmp_path)
    assert sorted(int(row["trial"]) for row in table) == [0, 1, 2, 3]
    assert all(row["state"] == "complete" for row in table)
    assert not (tmp_path / "sweeps" / "tiny" / "study.journal").exists()
    # A second machine running the same command finds the sweep complete.
    again = sweep_process(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not re.search(r"^trial \d+:", again.stdout, flags=re.MULTILINE)


# Opens the storage URL argv[1] once the file argv[2] exists, having said it is ready (argv[3]).
OPEN_TOGETHER = """
import sys, time
from pathlib import Path
from training.sweeps.storage import open_storage
go, ready = Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.001)
open_storage(sys.argv[1], Path("."))
"""


@pytest.mark.slow
def test_machines_starting_together_on_a_new_database_all_open_it(
    postgres_url: str, tmp_path: Path
) -> None:
    """A job array starts every machine's sweep at the same moment: each finds the database
    empty and creates its tables, and every one of them goes on. (Whether the processes
    meet in the tables' creation depends on timing: without the retries, 5 runs of 5 failed.)"""
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{n}" for n in range(8)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, postgres_url, str(go), str(ready)],
            cwd=ROOT,
            env=process_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        while not all(ready.exists() for ready in readies):
            assert all(p.poll() is None for p in processes), "a process ended before the start"
            time.sleep(0.01)
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0] * len(processes), errors


@pytest.mark.slow
def test_the_readme_sweep_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each ``scripts/sweep.py`` command of the README (cut to 2 trials of 2 epochs), then
    the README's ``train.py`` commands on what they left: a trial's test, the best config's fit.

    The PostgreSQL recipe runs in ``test_two_workers_share_a_sweep_in_postgresql``.
    """
    text = (ROOT / "docs/sweeps.md").read_text()
    sweeps = re.findall(r"^\.venv/bin/python scripts/sweep\.py (.+)$", text, flags=re.MULTILINE)
    trains = re.findall(r"`scripts/train\.py ((?:fit|test) --config (?:logs|sweeps)/[^`]+)`", text)
    assert len(sweeps) >= 2 and len(trains) == 2
    monkeypatch.setattr(sys, "argv", [str(SWEEP)])
    monkeypatch.chdir(ROOT)
    short = ["--trials", "2", "--trainer.max_epochs", "2", "--trainer.default_root_dir"]
    for command in sweeps:
        code = sweep.main([*shlex.split(command), *short, str(tmp_path)])
        assert code == 0, capsys.readouterr().err[-2000:]
    monkeypatch.chdir(tmp_path)
    for command in trains:
        assert train_main(shlex.split(command)) == 0, command
