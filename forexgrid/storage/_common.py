"""Helpers shared by the repository modules (private to the storage package)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from forexgrid.exceptions import StorageError, quote_input
from forexgrid.storage.tables import TrainingQueue, TrainingRun

T = TypeVar("T")

# Rows per IN (...) list: far below every backend's bound-parameter limit.
CHUNK = 500

# pg_advisory_xact_lock key serialising schema creation and queue claims across processes
# (an arbitrary constant: the bytes of "fxgrid" as an integer).
PG_LOCK_KEY = 0x667867726964


# The first key of the two-key advisory locks that serialise one symbol's best lists.
BEST_LISTS_LOCK_SPACE = 0x66786762  # "fxgb"


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (the second key of an advisory lock)."""
    value = zlib.crc32(name.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_id(value: Any, what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise StorageError(f"no {what} with id {quote_input(value)} (expected an integer id)")


def queue_row(session: Session, queue_id: Any) -> TrainingQueue:
    """The queue row, freshly read (never a stale copy from the session's identity map)."""
    qid = check_id(queue_id, "queue")
    row = session.execute(
        select(TrainingQueue)
        .where(TrainingQueue.id == qid)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise StorageError(f"no queue with id {qid}")
    return row


def run_row(session: Session, run_id: Any) -> TrainingRun:
    """The run row, freshly read."""
    rid = check_id(run_id, "run")
    row = session.execute(
        select(TrainingRun).where(TrainingRun.id == rid).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise StorageError(f"no run with id {rid}")
    return row


def reset_running(session: Session, queue_id: int) -> int:
    """Put a queue's running runs back to pending; return how many."""
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.queue_id == queue_id, TrainingRun.status == "running")
        .values(status="pending", started_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def lock_for_claims(session: Session) -> None:
    """Serialise queue claims across processes for the rest of the transaction.

    SQLite transactions already hold the write lock from their start (BEGIN IMMEDIATE, see
    :mod:`forexgrid.storage.database`); PostgreSQL takes a transaction-level advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})


def none_if_nan(value: Any) -> Any:
    """None for NaN/NA/None, the plain Python value otherwise (JSON-safe scalars)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value
