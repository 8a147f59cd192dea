"""Notes §2.5: the exported ``state_dict`` loads as the notes load it, and ONNX agrees.

One fit of each kind, exported once; the tests then use the files as a reader
of the notes (or of another runtime) would.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime
import pytest
import torch
from torch import Tensor

from datamodules import CirclesDataModule, LinearDataModule
from datamodules.split import SplitDataModule
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.base import WorkflowModule
from lightning_modules.models import CircleModelV2, LinearRegressionModelV2
from tests.conftest import fit_once, load_script, snapshot
from tests.test_errors import _RunsCode
from training.outputs.export import export
from training.run.atomic_files import TMP_SUFFIX


def export_script() -> ModuleType:
    return load_script("export")


def fit_and_export(root: Path, config: str, *args: str) -> Path:
    """Fits ``configs/<config>.yaml`` under ``root``, exports its best.ckpt; returns the folder."""
    fit_once(root, f"{config}.yaml", *args)
    assert export_script().main(["--name", config, "--root", str(root)]) == 0
    return root / "checkpoints" / config


@pytest.fixture(scope="module")
def linear_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_and_export(tmp_path_factory.mktemp("linear"), "linear", "--trainer.max_epochs", "20")


@pytest.fixture(scope="module")
def circles_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """With dropout: only the eval-mode net gives the same outputs every time."""
    args = ["--trainer.max_epochs", "20", "--model.net.dropout", "0.2"]
    return fit_and_export(tmp_path_factory.mktemp("circles"), "circles", *args)


def checkpoint_outputs(module_class: type[WorkflowModule], folder: Path, X: torch.Tensor) -> Tensor:
    module = module_class.load_from_checkpoint(folder / "best.ckpt")
    module.eval()  # no Trainer here: the reference is the net as the notes run it (§2.4)
    with torch.inference_mode():
        return module(X)


def test_the_notes_load_code_gives_the_checkpoints_predictions(linear_export: Path) -> None:
    path = linear_export / "best.pth"
    # Notes §2.5, word for word.
    loaded_model_1 = LinearRegressionModelV2()
    loaded_model_1.load_state_dict(torch.load(path))

    datamodule = LinearDataModule()
    datamodule.setup("test")
    X_test = datamodule.test_set.features
    loaded_model_1.eval()
    with torch.inference_mode():
        loaded_preds = loaded_model_1(X_test)
    assert torch.equal(loaded_preds, checkpoint_outputs(RegressionModule, linear_export, X_test))


def test_a_classifiers_state_dict_loads_into_its_plain_model(circles_export: Path) -> None:
    checkpoint = torch.load(circles_export / "best.ckpt", weights_only=True)
    model = CircleModelV2(**checkpoint["hyper_parameters"]["net"]["init_args"])
    model.load_state_dict(torch.load(circles_export / "best.pth"))
    X = torch.rand(50, 2)
    model.eval()
    with torch.inference_mode():
        assert torch.equal(model(X), checkpoint_outputs(ClassificationModule, circles_export, X))


@pytest.mark.parametrize(
    "kind, module_class, datamodule",
    [
        ("linear", RegressionModule, LinearDataModule()),
        ("circles", ClassificationModule, CirclesDataModule(val_size=0.2)),
    ],
)
def test_onnxruntime_gives_the_checkpoints_outputs_on_the_test_split(
    request: pytest.FixtureRequest,
    kind: str,
    module_class: type[WorkflowModule],
    datamodule: SplitDataModule,
) -> None:
    folder: Path = request.getfixturevalue(f"{kind}_export")
    datamodule.setup("test")
    X_test = datamodule.test_set.features
    session = onnxruntime.InferenceSession(str(folder / "best.onnx"))
    (outputs,) = session.run(None, {"features": X_test.numpy()})
    expected = checkpoint_outputs(module_class, folder, X_test).numpy()
    assert outputs.shape == expected.shape == (len(X_test), 1)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-6)


def test_the_onnx_file_is_on_disk_before_it_takes_its_name(
    linear_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written as every file is: to a temporary file, fsynced, renamed, the folder fsynced."""
    done: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        done.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        done.append(("rename", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    checkpoint = str(linear_export / "best.ckpt")
    assert export_script().main(["--ckpt_path", checkpoint, "--out_dir", str(tmp_path)]) == 0
    onnx = tmp_path / "best.onnx"
    tmp = f"{onnx}.{os.getpid()}{TMP_SUFFIX}"
    assert done[-3:] == [("fsync", tmp), ("rename", f"{tmp} -> {onnx}"), ("fsync", str(tmp_path))]


def test_the_export_reads_the_checkpoint_once(
    linear_export: Path, tmp_path: Path, torch_loads: list[object]
) -> None:
    """The file that ``read_checkpoint`` checked is the one exported: no second read to disagree."""
    checkpoint = linear_export / "best.ckpt"
    export(checkpoint, tmp_path)
    assert torch_loads == [checkpoint]


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda root: root / "nope.ckpt", "does not exist"),
        (lambda root: _write(root / "garbage.ckpt", b"not a checkpoint" * 10), "is truncated"),
        (lambda root: _evil(root), "would run code when loaded"),
    ],
)
def test_a_bad_checkpoint_gets_one_line_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], says: str
) -> None:
    path = make(tmp_path)
    before = snapshot(tmp_path)
    assert export_script().main(["--ckpt_path", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "code-ran").exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _evil(root: Path) -> Path:
    path = root / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": _RunsCode(root / "code-ran")}}, path)
    return path
