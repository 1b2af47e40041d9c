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


def _n_eff_by_hand(daily: np.ndarray) -> float:
    """The corrected participation ratio, written out from the correlation matrix."""
    n_days, n = daily.shape
    off = _sum_rho_sq(daily) - n
    off_corrected = max((off - n * (n - 1) / (n_days - 1)) * (n_days - 1) / (n_days - 2), 0.0)
    return min(max(n * n / (n + off_corrected), 1.0), n)


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


def test_perfectly_anti_correlated_trials_are_one_effective_trial() -> None:
    series = _daily(1, n_trials=1)[:, 0]
    assert effective_number_of_trials(np.column_stack([series, -series])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("columns", "sum_rho_sq", "expected"),
    [
        # Two blocks of two identical trials; across blocks r^2 = 1/7 = 1/(D-1), the null
        # level, so the adjusted r^2 is 0 there and 1 within a block:
        # off = 4 * 1 + 8 * (1/7) = 36/7, null term N(N-1)/(D-1) = 12/7,
        # off_corrected = (36/7 - 12/7) * (D-1)/(D-2) = (24/7) * (7/6) = 4,
        # N_eff = N^2 / (N + 4) = 16 / 8 = 2 (uncorrected 16 / (4 + 36/7) = 1.75).
        ([_H1, _H1, _H1 + math.sqrt(6) * _H2, _H1 + math.sqrt(6) * _H2], 4 + 36 / 7, 2.0),
        # r(h1, h1 + h2) = 1/sqrt(2), h3 orthogonal to both: off = 2 * (1/2) = 1,
        # off_corrected = (1 - 3*2/7) * 7/6 = (1/7) * (7/6) = 1/6,
        # N_eff = 9 / (3 + 1/6) = 54/19 (uncorrected 9 / 4).
        ([_H1, _H1 + _H2, _H3], 4.0, 54 / 19),
        # Three mutually orthogonal trials: r = 0 is below the null level 1/7, the corrected
        # off-diagonal mass is max(0 - 6/7, 0) = 0, so N_eff = N = 3.
        ([_H1, _H2, _H3], 3.0, 3.0),
    ],
    ids=["two-blocks", "one-correlated-pair", "orthogonal"],
)
def test_effective_trials_hand_computed(columns: list, sum_rho_sq: float, expected: float) -> None:
    daily = np.column_stack(columns) * 1e-3 + 1e-4  # any positive affine map keeps rho
    assert daily.shape[0] == 8
    assert _sum_rho_sq(daily) == pytest.approx(sum_rho_sq, rel=1e-12)
    got = effective_number_of_trials(daily)
    assert got == pytest.approx(expected, rel=1e-10)
    assert TrialStats.from_returns(daily).effective_trials == got


def test_correction_recovers_independent_trials_that_the_raw_ratio_caps_below_d() -> None:
    # E[r^2] = 1/(D-1) for independent series, so the raw participation ratio of N
    # independent trials is about N^2 / (N + N(N-1)/(D-1)) < D - 1 whatever N.
    n = 500
    corrected, raw = [], []
    for seed in range(12):
        daily = np.random.default_rng(seed).standard_normal((D, n))
        corrected.append(effective_number_of_trials(daily))
        raw.append(n * n / _sum_rho_sq(daily))
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
    np.testing.assert_allclose(TrialStats.from_returns(daily).gram, expected, rtol=1e-12)


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
    assert math.isnan(one.sharpe_variance) and math.isnan(one.expected_max_sharpe)


def test_expected_max_sharpe_uses_v_and_the_effective_number() -> None:
    daily = _daily(12, n_trials=60)
    stats = TrialStats.from_returns(daily)
    v = np.var(_sharpes(daily), ddof=1)
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
            lambda: TrialStats(3, 0, 0.0, 0.0, np.zeros((2, 2))),
            "gram must have shape (3, 3) (n_days x n_days), got (2, 2)",
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

    # V: sample variance of the 40 daily Sharpe ratios; N_eff: corrected participation
    # ratio; SR* = sqrt(V) ((1-g) Phi^-1(1 - 1/N_eff) + g Phi^-1(1 - 1/(N_eff e))).
    v = np.var(_sharpes(daily), ddof=1)
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
    single = TrialStats.from_returns(daily[:, :1])
    assert all(math.isnan(v) for v in deflated_sharpe(daily[:, 0], single))
    scope = TrialStats.from_returns(daily)
    assert all(math.isnan(v) for v in deflated_sharpe(np.zeros(D), scope))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "daily must be one trial's series of shape (43,) on the scope's axis, got shape (42,)"
        ),
    ):
        deflated_sharpe(daily[1:, 0], scope)
