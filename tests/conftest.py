"""Shared fixtures: every run writes under ``tmp_path``, never into the repository."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from training.command_line.known_warnings import quiet_known_noise
from training.command_line.script_process import long_lived_imports

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TRAIN = ROOT / "scripts" / "train.py"

RunCLI = Callable[..., tuple[int, str]]


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    """Collects (importing torch, Lightning and the project) as ``scripts/train.py`` starts.

    The collector neither walks the millions of objects the imports make
    while they are made, nor at any full collection during the tests.
    """
    quiet_known_noise()
    with long_lived_imports():
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Filters the project's known noise in each test, as ``scripts/train.py`` does as it starts.

    pytest puts back its own warning filters around every test, so one call at
    import would not last; here it comes before any fixture, the module-scoped
    fits included.
    """
    quiet_known_noise()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the sweep tests first, the longest in-process tests (each is several fits).

    Under ``make test-fast`` each pytest-xdist worker starts with its share of
    the tests and, when it runs out, takes some of another's queue. At the end
    of the queue, a sweep test keeps the worker that ran out idle until it ends.
    """
    items.sort(key=lambda item: item.path.name != "test_sweep.py")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leaves every object to the OS at exit, as ``scripts/train.py`` does.

    Last: pytest's own final collection, which reports errors raised while
    the tests' leftover objects are freed, runs before.
    """
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """The nets here are too small to gain from a second thread.

    On a busy 2-core machine torch's threads spin against other processes,
    making a fit many times slower (benchmarks/run.py uses one thread for the
    same reason). torch is imported here, not at the top: under pytest-xdist
    the controlling process loads this file too but runs no test, and
    importing torch and Lightning there would delay every worker's start.
    """
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module", autouse=True)
def plots_only_where_read(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fits in this process draw their plots only in test modules marked ``plots``.

    The mark applies to a whole module (``pytestmark = pytest.mark.plots``):
    a single test cannot take it. In other modules ``write_fit_plots`` draws
    nothing, also when ``scripts/plot.py`` is run in-process.

    Drawing the three PNGs takes about half a second, often more than the
    short fit before it, and most tests read only checkpoints and metrics. The
    plots are checked by ``test_plots.py`` (marked ``plots``) and drawn by
    every test that starts a real process.
    """
    if request.node.get_closest_marker("plots") is not None:
        yield
        return
    from training.outputs import plots

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "write_fit_plots", lambda *args, **kwargs: [])
        yield


def train_in_process(root: Path, subcommand: str, config: str, *args: str) -> int:
    """Runs ``scripts/train.py <subcommand> --config configs/<config>`` here, rooted in ``root``.

    Returns the exit code.
    """
    from training.command_line.cli import main

    command = [subcommand, "--config", str(CONFIGS / config), "--trainer.default_root_dir"]
    # LightningCLI warns when it is handed args while sys.argv holds pytest's own.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [str(TRAIN)])
        return main([*command, str(root), *args])


@pytest.fixture
def run_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RunCLI:
    """Runs ``scripts/train.py`` in this process with its root in ``tmp_path``.

    Returns the exit code and what went to stderr.
    """
    monkeypatch.setattr(sys, "argv", [str(TRAIN)])

    def run(subcommand: str, config: str, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = train_in_process(tmp_path, subcommand, config, *args)
        return code, capsys.readouterr().err

    return run


@pytest.fixture
def torch_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What ``torch.load`` is asked to read from now on, in order."""
    import torch

    reads: list[object] = []
    load = torch.load

    def counted_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(f)
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted_load)
    return reads


def fit_once(root: Path, config: str, *args: str) -> Path:
    """Fits ``configs/<config>`` under ``root`` in this process; returns ``root``.

    For the module-scoped fixtures that train one run for several tests that
    only read it (``run_cli`` is per test: it writes under the test's own
    ``tmp_path``).
    """
    assert train_in_process(root, "fit", config, *args) == 0
    return root


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module, to call its ``main`` in this process."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_process(
    root: Path,
    *args: str,
    timeout: float = 120,
    script: Path = TRAIN,
    preexec_fn: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``scripts/train.py`` (or another ``script``) as a real process in ``root``.

    It runs in a process group of its own, killed whole if it overruns, so
    neither it nor any process it started outlives the test. ``preexec_fn`` runs
    in the child before it starts, e.g. to limit its resources; ``env`` replaces
    ``process_env()``.
    """
    command = [sys.executable, str(script), *args]
    with subprocess.Popen(
        command,
        cwd=root,
        env=env or process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=preexec_fn,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


SIGNAL_AT_IMPORT = """
import os
import signal
import sys


class SignalAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.{signal})
        return None


sys.meta_path.insert(0, SignalAtImport())
"""


def env_signalling_at_import(folder: Path, signum: signal.Signals) -> dict[str, str]:
    """A training process's environment in which it sends itself ``signum`` as it imports torch.

    A ``sitecustomize`` in ``folder``, first on ``PYTHONPATH``, adds the import
    hook: the signal lands at the same point of a script's imports every time.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SIGNAL_AT_IMPORT.format(signal=signum.name))
    env = process_env()
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env["PYTHONPATH"]])
    return env


def callback_option(class_name: str, **init_args: Any) -> str:
    """The option that adds a callback of ``tests/kill_points.py`` to a training process."""
    callback = {"class_path": f"kill_points.{class_name}", "init_args": init_args}
    return "--trainer.callbacks=" + json.dumps([callback])


def process_env() -> dict[str, str]:
    """The environment of a training process: ``tests/`` importable for ``kill_points``.

    Put before the ``PYTHONPATH`` the tests run with, if any (``scripts/gpu_check.sh``
    sets one where the project is not installed), made absolute: the processes
    run in other folders. torch runs on one thread there too, as in the tests'
    own process (``one_torch_thread``), whose fits some of them must match.
    """
    given = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    paths = [str(ROOT / "tests"), *(os.path.abspath(path) for path in given if path)]
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return {**os.environ, **one_thread, "PYTHONPATH": os.pathsep.join(paths)}


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    import torch

    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs: {a[key]} != {b[key]}"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
