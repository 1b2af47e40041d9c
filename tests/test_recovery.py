"""Crash recovery and fault injection: kill the runner at the worst moments, then resume.

Each fault test runs a real runner process, kills it with SIGKILL (from outside during a
fit, or at a named fault point from inside: after a kept model's file is written under its
pending name but before the database commit, after the commit but before the file gets its
final name, after that but before dropped models' files are deleted, and in the middle of
a checkpoint write), then runs recovery and resumes the queue in this process. Afterwards
every configuration is completed exactly once, no orphan model file remains and every kept
file verifies.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta, timezone

import pytest
from runner_support import (
    FAST_GRID,
    SLOW_GRID,
    assert_consistent,
    make_workspace,
    new_queue,
    queue,
    runs,
    start_child,
    wait_for,
)

from forexgrid import storage
from forexgrid.recovery import recommendation, recover
from forexgrid.runner import run_queue

LATER = datetime.now(timezone.utc) + timedelta(hours=1)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return make_workspace(tmp_path / "ws")


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (0.0, "Consider restarting from scratch"),
        (0.099, "Consider restarting from scratch"),
        (0.10, "Resume to save partial progress"),
        (0.50, "Resume to save partial progress"),
        (0.51, "Resume to complete remaining work"),
        (1.0, "Resume to complete remaining work"),
    ],
)
def test_recommendation_by_progress(progress, text):
    assert recommendation(progress) == text


def _crash(settings, queue_id):
    """Leave the queue as a killed runner would: running, a run in flight, an old heartbeat."""
    with storage.session_scope(settings) as session:
        storage.queues.claim_queue(session, queue_id, "ghost:1", 1)
        (first, *_) = storage.runs.pending_runs(session, queue_id)
        storage.runs.start_run(session, first.id)


def test_a_fresh_heartbeat_is_not_a_crash(workspace):
    _, settings = workspace
    queue_id = new_queue(settings, FAST_GRID)
    _crash(settings, queue_id)
    assert recover(settings) == []
    assert queue(settings, queue_id).status == "running"


def test_a_stale_heartbeat_is_a_crash_and_in_flight_runs_go_back_to_pending(workspace):
    _, settings = workspace
    queue_id = new_queue(settings, FAST_GRID)
    _crash(settings, queue_id)
    (crashed,) = recover(settings, now=LATER)
    assert crashed.queue.id == queue_id and crashed.queue.status == "crashed"
    assert crashed.progress == 0.0 and crashed.remaining == 8
    assert crashed.recommendation == "Consider restarting from scratch"
    assert "0% done, 8 configurations remaining" in crashed.describe()
    assert {r.status for r in runs(settings, queue_id)} == {"pending"}
    final = run_queue(queue_id, settings)  # a crashed queue resumes directly
    assert final.status == "completed"
    assert_consistent(settings, queue_id)


def test_auto_resume_marks_crashed_queues_paused(tmp_path):
    _, settings = make_workspace(tmp_path / "ws", recovery={"auto_resume_on_crash": True})
    queue_id = new_queue(settings, FAST_GRID)
    _crash(settings, queue_id)
    (crashed,) = recover(settings, now=LATER)
    assert crashed.auto_resumed and crashed.queue.status == "paused"
    assert f"forexgrid resume {queue_id}" in crashed.describe()
    assert queue(settings, queue_id).status == "paused"


def _kill_and_resume(config, settings, queue_id, child):
    _, err = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, err
    assert queue(settings, queue_id).status == "running"  # what the dead runner left
    (crashed,) = recover(settings, now=LATER)
    assert crashed.queue.status == "crashed"
    assert (
        not [p for p in settings.checkpoints_path.glob(".*.tmp")]
        if settings.checkpoints_path.exists()
        else True
    )
    final = run_queue(queue_id, settings)
    assert final.status == "completed"
    assert final.completed_count == final.total_configs
    assert_consistent(settings, queue_id)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault", ["model_file_written", "run_committed", "model_file_promoted", "checkpoint_write"]
)
def test_killed_at_a_fault_point_then_recovered(workspace, fault):
    config, settings = workspace
    queue_id = new_queue(settings, FAST_GRID)
    child = start_child(config, settings.workspace, queue_id, fault=fault)
    _kill_and_resume(config, settings, queue_id, child)


@pytest.mark.slow
def test_killed_during_a_fit_then_recovered(workspace):
    config, settings = workspace
    queue_id = new_queue(settings, SLOW_GRID)
    child = start_child(config, settings.workspace, queue_id)
    try:
        wait_for(lambda: any(r.status == "completed" for r in runs(settings, queue_id)))
        wait_for(lambda: any(r.status == "running" for r in runs(settings, queue_id)))
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
    _kill_and_resume(config, settings, queue_id, child)


def test_reconcile_removes_orphans_and_reports_missing_kept_files(workspace):
    from forexgrid.recovery import reconcile_model_files

    _, settings = workspace
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    kept = [r for r in runs(settings, queue_id) if r.is_model_kept]
    assert kept
    orphan = settings.artifacts_path / "model_00000000-0000-0000-0000-000000000000.pkl"
    orphan.write_bytes(b"left by a crash between file and commit")
    (settings.artifacts_path / kept[0].model_file_path).unlink()
    report = reconcile_model_files(settings)
    assert [p.name if hasattr(p, "name") else str(p) for p in report.removed] == [orphan.name]
    assert not orphan.exists()
    assert [str(p) for p in report.missing] == [kept[0].model_file_path]
