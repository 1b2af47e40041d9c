"""What a workspace's results look like from a notebook: best models, history, one run's
details, a kept model, recovery and file verification.

Tables are DataFrames. :class:`BestTable` and :class:`HistoryTable` are DataFrames whose only
difference is their Jupyter display (statuses and verdicts coloured); anything computed from
them is a plain DataFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forexgrid.exceptions import ForexgridError, quote_input

if TYPE_CHECKING:
    from forexgrid.grid import TrainingConfig
    from forexgrid.recovery import CrashedQueue
    from forexgrid.storage.artifacts import FileCheck, ReconcileReport
    from forexgrid.storage.records import QueueInfo, RunInfo
    from forexgrid.workspace import Workspace

__all__ = [
    "BEST_COLUMNS",
    "BestTable",
    "HistoryTable",
    "KeptModel",
    "RecoveryReport",
    "RunDetails",
]

#: The columns of :meth:`Workspace.best` (and of ``forexgrid best --format csv|json``), one
#: row per list entry.
BEST_COLUMNS: tuple[str, ...] = (
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

# Rows a rich display shows at most (the DataFrame holds them all).
_HTML_ROWS = 50


class _DisplayFrame(pd.DataFrame):
    """A DataFrame with a coloured Jupyter display; derived frames are plain DataFrames."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def _repr_html_(self) -> str:
        from forexgrid.workspace._html import styled

        plain = pd.DataFrame(self)
        more = ""
        if len(plain) > _HTML_ROWS:
            more = f"<p>... and {len(plain) - _HTML_ROWS} more rows ({len(plain)} in all)</p>"
            plain = plain.head(_HTML_ROWS)
        return styled(plain) + more


class BestTable(_DisplayFrame):
    """The best models of each regime (:meth:`Workspace.best`); verdicts coloured."""


class HistoryTable(_DisplayFrame):
    """Training runs, newest first (:meth:`Workspace.history`); statuses coloured."""


def best_table(
    workspace: Workspace,
    symbols: Sequence[str],
    regimes: Sequence[str],
    window: str,
    *,
    entries_only: bool,
) -> BestTable:
    from forexgrid import storage

    with workspace.session() as session:
        versions = storage.regimes_repo.current_rules_versions(
            session, dict(workspace.settings.regimes)
        )
        parts = [
            storage.bests.best_models_table(
                session, symbol, window=window, rules_versions=versions
            )
            for symbol in dict.fromkeys(s.upper() for s in symbols)
        ] or [storage.bests.best_models_table(session, window=window, rules_versions=versions)]
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if regimes:
        known = set(table["regime"].dropna())
        unknown = [r for r in regimes if r not in known]
        if unknown:
            raise ForexgridError(
                f"regime {quote_input(unknown[0])} has no best list here; known: "
                f"{', '.join(sorted(known)) or 'none'} (ws.regimes.list() shows the definitions)"
            )
        table = table[table["regime"].isin(regimes)]
    if entries_only:
        table = table.loc[table["has_best"], list(BEST_COLUMNS)]
    return BestTable(table.reset_index(drop=True))


# ---------------------------------------------------------------------------- run details


@dataclass(frozen=True)
class RunDetails:
    """One training run in full (:meth:`Workspace.run_details`).

    Attributes
    ----------
    run
        The run's record (configuration, status, timings, model file, best regimes).
    chosen
        The chosen inference combination per regime (chosen on validation; test reported).
    results
        Every (combination, regime, split) result row.
    grid_scores
        The chosen combinations against every trial now stored in their regime's scope.
    model_path, file_check
        The kept model's file and its state against the record (None when not kept).
    min_trades, lookback_windows, settings_source
        The eligibility threshold of the choice (``selection.min_trades``) and the lookback
        windows of the run's inference grid, from the settings its queue stored
        (``settings_source`` says whose: "of queue N's settings", or "of the current
        settings" for a queue that stored none).
    listed_regimes
        The regimes whose best lists hold the run now (any validation window).
    """

    run: RunInfo
    chosen: pd.DataFrame = field(repr=False)
    results: pd.DataFrame = field(repr=False)
    grid_scores: pd.DataFrame = field(repr=False)
    model_path: Path | None = None
    file_check: FileCheck | None = None
    min_trades: int = 0
    lookback_windows: tuple[int, ...] = ()
    settings_source: str = "of the current settings"
    listed_regimes: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        """How the chosen combination of each regime was picked."""
        return (
            f"best validation Sharpe among combinations with at least {self.min_trades} "
            f"trades in the regime (selection.min_trades {self.settings_source})"
        )

    def __repr__(self) -> str:
        r = self.run
        return (
            f"<RunDetails run {r.id} {r.status}: {r.config.label}; kept={r.is_model_kept}; "
            f"{len(self.chosen)} chosen rows, {len(self.results)} results>"
        )

    def _repr_html_(self) -> str:
        import html

        from forexgrid.workspace._html import COLOURS, definition_list, styled

        r = self.run
        colour = COLOURS.get(r.status, "#57606a")
        file_state = None
        if self.file_check is not None:
            file_state = self.file_check.state + (
                f" ({self.file_check.detail})" if self.file_check.detail else ""
            )
        head = definition_list(
            f"Run {r.id} ({r.run_uuid})",
            {
                "Configuration": r.config.label,
                "Status": r.status,
                "Kept": "yes" if r.is_model_kept else "no",
                "Best regimes (kept now)": ", ".join(self.listed_regimes or r.best_regimes)
                if r.is_model_kept
                else None,
                "Model file": self.model_path,
                "Model file state": file_state,
                "Started (UTC)": r.started_at,
                "Completed (UTC)": r.completed_at,
                "Error": r.error,
            },
        ).replace(
            f"<td style='text-align:left'>{r.status}</td>",
            f"<td style='text-align:left; color:{colour}; font-weight:bold'>{r.status}</td>",
            1,
        )
        parts = [head]
        if not self.chosen.empty:
            parts.append(
                f"<p><b>Chosen combination per regime</b> (test figures reported): chosen by "
                f"{html.escape(self.rule)}.</p>"
            )
            parts.append(styled(self.chosen))
        if not self.grid_scores.empty:
            parts.append("<p><b>Against the whole grid</b> (every trial in the scope):</p>")
            parts.append(styled(self.grid_scores))
        return "".join(parts)


def run_details(workspace: Workspace, run_id: int) -> RunDetails:
    from forexgrid import scoring, storage
    from forexgrid.storage import ModelFileManager

    with workspace.session() as session:
        run = storage.runs.get_run(session, run_id)
        chosen = storage.runs.run_chosen(session, run_id)
        results = storage.runs.run_results(session, run_id)
        grid = scoring.grid_scores(session, run_id)
        queue = storage.queues.get_queue(session, run.queue_id)
        listed: tuple[str, ...] = ()
        if run.is_model_kept:
            table = storage.bests.best_models_table(session, run.symbol, window="all")
            mine = table["has_best"] & (table["run_id"] == run.id).fillna(False)
            listed = tuple(dict.fromkeys(table.loc[mine, "regime"]))
    model_path = check = None
    if run.model_file_path and run.is_model_kept and run.model_file_sha256:
        files = ModelFileManager.from_settings(workspace.settings)
        model_path = files.path_of(run.model_file_path)
        # The file's state against its record: size and SHA-256, streamed.
        check = files.check(run.model_file_path, run.model_file_sha256, run.model_file_size_bytes)
    stored = queue.settings
    selection = stored.get("selection") or {}
    inference = stored.get("inference_grid") or {}
    have = "min_trades" in selection and "lookback_windows" in inference
    return RunDetails(
        run,
        chosen,
        results,
        grid,
        model_path,
        check,
        min_trades=int(selection.get("min_trades", workspace.settings.selection.min_trades)),
        lookback_windows=tuple(
            inference.get("lookback_windows", workspace.settings.inference_grid.lookback_windows)
        ),
        settings_source=f"of queue {run.queue_id}'s settings"
        if have
        else "of the current settings",
        listed_regimes=listed,
    )


# ------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class KeptModel:
    """A kept run's fitted model, loaded after its file's size and SHA-256 were checked.

    Attributes
    ----------
    run_id, config
        The run and the configuration the model was trained with.
    model
        The fitted estimator (its ``predict`` takes the feature matrix of
        :func:`forexgrid.core.features.make_features`).
    settings
        The settings of the run's queue (features, evaluation), which :meth:`predict` uses.
    """

    run_id: int
    config: TrainingConfig
    model: Any = field(repr=False)
    settings: Any = field(repr=False)

    def predict(self, bars: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
        """Forecasts of ``horizon``-bar log returns at every bar of ``bars``, one column per
        prediction method (default: those of the queue's inference grid).

        ``bars`` must be at the model's timeframe (or finer: they are resampled); each
        forecast uses bars up to its own only, and the first rows are NaN until the features
        have enough history.
        """
        from forexgrid.core.inference import predict
        from forexgrid.data.timeframes import infer_timeframe, resample, timeframe_delta

        have = infer_timeframe(bars)
        if have != self.config.timeframe:
            if timeframe_delta(have) > timeframe_delta(self.config.timeframe):
                raise ForexgridError(
                    f"bars are {have} but run {self.run_id} trained on {self.config.timeframe}; "
                    f"pass bars at {self.config.timeframe} or finer"
                )
            bars = resample(bars, self.config.timeframe)
        if methods is None:
            methods = tuple(self.settings.inference_grid.prediction_methods)
        return predict(self.model, bars, self.config, self.settings, methods)


def load_model(workspace: Workspace, run_id: int) -> KeptModel:
    from forexgrid import storage
    from forexgrid.storage import ModelFileManager

    with workspace.session() as session:
        run = storage.runs.get_run(session, run_id)
        queue = storage.queues.get_queue(session, run.queue_id)
    if not (run.is_model_kept and run.model_file_path and run.model_file_sha256):
        if run.status != "completed":
            state = f"is {run.status}"
        elif run.kept_when_trained:
            state = "was kept, then pushed out of every best list and its file deleted"
        else:
            state = "was never kept (no regime's best list took it)"
        raise ForexgridError(
            f"run {run_id} has no model file to load: it {state}; ws.best() lists the kept models"
        )
    model = ModelFileManager.from_settings(workspace.settings).load(
        run.model_file_path, run.model_file_sha256, run.model_file_size_bytes
    )
    settings, _ = storage.queues.settings_of_queue(workspace.settings, queue.settings)
    return KeptModel(run.id, run.config, model, settings)


# ------------------------------------------------------------------------------ recovery


@dataclass(frozen=True)
class RecoveryReport:
    """What :meth:`Workspace.recovery` found: crashed queues with their recommendation, the
    model files it tidied, and the queues still running (with when they count as crashed)."""

    crashed: tuple[CrashedQueue, ...]
    files: ReconcileReport
    running: tuple[QueueInfo, ...] = ()
    detect_after_minutes: float = 5.0

    def lines(self) -> list[str]:
        """The report for people, one line each."""
        out = []
        if self.files.removed:
            out.append(f"Removed {len(self.files.removed)} model files no run needs.")
        if self.files.promoted:
            out.append(
                f"Finished {len(self.files.promoted)} model file write(s) a crash interrupted."
            )
        out += [f"Warning: the file of a kept model is missing: {p}" for p in self.files.missing]
        if not self.crashed:
            out.append("No crashed queues.")
        for q in self.running if not self.crashed else ():
            out.append(
                f"Queue {q.id} '{q.queue_name}' is running (owner {q.owner or 'unknown'}, last "
                f"heartbeat {_ago(q.heartbeat_at)}); it counts as crashed once its runner's "
                f"process is gone from this machine, or after {self.detect_after_minutes:g} "
                "minutes without a heartbeat (recovery.detect_crash_after_minutes)."
            )
        for item in self.crashed:
            out.append(item.describe())
            if item.queue.error:
                out.append(f"  Why: {item.queue.error}")
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        import html

        return "".join(f"<div>{html.escape(line)}</div>" for line in self.lines())


def _ago(moment: Any) -> str:
    if moment is None:
        return "never"
    from forexgrid.storage.tables import utcnow

    seconds = max(0.0, (utcnow() - moment).total_seconds())
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


# ------------------------------------------------------------------------------ verify


def verify_files(workspace: Workspace) -> pd.DataFrame:
    from forexgrid import storage
    from forexgrid.storage import ModelFileManager

    with workspace.session() as session:
        kept = storage.runs.kept_model_files(session)
    files = ModelFileManager.from_settings(workspace.settings)
    rows = []
    for run_id, path, sha, size in kept:
        if sha is None:
            rows.append((run_id, path, size, "unverifiable", "no SHA-256 recorded"))
            continue
        check = files.check(path, sha, size)
        rows.append((run_id, str(check.path), size, check.state, check.detail))
    return pd.DataFrame(rows, columns=["run_id", "path", "size_bytes", "state", "detail"])
