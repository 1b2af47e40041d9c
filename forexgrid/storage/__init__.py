"""Persistence: the database (queues, runs, results, regimes, bests), model files, checkpoints.

The one place that knows SQLAlchemy. Open a transaction with :func:`session_scope` and pass
the session to the query functions; they return frozen dataclasses or DataFrames::

    from forexgrid.storage import session_scope
    from forexgrid.storage.queues import get_all_training_queues

    with session_scope() as session:
        queues = get_all_training_queues(session)
        for q in queues:
            print(f"{q.id}: {q.queue_name} - {q.status} - {q.current_index}/{q.total_configs}")

See ``docs/storage.md`` for the tables, SQLite vs PostgreSQL, and ``forexgrid db upgrade``.
"""

from __future__ import annotations

# The query modules, by subject (``storage.queues.get_queue``, ``storage.runs.get_run``, ...).
from forexgrid.storage import (
    bests,
    history,
    queue_control,
    queues,
    records,
    regimes_repo,
    runs,
    snapshots,
    trials,
)
from forexgrid.storage.artifacts import ModelFile, ModelFileManager, ReconcileReport
from forexgrid.storage.checkpoints import (
    CHECKPOINT_VERSION,
    cleanup_checkpoints,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from forexgrid.storage.database import (
    UPGRADE_COMMAND,
    Database,
    get_database,
    head_revision,
    session_scope,
)

__all__ = [
    "CHECKPOINT_VERSION",
    "UPGRADE_COMMAND",
    "ModelFile",
    "ModelFileManager",
    "ReconcileReport",
    "cleanup_checkpoints",
    "latest_checkpoint",
    "list_checkpoints",
    "read_checkpoint",
    "write_checkpoint",
    "Database",
    "get_database",
    "head_revision",
    "session_scope",
    "bests",
    "history",
    "queue_control",
    "queues",
    "records",
    "regimes_repo",
    "runs",
    "snapshots",
    "trials",
]
