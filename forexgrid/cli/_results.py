"""Results commands: `best`, `history`, `run-details`, `charts` and `cleanup`.

Each command reads the database through :mod:`forexgrid.storage` (or draws with
:mod:`forexgrid.charts`) and prints. The pure ``_*_rows`` helpers turn library frames into
the strings a table shows, so the formatting is testable without a terminal.

Filters that take several values (``--symbol``, ``--model-type``, ``--status``) accept the
option repeated, comma-separated values, or both: ``--symbol EURUSD,GBPUSD --symbol USDJPY``.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pandas as pd

from forexgrid.cli._app import CliState, cli
from forexgrid.exceptions import ForexgridError

__all__ = ["BEST_EXPORT_COLUMNS", "BEST_FORMATS", "best_frame", "best_table_text", "render_table"]

logger = logging.getLogger(__name__)

NO_MODEL = "(no model)"
_HISTORY_LIMIT = (10, 1000)


# ------------------------------------------------------------------------ shared helpers


def render_table(rows: Sequence[Mapping[str, str]], columns: Sequence[str], right=()) -> str:
    """Return ``rows`` as a fixed-width text table: text columns left-, ``right`` right-aligned.

    Parameters
    ----------
    rows
        One mapping per row, column name -> the cell's text.
    columns
        The columns, in order; their names are the header.
    right
        Columns aligned to the right (numbers).

    Returns
    -------
    str
        Header, a dashed rule, then the rows; no trailing newline.
    """
    widths = {c: max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in columns}

    def line(cells: Mapping[str, str]) -> str:
        parts = [
            cells.get(c, "").rjust(widths[c]) if c in right else cells.get(c, "").ljust(widths[c])
            for c in columns
        ]
        return "  ".join(parts).rstrip()

    out = [line({c: c for c in columns}), "  ".join("-" * widths[c] for c in columns)]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _num(value: Any, spec: str = ".2f", suffix: str = "", scale: float = 1.0) -> str:
    if _missing(value):
        return "n/a"
    return f"{float(value) * scale:{spec}}{suffix}"


def _int(value: Any) -> str:
    return "n/a" if _missing(value) else str(int(value))


def _time(value: Any) -> str:
    if _missing(value) or value is pd.NaT:
        return ""
    stamp = pd.Timestamp(value)
    # The database hands out UTC; a naive value (another tool's row) is read as UTC too.
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _combination(signal: Any, threshold: Any, lookback: Any) -> str:
    if _missing(signal):
        return ""
    # Lookback is stored missing where it changes nothing (threshold 0, single methods).
    look = "-" if _missing(lookback) else str(int(lookback))
    return f"{signal} / {_num(threshold, 'g')} / {look}"


def _split_values(ctx: click.Context, param: click.Parameter, values: Iterable[str]):
    """Callback: the option's values, repeated and/or comma-separated, as one list."""
    out = []
    for value in values or ():
        pieces = [p.strip() for p in value.split(",")]
        if not any(pieces):
            raise click.BadParameter(f"empty value {value!r}", ctx=ctx, param=param)
        out.extend(p for p in pieces if p)  # a stray comma ("EURUSD,") is harmless
    return out


def _checked_against(known: Sequence[str], normalise=str.lower):
    """A callback that splits the values and refuses any not in ``known``."""

    def check(ctx: click.Context, param: click.Parameter, values: Iterable[str]):
        out = [normalise(v) for v in _split_values(ctx, param, values)]
        for value in out:
            if value not in known:
                close = difflib.get_close_matches(value, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise click.BadParameter(
                    f"unknown value {value!r}{hint} (expected one of {', '.join(known)})",
                    ctx=ctx,
                    param=param,
                )
        return out

    return check


def _session(state: CliState):
    from forexgrid import storage

    return storage.session_scope(state.settings)


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
#: The columns of ``best --format csv|json``, in order (one row per list entry).
BEST_EXPORT_COLUMNS = (
    "symbol",
    "regime",
    "rank",
    "run_id",
    "model_type",
    "timeframe",
    "days_history",
    "horizon",
    "encoder",
    "signal",
    "threshold",
    "lookback",
    "val_sharpe",
    "test_sharpe",
    "test_max_drawdown",
    "test_win_rate",
    "test_trades",
    "dsr",
    "pbo",
    "verdict",
    "validation_start",
    "validation_end",
    "n_trials",
    "effective_trials",
    "rules_version",
    "score",
    "test_psr",
    "run_dsr",
    "achieved_at",
    "config_hash",
)
BEST_FORMATS = ("table", "csv", "json")


def _trials_cell(n_trials: Any, effective: Any) -> str:
    if _missing(n_trials):
        return "n/a"
    return f"{int(n_trials)} ({_num(effective, '.1f')})"


def _note(note: Any) -> str:
    return "" if _missing(note) or not note else f" ({note})"


def _best_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """The cells of the best-models table: one row per list place, empty regimes marked."""
    rows = []
    for r in table.to_dict("records"):
        symbol = "" if _missing(r["symbol"]) else str(r["symbol"])
        if not r["has_best"]:
            row = {"Symbol": symbol, "Regime": r["regime"], "Model": NO_MODEL}
            if not _missing(r.get("note")) and r["note"]:
                row["Configuration"] = str(r["note"])
            rows.append(row)
            continue
        rows.append(
            {
                "Symbol": symbol,
                "Regime": r["regime"],
                "#": _int(r["rank"]),
                "Run": _int(r["run_id"]),
                "Model": str(r["model_type"]),
                "Configuration": str(r["config_label"]),
                "Signal / threshold / lookback": _combination(
                    r["signal"], r["threshold"], r["lookback"]
                ),
                "Val Sharpe": _num(r["val_sharpe"]),
                "Test Sharpe": _num(r["test_sharpe"]),
                # Drawdown is stored as a positive fraction; shown as a positive percentage.
                "Max DD": _num(abs(r["test_max_drawdown"]), ".2f", "%", 100.0),
                "Win rate": _num(r["test_win_rate"], ".1f", "%", 100.0),
                "Trades": _int(r["test_trades"]),
                "DSR": _num(r["dsr"]),
                "PBO": _num(r["pbo"]),
                "Verdict": str(r["verdict"]) + _note(r.get("note")),
                "Trials (eff.)": _trials_cell(r["n_trials"], r["effective_trials"]),
                "Achieved at (UTC)": _time(r["achieved_at"])[:16],
            }
        )
    return rows


@cli.command("best")
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    callback=_split_values,
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
    "--format",
    "output_format",
    type=click.Choice(BEST_FORMATS),
    default="table",
    show_default=True,
    help="table for people; csv or json print one row per list entry (nothing else), "
    "for other tools.",
)
@click.pass_obj
def best_command(state: CliState, symbols: list[str], window: str, output_format: str):
    """Show the best models of each regime, with their chosen inference combination.

    Each regime's list ranks models by the deflated Sharpe ratio (DSR) of their validation
    returns against every trial of the grid in that regime and validation window (or by the
    validation Sharpe, with selection.score: val_sharpe). The test columns (Sharpe, max
    drawdown, win rate, trades) are the untouched test period. PBO is the probability of
    backtest overfitting of the regime's trials; the verdict is "significant" when the DSR
    is at least 0.95, otherwise "could be luck". The pseudo-regime "all" lists the best
    models overall.
    """
    table = best_frame(state.settings, symbols, window)
    if output_format == "table":
        click.echo(best_table_text(state.settings, symbols, window, table=table))
        return
    entries = table.loc[table["has_best"], list(BEST_EXPORT_COLUMNS)]
    if output_format == "csv":
        click.echo(entries.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z"), nl=False)
    else:
        records = entries.astype(object).where(entries.notna(), None).to_dict("records")
        click.echo(json.dumps(records, indent=2, default=_json_value, allow_nan=False))


def _json_value(value: Any) -> Any:
    """JSON for the values a best-models table holds: dates as ISO text, numpy scalars."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def best_frame(settings, symbols: Iterable[str] = (), window: str = "newest") -> pd.DataFrame:
    """The best-models table of the given symbols (all with bests when none is given)."""
    from forexgrid import storage

    with storage.session_scope(settings) as session:
        versions = storage.current_rules_versions(session, dict(settings.regimes))
        if symbols:
            parts = [
                storage.best_models_table(session, s, window=window, rules_versions=versions)
                for s in dict.fromkeys(symbols)
            ]
            return pd.concat(parts, ignore_index=True)
        return storage.best_models_table(session, window=window, rules_versions=versions)


def best_table_text(
    settings,
    symbols: Iterable[str] = (),
    window: str = "newest",
    *,
    table: pd.DataFrame | None = None,
) -> str:
    """The text of ``forexgrid best``: one table per symbol and window (the demo prints it)."""
    if table is None:
        table = best_frame(settings, symbols, window)
    if table.empty:
        return (
            "No active regimes. Add one with: forexgrid regimes add NAME --rules JSON "
            "--description TEXT"
        )
    columns = list(_BEST_COLUMNS)
    if table["rank"].fillna(1).gt(1).any():
        columns.insert(1, "#")
    out = []
    keys = ["symbol", "validation_start", "validation_end"]
    for (symbol, start, end), group in table.groupby(keys, sort=False, dropna=False):
        title = "no symbol has best models yet" if _missing(symbol) else str(symbol)
        if not _missing(start):
            title += f", validation {start} to {end}"
        elif not _missing(symbol) and group["has_best"].any():
            title += ", legacy lists (scored before trials were recorded)"
        out.append(f"Best models per regime: {title}")
        out.append(render_table(_best_rows(group), columns, _BEST_RIGHT | {"#"}))
        out.append("")
    out.append(
        "Chosen on the validation period; Sharpe, drawdown, win rate and trades are the test "
        "period's. DSR: deflated Sharpe ratio against every trial of the grid in that regime "
        "and window (Trials: their number, and the effective number of independent ones). "
        "PBO: probability of backtest overfitting. Verdict: significant when DSR >= 0.95. "
        "Details: forexgrid run-details RUN"
    )
    return "\n".join(out)


# ------------------------------------------------------------------------------ history


_HISTORY_COLUMNS = (
    "ID",
    "UUID",
    "Model type",
    "Symbol",
    "Timeframe",
    "Status",
    "Kept",
    "Best regimes",
    "Created at (UTC)",
)


def _history_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The cells of the history table (the guide's columns)."""
    return [
        {
            "ID": str(r["id"]),
            "UUID": str(r["uuid"]),
            "Model type": str(r["model_type"]),
            "Symbol": str(r["symbol"]),
            "Timeframe": str(r["timeframe"]),
            "Status": str(r["status"]),
            "Kept": "yes" if r["kept"] else "no",
            "Best regimes": str(r["best_regimes"] or ""),
            "Created at (UTC)": _time(r["created_at"]),
        }
        for r in frame.to_dict("records")
    ]


def _export_path(value: str) -> Path:
    """Where ``--export [PATH]`` writes: PATH, a new file in PATH if it is a folder, or home."""
    name = f"training_history_{datetime.now():%Y%m%d_%H%M%S}.csv"
    if value == "":
        folder = Path.home() / ".forexgrid"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ForexgridError(
                f"history --export: cannot create {folder}: {err.strerror or err}"
            ) from err
        return folder / name
    path = Path(value).expanduser()
    if path.is_dir():
        return path / name
    if not path.parent.is_dir():
        raise ForexgridError(
            f"history --export: cannot write {path}: directory {path.parent} does not exist"
        )
    return path


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    from forexgrid._atomic import atomic_write_text

    try:
        atomic_write_text(path, frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z"))
    except OSError as err:
        raise ForexgridError(
            f"history --export: cannot write {path}: {err.strerror or err}"
        ) from err


def _history_statuses() -> tuple[str, ...]:
    from forexgrid.storage import HISTORY_STATUSES

    return HISTORY_STATUSES


def _model_types() -> tuple[str, ...]:
    from forexgrid.config import MODEL_TYPES

    return MODEL_TYPES


@cli.command("history")
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    callback=_split_values,
    help="Only these symbols (repeat or comma-separate).",
)
@click.option(
    "--model-type",
    "model_types",
    multiple=True,
    callback=lambda ctx, param, v: _checked_against(_model_types())(ctx, param, v),
    help="Only these model types (repeat or comma-separate), e.g. xgboost,lightgbm.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=lambda ctx, param, v: _checked_against(_history_statuses())(ctx, param, v),
    help="Only these statuses (repeat or comma-separate): pending, running, completed, "
    "failed, cancelled.",
)
@click.option(
    "--limit",
    type=click.IntRange(*_HISTORY_LIMIT),
    default=100,
    show_default=True,
    help="At most this many runs, newest first (10 to 1000).",
)
@click.option(
    "--export",
    "export",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help="Also write the runs, all columns, as CSV to PATH (a folder: a new file in it); "
    "without PATH to ~/.forexgrid/training_history_YYYYMMDD_HHMMSS.csv.",
)
@click.pass_obj
def history_command(
    state: CliState,
    symbols: list[str],
    model_types: list[str],
    statuses: list[str],
    limit: int,
    export: str | None,
):
    """List training runs, newest first, optionally filtered, and export them as CSV."""
    from forexgrid import storage

    with _session(state) as session:
        frame = storage.training_history(
            session,
            symbols=symbols or None,
            model_types=model_types or None,
            statuses=statuses or None,
            limit=limit,
        )
    if frame.empty:
        click.echo("No training runs match the filters.")
    else:
        click.echo(render_table(_history_rows(frame), _HISTORY_COLUMNS, {"ID"}))
        more = " (the limit; raise --limit to see more)" if len(frame) == limit else ""
        click.echo(f"{len(frame)} run(s), newest first{more}.")
    if export is not None:
        path = _export_path(export)
        _write_csv(frame, path)
        click.echo(f"Exported {len(frame)} run(s) to {path}")


# -------------------------------------------------------------------------- run-details


def _size(n_bytes: Any) -> str:
    if _missing(n_bytes):
        return "size unknown"
    n = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # unreachable


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True) if value else "-"
    return str(value)


def _run_lines(run: Any, model_path: Path | None) -> list[tuple[str, str]]:
    """The key/value lines of one run: configuration, identity, timings, file, outcome."""
    lines: list[tuple[str, str]] = [("configuration", run.config.label if run.config_json else "")]
    for key, value in run.config_json.items():
        lines.append((key.replace("_", " "), _plain(value)))
    lines += [
        ("queue", f"{run.queue_id} (configuration {run.queue_index + 1})"),
        ("config hash", run.config_hash),
    ]
    if run.data_fingerprint:
        lines.append(("data", _plain(run.data_fingerprint)))
    lines += [
        ("created at", _time(run.created_at)),
        ("started at", _time(run.started_at) or "-"),
        ("completed at", _time(run.completed_at) or "-"),
        ("phase 1", "-" if run.phase1_seconds is None else f"{run.phase1_seconds:.2f} s"),
        ("phase 2", "-" if run.phase2_seconds is None else f"{run.phase2_seconds:.2f} s"),
        ("combinations", "-" if run.n_combinations is None else f"{run.n_combinations} distinct"),
    ]
    if run.model_file_path:
        sha = (run.model_file_sha256 or "")[:12]
        if run.is_model_kept:
            where = str(model_path) if model_path is not None else run.model_file_path
            state = "kept" if model_path is not None and model_path.is_file() else "kept, MISSING"
        else:
            where, state = run.model_file_path, "deleted: not best in any regime"
        lines.append(
            ("model file", f"{where} ({_size(run.model_file_size_bytes)}, sha256 {sha}, {state})")
        )
    else:
        lines.append(("model file", "-"))
    lines.append(("best regimes", ", ".join(run.best_regimes) or "-"))
    return lines


_CHOSEN_COLUMNS = (
    "Regime",
    "Signal / threshold / lookback",
    "Val Sharpe",
    "Val trades",
    "Test Sharpe",
    "Max DD",
    "Win rate",
    "Trades",
    "DSR",
    "Test PSR",
    "Reason",
)
_CHOSEN_RIGHT = {"Val Sharpe", "Val trades", "Test Sharpe", "Max DD", "Win rate", "Trades"} | {
    "DSR",
    "Test PSR",
}


def _chosen_rows(chosen: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "Regime": str(r["regime"]),
            "Signal / threshold / lookback": _combination(
                r["signal"], r["threshold"], r["lookback"]
            )
            or "-",
            "Val Sharpe": _num(r["val_sharpe"]),
            "Val trades": _int(r["val_trades"]),
            "Test Sharpe": _num(r["test_sharpe"]),
            "Max DD": _num(r["test_max_drawdown"], ".2f", "%", 100.0),
            "Win rate": _num(r["test_win_rate"], ".1f", "%", 100.0),
            "Trades": _int(r["test_trades"]),
            "DSR": _num(r["dsr"]),
            "Test PSR": _num(r["test_psr"]),
            "Reason": "" if _missing(r["reason"]) else str(r["reason"]),
        }
        for r in chosen.to_dict("records")
    ]


_SUMMARY_COLUMNS = (
    "Regime",
    "Combinations",
    "Best val Sharpe",
    "Median val Sharpe",
    "Max test Sharpe",
    "Median test Sharpe",
)


def _summary_rows(results: pd.DataFrame, order: Sequence[str]) -> list[dict[str, str]]:
    """Per regime: how many combinations, and the best and median Sharpe of each split."""
    if results.empty:
        return []
    stats = results.groupby(["regime", "split"], sort=False)["sharpe"].agg(["max", "median"])
    counts = results[results["split"] == "validation"].groupby("regime", sort=False).size()
    regimes = list(dict.fromkeys([*order, *results["regime"].unique()]))
    rows = []
    for regime in regimes:
        if regime not in counts.index and (regime, "test") not in stats.index:
            continue

        def get(split: str, what: str, regime: str = regime) -> str:
            key = (regime, split)
            return _num(stats.loc[key, what]) if key in stats.index else "n/a"

        rows.append(
            {
                "Regime": str(regime),
                "Combinations": str(int(counts.get(regime, 0))),
                "Best val Sharpe": get("validation", "max"),
                "Median val Sharpe": get("validation", "median"),
                "Max test Sharpe": get("test", "max"),
                "Median test Sharpe": get("test", "median"),
            }
        )
    return rows


@cli.command("run-details")
@click.argument("run_id", metavar="ID", type=int)
@click.pass_obj
def run_details_command(state: CliState, run_id: int):
    """Show one training run in full: configuration, timings, model file, chosen rows, results."""
    from forexgrid import storage
    from forexgrid.storage import ModelFileManager

    with _session(state) as session:
        run = storage.get_run(session, run_id)
        chosen = storage.run_chosen(session, run_id)
        results = storage.run_results(session, run_id)
    model_path = None
    if run.model_file_path and run.is_model_kept:
        model_path = ModelFileManager.from_settings(state.settings).path_of(run.model_file_path)

    click.echo(f"Run {run.id}  {run.run_uuid}  {run.status}")
    lines = _run_lines(run, model_path)
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"  {key.ljust(width)}  {value}")
    if run.error:
        click.echo("")
        click.echo("Error:")
        for line in run.error.rstrip().splitlines():
            click.echo(f"  {line}")
    click.echo("")
    if chosen.empty:
        click.echo(f"Chosen combinations: none ({_no_results(run.status)})")
    else:
        click.echo("Chosen combination per regime (validation-chosen; test figures reported):")
        click.echo(render_table(_chosen_rows(chosen), _CHOSEN_COLUMNS, _CHOSEN_RIGHT))
    click.echo("")
    summary = _summary_rows(results, list(chosen["regime"]))
    if not summary:
        click.echo(f"Results: none ({_no_results(run.status)})")
    else:
        click.echo(
            f"Results: {len(results)} rows; Sharpe over every combination per regime (the "
            "test maxima are hindsight, the chosen rows above are the honest figures):"
        )
        click.echo(render_table(summary, _SUMMARY_COLUMNS, set(_SUMMARY_COLUMNS) - {"Regime"}))


def _no_results(status: str) -> str:
    return {
        "failed": "the run failed",
        "pending": "not trained yet",
        "running": "training in progress",
    }.get(status, "none recorded")


# ------------------------------------------------------------------------------- charts


@cli.command("charts")
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the four PNG files; created if missing (its parent must exist).",
)
@click.option("--symbol", default=None, help="Only this symbol's best models.")
@click.pass_obj
def charts_command(state: CliState, output: Path, symbol: str | None):
    """Save the Regime Analysis charts (Sharpe, drawdown, win rate, radar) as PNG files."""
    from forexgrid import charts, storage

    with _session(state) as session:
        table = storage.best_models_table(session, symbol)
    paths = charts.save_charts(table, output)
    empty = "" if table["has_best"].any() else " (no best models yet; the charts say so)"
    click.echo(f"Saved {len(paths)} charts to {output}{empty}:")
    for path in paths:
        click.echo(f"  {path}")


# ------------------------------------------------------------------------------ cleanup


@cli.command("cleanup")
@click.option(
    "--days-old",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="Delete model files last modified more than this many days ago.",
)
@click.pass_obj
def cleanup_command(state: CliState, days_old: float):
    """Delete old model files, except those of models that are best in a regime."""
    from forexgrid.storage import ModelFileManager

    stats = ModelFileManager.from_settings(state.settings).cleanup_old_models(days_old=days_old)
    click.echo(f"Deleted {stats['deleted_files']} files, freed {stats['freed_space_mb']:.2f} MB")
    if stats["kept_files"]:
        click.echo(
            f"Kept {stats['kept_files']} older file(s) of models that are best in a regime."
        )
