"""The trained module that the plots and the export draw from, built from one read of its file.

``read_checkpoint`` (``training/run/folders.py``) loads a checkpoint the safe
way and checks that the net it records fits its weights, saying in one line
what is wrong. ``load_from_checkpoint`` would read and check the file again;
``trained_module`` builds the module from what was read, as Lightning's
``load_from_checkpoint`` does: the recorded hyperparameters the class takes,
the net built from its spec, then the weights, every key matched.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import lightning as L

from lightning_modules.net_spec import build_net

Module = TypeVar("Module", bound=L.LightningModule)


def trained_module(
    model_class: type[Module], checkpoint: Mapping[str, Any], trust: Sequence[str] = ()
) -> Module:
    """``model_class`` with the weights of ``checkpoint``, a dict ``read_checkpoint`` returned.

    The net's class is imported only from the project's models or a module in
    ``trust``, as ``read_checkpoint`` checked.
    """
    recorded = checkpoint["hyper_parameters"]
    # WorkflowModule itself (the export) takes no num_classes: what the class takes.
    takes = inspect.signature(model_class).parameters
    arguments = {key: value for key, value in recorded.items() if key in takes}
    module = model_class(**{**arguments, "net": build_net(recorded["net"], trust)})
    # As load_from_checkpoint does: the hook first (it makes the buffers a standardized
    # run saves), then every weight, every key matched.
    module.on_load_checkpoint(dict(checkpoint))
    module.load_state_dict(checkpoint["state_dict"])
    return module
