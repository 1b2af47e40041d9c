"""Queue control: pause/cancel requests from any process, status changes, finishing a
queue, and marking queues whose runner stopped heart-beating as crashed.

Every function takes an open session first and runs inside the caller's transaction.
Changes that another process may race are conditional updates whose row count is checked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from forexgrid._process import runner_state
from forexgrid.exceptions import ConfigError, StorageError
from forexgrid.storage._common import queue_row, reset_running
from forexgrid.storage.queues import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    fence,
    get_queue,
    update_counts,
)
from forexgrid.storage.records import QueueInfo
from forexgrid.storage.tables import (
    QUEUE_ACTIONS,
    QUEUE_STATUSES,
    TrainingQueue,
    TrainingRun,
    utcnow,
)

__all__ = [
    "finish_queue",
    "mark_crashed_queues",
    "request_action",
    "set_queue_status",
    "take_requested_action",
]

logger = logging.getLogger(__name__)


def request_action(session: Session, queue_id: int, action: str) -> QueueInfo:
    """Ask for a queue to be paused or cancelled, from any process.

    A running queue gets the request on its row; its runner honours it after the
    configurations in flight finish. A queue nobody runs changes at once: pending -> paused
    (pause); pending, paused or crashed -> cancelled (cancel). Repeating a request is
    harmless; cancel replaces a pending pause request.

    Parameters
    ----------
    action
        ``"pause"`` or ``"cancel"``.

    Returns
    -------
    QueueInfo

    Raises
    ------
    StorageError
        Unknown queue; an action other than pause/cancel; pausing a queue that is
        paused-by-crash or finished; cancelling a finished queue.
    """
    if action not in QUEUE_ACTIONS:
        raise StorageError(
            f"queue action: expected one of {', '.join(QUEUE_ACTIONS)}, got {action!r}"
        )
    row = queue_row(session, queue_id)
    now = utcnow()
    values: dict[str, Any]
    if row.status == "running":
        if row.requested_action == "cancel" and action == "pause":
            raise StorageError(
                f"queue {row.id}: a cancel request is already pending; it cannot be turned "
                "into a pause"
            )
        values = {"requested_action": action}
    elif action == "pause" and row.status == "pending":
        values = {"status": "paused"}
    elif action == "pause" and row.status == "paused":
        values = {}
    elif action == "cancel" and row.status in CLAIMABLE_STATUSES:
        reset_running(session, row.id)
        values = {"status": "cancelled", "completed_at": now, "requested_action": None}
    elif action == "cancel" and row.status == "cancelled":
        values = {}
    else:
        allowed = (
            "running or pending" if action == "pause" else "running, pending, paused or crashed"
        )
        raise StorageError(
            f"queue {row.id} is {row.status}; only a {allowed} queue can be "
            f"{'paused' if action == 'pause' else 'cancelled'}"
        )
    if values:
        result = session.execute(
            update(TrainingQueue)
            .where(TrainingQueue.id == row.id, TrainingQueue.status == row.status)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            fresh = queue_row(session, row.id)
            raise StorageError(
                f"queue {row.id} changed from {row.status} to {fresh.status} meanwhile; "
                f"{action} not recorded, try again"
            )
        logger.info("queue %d: %s requested (was %s)", row.id, action, row.status)
    return get_queue(session, row.id)


def take_requested_action(session: Session, queue_id: int) -> str | None:
    """Return and clear the queue's pending pause/cancel request (``None`` if there is none).

    The runner calls this between configurations; only one caller gets a given request.
    """
    row = queue_row(session, queue_id)
    action = row.requested_action
    if action is None:
        return None
    result = session.execute(
        update(TrainingQueue)
        .where(TrainingQueue.id == row.id, TrainingQueue.requested_action == action)
        .values(requested_action=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return action if result.rowcount == 1 else None


def _check_status(status: Any, allowed: Iterable[str], what: str) -> str:
    allowed = tuple(allowed)
    if status not in allowed:
        raise StorageError(f"{what}: expected one of {', '.join(allowed)}, got {status!r}")
    return status


def set_queue_status(
    session: Session,
    queue_id: int,
    status: str,
    *,
    expected: Iterable[str] | None = None,
    error: str | None = None,
    token: str | None = None,
) -> QueueInfo:
    """Set a queue's status (not ``running``: use :func:`claim_queue`).

    Parameters
    ----------
    status
        The new status. Leaving ``running`` clears the pause/cancel request; a final status
        (completed, cancelled, failed) sets ``completed_at``.
    expected
        Change only from one of these statuses (a conditional update); otherwise
        StorageError.
    error
        Stored in the queue's ``error`` column (e.g. why it failed or crashed).
    token
        The runner's claim token: change only a running queue that runner still owns.

    Raises
    ------
    LostOwnershipError
        ``token`` is given and the runner no longer owns the queue.
    StorageError
        Unknown queue or status; ``running`` requested; the queue is not in ``expected``.
    """
    settable = [s for s in QUEUE_STATUSES if s != "running"]
    if status == "running":
        raise StorageError(
            "queue status 'running' is set by claim_queue (atomic, with max_parallel_queues)"
        )
    _check_status(status, settable, "queue status")
    row = queue_row(session, queue_id)
    condition = [TrainingQueue.id == row.id]
    if expected is not None:
        expected = tuple(expected)
        for s in expected:
            _check_status(s, QUEUE_STATUSES, "expected queue status")
        condition.append(TrainingQueue.status.in_(expected))
    if token is not None:
        fence(session, row.id, token, row.owner or "")
    now = utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now, "requested_action": None}
    if status in FINAL_STATUSES:
        values["completed_at"] = now
    if error is not None:
        values["error"] = str(error)
    result = session.execute(
        update(TrainingQueue)
        .where(*condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        fresh = queue_row(session, row.id)
        raise StorageError(
            f"queue {row.id} is {fresh.status}, expected {' or '.join(expected or ())}; "
            f"not changed to {status}"
        )
    logger.info("queue %d: %s -> %s", row.id, row.status, status)
    return get_queue(session, row.id)


def finish_queue(
    session: Session,
    queue_id: int,
    status: str = "completed",
    *,
    error: str | None = None,
    token: str | None = None,
) -> QueueInfo:
    """End a queue: completed, cancelled or failed, with fresh counts and ``completed_at``.

    ``token``: as for :func:`set_queue_status`.

    Raises
    ------
    LostOwnershipError
        ``token`` is given and the runner no longer owns the queue.
    StorageError
        Unknown queue or status; the queue is already finished; ``completed`` while runs
        are still pending or running.
    """
    _check_status(status, FINAL_STATUSES, "final queue status")
    row = queue_row(session, queue_id)
    if row.status in FINAL_STATUSES:
        raise StorageError(f"queue {row.id} is already {row.status}")
    if status == "completed":
        open_runs = session.scalar(
            select(func.count()).where(
                TrainingRun.queue_id == row.id, TrainingRun.status.in_(("pending", "running"))
            )
        )
        if open_runs:
            raise StorageError(
                f"queue {row.id} cannot be completed: {open_runs} configuration(s) are still "
                "pending or running"
            )
    update_counts(session, row.id)
    return set_queue_status(
        session, row.id, status, expected=(row.status,), error=error, token=token
    )


def mark_crashed_queues(
    session: Session, stale_after_minutes: float, *, now: datetime | None = None
) -> list[QueueInfo]:
    """Mark running queues whose runner is dead as crashed; their runs go to pending.

    A runner is dead when its process is gone from this machine (it ran here, and no
    process with its id and start time exists: decided at once, see
    :func:`forexgrid._process.runner_state`), or when its last heartbeat (without one, its
    last update) is more than ``stale_after_minutes`` before ``now`` (a runner on another
    machine, or one alive but hung or stopped).

    Parameters
    ----------
    stale_after_minutes
        ``recovery.detect_crash_after_minutes``.
    now
        The current time (tests pass one); defaults to the clock.

    Returns
    -------
    list of QueueInfo
        The queues marked crashed.

    Raises
    ------
    ConfigError
        If ``stale_after_minutes`` is not a positive number.
    """
    if (
        isinstance(stale_after_minutes, bool)
        or not isinstance(stale_after_minutes, (int, float))
        or not stale_after_minutes > 0
    ):
        raise ConfigError(
            "recovery.detect_crash_after_minutes: must be a number > 0, got "
            f"{stale_after_minutes!r}"
        )
    now = now or utcnow()
    cutoff = now - timedelta(minutes=float(stale_after_minutes))
    is_stale = or_(
        TrainingQueue.heartbeat_at < cutoff,
        TrainingQueue.heartbeat_at.is_(None) & (TrainingQueue.updated_at < cutoff),
    )
    running = session.execute(
        select(TrainingQueue).where(TrainingQueue.status == "running").order_by(TrainingQueue.id)
    ).scalars()
    out = []
    for row in list(running):
        token = row.claim_token
        state = runner_state(row.runner_host_id, row.runner_pid, row.runner_process_start)
        if state == "gone":
            condition = TrainingQueue.status == "running"
            error = (
                f"its runner process is gone (host {row.runner_host}, pid {row.runner_pid}, "
                f"owner {row.owner or 'unknown'})"
            )
        else:
            condition = (TrainingQueue.status == "running") & is_stale
            beat = row.heartbeat_at
            when = beat.isoformat(timespec="seconds") if beat else "never"
            error = f"no heartbeat since {when} (owner {row.owner or 'unknown'})"
        # Conditional on the claim it judged: a heartbeat that arrives meanwhile keeps a
        # queue running, and a queue claimed again meanwhile is someone else's.
        if token is not None:
            condition = condition & (TrainingQueue.claim_token == token)
        result = session.execute(
            update(TrainingQueue)
            .where(TrainingQueue.id == row.id, condition)
            .values(status="crashed", error=error, requested_action=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            continue
        reset_running(session, row.id)
        out.append(update_counts(session, row.id))
        logger.warning("queue %d marked crashed: %s", row.id, error)
    return out
