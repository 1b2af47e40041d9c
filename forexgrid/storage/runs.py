"""Run queries: start, complete (with results), fail, reset, and read runs and results.

A run is completed in one call that writes the run's summary, its inference results and its
chosen rows together (one transaction with the caller's other writes), so a crash leaves
either a completed run with all its rows or a run that is not completed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Dialect, Table, func, insert, select, update
from sqlalchemy.orm import Session

from forexgrid.exceptions import DataError, StorageError
from forexgrid.results import CHOSEN_COLUMNS, PINNED_CHOSEN_COLUMNS, RESULT_COLUMNS
from forexgrid.storage._common import chunks, queue_row, reset_running, run_row
from forexgrid.storage.queues import update_counts
from forexgrid.storage.records import RunInfo
from forexgrid.storage.tables import (
    Base,
    ChosenResult,
    InferenceResult,
    TrainingQueue,
    TrainingRun,
    utcnow,
)

__all__ = [
    "add_rescored_results",
    "kept_model_files",
    "live_run_uuids",
    "queue_run_uuids",
    "referenced_model_files",
    "CHOSEN_COLUMNS",
    "RESULT_COLUMNS",
    "complete_run",
    "completed_hashes",
    "count_pending",
    "fail_run",
    "get_run",
    "mark_models_deleted",
    "pending_runs",
    "queue_runs",
    "reset_running_runs",
    "running_runs",
    "run_chosen",
    "run_results",
    "start_run",
]

logger = logging.getLogger(__name__)

# The pipeline always writes these; the others may be missing (stored as NULL).
_CHOSEN_REQUIRED = PINNED_CHOSEN_COLUMNS
_RESULT_INTS = ("lookback", "trades")
_RESULT_STRS = ("signal", "regime", "split")
_CHOSEN_INTS = ("lookback", "val_trades", "test_trades", "combination")
_CHOSEN_STRS = ("regime", "signal", "reason")


def get_run(session: Session, run_id: int) -> RunInfo:
    """Return one run.

    Raises
    ------
    StorageError
        ``"no run with id N"``.
    """
    return RunInfo.from_row(run_row(session, run_id))


def queue_runs(session: Session, queue_id: int) -> list[RunInfo]:
    """Return every run of a queue in ``queue_index`` order.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    queue = queue_row(session, queue_id)
    rows = session.scalars(
        select(TrainingRun)
        .where(TrainingRun.queue_id == queue.id)
        .order_by(TrainingRun.queue_index)
        .execution_options(populate_existing=True)
    )
    return [RunInfo.from_row(row) for row in rows]


def pending_runs(
    session: Session, queue_id: int, *, after_index: int = -1, limit: int | None = None
) -> list[RunInfo]:
    """Return the queue's pending runs in ``queue_index`` order (what is left to train).

    Parameters
    ----------
    after_index, limit
        Read one page: at most ``limit`` runs whose ``queue_index`` is above
        ``after_index`` (the runner reads a large queue this way, not all at once).

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    return _runs_with_status(session, queue_id, "pending", after_index=after_index, limit=limit)


def count_pending(session: Session, queue_id: int) -> int:
    """How many of the queue's runs are pending (one indexed count, whatever the queue's size).

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    queue = queue_row(session, queue_id)
    return session.scalar(
        select(func.count())
        .select_from(TrainingRun)
        .where(TrainingRun.queue_id == queue.id, TrainingRun.status == "pending")
    )


def running_runs(session: Session, queue_id: int) -> list[RunInfo]:
    """Return the queue's runs being trained now, in ``queue_index`` order.

    A handful (the runner's workers and the one it waits for), read by one indexed query
    however many runs the queue has, where :func:`~forexgrid.storage.queue_runs` reads them
    all.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    return _runs_with_status(session, queue_id, "running")


def _runs_with_status(
    session: Session,
    queue_id: int,
    status: str,
    *,
    after_index: int = -1,
    limit: int | None = None,
) -> list[RunInfo]:
    queue = queue_row(session, queue_id)
    query = (
        select(TrainingRun)
        .where(
            TrainingRun.queue_id == queue.id,
            TrainingRun.status == status,
            TrainingRun.queue_index > after_index,
        )
        .order_by(TrainingRun.queue_index)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    rows = session.scalars(query)
    return [RunInfo.from_row(row) for row in rows]


def completed_hashes(session: Session) -> set[str]:
    """Return the configuration hashes that have a completed run (in any queue)."""
    return set(
        session.scalars(
            select(TrainingRun.config_hash).where(TrainingRun.status == "completed").distinct()
        )
    )


def referenced_model_files(
    session: Session, *, kept_only: bool = True
) -> dict[str, tuple[str | None, int | None]]:
    """Model files the database still needs: ``{recorded path: (sha256, size in bytes)}``.

    With ``kept_only`` (the default, for ``model_management.delete_non_best_models``), the
    files of runs whose model is kept; otherwise every recorded file. Any other file in the
    artifacts folder is an orphan (reconciliation removes it).
    """
    query = select(
        TrainingRun.model_file_path,
        TrainingRun.model_file_sha256,
        TrainingRun.model_file_size_bytes,
    ).where(TrainingRun.model_file_path.is_not(None))
    if kept_only:
        query = query.where(TrainingRun.is_model_kept.is_(True))
    return {path: (sha, size) for path, sha, size in session.execute(query)}


def kept_model_files(session: Session) -> list[tuple[int, str, str | None, int | None]]:
    """``(run id, recorded path, sha256, size)`` of every kept model, by run id."""
    query = (
        select(
            TrainingRun.id,
            TrainingRun.model_file_path,
            TrainingRun.model_file_sha256,
            TrainingRun.model_file_size_bytes,
        )
        .where(TrainingRun.is_model_kept.is_(True), TrainingRun.model_file_path.is_not(None))
        .order_by(TrainingRun.id)
    )
    return [tuple(row) for row in session.execute(query)]


def live_run_uuids(
    session: Session, heartbeat_after: datetime, *, except_queue: int | None = None
) -> set[str]:
    """The run UUIDs of the queues whose runner is alive (running, heartbeat after
    ``heartbeat_after``), but ``except_queue``: files of these runs are theirs to handle."""
    query = (
        select(TrainingRun.run_uuid)
        .join(TrainingQueue, TrainingQueue.id == TrainingRun.queue_id)
        .where(TrainingQueue.status == "running", TrainingQueue.heartbeat_at >= heartbeat_after)
    )
    if except_queue is not None:
        query = query.where(TrainingQueue.id != except_queue)
    return {uuid.lower() for uuid in session.scalars(query)}


def queue_run_uuids(session: Session, queue_id: int) -> set[str]:
    """The run UUIDs of one queue (lower case)."""
    query = select(TrainingRun.run_uuid).where(TrainingRun.queue_id == queue_id)
    return {uuid.lower() for uuid in session.scalars(query)}


def _transition(
    session: Session, run_id: int, allowed: tuple[str, ...], target: str, **values: Any
) -> RunInfo:
    row = run_row(session, run_id)
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == row.id, TrainingRun.status.in_(allowed))
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        fresh = run_row(session, row.id)
        raise StorageError(
            f"run {row.id} is {fresh.status}; only a {' or '.join(allowed)} run can become "
            f"{target}"
        )
    return get_run(session, row.id)


def start_run(session: Session, run_id: int) -> RunInfo:
    """Mark a pending run running (sets ``started_at``).

    Raises
    ------
    StorageError
        Unknown run, or the run is not pending.
    """
    return _transition(session, run_id, ("pending",), "running", started_at=utcnow())


def fail_run(session: Session, run_id: int, error: str) -> RunInfo:
    """Mark a pending or running run failed, with the error text (e.g. the traceback).

    Raises
    ------
    StorageError
        Unknown run, or the run is already completed or failed.
    """
    return _transition(
        session, run_id, ("pending", "running"), "failed", error=str(error), completed_at=utcnow()
    )


def reset_running_runs(session: Session, queue_id: int) -> int:
    """Put the queue's running runs back to pending (crash recovery); return how many.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    return reset_running(session, queue_row(session, queue_id).id)


def mark_models_deleted(
    session: Session, run_ids: Iterable[int], *, by_run_id: int | None = None
) -> int:
    """Record that these runs' model files were deleted (``is_model_kept`` false).

    The file path and hash stay recorded (history), and so does ``kept_when_trained`` (the
    decision when the run completed); ``model_deleted_at`` and ``model_deleted_by_run_id``
    (``by_run_id``: the run whose selection pushed the models out) say when and why. The
    kept counts of the queues the runs belong to are recounted in the same transaction,
    so every queue shows the current truth. Returns the number of runs changed.
    """
    ids = sorted({int(r) for r in run_ids})
    changed = 0
    queues: set[int] = set()
    for part in chunks(ids):
        queues.update(
            session.scalars(
                select(TrainingRun.queue_id).where(
                    TrainingRun.id.in_(part), TrainingRun.is_model_kept.is_(True)
                )
            )
        )
        result = session.execute(
            update(TrainingRun)
            .where(TrainingRun.id.in_(part), TrainingRun.is_model_kept.is_(True))
            .values(
                is_model_kept=False, model_deleted_at=utcnow(), model_deleted_by_run_id=by_run_id
            )
            .execution_options(synchronize_session=False)
        )
        changed += int(result.rowcount or 0)
    for queue_id in sorted(queues):
        update_counts(session, queue_id)
    return changed


# ---------------------------------------------------------------------------- results


def _frame(df: Any, what: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns)) or 'none'}"
        )
    return df


def _numbers(series: pd.Series, column: str, what: str) -> np.ndarray:
    """A numeric column as float64, NaN where missing; DataError for a non-number."""
    if pd.api.types.is_numeric_dtype(series.dtype):  # numpy, nullable and bool dtypes
        return series.to_numpy(dtype=float, na_value=np.nan)
    numeric = pd.to_numeric(series, errors="coerce")
    bad = numeric.isna().to_numpy() & ~series.isna().to_numpy()
    if bad.any():
        value = series.to_numpy()[np.flatnonzero(bad)[0]]
        raise DataError(f"{what}: column {column!r} must be numeric, got {value!r}")
    return numeric.to_numpy(dtype=float, na_value=np.nan)


def _column_values(df: pd.DataFrame, column: str, kind: str, what: str) -> list[Any]:
    """One column as the plain Python values stored: None where missing (a metric's NaN is
    stored as NULL), ``int`` for "int" columns, +/-inf kept for "float" ones."""
    if column not in df.columns:
        return [None] * len(df)
    series = df[column]
    if kind == "str":
        missing = series.isna().to_numpy()
        values = series.tolist()
        if not isinstance(series.dtype, pd.StringDtype):
            values = [str(v) for v in values]
    else:
        numbers = _numbers(series, column, what)
        missing = np.isnan(numbers)
        if kind == "int":
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(numbers) & (numbers == np.round(numbers))
            bad = ~missing & ~whole
            if bad.any():
                raise DataError(
                    f"{what}: column {column!r} must hold whole numbers, "
                    f"got {float(numbers[bad][0])!r}"
                )
            huge = ~missing & (np.abs(numbers) >= 2.0**63)
            if huge.any():
                raise DataError(
                    f"{what}: column {column!r} must hold whole numbers below 2**63, "
                    f"got {float(numbers[huge][0])!r}"
                )
            values = np.where(missing, 0, numbers).astype(np.int64).tolist()
        else:
            values = numbers.tolist()
    for i in np.flatnonzero(missing).tolist():
        values[i] = None
    return values


def _columns(
    df: pd.DataFrame, columns: Sequence[str], ints: Sequence[str], strs: Sequence[str], what: str
) -> dict[str, list[Any]]:
    """The frame's stored columns as lists of plain values (see :func:`_column_values`)."""
    return {
        c: _column_values(df, c, "int" if c in ints else "str" if c in strs else "float", what)
        for c in columns
    }


@functools.lru_cache(maxsize=32)
def _insert_statement(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[int, ...] | None]:
    """The INSERT of ``names`` into ``table`` in the driver's SQL, and for positional
    parameters the order of ``names`` they take."""
    compiled = insert(table).compile(
        dialect=dialect, column_keys=list(names), for_executemany=True
    )
    if not compiled.positional:
        return compiled.string, None
    return compiled.string, tuple(names.index(key) for key in compiled.positiontup or ())


def _copy(connection: Any, table: str, names: Sequence[str], rows: list[tuple]) -> None:
    """``COPY table (names) FROM STDIN`` of ``rows`` on a psycopg connection, in the
    connection's transaction."""
    listed = ", ".join(names)
    with connection.connection.dbapi_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({listed}) FROM STDIN") as copy:
            for row in rows:  # each call formats a row in C
                copy.write_row(row)


def _insert(
    session: Session,
    table: type[Base],
    run_id: int,
    columns: Mapping[str, list[Any]],
    rules_versions: Mapping[str, str | None],
) -> int:
    """Insert one run's result rows in one statement; return how many.

    Each row gets ``run_id`` and the rules version of its regime. The rows go to the driver
    as they are (their values are already what the column types bind: None for NaN, int,
    float, str): SQLAlchemy's per-row parameter and type processing cost more than the
    insert itself (820 rows, docs/performance.md "Grid runner"). PostgreSQL through psycopg
    gets one ``COPY ... FROM STDIN`` (psycopg's ``executemany`` sends a statement per row,
    pipelined: 27 ms for 820 rows against 13 ms), every other database one ``executemany``.
    """
    names = ("run_id", *columns, "rules_version")
    regimes = columns["regime"]
    rows = list(
        zip(
            [run_id] * len(regimes),
            *columns.values(),
            [rules_versions.get(r) for r in regimes],
            strict=True,
        )
    )
    if not rows:
        return 0
    connection = session.connection()
    if connection.dialect.driver == "psycopg":
        _copy(connection, table.__tablename__, names, rows)
        return len(rows)
    sql, order = _insert_statement(table.__table__, names, connection.dialect)
    if order is None:
        params: list[Any] = [dict(zip(names, row, strict=True)) for row in rows]
    elif order != tuple(range(len(names))):
        params = [tuple(row[i] for i in order) for row in rows]
    else:
        params = rows
    connection.exec_driver_sql(sql, params)
    return len(rows)


def complete_run(
    session: Session,
    run_id: int,
    *,
    results: pd.DataFrame,
    chosen: pd.DataFrame,
    kept: bool,
    best_regimes: Iterable[str] = (),
    n_combinations: int | None = None,
    phase1_seconds: float | None = None,
    phase2_seconds: float | None = None,
    data_fingerprint: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
    model_file_path: str | None = None,
    model_file_sha256: str | None = None,
    model_file_size_bytes: int | None = None,
    rules_versions: Mapping[str, str] | None = None,
) -> RunInfo:
    """Record a finished run: its summary, inference results, chosen rows and model file.

    Parameters
    ----------
    results, chosen
        ``RunResult.results`` and ``RunResult.chosen`` (NaN metrics are stored as NULL and
        read back as NaN; +/-inf round-trip).
    kept
        Whether the model file is kept (the run entered at least one best list).
    best_regimes
        Regimes whose best list the run entered.
    n_combinations, phase1_seconds, phase2_seconds, data_fingerprint
        From the RunResult (``timings["phase1"]`` ...).
    config_hash
        The RunResult's hash, when it differs from the one computed at queue creation
        (e.g. the data changed since); replaces the stored one.
    model_file_path, model_file_sha256, model_file_size_bytes
        The model file as written (also recorded for a model deleted at once, for history).
    rules_versions
        Per regime, the version of the rules its rows were measured under
        (``RunResult.trials``); stored on each result and chosen row.

    Returns
    -------
    RunInfo

    Raises
    ------
    StorageError
        Unknown run, or the run is already completed or failed (a result is never
        recorded twice).
    DataError
        If ``results`` or ``chosen`` lacks a column or holds a non-numeric metric.
    """
    row = run_row(session, run_id)
    if row.status not in ("pending", "running"):
        raise StorageError(
            f"run {row.id} is already {row.status}; a run's result is recorded only once"
        )
    results = _frame(results, f"run {row.id} results", RESULT_COLUMNS)
    chosen = _frame(chosen, f"run {row.id} chosen", _CHOSEN_REQUIRED)
    result_columns = _columns(
        results, RESULT_COLUMNS, _RESULT_INTS, _RESULT_STRS, f"run {row.id} results"
    )
    bad = [t for t in result_columns["threshold"] if t is None or not np.isfinite(t)]
    if bad:
        threshold = np.nan if bad[0] is None else bad[0]
        raise DataError(f"run {row.id} results: threshold must be finite, got {threshold!r}")
    chosen_columns = _columns(
        chosen, CHOSEN_COLUMNS, _CHOSEN_INTS, _CHOSEN_STRS, f"run {row.id} chosen"
    )
    versions = dict(rules_versions or {})
    values: dict[str, Any] = {
        "status": "completed",
        "completed_at": utcnow(),
        "is_model_kept": bool(kept),
        "kept_when_trained": bool(kept),
        "best_regimes": [str(r) for r in best_regimes],
        "n_combinations": None if n_combinations is None else int(n_combinations),
        "phase1_seconds": None if phase1_seconds is None else float(phase1_seconds),
        "phase2_seconds": None if phase2_seconds is None else float(phase2_seconds),
        "model_file_path": None if model_file_path is None else str(model_file_path),
        "model_file_sha256": model_file_sha256,
        "model_file_size_bytes": (
            None if model_file_size_bytes is None else int(model_file_size_bytes)
        ),
        "error": None,
    }
    if row.started_at is None:
        values["started_at"] = values["completed_at"]
    if data_fingerprint is not None:
        values["data_fingerprint"] = dict(data_fingerprint)
    if config_hash is not None:
        values["config_hash"] = str(config_hash)
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == row.id, TrainingRun.status.in_(("pending", "running")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StorageError(f"run {row.id} was completed by another process meanwhile")
    n_results = _insert(session, InferenceResult, row.id, result_columns, versions)
    n_chosen = _insert(session, ChosenResult, row.id, chosen_columns, versions)
    logger.debug(
        "run %d completed: %d result rows, %d chosen rows, kept=%s",
        row.id,
        n_results,
        n_chosen,
        kept,
    )
    return get_run(session, row.id)


def add_rescored_results(
    session: Session,
    run_id: int,
    *,
    results: pd.DataFrame,
    chosen: pd.DataFrame,
    rules_versions: Mapping[str, str],
) -> None:
    """Record a completed run's results in regimes it was rescored in (new regime rules).

    The rows of earlier rules stay; reads show each regime's latest rows.

    Parameters
    ----------
    results, chosen
        The rescored regimes' rows of an :class:`~forexgrid.results.Evaluation`.
    rules_versions
        The version of each rescored regime's rules; rows of other regimes are ignored.

    Raises
    ------
    StorageError
        Unknown run, or the run is not completed.
    """
    row = run_row(session, run_id)
    if row.status != "completed":
        raise StorageError(f"run {row.id} is {row.status}; only a completed run is rescored")
    what = f"run {row.id} rescored"
    results = _frame(results, f"{what} results", RESULT_COLUMNS)
    chosen = _frame(chosen, f"{what} chosen", _CHOSEN_REQUIRED)
    versions = dict(rules_versions)
    results = results[results["regime"].isin(list(versions))]
    chosen = chosen[chosen["regime"].isin(list(versions))]
    _insert(
        session,
        InferenceResult,
        row.id,
        _columns(results, RESULT_COLUMNS, _RESULT_INTS, _RESULT_STRS, what),
        versions,
    )
    _insert(
        session,
        ChosenResult,
        row.id,
        _columns(chosen, CHOSEN_COLUMNS, _CHOSEN_INTS, _CHOSEN_STRS, what),
        versions,
    )


def _typed_frame(records: list[Any], columns: Sequence[str], ints: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    for column in columns:
        if column in ints:
            frame[column] = frame[column].astype("Int64")
    return frame


_FLOAT_RESULTS = [c for c in RESULT_COLUMNS if c not in _RESULT_INTS + _RESULT_STRS]
_FLOAT_CHOSEN = [c for c in CHOSEN_COLUMNS if c not in _CHOSEN_INTS + _CHOSEN_STRS]


def _latest_versions(frame: pd.DataFrame, ids: list[int]) -> pd.DataFrame:
    """The rows of each regime's most recent scoring (a regime rescored under new rules
    keeps its earlier rows in the database)."""
    if frame.empty:
        return frame
    # NULL (rows older than rule versions) is a version of its own.
    version = frame["rules_version"].fillna("")
    last = (
        pd.DataFrame({"regime": frame["regime"], "version": version, "id": ids})
        .sort_values("id")
        .drop_duplicates("regime", keep="last")
        .set_index("regime")["version"]
    )
    keep = version.eq(frame["regime"].map(last)).to_numpy()
    return frame[keep].reset_index(drop=True)


def run_results(session: Session, run_id: int) -> pd.DataFrame:
    """Return a run's inference results, in the order they were recorded.

    Returns
    -------
    DataFrame
        The columns of ``RunResult.results`` (:data:`RESULT_COLUMNS`) and ``rules_version``;
        ``lookback`` and ``trades`` as nullable ``Int64``; metrics float64 with NaN where
        none. A regime rescored under new rules shows the rows of its latest rules.

    Raises
    ------
    StorageError
        ``"no run with id N"``.
    """
    row = run_row(session, run_id)
    cols = [getattr(InferenceResult, c) for c in RESULT_COLUMNS]
    records = session.execute(
        select(InferenceResult.id, *cols, InferenceResult.rules_version)
        .where(InferenceResult.run_id == row.id)
        .order_by(InferenceResult.id)
    ).all()
    columns = [*RESULT_COLUMNS, "rules_version"]
    frame = _typed_frame([tuple(r)[1:] for r in records], columns, _RESULT_INTS)
    frame = _latest_versions(frame, [r[0] for r in records])
    return frame.astype({c: "float64" for c in _FLOAT_RESULTS})


def run_chosen(session: Session, run_id: int) -> pd.DataFrame:
    """Return a run's chosen rows (one per regime), in the order they were recorded.

    Returns
    -------
    DataFrame
        :data:`CHOSEN_COLUMNS` and ``rules_version``; ``lookback``, ``val_trades``,
        ``test_trades``, ``combination`` as ``Int64``. A regime rescored under new rules
        shows the row of its latest rules.

    Raises
    ------
    StorageError
        ``"no run with id N"``.
    """
    row = run_row(session, run_id)
    cols = [getattr(ChosenResult, c) for c in CHOSEN_COLUMNS]
    records = session.execute(
        select(ChosenResult.id, *cols, ChosenResult.rules_version)
        .where(ChosenResult.run_id == row.id)
        .order_by(ChosenResult.id)
    ).all()
    columns = [*CHOSEN_COLUMNS, "rules_version"]
    frame = _typed_frame([tuple(r)[1:] for r in records], columns, _CHOSEN_INTS)
    frame = _latest_versions(frame, [r[0] for r in records])
    return frame.astype({c: "float64" for c in _FLOAT_CHOSEN})
