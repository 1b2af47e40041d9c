"""forexgrid: a Jupyter-native research toolkit for forex model grids.

>>> import forexgrid as fg
>>> cfg = fg.load_config(None)                      # the defaults
>>> bars = fg.data.load_sample("EURUSD", "1h")      # bundled real EURUSD 2017 sample
>>> ws = fg.Workspace("my_research", create=True)   # doctest: +SKIP  (the notebook's front door)

The subpackages ``data``, ``core``, ``grid``, ``pipeline`` and :class:`Workspace` load on
first use, so ``import forexgrid`` stays fast and never imports xgboost, lightgbm, dask or
papermill.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from forexgrid import log as _log  # noqa: F401 - attaches the package's NullHandler
from forexgrid.config import Settings, load_config
from forexgrid.exceptions import ConfigError, DataError, ForexgridError, RuleError, StorageError

if TYPE_CHECKING:
    from forexgrid import core, data, grid, pipeline
    from forexgrid.workspace import Workspace

__version__ = "0.1.0"

_LAZY_MODULES = ("core", "data", "grid", "pipeline")

__all__ = [
    "ConfigError",
    "DataError",
    "ForexgridError",
    "RuleError",
    "Settings",
    "StorageError",
    "__version__",
    "core",
    "data",
    "grid",
    "load_config",
    "pipeline",
    "Workspace",
]


def __getattr__(name: str):
    # PEP 562: import a subpackage the first time it is used as an attribute.
    if name in _LAZY_MODULES:
        return importlib.import_module(f"forexgrid.{name}")
    if name == "Workspace":
        return importlib.import_module("forexgrid.workspace").Workspace
    raise AttributeError(f"module 'forexgrid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES) | {"Workspace"})
