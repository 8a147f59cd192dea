PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOK_STAMP := $(VENV)/.installed-notebook
# The Jupyter kernel of .venv, which notebooks/ name; `make notebook` registers it.
KERNEL := lightning-workflow

.PHONY: install train test test-fast lint bench notebook clean

install: $(STAMP)

# The venv is rebuilt when the dependencies change; every version comes from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py fit --config configs/linear.yaml
	$(BIN)/python scripts/train.py fit --config configs/circles.yaml

# The whole suite: the inner loop, then the tests that start real processes, one at a
# time, so that a DDP test's ranks and the processes a test kills have the cores to themselves.
test: test-fast
	$(BIN)/python -m pytest -q -m slow

# The inner loop: everything but the tests that start real processes (marked slow), on
# one pytest-xdist worker per core; worksteal hands a free worker the other's queued tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every scenario; the figures go to docs/benchmarks.md, rewritten after each scenario, which
# docs/performance.md links to. Nobody types a measured number into a page.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --out docs/benchmarks.md

# JupyterLab on notebooks/, with .venv as the kernel the notebooks name. JupyterLab is the
# `notebook` extra, installed here only: `make install` has what the notebook test needs.
notebook: $(NOTEBOOK_STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	$(BIN)/jupyter lab notebooks/ $(ALLOW_ROOT)

$(NOTEBOOK_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,notebook]'
	touch $(NOTEBOOK_STAMP)

# JupyterLab refuses to start as root (a container's only user) without --allow-root.
ALLOW_ROOT = $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
