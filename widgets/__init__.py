"""ipywidgets panels for JupyterLab, installed as ``forexgrid.widgets``.

>>> from forexgrid.widgets import GridTrainingManager   # doctest: +SKIP
>>> GridTrainingManager(ws)                             # doctest: +SKIP

This is the only package that imports ipywidgets. Each panel is a view-model (plain Python
over the Workspace, tested without widgets) and a thin view; see docs/widgets.md.
"""

from __future__ import annotations

from ._history import HistoryModel, HistoryPanel
from ._manager import GridTrainingManager
from ._queue import QueueModel, QueuePanel, RecoveryBanner, button_states
from ._regimes import RegimesModel, RegimesPanel

__all__ = [
    "GridTrainingManager",
    "HistoryModel",
    "HistoryPanel",
    "QueueModel",
    "QueuePanel",
    "RecoveryBanner",
    "RegimesModel",
    "RegimesPanel",
    "button_states",
]
