"""The exceptions forexgrid raises.

Every error a user can cause derives from :class:`ForexgridError`, so fronts (the CLI, the
widgets, batch notebooks) catch one type and show its message. Subclasses also derive from
the builtin a Python user would expect (``ValueError``, ``LookupError``), so generic code that
catches those still works.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "ForexgridError",
    "GridSizeError",
    "RuleError",
    "StorageError",
]


class ForexgridError(Exception):
    """Base class of every error forexgrid raises on bad input or bad state."""


class ConfigError(ForexgridError, ValueError):
    """A configuration file or value is invalid (names the file, key path and value)."""


class GridSizeError(ConfigError):
    """A grid has more configurations than ``execution.max_grid_size`` (states the arithmetic)."""


class DataError(ForexgridError, ValueError):
    """Market data is unreadable or breaks the Bars contract (names the file and line)."""


class RuleError(ForexgridError, ValueError):
    """A regime rule cannot be parsed (names the rule, the key and the text)."""


class StorageError(ForexgridError):
    """The data store or database is missing, locked, out of date or inconsistent."""
