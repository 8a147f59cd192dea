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
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from lightning_modules.base import WorkflowModule
from training.checkpoint_io import TMP_SUFFIX, atomic_torch_save, failed_write_reported
from training.runs import read_checkpoint

# The rows of the example input that ONNX traces; the batch size stays free.
EXAMPLE_ROWS = 2


def input_width(net: nn.Module) -> int:
    """How many features a sample has: the first ``nn.Linear``'s inputs, else one.

    A net without ``nn.Linear`` is the notes' ``LinearRegressionModel``, whose
    parameters broadcast over a column of single values.
    """
    first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
    return first.in_features if first is not None else 1


def export(checkpoint_path: Path, out_dir: Path | None = None) -> list[Path]:
    """Writes ``<stem>.pth`` and ``<stem>.onnx`` of the checkpoint's net; returns their paths.

    The checkpoint is read the safe way first, so a missing, corrupt or
    malicious file, or one whose recorded net disagrees with its weights, is
    refused in one line before anything is built or written.
    """
    read_checkpoint(checkpoint_path)
    # Only the net is exported: the task around it (loss, metrics) does not matter here.
    module = WorkflowModule.load_from_checkpoint(checkpoint_path, map_location="cpu")
    directory = Path(out_dir) if out_dir is not None else checkpoint_path.parent
    state_path = directory / f"{checkpoint_path.stem}.pth"
    onnx_path = directory / f"{checkpoint_path.stem}.onnx"

    atomic_torch_save(module.net.state_dict(), state_path)

    # No Trainer runs here to switch modes: the exported graph must be the
    # inference one (dropout off), so the module is put in eval mode by hand.
    module.eval()
    example = torch.zeros(EXAMPLE_ROWS, input_width(module.net))
    tmp = onnx_path.with_name(f"{onnx_path.name}.{os.getpid()}{TMP_SUFFIX}")
    with failed_write_reported(onnx_path, tmp):
        with _quiet_exporter():
            module.to_onnx(
                tmp,
                (example,),
                dynamo=True,
                external_data=False,  # one self-contained file
                input_names=["features"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        os.replace(tmp, onnx_path)
    return [state_path, onnx_path]


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Drops two messages of torch's ONNX exporter that do not apply to these nets."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")

    def no_torchvision(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("torchvision is not installed")

    registration.addFilter(no_torchvision)  # these nets use no torchvision operator
    try:
        with warnings.catch_warnings():
            # Raised inside torch.export by a pytree API that torch 2.13 deprecates.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
            yield
    finally:
        registration.removeFilter(no_torchvision)
