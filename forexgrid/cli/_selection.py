"""Selection commands: `best` (the best models of each regime, with their grid-wide
deflated Sharpe ratio, PBO and verdict) and `trials` (the multiple-testing scopes and their
statistics).

Each command reads the database through :mod:`forexgrid.storage` and prints a table for
people, or CSV / JSON for other tools (``--format``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import click
import pandas as pd

from forexgrid.cli._app import CliState, cli
from forexgrid.cli._format import (
    combination,
    elide,
    lookback_text,
    missing,
    num,
    records_json,
    render_table,
    split_values,
    utc_time,
    whole,
    wrap,
)
from forexgrid.workspace._results import BEST_COLUMNS

__all__ = [
    "BEST_EXPORT_COLUMNS",
    "BEST_FORMATS",
    "BEST_TABLE_WIDTH",
    "NO_MODEL",
    "TRIALS_SUMMARY_COLUMNS",
    "best_frame",
    "best_table_text",
    "trials_rows",
]

logger = logging.getLogger(__name__)

NO_MODEL = "(no model)"


# --------------------------------------------------------------------------------- best


_BEST_COLUMNS = (
    "Regime",
    "Run",
    "Model",
    "Configuration",
    "Signal / threshold / lookback",
    "Val Sharpe",
    "Test Sharpe",
    "Max DD",
    "Win rate",
    "Trades",
    "DSR",
    "PBO",
    "Verdict",
    "Trials (eff.)",
    "Achieved at (UTC)",
)
_BEST_RIGHT = {
    "Run",
    "Val Sharpe",
    "Test Sharpe",
    "Max DD",
    "Win rate",
    "Trades",
    "DSR",
    "PBO",
    "Trials (eff.)",
}
#: The widest line of ``forexgrid best`` without ``--wide`` (a configuration too long for it
#: is cut, ending in ``...``; ``--wide`` and ``--format csv|json`` show everything).
BEST_TABLE_WIDTH = 120
# The narrow table: what a person needs to pick a model; --wide adds the rest.
_BEST_NARROW_COLUMNS = (
    "Regime",
    "Run",
    "Configuration",
    "Signal",
    "Thr",
    "Lookback",
    "Test SR",
    "DSR",
    "Verdict",
)
_BEST_NARROW_RIGHT = {"#", "Run", "Thr", "Lookback", "Test SR", "DSR"}
#: The columns of ``best --format csv|json``, in order (one row per list entry): those of
#: ``Workspace.best()``.
BEST_EXPORT_COLUMNS = BEST_COLUMNS
BEST_FORMATS = ("table", "csv", "json")


def _trials_cell(n_trials: Any, effective: Any) -> str:
    if missing(n_trials):
        return "n/a"
    return f"{int(n_trials)} ({num(effective, '.1f')})"


def _note(note: Any) -> str:
    return "" if missing(note) or not note else f" ({note})"


def _best_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """The cells of the best-models table: one row per list place, empty regimes marked."""
    rows = []
    for r in table.to_dict("records"):
        symbol = "" if missing(r["symbol"]) else str(r["symbol"])
        if not r["has_best"]:
            row = {"Symbol": symbol, "Regime": r["regime"], "Model": NO_MODEL}
            if not missing(r.get("note")) and r["note"]:
                row["Configuration"] = str(r["note"])
            rows.append(row)
            continue
        rows.append(
            {
                "Symbol": symbol,
                "Regime": r["regime"],
                "#": whole(r["rank"]),
                "Run": whole(r["run_id"]),
                "Model": str(r["model_type"]),
                "Configuration": str(r["config_label"]),
                "Signal / threshold / lookback": combination(
                    r["signal"], r["threshold"], r["lookback"]
                ),
                "Val Sharpe": num(r["val_sharpe"]),
                "Test Sharpe": num(r["test_sharpe"]),
                # Drawdown is stored as a positive fraction; shown as a positive percentage.
                "Max DD": num(abs(r["test_max_drawdown"]), ".2f", "%", 100.0),
                "Win rate": num(r["test_win_rate"], ".1f", "%", 100.0),
                "Trades": whole(r["test_trades"]),
                "DSR": num(r["dsr"]),
                "PBO": num(r["pbo"]),
                "Verdict": str(r["verdict"]) + _note(r.get("note")),
                "Trials (eff.)": _trials_cell(r["n_trials"], r["effective_trials"]),
                "Achieved at (UTC)": utc_time(r["achieved_at"])[:16],
            }
        )
    return rows


def _short_label(r: dict[str, Any]) -> str:
    """The configuration without its symbol (the table's title names it)."""
    label = str(r["config_label"])
    symbol = "" if missing(r["symbol"]) else f" {r['symbol']} "
    return label.replace(symbol, " ", 1) if symbol and symbol in label else label


def _best_narrow_rows(table: pd.DataFrame) -> tuple[list[dict[str, str]], list[str]]:
    """The cells of the narrow best table, and its numbered notes (shown under it)."""
    rows: list[dict[str, str]] = []
    notes: list[str] = []

    def mark(note: Any) -> str:
        if missing(note) or not note:
            return ""
        notes.append(str(note))
        return f" [{len(notes)}]"

    for r in table.to_dict("records"):
        if not r["has_best"]:
            rows.append({"Regime": r["regime"], "Configuration": NO_MODEL + mark(r.get("note"))})
            continue
        rows.append(
            {
                "Regime": r["regime"],
                "#": whole(r["rank"]),
                "Run": whole(r["run_id"]),
                "Configuration": _short_label(r),
                "Signal": "" if missing(r["signal"]) else str(r["signal"]),
                "Thr": num(r["threshold"], "g"),
                "Lookback": lookback_text(r["lookback"]),
                "Test SR": num(r["test_sharpe"]),
                "DSR": num(r["dsr"]),
                "Verdict": str(r["verdict"]) + mark(r.get("note")),
            }
        )
    return rows, notes


def _narrow_table(
    rows: list[dict[str, str]], columns: list[str], width: int = BEST_TABLE_WIDTH
) -> str:
    """The narrow table, its configuration cells cut so that no line passes ``width``."""
    text = render_table(rows, columns, _BEST_NARROW_RIGHT)
    over = max(len(line) for line in text.splitlines()) - width
    if over > 0:
        longest = max(len(r.get("Configuration", "")) for r in rows)
        room = max(len("Configuration"), longest - over)
        rows = [{**r, "Configuration": elide(r.get("Configuration", ""), room)} for r in rows]
        text = render_table(rows, columns, _BEST_NARROW_RIGHT)
    return text


def _format_option(rows: str):
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(BEST_FORMATS),
        default="table",
        show_default=True,
        help=f"table for people; csv or json print one row per {rows} (nothing else), for "
        "other tools.",
    )


@cli.command("best")
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    callback=split_values,
    help="Only these symbols (repeat the option or comma-separate). Default: every symbol "
    "that has best models.",
)
@click.option(
    "--window",
    default="newest",
    show_default=True,
    metavar="newest|all|DATE",
    help="Which validation window's lists: the newest of each symbol, all of them (older "
    "windows and legacy lists too), or the window whose validation ends on DATE "
    "(YYYY-MM-DD). Lists of different windows are never ranked together.",
)
@click.option(
    "--wide",
    is_flag=True,
    help="Every column (validation Sharpe, drawdown, win rate, trades, PBO, trials, when "
    "achieved) and whole configurations; the default table fits 120 columns.",
)
@_format_option("list entry")
@click.pass_obj
def best_command(state: CliState, symbols: list[str], window: str, wide: bool, output_format: str):
    """Show the best models of each regime, with their chosen inference combination.

    Each regime's list ranks models by the deflated Sharpe ratio (DSR) of their validation
    returns against every trial of the grid in that regime and validation window (or by the
    validation Sharpe, with selection.score: val_sharpe). The test columns (Sharpe, max
    drawdown, win rate, trades) are the untouched test period. PBO is the probability of
    backtest overfitting of the regime's trials; the verdict is "significant" when the DSR
    is at least 0.95, otherwise "could be luck". The pseudo-regime "all" lists the best
    models overall.
    """
    if output_format == "table":
        table = state.ws.best(symbols, window=window, entries_only=False)
        click.echo(best_table_text(state.settings, symbols, window, table=table, wide=wide))
        return
    entries = state.ws.best(symbols, window=window)
    if output_format == "csv":
        click.echo(entries.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z"), nl=False)
    else:
        click.echo(records_json(entries))


def best_frame(settings, symbols: Iterable[str] = (), window: str = "newest") -> pd.DataFrame:
    """The best-models table of the given symbols (all with bests when none is given), a
    row for each active regime with no best model too."""
    from forexgrid.workspace import Workspace

    workspace = Workspace(settings.workspace, config=settings)
    return workspace.best(tuple(symbols), window=window, entries_only=False)


def best_table_text(
    settings,
    symbols: Iterable[str] = (),
    window: str = "newest",
    *,
    table: pd.DataFrame | None = None,
    wide: bool = False,
) -> str:
    """The text of ``forexgrid best``: one table per symbol and window (the demo prints it).

    Lines are at most :data:`BEST_TABLE_WIDTH` characters, unless ``wide``: every column and
    whole configurations, as wide as they come.
    """
    if table is None:
        table = best_frame(settings, symbols, window)
    if table.empty:
        return (
            "No active regimes. Add one with: forexgrid regimes add NAME --rules JSON "
            "--description TEXT"
        )
    ranked = bool(table["rank"].fillna(1).gt(1).any())
    columns = list(_BEST_COLUMNS if wide else _BEST_NARROW_COLUMNS)
    if ranked:
        columns.insert(1, "#")
    out = []
    keys = ["symbol", "validation_start", "validation_end"]
    for (symbol, start, end), group in table.groupby(keys, sort=False, dropna=False):
        title = "no symbol has best models yet" if missing(symbol) else str(symbol)
        if not missing(start):
            title += f", validation {start} to {end}"
        elif not missing(symbol) and group["has_best"].any():
            title += ", legacy lists (scored before trials were recorded)"
        out.append(f"Best models per regime: {title}")
        if wide:
            out.append(render_table(_best_rows(group), columns, _BEST_RIGHT | {"#"}))
        else:
            rows, notes = _best_narrow_rows(group)
            out.append(_narrow_table(rows, columns))
            for i, note in enumerate(notes, 1):
                out.append(wrap(f"[{i}] {note}", BEST_TABLE_WIDTH))
        out.append("")
    if wide:
        legend = (
            "Chosen on the validation period; Sharpe, drawdown, win rate and trades are the "
            "test period's. DSR: deflated Sharpe ratio against every trial of the grid in that "
            "regime and window (Trials: their number, and the effective number of independent "
            "ones). PBO: probability of backtest overfitting. Verdict: significant when DSR >= "
            "0.95. Details: forexgrid run-details RUN"
        )
        return "\n".join(out) + "\n" + legend
    legend = (
        "Chosen on the validation period (signal, confidence threshold Thr, lookback); Test "
        "SR: the Sharpe ratio on the untouched test period. DSR: deflated Sharpe ratio "
        "against every trial of the grid in that regime and window; verdict significant when "
        "DSR >= 0.95. More columns (validation Sharpe, drawdown, win rate, trades, PBO, "
        "trials): forexgrid best --wide. Details: forexgrid run-details RUN"
    )
    return "\n".join(out) + "\n" + wrap(legend, BEST_TABLE_WIDTH)


# ------------------------------------------------------------------------------ trials


_TRIALS_COLUMNS = (
    "Symbol",
    "Validation window",
    "Regime",
    "Rules",
    "Runs",
    "Trials",
    "Effective",
    "SR* (daily)",
    "PBO",
    "PBO computed (UTC)",
)
_TRIALS_RIGHT = {"Runs", "Trials", "Effective", "SR* (daily)", "PBO"}
#: The columns of the run summary's table of the scopes a queue added to.
TRIALS_SUMMARY_COLUMNS = ("Symbol", "Validation window", "Regime", "Trials", "Effective", "PBO")


def trials_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "Symbol": str(r["symbol"]),
            "Validation window": f"{r['validation_start']} to {r['validation_end']}",
            "Regime": str(r["regime"]),
            "Rules": str(r["rules_version"]),
            "Runs": whole(r["n_runs"]),
            "Trials": whole(r["n_trials"]),
            "Effective": num(r["effective_trials"], ".1f"),
            "SR* (daily)": num(r["expected_max_sharpe"], ".3f"),
            "PBO": num(r["pbo"]),
            "PBO computed (UTC)": utc_time(r["pbo_computed_at"])[:16],
        }
        for r in table.to_dict("records")
    ]


@cli.command("trials")
@click.option("--symbol", default=None, help="Only this symbol's scopes.")
@click.option(
    "--recompute",
    is_flag=True,
    help="Bring the probability of backtest overfitting of every scope shown up to date first "
    "(its stored state takes in the trials added since, or it is computed from scratch; the "
    "runner does it when a queue stops).",
)
@_format_option("scope")
@click.pass_obj
def trials_command(state: CliState, symbol: str | None, recompute: bool, output_format: str):
    """Show the multiple-testing scopes and the statistics the DSR and PBO come from.

    A scope is one symbol, regime, version of the regime's rules and validation window;
    every (configuration, inference combination) scored in it is a trial. Effective: the
    effective number of independent trials (participation ratio of their correlations);
    SR*: the daily Sharpe ratio the best of them is expected to reach by luck, which a
    model's DSR is measured against; PBO: probability of backtest overfitting (CSCV).
    """
    table = state.ws.trials(symbol, recompute=recompute)
    if output_format == "csv":
        click.echo(table.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z"), nl=False)
    elif output_format == "json":
        click.echo(records_json(table))
    elif table.empty:
        click.echo("No trials recorded yet: they are stored as each configuration completes.")
    else:
        click.echo(render_table(trials_rows(table), _TRIALS_COLUMNS, _TRIALS_RIGHT))
