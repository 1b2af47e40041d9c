"""Queue snapshots: the JSON-safe state a checkpoint file holds, and its restore.

:func:`queue_snapshot` captures one queue: the queue row, each run (status, hash,
configuration, summary, model file, its chosen rows per regime and its trials: the daily
validation returns the grid-wide statistics are computed from), the best-list places that
refer to its runs, and the regime definitions. The full per-combination inference results
are *not* included (they can be hundreds of rows per run; the chosen rows carry every figure
the tables and charts show), so a restored database has no ``inference_results`` for those
runs. Restored trials are added to their scopes' statistics, so the lists restored with them
are scored against the same trials.

:func:`queue_snapshot_stream` is the same content with the runs and best-list places as
iterators that read the database as they are consumed: checkpoints write it item by item
(``checkpoints.write_checkpoint``), so a queue's snapshot is never whole in memory.
``taken_at`` is when the reading began.

:func:`restore_snapshot` recreates the queue in a database that does not have it (an empty
one after a lost database file, typically). A queue that was running when the snapshot was
taken comes back ``paused`` with its in-flight runs ``pending``, ready to resume.

JSON safety: times are ISO 8601 strings (UTC), NaN is ``null`` and +/-infinity are the
strings ``"inf"``/``"-inf"``, so ``json.dumps(snapshot, allow_nan=False)`` works.
"""

from __future__ import annotations

import base64
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from forexgrid.core.regimes import Regime
from forexgrid.exceptions import ForexgridError, StorageError, quote_input
from forexgrid.storage._common import queue_row
from forexgrid.storage.queues import update_counts
from forexgrid.storage.records import QueueInfo
from forexgrid.storage.runs import CHOSEN_COLUMNS
from forexgrid.storage.tables import (
    ChosenResult,
    RegimeBestModel,
    RegimeDefinition,
    RunTrial,
    TrainingQueue,
    TrainingRun,
    utcnow,
)
from forexgrid.storage.trials import (
    SCORED,
    ScopeKey,
    decode_returns,
    load_scope_stats,
    record_not_scored,
    record_trials,
)

__all__ = [
    "READABLE_VERSIONS",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "queue_snapshot",
    "queue_snapshot_stream",
    "restore_snapshot",
]

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "forexgrid.queue_snapshot"
SNAPSHOT_VERSION = 2
#: Versions :func:`restore_snapshot` reads: 1 (before trials and windows were recorded: its
#: best entries are restored as legacy lists, without a window) and 2.
READABLE_VERSIONS = (1, 2)

_QUEUE_FIELDS = (
    "queue_uuid",
    "queue_name",
    "status",
    "total_configs",
    "skipped_count",
    "current_index",
    "completed_count",
    "failed_count",
    "kept_count",
    "deleted_count",
    "requested_action",
    "owner",
    "created_at",
    "started_at",
    "updated_at",
    "heartbeat_at",
    "completed_at",
    "error",
)
_RUN_FIELDS = (
    "run_uuid",
    "queue_index",
    "config_hash",
    "config_json",
    "status",
    "model_type",
    "symbol",
    "timeframe",
    "days_history",
    "horizon",
    "encoder",
    "is_model_kept",
    "model_file_path",
    "model_file_sha256",
    "model_file_size_bytes",
    "best_regimes",
    "n_combinations",
    "phase1_seconds",
    "phase2_seconds",
    "data_fingerprint",
    "error",
    "created_at",
    "started_at",
    "completed_at",
)
_BEST_FIELDS = (
    "symbol",
    "regime",
    "rank",
    "config_hash",
    "score",
    "signal",
    "threshold",
    "lookback",
    "test_sharpe",
    "achieved_at",
    "validation_start",
    "validation_end",
    "rules_version",
    "dsr",
    "val_sharpe",
    "daily_sharpe",
    "daily_skew",
    "daily_kurtosis",
    "daily_n",
)
_TRIAL_FIELDS = (
    "regime",
    "rules_version",
    "validation_start",
    "validation_end",
    "n_days",
    "n_combinations",
    "status",
)
# Rows fetched per round trip when streaming a queue's runs. A run with its configuration
# is about 2.5 KB in Python: 500 of them (about 1 MB) are most of a streamed checkpoint's peak.
_CHUNK = 500
_TIMES = {"created_at", "started_at", "updated_at", "heartbeat_at", "completed_at", "achieved_at"}
_DATES = {"validation_start", "validation_end"}
_FLOATS = {
    "score",
    "threshold",
    "test_sharpe",
    "dsr",
    "val_sharpe",
    "daily_sharpe",
    "daily_skew",
    "daily_kurtosis",
    "phase1_seconds",
    "phase2_seconds",
    *(
        c
        for c in CHOSEN_COLUMNS
        if c not in ("regime", "signal", "lookback", "reason", "val_trades", "test_trades")
    ),
}


def _out(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _in(key: str, value: Any, where: str) -> Any:
    if value is None:
        return None  # NULL; metric columns read it back as NaN
    try:
        if key in _TIMES:
            return datetime.fromisoformat(value)
        if key in _DATES:
            return date.fromisoformat(value)
        if key in _FLOATS:
            return float(value)  # also "inf" / "-inf"
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{where}: {key} has an invalid value {quote_input(value)}") from exc
    return value


def queue_snapshot(session: Session, queue_id: int) -> dict[str, Any]:
    """Return a JSON-safe snapshot of a queue (see the module docstring for its content).

    A run's fields that are null (e.g. the model file of a pending run) and its empty
    ``chosen`` and ``trials`` lists are left out: a pending run is its identity and
    configuration only. Rows are read as plain tuples, a chunk at a time, and the chosen
    rows and trials by a join on the queue, never by a list of run ids (PostgreSQL takes at
    most 65,535 parameters per statement).

    The whole snapshot is built in memory (about 2.3 KB a run: 230 MB for 100,000 runs,
    before any dump of it); a checkpoint writes :func:`queue_snapshot_stream` instead,
    which reads the same content as it is written.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    return {
        key: list(value) if isinstance(value, Iterator) else value
        for key, value in queue_snapshot_stream(session, queue_id).items()
    }


def queue_snapshot_stream(session: Session, queue_id: int) -> dict[str, Any]:
    """Return :func:`queue_snapshot`'s content with ``runs`` and ``bests`` as iterators.

    The iterators read the database a chunk of rows at a time as they are consumed and
    build one run (with its chosen rows and trials) at a time, so
    :func:`~forexgrid.storage.checkpoints.write_checkpoint` writes the snapshot of a queue
    of any size in bounded memory. Consume them inside ``session``'s transaction. The queue
    row and the regimes are read at once, so an unknown queue fails here.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    queue = queue_row(session, queue_id)
    taken_at = utcnow().isoformat()
    queue_data = {f: _out(getattr(queue, f)) for f in _QUEUE_FIELDS}
    queue_data.update(id=queue.id, grid=queue.grid_json, settings=queue.settings_json)
    regimes = [
        {
            "name": r.name,
            "description": r.description,
            "rules": dict(r.rules_json),
            "active": bool(r.active),
            "is_default": bool(r.is_default),
        }
        for r in session.scalars(select(RegimeDefinition).order_by(RegimeDefinition.id))
    ]
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "taken_at": taken_at,
        "queue": queue_data,
        "runs": _runs(session, queue.id),
        "bests": _bests(session, queue.id),
        "regimes": regimes,
    }


class _PerRun:
    """Rows of a query ordered by the runs' ``queue_index``, handed out a run at a time."""

    def __init__(self, rows: Iterable[Any], convert: Callable[[Any], dict[str, Any]]) -> None:
        self._groups = (
            (index, [convert(row) for row in group])
            for index, group in itertools.groupby(rows, key=lambda row: row.queue_index)
        )
        self._next = next(self._groups, None)

    def take(self, queue_index: int) -> list[dict[str, Any]]:
        """The rows of the run at ``queue_index`` (runs are asked for in queue order)."""
        # Rows of a run the run query did not return are dropped, as the dict path did.
        while self._next is not None and self._next[0] < queue_index:
            self._next = next(self._groups, None)
        if self._next is None or self._next[0] != queue_index:
            return []
        found, self._next = self._next[1], next(self._groups, None)
        return found


def _trial(row: Any) -> dict[str, Any]:
    trial = {f: _out(getattr(row, f)) for f in _TRIAL_FIELDS}
    trial["returns"] = (
        None if row.returns is None else base64.b64encode(row.returns).decode("ascii")
    )
    return trial


def _runs(session: Session, queue_id: int) -> Iterator[dict[str, Any]]:
    """The queue's runs in queue order, each with its chosen rows and trials."""
    of_queue = TrainingRun.queue_id == queue_id
    chosen_columns = (*CHOSEN_COLUMNS, "rules_version")
    # The chosen rows and trials are read in the runs' order, beside the runs (a merge): each
    # run's are the next ones, so none waits in memory for its run.
    chosen = _PerRun(
        _stream(
            session,
            select(TrainingRun.queue_index, *(getattr(ChosenResult, c) for c in chosen_columns))
            .join(TrainingRun, TrainingRun.id == ChosenResult.run_id)
            .where(of_queue)
            .order_by(TrainingRun.queue_index, ChosenResult.id),
        ),
        lambda row: {c: _out(getattr(row, c)) for c in chosen_columns},
    )
    trials = _PerRun(
        _stream(
            session,
            select(
                TrainingRun.queue_index,
                RunTrial.returns,
                *(getattr(RunTrial, f) for f in _TRIAL_FIELDS),
            )
            .join(TrainingRun, TrainingRun.id == RunTrial.run_id)
            .where(of_queue)
            .order_by(TrainingRun.queue_index, RunTrial.id),
        ),
        _trial,
    )
    names = ("id", *_RUN_FIELDS)
    for values in _stream(
        session,
        select(*(getattr(TrainingRun, f) for f in names))
        .where(of_queue)
        .order_by(TrainingRun.queue_index),
    ):
        run = {n: _out(v) for n, v in zip(names, values, strict=True) if v is not None}
        for key, rows in (("chosen", chosen), ("trials", trials)):
            if found := rows.take(run["queue_index"]):
                run[key] = found
        yield run


def _bests(session: Session, queue_id: int) -> Iterator[dict[str, Any]]:
    """The best-list places that refer to the queue's runs, by list and rank."""
    for row in _stream(
        session,
        select(TrainingRun.run_uuid, *(getattr(RegimeBestModel, f) for f in _BEST_FIELDS))
        .join(TrainingRun, TrainingRun.id == RegimeBestModel.run_id)
        .where(TrainingRun.queue_id == queue_id)
        .order_by(RegimeBestModel.symbol, RegimeBestModel.regime, RegimeBestModel.rank),
    ):
        entry = {f: _out(getattr(row, f)) for f in _BEST_FIELDS}
        entry["run_uuid"] = row.run_uuid
        yield entry


def _stream(session: Session, statement: Any) -> Any:
    """The statement's rows as plain tuples, fetched from the database a chunk at a time."""
    return session.execute(statement.execution_options(yield_per=_CHUNK))


def _need(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise StorageError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise StorageError(f"{where}: {key!r} has the wrong type {type(value).__name__}")
    return value


def restore_snapshot(session: Session, snapshot: Mapping[str, Any]) -> QueueInfo:
    """Recreate a queue from :func:`queue_snapshot` output in a database that lacks it.

    Ids are new; uuids are kept. Regime definitions missing by name are added (existing
    ones are left as they are). Best-list places are restored for the ``(symbol, regime)``
    lists the database does not have yet; lists it already has are left alone (merging
    them is selection's job, when the next run is applied).

    Returns
    -------
    QueueInfo
        The restored queue (``paused`` if it was running).

    Raises
    ------
    StorageError
        If the snapshot is malformed or of another format or version, or the database
        already has this queue (same ``queue_uuid``) or one of its runs.
    """
    where = "queue snapshot"
    if not isinstance(snapshot, Mapping):
        raise StorageError(f"{where}: expected a mapping, got {type(snapshot).__name__}")
    if snapshot.get("format") != SNAPSHOT_FORMAT:
        raise StorageError(
            f"{where}: format is {quote_input(snapshot.get('format'))}, expected "
            f"{SNAPSHOT_FORMAT!r}"
        )
    version = snapshot.get("version")
    if version not in READABLE_VERSIONS:
        raise StorageError(
            f"{where}: version {quote_input(version)} is not supported (this forexgrid reads "
            "versions "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    q = _need(snapshot, "queue", Mapping, where)
    runs = _need(snapshot, "runs", list, where)
    uuid = _need(q, "queue_uuid", str, f"{where} queue")
    existing = session.scalar(select(TrainingQueue.id).where(TrainingQueue.queue_uuid == uuid))
    if existing is not None:
        raise StorageError(
            f"{where}: queue {uuid} already exists in this database (id {existing}); restore "
            "into an empty database, or keep using the existing queue"
        )
    run_uuids = [_need(r, "run_uuid", str, f"{where} run") for r in runs]
    clash = session.scalar(select(TrainingRun.id).where(TrainingRun.run_uuid.in_(run_uuids)))
    if run_uuids and clash is not None:
        raise StorageError(f"{where}: run {clash} of this database has a uuid of the snapshot")

    was_running = q.get("status") == "running"
    values = {f: _in(f, q.get(f), f"{where} queue") for f in _QUEUE_FIELDS}
    values.update(
        grid_json=_need(q, "grid", Mapping, f"{where} queue"),
        settings_json=_need(q, "settings", Mapping, f"{where} queue"),
        requested_action=None,
    )
    if was_running:
        values.update(status="paused", owner=None)
    values["created_at"] = values.get("created_at") or utcnow()
    values["updated_at"] = values.get("updated_at") or values["created_at"]
    queue = TrainingQueue(**values)
    session.add(queue)
    session.flush()

    ids: dict[str, int] = {}
    for data in runs:
        run_values = {f: _in(f, data.get(f), f"{where} run") for f in _RUN_FIELDS}
        if run_values["status"] == "running":
            run_values.update(status="pending", started_at=None)
        row = TrainingRun(queue_id=queue.id, **run_values)
        session.add(row)
        session.flush()
        ids[row.run_uuid] = row.id
        columns = (*CHOSEN_COLUMNS, "rules_version")
        chosen_rows = [
            {"run_id": row.id, **{c: _in(c, ch.get(c), f"{where} chosen") for c in columns}}
            for ch in data.get("chosen") or ()
        ]
        if chosen_rows:
            session.execute(insert(ChosenResult), chosen_rows)
        _restore_trials(session, row.id, row.symbol, data.get("trials") or (), where)

    present = {
        tuple(r)
        for r in session.execute(
            select(
                RegimeBestModel.symbol,
                RegimeBestModel.regime,
                RegimeBestModel.validation_start,
                RegimeBestModel.validation_end,
            )
        )
    }
    best_rows, skipped = [], set()
    for entry in snapshot.get("bests") or ():
        key = tuple(
            _in(f, entry.get(f), f"{where} best")
            for f in ("symbol", "regime", "validation_start", "validation_end")
        )
        if key in present:
            skipped.add(key)
            continue
        if entry.get("run_uuid") not in ids:
            raise StorageError(
                f"{where}: best entry {key} refers to run "
                f"{quote_input(entry.get('run_uuid'))}, which the snapshot lacks"
            )
        best_rows.append(
            {
                "run_id": ids[entry["run_uuid"]],
                **{f: _in(f, entry.get(f), f"{where} best") for f in _BEST_FIELDS},
            }
        )
    if best_rows:
        session.execute(insert(RegimeBestModel), best_rows)
    for key in sorted(skipped, key=str):
        logger.warning(
            "restore: best list %s %s (window %s..%s) already present; its snapshot entries "
            "skipped",
            *key,
        )

    names = set(session.scalars(select(RegimeDefinition.name)))
    now = utcnow()
    for data in snapshot.get("regimes") or ():
        try:
            regime = Regime(
                data["name"], data["rules"], data.get("description", ""), data.get("active", True)
            )
        except (KeyError, TypeError, ForexgridError) as exc:
            raise StorageError(f"{where}: invalid regime {quote_input(data)}: {exc}") from exc
        if regime.name in names:
            continue
        session.add(
            RegimeDefinition(
                name=regime.name,
                description=regime.description,
                rules_json=dict(regime.rules),
                active=regime.active,
                is_default=bool(data.get("is_default", False)),
                created_at=now,
                updated_at=now,
            )
        )
        names.add(regime.name)
    session.flush()
    logger.info("queue %s restored as id %d (%d runs)", uuid, queue.id, len(runs))
    return update_counts(session, queue.id)


def _restore_trials(session: Session, run_id: int, symbol: str, trials: Any, where: str) -> None:
    """Store a restored run's trials and add them to their scopes' statistics."""
    for data in trials:
        values = {f: _in(f, data.get(f), f"{where} trials") for f in _TRIAL_FIELDS}
        try:
            key = ScopeKey(
                symbol,
                str(values["regime"]),
                str(values["rules_version"]),
                values["validation_start"],
                values["validation_end"],
            )
            n_days, n_combinations = int(values["n_days"]), int(values["n_combinations"])
            blob = data.get("returns")
            returns = None if blob is None else base64.b64decode(blob, validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{where}: invalid trials {quote_input(values)}: {exc}") from exc
        if values["status"] != SCORED or returns is None:
            record_not_scored(session, run_id, key, n_days, n_combinations, values["status"])
            continue
        daily = decode_returns(returns, n_days, n_combinations, f"{where} run {run_id} trials")
        (before,) = load_scope_stats(session, [key], n_days).values()
        record_trials(session, run_id, {key: daily}, {key: before.add(daily)})
