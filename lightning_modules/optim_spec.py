"""The optimizer and the learning-rate scheduler as plain data, so checkpoints can rebuild them.

The optimizer is a ``torch.optim`` class name with its keyword arguments. The
scheduler is a spec ``{"class_path": ..., "init_args": {...}}``, the shape
LightningCLI reads from a config for an ``LRSchedulerCallable``; a checkpoint
records it so, with every default filled in, and only classes of
``torch.optim.lr_scheduler`` are built from it: a checkpoint is untrusted data.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lightning_modules.net_spec import PLAIN_DATA

SCHEDULER_MODULE = "torch.optim.lr_scheduler"

# Schedules that change the rate every batch, or on a monitored metric: the
# module steps its scheduler once per epoch, with no metric.
_NOT_PER_EPOCH = {
    "OneCycleLR": "it changes the rate every batch",
    "CyclicLR": "it changes the rate every batch",
    "ReduceLROnPlateau": "it steps on a monitored metric",
}


def optimizer_names() -> list[str]:
    return sorted(
        name
        for name, value in vars(torch.optim).items()
        if isinstance(value, type) and issubclass(value, Optimizer) and value is not Optimizer
    )


def optimizer_class(name: str, lr: float, args: Mapping[str, Any]) -> type[Optimizer]:
    """The ``torch.optim`` class ``name``, after checking that it takes ``lr`` and ``args``."""
    if name not in optimizer_names():
        raise ValueError(
            f"optimizer must be a torch.optim optimizer ({', '.join(optimizer_names())}),"
            f" got {name!r}"
        )
    cls: type[Optimizer] = getattr(torch.optim, name)
    if "lr" in args:
        raise ValueError("optimizer_args must not hold lr; set it with --model.lr")
    _check_arguments(cls, name, {"lr": lr, **args}, "--model.optimizer_args")
    return cls


def scheduler_spec(lr_scheduler: Any) -> dict[str, Any]:
    """A scheduler as plain data: from a spec, or from the callable LightningCLI builds.

    The CLI hands the module a ``functools.partial`` of jsonargparse's
    instantiator with ``Class`` among its arguments and ``**args`` as keywords;
    Python code may pass ``functools.partial(Class, **args)``.
    """
    if isinstance(lr_scheduler, Mapping):
        path = str(lr_scheduler.get("class_path", ""))
        module_name, _, name = path.rpartition(".")
        init_args = dict(lr_scheduler.get("init_args") or {})
    elif isinstance(lr_scheduler, functools.partial):
        parts = (lr_scheduler.func, *lr_scheduler.args)
        cls = next((part for part in parts if isinstance(part, type)), None)
        module_name, name = getattr(cls, "__module__", ""), getattr(cls, "__qualname__", "")
        init_args = dict(lr_scheduler.keywords)
    else:
        raise ValueError(
            "lr_scheduler must be a torch.optim.lr_scheduler class with its arguments,"
            f" such as functools.partial(CosineAnnealingLR, T_max=100), got {lr_scheduler!r}"
        )
    cls = getattr(torch.optim.lr_scheduler, name, None) if module_name == SCHEDULER_MODULE else None
    if not (isinstance(cls, type) and issubclass(cls, LRScheduler)):
        raise ValueError(
            f"lr_scheduler must be a class of {SCHEDULER_MODULE}, got {module_name}.{name}"
        )
    if name in _NOT_PER_EPOCH:
        raise ValueError(
            f"{name} is not supported: {_NOT_PER_EPOCH[name]}, and the scheduler steps once"
            " per epoch; use a per-epoch schedule such as CosineAnnealingLR or StepLR"
        )
    bound = _check_arguments(cls, name, init_args, "--model.lr_scheduler")
    bound.apply_defaults()
    init_args = dict(list(bound.arguments.items())[1:])  # all but the optimizer
    for key, value in init_args.items():
        values = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(v, PLAIN_DATA) for v in values):
            raise ValueError(
                f"{name} argument {key}={value!r} is not plain data; a checkpoint records"
                " only a bool, int, float, str, None or a list of them"
            )
        if isinstance(value, tuple):
            init_args[key] = list(value)
    return {"class_path": f"{SCHEDULER_MODULE}.{name}", "init_args": init_args}


def build_scheduler(spec: Mapping[str, Any], optimizer: Optimizer) -> LRScheduler:
    """The scheduler of a spec that ``scheduler_spec`` checked."""
    cls: Callable[..., LRScheduler] = getattr(
        torch.optim.lr_scheduler, str(spec["class_path"]).rpartition(".")[2]
    )
    return cls(optimizer, **spec["init_args"])


def _check_arguments(
    cls: type, name: str, args: Mapping[str, Any], option: str
) -> inspect.BoundArguments:
    """``args`` bound to ``cls``'s signature after its first argument (parameters, optimizer)."""
    try:
        return inspect.signature(cls).bind(None, **args)
    except TypeError as error:
        raise ValueError(f"{option}: {name} refuses its arguments ({error})") from error
