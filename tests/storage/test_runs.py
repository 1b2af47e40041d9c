"""Runs: start, complete with results (NaN/inf round-trip), fail, reset, and reads."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, text

from forexgrid.exceptions import DataError, StorageError
from forexgrid.storage.queues import claim_queue, create_queue
from forexgrid.storage.runs import (
    CHOSEN_COLUMNS,
    RESULT_COLUMNS,
    complete_run,
    completed_hashes,
    count_pending,
    fail_run,
    get_run,
    mark_models_deleted,
    pending_runs,
    queue_runs,
    reset_running_runs,
    run_chosen,
    run_results,
    start_run,
)


@pytest.fixture
def runs(session, spec):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 1)
    return queue_runs(session, q.id)


def test_start_then_complete(session, runs, results_frame, make_chosen):
    run = runs[0]
    started = start_run(session, run.id)
    assert started.status == "running" and started.started_at is not None
    done = complete_run(
        session,
        run.id,
        results=results_frame,
        chosen=make_chosen(),
        kept=True,
        best_regimes=["bull_trending"],
        n_combinations=82,
        phase1_seconds=1.25,
        phase2_seconds=0.5,
        data_fingerprint={"first": "a", "last": "b", "bars": 3},
        config_hash="f" * 64,
        model_file_path="artifacts/ridge_1.pkl",
        model_file_sha256="ab" * 32,
        model_file_size_bytes=3_000_000_000,
    )
    assert done.status == "completed" and done.completed_at >= done.started_at
    assert done.is_model_kept and done.best_regimes == ("bull_trending",)
    assert (done.n_combinations, done.phase1_seconds, done.phase2_seconds) == (82, 1.25, 0.5)
    assert done.data_fingerprint == {"first": "a", "last": "b", "bars": 3}
    assert done.config_hash == "f" * 64
    assert (done.model_file_path, done.model_file_sha256, done.model_file_size_bytes) == (
        "artifacts/ridge_1.pkl",
        "ab" * 32,
        3_000_000_000,
    )
    assert get_run(session, run.id) == done


def test_results_round_trip_with_nan_and_inf(db, spec, results_frame, make_chosen, frames_match):
    chosen = make_chosen()
    with db.session_scope() as s:
        run = queue_runs(s, create_queue(s, spec).id)[0]
        complete_run(s, run.id, results=results_frame, chosen=chosen, kept=False)
    with db.session_scope() as s:  # a new transaction: values come from the database
        got = run_results(s, run.id)
        got_chosen = run_chosen(s, run.id)
    assert list(got.columns) == [*RESULT_COLUMNS, "rules_version"]
    assert got["rules_version"].isna().all()  # none given
    got = got.drop(columns="rules_version")
    frames_match(got, results_frame)
    assert got["lookback"].dtype == "Int64" and got["trades"].dtype == "Int64"
    assert got["profit_factor"].tolist().count(math.inf) == 1
    assert got["profit_factor"].tolist().count(-math.inf) == 1
    assert got["sharpe"].isna().sum() == results_frame["sharpe"].isna().sum() == 1
    assert list(got_chosen.columns) == [*CHOSEN_COLUMNS, "rules_version"]
    got_chosen = got_chosen.drop(columns="rules_version")
    frames_match(got_chosen, chosen)
    missing = got_chosen.iloc[-1]
    assert missing["reason"] == "insufficient trades"
    assert pd.isna(missing["signal"]) and math.isnan(missing["val_sharpe"])
    assert got_chosen["test_psr"].iloc[0] == math.inf


def test_chosen_without_the_optional_columns(session, runs, results_frame, make_chosen):
    chosen = make_chosen().drop(columns=["val_max_drawdown", "val_win_rate", "test_total_return"])
    complete_run(session, runs[0].id, results=results_frame, chosen=chosen, kept=False)
    got = run_chosen(session, runs[0].id)
    assert got["val_max_drawdown"].isna().all() and got["test_total_return"].isna().all()


def test_a_result_is_recorded_once(session, runs, results_frame, make_chosen):
    complete_run(session, runs[0].id, results=results_frame, chosen=make_chosen(), kept=False)
    message = f"run {runs[0].id} is already completed; a run's result is recorded only once"
    with pytest.raises(StorageError, match=re.escape(message)):
        complete_run(session, runs[0].id, results=results_frame, chosen=make_chosen(), kept=True)
    assert len(run_results(session, runs[0].id)) == len(results_frame)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r, c: (r.drop(columns=["sharpe", "split"]), c),
            "results: missing column(s) split, sharpe",
        ),
        (lambda r, c: (r, c.drop(columns=["dsr"])), "chosen: missing column(s) dsr"),
        (
            lambda r, c: (r.assign(sharpe="high"), c),
            "results: column 'sharpe' must be numeric, got 'high'",
        ),
        (
            lambda r, c: (r.assign(trades=1.5), c),
            "results: column 'trades' must hold whole numbers, got 1.5",
        ),
        (
            lambda r, c: (r.assign(threshold=np.nan), c),
            "results: threshold must be finite, got nan",
        ),
        (lambda r, c: ([1, 2], c), "results: expected a DataFrame, got list"),
    ],
    ids=[
        "missing-results",
        "missing-chosen",
        "text-metric",
        "fractional-trades",
        "nan-threshold",
        "not-a-frame",
    ],
)
def test_bad_result_frames_are_refused(session, runs, results_frame, make_chosen, change, message):
    results, chosen = change(results_frame, make_chosen())
    with pytest.raises(DataError, match=re.escape(f"run {runs[0].id} {message}")):
        complete_run(session, runs[0].id, results=results, chosen=chosen, kept=False)
    assert get_run(session, runs[0].id).status == "pending"


def test_fail_records_the_error(session, runs):
    start_run(session, runs[1].id)
    failed = fail_run(session, runs[1].id, "Traceback (most recent call last):\n  ValueError")
    assert failed.status == "failed" and failed.error.startswith("Traceback")
    message = f"run {runs[1].id} is failed; only a pending or running run can become failed"
    with pytest.raises(StorageError, match=re.escape(message)):
        fail_run(session, runs[1].id, "again")


def test_start_needs_a_pending_run(session, runs):
    start_run(session, runs[0].id)
    message = f"run {runs[0].id} is running; only a pending run can become running"
    with pytest.raises(StorageError, match=re.escape(message)):
        start_run(session, runs[0].id)


def test_unknown_run(session):
    for call in (get_run, start_run, run_results, run_chosen):
        with pytest.raises(StorageError, match=re.escape("no run with id 12345")):
            call(session, 12345)


def test_reset_and_pending_runs(session, runs, results_frame, make_chosen):
    start_run(session, runs[0].id)
    start_run(session, runs[2].id)
    complete_run(session, runs[1].id, results=results_frame, chosen=make_chosen(), kept=False)
    assert [r.queue_index for r in pending_runs(session, runs[0].queue_id)] == [3]
    assert reset_running_runs(session, runs[0].queue_id) == 2
    pending = pending_runs(session, runs[0].queue_id)
    assert [r.queue_index for r in pending] == [0, 2, 3]
    assert all(r.started_at is None for r in pending)
    assert reset_running_runs(session, runs[0].queue_id) == 0
    with pytest.raises(StorageError, match=re.escape("no queue with id 77")):
        pending_runs(session, 77)


def test_pending_runs_read_a_page_at_a_time_and_counted(session, runs):
    queue_id = runs[0].queue_id
    start_run(session, runs[1].id)
    assert count_pending(session, queue_id) == 3
    first = pending_runs(session, queue_id, limit=2)
    assert [r.queue_index for r in first] == [0, 2]
    rest = pending_runs(session, queue_id, after_index=first[-1].queue_index, limit=2)
    assert [r.queue_index for r in rest] == [3]
    assert pending_runs(session, queue_id, after_index=3, limit=2) == []
    with pytest.raises(StorageError, match=re.escape("no queue with id 77")):
        count_pending(session, 77)


def test_completed_hashes(session, runs, results_frame, make_chosen):
    assert completed_hashes(session) == set()
    complete_run(session, runs[3].id, results=results_frame, chosen=make_chosen(), kept=False)
    fail_run(session, runs[0].id, "x")
    assert completed_hashes(session) == {runs[3].config_hash}


def test_mark_models_deleted(session, runs, results_frame, make_chosen):
    for run in runs[:2]:
        complete_run(
            session,
            run.id,
            results=results_frame,
            chosen=make_chosen(),
            kept=True,
            model_file_path=f"m{run.id}.pkl",
        )
    assert mark_models_deleted(session, [runs[0].id, runs[0].id, runs[3].id]) == 1
    gone = get_run(session, runs[0].id)
    assert not gone.is_model_kept and gone.model_file_path == f"m{runs[0].id}.pkl"
    assert get_run(session, runs[1].id).is_model_kept


def test_empty_results_are_allowed(session, runs, results_frame, make_chosen):
    done = complete_run(
        session,
        runs[0].id,
        results=results_frame.iloc[:0],
        chosen=make_chosen().iloc[:0],
        kept=False,
    )
    assert done.status == "completed"
    assert run_results(session, runs[0].id).empty and run_chosen(session, runs[0].id).empty


def test_rows_carry_the_rules_version_of_their_regime(session, runs, results_frame, make_chosen):
    versions = {"all": "all", "bull_trending": "v1"}
    complete_run(
        session,
        runs[0].id,
        results=results_frame,
        chosen=make_chosen(),
        kept=False,
        rules_versions=versions,
    )
    got = run_results(session, runs[0].id)
    assert dict(zip(got["regime"], got["rules_version"], strict=True)) == versions
    chosen = run_chosen(session, runs[0].id).set_index("regime")["rules_version"]
    assert chosen["bull_trending"] == "v1" and pd.isna(chosen["calm_ranging"])


def test_a_rescored_regime_shows_its_latest_rules(session, runs, results_frame, make_chosen):
    from sqlalchemy import insert

    from forexgrid.storage.tables import ChosenResult

    complete_run(
        session,
        runs[0].id,
        results=results_frame,
        chosen=make_chosen(),
        kept=False,
        rules_versions={"all": "all", "bull_trending": "v1"},
    )
    # Rescoring under new rules adds rows; the earlier ones stay in the database.
    session.execute(
        insert(ChosenResult),
        [
            {
                "run_id": runs[0].id,
                "regime": "bull_trending",
                "rules_version": "v2",
                "reason": "insufficient trades",
            }
        ],
    )
    chosen = run_chosen(session, runs[0].id)
    assert chosen["regime"].tolist() == ["all", "calm_ranging", "bull_trending"]
    row = chosen.set_index("regime").loc["bull_trending"]
    assert (row["rules_version"], row["reason"]) == ("v2", "insufficient trades")


# ----------------------------------------------------------------------------- stored rows


def _stored(session, table: str, columns, run_id: int) -> list[tuple]:
    """A run's rows as the database holds them (no type conversion on the way back)."""
    listed = ", ".join(["run_id", *columns, "rules_version"])
    query = text(f"SELECT {listed} FROM {table} WHERE run_id = :run ORDER BY id")
    return [tuple(row) for row in session.execute(query, {"run": run_id})]


def _expected(frame: pd.DataFrame, columns, run_id: int, versions) -> list[tuple]:
    """The rows a frame should become: NaN and NA as NULL, inf kept, versions by regime."""
    rows = []
    for record in frame.to_dict("records"):
        values = [record.get(c) for c in columns]
        values = [None if v is None or pd.isna(v) else v for v in values]
        rows.append((run_id, *values, versions.get(record["regime"])))
    return rows


def test_stored_rows_hold_the_frames_values(session, runs, results_frame, make_chosen):
    chosen = make_chosen()
    versions = {"all": "all", "bull_trending": "v1"}
    complete_run(
        session,
        runs[0].id,
        results=results_frame,
        chosen=chosen,
        kept=False,
        rules_versions=versions,
    )
    got = _stored(session, "inference_results", RESULT_COLUMNS, runs[0].id)
    assert got == _expected(results_frame, RESULT_COLUMNS, runs[0].id, versions)
    floats = [float] * 3
    assert [type(v) for v in got[0][1:-1]] == [
        str,
        float,
        type(None),
        str,
        str,
        *floats,
        int,
        *floats,
    ]
    assert {type(row[3]) for row in got} == {int, type(None)}  # lookback
    got = _stored(session, "chosen_results", CHOSEN_COLUMNS, runs[0].id)
    assert got == _expected(chosen, CHOSEN_COLUMNS, runs[0].id, versions)
    assert got[-1][1:] == ("calm_ranging", *[None] * 14, "insufficient trades", None, None)


def test_each_tables_rows_are_inserted_with_one_statement(
    backend, db, session, runs, results_frame, make_chosen, monkeypatch
):
    """One statement per table, though NULLs (lookbacks, a chosen row with no choice) come
    and go from row to row: one executemany of all the rows, or on PostgreSQL one COPY."""
    statements: list[tuple] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words[0].upper() == "INSERT":
            statements.append((words[2], executemany, len(parameters) if executemany else 1))

    if backend == "postgresql":
        import psycopg

        copy = psycopg.Cursor.copy

        def recorded_copy(cursor, statement, *args, **kwargs):
            statements.append((statement.split()[1], "copy"))
            return copy(cursor, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "copy", recorded_copy)
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        complete_run(session, runs[0].id, results=results_frame, chosen=make_chosen(), kept=False)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    if backend == "postgresql":
        assert statements == [("inference_results", "copy"), ("chosen_results", "copy")]
    else:
        assert statements == [
            ("inference_results", True, len(results_frame)),
            ("chosen_results", True, len(make_chosen())),
        ]
