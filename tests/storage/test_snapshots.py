"""Queue snapshots for checkpoints: JSON-safe, and restorable into an empty database."""

from __future__ import annotations

import json
import math
import re
from datetime import date

import numpy as np
import pytest

from forexgrid.core.selection import BestEntry, DailyMoments
from forexgrid.core.trials import TrialStats
from forexgrid.exceptions import StorageError
from forexgrid.grid import GridSpec
from forexgrid.storage.bests import apply_bests, best_models_table, load_bests
from forexgrid.storage.queues import (
    claim_queue,
    create_queue,
    get_all_training_queues,
    get_queue,
)
from forexgrid.storage.regimes_repo import add_regime, list_regimes
from forexgrid.storage.runs import (
    complete_run,
    fail_run,
    pending_runs,
    queue_runs,
    run_chosen,
    start_run,
)
from forexgrid.storage.snapshots import SNAPSHOT_VERSION, queue_snapshot, restore_snapshot
from forexgrid.storage.trials import (
    ScopeKey,
    load_scope_stats,
    record_not_scored,
    record_trials,
    scope_returns,
)

WINDOW = (date(2017, 9, 1), date(2017, 10, 30))
KEY = ScopeKey("EURUSD", "bull_trending", "v1", *WINDOW)
DAILY = np.random.default_rng(5).normal(0, 1e-3, (42, 7)).astype(np.float32)


@pytest.fixture
def snapshot(db, spec, results_frame, make_chosen):
    """A running queue: run 0 completed and best in bull_trending, run 1 failed, run 2 in
    flight, run 3 pending; plus a custom regime. Returned as JSON text (as on disk)."""
    with db.session_scope() as s:
        q = create_queue(s, spec, name="night")
        claim_queue(s, q.id, "host-a:1", 1)
        runs = queue_runs(s, q.id)
        complete_run(
            s,
            runs[0].id,
            results=results_frame,
            chosen=make_chosen(),
            kept=True,
            best_regimes=["bull_trending"],
            n_combinations=82,
            phase1_seconds=1.0,
            phase2_seconds=2.0,
            model_file_path="artifacts/a.pkl",
            model_file_sha256="0" * 64,
            model_file_size_bytes=10,
            rules_versions={"all": "all", "bull_trending": "v1"},
        )
        record_trials(s, runs[0].id, {KEY: DAILY}, {KEY: TrialStats.from_returns(DAILY)})
        other = ScopeKey("EURUSD", "calm_ranging", "v0", *WINDOW)
        record_not_scored(s, runs[0].id, other, 42, 7, "model file deleted")
        fail_run(s, runs[1].id, "boom")
        start_run(s, runs[2].id)
        apply_bests(
            s,
            {
                ("EURUSD", "bull_trending"): [
                    BestEntry(
                        runs[0].id,
                        runs[0].config_hash,
                        "bull_trending",
                        "EURUSD",
                        2.5,
                        "weighted",
                        0.5,
                        50,
                        test_sharpe=math.inf,
                        dsr=0.8,
                        val_sharpe=2.5,
                        daily=DailyMoments(0.2, 0.1, 3.5, 42),
                        rules_version="v1",
                    )
                ]
            },
            window=WINDOW,
        )
        add_regime(s, "breakout", {"volatility": "> 90th percentile"}, "custom")
        data = queue_snapshot(s, q.id)
    return json.dumps(data, allow_nan=False)


def test_snapshot_is_json_safe_and_complete(snapshot):
    data = json.loads(snapshot)
    assert (data["format"], data["version"]) == ("forexgrid.queue_snapshot", SNAPSHOT_VERSION)
    assert data["queue"]["status"] == "running" and data["queue"]["queue_name"] == "night"
    assert [r["status"] for r in data["runs"]] == ["completed", "failed", "running", "pending"]
    assert data["runs"][0]["chosen"][0]["test_psr"] == "inf"
    assert data["runs"][0]["chosen"][-1]["val_sharpe"] is None
    assert data["bests"][0]["run_uuid"] == data["runs"][0]["run_uuid"]
    assert data["bests"][0]["test_sharpe"] == "inf"
    assert data["bests"][0]["validation_end"] == "2017-10-30"
    assert [t["status"] for t in data["runs"][0]["trials"]] == ["scored", "model file deleted"]
    assert [r["name"] for r in data["regimes"]][-1] == "breakout"


def test_restore_into_an_empty_database(make_db, fresh_url, snapshot, make_chosen, frames_match):
    target = make_db(fresh_url())
    with target.session_scope() as s:
        restored = restore_snapshot(s, json.loads(snapshot))
    data = json.loads(snapshot)
    with target.session_scope() as s:
        q = get_queue(s, restored.id)
        assert (q.queue_uuid, q.queue_name, q.status, q.owner) == (
            data["queue"]["queue_uuid"],
            "night",
            "paused",
            None,
        )
        assert (q.total, q.completed_count, q.failed_count, q.kept_count) == (4, 1, 1, 1)
        assert q.current_index == 2
        runs = queue_runs(s, q.id)
        assert [r.status for r in runs] == ["completed", "failed", "pending", "pending"]
        assert [r.run_uuid for r in runs] == [r["run_uuid"] for r in data["runs"]]
        assert runs[0].model_file_sha256 == "0" * 64 and runs[0].phase2_seconds == 2.0
        assert runs[0].best_regimes == ("bull_trending",)
        assert [r.queue_index for r in pending_runs(s, q.id)] == [2, 3]
        frames_match(run_chosen(s, runs[0].id).drop(columns="rules_version"), make_chosen())
        (entry,) = load_bests(s, window=WINDOW)[("EURUSD", "bull_trending")]
        assert entry.run_id == runs[0].id and entry.test_sharpe == math.inf
        assert (entry.dsr, entry.daily, entry.rules_version) == (
            0.8,
            DailyMoments(0.2, 0.1, 3.5, 42),
            "v1",
        )
        # The trials come back, and so do the statistics their scope is scored with.
        returns, owners = scope_returns(s, KEY)
        np.testing.assert_array_equal(returns, DAILY)
        assert owners == [runs[0].id] * 7
        (stats,) = load_scope_stats(s, [KEY], 42).values()
        assert stats.n_trials == 7
        np.testing.assert_allclose(stats.gram, TrialStats.from_returns(DAILY).gram)
        assert best_models_table(s, "EURUSD")["has_best"].sum() == 1
        assert "breakout" in {r.name for r in list_regimes(s)}
        # The restored queue can be resumed.
        assert claim_queue(s, q.id, "host-b:2", 1).status == "running"


def test_restore_refuses_a_queue_that_exists(db, snapshot):
    data = json.loads(snapshot)
    message = (
        f"queue snapshot: queue {data['queue']['queue_uuid']} already exists in this database "
        f"(id {data['queue']['id']}); restore into an empty database"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        with db.session_scope() as s:
            restore_snapshot(s, data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: {**d, "version": 99},
            "queue snapshot: version 99 is not supported (this forexgrid reads versions 1, 2)",
        ),
        (
            lambda d: {**d, "format": "x"},
            "queue snapshot: format is 'x', expected 'forexgrid.queue_snapshot'",
        ),
        (lambda d: {k: v for k, v in d.items() if k != "runs"}, "queue snapshot: missing 'runs'"),
        (
            lambda d: {**d, "queue": {**d["queue"], "created_at": "yesterday"}},
            "queue snapshot queue: created_at has an invalid value 'yesterday'",
        ),
        (lambda d: [d], "queue snapshot: expected a mapping, got list"),
    ],
    ids=["version", "format", "no-runs", "bad-time", "not-a-mapping"],
)
def test_restore_refuses_malformed_snapshots(make_db, fresh_url, snapshot, change, message):
    target = make_db(fresh_url())
    with pytest.raises(StorageError, match=re.escape(message)):
        with target.session_scope() as s:
            restore_snapshot(s, change(json.loads(snapshot)))
    with target.session_scope() as s:
        assert get_all_training_queues(s) == []


def test_restore_leaves_existing_best_lists_alone(make_db, fresh_url, snapshot, spec):
    target = make_db(fresh_url())
    with target.session_scope() as s:
        mine = queue_runs(s, create_queue(s, spec, name="mine").id)[0]
        apply_bests(
            s,
            {
                ("EURUSD", "bull_trending"): [
                    BestEntry(
                        mine.id, mine.config_hash, "bull_trending", "EURUSD", 9.0, "direct", 0.0, 0
                    )
                ]
            },
            window=WINDOW,
        )
    with target.session_scope() as s:
        restore_snapshot(s, json.loads(snapshot))
        (entry,) = load_bests(s, window=WINDOW)[("EURUSD", "bull_trending")]
        assert entry.run_id == mine.id and entry.score == 9.0


def test_a_version_1_snapshot_restores_its_bests_as_legacy(make_db, fresh_url, snapshot):
    data = json.loads(snapshot)
    data["version"] = 1
    for run in data["runs"]:
        run.pop("trials", None)  # runs without trials have no key
    for entry in data["bests"]:
        for field in ("validation_start", "validation_end", "rules_version", "dsr"):
            entry.pop(field)
    target = make_db(fresh_url())
    with target.session_scope() as s:
        restore_snapshot(s, data)
        (entry,) = load_bests(s, window=None)[("EURUSD", "bull_trending")]
        assert entry.validation_window is None and entry.score == 2.5
        assert load_bests(s, window=WINDOW) == {}


def test_a_pending_run_is_its_identity_and_configuration(snapshot):
    data = json.loads(snapshot)
    pending = data["runs"][3]
    assert set(pending) == {
        "id",
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
        "best_regimes",
        "created_at",
    }
    # Null fields and empty chosen/trials lists are left out (restore reads them as absent).
    assert all(value is not None for run in data["runs"] for value in run.values())
    assert "chosen" not in data["runs"][1] and data["runs"][0]["chosen"]


def test_snapshot_statements_do_not_grow_with_the_queue(db, results_frame, make_chosen):
    from sqlalchemy import event

    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=range(1, 101),
        horizons=range(1, 4),
    )
    with db.session_scope() as s:
        q = create_queue(s, spec)
        for run in queue_runs(s, q.id)[::60]:
            start_run(s, run.id)
            complete_run(s, run.id, results=results_frame, chosen=make_chosen(), kept=False)
    parameters = []

    def count(conn, cursor, statement, params, context, executemany):
        parameters.append(len(params or ()))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session_scope() as s:
            data = queue_snapshot(s, q.id)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(data["runs"]) == 300
    assert sum(len(r.get("chosen", ())) for r in data["runs"]) == 5 * len(make_chosen())
    # Before, the chosen rows, trials and bests were read with an IN list of every run id
    # (300 parameters here; PostgreSQL refuses more than 65,535).
    assert max(parameters) <= 5
