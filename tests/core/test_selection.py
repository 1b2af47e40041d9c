"""Tests of forexgrid.core.selection: the per-regime keep/delete rule."""

from __future__ import annotations

import dataclasses
import math
import random
import re
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from forexgrid.core import stats
from forexgrid.core.selection import (
    BestEntry,
    DailyMoments,
    SelectionDecision,
    _order,
    deflated_score,
    rescore_entries,
    score_candidates,
    select,
    verdict,
)
from forexgrid.core.trials import TrialStats, deflated_sharpe
from forexgrid.exceptions import ConfigError, DataError

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
SETTINGS = dict(
    keep_top_n=1,
    min_score=0.0,
    min_improvement_threshold=0.01,
    absolute_improvement_floor=0.0,
    min_trades=20,
)


def chosen(**regimes: tuple[float, int]) -> pd.DataFrame:
    """A chosen frame: regime -> (val_sharpe, val_trades)."""
    rows = [
        {
            "regime": name,
            "signal": "direct",
            "threshold": 0.5,
            "lookback": 100,
            "val_sharpe": score,
            "val_trades": trades,
            "test_sharpe": score / 2,
            "reason": "",
        }
        for name, (score, trades) in regimes.items()
    ]
    return pd.DataFrame(rows)


def entry(run_id, regime, score, *, symbol="EURUSD", hours=0, config_hash=None):
    return BestEntry(
        run_id=run_id,
        config_hash=config_hash or f"hash{run_id}",
        regime=regime,
        symbol=symbol,
        score=score,
        signal="direct",
        threshold=0.0,
        lookback=50,
        test_sharpe=0.0,
        achieved_at=T0 + timedelta(hours=hours),
    )


def run(run_id, frame, bests, symbol="EURUSD", **overrides):
    return select(
        run_id,
        symbol,
        frame,
        bests,
        config_hash=overrides.pop("config_hash", f"hash{run_id}"),
        **{**SETTINGS, **overrides},
    )


def runs_in(decision: SelectionDecision, key) -> list:
    return [e.run_id for e in decision.new_bests.get(key, ())]


ALL = ("EURUSD", "all")
BULL = ("EURUSD", "bull_trending")
BEAR = ("EURUSD", "bear_trending")


def test_empty_lists_every_eligible_regime_entered_all_included():
    d = run(7, chosen(all=(2.0, 100), bull_trending=(1.0, 30), bear_trending=(0.5, 25)), {})
    assert d.keep is True
    assert d.improved_regimes == ("all", "bull_trending", "bear_trending")
    assert set(d.new_bests) == {ALL, BULL, BEAR}
    assert runs_in(d, BULL) == [7] and runs_in(d, BEAR) == [7] and runs_in(d, ALL) == [7]
    # The pseudo-regime "all" has its own list: the best model overall.
    assert d.reasons["all"].startswith("entered: list not full (0/1)")
    assert d.reasons["bull_trending"].startswith("entered: list not full (0/1)")
    assert d.dropped_run_ids == ()
    assert d.changed_keys == (ALL, BEAR, BULL)
    bull = d.new_bests[BULL][0]
    assert (bull.score, bull.test_sharpe, bull.signal, bull.threshold, bull.lookback) == (
        1.0,
        0.5,
        "direct",
        0.5,
        100,
    )
    assert bull.config_hash == "hash7"


@pytest.mark.parametrize(
    ("trades", "enters"),
    [(19, False), (20, True), (0, False)],
    ids=["one-short", "exactly-min", "none"],
)
def test_min_trades_boundary(trades, enters):
    d = run(1, chosen(bull_trending=(1.0, trades)), {})
    assert d.keep is enters
    if not enters:
        assert d.reasons["bull_trending"] == (
            f"not eligible: {trades} validation trades < min_trades 20"
        )
        assert d.new_bests == {}


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "minus-inf"])
def test_non_finite_scores_are_not_eligible(score):
    d = run(1, chosen(bull_trending=(score, 50)), {})
    assert not d.keep and d.improved_regimes == ()
    assert d.reasons["bull_trending"] == f"not eligible: validation Sharpe is {score}"


def test_nan_trades_are_not_eligible():
    d = run(1, chosen(bull_trending=(1.0, math.nan)), {})
    assert not d.keep
    assert d.reasons["bull_trending"] == "not eligible: no validation trades < min_trades 20"


@pytest.mark.parametrize(
    ("score", "enters"), [(-0.01, False), (0.0, True)], ids=["below", "equal"]
)
def test_min_score_on_a_list_that_is_not_full(score, enters):
    d = run(1, chosen(bull_trending=(score, 50)), {})
    assert d.keep is enters
    if not enters:
        assert d.reasons["bull_trending"] == "below min_score: validation Sharpe -0.01 < 0"


def test_min_score_also_bars_a_full_list():
    # -0.2 beats the weakest -1.0 easily, but is below min_score -0.5.
    bests = {BULL: [entry(1, "bull_trending", -1.0)]}
    d = run(2, chosen(bull_trending=(-0.6, 50)), bests, min_score=-0.5)
    assert not d.keep and runs_in(d, BULL) == [1]


@pytest.mark.parametrize(
    ("weakest", "rel", "floor", "at", "above"),
    [
        (1.0, 0.5, 0.0, 1.5, 1.5000001),  # relative margin
        (0.5, 0.01, 0.25, 0.75, 0.7500001),  # floor dominates
        (-1.0, 0.5, 0.0, -0.5, -0.4999999),  # negative weakest: |weakest|
    ],
    ids=["relative", "floor", "negative"],
)
def test_improvement_exactly_at_the_margin_is_not_enough(weakest, rel, floor, at, above):
    bests = {BULL: [entry(1, "bull_trending", weakest)]}
    kw = dict(min_improvement_threshold=rel, absolute_improvement_floor=floor, min_score=-10.0)
    d = run(2, chosen(bull_trending=(at, 50)), bests, **kw)
    assert not d.keep and runs_in(d, BULL) == [1] and d.dropped_run_ids == ()
    assert d.reasons["bull_trending"].startswith("not enough improvement:")
    d = run(2, chosen(bull_trending=(above, 50)), bests, **kw)
    assert d.keep and runs_in(d, BULL) == [2] and d.dropped_run_ids == (1,)
    assert d.removed == (bests[BULL][0],)


@pytest.mark.parametrize(
    ("candidate", "enters"),
    [(-0.95, False), (-0.85, True), (-1.05, False)],
    ids=["within-10pct", "beyond-10pct", "worse"],
)
def test_negative_scores_compare_relative_to_abs_weakest(candidate, enters):
    bests = {BULL: [entry(1, "bull_trending", -1.0)]}
    d = run(
        2,
        chosen(bull_trending=(candidate, 50)),
        bests,
        min_score=-10.0,
        min_improvement_threshold=0.1,
    )
    assert d.keep is enters


@pytest.mark.parametrize(
    ("floor", "enters"), [(0.0, True), (0.05, False)], ids=["no-floor", "floor"]
)
def test_near_zero_weakest_needs_the_absolute_floor(floor, enters):
    # 1% of 0.001 is 1e-5: without the floor, 0.04 would replace 0.001 as "4000% better".
    bests = {BULL: [entry(1, "bull_trending", 0.001)]}
    d = run(2, chosen(bull_trending=(0.04, 50)), bests, absolute_improvement_floor=floor)
    assert d.keep is enters


def test_tie_with_an_incumbent_keeps_the_incumbent_ahead():
    bests = {BULL: [entry(5, "bull_trending", 1.0)]}
    d = run(3, chosen(bull_trending=(1.0, 50)), bests, keep_top_n=3)
    # The newcomer has a lower run id but no recorded time: the incumbent stays first.
    assert runs_in(d, BULL) == [5, 3]
    d = run(3, chosen(bull_trending=(1.0, 50)), bests, keep_top_n=1)
    assert not d.keep and runs_in(d, BULL) == [5]


def test_ties_among_incumbents_break_on_time_then_run_id_whatever_the_input_order():
    a = entry(9, "bull_trending", 1.0, hours=0)
    b = entry(2, "bull_trending", 1.0, hours=1)
    c = entry(4, "bull_trending", 1.0, hours=1)
    for order in ([a, b, c], [c, b, a], [b, a, c]):
        d = run(1, chosen(bull_trending=(0.5, 50)), {BULL: order}, keep_top_n=4)
        assert runs_in(d, BULL) == [9, 2, 4, 1]


def test_keep_top_n_3_pushes_out_the_weakest_and_stays_sorted():
    bests = {
        BULL: [
            entry(1, "bull_trending", 0.5),
            entry(2, "bull_trending", 1.5),
            entry(3, "bull_trending", 1.0),
        ]
    }
    d = run(4, chosen(bull_trending=(1.2, 50)), bests, keep_top_n=3)
    assert runs_in(d, BULL) == [2, 4, 3]
    assert d.dropped_run_ids == (1,)
    assert d.reasons["bull_trending"] == (
        "entered: 1.2 beats the weakest score 0.5 (run 1) by more than 0.005; run 1 pushed out"
    )
    assert [e.score for e in d.new_bests[BULL]] == [1.5, 1.2, 1.0]


def test_a_run_entering_two_regimes():
    bests = {BULL: [entry(1, "bull_trending", 0.5)], BEAR: [entry(1, "bear_trending", 0.2)]}
    d = run(2, chosen(bull_trending=(1.0, 50), bear_trending=(0.9, 50)), bests)
    assert d.improved_regimes == ("bull_trending", "bear_trending")
    assert d.dropped_run_ids == (1,)
    assert d.keep


def test_a_run_pushed_out_of_one_list_but_still_in_another_is_not_dropped():
    bests = {BULL: [entry(1, "bull_trending", 0.5)], BEAR: [entry(1, "bear_trending", 0.2)]}
    d = run(2, chosen(bull_trending=(1.0, 50), bear_trending=(0.1, 50)), bests)
    assert runs_in(d, BULL) == [2] and runs_in(d, BEAR) == [1]
    assert d.dropped_run_ids == ()
    assert d.removed == (bests[BULL][0],)


def test_a_run_kept_by_another_symbol_is_not_dropped():
    gbp = ("GBPUSD", "bull_trending")
    bests = {
        BULL: [entry(1, "bull_trending", 0.5)],
        gbp: [entry(1, "bull_trending", 0.3, symbol="GBPUSD")],
    }
    d = run(2, chosen(bull_trending=(1.0, 50)), bests)
    assert d.dropped_run_ids == ()
    assert d.new_bests[gbp] == (bests[gbp][0],)
    assert d.changed_keys == (BULL,)


def test_a_run_that_enters_nothing_is_not_kept_and_not_listed_as_dropped():
    bests = {BULL: [entry(1, "bull_trending", 2.0)]}
    d = run(2, chosen(bull_trending=(1.0, 50)), bests)
    assert not d.keep and d.dropped_run_ids == () and d.changed_keys == ()
    assert d.new_bests == {BULL: (bests[BULL][0],)}


def test_symbol_is_case_insensitive():
    d = run(1, chosen(bull_trending=(1.0, 50)), {}, symbol="eurusd")
    assert set(d.new_bests) == {BULL}


def test_reapplying_the_same_run_changes_nothing():
    first = run(2, chosen(bull_trending=(1.0, 50)), {BULL: [entry(1, "bull_trending", 0.5)]})
    bests = {k: list(v) for k, v in first.new_bests.items()}
    again = run(2, chosen(bull_trending=(1.0, 50)), bests)
    assert again.keep and again.changed_keys == () and again.dropped_run_ids == ()
    assert again.removed == ()
    assert dict(again.new_bests) == dict(first.new_bests)


@pytest.mark.parametrize("keep_top_n", [1, 3], ids=["top1", "top3"])
def test_reapplying_a_run_without_hash_never_lists_it_twice(keep_top_n):
    bests = {BULL: [entry(1, "bull_trending", 0.5), entry(2, "bull_trending", 1.0)][-keep_top_n:]}
    d = run(2, chosen(bull_trending=(1.0, 50)), bests, keep_top_n=keep_top_n, config_hash="")
    assert runs_in(d, BULL) == [2, 1][:keep_top_n]
    assert d.keep and d.improved_regimes == ("bull_trending",) and d.dropped_run_ids == ()
    # A run that no longer qualifies on re-application leaves the list.
    d = run(2, chosen(bull_trending=(1.0, 5)), bests, keep_top_n=keep_top_n, config_hash="")
    assert d.keep is False and runs_in(d, BULL) == ([1] if keep_top_n == 3 else [])
    assert d.changed_keys == (BULL,) and d.removed == ()
    d = run(2, chosen(bull_trending=(-1.0, 50)), bests, keep_top_n=keep_top_n, config_hash="")
    assert d.keep is False and runs_in(d, BULL) == ([1] if keep_top_n == 3 else [])


def test_the_same_configuration_retrained_does_not_take_a_second_place():
    bests = {BULL: [entry(1, "bull_trending", 1.0, config_hash="abc")]}
    d = run(2, chosen(bull_trending=(1.0, 50)), bests, keep_top_n=3, config_hash="abc")
    assert not d.keep and runs_in(d, BULL) == [1]
    assert d.reasons["bull_trending"].startswith(
        "not enough improvement: 1 vs the same configuration's"
    )
    d = run(2, chosen(bull_trending=(1.5, 50)), bests, keep_top_n=3, config_hash="abc")
    assert runs_in(d, BULL) == [2] and d.dropped_run_ids == (1,)


def test_lists_longer_than_keep_top_n_are_trimmed_when_touched():
    bests = {
        BULL: [entry(i, "bull_trending", float(i)) for i in range(1, 4)],
        BEAR: [entry(i, "bear_trending", float(i)) for i in range(1, 4)],
    }
    d = run(9, chosen(bull_trending=(0.0, 50)), bests, keep_top_n=1)
    assert runs_in(d, BULL) == [3]
    assert runs_in(d, BEAR) == [3, 2, 1]  # untouched
    assert d.dropped_run_ids == ()  # runs 1 and 2 still sit in the bear list
    assert {e.run_id for e in d.removed} == {1, 2}


def test_decision_does_not_depend_on_input_order():
    rng = random.Random(3)
    regimes = ["bull_trending", "bear_trending", "calm_ranging"]
    bests = {
        ("EURUSD", r): [
            entry(i, r, rng.choice([0.2, 0.5, 0.5, 0.9]), hours=i % 2) for i in range(1, 5)
        ]
        for r in regimes
    }
    frame = chosen(bull_trending=(0.6, 50), bear_trending=(0.95, 50), calm_ranging=(0.1, 50))
    reference = run(7, frame, bests, keep_top_n=4)
    for _ in range(10):
        keys = list(bests)
        rng.shuffle(keys)
        shuffled = {}
        for k in keys:
            items = list(bests[k])
            rng.shuffle(items)
            shuffled[k] = items
        d = run(7, frame.sample(frac=1, random_state=rng.randrange(100)), shuffled, keep_top_n=4)
        assert dict(d.new_bests) == dict(reference.new_bests)
        assert d.dropped_run_ids == reference.dropped_run_ids
        assert d.changed_keys == reference.changed_keys
        assert set(d.improved_regimes) == set(reference.improved_regimes)


def test_inputs_are_not_mutated_and_the_decision_is_frozen():
    lst = [entry(1, "bull_trending", 0.5)]
    bests = {BULL: lst}
    frame = chosen(bull_trending=(1.0, 50))
    copy = frame.copy()
    d = run(2, frame, bests)
    assert bests == {BULL: lst} and lst == [entry(1, "bull_trending", 0.5)]
    pd.testing.assert_frame_equal(frame, copy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.keep = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.new_bests[BULL] = ()  # type: ignore[index]


@pytest.mark.parametrize("keep_top_n", [1, 3], ids=["top1", "top3"])
def test_replay_of_random_runs_keeps_the_invariants(keep_top_n):
    rng = np.random.default_rng(keep_top_n)
    regimes = ["all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]
    bests: dict = {}
    files: set[int] = set()  # runs whose model file exists
    kept_ever = 0
    for run_id in range(1, 21):
        symbol = str(rng.choice(["EURUSD", "GBPUSD"]))
        frame = chosen(
            **{
                r: (
                    float(rng.choice([np.nan, *np.round(rng.normal(0.3, 0.8, 4), 2)])),
                    int(rng.integers(0, 60)),
                )
                for r in regimes
            }
        )
        d = select(
            run_id,
            symbol,
            frame,
            bests,
            keep_top_n=keep_top_n,
            min_score=-0.5,
            min_improvement_threshold=0.05,
            absolute_improvement_floor=0.1,
            min_trades=20,
            config_hash=f"h{run_id}",
            achieved_at=T0 + timedelta(hours=run_id),
        )
        listed = {e.run_id for lst in d.new_bests.values() for e in lst}
        assert d.keep == (run_id in listed)
        if d.keep:
            files.add(run_id)
            kept_ever += 1
        assert set(d.dropped_run_ids) <= files
        files -= set(d.dropped_run_ids)
        assert files == listed  # every file belongs to a listed run and vice versa
        for key, lst in d.new_bests.items():
            assert 1 <= len(lst) <= keep_top_n
            assert list(lst) == sorted(lst, key=_order)
            assert all(e.score >= -0.5 and (e.symbol, e.regime) == key for e in lst)
        bests = {k: list(v) for k, v in d.new_bests.items()}
    assert kept_ever >= 3  # the replay exercised entries, not only rejections


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"keep_top_n": 0},
            "model_management.keep_top_n_per_regime: expected an integer >= 1, got 0",
        ),
        (
            {"keep_top_n": 1.0},
            "model_management.keep_top_n_per_regime: expected an integer >= 1, got 1.0",
        ),
        ({"min_trades": -1}, "selection.min_trades: expected an integer >= 0, got -1"),
        ({"min_score": math.nan}, "selection.min_score: expected a finite number, got nan"),
        ({"min_dsr": 1.5}, "selection.min_dsr: expected a number between 0 and 1, got 1.5"),
        (
            {"min_improvement_threshold": -0.1},
            "model_management.min_improvement_threshold: expected a finite number >= 0, got -0.1",
        ),
        (
            {"absolute_improvement_floor": "0.1"},
            "selection.absolute_improvement_floor: expected a finite number >= 0, got '0.1'",
        ),
    ],
    ids=["top0", "top-float", "trades", "score-nan", "dsr-above-1", "rel-negative", "floor-str"],
)
def test_bad_settings_raise_config_error(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(1, chosen(bull_trending=(1.0, 50)), {}, **override)


def test_malformed_inputs_raise_data_error():
    with pytest.raises(DataError, match=re.escape("chosen: missing column(s) val_trades")):
        run(1, chosen(bull_trending=(1.0, 50)).drop(columns="val_trades"), {})
    frame = pd.concat([chosen(bull_trending=(1.0, 50))] * 2)
    with pytest.raises(DataError, match=re.escape("chosen: regime 'bull_trending' has more")):
        run(1, frame, {})
    wrong = {BEAR: [entry(1, "bull_trending", 0.5)]}
    with pytest.raises(
        DataError, match=re.escape("entry of run 1 belongs to ('EURUSD', 'bull_trending')")
    ):
        run(2, chosen(bull_trending=(1.0, 50)), wrong)
    twice = {BULL: [entry(1, "bull_trending", 0.5), entry(1, "bull_trending", 0.4)]}
    with pytest.raises(DataError, match=re.escape("run 1 appears twice")):
        run(2, chosen(bull_trending=(1.0, 50)), twice)
    nan = {BULL: [entry(1, "bull_trending", math.nan)]}
    with pytest.raises(
        DataError, match=re.escape("has score nan; scores in a list must be finite")
    ):
        run(2, chosen(bull_trending=(1.0, 50)), nan)


# --------------------------------------------------------------------- grid-wide scores


def _trials(n_trials: int, seed: int = 0, days: int = 42) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1e-3, (days, n_trials))


def test_deflated_score_is_the_dsr_against_the_scope_statistics():
    daily = _trials(30)
    trials = TrialStats.from_returns(daily)
    moments = DailyMoments.of(daily[:, 3])
    dsr, z = deflated_score(moments, trials)
    assert (dsr, z) == pytest.approx(deflated_sharpe(daily[:, 3], trials))
    sr_star = trials.expected_max_sharpe
    assert sr_star > 0
    assert z == pytest.approx(
        (moments.sharpe - sr_star)
        * math.sqrt(moments.n - 1)
        / math.sqrt(
            1 - moments.skew * moments.sharpe + (moments.kurtosis - 1) / 4 * moments.sharpe**2
        )
    )
    # A single trial has no selection to deflate for: the DSR is the PSR against 0.
    one = TrialStats.from_returns(daily[:, :1])
    assert deflated_score(moments, one)[0] == pytest.approx(
        stats.probabilistic_sharpe_ratio(daily[:, 3])
    )
    assert all(math.isnan(v) for v in deflated_score(None, trials))


@pytest.mark.parametrize(
    ("dsr", "expected"),
    [(0.95, "significant"), (0.9499, "could be luck"), (math.nan, "could be luck")],
    ids=["at-0.95", "below", "nan"],
)
def test_verdict(dsr, expected):
    assert verdict(dsr) == expected


def test_an_incumbent_is_deflated_by_every_trial_that_came_after_it():
    daily = _trials(10, seed=1)
    daily[:, 0] += 4e-4  # a real edge
    moments = DailyMoments.of(daily[:, 0])
    incumbent = dataclasses.replace(entry(1, "bull_trending", 0.0), daily=moments, val_sharpe=2.0)
    few = TrialStats.from_returns(daily)
    many = few.add(_trials(2000, seed=2))
    (at_first,) = rescore_entries([incumbent], few, "deflated_sharpe")
    (later,) = rescore_entries([incumbent], many, "deflated_sharpe")
    assert at_first.dsr > later.dsr and at_first.score > later.score
    assert later.score == pytest.approx(deflated_score(moments, many)[1])
    # Under val_sharpe the score stays the validation Sharpe; the DSR is still refreshed.
    (literal,) = rescore_entries([incumbent], many, "val_sharpe")
    assert literal.score == 2.0 and literal.dsr == later.dsr
    # A legacy entry (no daily moments) has no DSR to recompute.
    (legacy,) = rescore_entries([entry(2, "bull_trending", 1.0)], many, "deflated_sharpe")
    assert math.isnan(legacy.dsr) and math.isnan(legacy.score)
    with pytest.raises(ConfigError, match="selection.score: expected one of"):
        rescore_entries([incumbent], many, "sharpe")


def test_candidates_are_scored_against_their_regimes_trials():
    frame = chosen(all=(1.5, 40), bull_trending=(0.8, 30), bear_trending=(0.4, 2))
    frame["combination"] = pd.array([2, 0, pd.NA], dtype="Int64")
    daily = {"all": _trials(5, seed=3), "bull_trending": _trials(5, seed=4)}
    trials = {r: TrialStats.from_returns(d) for r, d in daily.items()}
    scored = score_candidates(frame, daily, trials, "deflated_sharpe").set_index("regime")
    dsr, z = deflated_sharpe(daily["all"][:, 2], trials["all"])
    assert (scored.loc["all", "dsr"], scored.loc["all", "score"]) == pytest.approx((dsr, z))
    assert scored.loc["all", "daily_n"] == 42
    assert scored.loc["bull_trending", "daily_sharpe"] == pytest.approx(
        stats.sharpe_ratio(daily["bull_trending"][:, 0])
    )
    # No chosen combination (or no trials): nothing to score.
    assert math.isnan(scored.loc["bear_trending", "dsr"])
    assert pd.isna(scored.loc["bear_trending", "daily_n"])
    literal = score_candidates(frame, daily, trials, "val_sharpe").set_index("regime")
    assert literal.loc["all", "score"] == 1.5 and literal.loc["all", "dsr"] == pytest.approx(dsr)


def _scored(dsr_z: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """A scored candidates frame: regime -> (score on the z scale, DSR)."""
    frame = chosen(**{r: (1.0, 50) for r in dsr_z})
    frame["score"] = [z for z, _ in dsr_z.values()]
    frame["dsr"] = [d for _, d in dsr_z.values()]
    for name, value in (("daily_sharpe", 0.3), ("daily_skew", 0.0), ("daily_kurtosis", 3.0)):
        frame[name] = value
    frame["daily_n"] = 42
    return frame


def test_min_dsr_gates_entry_and_candidates_carry_their_scope():
    window = (datetime(2017, 9, 1).date(), datetime(2017, 10, 30).date())
    d = run(
        1,
        _scored({"bull_trending": (1.2, 0.88), "bear_trending": (2.0, 0.977)}),
        {},
        min_dsr=0.95,
        validation_window=window,
        rules_versions={"bull_trending": "v1", "bear_trending": "v2"},
    )
    assert d.improved_regimes == ("bear_trending",)
    assert d.reasons["bull_trending"] == "below min_dsr: DSR 0.88 < 0.95"
    (bear,) = d.new_bests[BEAR]
    assert (bear.dsr, bear.score, bear.validation_window, bear.rules_version) == (
        0.977,
        2.0,
        window,
        "v2",
    )
    assert bear.daily == DailyMoments(0.3, 0.0, 3.0, 42)


def test_a_candidate_without_a_score_is_not_eligible():
    d = run(1, _scored({"bull_trending": (math.nan, math.nan)}), {})
    assert not d.keep
    assert d.reasons["bull_trending"].startswith("not eligible: score is nan")


def test_margins_are_taken_on_the_z_scale_where_the_dsr_saturates():
    # DSR 0.97 vs 0.985 differ by 0.015 as probabilities, but by 0.29 standard errors: the
    # challenger clears a 5% / 0.05 margin on the z scale, which no probability near 1
    # ever could.
    weak_z, strong_z = NormalDist().inv_cdf(0.97), NormalDist().inv_cdf(0.985)
    incumbent = dataclasses.replace(entry(1, "bull_trending", weak_z), dsr=0.97)
    d = run(
        2,
        _scored({"bull_trending": (strong_z, 0.985)}),
        {BULL: [incumbent]},
        min_improvement_threshold=0.05,
        absolute_improvement_floor=0.05,
    )
    assert runs_in(d, BULL) == [2] and d.dropped_run_ids == (1,)
