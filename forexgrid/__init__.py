"""forexgrid: a Jupyter-native research toolkit for forex model grids."""

from __future__ import annotations

from forexgrid.exceptions import ConfigError, DataError, ForexgridError, RuleError, StorageError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "ForexgridError", "RuleError", "StorageError", "__version__"]
