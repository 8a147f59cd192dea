"""Hyperparameter sweeps on Optuna, where every trial is a normal run of ``train.py fit``.

``scripts/sweep.py --config configs/sweeps/circles_course.yaml`` checks the
sweep, opens its study and runs trials until the planned number is reached.
Trial ``N`` of sweep ``S`` is the run ``S/trial-N``: its own ``last.ckpt``,
``best.ckpt``, ``metrics.csv`` and ``config.yaml``, made by the project's CLI.

- Sampling: TPE seeded with the sweep's seed plus the trial number, so a
  trial's parameters depend only on the seed and the trials finished before
  it, not on which process asks or whether an earlier process was killed.
- Pruning: after each epoch's validation the metric goes to ``trial.report``
  and the pruner decides; a pruned trial stops at the end of that epoch as a
  normal run does (checkpoints and rows written) and is marked pruned.
- Kill and rerun: a running trial holds a lock file that the kernel releases
  when its process dies. A rerun finds the RUNNING trials whose lock is free (with
  a storage URL, those of this machine) and resumes each from its own
  ``last.ckpt`` (``--ckpt_path auto``).
- ``--workers N``: N processes on one study; a lock around "claim or ask"
  gives every trial to exactly one of them. A trial itself is one process on
  one device: Lightning's data-parallel launcher would start the whole sweep
  again for each rank.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import socket
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import ParallelStrategy
from optuna.trial import TrialState

from training.command_line.cli import AUTO, WorkflowCLI
from training.command_line.known_warnings import quiet_known_noise
from training.command_line.script_process import script_command
from training.errors import ScriptArgumentParser, Stopped, TrainingDiverged, UserError, run_script
from training.outputs.predictions import bare_trainer
from training.run.file_lock import locked, release, try_lock
from training.run.folders import log_dir
from training.run.metrics_csv import METRICS_FILE, read_metrics
from training.sweeps.plan import Sweep
from training.sweeps.space import Choice, SweepSpec, load_spec
from training.sweeps.storage import open_storage

HOST = socket.gethostname()
# A trial asked for but not yet claimed by its process is left alone this long.
CLAIM_GRACE = timedelta(minutes=1)
OWN_OPTIONS = ("--name", "--ckpt_path")
# Where a machine writes its trials' files; not part of the experiment that machines share.
ROOT_OPTION = "--trainer.default_root_dir"


@contextmanager
def lightning_info_quiet() -> Iterator[None]:
    """Hides Lightning's device report and model summary; a sweep prints one line per trial."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class CheckCLI(WorkflowCLI):
    """Parses and builds a trial's config as ``fit`` does, and writes nothing.

    With ``probe`` it trains one batch in a bare Trainer (no logger, no
    checkpoint) to learn which metrics the runs log.
    """

    def __init__(self, args: list[str], probe: bool) -> None:
        self.probe = probe
        self.logged: set[str] = set()
        super().__init__(args=args)

    def before_fit(self) -> None:
        """Nothing is prepared: no run folder is made or moved."""

    def _lock_run(self, root: str | None, name: str) -> None:
        """No lock either: the check writes nothing and trains no run."""

    def fit(self, **kwargs: Any) -> None:
        if not self.probe:
            return
        trainer = bare_trainer(
            max_epochs=1,
            limit_train_batches=1,
            # Trials that never validate log no validation metric: neither does the probe.
            limit_val_batches=0 if never_validates(self.config["fit"].trainer) else 1,
            num_sanity_val_steps=0,
        )
        trainer.fit(kwargs["model"], datamodule=kwargs["datamodule"])
        self.logged = set(trainer.callback_metrics)

    def after_fit(self) -> None:
        """No plots and no summary: nothing was trained."""


class TrialCLI(WorkflowCLI):
    """``train.py fit`` with the sweep's callbacks added to the run's own, plots only if asked."""

    def __init__(self, args: list[str], callbacks: list[Callback], plots: bool) -> None:
        self.trial_callbacks = callbacks
        self.plots = plots
        super().__init__(args=args)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        configured = self.config_init[str(self.subcommand)].trainer.callbacks or []
        if not isinstance(configured, list):
            configured = [configured]
        return super().instantiate_trainer(callbacks=[*configured, *self.trial_callbacks], **kwargs)

    def after_fit(self) -> None:
        if self.plots:
            super().after_fit()


class PruneTrial(Callback):
    """Reports each epoch's validation metric to the trial and stops the fit if it is pruned.

    Optuna's documented pruning protocol (``trial.report`` then
    ``trial.should_prune`` once per epoch), as optuna-integration's
    ``PyTorchLightningPruningCallback`` does it, except for how the fit ends:
    that callback raises ``TrialPruned`` inside the fit, which drops the
    epoch's rows and any checkpoint not yet written. Here the Trainer is asked
    to stop, so a pruned trial ends as a normal run, with ``last.ckpt``,
    ``best.ckpt`` and every epoch's row.
    """

    def __init__(self, trial: optuna.Trial, monitor: str, reported: set[int]) -> None:
        self.trial = trial
        self.monitor = monitor
        self.reported = reported  # steps reported before a kill: a resume reaches them again
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        if epoch not in self.reported:
            self.trial.report(float(trainer.callback_metrics[self.monitor]), step=epoch)
            self.reported.add(epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True


def check(spec: SweepSpec, args: Sequence[str]) -> CheckCLI:
    """Builds a trial at every end of every range and every choice; refuses what would fail.

    Returns the check of the first trial, whose config and logged metrics the sweep uses.
    """
    for option in OWN_OPTIONS:
        if any(a == option or a.startswith(option + "=") for a in args):
            raise UserError(f"{option} is set by the sweep for each trial; leave it out")
    first = {key: dim.candidates()[0] for key, dim in spec.space.items()}
    variants = [(None, first)] + [
        (key, {**first, key: value})
        for key, dim in spec.space.items()
        for value in dim.candidates()[1:]
    ]
    sweep = Sweep(spec, spec.name, spec.trials, None, tuple(args), None)
    probe: CheckCLI | None = None
    with lightning_info_quiet():
        for key, params in variants:
            try:
                cli = CheckCLI(sweep.trial_args(0, params), probe=probe is None)
            except UserError as error:
                if key is None and _refused(sweep, {}):
                    raise  # by the options themselves, whatever the space
                key = key or _culprit(sweep, params)
                where = f"{key}={params[key]!r}" if key else ", ".join(spec.space)
                raise UserError(f"search space {where}: {error}") from error
            probe = probe or cli
    assert probe is not None
    check_one_process(probe)
    trainer = probe.config["fit"].trainer
    if trainer.fast_dev_run:  # train.py fit refuses a max_epochs, max_steps... of 0 itself
        raise UserError(
            f"--trainer.fast_dev_run {str(trainer.fast_dev_run).lower()} is a smoke test that logs"
            f" nothing, so the trials would have no {spec.metric!r} to compare; drop it"
            " (--trainer.max_epochs 1 makes a quick sweep)"
        )
    if spec.metric not in probe.logged:
        logged = ", ".join(sorted(probe.logged))
        if cause := never_validates(trainer):
            raise UserError(
                f"{cause}: the trials never validate, so they log no {spec.metric!r};"
                f" drop it, or sweep on a metric they log: {logged}"
            )
        raise UserError(f"no run logs the metric {spec.metric!r}; choose one of: {logged}")
    return probe


def check_one_process(probe: CheckCLI) -> None:
    """Refuses data-parallel trials: Lightning would start the whole sweep again for each rank.

    ``probe.trainer`` is the trials' Trainer as configured, built but never run:
    Lightning itself resolves ``auto`` and ``-1`` to a number of devices.
    """
    trainer = probe.trainer
    if trainer.world_size > 1 or isinstance(trainer.strategy, ParallelStrategy):
        options = probe.config["fit"].trainer
        asked = f"devices {options.devices}, num_nodes {options.num_nodes}, strategy"
        raise UserError(
            f"a sweep runs each trial as one process on one device, not {asked}"
            f" {options.strategy}; drop those options and pass --workers N to run N trials at once"
        )


def never_validates(trainer: Any) -> str | None:
    """The trial option, as typed, under which no epoch validates, if any."""
    if trainer.limit_val_batches == 0:
        return f"--trainer.limit_val_batches {trainer.limit_val_batches}"
    every, epochs = trainer.check_val_every_n_epoch, trainer.max_epochs
    if isinstance(every, int) and isinstance(epochs, int) and 0 < epochs < every:
        return f"--trainer.check_val_every_n_epoch {every} with --trainer.max_epochs {epochs}"
    return None


def _culprit(sweep: Sweep, params: dict[str, Choice]) -> str | None:
    """The key that breaks the config on its own, to name it in the error."""
    return next((key for key, value in params.items() if _refused(sweep, {key: value})), None)


def _refused(sweep: Sweep, params: dict[str, Choice]) -> bool:
    try:
        CheckCLI(sweep.trial_args(0, params), probe=False)
    except UserError:
        return True
    return False


def prepare(
    spec: SweepSpec, args: Sequence[str], name: str, trials: int, storage: str | None
) -> Sweep:
    """Checks everything, then creates (or reopens) the study. Nothing is written before."""
    probe = check(spec, args)
    root = probe.config["fit"].trainer.default_root_dir
    sweep = Sweep(spec, name, trials, storage, tuple(args), root)
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage, sweep.folder),
        direction=spec.direction,
        load_if_exists=True,
    )
    wanted = {"sweep": spec.fingerprint(), "args": experiment_args(args)}
    refuse_other_sweep(study, wanted)
    recorded = study.user_attrs
    for key, value in wanted.items():
        # Key by key: a machine starting at the same moment may have written one of them.
        if key not in recorded:
            study.set_user_attr(key, value)
    # Such a machine started with other settings may have written over them: it, or this
    # one, refuses.
    refuse_other_sweep(study, wanted)
    return sweep


def experiment_args(args: Sequence[str]) -> list[str]:
    """The train.py options that make the experiment: ``args`` less ``--trainer.default_root_dir``.

    Machines on one storage each write their trials under a root of their own.
    """
    kept: list[str] = []
    given = iter(args)
    for arg in given:
        if arg == ROOT_OPTION:
            next(given, None)
        elif not arg.startswith(ROOT_OPTION + "="):
            kept.append(arg)
    return kept


def refuse_other_sweep(study: optuna.Study, wanted: dict[str, Any]) -> None:
    """Refuses a study that records other sweep settings or train.py options than ``wanted``."""
    recorded = study.user_attrs
    for key, value in wanted.items():
        if key not in recorded:
            continue
        # Studies recorded before the root was left out hold it among their options.
        was = recorded[key]
        if key == "args" and isinstance(was, list):
            was = experiment_args(was)
        if was != value:
            what = "train.py options" if key == "args" else "settings"
            raise UserError(
                f"sweep {study.study_name!r} was started with other {what} ({recorded[key]});"
                " rerun it as it was, or pass --name for a new sweep"
            )


def claim(sweep: Sweep, study: optuna.Study) -> tuple[optuna.Trial, int] | None:
    """The next trial for this process and the lock that keeps it: a killed one, else a new one."""
    with locked(sweep.folder / "locks" / "sweep.lock"):
        now = datetime.now()
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host = frozen.user_attrs.get("host")
            started = frozen.datetime_start or now
            # A storage server's study is shared by machines whose trial locks are their
            # own; a journal's trials all lock in its folder, whatever the host's name.
            elsewhere = sweep.storage is not None and host != HOST
            if elsewhere and (host is not None or now - started < CLAIM_GRACE):
                continue
            fd = try_lock(trial_lock(sweep, frozen.number))
            if fd is None:
                continue
            # Its worker may have told its result and let go of the lock since the list was read.
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if any(t.number == frozen.number for t in running):
                # Optuna has no public way to take up a trial another process started.
                return optuna.Trial(study, frozen._trial_id), fd
            release(fd)
        if len(study.get_trials(deepcopy=False)) >= sweep.trials:
            return None
        trial = study.ask()
        fd = try_lock(trial_lock(sweep, trial.number))
        assert fd is not None, "a new trial's lock is free"
        trial.set_user_attr("host", HOST)
        return trial, fd


def trial_lock(sweep: Sweep, number: int) -> Path:
    return sweep.folder / "locks" / f"trial-{number}.lock"


def run_trial(sweep: Sweep, study: optuna.Study, trial: optuna.Trial) -> None:
    """Fits trial N as the run ``<sweep>/trial-N``, resuming its ``last.ckpt``; tells Optuna."""
    spec = sweep.spec
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + trial.number)
    params = {key: dim.suggest(trial, key) for key, dim in spec.space.items()}
    name = sweep.run_name(trial.number)
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    pruned_at = frozen.user_attrs.get("pruned_at_epoch")
    if pruned_at is None:  # not pruned before a kill: fit, or resume the fit
        # auto: a trial killed after a checkpoint resumes from its own last.ckpt.
        args = [*sweep.trial_args(trial.number, params), "--ckpt_path", AUTO]
        prune = PruneTrial(trial, spec.metric, set(frozen.intermediate_values))
        try:
            with lightning_info_quiet():
                TrialCLI(args, [prune], plots=spec.plots)
        except TrainingDiverged as error:
            fail(study, trial, str(error))
            return
        pruned_at = prune.pruned_at
    metrics = log_dir(sweep.root, name) / METRICS_FILE
    rows = [r for r in read_metrics(metrics) if r.get(spec.metric)]
    if not rows:  # e.g. a study started before ``check`` refused such trials
        fail(study, trial, f"{metrics} holds no {spec.metric!r}")
        return
    epochs = int(float(rows[-1]["epoch"])) + 1
    value = float(rows[-1][spec.metric])
    trial.set_user_attr("epochs", epochs)
    shown = ", ".join(f"{key}={param}" for key, param in params.items())
    if pruned_at is not None:
        trial.set_user_attr("pruned_at_epoch", pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
        print(f"trial {trial.number}: pruned at epoch {pruned_at} ({shown})", flush=True)
    else:
        study.tell(trial, value)
        print(f"trial {trial.number}: {spec.metric} {value:.6g} ({shown})", flush=True)


def fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("error", reason)
    study.tell(trial, state=TrialState.FAIL)
    print(f"trial {trial.number}: failed: {reason}", flush=True)


def work(sweep: Sweep, command: str) -> None:
    """One worker: claims and runs trials until the sweep has its planned number.

    A signal stops it: during a trial's fit at the end of an epoch, anywhere
    else (Ctrl-C between trials) where it is. A trial it leaves unfinished is
    taken up by the next run of ``command``, the one that started the sweep (``claim``).
    """
    try:
        study = sweep.open_study()
        while (claimed := claim(sweep, study)) is not None:
            trial, fd = claimed
            try:
                run_trial(sweep, study, trial)
            finally:
                release(fd)
    except Stopped as stop:
        raise stopped(stop.signum, command) from stop
    except KeyboardInterrupt as interrupt:
        raise stopped(signal.SIGINT, command) from interrupt


def stopped(signum: int, command: str) -> Stopped:
    """A signal stopped the sweep; ``command``, the same one, carries on."""
    return Stopped(
        signum,
        f"{signal.Signals(signum).name} stopped the sweep; a trial it was running keeps its"
        f" finished epochs in its last.ckpt. Resume with: {command}",
    )


def _worker(sweep: Sweep, command: str) -> None:
    quiet()
    sys.exit(run_script(lambda: work(sweep, command)))


def parse_args(args: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own options, and the rest, which go to every trial's ``train.py fit``."""
    parser = ScriptArgumentParser(
        "Runs an Optuna sweep in which every trial is a train.py fit."
        " Other options (such as --trainer.max_epochs 50) go to every trial.",
        "python scripts/sweep.py --config SWEEP.yaml [train.py options]",
    )
    parser.add_argument("--config", required=True, help="the sweep's YAML (configs/sweeps/)")
    parser.add_argument("--name", help="the sweep's name (default: the YAML's name)")
    parser.add_argument(
        "--trials", type=int, help="the planned number of trials (default: the YAML's)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes working on the sweep")
    parser.add_argument(
        "--storage",
        help="an Optuna storage URL, e.g. postgresql+psycopg://user@host/db"
        " (default: a journal file in the sweep's folder)",
    )
    return parser.parse_known_args(args)


def quiet() -> None:
    quiet_known_noise()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Trials run the CLI in this process, with arguments of their own rather than sys.argv.
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")


def main(args: Sequence[str] | None = None) -> int:
    quiet()
    command = script_command(sys.argv[1:] if args is None else args)
    return run_script(lambda: sweep_with(*parse_args(args), command))


def sweep_with(options: argparse.Namespace, trial_args: list[str], command: str) -> int | None:
    """The sweep ``options`` ask for, run to its end; a failed worker's exit code if any.

    ``command`` is the one that ran it, which a stopped sweep gives to carry on.
    """
    if options.workers < 1:
        raise UserError(f"--workers must be 1 or more, got {options.workers}")
    if options.trials is not None and options.trials < 1:
        raise UserError(f"--trials must be 1 or more, got {options.trials}")
    spec = load_spec(options.config)
    name = options.name or spec.name
    sweep = prepare(spec, trial_args, name, options.trials or spec.trials, options.storage)
    print(f"Sweep {name!r}: {sweep.trials} trials; results in {sweep.folder}", flush=True)
    if options.workers == 1:
        work(sweep, command)
    else:
        spawn = multiprocessing.get_context("spawn")
        work_on = (sweep, command)
        workers = [spawn.Process(target=_worker, args=work_on) for _ in range(options.workers)]
        for worker in workers:
            worker.start()
        # Ctrl-C reaches every worker, which says how it stopped; wait for them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for worker in workers:
            worker.join()
        failed = [w.exitcode for w in workers if w.exitcode]
        if failed:
            return failed[0]
    from training.sweeps.report import report

    report(sweep, sweep.open_study())
    return None
