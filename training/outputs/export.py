"""Notes §2.5, save and load: a checkpoint's net as the notes save it, and as ONNX.

A Lightning checkpoint is not the notes' file: its keys carry the module's
``net.`` prefix, and it holds the optimizer and loop state too. ``export``
writes, beside the checkpoint (or into ``out_dir``):

- ``<stem>.pth``: the net's own ``state_dict``, saved with ``torch.save`` as
  the notes save it, and loaded as they load it::

      model = LinearRegressionModelV2()
      model.load_state_dict(torch.load("checkpoints/linear/best.pth"))

- ``<stem>.onnx``: the net in eval mode, for runtimes without PyTorch. Its
  input ``features`` has shape ``(batch, features)`` with any batch size; its
  output ``output`` is what the net returns (logits for a classifier).

A run fitted with ``--data.standardize true`` scales its inputs by the
training split's mean and standard deviation. The ONNX graph does it itself
and takes the inputs as the user has them; the ``.pth`` net takes scaled
inputs, ``(x - mean) / std``, with the numbers in ``<stem>.standardize.json``
beside it.

Building the net imports its module, so a net of the user's own is built only
from a module named in ``trust``, as ``load_from_checkpoint`` builds it.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.base import WorkflowModule
from lightning_modules.input_scaling import MEAN, STD
from lightning_modules.net_spec import UntrustedNet
from training.command_line.known_warnings import quiet_known_noise
from training.errors import UserError
from training.outputs.trained_module import trained_module
from training.run.atomic_files import atomic_file, atomic_torch_save, atomic_write_text
from training.run.folders import read_checkpoint

# The rows of the example input that ONNX traces; the batch size stays free.
EXAMPLE_ROWS = 2


def input_width(net: nn.Module) -> int:
    """How many features a sample has: the first ``nn.Linear``'s inputs, else one.

    A net without ``nn.Linear`` is the notes' ``LinearRegressionModel``, whose
    parameters broadcast over a column of single values.
    """
    first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
    return first.in_features if first is not None else 1


def export(
    checkpoint_path: Path, out_dir: Path | None = None, trust: Sequence[str] = ()
) -> list[Path]:
    """Writes ``<stem>.pth`` and ``<stem>.onnx`` of the checkpoint's net; returns their paths.

    The checkpoint is read the safe way first, so a missing, corrupt or
    malicious file, one whose recorded net disagrees with its weights, or one
    whose net comes from a module not in ``trust``, is refused in one line
    before anything is built or written.
    """
    checkpoint = read_exportable(checkpoint_path, trust)
    # Only the net is exported: the task around it (loss, metrics) does not matter here.
    module = trained_module(WorkflowModule, checkpoint, trust)
    directory = Path(out_dir) if out_dir is not None else checkpoint_path.parent
    state_path = directory / f"{checkpoint_path.stem}.pth"
    onnx_path = directory / f"{checkpoint_path.stem}.onnx"

    atomic_torch_save(module.net.state_dict(), state_path)
    paths = [state_path]
    if hasattr(module, MEAN):
        # The net alone takes scaled inputs; the ONNX graph below scales them itself.
        scaling_path = directory / f"{checkpoint_path.stem}.standardize.json"
        numbers = {"mean": getattr(module, MEAN).tolist(), "std": getattr(module, STD).tolist()}
        atomic_write_text(scaling_path, json.dumps(numbers, indent=2) + "\n")
        paths.append(scaling_path)

    # No Trainer runs here to switch modes: the exported graph must be the
    # inference one (dropout off), so the module is put in eval mode by hand.
    module.eval()
    example = torch.zeros(EXAMPLE_ROWS, input_width(module.net))
    with _quiet_exporter():
        program = module.to_onnx(
            None,  # written below, as every file is
            (example,),
            dynamo=True,
            input_names=["features"],
            output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    assert program is not None  # the dynamo exporter returns what it made
    with atomic_file(onnx_path, "wb") as f:
        f.write(program.model_proto.SerializeToString())  # one self-contained file
    return [*paths, onnx_path]


def read_exportable(path: Path, trust: Sequence[str]) -> dict[str, Any]:
    """``read_checkpoint``, with its refusals of the net said in ``scripts/export.py``'s terms.

    ``read_checkpoint`` tells a Python caller to pass ``trust=[...]``; the
    script takes ``--trust``. A trusted module that cannot be imported (its
    folder not on ``PYTHONPATH``) is refused in one line too.
    """
    try:
        return read_checkpoint(path, trust)
    except UserError as refusal:
        net = refusal.__cause__
        while net is not None and not isinstance(net, UntrustedNet):
            net = net.__cause__  # read_checkpoint's, then check_net_matches's wrapping
        if net is None:
            raise
        raise UserError(
            f"{path} records the net {net.class_path}, which is not one of this project's:"
            f" building it imports {net.module}, which runs its code; if you trust it,"
            f" pass --trust {net.module}"
        ) from refusal
    except ImportError as error:
        raise UserError(
            f"cannot import the net of {path} ({error}); put the folder of its module on"
            " PYTHONPATH, as for the fit"
        ) from error


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Drops two messages of torch's ONNX exporter that do not apply to these nets."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")

    def no_torchvision(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("torchvision is not installed")

    registration.addFilter(no_torchvision)  # these nets use no torchvision operator
    try:
        with warnings.catch_warnings():
            # torch.export calls the pytree API that torch 2.13 deprecates.
            quiet_known_noise()
            yield
    finally:
        registration.removeFilter(no_torchvision)
