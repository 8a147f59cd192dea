"""The command line: ``fit``, ``validate``, ``test`` and ``predict`` from YAML configs.

``main()`` runs LightningCLI and turns every problem a user can fix into one
line on stderr and a non-zero exit. Everything that could refuse is checked
before anything is written.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only

from datamodules.split import SplitDataModule
from lightning_modules.base import WorkflowModule
from training.checkpoint_io import AtomicCheckpointIO, atomic_write_text
from training.csv_log import METRICS_FILE, ResumableCSVLogger, final_metrics
from training.errors import FitStopped, UserError, WriteFailed
from training.run_checkpoint import BEST, LAST, RunCheckpoint, epochs_done
from training.run_lock import RunLock
from training.runs import (
    check_writable,
    checkpoint_dir,
    keep_earlier_run,
    log_dir,
    read_checkpoint,
    resolve_ckpt_path,
)
from training.same_experiment import changed_settings

# ``--ckpt_path auto``: resume the run from its last.ckpt if it has one, else start it.
AUTO = "auto"


def first_reason(message: str) -> str:
    """The line that names the problem in jsonargparse's multi-line report.

    A bad value is reported as "does not validate against any of the Union
    subtypes", followed by one error per subtype; the first is ours.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Errors:" in lines:
        reasons: list[list[str]] = []
        for line in lines[lines.index("Errors:") + 1 :]:
            if line.startswith("- "):
                reasons.append([line[2:]])
            elif reasons and not line.startswith("Given value"):
                reasons[-1].append(line)
        reasons = [r for r in reasons if not r[0].startswith("Expected a <class 'NoneType'>")]
        if reasons:
            where = lines[0].rstrip(":") + ": " if lines[0].startswith("Parser key") else ""
            return where + _with_detail(reasons[0])
    return _with_detail(lines) if lines else message


def _with_detail(lines: list[str]) -> str:
    """A line that ends in a colon is only a heading: the next line says what is wrong."""
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0]


class OneLineErrorParser(LightningArgumentParser):
    """Reports a bad argument or config key as a ``UserError`` instead of usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        reason = first_reason(str(message))
        if "--help" not in reason:
            reason += " (see --help for the options)"
        raise UserError(reason) from ex


class FitConfigSaver(SaveConfigCallback):
    """Writes the resolved ``config.yaml`` beside the metrics, for ``fit`` only.

    ``validate``, ``test`` and ``predict`` leave what ``fit`` wrote alone. The
    config was checked when it was parsed; Lightning's callback checks it again
    while saving, which costs more than a small fit, so it is written as parsed.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit" or self.already_saved:
            return
        log_dir = Path(trainer.log_dir)  # on every rank: it may broadcast
        if trainer.is_global_zero:
            text = self.parser.dump(self.config, skip_none=False, skip_validation=True)
            atomic_write_text(log_dir / self.config_filename, text)
        self.already_saved = True


def _seed_of(seed_everything: bool | int) -> int:
    return 0 if isinstance(seed_everything, bool) else int(seed_everything)


def _checkpoint_dir_of(root: str | None, name: str) -> str:
    return str(checkpoint_dir(root, name))


class WorkflowCLI(LightningCLI):
    """LightningCLI with run names, exact resume and checks before anything is written."""

    checkpoint: dict[str, Any] | None = None
    run_lock: RunLock | None = None

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.argv = list(sys.argv[1:] if args is None else args)
        try:
            self._build_and_run(args, run)
        finally:
            if self.run_lock is not None:
                self.run_lock.release()

    def _build_and_run(self, args: list[str] | None, run: bool) -> None:
        super().__init__(
            model_class=WorkflowModule,
            datamodule_class=SplitDataModule,
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

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--name",
            type=str,
            required=True,
            help="Run name: checkpoints/<name>/ and logs/<name>/ under --trainer.default_root_dir.",
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

    def _parse_ckpt_path(self) -> None:
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
        accelerator = str(config.trainer.accelerator)
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise UserError(
                f"--trainer.accelerator {accelerator} asks for a GPU but this machine has none;"
                " use --trainer.accelerator cpu (or auto)"
            )
        if config.get("weights_only") is False:
            raise UserError(
                "checkpoints are only ever loaded with weights_only=True; drop --weights_only"
            )
        config.weights_only = True
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
        self.checkpoint = read_checkpoint(path)
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

        A resume continues the same experiment (see ``training/same_experiment.py``);
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

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        # Model and data are built by now; the Trainer would print its devices before a refusal.
        self._check_checkpoint_settings()
        config = self.config_init[str(self.subcommand)]
        root, name = config.trainer.default_root_dir, config.name
        self._lock_run(root, name)
        directory = log_dir(root, name)
        if self.subcommand != "fit":
            directory = directory / str(self.subcommand)
        logger: list[Any] = [ResumableCSVLogger(directory)]
        extra = config.trainer.logger
        if extra not in (None, True, False):
            logger += extra if isinstance(extra, list) else [extra]
        plugins = config.trainer.plugins or []
        plugins = [*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()]
        return super().instantiate_trainer(logger=logger, plugins=plugins, **kwargs)

    def _lock_run(self, root: str | None, name: str) -> None:
        """Takes the run before anything is written or printed (``training/run_lock.py``)."""
        # Before the Trainer launches its processes only rank 0's environment says rank 0.
        if rank_zero_only.rank != 0:  # type: ignore[attr-defined]
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
            if config.ckpt_path is None and self.run_lock is not None:
                with self.run_lock.without_readers():
                    moved = keep_earlier_run(root, name)
                if moved:
                    kept = " and ".join(str(m) for m in moved)
                    print(
                        f"Run {name!r} existed; the earlier run is kept in {kept}", file=sys.stderr
                    )
        elif self.subcommand == "predict":
            check_writable(log_dir(root, name))
        else:
            check_writable(log_dir(root, name) / str(self.subcommand))

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
        python = os.path.relpath(sys.executable)
        python = sys.executable if python.startswith("..") else python
        return shlex.join([python, sys.argv[0], *args])

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
        if not trainer.is_global_zero or trainer.interrupted or smoke_test:
            return
        from training.plots import write_fit_plots
        from training.predictions import fit_summary

        config = self._run_config
        directory = log_dir(config.trainer.default_root_dir, config.name)
        try:
            write_fit_plots(directory, self.datamodule, self.model)
        except WriteFailed as failure:
            raise failure.instead(
                "the fit finished and its checkpoints are written: free some space,"
                f" then draw the plots with python scripts/plot.py {directory}"
            ) from failure
        best = checkpoint_dir(config.trainer.default_root_dir, config.name) / BEST
        metrics = final_metrics(directory / METRICS_FILE)
        best_path = best if best.is_file() else None
        print(fit_summary(self.trainer.current_epoch, metrics, best_path, directory))

    def predict(self, **kwargs: Any) -> None:
        """Predicts the test split and writes ``logs/<name>/predictions.csv``."""
        from training.predictions import write_predictions

        batches = self.trainer.predict(**kwargs)
        if self.trainer.is_global_zero and batches:
            config = self._run_config
            path = log_dir(config.trainer.default_root_dir, config.name) / "predictions.csv"
            print(f"Predictions written to {write_predictions(batches, path)}")  # type: ignore[arg-type]

    def before_validate(self) -> None:
        self._prepare_run_dirs()

    def before_test(self) -> None:
        self._prepare_run_dirs()

    def before_predict(self) -> None:
        if self.trainer.world_size > 1:
            raise UserError(
                "predict writes one predictions.csv from one process;"
                " drop --trainer.devices/--trainer.num_nodes/--trainer.strategy"
            )
        self._prepare_run_dirs()


def quiet_known_noise() -> None:
    """Filters third-party messages that do not apply to this project, each narrowly."""
    # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing to fix here.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Batches are slices of in-memory tensors: worker processes would only add copying.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # Metrics are logged once per epoch, never per step, so the step interval never applies.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")

    class _Drop(logging.Filter):
        def __init__(self, start: str) -> None:
            super().__init__()
            self.start = start

        def filter(self, record: logging.LogRecord) -> bool:
            return not record.getMessage().startswith(self.start)

    # An advert for a cloud service, printed on every fit.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_Drop("💡 Tip"))
    # The seed is in the config; said before validation, it would precede every error line.
    logging.getLogger("lightning.fabric.utilities.seed").addFilter(_Drop("Seed set to"))


def main(args: list[str] | None = None) -> int:
    quiet_known_noise()
    try:
        WorkflowCLI(args=args)
    except FitStopped as stop:
        # Every rank stops at the same epoch; rank 0 says so and gives the exit code.
        if rank_zero_only.rank != 0:  # type: ignore[attr-defined]
            return 0
        print(stop, file=sys.stderr)
        return stop.exit_code
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0
