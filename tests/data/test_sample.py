"""Tests of forexgrid.data.sample: the bundled real EURUSD 2017 hourly sample."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from forexgrid.data.sample import SAMPLE_SOURCE, SAMPLES, load_sample, sample_notice
from forexgrid.data.timeframes import bars_per_year, resample
from forexgrid.exceptions import DataError


def test_sample_is_the_real_file() -> None:
    bars = load_sample("EURUSD", "1h")
    assert len(bars) == 6225
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(str(t) == "float64" for t in bars.dtypes)
    assert isinstance(bars.index, pd.DatetimeIndex) and str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert bars.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2017-12-29 21:00", tz="UTC")
    # 6,240 hours of 260 sessions, less the 15 of the Christmas closure: within 1% of the
    # 24 x 5 x 52 bars a year that annualisation assumes.
    assert len(bars) == pytest.approx(bars_per_year("1h"), rel=0.01)
    # First and last rows of the CSV, read by eye.
    assert bars.iloc[0].tolist() == [1.05236, 1.05253, 1.05221, 1.05227, 143539993.3]
    assert bars.iloc[-1].tolist() == [1.19984, 1.2013, 1.19931, 1.20075, 4885529785.0]


def test_defaults_and_case() -> None:
    pd.testing.assert_frame_equal(load_sample(), load_sample("eurusd", "H1"))


def test_returns_a_copy() -> None:
    first = load_sample()
    first.iloc[0, 0] = -1.0
    first["close"] = 0.0
    again = load_sample()
    assert len(again) == 6225
    assert again.iloc[0, 0] == 1.05236
    assert again["close"].iloc[0] == 1.05227


@pytest.mark.parametrize(
    ("timeframe", "count"),
    [("4h", 1557), ("4H", 1557), ("1d", 260), ("D1", 260)],
    ids=["4h", "4H", "1d", "D1"],
)
def test_resampled(timeframe: str, count: int) -> None:
    bars = load_sample("EURUSD", timeframe)
    # New York 17:00 close: 260 sessions (one daily bar per weekday of 2017) x 6 4h bins,
    # less the 3 empty 4h bins of Christmas Day.
    assert len(bars) == count
    pd.testing.assert_frame_equal(bars, resample(load_sample("EURUSD", "1h"), timeframe))
    # Both open with the Monday 2017-01-02 session, Sunday 17:00 New York = 22:00 UTC, and
    # end with the Friday 2017-12-29 session (its last 4h bin opens 13:00 New York).
    assert bars.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert bars.index[-1] == pd.Timestamp(
        "2017-12-29 18:00" if count == 1557 else "2017-12-28 22:00", tz="UTC"
    )
    assert len(bars) == pytest.approx(bars_per_year(timeframe), rel=0.01)


@pytest.mark.parametrize(
    ("symbol", "timeframe", "message"),
    [
        ("GBPUSD", "1h", "no bundled sample for symbol 'GBPUSD'; available samples: EURUSD 1h"),
        (None, "1h", "no bundled sample for symbol None; available samples: EURUSD 1h"),
        (
            "EURUSD",
            "15m",
            "the bundled EURUSD sample has 1h bars and cannot give 15m bars; "
            "use one of 1h, 4h, 1d",
        ),
        ("EURUSD", "M1", "the bundled EURUSD sample has 1h bars and cannot give 1m bars"),
        ("EURUSD", "2h", "unknown timeframe '2h'; expected one of 15m, 1h, 4h, 1d"),
    ],
    ids=["other-symbol", "none-symbol", "finer-15m", "finer-1m", "unknown-timeframe"],
)
def test_errors(symbol, timeframe, message) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        load_sample(symbol, timeframe)


def test_samples_and_notice() -> None:
    assert dict(SAMPLES) == {"EURUSD": ("EURUSD_1h_2017_dukascopy.csv", "1h")}
    notice = sample_notice()
    assert "MIT License" in notice
    assert "gym-anytrading" in notice
    assert "Copyright (c) 2019 Mohammad Amin Haghpanah" in notice
    assert "gym-anytrading" in SAMPLE_SOURCE and "MIT" in SAMPLE_SOURCE
