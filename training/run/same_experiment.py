"""A resume continues the experiment its checkpoint holds, or is refused.

A checkpoint records the experiment as LightningCLI built it: the module's and
the datamodule's class and arguments (``hyper_parameters`` and
``datamodule_hyper_parameters``), and with them the net, the loss and metrics
(the module's class), the data and the seed. ``changed_settings`` compares
every recorded value with what the command line builds now. Resuming
``metrics.csv`` and ``best.ckpt`` with other data, another net or another
loss would mix two experiments in one run.

What may change on resume:

- ``--trainer.max_epochs``: how long to train, not what; a resume to more
  epochs ends where one longer fit ends.
- ``--model.lr``: the learning rate, set by hand between resumes as a
  schedule would; the optimizer's state carries over. With
  ``--model.lr_scheduler`` it becomes the schedule's base rate
  (``WorkflowModule.on_load_checkpoint``). The optimizer's class and
  ``--model.optimizer_args``, and the scheduler's class and arguments, may
  not change: the checkpoint's optimizer and scheduler state belong to them.
- ``--trainer.accelerator`` and ``--trainer.devices``: where the same steps
  run; checkpoints load on any device, and several devices split each batch
  exactly.
- ``--checkpoint.every_n_seconds`` and ``--checkpoint.stop_grace_seconds``:
  when ``last.ckpt`` is written and how long a stop waits, not what is learned.

The Trainer's and the checkpoint callback's options are not recorded, so
only the model's arguments need a list here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_modules.net_spec import describe

MAY_CHANGE = frozenset({"--model.lr"})

# A module checkpoint from before these were recorded was trained without them.
_EARLIER_DEFAULTS: dict[str, Any] = {"--model.optimizer_args": {}, "--model.lr_scheduler": None}

# LightningCLI's note of how it built the class, not an argument.
_NOT_SETTINGS = frozenset({"_instantiator"})
_ABSENT = object()


def settings(hparams: Mapping[str, Any], group: str) -> dict[str, Any]:
    """The recorded arguments of ``--model`` or ``--data``, under the option that sets each."""
    found: dict[str, Any] = {}
    for key, value in hparams.items():
        if key in _NOT_SETTINGS:
            continue
        if key == "_class_path":
            found[f"--{group}"] = value
        elif key in ("net", "lr_scheduler") and isinstance(value, Mapping):
            found[f"--{group}.{key}"] = describe(value)
        elif group == "data" and key == "seed":
            found["--seed_everything"] = value  # the CLI links the data's seed to it
        else:
            found[f"--{group}.{key}"] = value
    return found


def changed_settings(
    checkpoint: Mapping[str, Any],
    model_hparams: Mapping[str, Any],
    data_hparams: Mapping[str, Any],
    keys: frozenset[str] | None = None,
) -> list[str]:
    """``--data.noise 0.03 (now 0.2)`` for each recorded setting the command changes.

    ``keys`` limits the comparison (``None``: every setting that may not change).
    A setting the checkpoint does not record is not compared, but for the
    optimizer's arguments and the schedule: a module checkpoint from before
    they were recorded was trained without them.
    """
    model = settings(checkpoint.get("hyper_parameters", {}), "model")
    trained = {
        **(_EARLIER_DEFAULTS if "--model.optimizer" in model else {}),
        **model,
        **settings(checkpoint.get("datamodule_hyper_parameters", {}), "data"),
    }
    now = {**settings(model_hparams, "model"), **settings(data_hparams, "data")}
    changed = []
    for key, value in trained.items():
        if key in MAY_CHANGE or (keys is not None and key not in keys):
            continue
        current = now.get(key, _ABSENT)
        # Another class has other arguments: naming the class says it for those it lacks.
        group = key.split(".")[0]
        if current is _ABSENT and trained.get(group) != now.get(group):
            continue
        if _plain(current) != _plain(value):
            changed.append(f"{key} {_show(value)} (now {_show(current)})")
    return changed


def _plain(value: Any) -> Any:
    """Tuples from a config and lists from a checkpoint compare equal."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    """A value as it is typed on the command line."""
    if value is _ABSENT:
        return "not set"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
