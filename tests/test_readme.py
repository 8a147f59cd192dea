"""Every command the README and the pages of ``docs/`` show runs as written (with few epochs).

A page's commands are the lines of its ``sh`` blocks; what a command prints is
in ``text`` blocks. Each command is run here, or by the test file that
``RUN_ELSEWHERE`` names, or is one that ``NOT_RUN`` says cannot run in a test;
a command that is none of these fails ``test_every_command_is_run``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, load_script, train_process
from training.command_line.cli import main

PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
FENCED = re.compile(r"^```([^\n]*)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
RUN_HERE = re.compile(r"^((?:PYTHONPATH=\S+ )?)\.venv/bin/python scripts/(train|export)\.py (.+)$")
BENCHMARK = re.compile(r"^\.venv/bin/python (benchmarks/run\.py .+)$")
# Commands that start processes of their own or need a server: the test file that runs them.
RUN_ELSEWHERE = {
    r"^(\.venv/bin/python|torchrun) .*--trainer\.strategy ddp": "tests/test_ddp.py",
    r"^\.venv/bin/python scripts/sweep\.py ": "tests/test_sweep.py",
    r"^createdb |--storage postgresql": "tests/test_sweep.py",  # against a server it starts
    r"^\.venv/bin/python scripts/compare\.py ": "tests/test_compare.py",  # on runs it fits
    r"^\.venv/bin/tensorboard ": "tests/test_tensorboard_log.py",  # a server it starts
}
# Commands no test runs, and why.
NOT_RUN = {
    r"^(srun |if \[ \$\? -eq 143 \])": "a SLURM batch script: it needs a SLURM cluster",
    r"^make (train|test)$": "make test is this suite; make train fits configs this file fits",
    r"^make bench$": "the whole benchmark takes long and needs a quiet machine",
}
# Every run is cut to two epochs, under the test's own folder (the last value of an option wins).
SHORT = ["--trainer.max_epochs", "2", "--trainer.default_root_dir"]


def blocks(text: str, language: str) -> list[str]:
    return [body for info, body in FENCED.findall(text) if info == language]


def commands(text: str) -> list[str]:
    """The commands of a page's ``sh`` blocks: continued lines joined, comments left out."""
    lines = []
    for block in blocks(text, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def elsewhere(command: str) -> list[str]:
    """The patterns of ``RUN_ELSEWHERE`` and ``NOT_RUN`` that ``command`` matches."""
    return [p for p in [*RUN_ELSEWHERE, *NOT_RUN] if re.search(p, command)]


def runs_here(text: str) -> list[tuple[str, str, list[str]]]:
    """A page's ``train.py`` and ``export.py`` commands as ``(PYTHONPATH folder, script, args)``."""
    runs = []
    for command in commands(text):
        found = RUN_HERE.match(command)
        if found and not elsewhere(command):
            env, script, args = found.groups()
            runs.append((env.strip().partition("=")[2], script, shlex.split(args)))
    return runs


def test_every_command_is_run() -> None:
    """Each command is run here, or matches exactly one entry of the lists, each entry used."""
    used = set()
    for page, text in PAGES.items():
        assert blocks(text, "") == [], f"{page}: a fenced block needs sh, text, python or yaml"
        for command in commands(text):
            reasons = elsewhere(command)
            if reasons:
                assert len(reasons) == 1, (page, command, reasons)
            else:
                assert RUN_HERE.match(command) or BENCHMARK.match(command), (page, command)
            used.update(reasons)
    assert used == {*RUN_ELSEWHERE, *NOT_RUN}, "an entry no page's command needs any more"


def test_the_tests_that_run_a_pages_commands_read_that_page() -> None:
    for page, text in PAGES.items():
        for command in commands(text):
            for pattern in elsewhere(command):
                runner = RUN_ELSEWHERE.get(pattern)
                if runner:
                    assert page in (ROOT / runner).read_text(), (runner, page, command)


def test_the_readme_shows_the_main_commands() -> None:
    shown = [" ".join(args) for _, script, args in runs_here(PAGES["README.md"])]
    assert "fit --config configs/circles.yaml --ckpt_path last --trainer.max_epochs 2000" in shown
    assert "test --config configs/circles.yaml --ckpt_path best" in shown
    assert "--name linear" in shown


@pytest.mark.parametrize(
    "page", [page for page, text in PAGES.items() if runs_here(text) or blocks(text, "python")]
)
def test_a_pages_commands_run_in_order(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page's commands in the order it gives them, then its Python blocks on what they left."""
    monkeypatch.chdir(ROOT)
    # LightningCLI warns when it is handed args while sys.argv holds pytest's own.
    monkeypatch.setattr("sys.argv", ["scripts/train.py"])
    for folder, script, args in runs_here(PAGES[page]):
        if folder:
            monkeypatch.syspath_prepend(str(ROOT / folder))
        if script == "export":
            code = load_script("export").main([*args, "--root", str(tmp_path)])
        else:
            code = main([*args, *SHORT, str(tmp_path)])
        assert code == 0, (args, capsys.readouterr().err[-500:])
    monkeypatch.chdir(tmp_path)
    for snippet in blocks(PAGES[page], "python"):
        exec(snippet, {})


@pytest.mark.slow
def test_the_benchmark_commands_write_their_page(tmp_path: Path) -> None:
    """Each ``benchmarks/run.py`` command of a page, with one repeat, writing a page of its own."""
    shown = [m[1] for text in PAGES.values() for c in commands(text) if (m := BENCHMARK.match(c))]
    assert shown
    for number, command in enumerate(shown):
        script, *args = shlex.split(command)
        out = tmp_path / f"benchmarks-{number}.md"
        done = train_process(
            tmp_path, *args, "--repeats", "1", "--out", str(out), script=ROOT / script, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        page = out.read_text()
        assert "; finished " in page, page
        assert "| # | scenario |" in page and "| 1 | linear" in page, page


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", flags=re.MULTILINE)


def prose(text: str) -> str:
    """A page without its fenced blocks and inline code, where a link or a heading is not one."""
    return re.sub(r"`[^`\n]*`", "", FENCED.sub("", text))


def anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as ``-``."""
    headings = HEADING.findall(FENCED.sub("", text))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_points_at_a_file_and_a_heading(page: str) -> None:
    for target in LINK.findall(prose(PAGES[page])):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / page).parent / path if path else ROOT / page
        assert file.is_file(), f"{page}: {target} points at no file"
        if anchor:
            assert anchor in anchors(file.read_text()), f"{page}: {target} points at no heading"
