"""Queue queries: create a queue from a grid, read it, claim it, heartbeat, recount.

Pause/cancel requests, status changes, finishing and crash marking are in
:mod:`forexgrid.storage.queue_control`.

Every function takes an open session first (see :func:`forexgrid.storage.session_scope`) and
runs inside the caller's transaction; nothing commits on its own. Status transitions that
several processes may attempt at once are conditional ``UPDATE ... WHERE status IN (...)``
statements whose row count is checked, so exactly one process wins.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from forexgrid._process import RunnerIdentity, this_process
from forexgrid.exceptions import (
    ConfigError,
    DataError,
    ForexgridError,
    LostOwnershipError,
    StorageError,
)
from forexgrid.grid import DEFAULT_MAX_GRID_SIZE, GridSpec, TrainingConfig, config_hasher
from forexgrid.storage._common import chunks, lock_for_claims, queue_row, reset_running
from forexgrid.storage.records import QueueInfo, grid_to_json
from forexgrid.storage.tables import (
    TrainingQueue,
    TrainingRun,
    utcnow,
)

__all__ = [
    "CLAIMABLE_STATUSES",
    "FINAL_STATUSES",
    "NOTHING_TO_TRAIN",
    "RESULT_SETTINGS_SECTIONS",
    "claim_queue",
    "create_queue",
    "default_owner",
    "fence",
    "get_all_training_queues",
    "get_queue",
    "heartbeat",
    "settings_of_queue",
    "update_counts",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Configurations hashed, looked up and inserted per batch by :func:`create_queue`.
CREATE_CHUNK = 2000

#: Statuses a runner may claim (start or resume) a queue from.
CLAIMABLE_STATUSES: tuple[str, ...] = ("pending", "paused", "crashed")
#: Statuses after which a queue never runs again.
FINAL_STATUSES: tuple[str, ...] = ("completed", "cancelled", "failed")
#: The user guide's text for a grid that leaves nothing to train.
NOTHING_TO_TRAIN = "No configurations to train after filtering"
#: Settings sections stored with a queue (those that change what a run computes).
RESULT_SETTINGS_SECTIONS: tuple[str, ...] = (
    "features",
    "evaluation",
    "inference_grid",
    "regimes",
    "selection",
    "model_management",
)


def default_owner() -> str:
    """``host:pid`` of this process, the owner a runner claims queues as."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _settings_subset(settings: Any) -> dict[str, Any]:
    if settings is None:
        return {}
    out: dict[str, Any] = {}
    for name in RESULT_SETTINGS_SECTIONS:
        section = getattr(settings, name, None)
        if section is None:
            raise ConfigError(f"create_queue: settings have no '{name}' section")
        out[name] = section.model_dump(mode="json")
    execution = getattr(settings, "execution", None)
    if execution is not None:
        out["execution"] = {"seed": execution.seed}
        if execution.backend == "papermill":
            # A batch of notebooks resumes as one (`forexgrid resume`), with its template and
            # output folder, whatever the configuration file says then (docs/batch.md).
            out["execution"].update(
                backend="papermill",
                notebook=None
                if execution.notebook is None
                else str(settings.resolve_path(execution.notebook)),
                output_dir=str(settings.resolve_path(execution.output_dir)),
            )
    return out


def settings_of_queue(
    settings: Any, stored: Mapping[str, Any], *, except_sections: tuple[str, ...] = ()
) -> tuple[Any, list[str]]:
    """``settings`` with the sections a queue stored (:data:`RESULT_SETTINGS_SECTIONS` and
    the seed) put back, but ``except_sections``; also the names of those that differed.

    The inverse of what :func:`create_queue` stores: resuming a queue must compute its
    remaining configurations exactly as its first ones, whatever the configuration file
    says now.

    Raises
    ------
    ConfigError
        A stored section is no longer valid (written by an older forexgrid).
    """
    updates = {}
    differ = []
    for name, values in stored.items():
        if name in except_sections or not hasattr(settings, name):
            continue
        section = getattr(settings, name)
        current = section.model_dump(mode="json")
        if {**current, **values} == current:
            continue
        try:
            updates[name] = type(section).model_validate({**section.model_dump(), **values})
        except ValueError as err:
            raise ConfigError(
                f"the stored '{name}' settings of this queue are no longer valid: {err}"
            ) from err
        differ.append(name)
    return settings.model_copy(update=updates), differ


def _default_name(spec: GridSpec) -> str:
    name = " ".join(
        [
            "+".join(spec.model_types),
            "+".join(spec.symbols),
            "+".join(spec.timeframes),
            f"({len(spec)} configs)",
        ]
    )
    return name if len(name) <= 200 else name[:197] + "..."


def _completed_among(session: Session, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(sorted(set(hashes))):
        found.update(
            session.scalars(
                select(TrainingRun.config_hash)
                .where(TrainingRun.status == "completed", TrainingRun.config_hash.in_(part))
                .distinct()
            )
        )
    return found


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def create_queue(
    session: Session,
    spec: GridSpec,
    *,
    name: str | None = None,
    skip_trained: bool = True,
    settings: Any = None,
    fingerprints: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    max_grid_size: int | None = None,
    chunk_size: int = CREATE_CHUNK,
) -> QueueInfo:
    """Create a pending queue with one pending run per configuration of the grid.

    The grid's size is checked first, from its lists alone. The configurations are then
    built, hashed, looked up (``skip_trained``) and inserted ``chunk_size`` at a time, so
    memory does not grow with the grid.

    Parameters
    ----------
    session
        An open session.
    spec
        The grid; its configurations become runs with ``queue_index`` 0..n-1 in
        :meth:`~forexgrid.grid.GridSpec.expand` order.
    name
        The queue's name; defaults to the grid's model types, symbols and timeframes.
    skip_trained
        Leave out configurations whose hash already has a completed run.
    settings
        Loaded settings: hashed into each configuration's identity (features, evaluation
        windows) and stored with the queue (the sections that change results).
    fingerprints
        ``{(symbol, timeframe): data_fingerprint(bars)}``; when given, each hash includes
        the fingerprint of its data (new data means a new hash).
    max_grid_size
        The most configurations the grid may have; default ``settings.execution.max_grid_size``,
        or :data:`~forexgrid.grid.DEFAULT_MAX_GRID_SIZE` without settings.
    chunk_size
        Configurations hashed, looked up and inserted per batch.

    Returns
    -------
    QueueInfo
        With ``total`` (configurations queued) and ``skipped`` (already trained).

    Raises
    ------
    GridSizeError
        If the grid has more than ``max_grid_size`` configurations (nothing is written).
    ForexgridError
        ``"No configurations to train after filtering ..."`` when every configuration is
        already trained (nothing is written).
    DataError
        If ``fingerprints`` lacks a (symbol, timeframe) of the grid.
    ConfigError
        If ``spec`` is not a GridSpec, ``name`` is empty or longer than 200 characters, or
        ``chunk_size`` is not an integer >= 1.
    """
    if not isinstance(spec, GridSpec):
        raise ConfigError(f"create_queue: expected a GridSpec, got {type(spec).__name__}")
    if max_grid_size is None:
        execution = getattr(settings, "execution", None)
        max_grid_size = getattr(execution, "max_grid_size", DEFAULT_MAX_GRID_SIZE)
    size = spec.check_size(max_grid_size)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"create_queue: chunk_size must be an integer >= 1, got {chunk_size!r}")
    if name is None:
        name = _default_name(spec)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ConfigError(f"queue name: expected 1 to 200 characters, got {name!r}")
    # Per (symbol, timeframe), computed once: its data fingerprint and the hash function
    # bound to the settings and that fingerprint.
    fingerprint_of: dict[tuple[str, str], dict[str, Any] | None] = {}
    hash_of: dict[tuple[str, str], Callable[[TrainingConfig], str]] = {}
    for key in spec.symbol_timeframes():
        fingerprint = None
        if fingerprints is not None:
            fingerprint = fingerprints.get(key)
            if fingerprint is None:
                known = ", ".join(f"{s} {t}" for s, t in fingerprints) or "none"
                raise DataError(
                    f"create_queue: no data fingerprint for {key[0]} {key[1]} "
                    f"(fingerprints given for: {known})"
                )
            fingerprint = dict(fingerprint)
        fingerprint_of[key] = fingerprint
        hash_of[key] = config_hasher(settings, fingerprint)
    now = utcnow()
    queue: TrainingQueue | None = None
    queued = skipped = 0
    for batch in _batches(spec, chunk_size):
        hashes = [hash_of[tc.symbol, tc.timeframe](tc) for tc in batch]
        trained = _completed_among(session, hashes) if skip_trained else set()
        rows = []
        for tc, digest in zip(batch, hashes, strict=True):
            if digest in trained:
                skipped += 1
                continue
            fingerprint = fingerprint_of[tc.symbol, tc.timeframe]
            rows.append(_pending_run(tc, digest, queued, fingerprint, now))
            queued += 1
        if not rows:
            continue
        if queue is None:
            # Written with the first run to queue, so that a grid with nothing left to train
            # leaves no trace in the caller's transaction.
            queue = _new_queue(session, spec, name, settings, now)
        session.execute(insert(TrainingRun), [{**row, "queue_id": queue.id} for row in rows])
    if queue is None:
        raise ForexgridError(
            f"{NOTHING_TO_TRAIN}: all {size} configurations of the grid "
            f"({spec.describe()}) are already trained; pass skip_trained=False (uncheck "
            "'Skip already-trained configurations') or change the grid"
        )
    queue.total_configs, queue.skipped_count = queued, skipped
    session.flush()
    logger.info(
        "queue %d %r created: %d configurations, %d already trained skipped",
        queue.id,
        name,
        queued,
        skipped,
    )
    return QueueInfo.from_row(queue)


def _pending_run(
    tc: TrainingConfig,
    digest: str,
    index: int,
    fingerprint: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``training_runs`` row of a configuration entering a queue (without ``queue_id``)."""
    return {
        "run_uuid": str(uuid.uuid4()),
        "queue_index": index,
        "config_hash": digest,
        "config_json": tc.to_dict(),
        "status": "pending",
        "model_type": tc.model_type,
        "symbol": tc.symbol,
        "timeframe": tc.timeframe,
        "days_history": tc.days_history,
        "horizon": tc.horizon,
        "encoder": tc.encoder,
        "is_model_kept": False,
        "best_regimes": [],
        "data_fingerprint": fingerprint,
        "created_at": now,
    }


def _new_queue(
    session: Session, spec: GridSpec, name: str, settings: Any, now: datetime
) -> TrainingQueue:
    """Insert the pending queue row (its counts are set once its runs are written)."""
    queue = TrainingQueue(
        queue_uuid=str(uuid.uuid4()),
        queue_name=name,
        status="pending",
        grid_json=grid_to_json(spec),
        settings_json=_settings_subset(settings),
        total_configs=0,
        skipped_count=0,
        current_index=0,
        completed_count=0,
        failed_count=0,
        kept_count=0,
        deleted_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(queue)
    session.flush()
    return queue


def get_queue(session: Session, queue_id: int) -> QueueInfo:
    """Return one queue.

    Raises
    ------
    StorageError
        ``"no queue with id N"``.
    """
    return QueueInfo.from_row(queue_row(session, queue_id))


def get_all_training_queues(session: Session) -> list[QueueInfo]:
    """Return every queue, oldest first (by id)."""
    rows = session.scalars(
        select(TrainingQueue).order_by(TrainingQueue.id).execution_options(populate_existing=True)
    )
    return [QueueInfo.from_row(row) for row in rows]


def _check_owner(owner: Any) -> str:
    if not isinstance(owner, str) or not owner.strip() or len(owner) > 200:
        raise StorageError(
            f"queue owner: expected 'host:pid' (1 to 200 characters), got {owner!r}"
        )
    return owner


def claim_queue(
    session: Session,
    queue_id: int,
    owner: str,
    max_parallel_queues: int = 1,
    *,
    runner: RunnerIdentity | None = None,
) -> QueueInfo:
    """Atomically start (or resume) a queue: pending, paused or crashed -> running.

    Claims are serialised across processes (SQLite: the transaction's write lock;
    PostgreSQL: an advisory lock), and ``max_parallel_queues`` is checked in the same
    transaction, so two claimants never both win. Runs left ``running`` by an earlier,
    dead runner go back to ``pending`` (nobody else can own them once the claim holds).

    Every claim draws a new ``claim_token``: the fencing token that every later write of
    this runner checks (:func:`fence`, :func:`heartbeat`), so a runner that lost the queue
    meanwhile cannot write to it.

    Parameters
    ----------
    session
        An open session; use a fresh one (``with session_scope() as s: claim_queue(s, ...)``)
        and commit promptly.
    queue_id
        The queue.
    owner
        Who claims it, ``host:pid`` (:func:`default_owner`).
    max_parallel_queues
        ``queue.max_parallel_queues``: how many queues may run at once.
    runner
        The claiming process (default: this one), recorded so that recovery on the same
        machine can tell at once whether it still runs.

    Returns
    -------
    QueueInfo
        The queue, now running under ``owner``, with its new ``claim_token``.

    Raises
    ------
    StorageError
        ``"no queue with id N"``; ``"queue N is already running (owner host:pid)"``;
        a finished queue (completed, cancelled, failed); or ``max_parallel_queues`` running
        queues already (the message lists them).
    ConfigError
        If ``max_parallel_queues`` is not an integer >= 1.
    """
    owner = _check_owner(owner)
    if (
        isinstance(max_parallel_queues, bool)
        or not isinstance(max_parallel_queues, (int, np.integer))
        or max_parallel_queues < 1
    ):
        raise ConfigError(
            f"queue.max_parallel_queues: must be an integer >= 1, got {max_parallel_queues!r}"
        )
    runner = runner or this_process()
    lock_for_claims(session)
    row = queue_row(session, queue_id)
    if row.status == "running":
        raise StorageError(f"queue {row.id} is already running (owner {row.owner or 'unknown'})")
    if row.status not in CLAIMABLE_STATUSES:
        raise StorageError(
            f"queue {row.id} is {row.status}; only a pending, paused or crashed queue can be "
            "started or resumed"
        )
    others = session.execute(
        select(TrainingQueue.id, TrainingQueue.queue_name, TrainingQueue.owner)
        .where(TrainingQueue.status == "running", TrainingQueue.id != row.id)
        .order_by(TrainingQueue.id)
    ).all()
    if len(others) >= max_parallel_queues:
        listed = ", ".join(f"queue {i} {n!r} (owner {o or 'unknown'})" for i, n, o in others)
        raise StorageError(
            f"cannot start queue {row.id}: {len(others)} queue(s) already running and "
            f"queue.max_parallel_queues is {max_parallel_queues}: {listed}; wait, pause one, "
            "or raise queue.max_parallel_queues"
        )
    now = utcnow()
    result = session.execute(
        update(TrainingQueue)
        .where(TrainingQueue.id == row.id, TrainingQueue.status.in_(CLAIMABLE_STATUSES))
        .values(
            status="running",
            owner=owner,
            claim_token=str(uuid.uuid4()),
            runner_host=runner.host[:255],
            runner_host_id=runner.host_id[:400],
            runner_pid=runner.pid,
            runner_process_start=runner.start,
            started_at=func.coalesce(TrainingQueue.started_at, now),
            heartbeat_at=now,
            updated_at=now,
            requested_action=None,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        # Unreachable while the claim lock holds; kept as the last line of defence.
        fresh = queue_row(session, row.id)
        raise StorageError(
            f"queue {row.id} is already {fresh.status} (owner {fresh.owner or 'unknown'})"
        )
    reset = reset_running(session, row.id)
    if reset:
        logger.info("queue %d: %d interrupted run(s) back to pending", row.id, reset)
    logger.info("queue %d claimed by %s", row.id, owner)
    return update_counts(session, row.id)


def _owned(queue_id: int, token: str) -> Any:
    return (
        (TrainingQueue.id == queue_id)
        & (TrainingQueue.status == "running")
        & (TrainingQueue.claim_token == token)
    )


def _lost(session: Session, queue_id: int, owner: str) -> LostOwnershipError:
    row = queue_row(session, queue_id)
    if row.status == "running":
        now = f"it is running under {row.owner or 'another runner'}"
    else:
        now = f"it is {row.status}"
    return LostOwnershipError(
        f"queue {row.id}: this runner ({owner}) no longer owns it ({now}; it was declared "
        "crashed or finished by another process meanwhile); stopping without writing "
        "anything more"
    )


def fence(session: Session, queue_id: int, token: str, owner: str = "") -> None:
    """Check, for the rest of the transaction, that the runner holding ``token`` owns the queue.

    Call it first in every transaction a runner writes in. It updates the queue row where
    ``status = 'running'`` and ``claim_token = token``: the row lock it takes (PostgreSQL)
    or the write lock the transaction holds (SQLite) keeps anyone from taking the queue
    over until the transaction ends, so whatever the transaction writes was written by the
    owner.

    Raises
    ------
    LostOwnershipError
        The queue was claimed again (a new token), or is no longer running.
    """
    result = session.execute(
        update(TrainingQueue)
        .where(_owned(queue_id, token))
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _lost(session, queue_id, owner or "unknown")


def heartbeat(
    session: Session, queue_id: int, owner: str, *, token: str | None = None
) -> datetime:
    """Record that the runner ``owner`` is alive and still owns the running queue.

    With ``token`` (the claim's fencing token) ownership is the token; without, the owner
    name (a runner that reclaimed its own queue has the same name: prefer the token).

    Returns
    -------
    datetime
        The heartbeat time (UTC).

    Raises
    ------
    LostOwnershipError
        If the queue is not running or is owned by someone else (e.g. it was declared
        crashed and claimed again): the runner must stop.
    StorageError
        If the queue does not exist.
    """
    owner = _check_owner(owner)
    now = utcnow()
    condition = (
        _owned(queue_id, token)
        if token is not None
        else (TrainingQueue.id == queue_id)
        & (TrainingQueue.status == "running")
        & (TrainingQueue.owner == owner)
    )
    result = session.execute(
        update(TrainingQueue)
        .where(condition)
        .values(heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _lost(session, queue_id, owner)
    return now


def update_counts(
    session: Session, queue_id: int, *, current_index: int | None = None
) -> QueueInfo:
    """Recompute the queue's counts from its runs (idempotent, crash-safe).

    ``completed_count``/``failed_count`` count runs by status, ``kept_count`` completed runs
    whose model is kept, ``deleted_count`` completed runs whose model is not (never kept, or
    pushed out of every best list since). ``current_index`` is the given value, else the
    lowest ``queue_index`` not finished (``total_configs`` when all are).

    Raises
    ------
    StorageError
        Unknown queue.
    """
    row = queue_row(session, queue_id)
    completed = TrainingRun.status == "completed"
    counts = session.execute(
        select(
            func.count().filter(completed),
            func.count().filter(TrainingRun.status == "failed"),
            func.count().filter(completed, TrainingRun.is_model_kept.is_(True)),
            func.min(
                case((TrainingRun.status.in_(("pending", "running")), TrainingRun.queue_index))
            ),
        ).where(TrainingRun.queue_id == row.id)
    ).one()
    n_completed, n_failed, n_kept, first_open = (int(c) if c is not None else None for c in counts)
    if current_index is None:
        current_index = row.total_configs if first_open is None else first_open
    session.execute(
        update(TrainingQueue)
        .where(TrainingQueue.id == row.id)
        .values(
            completed_count=n_completed,
            failed_count=n_failed,
            kept_count=n_kept,
            deleted_count=n_completed - n_kept,
            current_index=int(current_index),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return get_queue(session, row.id)
