# forexgrid developer tasks. `make test` is the one command a fresh clone needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo docs test test-fast lint format install clean

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

# The whole suite, slow end-to-end tests included, after the lint checks.
test: $(STAMP) lint
	$(BIN)/python -m pytest

# Skip the tests marked slow (for quick local iterations; CI runs everything).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Regenerate the command reference from the commands' --help.
docs: $(STAMP)
	$(BIN)/python -m forexgrid.cli._reference > docs/cli.md

lint: $(STAMP)
	$(BIN)/ruff check forexgrid widgets tests benchmarks
	$(BIN)/ruff format --check forexgrid widgets tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format forexgrid widgets tests benchmarks
	$(BIN)/ruff check --fix forexgrid widgets tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build *.egg-info
