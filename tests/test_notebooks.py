"""The example notebooks in notebooks/: committed without outputs, runnable by nbval.

nbval executes the notebooks themselves (pyproject.toml's testpaths and --nbval-lax); these
tests check what nbval cannot: that nobody commits a notebook with its outputs (results,
timings, local paths and megabytes of PNG in every diff), that every notebook runs in the
venv's ``python3`` kernel, is listed in notebooks/README.md, and that ``pytest`` keeps
executing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CLEAR_COMMAND = "jupyter nbconvert --clear-output --inplace notebooks/*.ipynb"


def output_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """What a notebook keeps that a committed notebook must not: outputs, execution counts."""
    problems = []
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {number} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {number} has execution_count {cell.execution_count}")
    return problems


def test_the_example_notebooks_are_there():
    # The checks below loop over whatever notebooks/ holds; an empty or moved folder must
    # not make them pass vacuously.
    names = {path.name for path in NOTEBOOKS}
    assert {"01_quickstart.ipynb", "02_regime_exploration.ipynb"} <= names


def test_output_problems_finds_outputs_and_execution_counts():
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"})]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x = 1"), cell]
    )
    assert output_problems(notebook) == ["cell 2 has 1 output(s)", "cell 2 has execution_count 3"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    problems = output_problems(notebook)
    assert not problems, (
        f"notebooks/{path.name}: {'; '.join(problems)}. Commit notebooks without outputs: "
        f"{CLEAR_COMMAND} (or Edit > Clear Outputs of All Cells in JupyterLab, then save)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_valid_and_uses_the_python3_kernel(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    # nbval starts the kernel the notebook names; `python3` is the venv's own kernel spec.
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


def test_every_notebook_is_listed_in_the_notebooks_readme():
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in NOTEBOOKS if path.name not in readme]
    assert not missing, f"notebooks/README.md does not list {', '.join(missing)}"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_pytest_executes_the_notebooks():
    import tomllib

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_settings = settings["tool"]["pytest"]["ini_options"]
    assert "notebooks" in pytest_settings["testpaths"]
    assert "--nbval-lax" in pytest_settings["addopts"].split()
