"""A full disk: one line naming the file, the earlier files intact, an exact resume later.

A file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored) stands in for
a full disk: a write past it fails with ``EFBIG`` exactly where a full disk
fails with ``ENOSPC``, at a size the test chooses, so the failing file is
always the same one.
"""

from __future__ import annotations

import csv
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    CONFIGS,
    RunCLI,
    assert_same_state,
    load_state_dict,
    snapshot,
    train_process,
)
from training.errors import WriteFailed
from training.outputs.export import export
from training.outputs.predictions import write_predictions
from training.run.atomic_files import atomic_torch_save, atomic_write_text
from training.run.metrics_csv import ResumableCSVLogger
from training.run.run_checkpoint import epochs_done


def limit_file_size(max_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: no file of the process may grow past ``max_bytes``."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


@contextmanager
def file_size_limit(max_bytes: int) -> Iterator[None]:
    """The same limit on this process for a moment, lifted again afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _predictions(n: int) -> list[dict[str, torch.Tensor]]:
    x = torch.arange(n, dtype=torch.float32)
    return [{"features": x[:, None], "prediction": x, "target": x}]


WRITERS: dict[str, Callable[[Path, int], object]] = {
    "last.ckpt": lambda path, n: atomic_torch_save({"x": torch.zeros(n)}, path),
    "config.yaml": lambda path, n: atomic_write_text(path, "x" * n),
    "predictions.csv": lambda path, n: write_predictions(_predictions(n), path),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_failed_write_names_the_file_and_keeps_the_previous_one(
    name: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    WRITERS[name](path, 10)
    before = snapshot(tmp_path)
    with file_size_limit(4096), pytest.raises(WriteFailed) as failure:
        WRITERS[name](path, 10_000)
    assert str(failure.value) == (
        f"cannot write {path} (File too large); free some space, then run it again"
    )
    assert snapshot(tmp_path) == before


def test_a_metrics_row_that_does_not_fit_is_not_left_half_written(tmp_path: Path) -> None:
    logger = ResumableCSVLogger(tmp_path)
    logger.log_metrics({"epoch": 0, "train/loss": 0.5}, step=0)
    logger.save()
    before = logger.metrics_path.read_bytes()
    logger.log_metrics({"epoch": 1, "train/loss": 0.25}, step=1)
    with (
        file_size_limit(len(before) + 5),
        pytest.raises(WriteFailed, match=r"metrics\.csv \(File too large\)"),
    ):
        logger.save()
    assert logger.metrics_path.read_bytes() == before


def test_an_export_that_does_not_fit_names_the_file(run_cli: RunCLI, tmp_path: Path) -> None:
    assert run_cli("fit", "linear.yaml", "--trainer.max_epochs", "2")[0] == 0
    best = tmp_path / "checkpoints" / "linear" / "best.ckpt"
    before = snapshot(tmp_path)
    # The state_dict (about 2 kB) fits; the ONNX file (about 2.4 kB) does not.
    with file_size_limit(2200), pytest.raises(WriteFailed) as failure:
        export(best)
    assert str(failure.value).startswith(
        f"cannot write {best.with_suffix('.onnx')} (File too large)"
    )
    assert set(snapshot(tmp_path)) == set(before) | {"checkpoints/linear/best.pth"}


ARGS = ["fit", "--config", str(CONFIGS / "linear.yaml"), "--checkpoint.every_n_seconds", "0"]


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_stops_the_fit_and_it_resumes_exactly(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    every_epoch = ["--checkpoint.every_n_seconds", "0", "--trainer.max_epochs", "6"]
    code, _ = run_cli(
        "fit", "linear.yaml", *every_epoch, "--trainer.default_root_dir", str(reference)
    )
    assert code == 0
    run = tmp_path / "run"
    run.mkdir()
    assert train_process(run, *ARGS, "--trainer.max_epochs", "3").returncode == 0
    last = run / "checkpoints" / "linear" / "last.ckpt"
    kept = last.read_bytes()

    # last.ckpt (about 19 kB) no longer fits; best.ckpt, metrics.csv and config.yaml do.
    resume = [*ARGS, "--ckpt_path", "last", "--trainer.max_epochs", "6"]
    full = train_process(run, *resume, preexec_fn=limit_file_size(8000))
    assert full.returncode == 1
    assert "Traceback" not in full.stderr
    line = full.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "error: cannot write checkpoints/linear/last.ckpt (File too large); free some space;"
        " checkpoints/linear/last.ckpt holds its 3 finished epochs; resume with: "
    )
    assert line.endswith(" --trainer.max_epochs 6 --ckpt_path last")
    assert last.read_bytes() == kept
    # best.ckpt is written first, whole: it holds the epoch whose last.ckpt did not fit.
    best = torch.load(run / "checkpoints/linear/best.ckpt", weights_only=True)
    assert best["epoch"] == 3 and best["state_dict"].keys() == load_state_dict(last).keys()
    with open(run / "logs/linear/metrics.csv", newline="") as f:
        assert all(None not in row.values() for row in csv.DictReader(f))
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]

    again = train_process(run, *resume)
    assert again.returncode == 0, again.stderr[-2000:]
    name = Path("checkpoints/linear/last.ckpt")
    assert_same_state(load_state_dict(run / name), load_state_dict(reference / name))
    metrics = Path("logs/linear/metrics.csv")
    assert (run / metrics).read_text() == (reference / metrics).read_text()


@pytest.mark.slow
def test_a_plot_that_does_not_fit_keeps_the_finished_fit(tmp_path: Path) -> None:
    # The checkpoints (at most about 19 kB) fit; the PNGs (from about 26 kB) do not.
    fit = train_process(
        tmp_path, *ARGS, "--trainer.max_epochs", "3", preexec_fn=limit_file_size(24_000)
    )
    assert fit.returncode == 1
    assert "Traceback" not in fit.stderr
    assert fit.stderr.strip().splitlines()[-1] == (
        "error: cannot write logs/linear/data.png (File too large); the fit finished and its"
        " checkpoints are written: free some space, then draw the plots with"
        " python scripts/plot.py logs/linear"
    )
    last = torch.load(tmp_path / "checkpoints/linear/last.ckpt", weights_only=True)
    assert epochs_done(last) == 3
    assert (tmp_path / "checkpoints/linear/best.ckpt").is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
