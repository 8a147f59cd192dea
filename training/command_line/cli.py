"""The command line: ``fit``, ``validate``, ``test``, ``predict`` and ``lr_find`` from YAML configs.

``main()`` runs LightningCLI and turns every problem a user can fix into one
line on stderr and a non-zero exit. Everything that could refuse is checked
before anything is written.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
from lightning import Trainer
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.plugins.environments import ClusterEnvironment, SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

from datamodules.batches import TensorPairs, prediction_batches
from datamodules.split import SplitDataModule
from lightning_modules.base import WorkflowModule
from training.command_line.known_warnings import quiet_known_noise
from training.command_line.lr_find import (
    LR_FIND,
    LR_FIND_PNG,
    LRFindTrainer,
    check_search,
    fit_command,
    no_suggestion,
    plot_lr_find,
    suggested_lr,
)
from training.command_line.one_line_errors import OneLineErrorParser, first_reason
from training.command_line.script_process import script_command
from training.errors import FitStopped, Stopped, UserError, WriteFailed, run_script
from training.lightning_private import ResolvesCkptPath, counts_before_fractions
from training.outputs.new_inputs import feature_names, read_new_inputs
from training.run.atomic_files import AtomicCheckpointIO, remove_stale_tmp_files
from training.run.config_yaml import FitConfigSaver
from training.run.data_fits_model import check_data_fits_model
from training.run.folders import (
    check_run_name,
    check_writable,
    checkpoint_dir,
    keep_earlier_run,
    log_dir,
    read_checkpoint,
    resolve_ckpt_path,
    trusted_net_module,
)
from training.run.metrics_csv import METRICS_FILE, ResumableCSVLogger, final_metrics
from training.run.run_checkpoint import BEST, LAST, RunCheckpoint, epochs_done
from training.run.run_lock import RunLock
from training.run.same_experiment import changed_settings
from training.run.tensorboard_log import ResumableTensorBoardLogger

counts_before_fractions(Trainer.__init__)

# ``--ckpt_path auto``: resume the run from its last.ckpt if it has one, else start it.
AUTO = "auto"


def _seed_of(seed_everything: bool | int) -> int:
    return 0 if isinstance(seed_everything, bool) else int(seed_everything)


def _checkpoint_dir_of(root: str | None, name: str) -> str:
    return str(checkpoint_dir(root, name))


def _subcommand_named(argv: list[str]) -> str | None:
    """The first argument that is neither an option nor the value of ``-c``/``--config``."""
    given = iter(argv)
    for arg in given:
        if arg in ("-c", "--config"):
            next(given, None)
        elif not arg.startswith("-"):
            return arg
    return None


class WorkflowCLI(ResolvesCkptPath):
    """LightningCLI with run names, exact resume and checks before anything is written."""

    checkpoint: dict[str, Any] | None = None
    run_lock: RunLock | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = None  # lr_find's copy of the weights
    new_inputs: tuple[list[str], Tensor] | None = None  # predict --inputs: names and rows

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.argv = list(sys.argv[1:] if args is None else args)
        try:
            self._build_and_run(args, run)
        except SystemExit as end:
            # A Ctrl-C that the fit's own handlers do not take (while the data is made;
            # in validate, test or predict): Lightning tears down and exits with 1.
            # Raised as the Ctrl-C it was, the script says so and exits with 130.
            if isinstance(end.__context__, KeyboardInterrupt):
                raise end.__context__ from None
            raise
        finally:
            if self.scratch is not None:
                self.scratch.cleanup()
            if self.run_lock is not None:
                self.run_lock.release()

    def _build_and_run(self, args: list[str] | None, run: bool) -> None:
        super().__init__(
            model_class=WorkflowModule,
            datamodule_class=SplitDataModule,
            trainer_class=LRFindTrainer,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_class=OneLineErrorParser,
            save_config_callback=FitConfigSaver,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                "accelerator": "auto",
                "devices": 1,
                "enable_progress_bar": sys.stderr.isatty(),
                # The datamodules shard every batch across ranks themselves, without
                # the duplicates Lightning's DistributedSampler pads uneven shards with.
                "use_distributed_sampler": False,
            },
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )

    def offered_subcommands(self, every: dict[str, set[str]]) -> dict[str, set[str]]:
        """LightningCLI's subcommands: only the one the command line names, when it names one.

        LightningCLI builds a full parser (every Trainer, model and data option)
        for each subcommand it offers before it parses anything; a run uses
        one, and building the other three costs more than a short fit.
        ``train.py --help``, or a subcommand it does not know, gets them all,
        ``lr_find`` among them (``training/command_line/lr_find.py``).
        """
        every = {**every, LR_FIND: {"model", "datamodule"}}
        named = _subcommand_named(self.argv)
        return {named: every[named]} if named in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--name",
            type=str,
            required=True,
            help="Run name: checkpoints/<name>/ and logs/<name>/ under --trainer.default_root_dir.",
        )
        parser.add_argument(
            "--inputs",
            type=Optional[str],  # noqa: UP045 (jsonargparse reads the annotation)
            default=None,
            help="predict only: a CSV of new inputs (the feature columns, no target);"
            " its predictions go to logs/<name>/predictions_<file name>.csv",
        )
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.link_arguments(
            ("trainer.default_root_dir", "name"),
            "checkpoint.dirpath",
            compute_fn=_checkpoint_dir_of,
        )
        parser.link_arguments("seed_everything", "data.init_args.seed", compute_fn=_seed_of)

    @property
    def _run_config(self) -> Any:
        return self.config[self.config.subcommand]

    def resolve_ckpt_path(self) -> None:
        """Resolves ``--ckpt_path last|best|<file>`` and checks the checkpoint before anything runs.

        Replaces LightningCLI's own step, which overwrites the configured model
        arguments with the checkpoint's: here what the user typed applies, or
        is refused when it cannot apply.
        """
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self._run_config
        root, name = config.trainer.default_root_dir, config.name
        check_run_name(root, name)
        accelerator = str(config.trainer.accelerator)
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise UserError(
                f"--trainer.accelerator {accelerator} asks for a GPU but this machine has none;"
                " use --trainer.accelerator cpu (or auto)"
            )
        if config.get("inputs") is not None and subcommand != "predict":
            raise UserError(f"--inputs is for predict; {subcommand} uses the run's own data")
        if subcommand == LR_FIND:
            check_search(config)  # no checkpoint: the search starts from the config's weights
            return
        if config.get("weights_only") is False:
            raise UserError(
                "checkpoints are only ever loaded with weights_only=True; drop --weights_only"
            )
        config.weights_only = True
        if subcommand == "fit":
            self._check_trains_something(config.trainer)
        if config.ckpt_path is None and subcommand != "fit":
            config.ckpt_path = self._trained_weights(root, name, subcommand)
        if config.ckpt_path is None:
            return
        if subcommand == "fit" and config.ckpt_path == "best":
            raise UserError(
                "best.ckpt holds the best weights for test and predict, not a training state;"
                " resume with --ckpt_path last"
            )
        if config.ckpt_path == AUTO:
            if subcommand != "fit":
                raise UserError(
                    f"--ckpt_path {AUTO} is for fit (resume or start);"
                    f" {subcommand} needs a checkpoint: pass last or best"
                )
            config.ckpt_path = self._resume_or_start(root, name)
            if config.ckpt_path is None:
                return
        path = resolve_ckpt_path(config.ckpt_path, root, name)
        # The config is the user's own: the module of the net it names is trusted.
        self.checkpoint = read_checkpoint(path, trust=trusted_net_module(config.as_dict()))
        config.ckpt_path = str(path)
        if subcommand == "fit":
            self._check_resume(config, path, self.checkpoint)

    @staticmethod
    def _resume_or_start(root: str | None, name: str) -> str | None:
        """``--ckpt_path auto``: the run's ``last.ckpt`` if it has one, else a fresh start.

        For batch jobs that are requeued with the same command; the first line
        of output says which of the two happened.
        """
        last = checkpoint_dir(root, name) / LAST
        found = last.is_file()
        if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
            if found:
                print(f"Resuming run {name!r} from {last}", file=sys.stderr)
            else:
                print(f"Starting run {name!r}: it has no {last} yet", file=sys.stderr)
        return "last" if found else None

    @staticmethod
    def _check_trains_something(trainer: Any) -> None:
        """A fit of no step would write a run with no epoch in it, and no plot to draw."""
        for option in ("max_epochs", "max_steps", "limit_train_batches"):
            if trainer.get(option) == 0:
                raise UserError(
                    f"--trainer.{option} 0 trains nothing; pass a positive value"
                    " (validate and test evaluate a run without training it)"
                )

    @staticmethod
    def _trained_weights(root: str | None, name: str, subcommand: str) -> str:
        """``validate``, ``test`` and ``predict`` without ``--ckpt_path``: the run's best weights.

        A new process has no trained weights of its own; a freshly initialised
        net would be evaluated without a word.
        """
        for which in ("best", "last"):
            path = checkpoint_dir(root, name) / (BEST if which == "best" else LAST)
            if path.is_file():
                if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
                    print(
                        f"{subcommand} uses {path} (pass --ckpt_path to choose another)",
                        file=sys.stderr,
                    )
                return which
        raise UserError(
            f"run {name!r} has no checkpoint to {subcommand} ({checkpoint_dir(root, name)} holds"
            " none); fit it first, or pass --ckpt_path with a checkpoint file"
        )

    @staticmethod
    def _check_resume(config: Any, path: Path, checkpoint: dict[str, Any]) -> None:
        done = epochs_done(checkpoint)
        max_epochs = config.trainer.max_epochs
        if max_epochs is not None and 0 <= max_epochs < done:
            raise UserError(
                f"{path} has already trained {done} epochs, more than --trainer.max_epochs"
                f" {max_epochs}; pass --trainer.max_epochs {done} or more"
            )

    def instantiate_classes(self) -> None:
        """Builds model, data and Trainer; a value they reject becomes a one-line error."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            # jsonargparse wraps the class's own ValueError in a report of every type it tried.
            messages = []
            inner: BaseException | None = error
            while inner is not None:
                messages.append(str(inner))
                inner = inner.__cause__
            report = next((m for m in messages if "Errors:" in m), messages[-1])
            raise UserError(f"invalid configuration: {first_reason(report)}") from error

    def _check_checkpoint_settings(self) -> None:
        """Refuses a checkpoint whose recorded settings the command changes.

        A resume continues the same experiment (see ``training/run/same_experiment.py``);
        ``validate``, ``test`` and ``predict`` may use other data, but the weights
        only fit the net they were trained in.
        """
        if self.checkpoint is None:
            return
        resume = self.subcommand == "fit"
        changed = changed_settings(
            self.checkpoint,
            self.model.hparams,
            self.datamodule.hparams,
            keys=None if resume else frozenset({"--model.net"}),
        )
        if changed:
            fix = (
                "a resume continues the same experiment: pass the values it was trained with,"
                " or start a new --name"
                if resume
                else "its weights only fit that net: pass the config it was trained with"
            )
            raise UserError(
                f"{self._run_config.ckpt_path} was trained with {', '.join(changed)}; {fix}"
            )
        if resume:
            self._check_own_checkpoint()

    def _check_own_checkpoint(self) -> None:
        """A fit resumes its own run: a checkpoint of another run would end in this one's folders.

        Resuming run B from run A's file would write A's continuation over B's
        checkpoints, ``metrics.csv`` and ``config.yaml``. It is refused; the
        other run is resumed under its own name.
        """
        config = self._run_config
        root, name = config.trainer.default_root_dir, config.name
        path = Path(config.ckpt_path).resolve()
        own = checkpoint_dir(root, name).resolve()
        if path.parent == own:
            return
        checkpoints = checkpoint_dir(root, "x").parent.resolve()
        if path.parent.is_relative_to(checkpoints):
            other = path.parent.relative_to(checkpoints).as_posix()
            fix = f"resume that run with --name {other} --ckpt_path last"
        else:
            fix = f"a fit resumes only from its own folder, {checkpoint_dir(root, name)}"
        raise UserError(
            f"{config.ckpt_path} is not a checkpoint of run {name!r}; {fix},"
            " or start a new run with another --name and no --ckpt_path"
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        # Model and data are built by now; the Trainer would print its devices before a refusal.
        self._check_checkpoint_settings()
        check_data_fits_model(self.datamodule, self.model)
        config = self.config_init[str(self.subcommand)]
        root, name = config.trainer.default_root_dir, config.name
        self._lock_run(root, name)
        directory = log_dir(root, name)
        if self.subcommand != "fit":
            directory = directory / str(self.subcommand)
        logger = self._loggers(config.trainer.logger, directory)
        plugins = config.trainer.plugins or []
        plugins = [*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()]
        if SLURMEnvironment.detect() and not any(
            isinstance(p, ClusterEnvironment) for p in plugins
        ):
            # The project's requeue is SIGTERM and --ckpt_path auto (docs/devices.md).
            # Lightning's own writes hpc_ckpt_N.ckpt on SIGUSR1 and restores it into any
            # fit without a checkpoint, another run's included, past the same-experiment check.
            plugins.append(SLURMEnvironment(auto_requeue=False))
        # Lightning's own files of a run (an HPC checkpoint it would restore, a profiler's
        # report) live in the run's folder, where no other run looks.
        kwargs.setdefault("default_root_dir", str(checkpoint_dir(root, name)))
        if self.subcommand == LR_FIND:
            # The Tuner keeps a copy of the initial weights in default_root_dir while it
            # searches: a folder of its own, not the run's. The search takes num_training
            # steps, however many epochs that is.
            self.scratch = tempfile.TemporaryDirectory(prefix="lr_find-")
            kwargs.update(default_root_dir=self.scratch.name, max_epochs=-1)
        try:
            trainer = super().instantiate_trainer(logger=logger, plugins=plugins, **kwargs)
        except (TypeError, ValueError, MisconfigurationException) as error:
            # Lightning's own checks of the Trainer's options (devices, strategy, precision).
            reason = str(error).splitlines()[0].replace("`", "")
            raise UserError(f"invalid --trainer options: {reason}") from error
        if self.subcommand == LR_FIND:
            # The search trains with Trainer.fit: nothing of a fit's checkpoints or config.yaml.
            kept = trainer.callbacks  # type: ignore[attr-defined]
            trainer.callbacks = [  # type: ignore[attr-defined]
                c for c in kept if not isinstance(c, (RunCheckpoint, FitConfigSaver))
            ]
        return trainer

    def _loggers(self, chosen: Any, directory: Path) -> list[Any] | bool:
        """``metrics.csv`` always; beside it, in a fit, TensorBoard or the loggers chosen.

        TensorBoard is Lightning's default logger: as in Lightning,
        ``--trainer.logger false`` turns it off and a logger of one's own replaces
        it. ``metrics.csv`` is the run's own record (resume, plots, the summary
        line). ``lr_find`` logs nothing.
        """
        if self.subcommand == LR_FIND:
            return False
        loggers: list[Any] = [ResumableCSVLogger(directory)]
        if chosen not in (None, True, False):
            loggers += chosen if isinstance(chosen, list) else [chosen]
        elif chosen is not False and self.subcommand == "fit":
            loggers.append(ResumableTensorBoardLogger(directory, resumed_from=self.checkpoint))
        return loggers

    def _lock_run(self, root: str | None, name: str) -> None:
        """Takes the run before anything is written or printed (``training/run/run_lock.py``)."""
        # Before the Trainer launches its processes only rank 0's environment says rank 0.
        # fast_dev_run writes nothing, not even a lock.
        fast_dev_run = self.config_init[str(self.subcommand)].trainer.fast_dev_run
        if rank_zero_only.rank != 0 or fast_dev_run:  # type: ignore[attr-defined]
            return
        check_writable(log_dir(root, name).parent)
        self.run_lock = RunLock(root, name)
        if self.subcommand == "fit":
            self.run_lock.hold_for_fit()
        else:
            self.run_lock.hold_for_reading()

    def _prepare_run_dirs(self) -> None:
        config = self._run_config
        root, name = config.trainer.default_root_dir, config.name
        if self.subcommand == "fit":
            check_writable(checkpoint_dir(root, name).parent)
            check_writable(log_dir(root, name).parent)
            # fast_dev_run writes nothing, so the earlier run stays where it is. Only the
            # process that holds the run's lock (rank 0) moves it.
            fresh = config.ckpt_path is None and not config.trainer.fast_dev_run
            if fresh and self.run_lock is not None:
                with self.run_lock.without_readers():
                    moved = self._keep_earlier_run(root, name)
                if moved:
                    kept = " and ".join(str(m) for m in moved)
                    print(
                        f"Run {name!r} existed; the earlier run is kept in {kept}", file=sys.stderr
                    )
            logs = log_dir(root, name)
            if self.run_lock is not None and logs.is_dir():
                # What a killed plot or metrics.csv write left (RunCheckpoint cleans its folder).
                remove_stale_tmp_files(logs)
        elif self.subcommand in ("predict", LR_FIND):
            check_writable(log_dir(root, name))
        else:
            check_writable(log_dir(root, name) / str(self.subcommand))

    @staticmethod
    def _keep_earlier_run(root: str | None, name: str) -> list[Path]:
        """Moves an earlier run aside, but the learning-rate finder's plot stays for the new one.

        ``lr_find`` draws ``lr_find.png`` in the run's log folder for the fit that
        follows: on its own it is no run to keep, and it belongs to the new one.
        """
        logs = log_dir(root, name)
        plot = logs / LR_FIND_PNG
        aside = logs.parent / f".{logs.name}.{LR_FIND_PNG}"  # where a kill here leaves it
        if plot.is_file():
            plot.replace(aside)
        moved = keep_earlier_run(root, name)
        if aside.is_file():
            logs.mkdir(parents=True, exist_ok=True)
            aside.replace(plot)
        return moved

    def before_fit(self) -> None:
        self._prepare_run_dirs()
        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, RunCheckpoint):
                callback.resume_command = self.resume_command()

    def resume_command(self) -> str:
        """The command as it was typed, with ``--ckpt_path last`` (``auto`` resumes as it is)."""
        args: list[str] = []
        auto = False
        given = iter(self.argv)
        for arg in given:
            if arg == "--ckpt_path" or arg.startswith("--ckpt_path="):
                value = next(given, "") if arg == "--ckpt_path" else arg.partition("=")[2]
                if value != AUTO:
                    continue
                auto = True
                args += [arg, value] if arg == "--ckpt_path" else [arg]
            else:
                args.append(arg)
        if not auto:
            args += ["--ckpt_path", "last"]
        return script_command(args)

    def fit(self, **kwargs: Any) -> None:
        try:
            self.trainer.fit(**kwargs)
        except WriteFailed as failure:
            raise failure.instead(self._what_a_stopped_fit_kept()) from failure

    def _what_a_stopped_fit_kept(self) -> str:
        config = self._run_config
        last = checkpoint_dir(config.trainer.default_root_dir, config.name) / LAST
        epochs = epochs_done(read_checkpoint(last)) if last.is_file() else 0
        return "free some space; " + FitStopped.kept(epochs, last, self.resume_command())

    def after_fit(self) -> None:
        """Draws the notes' plots into the log dir and says in one line how the fit ended."""
        # fast_dev_run turns off logging and checkpoints: nothing to draw or point to.
        trainer = self.trainer
        smoke_test = getattr(trainer, "fast_dev_run", False)
        if not trainer.is_global_zero or smoke_test:
            return
        from training.outputs.plots import find_checkpoint, plot_run
        from training.outputs.predictions import fit_summary

        config = self._run_config
        directory = log_dir(config.trainer.default_root_dir, config.name)
        redraw = f"python scripts/plot.py {directory}"
        try:
            checkpoint = find_checkpoint(directory, {})
            trust = trusted_net_module(config.as_dict())
            plot_run(directory, checkpoint, self.datamodule, type(self.model), trust)
        except WriteFailed as failure:
            raise failure.instead(
                "the fit finished and its checkpoints are written: free some space,"
                f" then draw the plots with {redraw}"
            ) from failure
        except KeyboardInterrupt as interrupt:
            raise Stopped(
                signal.SIGINT,
                "SIGINT stopped the plots; the fit finished and its checkpoints are written:"
                f" draw the plots with {redraw}",
            ) from interrupt
        best = checkpoint_dir(config.trainer.default_root_dir, config.name) / BEST
        metrics = final_metrics(directory / METRICS_FILE)
        best_path = best if best.is_file() else None
        print(fit_summary(self.trainer.current_epoch, metrics, best_path, directory))

    def predict(self, **kwargs: Any) -> None:
        """Predicts the test split into ``logs/<name>/predictions.csv``, or ``--inputs``.

        New inputs are predicted into ``predictions_<file name>.csv`` beside
        it, so that they never replace the test split's predictions.
        """
        from training.outputs.predictions import write_predictions

        config = self._run_config
        path = log_dir(config.trainer.default_root_dir, config.name) / "predictions.csv"
        names = None
        if self.new_inputs is not None:
            names, features = self.new_inputs
            no_targets = torch.empty(len(features), 0)
            batch_size = self.datamodule.batch_size
            kwargs.pop("datamodule", None)
            kwargs["dataloaders"] = prediction_batches(
                TensorPairs(features, no_targets), batch_size, self.trainer
            )
            path = path.with_name(f"predictions_{Path(config.inputs).stem}.csv")
        batches = self.trainer.predict(**kwargs)
        if self.trainer.is_global_zero and batches:
            written = write_predictions(batches, path, names)  # type: ignore[arg-type]
            print(f"Predictions written to {written}")

    def before_lr_find(self) -> None:
        if self.trainer.world_size > 1:
            raise UserError(
                "lr_find searches in one process;"
                " drop --trainer.devices/--trainer.num_nodes/--trainer.strategy"
            )
        self._prepare_run_dirs()

    def lr_find(self, **kwargs: Any) -> None:
        """Runs ``Tuner.lr_find``, draws ``logs/<name>/lr_find.png`` and prints the fit to run."""
        finder = self.trainer.lr_find(**kwargs)  # type: ignore[attr-defined]
        if not self.trainer.is_global_zero or finder is None:
            return
        config = self._run_config
        path = log_dir(config.trainer.default_root_dir, config.name) / LR_FIND_PNG
        lr = suggested_lr(finder)
        plot_lr_find(finder, lr, getattr(self.model, "lr", None), path)
        if lr is None:
            raise no_suggestion(finder, path)
        print(f"Suggested learning rate {lr:.3g} ({path}); fit with: {fit_command(self.argv, lr)}")

    def before_validate(self) -> None:
        self._prepare_run_dirs()

    def before_test(self) -> None:
        self._prepare_run_dirs()

    def before_predict(self) -> None:
        inputs = self._run_config.get("inputs")
        if inputs is not None:
            # Read and checked before anything is written.
            names = feature_names(self.datamodule)
            self.new_inputs = names, read_new_inputs(Path(inputs), names)
        if self.trainer.world_size > 1:
            raise UserError(
                "predict writes one predictions.csv from one process;"
                " drop --trainer.devices/--trainer.num_nodes/--trainer.strategy"
            )
        self._prepare_run_dirs()


def main(args: list[str] | None = None) -> int:
    def run() -> None:
        quiet_known_noise()
        try:
            WorkflowCLI(args=args)
        except (FitStopped, KeyboardInterrupt):
            # A signal reaches every rank; rank 0 says how they stopped and gives the exit code.
            if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
                raise

    return run_script(run)
