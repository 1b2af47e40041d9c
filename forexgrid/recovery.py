"""Crash recovery: find queues whose runner died, recommend what to do, optionally resume.

A queue is *crashed* when it is ``running`` but its heartbeat is older than
``recovery.detect_crash_after_minutes`` (a live runner refreshes it several times per window).
Marking it crashed puts its in-flight runs back to pending, so resuming trains each of them
again from the start; completed runs are never redone. With
``recovery.auto_resume_on_crash`` the crashed queues are set to ``paused`` at once, ready for
``forexgrid resume ID``, and the report says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from forexgrid import storage
from forexgrid._atomic import remove_temp_files
from forexgrid.storage.artifacts import ModelFileManager, ReconcileReport
from forexgrid.storage.tables import utcnow

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "CrashedQueue",
    "detect_crashed_queues",
    "recommendation",
    "reconcile_model_files",
    "recover",
]

logger = logging.getLogger(__name__)

# Checkpoint temp files younger than this may belong to a live runner's write in progress.
_TEMP_GRACE_SECONDS = 60.0


def recommendation(progress: float) -> str:
    """The user guide's advice for a crashed queue, by the share of it already done (0..1)."""
    if progress < 0.10:
        return "Consider restarting from scratch"
    if progress <= 0.50:
        return "Resume to save partial progress"
    return "Resume to complete remaining work"


@dataclass(frozen=True)
class CrashedQueue:
    """A crashed queue as the recovery dialog shows it."""

    queue: storage.records.QueueInfo
    auto_resumed: bool = False

    @property
    def progress(self) -> float:
        """Share of the configurations finished (completed or failed), 0..1."""
        q = self.queue
        return (q.completed_count + q.failed_count) / q.total_configs if q.total_configs else 1.0

    @property
    def remaining(self) -> int:
        q = self.queue
        return q.total_configs - q.completed_count - q.failed_count

    @property
    def recommendation(self) -> str:
        return recommendation(self.progress)

    def describe(self) -> str:
        q = self.queue
        line = (
            f"Queue {q.id} '{q.queue_name}': {self.progress:.0%} done, {self.remaining} "
            f"configurations remaining. {self.recommendation}"
        )
        if self.auto_resumed:
            line += f" (auto-resume: marked paused; continue with 'forexgrid resume {q.id}')"
        return line


def detect_crashed_queues(
    settings: Settings, *, now: datetime | None = None
) -> list[storage.records.QueueInfo]:
    """Mark running queues crashed (runner gone from this machine, or heartbeat stale) and
    return every crashed queue. Each newly marked queue is logged once, with its reason, by
    :func:`forexgrid.storage.mark_crashed_queues`."""
    with storage.session_scope(settings) as session:
        storage.queue_control.mark_crashed_queues(
            session, settings.recovery.detect_crash_after_minutes, now=now
        )
        crashed = [
            q for q in storage.queues.get_all_training_queues(session) if q.status == "crashed"
        ]
    return crashed


def recover(settings: Settings, *, now: datetime | None = None) -> list[CrashedQueue]:
    """Detect crashed queues, clean up after them and, if configured, mark them paused.

    Also removes temporary checkpoint files a killed runner left behind.

    Returns
    -------
    list of CrashedQueue
        Every crashed queue, with its progress, remaining count and recommendation.
    """
    crashed = detect_crashed_queues(settings, now=now)
    if settings.checkpoints_path.is_dir():
        remove_temp_files(
            settings.checkpoints_path,
            target_prefix="queue_",
            older_than_seconds=_TEMP_GRACE_SECONDS,
            now=now.timestamp() if now is not None else None,
        )
    if not settings.recovery.auto_resume_on_crash:
        return [CrashedQueue(q) for q in crashed]
    resumed = []
    with storage.session_scope(settings) as session:
        for queue in crashed:
            paused = storage.queue_control.set_queue_status(
                session, queue.id, "paused", expected=("crashed",)
            )
            logger.info("queue %s: auto-resume on crash: marked paused", queue.id)
            resumed.append(CrashedQueue(paused, auto_resumed=True))
    return resumed


def reconcile_model_files(
    settings: Settings, *, own_queue: int | None = None, verify_hashes: bool = False
) -> ReconcileReport:
    """Make the model files agree with the database, without touching a live runner's.

    Removed: model files no run references (a model pushed out of every list whose file a
    killed runner did not delete yet) and temporary or pending files of writes that never
    committed, but only those of queues with no live runner (fresh heartbeat), and
    temporaries only once older than the crash window (``own_queue``, the caller's claimed
    queue, is exempt from that wait: nobody else writes for it). A recorded file found
    still pending (a kill between recording a run and renaming its file) is promoted after
    it verifies. Runs whose kept model file is missing are reported and logged.
    """
    window = timedelta(minutes=settings.recovery.detect_crash_after_minutes)
    with storage.session_scope(settings) as session:
        referenced = storage.runs.referenced_model_files(
            session, kept_only=settings.model_management.delete_non_best_models
        )
        live = storage.runs.live_run_uuids(session, utcnow() - window, except_queue=own_queue)
        own = storage.runs.queue_run_uuids(session, own_queue) if own_queue is not None else set()
    report = ModelFileManager.from_settings(settings).reconcile(
        referenced,
        verify_hashes=verify_hashes,
        protected=live,
        expendable=own,
        temp_grace_seconds=window.total_seconds(),
    )
    if report.removed:
        logger.info("removed %d unreferenced model files", len(report.removed))
    for path in report.missing:
        logger.warning("a kept model's file is missing: %s", path)
    return report
