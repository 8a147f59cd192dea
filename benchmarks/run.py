"""The project against the notes' plain loop, each scenario both ways in one run.

    python benchmarks/run.py              # every scenario, 5 alternating repeats each
    python benchmarks/run.py --quick      # 2 repeats
    python benchmarks/run.py --only linear --only process
    python benchmarks/run.py --out docs/benchmarks.md   # what make bench runs

Both sides train the same net on the same data with the same batch size,
epochs and validation every epoch. The plain side is ``plain.py`` (the notes'
loop); the project side is ``project.py`` (the CLI's ``fit``, with checkpoints,
CSV log and metrics on, as a user gets them). Sides alternate within every
repeat and the table shows medians, with the min-max spread, because the
machine may be shared; project/plain is the median of the per-repeat ratios
(see ``Row.ratio``). Fit times exclude making the data (and the plots the
CLI draws after a fit); the whole-process and memory scenarios run each side
as its own process, plots included, memory with at most 2 repeats.

Torch runs on one thread (``--threads 1``) on both sides by default: on a busy
2-core machine its default two threads spin against other processes and make
a 1000-epoch fit of a tiny net 20x slower, noise that would swamp the ratios.
``--threads 0`` keeps torch's default.

With ``--out`` the figures also go to a markdown page (``make bench`` writes
``docs/benchmarks.md``), rewritten whole after every scenario, so a run that
stops leaves the rows it measured and says where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import bare
import plain
import project
import torch

from training.run.atomic_files import atomic_write_text

ROOT = project.ROOT
PYTHON = sys.executable
MILLION = 1_000_000
SCENARIOS = [
    "linear",
    "circles",
    "million-1024",
    "million-8192",
    "process",
    "memory",
    "scaling",
    "floor",
    "proxy",
    "compile",
]
# Run with --only gpu where there is a CUDA GPU: (samples, batch size), data on the GPU.
GPU_RUNS = [(MILLION, 8192), (MILLION, 65536), (10 * MILLION, 8192), (10 * MILLION, 65536)]
# The GPU run where --compile is measured against the plain eager loop.
GPU_COMPILED = (10 * MILLION, 65536)
# Scaling counts as flat when the slowest throughput is at least this share of the fastest.
FLAT = 0.8
# The fits whose later epochs give the running throughput (scenario "scaling").
RUNNING_EPOCHS = 6


@dataclass
class Row:
    number: int
    scenario: str
    unit: str
    plain: list[float]
    project: list[float]
    target: str = ""
    bound: float | None = None
    higher_is_better: bool = False
    bound_on_project: bool = False  # the bound applies to the project's value, not the ratio

    @property
    def ratio(self) -> float:
        """project / plain: the median of the per-repeat ratios; NaN with no plain side.

        In most rows the two sides of a repeat ran back to back, and this
        machine's speed drifts by 20% or more within a minute: a ratio taken
        within a repeat cancels most of that drift, where a ratio of the two
        medians can pair a fast minute of one side with a slow minute of the
        other. Derived rows pair repeat i with repeat i as well: a later-epochs
        row from the differences of two runs, each made by both sides in turn;
        the eager-vs-compiled row from two runs of the project.
        """
        if not self.plain:
            return math.nan
        return statistics.median(b / a for a, b in zip(self.plain, self.project, strict=True))

    @property
    def met(self) -> bool | None:
        if self.bound is None:
            return None
        value = statistics.median(self.project) if self.bound_on_project else self.ratio
        return value >= self.bound if self.higher_is_better else value <= self.bound


Measure = Callable[[], float]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Sends both sides' output, Lightning's logging included, to /dev/null (file descriptors)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (null, *saved):
            os.close(fd)


def alternate(sides: dict[str, Measure], repeats: int) -> dict[str, list[float]]:
    """Runs the sides in turn, reversing the order every other repeat."""
    results: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            gc.collect()
            with quiet():
                results[name].append(sides[name]())
    return results


def samples_per_second(n_train: int, seconds: list[float]) -> list[float]:
    return [n_train / s for s in seconds]


class Bench:
    def __init__(self, repeats: int, threads: int) -> None:
        self.repeats = repeats
        self.env = dict(os.environ)
        if threads > 0:
            torch.set_num_threads(threads)
            self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self._circles: dict[int, plain.Splits] = {}
        self._seconds: dict[tuple[int, int, int, bool, bool], dict[str, list[float]]] = {}
        self._warm = False
        # Called with a scenario's rows so far, each time one more is measured (the GPU's).
        self.progress: Callable[[list[Row]], None] = lambda rows: None

    def circles_data(self, n_samples: int) -> plain.Splits:
        if n_samples not in self._circles:
            self._circles[n_samples] = plain.circles_data(n_samples)
        return self._circles[n_samples]

    def warm_up(self) -> None:
        """First calls pay for lazy imports and first-use setup; neither side is timed for them."""
        if not self._warm:
            with quiet():
                plain.fit_linear(plain.linear_data(), epochs=2)
                plain.fit_circles(self.circles_data(1000), epochs=2)
                project.fit_linear(epochs=2)
                project.fit_circles(epochs=2)
                bare.fit_linear(plain.linear_data(), epochs=2)
                bare.fit_circles(self.circles_data(1000), epochs=2)
            self._warm = True

    def run_process(self, args: list[str], cwd: str | Path) -> str:
        """Runs one whole process; returns its stdout, or raises with the end of its stderr."""
        done = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            command = " ".join(args)
            raise RuntimeError(f"{command} exited with {done.returncode}:\n{done.stderr[-2000:]}")
        return done.stdout

    def process_seconds(self, args: list[str], cwd: str | Path) -> float:
        start = time.perf_counter()
        self.run_process(args, cwd)
        return time.perf_counter() - start

    def peak_rss_mib(self, args: list[str], cwd: str | Path) -> float:
        """Peak RSS of ``args``, measured by ``peak_rss.py`` as their parent (see there why)."""
        wrapper = [PYTHON, str(ROOT / "benchmarks" / "peak_rss.py")]
        return int(self.run_process([*wrapper, *args], cwd).split()[-1]) / 1024

    # The scenarios, each run both ways.

    def linear(self) -> list[Row]:
        self.warm_up()
        data = plain.linear_data()
        times = alternate(
            {"plain": lambda: plain.fit_linear(data), "project": project.fit_linear},
            self.repeats,
        )
        scenario = "linear, 50 points, 200 full-batch epochs"
        return [Row(1, scenario, "fit s", times["plain"], times["project"], "<= 25x", 25)]

    def circles(self) -> list[Row]:
        self.warm_up()
        data = self.circles_data(1000)
        times = alternate(
            {
                "plain": lambda: plain.fit_circles(data, epochs=1000),
                "project": lambda: project.fit_circles(epochs=1000),
            },
            self.repeats,
        )
        scenario = "circles, 1000 points, 1000 full-batch epochs"
        return [Row(2, scenario, "fit s", times["plain"], times["project"], "<= 12x", 12)]

    def fit_seconds(
        self,
        n_samples: int,
        batch_size: int,
        epochs: int = 1,
        gpu: bool = False,
        compile: bool = False,
    ) -> dict[str, list[float]]:
        """Seconds of circles fits (training and validation), measured once per run.

        With ``gpu`` both sides copy the splits to the GPU once and cut every
        batch from that copy. ``compile`` compiles the project's net
        (``--model.compile true``); the plain side stays the notes' eager loop.
        """
        key = (n_samples, batch_size, epochs, gpu, compile)
        if key not in self._seconds:
            self.warm_up()
            data = self.circles_data(n_samples)
            device, accelerator = ("cuda", "gpu") if gpu else ("cpu", "cpu")
            self._seconds[key] = alternate(
                {
                    "plain": partial(plain.fit_circles, data, epochs, batch_size, device),
                    "project": partial(
                        project.fit_circles, epochs, n_samples, batch_size, accelerator, compile
                    ),
                },
                self.repeats,
            )
        return self._seconds[key]

    def throughput(self, n_samples: int, batch_size: int) -> dict[str, list[float]]:
        """Training samples per second of a one-epoch fit, with its validation."""
        n_train = self.circles_data(n_samples).n_train
        seconds = self.fit_seconds(n_samples, batch_size)
        return {side: samples_per_second(n_train, s) for side, s in seconds.items()}

    def running_seconds(
        self,
        n_samples: int,
        batch_size: int,
        gpu: bool = False,
        compile: bool = False,
        epochs: int = RUNNING_EPOCHS,
    ) -> dict[str, list[float]]:
        """Seconds per epoch of the epochs after the first, in a running fit (the steady state).

        ``(seconds of an ``epochs`` fit - seconds of a one-epoch fit) /
        (epochs - 1)``, per repeat: what an epoch costs once the fit's fixed
        costs (setup, saved config, sanity check, compiling, final checkpoints)
        are paid.
        """
        one = self.fit_seconds(n_samples, batch_size, 1, gpu, compile)
        more = self.fit_seconds(n_samples, batch_size, epochs, gpu, compile)
        return {
            side: [(b - a) / (epochs - 1) for a, b in zip(one[side], more[side], strict=True)]
            for side in one
        }

    def running_throughput(
        self, n_samples: int, batch_size: int, gpu: bool = False, compile: bool = False
    ) -> dict[str, list[float]]:
        """Training samples per second of the epochs after the first, in a running fit."""
        n_train = self.circles_data(n_samples).n_train
        seconds = self.running_seconds(n_samples, batch_size, gpu, compile)
        return {side: samples_per_second(n_train, s) for side, s in seconds.items()}

    def million(self, number: int, batch_size: int, bound: float) -> list[Row]:
        """The one-epoch fit (the target's row), then the same fit's later epochs.

        A one-epoch fit also pays what a fit pays once (config, sanity check,
        final checkpoints); the second row leaves that out (``running_seconds``).
        """
        one = self.throughput(MILLION, batch_size)
        scenario = f"circles, 1M points, batch {batch_size}, 1 epoch"
        target = f">= {bound}x"
        running = self.running_throughput(MILLION, batch_size)
        return [
            Row(number, scenario, "samples/s", one["plain"], one["project"], target, bound, True),
            Row(
                number,
                f"circles, 1M points, batch {batch_size}, epochs 2-{RUNNING_EPOCHS} of a fit",
                "samples/s",
                running["plain"],
                running["project"],
                higher_is_better=True,
            ),
        ]

    def process(self) -> list[Row]:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            counter = iter(range(10**6))

            def project_fit() -> float:
                root = f"{tmp}/project-{next(counter)}"
                args = ["scripts/train.py", "fit", "--config", "configs/linear.yaml"]
                args += ["--trainer.default_root_dir", root]
                return self.process_seconds([PYTHON, *args], ROOT)

            def plain_script() -> float:
                cwd = Path(tmp) / f"plain-{next(counter)}"
                cwd.mkdir()
                script = ROOT / "benchmarks" / "plain_linear.py"
                return self.process_seconds([PYTHON, str(script)], cwd)

            def importing(module: str) -> Measure:
                return lambda: self.process_seconds([PYTHON, "-c", f"import {module}"], tmp)

            times = alternate(
                {
                    "plain": plain_script,
                    "project": project_fit,
                    "torch": importing("torch"),
                    "lightning": importing("lightning"),
                },
                self.repeats,
            )
        whole = "whole process: plain_linear.py vs train.py fit linear.yaml"
        imports = "`python -c 'import torch'` vs `... 'import lightning'`"
        return [
            Row(5, whole, "process s", times["plain"], times["project"], "<= 2.0x", 2.0),
            Row(5, imports, "process s", times["torch"], times["lightning"]),
        ]

    def memory(self) -> list[Row]:
        """At most 2 repeats: peak RSS is steady, and the CLI's plots of 1M points take long."""
        size = ["circles", "--n-samples", str(MILLION), "--batch-size", "1024"]
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            counter = iter(range(10**6))

            def rss(args: list[str]) -> Measure:
                return lambda: self.peak_rss_mib(args, ROOT)

            def cli_rss() -> float:
                root = f"{tmp}/project-{next(counter)}"
                overrides = project.circles_overrides(1, MILLION, 1024)
                args = project.fit_args(project.CIRCLES, root, *overrides)
                return self.peak_rss_mib([PYTHON, "scripts/train.py", *args], ROOT)

            peaks = alternate(
                {
                    "plain": rss([PYTHON, "benchmarks/plain.py", *size]),
                    "project": cli_rss,
                    "project fit": rss([PYTHON, "benchmarks/project.py", *size]),
                    "torch": rss([PYTHON, "-c", "import torch"]),
                    "lightning": rss([PYTHON, "-c", "import lightning"]),
                },
                min(self.repeats, 2),
            )
        unit = "max RSS MiB"
        whole = "peak RSS, circles 1M points, batch 1024, 1 epoch: `train.py fit`"
        fit_only = "the same, fit only (no after-fit plots)"
        imports = "`import torch` vs `import lightning`"
        return [
            Row(6, whole, unit, peaks["plain"], peaks["project"], "<= 1.5x", 1.5),
            Row(6, fit_only, unit, peaks["plain"], peaks["project fit"]),
            Row(6, imports, unit, peaks["torch"], peaks["lightning"]),
        ]

    def scaling(self) -> list[Row]:
        """Throughput at three sizes: per one-epoch fit, and per epoch of a running fit.

        A cost paid once per fit (Trainer setup, saved config, sanity check,
        final checkpoints) weighs most on the smallest fit. The running rows
        leave it out; the line ``seconds = fixed + n / marginal`` through the
        one-epoch fits tells it apart from the cost per sample too.
        """
        rows = []
        sizes = (10_000, 100_000, MILLION)
        measures = {
            "one-epoch fit": self.throughput,
            f"epochs 2-{RUNNING_EPOCHS} of a fit": self.running_throughput,
        }
        medians: dict[str, dict[str, list[float]]] = {}
        for label, measure in measures.items():
            medians[label] = {"plain": [], "project": []}
            for n in sizes:
                rates = measure(n, 1024)
                for side, values in medians[label].items():
                    values.append(statistics.median(rates[side]))
                scenario = f"circles, {n:,} points, batch 1024, {label}"
                rows.append(Row(7, scenario, "samples/s", rates["plain"], rates["project"]))
        for label, by_side in medians.items():
            # The target is on running epochs: a fit's fixed cost is no cost per sample.
            bound = FLAT if label != "one-epoch fit" else None
            target = f">= {FLAT} (project)" if bound else ""
            flat = {side: [min(values) / max(values)] for side, values in by_side.items()}
            scenario = f"throughput flatness, {label}: slowest n / fastest n"
            rows.append(
                Row(7, scenario, "share", flat["plain"], flat["project"], target, bound, True, True)
            )
        n_train = [float(self.circles_data(n).n_train) for n in sizes]
        lines = {
            side: statistics.linear_regression(
                n_train, [n / r for n, r in zip(n_train, rates, strict=True)]
            )
            for side, rates in medians["one-epoch fit"].items()
        }
        fixed = {side: [line.intercept] for side, line in lines.items()}
        marginal = {side: [1 / line.slope] for side, line in lines.items()}
        rows.append(
            Row(7, "fixed cost per fit (line at n = 0)", "s", fixed["plain"], fixed["project"])
        )
        scenario = "marginal throughput (1 / slope of the line)"
        rows.append(Row(7, scenario, "samples/s", marginal["plain"], marginal["project"]))
        return rows

    def floor(self) -> list[Row]:
        """The plain loop against a bare Trainer (``bare.py``): what Lightning's loop alone costs.

        In these rows the "project" column is the bare Trainer, not the project;
        for the 1M runs also the project with its metrics left out (a diagnostic:
        what the metrics cost).
        """
        self.warm_up()
        rows = []
        linear = plain.linear_data()
        times = alternate(
            {"plain": partial(plain.fit_linear, linear), "bare": partial(bare.fit_linear, linear)},
            self.repeats,
        )
        scenario = "floor: bare Trainer, linear 200 full-batch epochs"
        rows.append(Row(9, scenario, "fit s", times["plain"], times["bare"]))
        for batch_size in (1024, 8192):
            data = self.circles_data(MILLION)
            times = alternate(
                {
                    "plain": partial(plain.fit_circles, data, 1, batch_size),
                    "bare": partial(bare.fit_circles, data, 1, batch_size),
                    "no metrics": partial(
                        project.fit_circles_without_metrics, 1, MILLION, batch_size
                    ),
                },
                self.repeats,
            )
            rates = {side: samples_per_second(data.n_train, t) for side, t in times.items()}
            for side, what in (("bare", "bare Trainer"), ("no metrics", "project, metrics off")):
                scenario = f"floor: {what}, circles 1M points, batch {batch_size}, 1 epoch"
                rows.append(
                    Row(9, scenario, "samples/s", rates["plain"], rates[side], "", None, True)
                )
        return rows

    def proxy(self) -> list[Row]:
        """Per-step time at batch 64 on the CPU: the host's work per step, which bounds a GPU.

        A step of the circles net at batch 64 computes almost nothing, so its
        time is what the host spends per step (Python, hooks, kernel launches):
        on a GPU, where the compute is fast, that is what limits throughput.
        Steady-state epochs (see ``running_seconds``) of 100k points, divided
        by the training steps per epoch (validation's steps included in the time).
        """
        n_samples, batch_size = 100_000, 64
        steps = -(-self.circles_data(n_samples).n_train // batch_size)
        seconds = self.running_seconds(n_samples, batch_size, epochs=3)
        per_step = {side: [1000 * s / steps for s in values] for side, values in seconds.items()}
        scenario = f"CPU proxy for a GPU: ms per training step, batch {batch_size}, epochs 2-3"
        return [Row(10, scenario, "ms/step", per_step["plain"], per_step["project"])]

    def compiled(
        self, n_samples: int, batch_size: int, number: int, gpu: bool = False
    ) -> list[Row]:
        """``--model.compile true`` against the eager project and the plain eager loop.

        The steady state leaves the compiling out; the compile time is its own
        row: the compiled one-epoch fit minus the eager one.
        """
        where = "GPU" if gpu else "CPU"
        name = f"{where}: circles {n_samples:,} points, batch {batch_size}"
        compiled = self.running_throughput(n_samples, batch_size, gpu, compile=True)
        eager = self.running_throughput(n_samples, batch_size, gpu)
        one_compiled = self.fit_seconds(n_samples, batch_size, 1, gpu, compile=True)["project"]
        one_eager = self.fit_seconds(n_samples, batch_size, 1, gpu)["project"]
        compile_seconds = [c - e for c, e in zip(one_compiled, one_eager, strict=True)]
        target, bound = (">= 1.5x", 1.5) if gpu else ("", None)
        return [
            Row(
                number,
                f"{name}, steady-state epochs, --compile (plain: eager)",
                "samples/s",
                compiled["plain"],
                compiled["project"],
                target,
                bound,
                True,
            ),
            Row(
                number,
                f"{name}, steady-state epochs: eager project vs --compile",
                "samples/s",
                eager["project"],
                compiled["project"],
            ),
            Row(
                number,
                f"{name}: compile time (compiled one-epoch fit - eager one)",
                "s",
                [],
                compile_seconds,
            ),
        ]

    def compile(self) -> list[Row]:
        """On the CPU: does ``--model.compile true`` pay off? (Each repeat compiles twice.)"""
        return self.compiled(100_000, 1024, 11)

    def gpu(self) -> list[Row]:
        """Large circles fits on the GPU, both sides with the splits copied there once.

        For each size: the whole one-epoch fit (seconds), and the steady state
        (epochs 2 onward of a running fit, samples per second); then
        ``--model.compile true`` at the largest size. The batches are slices of
        the on-device copy; the project's shuffle order is drawn on the GPU.
        """
        if not torch.cuda.is_available():
            raise SystemExit("error: the gpu scenario needs a CUDA GPU; run the others without it")
        with quiet():  # CUDA context, kernels and cuBLAS set up before any clock runs
            plain.fit_circles(self.circles_data(1000), 2, 64, device="cuda")
            project.fit_circles(2, 1000, 64, accelerator="gpu")
        rows = []
        for n_samples, batch_size in GPU_RUNS:
            name = f"GPU: circles {n_samples:,} points, batch {batch_size}"
            whole = self.fit_seconds(n_samples, batch_size, 1, gpu=True)
            target, bound = ("<= 1.5x", 1.5) if n_samples == 10 * MILLION else ("", None)
            scenario = f"{name}, whole one-epoch fit"
            rows.append(Row(8, scenario, "fit s", whole["plain"], whole["project"], target, bound))
            steady = self.running_throughput(n_samples, batch_size, gpu=True)
            rows.append(
                Row(
                    8,
                    f"{name}, steady-state epochs (2-{RUNNING_EPOCHS})",
                    "samples/s",
                    steady["plain"],
                    steady["project"],
                    ">= 0.9x",
                    0.9,
                    True,
                )
            )
            self.progress(rows)
        return rows + self.compiled(*GPU_COMPILED, 8, gpu=True)

    def scenario(self, name: str) -> list[Row]:
        runs: dict[str, Callable[[], list[Row]]] = {
            "linear": self.linear,
            "circles": self.circles,
            "million-1024": lambda: self.million(3, 1024, 0.5),
            "million-8192": lambda: self.million(4, 8192, 0.8),
            "process": self.process,
            "memory": self.memory,
            "scaling": self.scaling,
            "floor": self.floor,
            "proxy": self.proxy,
            "compile": self.compile,
            "gpu": self.gpu,
        }
        return runs[name]()


def machine() -> list[str]:
    import lightning
    import torchmetrics

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    gpu = [f"- GPU: {torch.cuda.get_device_name()}"] if torch.cuda.is_available() else []
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        *gpu,
        f"- torch {torch.__version__} ({torch.get_num_threads()} threads),"
        f" lightning {lightning.__version__}, torchmetrics {torchmetrics.__version__},"
        f" Python {platform.python_version()}",
        f"- load average at start: {load}",
    ]


def fmt(value: float, unit: str) -> str:
    if unit == "samples/s":
        return f"{value / 1000:,.0f}k"
    if unit == "max RSS MiB":
        return f"{value:,.0f}"
    return f"{value:.3g}"


def cell(values: list[float], unit: str) -> str:
    if not values:
        return ""
    median = fmt(statistics.median(values), unit)
    if len(values) < 2:
        return median
    return f"{median} ({fmt(min(values), unit)}-{fmt(max(values), unit)})"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| # | scenario | unit | plain | project | project/plain | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {None: "", True: "yes", False: "**no**"}[row.met]
        ratio = "" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
        lines.append(
            f"| {row.number} | {row.scenario} | {row.unit} | {cell(row.plain, row.unit)}"
            f" | {cell(row.project, row.unit)} | {ratio} | {row.target} | {met} |"
        )
    return lines


def summary(repeats: int, seconds: float) -> str:
    return (
        f"Medians of {repeats} alternating repeats (memory: at most 2), min-max beside them;"
        " project/plain: the median of the per-repeat ratios;"
        f" {seconds:.0f} s in all. Fit times exclude making the data;"
        f" rows 5 and 6 are whole processes. Torch threads: {torch.get_num_threads()}."
    )


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass
class Page:
    """The markdown page ``--out`` names, written whole after every scenario."""

    path: Path
    command: str
    machine: list[str]
    started: datetime.datetime

    def write(self, rows: list[Row], state: str, footer: str = "") -> None:
        text = [
            "# Benchmark figures",
            "",
            "Written by `make bench` (`.venv/bin/python benchmarks/run.py --out"
            " docs/benchmarks.md`), which rewrites this file after every scenario it"
            " measures: do not edit it by hand. What the rows measure and why:"
            " [Performance](performance.md).",
            "",
            f"This run: `{self.command}`, started {self.started:%Y-%m-%d %H:%M} UTC; {state}.",
            "",
            "## Lightning project vs the notes' plain loop",
            "",
            *self.machine,
            "",
            *table(rows),
        ]
        if footer:
            text += ["", footer]
        atomic_write_text(self.path, "\n".join(text) + "\n")


def progress_of(page: Page, rows: list[Row], name: str, measured: list[Row]) -> None:
    """Writes the rows of ``name`` measured so far, so a stopped run keeps them."""
    page.write([*rows, *measured], f"running `{name}`: {len(measured)} of its rows measured")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--repeats", type=int, help="alternating repeats per scenario")
    parser.add_argument(
        "--only", action="append", choices=[*SCENARIOS, "gpu"], help="repeatable; gpu needs CUDA"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    parser.add_argument(
        "--out", type=Path, help="also write the figures to this markdown page, after each scenario"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    bench = Bench(repeats, args.threads)
    names = args.only or SCENARIOS
    machine_lines = machine()
    command = shlex.join(["benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    page = Page(args.out, command, machine_lines, utc_now()) if args.out else None
    print("## Lightning project vs the notes' plain loop\n")
    print("\n".join(machine_lines), flush=True)
    start = time.perf_counter()
    rows: list[Row] = []
    for done, name in enumerate(names):
        if page:
            page.write(rows, f"still running: {done} of {len(names)} scenarios done, `{name}` next")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        if page:
            bench.progress = partial(progress_of, page, rows, name)
        try:
            rows += bench.scenario(name)
        except BaseException as error:  # recorded on the page, then raised as it was
            if page:
                page.write(rows, f"stopped during `{name}` by {type(error).__name__}")
            raise
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"- load average at end: {load}\n")
    print("\n".join(table(rows)))
    footer = summary(repeats, time.perf_counter() - start)
    print(f"\n{footer}")
    if page:
        page.machine.append(f"- load average at end: {load}")
        page.write(rows, f"finished {utc_now():%Y-%m-%d %H:%M} UTC", footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
