"""The queue commands on a queue of many runs read what they show, not every run."""

from __future__ import annotations

import pytest

from forexgrid import storage
from forexgrid.grid import GridSpec


@pytest.fixture
def many_runs(empty_workspace):
    """A running queue of 3,000 ridge configurations whose run #1,001 is being trained."""
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=range(1, 1001),
        horizons=[1, 2, 3],
    )
    with storage.session_scope(empty_workspace.settings) as s:
        q = storage.queues.create_queue(s, spec)
        storage.queues.claim_queue(s, q.id, "host-a:1")
        (run,) = [r for r in storage.runs.pending_runs(s, q.id) if r.queue_index == 1000]
        storage.runs.start_run(s, run.id)
    return q.id, run


def test_status_shows_the_runs_in_flight_without_reading_the_queue(
    many_runs, empty_workspace, cli_for, monkeypatch
):
    queue_id, run = many_runs

    def every_run(*args, **kwargs):
        raise AssertionError("status read every run of the queue")

    monkeypatch.setattr(storage.runs, "queue_runs", every_run)
    result = cli_for(empty_workspace)("status", str(queue_id))
    assert result.exit_code == 0, result.output
    assert "  progress:      0/3000 (0%)" in result.stdout
    assert result.stdout.splitlines()[-1] == f"  training:      #1001 {run.config.label}"
