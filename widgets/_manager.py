"""``GridTrainingManager``: the three tabs (Training Queue, Regime Analysis, Training
History) and the recovery banner, over one Workspace, with the poller that keeps the queue
tab live."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from forexgrid.exceptions import ForexgridError

from ._base import Poller, css, describe_error, logger
from ._history import HistoryModel, HistoryPanel
from ._queue import QueueModel, QueuePanel, RecoveryBanner
from ._regimes import RegimesModel, RegimesPanel

if TYPE_CHECKING:
    from forexgrid.workspace import Workspace

__all__ = ["GridTrainingManager"]

TITLES = ("Training Queue", "Regime Analysis", "Training History")


class GridTrainingManager:
    """The Grid Training Manager: ``GridTrainingManager(ws)`` in a notebook cell shows it.

    Parameters
    ----------
    workspace
        A :class:`~forexgrid.Workspace`, a folder path, or None for the current folder.
    poll
        Start the task that refreshes the queue tab every ``interval`` seconds on the
        kernel's event loop (it only runs inside a kernel; elsewhere call
        ``manager.queue.refresh()``).

    Attributes
    ----------
    queue, regimes, history
        The panels (:class:`QueuePanel`, :class:`RegimesPanel`, :class:`HistoryPanel`); each
        has ``.model``, its view-model without widgets.
    recovery
        The recovery banner (hidden when no queue crashed).
    widget
        The whole manager: the banner above an ``ipywidgets.Tab``.

    Raises
    ------
    ForexgridError
        The folder does not exist; the configuration is invalid.
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        *,
        poll: bool = True,
        interval: float = 0.5,
    ) -> None:
        from forexgrid.workspace import Workspace

        if not isinstance(workspace, Workspace):
            workspace = Workspace("." if workspace is None else workspace)
        self.workspace = workspace
        self.queue = QueuePanel(QueueModel(workspace))
        self.recovery = RecoveryBanner(workspace, self.queue)
        self.regimes = RegimesPanel(RegimesModel(workspace))
        self.history = HistoryPanel(HistoryModel(workspace))
        self.tabs = css(
            w.Tab(children=[self.queue.widget, self.regimes.widget, self.history.widget]),
            "manager", "tabs",
        )  # fmt: skip
        self.tabs.titles = TITLES
        self.tabs.observe(self._on_tab, names="selected_index")
        self.widget = css(w.VBox([self.recovery.widget, self.tabs]), "manager", "panel")
        self.poller = Poller(self._tick, interval)
        self._last_state: tuple[Any, ...] | None = None
        self._poll_error: str | None = None
        self._tick()
        if poll:
            self.poller.start()

    def _tick(self) -> None:
        """One poll: the queue tab, and the other two when a queue has just stopped (its
        kept and deleted models changed the lists and the history)."""
        try:
            self.queue.refresh()
        except Exception as err:  # shown once in the panel (not every 0.5 s), then retried
            text = describe_error(err)
            if not isinstance(err, ForexgridError):
                text = f"reading the queue failed: {text}"
            if text != self._poll_error:
                logger.exception("widget poll failed")
                self.queue.show_error(text)
            self._poll_error = text
            return
        self._poll_error = None
        status = self.queue.model.last
        state = (status.queue_id, status.status) if status is not None else None
        stopped_now = (
            status is not None and status.stopped and self._last_state not in (None, state)
        )
        self._last_state = state
        if stopped_now:
            self._refresh(self.regimes, self.regimes.refresh)
            self._refresh(self.history, self.history._on_search)

    def _on_tab(self, change: Any) -> None:
        # A tab shows the database as it is now when it is opened (a queue may have kept or
        # deleted models since); errors are shown in the tab.
        if change["new"] == 1:
            self._refresh(self.regimes, self.regimes.refresh)
        elif change["new"] == 2:
            self._refresh(self.history, self.history._on_search)

    @staticmethod
    def _refresh(panel: Any, refresh: Any) -> None:
        try:
            refresh()
        except Exception as err:  # shown in the tab, never lost
            panel.show_error(describe_error(err))

    def close(self) -> None:
        """Stop polling and close the widgets."""
        self.poller.stop()
        self.widget.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"<GridTrainingManager of {self.workspace.path}>"
