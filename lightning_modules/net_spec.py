"""The architecture of a net as plain data, so checkpoints can rebuild it.

A spec is ``{"class_path": "package.module.Class", "init_args": {...}}``, the
same shape LightningCLI reads from a YAML config. ``net_spec`` reads the
constructor arguments back from the attributes of the same name that every
model in ``lightning_modules.models`` keeps.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

NetSpec = dict[str, Any]
PLAIN_DATA = (bool, int, float, str, type(None))
T = TypeVar("T")


class NotASubclass(ValueError):
    """A class path that names no class, or a class not derived from the one expected."""


def import_class(class_path: object, base: type[T]) -> type[T]:
    """The class at ``package.module.Class``, which must be ``base`` or derive from it.

    Importing its module runs that module's code: callers check first that
    they may. An ImportError of the module itself is left to the caller, which
    knows what to say about the folders on ``PYTHONPATH``.
    """
    module_name, _, class_name = str(class_path).rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None) if module_name else None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise NotASubclass(f"{class_path!r} is not a {base.__name__} class")
    return cls


def net_spec(net: nn.Module) -> NetSpec:
    cls = type(net)
    init_args = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(net, name):
            raise TypeError(
                f"{cls.__qualname__} must keep its argument {name!r} as an attribute"
                " so that checkpoints can rebuild it"
            )
        value = getattr(net, name)
        # A checkpoint is loaded with weights_only=True, which refuses any other object.
        if not isinstance(value, PLAIN_DATA):
            raise TypeError(
                f"{cls.__qualname__} keeps its argument {name!r} as a {type(value).__name__};"
                " checkpoints can only record a bool, int, float, str or None"
            )
        init_args[name] = value
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


# Checkpoints are untrusted data: they may only name nets from these modules,
# and from the modules a caller names in ``trust``. Every net in them keeps its
# arguments as plain data (tests/test_models.py fits, checkpoints, reloads and
# resumes each one).
TRUSTED_MODULES = ("lightning_modules.models",)


class UntrustedNet(ValueError):
    """A spec names a net from a module that is neither the project's nor trusted.

    ``class_path`` and ``module`` let a caller say how to trust it in its own terms
    (``scripts/export.py`` takes ``--trust``).
    """

    def __init__(self, class_path: str, module: str, trusted: Sequence[str]) -> None:
        super().__init__(
            f"{class_path!r} is not a net this project builds from a checkpoint;"
            f" nets come from {' or '.join(trusted)}. If you trust the checkpoint, pass"
            f" trust=[{module!r}] to load_from_checkpoint"
        )
        self.class_path = class_path
        self.module = module


def check_trusted(spec: Mapping[str, Any], trust: Sequence[str] = ()) -> None:
    """Refuses a spec whose class is neither the project's nor from a module in ``trust``."""
    module_name = str(spec["class_path"]).rpartition(".")[0]
    trusted = (*TRUSTED_MODULES, *trust)
    if not any(module_name == m or module_name.startswith(f"{m}.") for m in trusted):
        raise UntrustedNet(str(spec["class_path"]), module_name, trusted)


def build_net(spec: Mapping[str, Any], trust: Sequence[str] = ()) -> nn.Module:
    """Instantiates a spec from a checkpoint.

    Only ``nn.Module`` classes from ``TRUSTED_MODULES`` and from the modules in
    ``trust`` are imported and called: importing any other module could run its code.
    """
    check_trusted(spec, trust)
    cls = import_class(spec["class_path"], nn.Module)
    return cls(**dict(spec.get("init_args") or {}))


def check_net_matches(
    spec: Mapping[str, Any], state_dict: Mapping[str, Tensor], trust: Sequence[str] = ()
) -> None:
    """Refuses a checkpoint whose recorded net disagrees with its own weights.

    The net is built on the ``meta`` device, which allocates no memory: a
    5 KB checkpoint edited to record ``hidden_units: 100000`` would otherwise
    make its loader allocate 40 GB before the weights could disagree.
    ``state_dict`` is the LightningModule's, with the net's keys under ``net.``.
    """
    try:
        with torch.device("meta"):
            net = build_net(spec, trust)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"the checkpoint records a net that cannot be built ({error}); use another checkpoint"
        ) from error
    expected = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    found = {
        key.removeprefix("net."): tuple(value.shape)
        for key, value in state_dict.items()
        if key.startswith("net.")
    }
    if expected == found:
        return
    differences = [
        f"{key}: {found.get(key, 'none')} in the weights, {expected.get(key, 'none')} in the net"
        for key in sorted(expected.keys() | found.keys())
        if found.get(key) != expected.get(key)
    ]
    raise ValueError(
        f"the checkpoint records {describe(spec)} but its weights do not fit it"
        f" ({differences[0]}); the file was edited or damaged: use another checkpoint"
    )


def describe(spec: Mapping[str, Any]) -> str:
    """``CircleModelV2(hidden_units=10, ...)``: a spec as a reader would write it."""
    args = ", ".join(f"{k}={v!r}" for k, v in (spec.get("init_args") or {}).items())
    return f"{str(spec['class_path']).rpartition('.')[2]}({args})"
