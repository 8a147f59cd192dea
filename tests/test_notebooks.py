"""The notebooks of ``notebooks/`` run as committed: a fresh kernel, no error, the same text.

Each notebook is executed from the top in a new kernel of this virtualenv's
Python, named as ``make notebook`` names it, and every text it shows is
compared, cell by cell, with the outputs committed in the file: what a reader
sees on a code host is what the code does today. Images are compared by kind
only (a PNG's bytes may change with matplotlib and its fonts).

After changing a notebook or what it shows, ``.venv/bin/python
tests/test_notebooks.py`` executes every notebook the same way and writes the
outputs back into it (``tests/test_notebooks.py NAME.ipynb`` one of them).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ORDER = ["00_tensor_fundamentals.ipynb", "01_workflow.ipynb", "02_classification.ipynb"]
# The kernel the notebooks name, which `make notebook` registers.
KERNEL = re.findall(r"^KERNEL := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[0]
# A cell that runs longer than this is stuck: each notebook runs in well under two minutes.
CELL_TIMEOUT = 300


def kernel_environment(folder: Path) -> dict[str, str]:
    """Installs the notebooks' kernel, this Python, under ``folder``; returns the variables to set.

    ``ipykernel install`` is what ``make notebook`` runs, here into a folder of
    the run's own (``JUPYTER_PATH`` finds it), so a fresh clone needs nothing
    registered. The kernel sees no GPU, so the outputs are a CPU's on every
    machine, and its temporary folders, where the notebooks fit, are in ``folder``.
    """
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, prefix=str(folder))
    (folder / "tmp").mkdir(exist_ok=True)
    return {
        "JUPYTER_PATH": str(folder / "share" / "jupyter"),
        "CUDA_VISIBLE_DEVICES": "",
        "TMPDIR": str(folder / "tmp"),
    }


def execute(path: Path) -> Any:
    """The notebook at ``path`` run from the top in a fresh kernel, with its new outputs.

    Run in ``notebooks/``, as JupyterLab runs it; the first error stops it and
    raises nbclient's ``CellExecutionError``, which shows the cell and the traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=notebook.metadata.kernelspec.name,
        timeout=CELL_TIMEOUT,
        # No timestamps in the committed file: a rerun changes only what the code changed.
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def shown(cell: Any) -> dict[str, Any]:
    """What a reader reads of a cell's outputs: its text, and the kinds of its images.

    Each stream is joined whole: how the kernel cuts what a cell prints into
    messages, and how stdout and stderr interleave, may differ between runs.
    """
    text = {"stdout": "", "stderr": ""}
    results = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            text[output.name] += output.text
        elif output.output_type in ("execute_result", "display_data"):
            text_plain = output.data.get("text/plain", "")
            results.append({"text": text_plain, "kinds": sorted(output.data)})
        else:
            results.append({"error": f"{output.get('ename')}: {output.get('evalue')}"})
    return {**text, "results": results}


def differences(committed: Any, executed: Any) -> list[str]:
    """Each code cell whose shown text differs, named by its number and first line, with a diff."""
    found = []
    cells = [c for c in committed.cells if c.cell_type == "code"]
    again = [c for c in executed.cells if c.cell_type == "code"]
    for number, (before, after) in enumerate(zip(cells, again, strict=True), start=1):
        old, new = shown(before), shown(after)
        if old != new:
            first_line = before.source.splitlines()[0] if before.source else ""
            diff = difflib.unified_diff(
                json.dumps(old, indent=1).splitlines(),
                json.dumps(new, indent=1).splitlines(),
                "committed",
                "executed now",
                lineterm="",
            )
            found.append(f"code cell {number} ({first_line!r}):\n" + "\n".join(diff))
    return found


def read(name: str) -> Any:
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_notebook_runs_and_shows_what_is_committed(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in kernel_environment(tmp_path).items():
        monkeypatch.setenv(variable, value)
    executed = execute(NOTEBOOKS / name)
    found = differences(read(name), executed)
    assert not found, (
        f"{name} shows other text than its committed outputs (if the change is meant,"
        " rewrite them with .venv/bin/python tests/test_notebooks.py):\n\n" + "\n\n".join(found)
    )


def test_there_is_one_notebook_per_course_notebook() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_notebook_is_committed_run_on_the_kernel_make_notebook_registers(name: str) -> None:
    notebook = read(name)
    assert notebook.metadata.kernelspec.name == KERNEL
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    numbers = [cell.execution_count for cell in code]
    assert numbers == list(range(1, len(code) + 1)), "committed without running it from the top"


def test_the_workflow_notebook_prints_the_course_numbers() -> None:
    """The course's numbers (notes §2.2, §2.6), to 4 decimals, in the committed outputs."""
    printed = "".join(
        json.dumps(shown(cell)) for cell in read("01_workflow.ipynb").cells if "outputs" in cell
    )
    for number in ("0.3367", "0.1288", "0.7645", "0.8300", "0.5784", "0.3513", "0.6968", "0.3025"):
        assert number in printed, number


@pytest.mark.parametrize("name", ORDER)
def test_no_output_names_a_folder_of_the_machine_that_ran_it(name: str) -> None:
    """A warning's source file or a temporary run folder would differ in every clone."""
    for number, cell in enumerate(read(name).cells):
        text = json.dumps(shown(cell)) if "outputs" in cell else ""
        for folder in (str(ROOT), "site-packages", tempfile.gettempdir() + "/"):
            assert folder not in text, f"{name}, cell {number}, prints {folder}"


@pytest.mark.parametrize("name", ORDER)
def test_every_link_of_a_notebook_points_at_a_file(name: str) -> None:
    for cell in read(name).cells:
        if cell.cell_type == "markdown":
            for target in re.findall(r"\]\((\.\./[^)#]+)", cell.source):
                assert (NOTEBOOKS / target).exists(), f"{name} links {target}"


def test_the_tensor_notebook_names_each_test_of_its_facts() -> None:
    """``00_tensor_fundamentals.ipynb`` shows the facts ``test_tensor_fundamentals.py`` asserts."""
    text = "".join(cell.source for cell in read("00_tensor_fundamentals.ipynb").cells)
    tests = (ROOT / "tests" / "test_tensor_fundamentals.py").read_text()
    named = set(re.findall(r"`(test_\w+)`", text))
    assert named == set(re.findall(r"^def (test_\w+)", tests, re.MULTILINE))


def test_the_readme_links_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ORDER:
        assert f"](notebooks/{name})" in readme, name


def test_make_notebook_registers_the_kernel_and_starts_jupyterlab() -> None:
    """``make -n -B`` prints every recipe without running it: no install, no server."""
    shown_commands = subprocess.run(
        ["make", "-n", "-B", "notebook"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"-m ipykernel install --sys-prefix --name {KERNEL}" in shown_commands
    assert "jupyter lab notebooks/" in shown_commands
    assert "'.[dev,notebook]'" in shown_commands or "'.[notebook]'" in shown_commands


def test_jupyterlab_is_only_in_the_notebook_extra() -> None:
    """``make install`` (the ``dev`` extra) brings the notebook test's packages, not JupyterLab."""
    requirements = importlib.metadata.requires("lightning-workflow") or []
    jupyterlab = [r for r in requirements if r.startswith("jupyterlab")]
    assert jupyterlab and all('extra == "notebook"' in r for r in jupyterlab), jupyterlab
    for package in ("nbclient", "nbformat", "ipykernel"):
        assert [r for r in requirements if r.startswith(package) and 'extra == "dev"' in r]
    pinned = (ROOT / "constraints.txt").read_text()
    for package in ("jupyterlab", "nbclient", "nbformat", "ipykernel"):
        assert re.search(rf"^{package}==", pinned, re.MULTILINE), package


def main(names: list[str]) -> None:
    """Executes the notebooks (all, or those named) and writes their outputs back."""
    import os

    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(kernel_environment(Path(folder)))
        for name in names or ORDER:
            start = time.perf_counter()
            nbformat.write(execute(NOTEBOOKS / name), NOTEBOOKS / name)
            print(f"{name}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
