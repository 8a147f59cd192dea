"""``--model.compile true``: the same fit as eager, and checkpoints shared with eager runs.

Compiling the circles net starts the C++ compiler, in processes of its own, and
takes seconds on a CPU: these tests are slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import RunCLI, load_state_dict
from training.run.metrics_csv import read_metrics

CIRCLES = ["--data.batch_size", "256", "--checkpoint.every_n_seconds", "0"]


def fit(run_cli: RunCLI, root: Path, epochs: int, compile: bool, *extra: str) -> None:
    args = ["--trainer.max_epochs", str(epochs), "--model.compile", str(compile).lower()]
    code, err = run_cli(
        "fit", "circles.yaml", *CIRCLES, *args, "--trainer.default_root_dir", str(root), *extra
    )
    assert code == 0, err


def values(root: Path) -> list[dict[str, float]]:
    rows = read_metrics(root / "logs/circles/metrics.csv")
    return [{k: float(v) for k, v in row.items() if v} for row in rows]


@pytest.mark.slow
def test_compiled_fits_equal_eager_ones_and_share_checkpoints(
    run_cli: RunCLI, tmp_path: Path
) -> None:
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    fit(run_cli, eager, 3, compile=False)
    fit(run_cli, compiled, 2, compile=True)
    last = Path("checkpoints/circles/last.ckpt")
    state = load_state_dict(compiled / last)
    assert not [key for key in state if "_orig_mod" in key]
    assert state.keys() == load_state_dict(eager / last).keys()

    # Resumed eager from the compiled run's checkpoint: the eager run's third epoch.
    fit(run_cli, compiled, 3, False, "--ckpt_path", "last")
    for ours, theirs in zip(values(compiled), values(eager), strict=True):
        assert ours.keys() == theirs.keys()
        assert ours == pytest.approx(theirs, abs=1e-5)
    for key, weight in load_state_dict(compiled / last).items():
        torch.testing.assert_close(weight, load_state_dict(eager / last)[key], atol=1e-5, rtol=0)

    # And the other way: an eager checkpoint resumed compiled.
    fit(run_cli, compiled, 4, True, "--ckpt_path", "last")
    assert len(values(compiled)) == 2 * 4
