"""The Training History panel (``manager.history``): filter the runs, see them in a table,
open one run's details, export the rows as CSV.

:class:`HistoryModel` asks ``ws.history`` and ``ws.run_details`` and writes the export;
:class:`HistoryPanel` binds widgets to it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
import pandas as pd

from forexgrid.exceptions import ForexgridError

from ._base import css, handler, message_html, new_table, show_table

if TYPE_CHECKING:
    from forexgrid.workspace import RunDetails, Workspace

__all__ = ["HistoryModel", "HistoryPanel"]

PANEL = "history"
ALL = "All"
YES, NO = "\u2713", "\u2717"
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 10, 1000, 100
#: Status colours (the same as the workspace's HTML tables).
STATUS_COLOURS = {
    "completed": "#1a7f37",
    "running": "#0969da",
    "pending": "#57606a",
    "failed": "#cf222e",
    "cancelled": "#9a6700",
}
#: Metric columns shown when the history has them (newer databases add them).
METRIC_COLUMNS = {
    "all_val_sharpe": "Val Sharpe (all)",
    "all_test_sharpe": "Test Sharpe (all)",
}


def _selection(values: Sequence[str]) -> list[str] | None:
    """A multi-select's values as a filter: None (no filter) for nothing or All."""
    chosen = [v for v in values if v != ALL]
    return None if not chosen or ALL in values else chosen


class HistoryModel:
    """Training History without widgets: the filters' choices, the rows, details, export."""

    def __init__(self, workspace: Workspace) -> None:
        from forexgrid.config import MODEL_TYPES
        from forexgrid.storage.history import HISTORY_STATUSES

        self.workspace = workspace
        self.model_type_choices: tuple[str, ...] = (ALL, *MODEL_TYPES)
        self.status_choices: tuple[str, ...] = (ALL, *HISTORY_STATUSES)
        #: The rows of the last search, as ``ws.history`` gave them (what Export writes).
        self.frame: pd.DataFrame = pd.DataFrame()

    def symbol_choices(self) -> tuple[str, ...]:
        listed = self.workspace.data.list()
        stored = list(listed["symbol"]) if not listed.empty else []
        return (ALL, *dict.fromkeys([*stored, *self.workspace.settings.grid.symbols]))

    def search(
        self,
        symbols: Sequence[str] = (),
        model_types: Sequence[str] = (),
        statuses: Sequence[str] = (),
        limit: int = LIMIT_DEFAULT,
    ) -> pd.DataFrame:
        """The runs matching the filters, newest first (kept as :attr:`frame`)."""
        self.frame = pd.DataFrame(
            self.workspace.history(
                symbol=_selection(symbols),
                model_type=_selection(model_types),
                status=_selection(statuses),
                limit=int(limit),
            )
        )
        return self.frame

    @staticmethod
    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        """The table as shown: the guide's columns (UUID shortened, status coloured, Kept
        ✓/✗), then the configuration and the metric columns the history has."""
        if frame.empty:
            return pd.DataFrame(columns=["ID", "UUID", "Model", "Symbol", "Timeframe", "Status",
                                         "Kept", "Best regimes", "Created"])  # fmt: skip
        out = pd.DataFrame(
            {
                "ID": frame["id"].astype(int),
                "UUID": frame["uuid"].astype(str).str[:8],
                "Model": frame["model_type"],
                "Symbol": frame["symbol"],
                "Timeframe": frame["timeframe"],
                "Status": frame["status"].map(_coloured_status),
                "Kept": np.where(frame["kept"].fillna(False).astype(bool), YES, NO),
                "Best regimes": frame["best_regimes"].fillna("").map(html.escape),
                "Created": frame["created_at"].map(
                    lambda t: "" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")
                ),
                "Days": frame["days_history"],
                "Horizon": frame["horizon"],
                "Encoder": frame["encoder"],
            }
        )
        for column, title in METRIC_COLUMNS.items():
            if column in frame:
                out[title] = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        return out.reset_index(drop=True)

    def run_id(self, row: int) -> int:
        """The run id of the ``row``-th row of the last search."""
        if not 0 <= row < len(self.frame):
            raise ForexgridError(
                f"row {row} is not in the table ({len(self.frame)} rows); search again"
            )
        return int(self.frame["id"].iloc[row])

    def details(self, row: int) -> RunDetails:
        """The details of the run in the ``row``-th row."""
        return self.workspace.run_details(self.run_id(row))

    def export(self, directory: str | Path | None = None) -> Path:
        """Write the last search's rows (every column of ``ws.history``) as a CSV file,
        atomically, in ``directory`` (default: the workspace's ``exports`` folder) and return
        its path."""
        from forexgrid._atomic import atomic_write_text

        if self.frame.empty:
            raise ForexgridError("export: no rows to export; press Search first")
        folder = Path(directory) if directory is not None else self.workspace.path / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"training_history_{datetime.now():%Y%m%d_%H%M%S_%f}.csv"
        # The same CSV as `forexgrid history --export`.
        atomic_write_text(
            path, self.frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        )
        return path


def _coloured_status(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#57606a")
    return f"<span style='color:{colour};font-weight:bold'>{html.escape(str(status))}</span>"


class HistoryPanel:
    """The Training History tab (``.widget``)."""

    def __init__(self, model: HistoryModel) -> None:
        self.model = model
        self.symbol = css(
            w.SelectMultiple(options=model.symbol_choices(), value=(ALL,), rows=4,
                             description="Symbol"),
            PANEL, "symbol",
        )  # fmt: skip
        self.model_type = css(
            w.SelectMultiple(options=model.model_type_choices, value=(ALL,), rows=4,
                             description="Model type"),
            PANEL, "model-type",
        )  # fmt: skip
        self.status = css(
            w.SelectMultiple(options=model.status_choices, value=(ALL,), rows=4,
                             description="Status"),
            PANEL, "status",
        )  # fmt: skip
        self.limit = css(
            w.BoundedIntText(value=LIMIT_DEFAULT, min=LIMIT_MIN, max=LIMIT_MAX,
                             description="Limit"),
            PANEL, "limit",
        )  # fmt: skip
        self.search_button = css(w.Button(description="Search", button_style="primary"),
                                 PANEL, "search-button")  # fmt: skip
        self.clear_button = css(w.Button(description="Clear filters"), PANEL, "clear-button")
        self.details_button = css(w.Button(description="View details", disabled=True),
                                  PANEL, "details-button")  # fmt: skip
        self.export_button = css(w.Button(description="Export CSV"), PANEL, "export-button")
        self.message = css(w.HTML(), PANEL, "message")
        self.table = new_table(PANEL, "table")
        self.details = css(w.HTML(), PANEL, "details")

        self.search_button.on_click(self._on_search)
        self.clear_button.on_click(self._on_clear)
        self.details_button.on_click(self._on_details)
        self.export_button.on_click(self._on_export)
        self.table.observe(self._on_select, names="selected_rows")
        self.widget = css(
            w.VBox(
                [
                    w.HBox([self.symbol, self.model_type, self.status]),
                    w.HBox([self.limit, self.search_button, self.clear_button]),
                    self.message,
                    self.table,
                    w.HBox([self.details_button, self.export_button]),
                    self.details,
                ]
            ),
            PANEL, "panel",
        )  # fmt: skip
        self._on_search()

    def show_message(self, text: str, kind: str = "info") -> None:
        self.message.value = message_html(text, kind)

    def show_error(self, text: str) -> None:
        self.message.value = message_html(text, "error")

    @property
    def selected_row(self) -> int | None:
        rows = list(self.table.selected_rows)
        return rows[0] if rows else None

    @handler
    def _on_search(self, _button: Any = None) -> None:
        frame = self.model.search(
            self.symbol.value, self.model_type.value, self.status.value, self.limit.value
        )
        show_table(self.table, self.model.rows(frame))
        self.details_button.disabled = True
        more = " (the limit: raise it to see more)" if len(frame) == self.limit.value else ""
        self.show_message(f"{len(frame)} run(s), newest first{more}.")

    @handler
    def _on_clear(self, _button: Any = None) -> None:
        self.symbol.value = self.model_type.value = self.status.value = (ALL,)
        self.limit.value = LIMIT_DEFAULT
        self._on_search()

    @handler
    def _on_select(self, _change: Any = None) -> None:
        self.details_button.disabled = self.selected_row is None

    @handler
    def _on_details(self, _button: Any = None) -> None:
        row = self.selected_row
        if row is None:
            raise ForexgridError("details: select a run in the table first")
        details = self.model.details(row)
        self.details.value = details._repr_html_()
        self.show_message(f"Details of run {details.run.id}.")

    @handler
    def _on_export(self, _button: Any = None) -> None:
        path = self.model.export()
        self.show_message(f"Exported {len(self.model.frame)} run(s) to {path}", "ok")
