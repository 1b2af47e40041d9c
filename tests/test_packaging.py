"""The package installs as DESIGN.md lays it out, and `import forexgrid` stays light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser under its PyPI name
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli on 3.10")

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"])


def test_every_package_directory_is_declared():
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "forexgrid").rglob("__init__.py")
    }
    # widgets/ is mapped to forexgrid.widgets, notebooks/templates/ to forexgrid.templates
    # (package-dir in pyproject.toml).
    for folder, package in ((ROOT / "widgets", "widgets"), (ROOT / "notebooks", "")):
        found |= {
            ".".join(
                ("forexgrid", *filter(None, [package]), *path.parent.relative_to(folder).parts)
            )
            for path in folder.rglob("__init__.py")
        }
    assert found == _declared_packages()


def test_every_directory_with_python_files_is_a_package():
    for path in (ROOT / "forexgrid").rglob("*.py"):
        assert (path.parent / "__init__.py").exists(), f"{path.parent} lacks __init__.py"


def test_import_forexgrid_does_not_import_heavy_libraries():
    code = (
        "import sys, forexgrid; "
        "heavy = [m for m in ('xgboost', 'lightgbm', 'dask', 'papermill', 'ipywidgets') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheel_holds_the_sample_its_notice_the_widgets_and_the_template(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("forexgrid-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "forexgrid/data/samples/EURUSD_1h_2017_dukascopy.csv" in names
    assert "forexgrid/data/samples/NOTICE.txt" in names
    assert "forexgrid/widgets/__init__.py" in names
    assert "forexgrid/cli/__init__.py" in names
    assert "forexgrid/storage/migrations/script.py.mako" in names
    # `forexgrid batch` runs this template unless given another (no source checkout needed).
    assert "forexgrid/templates/train_config.ipynb" in names
    assert "forexgrid/storage/migrations/versions/0001_initial.py" in names
    assert "forexgrid/storage/migrations/versions/0002_trials.py" in names
