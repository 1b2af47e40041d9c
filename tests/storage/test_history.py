"""Training history: columns, filters, newest first, limit checks."""

from __future__ import annotations

import re

import pytest

from forexgrid.exceptions import ForexgridError, StorageError
from forexgrid.grid import GridSpec
from forexgrid.storage.history import HISTORY_COLUMNS, training_history
from forexgrid.storage.queue_control import finish_queue, request_action
from forexgrid.storage.queues import claim_queue, create_queue, get_all_training_queues
from forexgrid.storage.runs import complete_run, fail_run, queue_runs, running_runs, start_run


@pytest.fixture
def history(session, spec, results_frame, make_chosen):
    """Queue 1 (ridge EURUSD): completed+kept, failed, running, pending. Queue 2 (lasso
    GBPUSD, cancelled): completed, then 3 never trained."""
    q1 = create_queue(session, spec)
    runs = queue_runs(session, q1.id)
    claim_queue(session, q1.id, "host-a:1", 2)
    complete_run(
        session,
        runs[0].id,
        results=results_frame,
        chosen=make_chosen(),
        kept=True,
        best_regimes=["bull_trending", "calm_ranging"],
    )
    fail_run(session, runs[1].id, "boom")
    start_run(session, runs[2].id)
    other = GridSpec(
        model_types=["lasso"],
        symbols=["GBPUSD"],
        timeframes=["1h", "4h"],
        days_history=[30],
        horizons=[1, 6],
    )
    q2 = create_queue(session, other)
    runs2 = queue_runs(session, q2.id)
    claim_queue(session, q2.id, "host-b:2", 2)
    complete_run(session, runs2[0].id, results=results_frame, chosen=make_chosen(), kept=False)
    request_action(session, q2.id, "cancel")
    finish_queue(session, q2.id, "cancelled")
    return runs, runs2


def test_history_columns_and_order(session, history):
    runs, runs2 = history
    table = training_history(session)
    assert list(table.columns) == list(HISTORY_COLUMNS)
    # Newest first: queue 2's runs were created last; within a queue, higher ids first.
    assert table["id"].tolist() == [r.id for r in reversed(runs + runs2)]
    first = table.set_index("id").loc[runs[0].id]
    assert first["uuid"] == runs[0].run_uuid[:8] and len(first["uuid"]) == 8
    assert (first["status"], first["kept"], first["best_regimes"]) == (
        "completed",
        True,
        "bull_trending, calm_ranging",
    )
    assert str(table["created_at"].dtype) == "datetime64[us, UTC]"
    assert table.set_index("id").loc[runs[1].id, "error"] == "boom"


def test_history_has_the_configuration_and_the_all_regimes_sharpe(session, history, spec):
    runs, runs2 = history
    table = training_history(session).set_index("id")
    first = table.loc[runs[0].id]
    config = spec.expand()[0]
    assert (first["timeframe"], first["days_history"], first["horizon"], first["encoder"]) == (
        config.timeframe,
        config.days_history,
        config.horizon,
        config.encoder,
    )
    # fake_chosen: "all" is chosen with validation Sharpe 1.5 and test Sharpe 0.8.
    assert (first["all_val_sharpe"], first["all_test_sharpe"]) == (1.5, 0.8)
    assert table.loc[runs2[0].id, "all_val_sharpe"] == 1.5
    # Not completed: no chosen row, NaN.
    assert (
        table.loc[[runs[1].id, runs[3].id], ["all_val_sharpe", "all_test_sharpe"]]
        .isna()
        .all(axis=None)
    )
    assert str(table["all_test_sharpe"].dtype) == "float64"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"symbols": ["eurusd"]}, ["pending", "running", "failed", "completed"]),
        ({"model_types": "LASSO"}, ["cancelled", "cancelled", "cancelled", "completed"]),
        ({"statuses": ["completed"]}, ["completed", "completed"]),
        ({"statuses": ["cancelled", "failed"]}, ["cancelled"] * 3 + ["failed"]),
        ({"statuses": "running", "symbols": "GBPUSD"}, []),
        (
            {"symbols": [], "statuses": None},
            ["cancelled"] * 3 + ["completed", "pending", "running", "failed", "completed"],
        ),
    ],
    ids=["symbol", "model-type", "completed", "cancelled-or-failed", "none", "empty-filters"],
)
def test_history_filters(session, history, filters, expected):
    assert training_history(session, **filters)["status"].tolist() == expected


def test_history_limit(session, history):
    assert len(training_history(session, limit=10)) == 8
    for bad in (9, 1001, 10.0, True, "100"):
        message = f"training history: limit must be an integer between 10 and 1000, got {bad!r}"
        with pytest.raises(ForexgridError, match=re.escape(message)):
            training_history(session, limit=bad)


def test_history_limit_cuts_the_oldest(session, spec):
    for _ in range(3):
        create_queue(session, spec, skip_trained=False)
    table = training_history(session, limit=10)
    assert len(table) == 10 and table["queue_id"].tolist()[:4] == [3, 3, 3, 3]
    assert table["queue_id"].tolist()[-2:] == [1, 1]


def test_unknown_status_filter(session):
    message = (
        "training history: unknown status 'done'; expected one of pending, running, completed, "
        "failed, cancelled"
    )
    with pytest.raises(ForexgridError, match=re.escape(message)):
        training_history(session, statuses=["done"])


def test_empty_history(session):
    table = training_history(session)
    assert table.empty and list(table.columns) == list(HISTORY_COLUMNS)


def test_running_runs_are_the_queues_running_ones(session, spec, history):
    q1, q2 = (q.id for q in get_all_training_queues(session))
    (running,) = running_runs(session, q1)
    assert (running.queue_index, running.status) == (2, "running")
    assert running.config == spec.expand()[2]
    assert running_runs(session, q2) == []
    with pytest.raises(StorageError, match=re.escape("no queue with id 99")):
        running_runs(session, 99)
