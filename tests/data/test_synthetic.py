"""Tests of forexgrid.data.synthetic: the regime-switching generator of synthetic bars."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from forexgrid.data._validate import validate_bars
from forexgrid.data.synthetic import REGIMES, bars_from_log_returns, synthetic_bars
from forexgrid.data.timeframes import infer_timeframe, resample, trading_dates
from forexgrid.exceptions import DataError

DESIGN_REGIMES = ("bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")


@pytest.fixture(scope="module")
def default() -> tuple[pd.DataFrame, pd.Series]:
    return synthetic_bars(n=5000, seed=0)


def _log_returns(bars: pd.DataFrame) -> pd.Series:
    return np.log(bars["close"]).diff()


def test_regime_names_match_design() -> None:
    assert REGIMES == DESIGN_REGIMES


def test_deterministic_per_seed(default) -> None:
    bars, labels = default
    again, again_labels = synthetic_bars(n=5000, seed=0)
    pd.testing.assert_frame_equal(bars, again, check_exact=True)
    pd.testing.assert_series_equal(labels, again_labels, check_exact=True)


def test_different_seeds_differ(default) -> None:
    bars, labels = default
    other, other_labels = synthetic_bars(n=5000, seed=1)
    assert bars.index.equals(other.index)  # the calendar does not depend on the seed
    assert not np.allclose(bars["close"].to_numpy(), other["close"].to_numpy())
    assert not labels.equals(other_labels)


@pytest.mark.parametrize("timeframe", ["15m", "1h", "4h", "1d"], ids=lambda t: t)
def test_bars_contract(timeframe: str) -> None:
    bars, labels = synthetic_bars(n=3000, seed=3, timeframe=timeframe)
    assert len(bars) == 3000
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(str(t) == "float64" for t in bars.dtypes)
    assert isinstance(bars.index, pd.DatetimeIndex) and str(bars.index.tz) == "UTC"
    assert bars.index.name == "time"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["volume"] > 0).all()
    # Each bar opens at the previous close.
    np.testing.assert_array_equal(bars["open"].to_numpy()[1:], bars["close"].to_numpy()[:-1])
    # The reader-side validator accepts it unchanged.
    pd.testing.assert_frame_equal(validate_bars(bars, "synthetic"), bars, check_freq=False)
    assert infer_timeframe(bars) == timeframe
    assert labels.index.equals(bars.index)
    assert labels.name == "regime"
    assert set(labels.unique()) <= set(DESIGN_REGIMES)


def _new_york(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_convert("America/New_York")


@pytest.mark.parametrize("timeframe", ["1m", "1h", "4h", "1d"], ids=lambda t: t)
def test_no_weekend_bars(timeframe: str) -> None:
    # 6000 bars from 2020-01-06 span both clock changes of 2020 (03-08, 11-01) at 1h and
    # coarser.
    bars, _ = synthetic_bars(n=6000, seed=2, timeframe=timeframe)
    wall = _new_york(bars.index)
    day, hour = wall.day_of_week, wall.hour
    # Closed from Friday 17:00 to Sunday 17:00 New York, whatever the UTC offset.
    closed = ((day == 4) & (hour >= 17)) | (day == 5) | ((day == 6) & (hour < 17))
    assert not closed.any()
    if timeframe == "1h":
        # ...and no other gaps: 120 bars per full week, the week opening Sunday 17:00 New
        # York: 49 hours over a weekend, 48 over the spring change, 50 over the autumn one.
        gaps = bars.index.to_series().diff().dropna()
        assert set(gaps) == {pd.Timedelta(hours=h) for h in (1, 48, 49, 50)}
        assert set(wall[wall.day_of_week == 6].hour) == set(range(17, 24))
        assert set(bars.index[bars.index.day_of_week == 6].hour) == {21, 22, 23}
    if timeframe in ("4h", "1d"):
        # On the New York bins of resample(): 17, 21, 01, 05, 09, 13 (4h) or 17:00 (1d).
        assert set(hour) == ({17, 21, 1, 5, 9, 13} if timeframe == "4h" else {17})
        assert set(wall.minute) == {0}
        pd.testing.assert_frame_equal(resample(bars, timeframe), bars, check_freq=False)


def test_hourly_bars_resample_to_one_daily_bar_per_weekday() -> None:
    # 2020-03-02 .. 2020-03-13 (in UTC) spans the spring change of 2020-03-08.
    bars, _ = synthetic_bars(n=240, seed=1, start="2020-03-01 22:00")
    daily = resample(bars, "1d")
    assert len(daily) == 10
    sessions = pd.DatetimeIndex(trading_dates(daily))
    assert list(sessions) == list(pd.bdate_range("2020-03-02", "2020-03-13"))
    # Each daily bar holds 24 hourly bars.
    assert daily["volume"].sum() == pytest.approx(bars["volume"].sum(), rel=1e-12)
    assert (bars.groupby(trading_dates(bars)).size() == 24).all()
    # The week opens Sunday 17:00 New York: 22:00 UTC before the change, 21:00 after.
    assert list(daily.index[[0, 5]]) == [
        pd.Timestamp("2020-03-01 22:00", tz="UTC"),
        pd.Timestamp("2020-03-08 21:00", tz="UTC"),
    ]


def test_start_is_honoured_and_rounded_up() -> None:
    bars, _ = synthetic_bars(n=5, start="2021-03-06 10:30")  # a Saturday
    assert bars.index[0] == pd.Timestamp("2021-03-07 22:00", tz="UTC")  # Sunday 17:00 EST
    bars, _ = synthetic_bars(n=5, start="2021-06-05 10:30")  # a Saturday in summer
    assert bars.index[0] == pd.Timestamp("2021-06-06 21:00", tz="UTC")  # Sunday 17:00 EDT
    bars, _ = synthetic_bars(n=5, start=pd.Timestamp("2021-03-03 10:30", tz="Europe/Berlin"))
    assert bars.index[0] == pd.Timestamp("2021-03-03 10:00", tz="UTC")
    # 4h and 1d round up to the next New York bin: 10:00 UTC = 05:00 EST, the 05:00 bin.
    bars, _ = synthetic_bars(n=5, timeframe="4h", start="2021-03-03 09:30")
    assert bars.index[0] == pd.Timestamp("2021-03-03 10:00", tz="UTC")
    bars, _ = synthetic_bars(n=5, timeframe="1d", start="2021-03-03 09:30")
    assert bars.index[0] == pd.Timestamp("2021-03-03 22:00", tz="UTC")


def test_labels_cover_all_regimes_and_persist(default) -> None:
    _, labels = default
    assert set(labels.unique()) == set(DESIGN_REGIMES)
    segments = (labels != labels.shift()).cumsum()
    durations = labels.groupby(segments).size()
    # Persistent regimes: mean duration within 100-300 bars, none shorter than the minimum.
    assert 100 <= durations.iloc[:-1].mean() <= 300
    assert durations.iloc[:-1].min() >= 12


def test_regime_properties(default) -> None:
    bars, labels = default
    returns = _log_returns(bars)
    stats = returns.groupby(labels).agg(["mean", "std"])
    assert stats.loc["bull_trending", "mean"] > 0
    assert stats.loc["bear_trending", "mean"] < 0
    # Sign of the trends with margin: at least 3 standard errors away from zero.
    for regime in ("bull_trending", "bear_trending"):
        r = returns[labels == regime].dropna()
        assert abs(r.mean()) > 3 * r.std() / np.sqrt(len(r)), regime
    assert stats.loc["volatile_ranging", "std"] > 2 * stats.loc["calm_ranging", "std"]


def test_ranging_regimes_mean_revert() -> None:
    bars, labels = synthetic_bars(n=20000, seed=0)
    log_close = np.log(bars["close"])
    segment = (labels != labels.shift()).cumsum()
    # Deviation of the previous close from the close just before the segment began.
    previous = log_close.shift(1)
    deviation = previous - previous.groupby(segment).transform("first")
    returns = log_close.diff()
    slopes = {}
    for regime in DESIGN_REGIMES:
        mask = (labels == regime) & deviation.notna() & (segment == segment.shift())
        slopes[regime] = np.polyfit(deviation[mask], returns[mask], 1)[0]
    # Ranging: the next return pulls back towards where the range began (phi 0.97 / 0.95).
    assert slopes["calm_ranging"] < -0.015, slopes
    assert slopes["volatile_ranging"] < -0.03, slopes
    # Trending: no pull back.
    assert abs(slopes["bull_trending"]) < 0.005, slopes
    assert abs(slopes["bear_trending"]) < 0.005, slopes


def test_realistic_levels(default) -> None:
    bars, _ = default
    returns = _log_returns(bars).dropna()
    assert 0.9 < bars["close"].min() and bars["close"].max() < 1.35
    assert 0.7e-3 < returns.std() < 1.4e-3
    # Volatility clusters: |returns| are autocorrelated.
    assert returns.abs().autocorr(1) > 0.1
    # Volume rises with volatility (here: the bar's range).
    assert np.corrcoef(bars["volume"], (bars["high"] - bars["low"]) / bars["close"])[0, 1] > 0.3


def test_multi_symbol() -> None:
    symbols = ["EURUSD", "GBPUSD", "USDJPY"]
    bars, labels = synthetic_bars(n=4000, seed=5, symbols=symbols)
    assert isinstance(bars, dict) and list(bars) == symbols
    returns = pd.DataFrame({s: _log_returns(frame) for s, frame in bars.items()}).dropna()
    corr = returns.corr().to_numpy()
    off_diagonal = corr[~np.eye(3, dtype=bool)]
    assert ((off_diagonal > 0.45) & (off_diagonal < 0.75)).all(), corr
    assert 90 < bars["USDJPY"]["close"].median() < 130
    assert 0.9 < bars["EURUSD"]["close"].median() < 1.3
    for frame in bars.values():
        assert frame.index.equals(labels.index)
    # The first symbol does not depend on the others; one symbol gives a frame, not a dict.
    alone, alone_labels = synthetic_bars(n=4000, seed=5, symbols=["EURUSD"])
    assert isinstance(alone, pd.DataFrame)
    pd.testing.assert_frame_equal(alone, bars["EURUSD"], check_exact=True)
    pd.testing.assert_series_equal(alone_labels, labels)
    default, _ = synthetic_bars(n=4000, seed=5)
    pd.testing.assert_frame_equal(default, alone, check_exact=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "synthetic_bars: n must be >= 1, got 0"),
        ({"n": 2.5}, "synthetic_bars: n must be an integer, got 2.5"),
        ({"n": True}, "synthetic_bars: n must be an integer, got True"),
        ({"seed": "a"}, "synthetic_bars: seed must be an integer, got 'a'"),
        ({"seed": -1}, "synthetic_bars: seed must be >= 0, got -1"),
        ({"timeframe": "2h"}, "unknown timeframe '2h'; expected one of 15m, 1h, 4h, 1d"),
        ({"symbols": ["EUR/USD"]}, "invalid symbol 'EUR/USD': expected 1 to 20 letters or digits"),
        ({"symbols": []}, "synthetic_bars: symbols must be None, a symbol or a non-empty list"),
        ({"symbols": ["EURUSD", "eurusd"]}, "synthetic_bars: duplicate symbols EURUSD"),
        ({"start": "not a date"}, "synthetic_bars: start must be a date or timestamp"),
    ],
    ids=[
        "n-zero",
        "n-float",
        "n-bool",
        "seed-str",
        "seed-negative",
        "timeframe",
        "symbol",
        "symbols-empty",
        "symbols-duplicate",
        "start",
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        synthetic_bars(**kwargs)


def test_single_bar_and_numpy_seed() -> None:
    bars, labels = synthetic_bars(n=1, seed=np.int64(4))
    assert len(bars) == 1 and len(labels) == 1
    assert bars["open"].iloc[0] == 1.1


def test_docstring_says_synthetic() -> None:
    assert "never real market data" in (synthetic_bars.__doc__ or "")


# ------------------------------------------------------------------ bars_from_log_returns


def test_bars_from_log_returns_have_exactly_those_returns() -> None:
    returns = np.random.default_rng(3).normal(0.0, 1e-3, 500)
    bars = bars_from_log_returns(returns, start="2021-03-08", seed=1)
    validate_bars(bars, "bars_from_log_returns")
    np.testing.assert_allclose(np.diff(np.log(bars["close"].to_numpy())), returns[1:], atol=1e-15)
    assert bars["close"].iloc[0] == pytest.approx(1.1 * np.exp(returns[0]))
    assert (bars["open"].to_numpy()[1:] == bars["close"].to_numpy()[:-1]).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    # FX trading hours: one daily bar per weekday.
    days = pd.DatetimeIndex(trading_dates(bars.index)).day_of_week
    assert (days < 5).all()
    same = bars_from_log_returns(returns, start="2021-03-08", seed=1)
    pd.testing.assert_frame_equal(same, bars)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_returns": []}, "bars_from_log_returns: expected one or more finite log returns"),
        (
            {"log_returns": [0.1, float("nan")]},
            "bars_from_log_returns: expected one or more finite log returns",
        ),
        ({"log_returns": [0.1], "price": 0}, "bars_from_log_returns: price must be a number > 0"),
        ({"log_returns": [0.1], "seed": -1}, "bars_from_log_returns: seed must be >= 0"),
        (
            {"log_returns": [0.0, 0.0]},
            "bars_from_log_returns: volatility must be a number > 0, got None",
        ),
    ],
    ids=["empty", "nan", "price", "seed", "no-variation"],
)
def test_bars_from_log_returns_errors(kwargs, message) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        bars_from_log_returns(**kwargs)
