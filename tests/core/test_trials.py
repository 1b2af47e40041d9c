"""Tests of forexgrid.core.trials: daily axis, daily returns, trial statistics, deflated Sharpe."""

from __future__ import annotations

import datetime
import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from forexgrid.core.stats import deflated_sharpe_ratio
from forexgrid.core.trials import (
    TrialStats,
    daily_returns,
    deflated_sharpe,
    effective_number_of_trials,
    trading_days,
)

D = 43  # trading days in a typical validation window


def _daily(seed: int, n_days: int = D, n_trials: int = 30) -> np.ndarray:
    """Independent fat-tailed daily returns, float32 as stored."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0, 2e-4, n_trials)
    return (drift + 1e-3 * rng.standard_t(5, (n_days, n_trials))).astype(np.float32)


def _sharpes(daily: np.ndarray) -> np.ndarray:
    x = np.asarray(daily, dtype=np.float64)
    return x.mean(axis=0) / x.std(axis=0, ddof=1)


def _sum_rho_sq(daily: np.ndarray) -> float:
    """sum_ij rho_ij^2 from the full correlation matrix (the quantity the gram avoids)."""
    return float(np.sum(np.corrcoef(np.asarray(daily, dtype=np.float64), rowvar=False) ** 2))


def _deviation_correlations(daily: np.ndarray) -> np.ndarray:
    """R: correlation-scaled (N x N) matrix of the trials' deviations from their mean."""
    x = np.asarray(daily, dtype=np.float64)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    e = z - z.mean(axis=1, keepdims=True)
    return e.T @ e / (x.shape[0] - 1)


def _observation_days(daily: np.ndarray) -> float:
    """Participation ratio of the days' activity (trials with a non-zero return per day)."""
    active = (np.asarray(daily) != 0).sum(axis=1).astype(float)
    return active.sum() ** 2 / (active @ active)


def _n_eff_by_hand(daily: np.ndarray) -> float:
    """The corrected N_eff, written out from the N x N matrix the gram avoids."""
    n = daily.shape[1]
    n_days = _observation_days(daily)
    r = _deviation_correlations(daily)
    t = np.trace(r)
    diagonal = t * t / n
    null_off = n * (n - 1) * (t / n) ** 2 / (n_days - 1)
    off = max((np.sum(r * r) - diagonal - null_off) * (n_days - 1) / (n_days - 2), 0.0)
    return min(1 + t * t / (diagonal + off), n)


# Centred, mutually orthogonal +-1 patterns on 8 days (rows of a Sylvester Hadamard matrix).
_H1 = np.array([1, -1, 1, -1, 1, -1, 1, -1], dtype=float)
_H2 = np.array([1, 1, -1, -1, 1, 1, -1, -1], dtype=float)
_H3 = np.array([1, -1, -1, 1, 1, -1, -1, 1], dtype=float)


# --------------------------------------------------------------------------- trading_days


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (datetime.date(2024, 1, 5), datetime.date(2024, 1, 15)),
        (np.datetime64("2024-01-05"), np.datetime64("2024-01-15")),
        (np.datetime64("2024-01-05T23:00"), np.datetime64("2024-01-15T00:00:00.000")),
        (pd.Timestamp("2024-01-05 17:00"), pd.Timestamp("2024-01-15")),
        (datetime.datetime(2024, 1, 5, 9, 30), datetime.date(2024, 1, 15)),
    ],
    ids=["date", "datetime64-day", "datetime64-time", "timestamp", "datetime"],
)
def test_trading_days_are_the_weekdays_of_the_closed_window(first, last) -> None:
    # Friday 5 January 2024 to Monday 15 January 2024.
    expected = np.array(
        ["2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12"]
        + ["2024-01-15"],
        dtype="datetime64[D]",
    )
    got = trading_days(first, last)
    assert got.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(got, expected)


def test_trading_days_of_a_weekend_and_of_one_day() -> None:
    assert trading_days(datetime.date(2024, 1, 6), datetime.date(2024, 1, 7)).size == 0
    one = trading_days(datetime.date(2024, 1, 8), datetime.date(2024, 1, 8))
    np.testing.assert_array_equal(one, np.array(["2024-01-08"], dtype="datetime64[D]"))


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (
            datetime.date(2024, 1, 9),
            datetime.date(2024, 1, 8),
            "last_day must not be before first_day, got 2024-01-09 > 2024-01-08",
        ),
        ("2024-01-01", datetime.date(2024, 1, 8), "first_day must be a datetime.date, numpy"),
        (datetime.date(2024, 1, 1), np.datetime64("NaT"), "last_day must be a date, got NaT"),
        (pd.NaT, datetime.date(2024, 1, 8), "first_day must be a date, got NaT"),
    ],
    ids=["reversed", "string", "nat", "pandas-nat"],
)
def test_trading_days_errors(first, last, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        trading_days(first, last)


# --------------------------------------------------------------------------- daily_returns


def _daily_returns_loop(returns, masks, dates, days) -> np.ndarray:
    """Slow reference: one bar at a time."""
    out = np.zeros((masks.shape[0], days.size, returns.shape[1]))
    for m in range(masks.shape[0]):
        for t in range(returns.shape[0]):
            matches = np.flatnonzero(days == dates[t])
            if not masks[m, t] or matches.size == 0:
                continue
            for k in range(returns.shape[1]):
                if not np.isnan(returns[t, k]):
                    out[m, matches[0], k] += returns[t, k]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_daily_returns_equals_a_loop_over_bars(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = trading_days(datetime.date(2024, 3, 4), datetime.date(2024, 3, 29))
    # Bars on calendar days from before to after the window, weekends included (off the
    # axis), 6 bars a day, shuffled so dates are not sorted.
    calendar = np.arange(np.datetime64("2024-03-01"), np.datetime64("2024-04-03"))
    dates = rng.permutation(np.repeat(calendar, 6))
    n_bars = dates.size
    returns = rng.normal(0, 1e-3, (n_bars, 4))
    returns[rng.random((n_bars, 4)) < 0.1] = np.nan
    returns[:, 3] = np.nan  # a strategy outside the backtest everywhere
    masks = np.vstack([np.ones(n_bars, bool), rng.random(n_bars) < 0.4, np.zeros(n_bars, bool)])
    got = daily_returns(returns, masks, dates, days)
    assert got.dtype == np.float32 and got.shape == (3, days.size, 4)
    expected = _daily_returns_loop(returns, masks, dates, days)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert (got[2] == 0).all() and (got[:, :, 3] == 0).all()
    assert (got[0, :, 0] != 0).all()  # every weekday of the window has bars


def test_daily_returns_days_without_bars_are_zero_and_float32_input_works() -> None:
    days = trading_days(datetime.date(2024, 1, 8), datetime.date(2024, 1, 12))
    dates = np.array(["2024-01-09", "2024-01-09", "2024-01-11", "2024-01-13"], "datetime64[D]")
    returns = np.array([[0.25], [0.5], [-1.0], [7.0]], dtype=np.float32)
    got = daily_returns(returns, np.ones((1, 4), bool), dates, days)
    np.testing.assert_array_equal(got[0, :, 0], [0.0, 0.75, 0.0, -1.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"returns": np.zeros(4)},
            "returns must be a 2-D real array (T bars, K strategies), got dtype float64 and "
            "shape (4,)",
        ),
        (
            {"masks": np.ones((1, 4), dtype=int)},
            "masks must be a boolean array of shape (M regimes, 4 bars), got dtype int64",
        ),
        (
            {"masks": np.ones((1, 3), dtype=bool)},
            "masks must be a boolean array of shape (M regimes, 4 bars), got dtype bool and "
            "shape (1, 3)",
        ),
        (
            {"dates": np.array(["2024-01-09"] * 4, "datetime64[ns]")},
            "dates must be a 1-D datetime64[D] array (convert with .astype('datetime64[D]')",
        ),
        (
            {"dates": np.array(["2024-01-09"] * 3, "datetime64[D]")},
            "dates must have 4 entries (one per bar), got 3",
        ),
        (
            {"days": np.array(["2024-01-09", "2024-01-09"], "datetime64[D]")},
            "days must be strictly increasing (use trading_days())",
        ),
    ],
    ids=["1d-returns", "int-masks", "short-masks", "ns-dates", "short-dates", "repeated-days"],
)
def test_daily_returns_errors(kwargs: dict, message: str) -> None:
    args = {
        "returns": np.zeros((4, 2)),
        "masks": np.ones((1, 4), bool),
        "dates": np.array(["2024-01-09"] * 4, "datetime64[D]"),
        "days": trading_days(datetime.date(2024, 1, 8), datetime.date(2024, 1, 12)),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        daily_returns(**args)


# --------------------------------------------------------------------------- N_eff by hand


def test_identical_trials_are_one_effective_trial() -> None:
    series = _daily(0, n_trials=1)[:, 0]
    assert effective_number_of_trials(np.tile(series[:, None], (1, 7))) == pytest.approx(1.0)
    scaled = np.column_stack([series * c for c in (1.0, 2.0, 0.5)])  # same correlations
    assert effective_number_of_trials(scaled) == pytest.approx(1.0)


def test_a_trial_and_its_mirror_image_are_two_choices() -> None:
    # max(x, -x) = |x| is a real selection: two effective trials, not one.
    series = _daily(1, n_trials=1)[:, 0]
    assert effective_number_of_trials(np.column_stack([series, -series])) == pytest.approx(2.0)


A = 1 / math.sqrt(2)


@pytest.mark.parametrize(
    ("columns", "trace", "sum_sq", "expected"),
    [
        # Two orthogonal trials: deviations +-(z1 - z2)/2, R = [[1/2, -1/2], [-1/2, 1/2]]:
        # T = 1, tr R^2 = 1, diagonal T^2/N = 1/2, null N(N-1)(T/N)^2/(D-1) = 1/14,
        # off = (1 - 1/2 - 1/14) * 7/6 = 1/2, N_eff = 1 + 1 / (1/2 + 1/2) = 2.
        ([_H1, _H2], 1.0, 1.0, 2.0),
        # Two blocks of two copies: every deviation is +-(z1 - z2)/2, |R_ij| = 1/2:
        # T = 2, tr R^2 = 4, off = (4 - 1 - 3/7) * 7/6 = 3, N_eff = 1 + 4 / (1 + 3) = 2.
        ([_H1, _H1, _H2, _H2], 2.0, 4.0, 2.0),
        # Three orthogonal trials: R = I - J/3 (2/3 on the diagonal, -1/3 off it): T = 2,
        # tr R^2 = 2, off = (2 - 4/3 - 8/21) * 7/6 = 1/3, 1 + 4 / (4/3 + 1/3) = 3.4 -> N = 3.
        ([_H1, _H2, _H3], 2.0, 2.0, 3.0),
        # One correlated pair (rho = a = 1/sqrt(2)) and an orthogonal trial: R = P C P with
        # P = I - J/3, R11 = R22 = (6 - 4a)/9, R33 = (6 + 2a)/9, R12 = (5a - 3)/9,
        # R13 = R23 = -(3 + a)/9: T = 2 - 2a/3, tr R^2 = 23/9 - 4a/3, diagonal T^2/3,
        # null 6 (T/3)^2 / 7, off = (tr R^2 - T^2/3 - 2T^2/21) * 7/6, 1 + T^2 / (T^2/3 + off).
        ([_H1, _H1 + _H2, _H3], 2 - 2 * A / 3, 23 / 9 - 4 * A / 3, None),
    ],
    ids=["two-orthogonal", "two-blocks", "three-orthogonal", "one-correlated-pair"],
)
def test_effective_trials_hand_computed(columns, trace, sum_sq, expected) -> None:
    daily = np.column_stack(columns) * 1e-3 + 1e-4  # any positive affine map keeps rho
    assert daily.shape[0] == 8
    r = _deviation_correlations(daily)
    assert np.trace(r) == pytest.approx(trace, rel=1e-12)
    assert np.sum(r * r) == pytest.approx(sum_sq, rel=1e-12)
    if expected is None:
        off = (sum_sq - trace**2 / 3 - 2 * trace**2 / 21) * 7 / 6
        expected = 1 + trace**2 / (trace**2 / 3 + off)
        assert expected == pytest.approx(2.565979852821, rel=1e-12)
    got = effective_number_of_trials(daily)
    assert got == pytest.approx(expected, rel=1e-10)
    assert got == pytest.approx(_n_eff_by_hand(daily), rel=1e-10)
    assert TrialStats.from_returns(daily).effective_trials == got


def test_the_correction_counts_the_days_that_carry_information() -> None:
    # A regime that held on 8 of 43 days: independent trials are 0 on the other 35, and
    # correlate like series of 8 observations. Corrected with the 8 days, N_eff recovers
    # about N; corrected as if all 43 days were observations it would not.
    rng = np.random.default_rng(5)
    active = np.zeros(D, dtype=bool)
    active[rng.choice(D, 8, replace=False)] = True
    n = 200
    estimates, as_if_dense = [], []
    for seed in range(10):
        daily = np.where(active[:, None], np.random.default_rng(seed).standard_normal((D, n)), 0)
        stats = TrialStats.from_returns(daily)
        assert stats.observation_days == pytest.approx(8.0)
        estimates.append(stats.effective_trials)
        assert estimates[-1] == pytest.approx(_n_eff_by_hand(daily), rel=1e-9)
        r = _deviation_correlations(daily)
        t = np.trace(r)
        off = max((np.sum(r * r) - t * t / n - n * (n - 1) * (t / n) ** 2 / (D - 1)), 0)
        as_if_dense.append(1 + t * t / (t * t / n + off * (D - 1) / (D - 2)))
    assert np.mean(estimates) == pytest.approx(n, rel=0.25)
    assert max(as_if_dense) < 0.2 * n
    # One trial trading on an otherwise empty day hardly changes the informative days.
    odd = np.where(active[:, None], rng.standard_normal((D, n)), 0)
    quiet_day = np.flatnonzero(~active)[0]
    odd[quiet_day, 0] = 1.0
    assert TrialStats.from_returns(odd).observation_days == pytest.approx(8.0, rel=0.01)


def test_a_common_factor_does_not_make_trials_dependent() -> None:
    # Trials sharing one factor (rho = 1/2) and otherwise independent: their deviations are
    # independent, and the best of them is selected on those, so N_eff stays near N (the
    # plain participation ratio of the correlations would say about 1/rho^2 = 4).
    rng = np.random.default_rng(21)
    factor = rng.standard_normal((D, 1))
    daily = math.sqrt(0.5) * factor + math.sqrt(0.5) * rng.standard_normal((D, 300))
    got = effective_number_of_trials(daily)
    assert got == pytest.approx(_n_eff_by_hand(daily), rel=1e-9)
    assert got > 200


def test_correction_recovers_independent_trials_that_the_raw_ratio_caps_below_d() -> None:
    # E[r^2] = 1/(D-1) for independent series, so the raw participation ratio of N
    # independent trials is about N^2 / (N + N(N-1)/(D-1)) < D - 1 whatever N.
    n = 500
    corrected, raw = [], []
    for seed in range(12):
        daily = np.random.default_rng(seed).standard_normal((D, n))
        corrected.append(effective_number_of_trials(daily))
        r = _deviation_correlations(daily)
        raw.append(1 + np.trace(r) ** 2 / np.sum(r * r))
        assert corrected[-1] == pytest.approx(_n_eff_by_hand(daily), rel=1e-9)
    assert np.mean(corrected) == pytest.approx(n, rel=0.2)
    assert max(raw) < D
    assert min(corrected) > 5 * max(raw)


def test_correlated_trials_give_fewer_effective_trials() -> None:
    rng = np.random.default_rng(3)
    factors = rng.standard_normal((D, 5))
    loadings = rng.standard_normal((5, 400))
    daily = factors @ loadings + 0.3 * rng.standard_normal((D, 400))  # ~5 sources of risk
    got = effective_number_of_trials(daily)
    assert got == pytest.approx(_n_eff_by_hand(daily), rel=1e-9)
    assert 1.0 <= got < 10.0


@pytest.mark.parametrize("n_days", [1, 2], ids=lambda d: f"D{d}")
def test_too_few_days_do_not_deflate_below_the_raw_count(n_days: int) -> None:
    daily = np.array([[0.1, 0.2, -0.3], [0.2, -0.1, 0.4]])[:n_days]
    stats = TrialStats.from_returns(daily)
    assert stats.effective_trials == stats.n_trials == (3 if n_days == 2 else 0)


# --------------------------------------------------------------------------- TrialStats


def test_sharpe_variance_is_numpys_variance_of_the_trials_sharpes() -> None:
    daily = _daily(4, n_trials=50)
    stats = TrialStats.from_returns(daily)
    sharpes = _sharpes(daily)
    assert stats.n_trials == 50 and stats.n_days == D
    assert stats.sharpe_sum == pytest.approx(sharpes.sum(), rel=1e-12)
    assert stats.sharpe_sq_sum == pytest.approx(np.sum(sharpes**2), rel=1e-12)
    assert stats.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1), rel=1e-10)
    np.testing.assert_allclose(stats.sharpe_of(daily), sharpes, rtol=1e-12)


def test_gram_is_the_sum_of_outer_products_of_standardised_series() -> None:
    daily = _daily(5, n_days=10, n_trials=6).astype(np.float64)
    z = (daily - daily.mean(axis=0)) / daily.std(axis=0, ddof=1)
    expected = sum(np.outer(z[:, k], z[:, k]) for k in range(6))
    stats = TrialStats.from_returns(daily)
    np.testing.assert_allclose(stats.gram, expected, rtol=1e-12)
    np.testing.assert_allclose(stats.z_sum, z.sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stats.active_days, (daily != 0).sum(axis=1))


def test_degenerate_trials_are_not_counted() -> None:
    good = _daily(6, n_trials=10)
    degenerate = np.column_stack(
        [
            np.zeros(D),  # never traded
            np.full(D, 1e-3),  # constant
            np.r_[np.nan, np.ones(D - 1)],  # a non-finite day
            np.r_[np.inf, -np.inf, np.ones(D - 2)],
        ]
    ).astype(np.float32)
    mixed = np.column_stack([degenerate[:, :2], good, degenerate[:, 2:]])
    with_degenerate = TrialStats.from_returns(mixed)
    clean = TrialStats.from_returns(good)
    assert with_degenerate.n_trials == clean.n_trials == 10
    counted = with_degenerate.counts(mixed)
    assert counted.tolist() == [False, False] + [True] * 10 + [False, False]
    assert with_degenerate.sharpe_variance == clean.sharpe_variance
    np.testing.assert_array_equal(with_degenerate.gram, clean.gram)
    assert TrialStats.from_returns(degenerate).n_trials == 0


def test_add_and_merge_in_any_order_equal_from_returns_on_the_union() -> None:
    chunks = [_daily(7, n_trials=30), _daily(8, n_trials=20), _daily(9, n_trials=1)]
    chunks[1][:, 3] = 0.0  # a degenerate trial inside a chunk
    union = TrialStats.from_returns(np.hstack(chunks))
    for order in itertools.permutations(range(3)):
        added = TrialStats.empty(D)
        for i in order:
            added = added.add(chunks[i])
        merged = TrialStats.from_returns(chunks[order[0]]).merge(
            TrialStats.from_returns(chunks[order[1]]).merge(
                TrialStats.from_returns(chunks[order[2]])
            )
        )
        for got in (added, merged):
            assert got.n_trials == union.n_trials == 50
            assert got.sharpe_sum == pytest.approx(union.sharpe_sum, rel=1e-12)
            assert got.sharpe_sq_sum == pytest.approx(union.sharpe_sq_sum, rel=1e-12)
            np.testing.assert_allclose(got.gram, union.gram, rtol=1e-12, atol=1e-10)
            np.testing.assert_allclose(got.z_sum, union.z_sum, rtol=1e-12, atol=1e-10)
            np.testing.assert_array_equal(got.active_days, union.active_days)
            assert got.sharpe_variance == pytest.approx(union.sharpe_variance, rel=1e-10)
            assert got.effective_trials == pytest.approx(union.effective_trials, rel=1e-10)


def test_add_returns_a_new_object_and_stats_are_immutable() -> None:
    empty = TrialStats.empty(D)
    grown = empty.add(_daily(10, n_trials=3))
    assert grown is not empty and empty.n_trials == 0 and not empty.gram.any()
    with pytest.raises(AttributeError):
        grown.n_trials = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        grown.gram[0, 0] = 1.0


def test_empty_and_single_trial_statistics() -> None:
    empty = TrialStats.empty(D)
    assert empty.n_trials == 0 and empty.effective_trials == 0.0
    assert math.isnan(empty.sharpe_variance) and math.isnan(empty.expected_max_sharpe)
    one = empty.add(_daily(11, n_trials=1))
    assert one.n_trials == 1 and one.effective_trials == 1.0
    # One trial: no selection to deflate for.
    assert math.isnan(one.sharpe_variance) and one.expected_max_sharpe == 0.0


def test_expected_max_sharpe_uses_the_null_variance_and_the_effective_number() -> None:
    rng = np.random.default_rng(12)
    daily = rng.standard_normal((D, 4)) @ rng.standard_normal((4, 60)) + rng.standard_normal(
        (D, 60)
    )
    stats = TrialStats.from_returns(daily)
    v = 1 / (D - 1)  # the sampling variance of a Sharpe ratio of D returns without skill
    assert stats.null_sharpe_variance == pytest.approx(v)
    n_eff = _n_eff_by_hand(daily)
    assert 1.0 < n_eff < 60.0
    sr_star = math.sqrt(v) * (
        (1 - np.euler_gamma) * sps.norm.ppf(1 - 1 / n_eff)
        + np.euler_gamma * sps.norm.ppf(1 - 1 / (n_eff * math.e))
    )
    assert stats.expected_max_sharpe == pytest.approx(sr_star, rel=1e-9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: TrialStats.empty(0), "n_days must be an integer >= 1, got 0"),
        (lambda: TrialStats.empty(4.0), "n_days must be an integer >= 1, got 4.0"),
        (
            lambda: TrialStats.empty(5).add(np.zeros((4, 2))),
            "daily must be a real array of shape (5 days, K trials) (a single trial as "
            "daily[:, None]), got dtype float64 and shape (4, 2)",
        ),
        (
            lambda: TrialStats.empty(5).add(np.zeros(5)),
            "daily must be a real array of shape (5 days, K trials)",
        ),
        (
            lambda: TrialStats.empty(5).merge(TrialStats.empty(6)),
            "cannot merge trial statistics of different daily axes: n_days 5 and 6",
        ),
        (lambda: TrialStats.empty(5).merge(None), "other must be a TrialStats, got NoneType"),
        (
            lambda: TrialStats(3, 0, 0.0, 0.0, np.zeros((2, 2)), np.zeros(3), np.zeros(3)),
            "gram must have shape (3, 3) (n_days x n_days), got (2, 2)",
        ),
        (
            lambda: TrialStats(3, 0, 0.0, 0.0, np.zeros((3, 3)), np.zeros(2), np.zeros(3)),
            "z_sum must have shape (3,) (n_days), got (2,)",
        ),
        (
            lambda: TrialStats(3, 0, 0.0, 0.0, np.zeros((3, 3)), np.zeros(3), np.zeros(4)),
            "active_days must have shape (3,) (n_days), got (4,)",
        ),
        (
            lambda: TrialStats.from_returns(np.zeros(5)),
            "daily must be a 2-D array (D days >= 1, K trials), got shape (5,)",
        ),
    ],
    ids=[
        "zero-days",
        "float-days",
        "wrong-days",
        "1d",
        "merge-axes",
        "merge-type",
        "gram",
        "z-sum",
        "active-days",
        "1d-from",
    ],
)
def test_trial_stats_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# --------------------------------------------------------------------------- deflated_sharpe


def test_deflated_sharpe_hand_computed_from_the_formulas() -> None:
    daily = _daily(13, n_trials=40)
    daily[:, 7] += np.float32(8e-4)  # one trial with an edge
    stats = TrialStats.from_returns(daily)
    trial = daily[:, 7].astype(np.float64)

    # V: the null variance 1/(D-1) of a daily Sharpe ratio; N_eff: 1 + corrected
    # participation ratio of the deviations; SR* = sqrt(V) ((1-g) Phi^-1(1 - 1/N_eff) +
    # g Phi^-1(1 - 1/(N_eff e))).
    v = 1 / (D - 1)
    n_eff = _n_eff_by_hand(daily)
    sr_star = math.sqrt(v) * (
        (1 - np.euler_gamma) * sps.norm.ppf(1 - 1 / n_eff)
        + np.euler_gamma * sps.norm.ppf(1 - 1 / (n_eff * math.e))
    )
    # z = (SR - SR*) sqrt(D - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR^2), DSR = Phi(z).
    sr = trial.mean() / trial.std(ddof=1)
    skew = sps.skew(trial, bias=True)
    kurt = sps.kurtosis(trial, fisher=False, bias=True)
    z = (sr - sr_star) * math.sqrt(D - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)

    dsr, got_z = deflated_sharpe(daily[:, 7], stats)
    assert sr > sr_star > 0
    assert got_z == pytest.approx(z, rel=1e-9)
    assert dsr == pytest.approx(sps.norm.cdf(z), rel=1e-9)
    # The same as stats.deflated_sharpe_ratio with the scope's V and effective N.
    assert dsr == pytest.approx(deflated_sharpe_ratio(trial, v, n_eff), rel=1e-9)


def test_deflated_sharpe_ranks_by_z_like_by_dsr() -> None:
    daily = _daily(14, n_trials=25)
    stats = TrialStats.from_returns(daily)
    pairs = [deflated_sharpe(daily[:, k], stats) for k in range(25)]
    dsr, z = np.array(pairs).T
    np.testing.assert_array_equal(np.argsort(dsr, kind="stable"), np.argsort(z, kind="stable"))


def test_deflated_sharpe_undefined_cases_are_nan() -> None:
    daily = _daily(15, n_trials=5)
    empty = TrialStats.empty(D)
    assert all(math.isnan(v) for v in deflated_sharpe(daily[:, 0], empty))
    scope = TrialStats.from_returns(daily)
    assert all(math.isnan(v) for v in deflated_sharpe(np.zeros(D), scope))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "daily must be one trial's series of shape (43,) on the scope's axis, got shape (42,)"
        ),
    ):
        deflated_sharpe(daily[1:, 0], scope)
