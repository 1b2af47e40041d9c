"""The training history: every run, filtered, newest first (the Training History tab), and
the runs a queue is training now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from forexgrid.exceptions import ForexgridError, quote_input
from forexgrid.storage.tables import RUN_STATUSES, ChosenResult, TrainingQueue, TrainingRun

__all__ = ["HISTORY_COLUMNS", "HISTORY_STATUSES", "queue_model_outcomes", "training_history"]

#: Statuses the history can be filtered on: the run statuses, plus ``cancelled`` for the
#: runs a cancelled queue never trained.
HISTORY_STATUSES: tuple[str, ...] = (*RUN_STATUSES, "cancelled")

#: Columns of :func:`training_history` (the guide's, then the details an export needs).
HISTORY_COLUMNS: tuple[str, ...] = (
    "id",
    "uuid",
    "model_type",
    "symbol",
    "timeframe",
    "status",
    "kept",
    "best_regimes",
    "created_at",
    "queue_id",
    "days_history",
    "horizon",
    "encoder",
    "config_hash",
    "run_uuid",
    "error",
    "started_at",
    "completed_at",
    "kept_when_trained",
    "model_deleted_at",
    "model_deleted_by_run_id",
    "all_val_sharpe",
    "all_test_sharpe",
)

_MIN_LIMIT, _MAX_LIMIT = 10, 1000


def _filter(values: Iterable[str] | str | None, what: str, normalise: Any) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ForexgridError(
                f"training history: {what} must be non-empty strings, got {quote_input(value)}"
            )
        out.append(normalise(value.strip()))
    return out or None


def training_history(
    session: Session,
    *,
    symbols: Iterable[str] | str | None = None,
    model_types: Iterable[str] | str | None = None,
    statuses: Iterable[str] | str | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """Return training runs, newest first, optionally filtered.

    Parameters
    ----------
    symbols, model_types
        Keep only these (``None`` or empty: all). Case-insensitive.
    statuses
        Keep only these of :data:`HISTORY_STATUSES`. ``cancelled`` is the status shown for
        runs that were still pending when their queue was cancelled.
    limit
        At most this many rows, 10 to 1000.

    Returns
    -------
    DataFrame
        :data:`HISTORY_COLUMNS`: ``uuid`` is the run uuid's first 8 characters, ``kept`` a
        bool (kept now), ``kept_when_trained`` the decision when the run completed (None
        until then), ``model_deleted_by_run_id`` the run that pushed the model out of every
        list (None: not pushed out, or deleted by a command), ``best_regimes`` a
        comma-separated string, times tz-aware UTC. ``all_val_sharpe`` and
        ``all_test_sharpe`` are the validation and test Sharpe ratios of the combination
        chosen for the pseudo-regime ``all`` (every bar), NaN until the run completes or
        when no combination had enough trades.

    Raises
    ------
    ForexgridError
        If ``limit`` is not an integer between 10 and 1000, or a status is unknown.
    """
    if (
        isinstance(limit, bool)
        or not isinstance(limit, (int, np.integer))
        or not _MIN_LIMIT <= limit <= _MAX_LIMIT
    ):
        raise ForexgridError(
            f"training history: limit must be an integer between {_MIN_LIMIT} and "
            f"{_MAX_LIMIT}, got {quote_input(limit)}"
        )
    symbols_ = _filter(symbols, "symbols", str.upper)
    models_ = _filter(model_types, "model types", str.lower)
    statuses_ = _filter(statuses, "statuses", str.lower)
    for status in statuses_ or ():
        if status not in HISTORY_STATUSES:
            raise ForexgridError(
                f"training history: unknown status {quote_input(status)}; expected one of "
                f"{', '.join(HISTORY_STATUSES)}"
            )
    shown_status = case(
        (
            (TrainingRun.status == "pending") & (TrainingQueue.status == "cancelled"),
            "cancelled",
        ),
        else_=TrainingRun.status,
    ).label("shown_status")
    # The run's newest chosen row of "all" (a rescore adds rows; "all" has no rules).
    newest_all = (
        select(func.max(ChosenResult.id).label("id"))
        .where(ChosenResult.regime == "all")
        .group_by(ChosenResult.run_id)
        .subquery()
    )
    chosen_all = (
        select(ChosenResult.run_id, ChosenResult.val_sharpe, ChosenResult.test_sharpe)
        .join(newest_all, newest_all.c.id == ChosenResult.id)
        .subquery()
    )
    query = (
        select(
            TrainingRun.id,
            TrainingRun.run_uuid,
            TrainingRun.model_type,
            TrainingRun.symbol,
            TrainingRun.timeframe,
            shown_status,
            TrainingRun.is_model_kept,
            TrainingRun.best_regimes,
            TrainingRun.created_at,
            TrainingRun.queue_id,
            TrainingRun.days_history,
            TrainingRun.horizon,
            TrainingRun.encoder,
            TrainingRun.config_hash,
            TrainingRun.error,
            TrainingRun.started_at,
            TrainingRun.completed_at,
            TrainingRun.kept_when_trained,
            TrainingRun.model_deleted_at,
            TrainingRun.model_deleted_by_run_id,
            chosen_all.c.val_sharpe.label("all_val_sharpe"),
            chosen_all.c.test_sharpe.label("all_test_sharpe"),
        )
        .join(TrainingQueue, TrainingQueue.id == TrainingRun.queue_id)
        .outerjoin(chosen_all, chosen_all.c.run_id == TrainingRun.id)
        .order_by(TrainingRun.created_at.desc(), TrainingRun.id.desc())
        .limit(int(limit))
    )
    if symbols_:
        query = query.where(TrainingRun.symbol.in_(symbols_))
    if models_:
        query = query.where(TrainingRun.model_type.in_(models_))
    if statuses_:
        query = query.where(shown_status.in_(statuses_))
    records = []
    for r in session.execute(query):
        records.append(
            {
                "id": r.id,
                "uuid": r.run_uuid[:8],
                "model_type": r.model_type,
                "symbol": r.symbol,
                "timeframe": r.timeframe,
                "status": r.shown_status,
                "kept": bool(r.is_model_kept),
                "best_regimes": ", ".join(r.best_regimes or ()),
                "created_at": r.created_at,
                "queue_id": r.queue_id,
                "days_history": r.days_history,
                "horizon": r.horizon,
                "encoder": r.encoder,
                "config_hash": r.config_hash,
                "run_uuid": r.run_uuid,
                "error": r.error,
                "started_at": r.started_at,
                "completed_at": r.completed_at,
                "kept_when_trained": r.kept_when_trained,
                "model_deleted_at": r.model_deleted_at,
                "model_deleted_by_run_id": r.model_deleted_by_run_id,
                "all_val_sharpe": r.all_val_sharpe,
                "all_test_sharpe": r.all_test_sharpe,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(HISTORY_COLUMNS))
    for column in ("id", "queue_id", "days_history", "horizon"):
        frame[column] = frame[column].astype("int64")
    frame["kept"] = frame["kept"].astype(bool)
    for column in ("all_val_sharpe", "all_test_sharpe"):
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    for column in ("created_at", "started_at", "completed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    return frame


def queue_model_outcomes(session: Session, queue_id: int) -> dict[str, int]:
    """What became of the models of a queue's completed runs, as its run summary tells it.

    Returns
    -------
    dict
        ``kept``: models kept now; ``kept_then_deleted``: kept when their run completed,
        deleted since (pushed out of every best list by a later run, or removed by a
        command); ``never_kept``: not best in any regime when their run completed. The
        three add up to the queue's completed runs, so a run's "Model kept" status line
        minus the "Run N's model deleted" lines equals ``kept``.
    """
    completed = TrainingRun.status == "completed"
    kept_now = TrainingRun.is_model_kept.is_(True)
    was_kept = TrainingRun.kept_when_trained.is_(True)
    row = session.execute(
        select(
            func.count().filter(completed, kept_now),
            func.count().filter(completed, ~kept_now, was_kept),
            func.count().filter(completed),
        ).where(TrainingRun.queue_id == int(queue_id))
    ).one()
    kept, kept_then_deleted, n_completed = (int(c or 0) for c in row)
    return {
        "kept": kept,
        "kept_then_deleted": kept_then_deleted,
        "never_kept": n_completed - kept - kept_then_deleted,
    }
