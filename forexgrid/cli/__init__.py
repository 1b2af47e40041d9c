"""The ``forexgrid`` command line: a thin front over the library.

Every command parses its arguments, calls public library functions and prints. A
:class:`~forexgrid.exceptions.ForexgridError` becomes one line on stderr and exit status 1;
click's usage errors exit with 2; a traceback appears only with ``--debug``.

One module per command group; importing them registers their commands on :data:`cli`.
"""

from __future__ import annotations

from forexgrid.cli import (  # noqa: F401 - importing a module registers its commands
    _batch,
    _config,
    _data,
    _demo,
    _queues,
    _regimes,
    _results,
    _selection,
)
from forexgrid.cli._app import CliState, cli, main

__all__ = ["CliState", "cli", "main"]
