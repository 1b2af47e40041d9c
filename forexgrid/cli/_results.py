"""Results commands: `history`, `run-details`, `charts`, `cleanup` and `verify`.

Each command reads the database through :mod:`forexgrid.storage` (or draws with
:mod:`forexgrid.charts`) and prints. The pure ``_*_rows`` helpers turn library frames into
the strings a table shows, so the formatting is testable without a terminal.

Filters that take several values (``--symbol``, ``--model-type``, ``--status``) accept the
option repeated, comma-separated values, or both: ``--symbol EURUSD,GBPUSD --symbol USDJPY``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pandas as pd

from forexgrid.cli._app import CliState, cli
from forexgrid.cli._format import (
    ROW_ID,
    checked_against,
    combination,
    lookbacks_text,
    missing,
    num,
    render_table,
    split_values,
    utc_time,
    whole,
    wrap,
)
from forexgrid.exceptions import ForexgridError

__all__: list[str] = []

logger = logging.getLogger(__name__)

_HISTORY_LIMIT = (10, 1000)


# ------------------------------------------------------------------------ shared helpers


# ------------------------------------------------------------------------------ history


#: The widest line of ``forexgrid history`` without ``--wide``.
HISTORY_TABLE_WIDTH = 120
# --wide: the guide's columns, the configuration and the "all" regime's Sharpe ratios.
_HISTORY_COLUMNS = (
    "ID",
    "UUID",
    "Model type",
    "Symbol",
    "Timeframe",
    "Days",
    "Horizon",
    "Encoder",
    "Status",
    "Kept",
    "Best regimes",
    "Val SR (all)",
    "Test SR (all)",
    "Created at (UTC)",
)
# The default table fits HISTORY_TABLE_WIDTH: short kept cells, no UUID or best regimes.
# Each narrow column: (heading, the wide table's column it shows).
_NARROW_HISTORY = (
    ("ID", "ID"),
    ("Model type", "Model type"),
    ("Symbol", "Symbol"),
    ("TF", "Timeframe"),
    ("Days", "Days"),
    ("h", "Horizon"),
    ("Encoder", "Encoder"),
    ("Status", "Status"),
    ("Kept", "Kept"),
    ("Val SR", "Val SR (all)"),
    ("Test SR", "Test SR (all)"),
    ("Created (UTC)", "Created at (UTC)"),
)
_HISTORY_NARROW_COLUMNS = tuple(heading for heading, _ in _NARROW_HISTORY)
_HISTORY_RIGHT = {"ID", "Days", "Horizon", "h", "Val SR (all)", "Test SR (all)", "Val SR"} | {
    "Test SR"
}


def _kept_cell(row: dict[str, Any], wide: bool = True) -> str:
    """Kept now, and what was decided when the run completed if that changed since.

    Narrow: ``yes``, ``no``, ``superseded`` (kept, then pushed out of every list by a later
    run) or ``deleted`` (kept, then deleted otherwise).
    """
    if row["kept"]:
        return "yes"
    by = row.get("model_deleted_by_run_id")
    if row.get("kept_when_trained") and by is not None and not pd.isna(by):
        return f"no (was; pushed out by run {int(by)})" if wide else "superseded"
    if row.get("kept_when_trained"):
        return "no (was; deleted)" if wide else "deleted"
    return "no"


def _history_rows(frame: pd.DataFrame, wide: bool = True) -> list[dict[str, str]]:
    """The cells of the history table: the guide's columns, the configuration (timeframe,
    days, horizon, encoder) and the validation and test Sharpe of the ``all`` regime."""
    rows = []
    for r in frame.to_dict("records"):
        row = {
            "ID": str(r["id"]),
            "UUID": str(r["uuid"]),
            "Model type": str(r["model_type"]),
            "Symbol": str(r["symbol"]),
            "Timeframe": str(r["timeframe"]),
            "Days": whole(r["days_history"]),
            "Horizon": whole(r["horizon"]),
            "Encoder": str(r["encoder"]),
            "Status": str(r["status"]),
            "Kept": _kept_cell(r, wide=wide),
            "Best regimes": str(r["best_regimes"] or ""),
            "Val SR (all)": _sharpe_cell(r, "all_val_sharpe"),
            "Test SR (all)": _sharpe_cell(r, "all_test_sharpe"),
            "Created at (UTC)": utc_time(r["created_at"]),
        }
        if not wide:
            row = {narrow: row[key] for narrow, key in _NARROW_HISTORY}
            row["Created (UTC)"] = row["Created (UTC)"][:16]  # to the minute
        rows.append(row)
    return rows


def _sharpe_cell(row: dict[str, Any], column: str) -> str:
    # Blank for runs not completed (nothing to show), "n/a" when completed without a choice.
    if row["status"] != "completed":
        return ""
    return num(row.get(column))


def history_table_text(frame: pd.DataFrame, limit: int, wide: bool = False) -> str:
    """The text of ``forexgrid history`` for a non-empty frame: the table and its count."""
    columns = _HISTORY_COLUMNS if wide else _HISTORY_NARROW_COLUMNS
    lines = [render_table(_history_rows(frame, wide), columns, _HISTORY_RIGHT)]
    more = " (the limit; raise --limit to see more)" if len(frame) == limit else ""
    lines.append(f"{len(frame)} run(s), newest first{more}.")
    if not wide:
        lines.append(
            "TF: timeframe; h: horizon (bars); Val SR, Test SR: Sharpe ratios of the "
            "combination chosen for all bars. More (UUID, best regimes, who superseded a "
            "model): forexgrid history --wide"
        )
    return "\n".join(lines[:-1] + [wrap(lines[-1], HISTORY_TABLE_WIDTH)])


def _export_path(value: str) -> Path:
    """Where ``--export [PATH]`` writes.

    PATH itself; a new file inside PATH when it is a folder or ends with a slash (a missing
    folder is created, its parent must exist); ``~/.forexgrid/`` without PATH. A file
    named like the folder is never written.
    """
    from forexgrid._atomic import describe_file_type, ensure_directory
    from forexgrid.exceptions import PathError

    name = f"training_history_{datetime.now():%Y%m%d_%H%M%S}.csv"
    if value == "":
        folder = Path.home() / ".forexgrid"
        try:
            ensure_directory(folder)
        except PathError as err:
            raise ForexgridError(f"history --export: cannot create {folder}: {err}") from err
        except OSError as err:
            raise ForexgridError(
                f"history --export: cannot create {folder}: {err.strerror or err}"
            ) from err
        return folder / name
    path = Path(value).expanduser()
    if path.is_dir():
        return path / name
    # Path() drops a trailing slash; the user's "newdir/" means a folder all the same.
    if value.endswith(("/", os.sep)):
        if path.exists():
            kind = describe_file_type(path.stat().st_mode)
            raise ForexgridError(f"history --export: {value} names a folder, but {path} is {kind}")
        if not path.parent.is_dir():
            raise ForexgridError(
                f"history --export: cannot create the folder {path}: its parent {path.parent} "
                "does not exist"
            )
        try:
            path.mkdir()
        except OSError as err:
            raise ForexgridError(
                f"history --export: cannot create the folder {path}: {err.strerror or err}"
            ) from err
        return path / name
    if not path.parent.is_dir():
        raise ForexgridError(
            f"history --export: cannot write {path}: directory {path.parent} does not exist"
        )
    return path


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    from forexgrid._atomic import atomic_write_text
    from forexgrid.exceptions import PathError

    try:
        atomic_write_text(path, frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z"))
    except PathError as err:
        raise ForexgridError(f"history --export: {err}") from err
    except OSError as err:
        raise ForexgridError(
            f"history --export: cannot write {path}: {err.strerror or err}"
        ) from err


def _history_statuses() -> tuple[str, ...]:
    from forexgrid.storage.history import HISTORY_STATUSES

    return HISTORY_STATUSES


def _model_types() -> tuple[str, ...]:
    from forexgrid.config import MODEL_TYPES

    return MODEL_TYPES


@cli.command("history")
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    callback=split_values,
    help="Only these symbols (repeat or comma-separate).",
)
@click.option(
    "--model-type",
    "model_types",
    multiple=True,
    callback=lambda ctx, param, v: checked_against(_model_types())(ctx, param, v),
    help="Only these model types (repeat or comma-separate), e.g. xgboost,lightgbm.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=lambda ctx, param, v: checked_against(_history_statuses())(ctx, param, v),
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
    help="Also write the runs, all columns, as CSV to PATH (a folder, or a path ending in /: "
    "a new file in it, the folder created if missing); without PATH to "
    "~/.forexgrid/training_history_YYYYMMDD_HHMMSS.csv. PATH must be a new or regular file "
    "(a link to one is written through).",
)
@click.option(
    "--wide",
    is_flag=True,
    help="Every column (UUID, best regimes, who superseded a model); the default table fits "
    "120 columns.",
)
@click.pass_obj
def history_command(
    state: CliState,
    symbols: list[str],
    model_types: list[str],
    statuses: list[str],
    limit: int,
    export: str | None,
    wide: bool,
):
    """List training runs, newest first, optionally filtered, and export them as CSV."""
    frame = state.ws.history(
        symbol=symbols or None,
        model_type=model_types or None,
        status=statuses or None,
        limit=limit,
    )
    if frame.empty:
        click.echo("No training runs match the filters.")
    else:
        click.echo(history_table_text(frame, limit, wide))
    if export is not None:
        path = _export_path(export)
        _write_csv(frame, path)
        click.echo(f"Exported {len(frame)} run(s) to {path}")


# -------------------------------------------------------------------------- run-details


def _size(n_bytes: Any) -> str:
    if missing(n_bytes):
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


_FILE_STATES = {
    "ok": "kept, verified",
    "missing": "kept, MISSING",
    "size_mismatch": "kept, MODIFIED",
    "sha_mismatch": "kept, MODIFIED",
    "unreadable": "kept, UNREADABLE",
}


def _deleted_state(run: Any) -> str:
    if not run.kept_when_trained:
        return "deleted: not best in any regime"
    when = f" on {utc_time(run.model_deleted_at)}" if run.model_deleted_at else ""
    by = run.model_deleted_by_run_id
    if by is not None:
        return f"deleted: kept, then pushed out of every list by run {by}{when}"
    return f"deleted: kept, then deleted{when}"


def _chosen_rule(details: Any) -> str:
    """The rule that chose each regime's combination, with the run's real min_trades."""
    return f"chosen: {details.rule}"


def _best_regimes_line(run: Any, context: Any) -> tuple[str, str] | None:
    """Which regimes' lists the run is in, for runs that are or were kept (else None)."""
    if run.is_model_kept:
        listed = context.listed_regimes if context is not None else ()
        return ("best regimes (kept now)", ", ".join(listed or run.best_regimes) or "-")
    if run.kept_when_trained:
        return ("best regimes (when kept; deleted since)", ", ".join(run.best_regimes) or "-")
    return None


def _run_lines(
    run: Any, model_path: Path | None, check: Any = None, context: Any = None
) -> list[tuple[str, str]]:
    """The key/value lines of one run: configuration, identity, timings, file, outcome."""
    lines: list[tuple[str, str]] = [("configuration", run.config.label if run.config_json else "")]
    for key, value in run.config_json.items():
        lines.append((key.replace("_", " "), _plain(value)))
    if context is not None:
        lines.append(("lookback windows", lookbacks_text(context.lookback_windows)))
    lines += [
        ("queue", f"{run.queue_id} (configuration {run.queue_index + 1})"),
        ("config hash", run.config_hash),
    ]
    if run.data_fingerprint:
        lines.append(("data", _plain(run.data_fingerprint)))
    lines += [
        ("created at", utc_time(run.created_at)),
        ("started at", utc_time(run.started_at) or "-"),
        ("completed at", utc_time(run.completed_at) or "-"),
        ("phase 1", "-" if run.phase1_seconds is None else f"{run.phase1_seconds:.2f} s"),
        ("phase 2", "-" if run.phase2_seconds is None else f"{run.phase2_seconds:.2f} s"),
        ("combinations", "-" if run.n_combinations is None else f"{run.n_combinations} distinct"),
    ]
    if run.model_file_path:
        sha = (run.model_file_sha256 or "")[:12]
        if run.is_model_kept:
            where = str(model_path) if model_path is not None else run.model_file_path
            state = _FILE_STATES.get(check.state, check.state) if check else "kept"
            if check is not None and check.state not in ("ok", "missing"):
                state = f"{state}: {check.detail}"
        else:
            where, state = run.model_file_path, _deleted_state(run)
        lines.append(
            ("model file", f"{where} ({_size(run.model_file_size_bytes)}, sha256 {sha}, {state})")
        )
    else:
        lines.append(("model file", "-"))
    regimes = _best_regimes_line(run, context)
    if regimes is not None:
        lines.append(regimes)
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
    "DSR (run)",
    "Test PSR",
    "Reason",
)
_CHOSEN_RIGHT = {"Val Sharpe", "Val trades", "Test Sharpe", "Max DD", "Win rate", "Trades"} | {
    "DSR (run)",
    "Test PSR",
}


def _chosen_rows(chosen: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "Regime": str(r["regime"]),
            "Signal / threshold / lookback": combination(
                r["signal"], r["threshold"], r["lookback"]
            )
            or "-",
            "Val Sharpe": num(r["val_sharpe"]),
            "Val trades": whole(r["val_trades"]),
            "Test Sharpe": num(r["test_sharpe"]),
            "Max DD": num(r["test_max_drawdown"], ".2f", "%", 100.0),
            "Win rate": num(r["test_win_rate"], ".1f", "%", 100.0),
            "Trades": whole(r["test_trades"]),
            "DSR (run)": num(r["dsr"]),
            "Test PSR": num(r["test_psr"]),
            "Reason": "" if missing(r["reason"]) else str(r["reason"]),
        }
        for r in chosen.to_dict("records")
    ]


_GRID_COLUMNS = (
    "Regime",
    "Validation window",
    "Trials (eff.)",
    "SR* (daily)",
    "DSR (grid)",
    "Verdict",
    "PBO",
)
_GRID_RIGHT = {"Trials (eff.)", "SR* (daily)", "DSR (grid)", "PBO"}


def _grid_rows(grid: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "Regime": str(r["regime"]),
            "Validation window": f"{r['validation_start']} to {r['validation_end']}",
            "Trials (eff.)": f"{whole(r['n_trials'])} ({num(r['effective_trials'], '.1f')})",
            "SR* (daily)": num(r["expected_max_sharpe"], ".3f"),
            "DSR (grid)": num(r["dsr"]),
            "Verdict": str(r["verdict"]),
            "PBO": num(r["pbo"]),
        }
        for r in grid.to_dict("records")
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
            return num(stats.loc[key, what]) if key in stats.index else "n/a"

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
@click.argument("run_id", metavar="ID", type=ROW_ID)
@click.pass_obj
def run_details_command(state: CliState, run_id: int):
    """Show one training run in full: configuration, timings, model file, chosen rows, results."""
    details = state.ws.run_details(run_id)
    run, chosen, results, grid = details.run, details.chosen, details.results, details.grid_scores
    model_path, check = details.model_path, details.file_check

    context = details
    click.echo(f"Run {run.id}  {run.run_uuid}  {run.status}")
    lines = _run_lines(run, model_path, check, context)
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
        click.echo("Chosen combination per regime (test figures reported):")
        click.echo(_chosen_rule(context))
        click.echo(render_table(_chosen_rows(chosen), _CHOSEN_COLUMNS, _CHOSEN_RIGHT))
    if not grid.empty:
        click.echo("")
        click.echo(
            "Against the whole grid: every trial now stored in the regime's scope (DSR (run) "
            "above counts this run's combinations only):"
        )
        click.echo(render_table(_grid_rows(grid), _GRID_COLUMNS, _GRID_RIGHT))
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
    paths = state.ws.save_charts(output, symbol)
    empty = "" if not state.ws.best(symbol).empty else " (no best models yet; the charts say so)"
    click.echo(f"Saved {len(paths)} charts to {output}{empty}:")
    for path in paths:
        click.echo(f"  {path}")


# ------------------------------------------------------------------------------ cleanup


def _not_nan(value: float) -> float:
    if value != value:
        raise click.BadParameter("nan is not in the range 0<=x<=36500.")
    return value


@cli.command("cleanup")
@click.option(
    "--days-old",
    type=click.FloatRange(0, 36_500),
    # FloatRange lets nan through (every comparison with it is false).
    callback=lambda ctx, param, v: _not_nan(v),
    default=30,
    show_default=True,
    help="Delete model files last modified more than this many days ago (0 to 36500).",
)
@click.pass_obj
def cleanup_command(state: CliState, days_old: float):
    """Delete old model files, except those of models that are best in a regime."""
    stats = state.ws.cleanup(days_old)
    click.echo(f"Deleted {stats['deleted_files']} files, freed {stats['freed_space_mb']:.2f} MB")
    if stats["kept_files"]:
        click.echo(
            f"Kept {stats['kept_files']} older file(s) of models that are best in a regime."
        )


# ------------------------------------------------------------------------------- verify

_VERIFY_STATES = {
    "missing": "MISSING",
    "size_mismatch": "MODIFIED",
    "sha_mismatch": "MODIFIED",
    "unreadable": "UNREADABLE",
    "unverifiable": "UNVERIFIABLE",
}


@cli.command("verify")
@click.pass_obj
def verify_command(state: CliState):
    """Check every kept model file against its recorded size and SHA-256.

    Lists the files that are missing, modified or unreadable, and exits with status 1 if
    there is any. Nothing is changed, and nothing is unpickled (loading a model always
    refuses a file that does not match; forexgrid recover removes orphans and finishes
    interrupted writes).
    """
    checked = state.ws.verify()
    problems = [
        (r.run_id, r.path, _VERIFY_STATES[r.state], "" if r.state == "missing" else r.detail)
        for r in checked.itertuples()
        if r.state != "ok"
    ]
    click.echo(
        f"Checked {len(checked)} kept model file(s) ({_size(checked['size_bytes'].sum())}) in "
        f"{state.settings.artifacts_path}: {len(checked) - len(problems)} ok, "
        f"{len(problems)} with problems."
    )
    for run_id, path, label, detail in problems:
        click.echo(f"{label:<10}  run {run_id}  {path}" + (f"  {detail}" if detail else ""))
    if problems:
        sys.exit(1)
