"""The architecture of a net as plain data, so checkpoints can rebuild it.

A spec is ``{"class_path": "package.module.Class", "init_args": {...}}``, the
same shape LightningCLI reads from a YAML config. ``net_spec`` reads the
constructor arguments back from the attributes of the same name that every
model in ``lightning_modules.models`` keeps.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

NetSpec = dict[str, Any]


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
        init_args[name] = getattr(net, name)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


# Checkpoints are untrusted data: they may only name nets from these modules.
TRUSTED_MODULES = ("lightning_modules.models", "torch.nn")


def build_net(spec: Mapping[str, Any]) -> nn.Module:
    """Instantiates a spec from a checkpoint.

    Only ``nn.Module`` classes from ``TRUSTED_MODULES`` are imported and
    called: importing any other module could run its code.
    """
    module_name, _, class_name = str(spec["class_path"]).rpartition(".")
    if not any(module_name == m or module_name.startswith(f"{m}.") for m in TRUSTED_MODULES):
        raise ValueError(
            f"{spec['class_path']!r} is not a net this project builds from a checkpoint;"
            f" nets come from {' or '.join(TRUSTED_MODULES)}"
        )
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{spec['class_path']!r} is not an nn.Module class")
    return cls(**dict(spec.get("init_args") or {}))


def describe(spec: Mapping[str, Any]) -> str:
    """``CircleModelV2(hidden_units=10, ...)``: a spec as a reader would write it."""
    args = ", ".join(f"{k}={v!r}" for k, v in (spec.get("init_args") or {}).items())
    return f"{str(spec['class_path']).rpartition('.')[2]}({args})"
