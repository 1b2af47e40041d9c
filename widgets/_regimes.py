"""The Regime Analysis panel (``manager.regimes``): the best models of each regime, the four
charts, and the regime definitions (add, edit, delete, toggle; rules checked as typed).

:class:`RegimesModel` builds the rows and performs the changes through ``ws.best`` and
``ws.regimes``; :class:`RegimesPanel` binds widgets to it. Rescoring after a change runs in a
worker thread; the result is applied by a callback on the kernel's event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
import pandas as pd

from forexgrid.exceptions import ForexgridError

from ._base import css, describe_error, handler, logger, message_html, new_table, show_table

if TYPE_CHECKING:
    from forexgrid.scoring import RescoreReport
    from forexgrid.storage.records import RegimeInfo
    from forexgrid.workspace import Workspace

__all__ = ["RegimesModel", "RegimesPanel"]

PANEL = "regimes"
YES, NO = "\u2713", "\u2717"

#: Display column -> best-table column, in the guide's order.
BEST_DISPLAY = {
    "Regime": "regime",
    "Rank": "rank",
    "Has best model": "has_best",
    "Val Sharpe": "val_sharpe",
    "Test Sharpe": "test_sharpe",
    "Max drawdown": "test_max_drawdown",
    "Win rate": "test_win_rate",
    "Trades": "test_trades",
    "DSR": "dsr",
    "PBO": "pbo",
    "Verdict": "verdict",
    "Achieved at": "achieved_at",
    "Run": "run_id",
    "Model": "model_type",
}


def _number(value: Any, digits: int = 2) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _percent(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * float(value):.1f}%"


def _integer(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def _text(column: pd.Series) -> pd.Series:
    # An all-empty column is float NaN: fill as objects, not as floats.
    return column.astype(object).where(column.notna(), "")


def _time(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


class RegimesModel:
    """Regime Analysis without widgets."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def symbol_choices(self) -> tuple[str, ...]:
        """Symbols with data (the bundled EURUSD included), then the configuration's."""
        listed = self.workspace.data.list()
        stored = list(listed["symbol"]) if not listed.empty else []
        return tuple(dict.fromkeys([*stored, *self.workspace.settings.grid.symbols]))

    def best_rows(self, symbol: str) -> pd.DataFrame:
        """The regime table of ``symbol``: one row per list entry, and one per active regime
        without a best model (``Has best model`` is ✓ or ✗), metrics formatted."""
        table = self.workspace.best(symbol, entries_only=False)
        out = pd.DataFrame(
            {
                "Regime": table["regime"],
                "Rank": table["rank"].map(_integer),
                "Has best model": np.where(table["has_best"].astype(bool), YES, NO),
                "Val Sharpe": table["val_sharpe"].map(_number),
                "Test Sharpe": table["test_sharpe"].map(_number),
                "Max drawdown": table["test_max_drawdown"].map(_percent),
                "Win rate": table["test_win_rate"].map(_percent),
                "Trades": table["test_trades"].map(_integer),
                "DSR": table["dsr"].map(_number),
                "PBO": table["pbo"].map(_number),
                "Verdict": _text(table["verdict"]),
                "Achieved at": table["achieved_at"].map(_time),
                "Run": table["run_id"].map(_integer),
                "Model": _text(table["model_type"]),
            },
            columns=list(BEST_DISPLAY),
        )
        return out.reset_index(drop=True)

    def charts_png(self, symbol: str) -> bytes:
        """The four Regime Analysis charts of ``symbol`` as one PNG image."""
        import io

        import matplotlib.pyplot as plt

        figure = self.workspace.charts(symbol)
        try:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        finally:
            plt.close(figure)  # shown in the panel only, never again under the cell
        return buffer.getvalue()

    # -------------------------------------------------------------- definitions

    def definitions(self) -> pd.DataFrame:
        """The regime definitions: Name, Active, Default, Rules (JSON), Description."""
        frame = self.workspace.regimes.list()
        return pd.DataFrame(
            {
                "Name": frame["name"],
                "Active": np.where(frame["active"].astype(bool), YES, NO),
                "Default": np.where(frame["default"].astype(bool), YES, NO),
                "Rules": frame["rules"].map(lambda r: json.dumps(r)),
                "Description": frame["description"].fillna(""),
            },
            columns=["Name", "Active", "Default", "Rules", "Description"],
        )

    def names(self) -> tuple[str, ...]:
        return tuple(self.workspace.regimes.list()["name"])

    def regime(self, name: str) -> RegimeInfo:
        return self.workspace.regimes.get(name)

    @staticmethod
    def check_rules(name: str, rules: str) -> str | None:
        """The parser's message for ``rules`` (JSON text), or None when they are valid."""
        from forexgrid.core.regimes import parse_rules
        from forexgrid.exceptions import RuleError

        try:
            parse_rules(name.strip() or "new_regime", rules)
        except RuleError as err:
            return str(err)
        return None

    def add(self, name: str, rules: str, description: str = "") -> RegimeInfo:
        """Add an active regime (not rescored yet: see :meth:`rescore`).

        Raises
        ------
        RuleError
            Invalid rules (the parser's message); nothing is stored.
        """
        if not name.strip():
            raise ForexgridError("regime name: enter a name, e.g. strong_trend")
        return self.workspace.regimes.add(name.strip(), rules, description, rescore=False).regime

    def edit(self, name: str, rules: str, description: str) -> RegimeInfo:
        """Change a regime's rules and description (a new rules version)."""
        current = self.regime(name)
        try:
            unchanged = json.loads(rules) == dict(current.rules)
        except ValueError:
            unchanged = False  # not JSON: the parser says why, in the regime's terms
        new_rules = None if unchanged else rules
        return self.workspace.regimes.edit(
            name, rules=new_rules, description=description, rescore=False
        ).regime

    def delete(self, name: str) -> None:
        self.workspace.regimes.delete(name)

    def toggle(self, name: str) -> RegimeInfo:
        return self.workspace.regimes.toggle(name, rescore=False).regime

    def rescore(self, names: list[str]) -> RescoreReport:
        """Score the kept models under the regimes' current rules (from their files)."""
        return self.workspace.regimes.rescore(names)


class RegimesPanel:
    """The Regime Analysis tab (``.widget``)."""

    def __init__(self, model: RegimesModel) -> None:
        self.model = model
        symbols = model.symbol_choices()
        self.symbol = css(
            w.Dropdown(options=symbols, value=symbols[0] if symbols else None,
                       description="Symbol"),
            PANEL, "symbol",
        )  # fmt: skip
        self.refresh_button = css(w.Button(description="Refresh"), PANEL, "refresh-button")
        self.charts_button = css(
            w.Button(description="View Performance Charts", button_style="primary"),
            PANEL, "charts-button",
        )  # fmt: skip
        self.table = new_table(PANEL, "table")
        # The figure as a PNG in an Image widget: it shows the same in Lab, in Voila and in
        # a test without a kernel (an Output widget only captures inside a kernel).
        self.charts = css(
            w.Image(format="png", layout=w.Layout(max_width="100%")), PANEL, "charts"
        )
        self.message = css(w.HTML(), PANEL, "message")
        # Regime management.
        self.regime_select = css(
            w.Dropdown(options=("(new regime)", *model.names()), description="Regime"),
            PANEL, "regime-select",
        )  # fmt: skip
        self.name = css(w.Text(description="Name", placeholder="strong_trend"), PANEL, "name")
        self.rules = css(
            w.Textarea(description="Rules", placeholder='{"trend_strength": "> 0.8"}',
                       layout=w.Layout(width="60%")),
            PANEL, "rules",
        )  # fmt: skip
        self.description = css(w.Text(description="Description"), PANEL, "description")
        self.rules_check = css(w.HTML(), PANEL, "rules-check")
        self.add_button = css(w.Button(description="Add", button_style="success"),
                              PANEL, "add-button")  # fmt: skip
        self.edit_button = css(w.Button(description="Save changes"), PANEL, "edit-button")
        self.delete_button = css(w.Button(description="Delete", button_style="danger"),
                                 PANEL, "delete-button")  # fmt: skip
        self.toggle_button = css(w.Button(description="Activate / deactivate"),
                                 PANEL, "toggle-button")  # fmt: skip
        self.rescore_progress = css(
            w.IntProgress(value=0, min=0, max=1, description="Rescore",
                          layout=w.Layout(display="none")),
            PANEL, "rescore-progress",
        )  # fmt: skip
        self.rescore_status = css(w.HTML(), PANEL, "rescore-status")
        self.definitions = new_table(PANEL, "definitions")
        self._rescoring: asyncio.Future | None = None

        self.symbol.observe(self._on_symbol, names="value")
        self.refresh_button.on_click(self._on_refresh)
        self.charts_button.on_click(self._on_charts)
        self.regime_select.observe(self._on_regime_select, names="value")
        self.rules.observe(self._on_rules, names="value")
        self.add_button.on_click(self._on_add)
        self.edit_button.on_click(self._on_edit)
        self.delete_button.on_click(self._on_delete)
        self.toggle_button.on_click(self._on_toggle)

        manage = w.VBox(
            [
                w.HTML("<b>Regime definitions</b> (rules: JSON of indicator -> condition)"),
                self.definitions,
                self.regime_select,
                self.name,
                self.rules,
                self.rules_check,
                self.description,
                w.HBox([self.add_button, self.edit_button, self.delete_button,
                        self.toggle_button]),
                self.rescore_progress,
                self.rescore_status,
            ]
        )  # fmt: skip
        self.widget = css(
            w.VBox(
                [
                    w.HBox([self.symbol, self.refresh_button, self.charts_button]),
                    self.message,
                    self.table,
                    self.charts,
                    manage,
                ]
            ),
            PANEL, "panel",
        )  # fmt: skip
        self._on_regime_select()
        self.refresh()

    # -------------------------------------------------------------- display

    def refresh(self) -> None:
        """Show the best models of the chosen symbol and the definitions again."""
        if self.symbol.value:
            show_table(self.table, self.model.best_rows(self.symbol.value))
        show_table(self.definitions, self.model.definitions())
        names = ("(new regime)", *self.model.names())
        if tuple(self.regime_select.options) != names:
            keep = self.regime_select.value if self.regime_select.value in names else names[0]
            self.regime_select.options = names
            self.regime_select.value = keep

    def show_message(self, text: str, kind: str = "info") -> None:
        self.message.value = message_html(text, kind)

    def show_error(self, text: str) -> None:
        self.message.value = message_html(text, "error")

    # -------------------------------------------------------------- handlers

    @handler
    def _on_symbol(self, _change: Any = None) -> None:
        self.refresh()
        self.charts.value = b""

    @handler
    def _on_refresh(self, _button: Any = None) -> None:
        self.refresh()
        self.show_message("Refreshed.")

    @handler
    def _on_charts(self, _button: Any = None) -> None:
        if not self.symbol.value:
            raise ForexgridError("charts: choose a symbol first")
        self.charts.value = self.model.charts_png(self.symbol.value)
        self.show_message(f"Performance charts of {self.symbol.value}.")

    @handler
    def _on_regime_select(self, _change: Any = None) -> None:
        name = self.regime_select.value
        if name in (None, "(new regime)"):
            self.name.value, self.rules.value, self.description.value = "", "", ""
            self.name.disabled = False
            return
        info = self.model.regime(name)
        self.name.value = info.name
        self.name.disabled = True  # renaming is `forexgrid regimes edit --name`
        self.rules.value = json.dumps(dict(info.rules))
        self.description.value = info.description or ""

    @handler
    def _on_rules(self, _change: Any = None) -> None:
        text = self.rules.value
        if not text.strip():
            self.rules_check.value = ""
            return
        problem = self.model.check_rules(self.name.value, text)
        self.rules_check.value = (
            message_html(problem, "error") if problem else message_html("Rules are valid.", "ok")
        )

    @handler
    def _on_add(self, _button: Any = None) -> None:
        info = self.model.add(self.name.value, self.rules.value, self.description.value)
        self.refresh()
        self.regime_select.value = info.name
        self.show_message(f"Regime {info.name!r} added.", "ok")
        self._rescore([info.name])

    @handler
    def _on_edit(self, _button: Any = None) -> None:
        name = self._selected("save changes to")
        info = self.model.edit(name, self.rules.value, self.description.value)
        self.refresh()
        self.show_message(f"Regime {info.name!r} saved.", "ok")
        if info.active:
            self._rescore([info.name])

    @handler
    def _on_delete(self, _button: Any = None) -> None:
        name = self._selected("delete")
        self.model.delete(name)
        self.regime_select.value = "(new regime)"
        self.refresh()
        self.show_message(f"Regime {name!r} deleted (its best-model rows stay as history).", "ok")

    @handler
    def _on_toggle(self, _button: Any = None) -> None:
        name = self._selected("activate or deactivate")
        info = self.model.toggle(name)
        self.refresh()
        state = "active" if info.active else "inactive"
        self.show_message(f"Regime {name!r} is {state} now.", "ok")
        if info.active:
            self._rescore([name])

    def _selected(self, action: str) -> str:
        name = self.regime_select.value
        if name in (None, "(new regime)"):
            raise ForexgridError(f"choose the regime to {action} in the Regime list first")
        return name

    # -------------------------------------------------------------- rescoring

    def _rescore(self, names: list[str]) -> None:
        """Rescore the kept models in ``names``: in a worker thread when the kernel's loop
        runs (the panel stays usable; the loop applies the result), else here."""
        self.rescore_progress.layout.display = "flex"
        self.rescore_progress.bar_style = "info"
        self.rescore_progress.value = 0
        self.rescore_status.value = message_html(
            f"Rescoring the kept models under the rules of {', '.join(names)}..."
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            try:
                report = self.model.rescore(names)
            except Exception as err:
                self._rescored(None, err)
                return
            self._rescored(report, None)
            return
        future = loop.run_in_executor(None, self.model.rescore, names)
        self._rescoring = future
        # Done callbacks run on the loop's thread: widgets are set there only.
        future.add_done_callback(
            lambda f: self._rescored(
                None if f.exception() else f.result(),
                f.exception(),  # type: ignore[arg-type]
            )
        )

    def _rescored(self, report: RescoreReport | None, error: BaseException | None) -> None:
        self._rescoring = None
        self.rescore_progress.value = 1
        if error is not None:
            logger.error("rescoring failed: %s", describe_error(error))
            self.rescore_progress.bar_style = "danger"
            self.rescore_status.value = message_html(
                f"Rescoring failed: {describe_error(error)}", "error"
            )
            return
        self.rescore_progress.bar_style = "success"
        self.rescore_status.value = message_html(report.summary(), "ok")
        try:
            self.refresh()
        except Exception as err:  # shown, not lost
            self.show_error(describe_error(err))
