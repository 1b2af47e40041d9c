# forexgrid developer tasks. `make test` is the one command a fresh clone needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo docs lab test test-fast lint format install clean

# Create the virtual environment and install forexgrid with every extra (dev tools, Dask,
# PostgreSQL driver); redone when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,distributed,postgres]"
	touch $(STAMP)

install: $(STAMP)

# The first thing to run: the user guide's 16-configuration grid on the bundled real EURUSD
# sample, in a new folder ./forexgrid_demo_YYYYMMDD_HHMMSS.
demo: $(STAMP)
	$(BIN)/forexgrid demo

# The whole suite, slow end-to-end tests included, after the lint checks. pytest's testpaths
# include notebooks/, so every example notebook is executed too (nbval; pyproject.toml says
# why in lax mode with assert cells).
test: $(STAMP) lint
	$(BIN)/python -m pytest

# Skip the tests marked slow (for quick local iterations; CI runs everything). The notebooks
# still run: each of their cells is a short test.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# JupyterLab from the project's venv on the example notebooks, listening on 127.0.0.1 only;
# Ctrl-C stops it. More flags: make lab LAB_FLAGS="--no-browser --port 8890" (as root, e.g.
# in a container, Jupyter also wants --allow-root).
LAB_FLAGS ?=
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 $(LAB_FLAGS)

# Regenerate the command reference from the commands' --help.
docs: $(STAMP)
	$(BIN)/python -m forexgrid.cli._reference > docs/cli.md

# The notebooks' code cells are checked and formatted like the package (ruff reads .ipynb).
lint: $(STAMP)
	$(BIN)/ruff check forexgrid widgets tests benchmarks notebooks
	$(BIN)/ruff format --check forexgrid widgets tests benchmarks notebooks

format: $(STAMP)
	$(BIN)/ruff format forexgrid widgets tests benchmarks notebooks
	$(BIN)/ruff check --fix forexgrid widgets tests benchmarks notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build *.egg-info
