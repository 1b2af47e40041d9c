"""ipywidgets panels for JupyterLab, installed as ``forexgrid.widgets``.

This is the only package that imports ipywidgets. The panels arrive with the widgets issue.
"""

from __future__ import annotations

__all__: list[str] = []
