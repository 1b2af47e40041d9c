"""The benchmark scripts still fit the package: every forexgrid name they import exists.

They are run by hand (docs/performance.md), not in the suite, so a renamed or moved name
would otherwise break them unnoticed until someone repeats a measurement.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def _forexgrid_imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forexgrid")
        for alias in node.names
    ]


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_every_forexgrid_name_a_benchmark_imports_exists(script):
    missing = []
    for module_name, name in _forexgrid_imports(script):
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ImportError:
            missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports names that no longer exist: {missing}"


def test_the_benchmarks_are_found():
    assert {"bench_grid.py", "bench_queue_create.py"} <= {p.name for p in BENCHMARKS}
