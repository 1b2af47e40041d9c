"""Best lists: load, apply selection's decisions, and the best-models table."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import pytest

from forexgrid.core.selection import BestEntry, select
from forexgrid.exceptions import StorageError
from forexgrid.storage.bests import (
    BEST_MODELS_COLUMNS,
    apply_bests,
    best_models_table,
    load_bests,
)
from forexgrid.storage.queues import create_queue
from forexgrid.storage.regimes_repo import toggle_regime
from forexgrid.storage.runs import complete_run, queue_runs

SELECTION = {
    "keep_top_n": 1,
    "min_score": 0.0,
    "min_improvement_threshold": 0.01,
    "absolute_improvement_floor": 0.05,
    "min_trades": 20,
}


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
        )
    return runs


def _decide(session, run, chosen):
    return select(
        run.id, run.symbol, chosen, load_bests(session), config_hash=run.config_hash, **SELECTION
    )


def test_no_bests_in_a_new_database(session):
    assert load_bests(session) == {}


def test_selection_decisions_are_stored_and_reloaded(session, completed, make_chosen):
    first = _decide(session, completed[0], make_chosen(val_sharpe=1.0))
    assert first.keep and first.improved_regimes == ("bull_trending",)
    assert apply_bests(session, first) == 1
    bests = load_bests(session)
    assert list(bests) == [("EURUSD", "bull_trending")]
    (entry,) = bests[("EURUSD", "bull_trending")]
    assert (entry.run_id, entry.score, entry.signal, entry.threshold, entry.lookback) == (
        completed[0].id,
        2.0,
        "weighted",
        0.5,
        50,
    )
    assert entry.test_sharpe == 0.8 and entry.achieved_at.tzinfo == timezone.utc

    better = _decide(session, completed[1], make_chosen(val_sharpe=2.0))
    assert better.dropped_run_ids == (completed[0].id,)
    apply_bests(session, better)
    (entry,) = load_bests(session)[("EURUSD", "bull_trending")]
    assert entry.run_id == completed[1].id and entry.score == 3.0


def test_ranks_follow_the_list_order(session, completed):
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    entries = [
        BestEntry(
            run.id,
            run.config_hash,
            "calm_ranging",
            "EURUSD",
            score,
            "direct",
            0.0,
            0,
            test_sharpe=math.nan,
            achieved_at=when,
        )
        for run, score in zip(completed[:3], (3.0, 2.0, 1.0), strict=True)
    ]
    apply_bests(session, {("EURUSD", "calm_ranging"): entries})
    got = load_bests(session)[("EURUSD", "calm_ranging")]
    assert [e.run_id for e in got] == [r.id for r in completed[:3]]
    assert all(math.isnan(e.test_sharpe) for e in got)
    assert got == entries
    # Rewriting a key replaces its rows; an empty list removes them.
    apply_bests(session, {("EURUSD", "calm_ranging"): entries[:1]})
    assert len(load_bests(session)[("EURUSD", "calm_ranging")]) == 1
    apply_bests(session, {("EURUSD", "calm_ranging"): []})
    assert load_bests(session) == {}


def test_only_changed_keys_are_written(session, completed):
    def entry(run, regime):
        return BestEntry(run.id, run.config_hash, regime, "EURUSD", 1.0, "direct", 0.0, 0)

    apply_bests(session, {("EURUSD", "a"): [entry(completed[0], "a")]})
    apply_bests(
        session,
        {("EURUSD", "a"): [], ("EURUSD", "b"): [entry(completed[1], "b")]},
        changed_keys=[("EURUSD", "b")],
    )
    assert set(load_bests(session)) == {("EURUSD", "a"), ("EURUSD", "b")}


def test_entries_may_name_runs_by_uuid(session, completed):
    run = completed[2]
    apply_bests(
        session,
        {
            ("EURUSD", "x"): [
                BestEntry(run.run_uuid, run.config_hash, "x", "EURUSD", 1.0, "direct", 0.0, 0)
            ]
        },
    )
    assert load_bests(session)[("EURUSD", "x")][0].run_id == run.id


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
        apply_bests(session, {("EURUSD", "x"): [bad]})


def test_best_models_table_lists_every_active_regime(session, completed, make_chosen):
    apply_bests(session, _decide(session, completed[3], make_chosen(val_sharpe=4.0)))
    table = best_models_table(session, "eurusd")
    assert list(table.columns) == list(BEST_MODELS_COLUMNS)
    assert table["regime"].tolist() == [
        "bull_trending",
        "bear_trending",
        "volatile_ranging",
        "calm_ranging",
    ]
    assert table["has_best"].tolist() == [True, False, False, False]
    best = table.iloc[0]
    assert best["run_id"] == completed[3].id and best["rank"] == 1
    assert best["model_type"] == "ridge"
    assert best["config_label"] == "ridge EURUSD 4h 60d h3 time_delta"
    assert (best["val_sharpe"], best["test_sharpe"], best["test_max_drawdown"]) == (5.0, 0.8, 0.07)
    assert (best["test_win_rate"], best["test_trades"], best["dsr"]) == (0.52, 25, 0.9)
    assert best["achieved_at"].tzinfo is not None
    empty = table.iloc[1]
    assert empty["symbol"] == "EURUSD" and math.isnan(empty["val_sharpe"])
    assert str(table["achieved_at"].dtype) == "datetime64[us, UTC]"


def test_best_models_table_without_any_best(session):
    table = best_models_table(session)
    assert len(table) == 4 and not table["has_best"].any()
    assert table["symbol"].isna().all()
    toggle_regime(session, "calm_ranging")
    assert len(best_models_table(session)) == 3
    assert len(best_models_table(session, include_inactive=True)) == 4


def test_best_models_table_of_several_symbols(session, completed):
    run = completed[0]
    apply_bests(
        session,
        {
            ("GBPUSD", "bear_trending"): [
                BestEntry(
                    run.id, run.config_hash, "bear_trending", "GBPUSD", 1.0, "direct", 0.0, 0
                )
            ]
        },
    )
    table = best_models_table(session)
    assert table["symbol"].tolist() == ["GBPUSD"] * 4
    assert table.loc[table["has_best"], "regime"].tolist() == ["bear_trending"]
    assert math.isnan(table.loc[table["has_best"], "dsr"].iloc[0])  # no chosen row there
