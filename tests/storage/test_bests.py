"""Best lists: load and apply per validation window, and the best-models table."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone

import numpy as np
import pytest

from forexgrid.core.selection import BestEntry, DailyMoments, select
from forexgrid.core.trials import TrialStats
from forexgrid.exceptions import StorageError
from forexgrid.storage.bests import (
    BEST_MODELS_COLUMNS,
    apply_bests,
    best_models_table,
    best_windows,
    load_bests,
)
from forexgrid.storage.queues import create_queue
from forexgrid.storage.regimes_repo import toggle_regime
from forexgrid.storage.runs import complete_run, queue_runs
from forexgrid.storage.trials import ScopeKey, record_trials, set_pbo

SELECTION = {
    "keep_top_n": 1,
    "min_score": 0.0,
    "min_improvement_threshold": 0.01,
    "absolute_improvement_floor": 0.05,
    "min_trades": 20,
}
W1 = (date(2017, 7, 3), date(2017, 8, 31))
W2 = (date(2017, 9, 1), date(2017, 10, 30))
REGIMES = ["all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]


@pytest.fixture
def completed(session, spec, results_frame, make_chosen):
    """Four completed runs of EURUSD whose chosen val_sharpe is 1.0, 2.0, 3.0, 4.0."""
    q = create_queue(session, spec)
    runs = queue_runs(session, q.id)
    for i, run in enumerate(runs):
        complete_run(
            session,
            run.id,
            results=results_frame,
            chosen=make_chosen(val_sharpe=1.0 + i),
            kept=True,
            rules_versions={"all": "all", "bull_trending": "v1"},
        )
    return runs


def _decide(session, run, chosen, window=W2):
    return select(
        run.id,
        run.symbol,
        chosen,
        load_bests(session, window=window),
        config_hash=run.config_hash,
        validation_window=window,
        rules_versions={"all": "all", "bull_trending": "v1"},
        **SELECTION,
    )


def _entry(run, regime="x", score=1.0, **extra):
    return BestEntry(run.id, run.config_hash, regime, "EURUSD", score, "direct", 0.0, 0, **extra)


def test_no_bests_in_a_new_database(session):
    assert load_bests(session, window=W2) == {}
    assert best_windows(session) == []


def test_selection_decisions_are_stored_and_reloaded(session, completed, make_chosen):
    first = _decide(session, completed[0], make_chosen(val_sharpe=1.0))
    assert first.keep and first.improved_regimes == ("all", "bull_trending")
    assert apply_bests(session, first, window=W2) == 2
    bests = load_bests(session, window=W2)
    assert sorted(bests) == [("EURUSD", "all"), ("EURUSD", "bull_trending")]
    (entry,) = bests[("EURUSD", "bull_trending")]
    assert (entry.run_id, entry.score, entry.signal, entry.threshold, entry.lookback) == (
        completed[0].id,
        2.0,
        "weighted",
        0.5,
        50,
    )
    assert entry.test_sharpe == 0.8 and entry.achieved_at.tzinfo == timezone.utc
    assert (entry.validation_window, entry.rules_version) == (W2, "v1")

    better = _decide(session, completed[1], make_chosen(val_sharpe=2.0))
    assert better.dropped_run_ids == (completed[0].id,)
    apply_bests(session, better, window=W2)
    (entry,) = load_bests(session, window=W2)[("EURUSD", "bull_trending")]
    assert entry.run_id == completed[1].id and entry.score == 3.0


def test_lists_of_different_windows_are_kept_apart(session, completed):
    apply_bests(session, {("EURUSD", "x"): [_entry(completed[0])]}, window=W1)
    apply_bests(session, {("EURUSD", "x"): [_entry(completed[1], score=0.5)]}, window=W2)
    apply_bests(session, {("EURUSD", "x"): [_entry(completed[2], score=9.0)]}, window=None)
    assert load_bests(session, window=W1)[("EURUSD", "x")][0].run_id == completed[0].id
    assert load_bests(session, window=W2)[("EURUSD", "x")][0].run_id == completed[1].id
    assert load_bests(session, window=None)[("EURUSD", "x")][0].run_id == completed[2].id
    # Newest window first, legacy (no window) last.
    assert best_windows(session) == [("EURUSD", W2), ("EURUSD", W1), ("EURUSD", None)]
    # Rewriting one window's list leaves the others alone.
    apply_bests(session, {("EURUSD", "x"): []}, window=W2)
    assert load_bests(session, window=W2) == {}
    assert len(load_bests(session, window=W1)[("EURUSD", "x")]) == 1


def test_every_field_of_an_entry_round_trips(session, completed):
    entry = _entry(
        completed[0],
        score=2.5,
        test_sharpe=-0.3,
        dsr=0.97,
        val_sharpe=3.1,
        daily=DailyMoments(0.21, -0.4, 4.5, 42),
        validation_window=W2,
        rules_version="abc123",
    )
    apply_bests(session, {("EURUSD", "x"): [entry]}, window=W2)
    (got,) = load_bests(session, window=W2, symbol="eurusd")[("EURUSD", "x")]
    assert got.daily == entry.daily
    assert (got.dsr, got.val_sharpe, got.rules_version, got.validation_window) == (
        0.97,
        3.1,
        "abc123",
        W2,
    )


def test_ranks_follow_the_list_order(session, completed):
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    entries = [
        _entry(run, "calm_ranging", score, test_sharpe=math.nan, achieved_at=when)
        for run, score in zip(completed[:3], (3.0, 2.0, 1.0), strict=True)
    ]
    apply_bests(session, {("EURUSD", "calm_ranging"): entries}, window=W2)
    got = load_bests(session, window=W2)[("EURUSD", "calm_ranging")]
    assert [e.run_id for e in got] == [r.id for r in completed[:3]]
    assert all(math.isnan(e.test_sharpe) for e in got)
    assert [e.score for e in got] == [3.0, 2.0, 1.0]
    # Rewriting a key replaces its rows; an empty list removes them.
    apply_bests(session, {("EURUSD", "calm_ranging"): entries[:1]}, window=W2)
    assert len(load_bests(session, window=W2)[("EURUSD", "calm_ranging")]) == 1
    apply_bests(session, {("EURUSD", "calm_ranging"): []}, window=W2)
    assert load_bests(session, window=W2) == {}


def test_only_changed_keys_are_written(session, completed):
    apply_bests(session, {("EURUSD", "a"): [_entry(completed[0], "a")]}, window=W2)
    apply_bests(
        session,
        {("EURUSD", "a"): [], ("EURUSD", "b"): [_entry(completed[1], "b")]},
        changed_keys=[("EURUSD", "b")],
        window=W2,
    )
    assert set(load_bests(session, window=W2)) == {("EURUSD", "a"), ("EURUSD", "b")}


def test_entries_may_name_runs_by_uuid(session, completed):
    run = completed[2]
    entry = BestEntry(run.run_uuid, run.config_hash, "x", "EURUSD", 1.0, "direct", 0.0, 0)
    apply_bests(session, {("EURUSD", "x"): [entry]}, window=W2)
    assert load_bests(session, window=W2)[("EURUSD", "x")][0].run_id == run.id


@pytest.mark.parametrize(
    ("run_id", "score", "message"),
    [
        (999, 1.0, "best entry refers to no stored run: no run with id 999"),
        ("nope", 1.0, "best entry refers to no stored run: no run with id 'nope'"),
        (None, math.nan, "score must be finite, got nan"),
    ],
    ids=["unknown-id", "unknown-uuid", "nan-score"],
)
def test_bad_entries_are_refused(session, completed, run_id, score, message):
    rid = completed[0].id if run_id is None else run_id
    bad = BestEntry(rid, "h", "x", "EURUSD", score, "direct", 0.0, 0)
    with pytest.raises(StorageError, match=re.escape(message)):
        apply_bests(session, {("EURUSD", "x"): [bad]}, window=W2)


# ------------------------------------------------------------------------- the table


def _scope(session, run, regime, version, window=W2, trials=6, seed=0):
    key = ScopeKey("EURUSD", regime, version, *window)
    daily = np.random.default_rng(seed).normal(0, 1e-3, (42, trials)).astype(np.float32)
    record_trials(session, run.id, {key: daily}, {key: TrialStats.from_returns(daily)})
    return key


def test_best_models_table_lists_all_then_every_active_regime(session, completed, make_chosen):
    decision = _decide(session, completed[3], make_chosen(val_sharpe=4.0))
    apply_bests(session, decision, window=W2)
    key = _scope(session, completed[3], "bull_trending", "v1")
    _scope(session, completed[3], "all", "all")

    class Half:
        pbo, n_blocks, n_trials = 0.25, 16, 6

    set_pbo(session, key, Half())
    table = best_models_table(session, "eurusd")
    assert list(table.columns) == list(BEST_MODELS_COLUMNS)
    assert table["regime"].tolist() == REGIMES
    assert table["has_best"].tolist() == [True, True, False, False, False]
    best = table.iloc[1]
    assert best["run_id"] == completed[3].id and best["rank"] == 1
    assert (best["model_type"], best["timeframe"], best["horizon"]) == ("ridge", "4h", 3)
    assert best["config_label"] == "ridge EURUSD 4h 60d h3 time_delta"
    assert (best["val_sharpe"], best["test_sharpe"], best["test_max_drawdown"]) == (5.0, 0.8, 0.07)
    assert (best["test_win_rate"], best["test_trades"], best["run_dsr"]) == (0.52, 25, 0.9)
    assert best["pbo"] == 0.25 and best["n_trials"] == 6
    assert 1.0 <= best["effective_trials"] <= 6.0
    assert (best["validation_start"], best["validation_end"]) == W2
    assert best["verdict"] == "could be luck"  # no grid DSR was given: NaN is not significant
    assert best["achieved_at"].tzinfo is not None
    empty = table.iloc[2]
    assert empty["symbol"] == "EURUSD" and math.isnan(empty["val_sharpe"])
    assert empty["note"] == "not scored in this window yet"
    assert str(table["achieved_at"].dtype) == "datetime64[us, UTC]"


def test_an_empty_regime_says_why(session, completed):
    apply_bests(session, {("EURUSD", "all"): [_entry(completed[0], "all")]}, window=W2)
    _scope(session, completed[0], "calm_ranging", "old")
    _scope(session, completed[1], "bear_trending", "v2")
    versions = {"calm_ranging": "new", "bear_trending": "v2"}
    table = best_models_table(session, "EURUSD", rules_versions=versions).set_index("regime")
    assert table.loc["calm_ranging", "note"] == (
        "not scored under the current rules: forexgrid regimes rescore calm_ranging, or train "
        "a new queue"
    )
    assert table.loc["bear_trending", "note"].startswith(
        "none of the 1 run(s) scored under the current rules qualified"
    )


def test_best_models_table_shows_the_newest_window_unless_asked(session, completed):
    apply_bests(session, {("EURUSD", "all"): [_entry(completed[0], "all")]}, window=W1)
    apply_bests(session, {("EURUSD", "all"): [_entry(completed[1], "all")]}, window=W2)
    newest = best_models_table(session)
    assert newest.loc[newest["has_best"], "run_id"].tolist() == [completed[1].id]
    every = best_models_table(session, window="all")
    assert every.loc[every["has_best"], "run_id"].tolist() == [completed[1].id, completed[0].id]
    older = best_models_table(session, window="2017-08-31")
    assert older.loc[older["has_best"], "run_id"].tolist() == [completed[0].id]
    with pytest.raises(
        StorageError,
        match=re.escape("no validation window ends on 2017-01-01; windows end on: 2017-08-31"),
    ):
        best_models_table(session, window="2017-01-01")
    with pytest.raises(StorageError, match="expected 'newest', 'all' or a date"):
        best_models_table(session, window="yesterday")


def test_best_models_table_without_any_best(session):
    table = best_models_table(session)
    assert len(table) == 5 and not table["has_best"].any()
    assert table["symbol"].isna().all()
    toggle_regime(session, "calm_ranging")
    assert len(best_models_table(session)) == 4
    assert len(best_models_table(session, include_inactive=True)) == 5


def test_best_models_table_of_several_symbols(session, completed):
    run = completed[0]
    entry = BestEntry(run.id, run.config_hash, "bear_trending", "GBPUSD", 1.0, "direct", 0.0, 0)
    apply_bests(session, {("GBPUSD", "bear_trending"): [entry]}, window=W2)
    table = best_models_table(session)
    assert table["symbol"].tolist() == ["GBPUSD"] * 5
    assert table.loc[table["has_best"], "regime"].tolist() == ["bear_trending"]
    assert math.isnan(table.loc[table["has_best"], "run_dsr"].iloc[0])  # no chosen row there


def test_best_list_changes_of_one_symbol_wait_for_each_other_not_for_other_symbols(db, backend):
    """Two runs of one symbol never rank against lists the other is changing: the second
    transaction waits at ``lock_best_lists`` until the first ends (SQLite: every write
    transaction already waits for the write lock)."""
    import threading

    from sqlalchemy import text

    from forexgrid.storage.bests import lock_best_lists

    if backend != "postgresql":
        pytest.skip("SQLite serialises every write transaction (BEGIN IMMEDIATE)")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.session_scope() as s:
            lock_best_lists(s, "EURUSD")
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with db.session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '300ms'"))
            lock_best_lists(s, "GBPUSD")  # another symbol: not held up
        with pytest.raises(StorageError, match="lock timeout"):
            with db.session_scope() as s:
                s.execute(text("SET LOCAL lock_timeout = '300ms'"))
                lock_best_lists(s, "EURUSD")
    finally:
        release.set()
        holder.join(30)
    with db.session_scope() as s:  # released with the holder's transaction
        lock_best_lists(s, "EURUSD")
