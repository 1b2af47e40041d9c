"""What every panel shares: CSS class names, the error-catching handler wrapper, the table
widget and the poller that applies a queue's progress on the kernel's event loop."""

from __future__ import annotations

import asyncio
import functools
import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

from forexgrid.exceptions import ForexgridError

__all__ = ["Poller", "css", "handler", "message_html", "new_table", "show_table"]

logger = logging.getLogger("forexgrid.widgets")

#: Seconds between two reads of a running queue's state.
POLL_SECONDS = 0.5

_COLOURS = {"error": "#cf222e", "ok": "#1a7f37", "info": "#57606a", "warning": "#9a6700"}


def css(widget: w.Widget, panel: str, control: str) -> w.Widget:
    """Give ``widget`` the stable CSS class ``forexgrid-<panel>-<control>`` and return it."""
    widget.add_class(f"forexgrid-{panel}-{control}")
    return widget


def message_html(text: str, kind: str = "info") -> str:
    """A one-line status message, escaped, coloured by ``kind`` (info, ok, warning, error)."""
    colour = _COLOURS.get(kind, _COLOURS["info"])
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


def describe_error(err: BaseException) -> str:
    """The text a panel shows for an error: a ForexgridError's own message (it names the
    value and what was expected), otherwise the type as well, since a bare message of an
    unexpected error (a KeyError's ``'x'``) says nothing."""
    if isinstance(err, ForexgridError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def handler(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a panel's ``_on_<control>`` handler so that no error is lost.

    JupyterLab shows nothing when a widget callback raises (the traceback goes to the kernel's
    console), so every handler catches: the message goes to the panel's status area
    (``panel.show_error``) and the ``forexgrid.widgets`` log, with the traceback for errors
    that are not a ForexgridError (those are bugs, not bad input).
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # every error is shown: JupyterLab would hide it
            text = describe_error(err)
            if isinstance(err, ForexgridError):
                logger.error("%s: %s", method.__name__, text)
            else:
                logger.exception("%s failed", method.__name__)
            self.show_error(text)
            return None

    return wrapper


# ------------------------------------------------------------------------------ tables


def new_table(panel: str, control: str) -> w.Widget:
    """An itables ``ITable`` widget: sortable columns, a search box and row selection, drawn
    as a real HTML table (so a browser test can read it)."""
    from itables.widget import ITable

    return css(ITable(pd.DataFrame(), **_TABLE_OPTIONS), panel, control)


# allow_html: the cells are built by the panels (statuses coloured with a <span>), and every
# text from the database in them is escaped first. itables applies it when the data is
# encoded, so each update passes it again.
_TABLE_OPTIONS: dict[str, Any] = {
    "select": {"style": "single"},
    "allow_html": True,
    "showIndex": False,
    "pageLength": 25,
    "classes": "display compact",
}


def show_table(table: Any, frame: pd.DataFrame) -> None:
    """Show ``frame`` in ``table`` (selection cleared: the rows changed)."""
    table.update(frame, selected_rows=[], **_TABLE_OPTIONS)


# ------------------------------------------------------------------------------ polling


class Poller:
    """Call ``tick()`` every ``interval`` seconds from an asyncio task on the kernel's event
    loop, so that widget traits are only ever set from the kernel's own thread.

    The task starts only where an event loop is running (inside a Jupyter kernel); elsewhere
    (a unit test, a plain script) ``start`` does nothing and the caller calls ``tick``
    itself. An exception in ``tick`` is logged and polling goes on: one bad read must not
    stop the live updates.
    """

    def __init__(self, tick: Callable[[], Any], interval: float = POLL_SECONDS) -> None:
        self._tick = tick
        self.interval = interval
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        """Whether the polling task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start polling (if a loop is running and it is not started yet); return whether the
        task runs."""
        if self.running:
            return True
        try:
            # Inside a kernel, cells and widget callbacks run on its asyncio loop.
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._run())
        return True

    def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:  # logged; the next tick tries again
                logger.exception("widget poll failed")
            await asyncio.sleep(self.interval)
