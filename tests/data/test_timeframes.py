"""Tests of forexgrid.data.timeframes: names, aliases, inference, the New York 17:00 trading
calendar and FX resampling."""

from __future__ import annotations

import csv
import datetime as dt
import re
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forexgrid.data.sample import load_sample
from forexgrid.data.timeframes import (
    TIMEFRAMES,
    TRAINABLE_TIMEFRAMES,
    bar_end_times,
    bars_per_year,
    infer_timeframe,
    normalize_timeframe,
    resample,
    timeframe_delta,
    trading_date_open,
    trading_dates,
)
from forexgrid.exceptions import DataError

UNKNOWN_PREFIX = "unknown timeframe {!r}; expected one of 15m, 1h, 4h, 1d (aliases: "


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return load_sample("EURUSD", "1h")


@pytest.fixture(scope="module")
def raw_rows() -> list[tuple[dt.datetime, float, float, float, float, float]]:
    """The sample's rows parsed with the csv module, independently of read_bars."""
    text = (
        resources.files("forexgrid.data")
        .joinpath("samples", "EURUSD_1h_2017_dukascopy.csv")
        .read_text("utf-8")
    )
    rows = list(csv.reader(text.splitlines()))[1:]
    return [
        (
            dt.datetime.strptime(r[0], "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc),
            *(float(x) for x in r[1:]),
        )
        for r in rows
    ]


# ------------------------------------------------------------------------------ names


def test_timeframes_ordered_fine_to_coarse() -> None:
    deltas = [pd.Timedelta(offset) for offset in TIMEFRAMES.values()]
    assert list(TIMEFRAMES) == ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
    assert deltas == sorted(deltas)
    assert TRAINABLE_TIMEFRAMES == ("15m", "1h", "4h", "1d")
    assert set(TRAINABLE_TIMEFRAMES) <= set(TIMEFRAMES)


ALIASES = [
    ("1m", "1m"),
    ("M1", "1m"),
    ("1min", "1m"),
    ("1M", "1m"),  # minute, never month (documented choice)
    ("M5", "5m"),
    ("5m", "5m"),
    ("5min", "5m"),
    ("M15", "15m"),
    ("15m", "15m"),
    ("15min", "15m"),
    ("15M", "15m"),
    ("m15", "15m"),
    ("M30", "30m"),
    ("30m", "30m"),
    ("H1", "1h"),
    ("1H", "1h"),
    ("1h", "1h"),
    ("60m", "1h"),
    ("60min", "1h"),
    ("h1", "1h"),
    (" 1h ", "1h"),
    ("H4", "4h"),
    ("4H", "4h"),
    ("4h", "4h"),
    ("240m", "4h"),
    ("D1", "1d"),
    ("1D", "1d"),
    ("1d", "1d"),
    ("D", "1d"),
    ("daily", "1d"),
    ("Daily", "1d"),
]


@pytest.mark.parametrize(("alias", "canonical"), ALIASES, ids=[a for a, _ in ALIASES])
def test_normalize_timeframe_aliases(alias: str, canonical: str) -> None:
    assert normalize_timeframe(alias) == canonical


@pytest.mark.parametrize("value", ["2h", "1w", "", "1 h", "H", "month", "1mo", "15"])
def test_normalize_timeframe_unknown(value: str) -> None:
    with pytest.raises(DataError, match=re.escape(UNKNOWN_PREFIX.format(value))):
        normalize_timeframe(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(60, "60 (int)"), (None, "None (NoneType)"), (1.0, "1.0 (float)"), (True, "True (bool)")],
    ids=["int", "none", "float", "bool"],
)
def test_normalize_timeframe_not_a_string(value: object, shown: str) -> None:
    with pytest.raises(
        DataError, match=re.escape(f"timeframe must be a string such as '1h', got {shown}")
    ):
        normalize_timeframe(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tf", "delta", "per_year"),
    [
        ("1m", pd.Timedelta(minutes=1), 1440 * 5 * 52),
        ("5m", pd.Timedelta(minutes=5), 288 * 5 * 52),
        ("15m", pd.Timedelta(minutes=15), 96 * 5 * 52),
        ("30m", pd.Timedelta(minutes=30), 48 * 5 * 52),
        ("H1", pd.Timedelta(hours=1), 24 * 5 * 52),
        ("4h", pd.Timedelta(hours=4), 6 * 5 * 52),
        ("D1", pd.Timedelta(days=1), 5 * 52),
    ],
    ids=["1m", "5m", "15m", "30m", "1h", "4h", "1d"],
)
def test_delta_and_bars_per_year(tf: str, delta: pd.Timedelta, per_year: int) -> None:
    assert timeframe_delta(tf) == delta
    assert bars_per_year(tf) == pytest.approx(per_year, rel=0, abs=1e-9)
    assert isinstance(bars_per_year(tf), float)


# ------------------------------------------------------------------------------ inference


def test_infer_timeframe_on_sample(hourly: pd.DataFrame) -> None:
    assert infer_timeframe(hourly) == "1h"
    assert infer_timeframe(hourly.index) == "1h"
    assert infer_timeframe(resample(hourly, "4h")) == "4h"
    assert infer_timeframe(resample(hourly, "1d")) == "1d"


def test_infer_timeframe_errors(hourly: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=re.escape("cannot infer the timeframe from 1 bar(s)")):
        infer_timeframe(hourly.iloc[:1])
    every_other = hourly.iloc[::2]  # 2-hour spacing: no such timeframe
    with pytest.raises(
        DataError,
        match=re.escape("the median spacing of the bars is 0 days 02:00:00, which matches none"),
    ):
        infer_timeframe(every_other)
    with pytest.raises(
        DataError, match=re.escape("bars must have a DatetimeIndex, got RangeIndex")
    ):
        infer_timeframe(hourly.reset_index())


# ------------------------------------------------------------------------------ calendar

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def session_of(when: dt.datetime) -> dt.date:
    """The trading date by its definition, in plain Python: New York date of time + 7h."""
    return (when.astimezone(NEW_YORK) + dt.timedelta(hours=7)).date()


# (UTC instant, expected trading date); 2017 US daylight saving: 2017-03-12 .. 2017-11-05.
EDGES = [
    ("2017-01-08 21:59", "2017-01-08"),  # Sunday 16:59 New York (EST): still Sunday
    ("2017-01-08 22:00", "2017-01-09"),  # Sunday 17:00 New York: the Monday session
    ("2017-01-13 21:59", "2017-01-13"),  # Friday 16:59 New York: Friday
    ("2017-01-13 22:00", "2017-01-14"),  # Friday 17:00 New York: Saturday
    ("2017-07-09 20:59", "2017-07-09"),  # Sunday 16:59 EDT
    ("2017-07-09 21:00", "2017-07-10"),  # Sunday 17:00 EDT = 21:00 UTC in summer
    ("2017-07-14 20:59", "2017-07-14"),  # Friday 16:59 EDT
    ("2017-07-14 21:00", "2017-07-15"),  # Friday 17:00 EDT
    # Spring forward, Sunday 2017-03-12 02:00 EST -> 03:00 EDT: its trading date runs from
    # Saturday 22:00 UTC (17:00 EST) to Sunday 21:00 UTC (17:00 EDT), 23 hours.
    ("2017-03-11 21:59", "2017-03-11"),
    ("2017-03-11 22:00", "2017-03-12"),
    ("2017-03-12 06:59", "2017-03-12"),  # 01:59 EST
    ("2017-03-12 07:00", "2017-03-12"),  # 03:00 EDT
    ("2017-03-12 20:59", "2017-03-12"),
    ("2017-03-12 21:00", "2017-03-13"),
    # Fall back, Sunday 2017-11-05 02:00 EDT -> 01:00 EST: from Saturday 21:00 UTC (17:00
    # EDT) to Sunday 22:00 UTC (17:00 EST), 25 hours; 01:30 happens twice, same date.
    ("2017-11-04 20:59", "2017-11-04"),
    ("2017-11-04 21:00", "2017-11-05"),
    ("2017-11-05 05:30", "2017-11-05"),  # 01:30 EDT
    ("2017-11-05 06:30", "2017-11-05"),  # 01:30 EST
    ("2017-11-05 21:59", "2017-11-05"),
    ("2017-11-05 22:00", "2017-11-06"),
]


def test_trading_dates_at_the_edges() -> None:
    times = pd.DatetimeIndex([t for t, _ in EDGES], tz="UTC")
    got = trading_dates(times)
    assert got.dtype == np.dtype("datetime64[D]")
    assert [str(d) for d in got] == [d for _, d in EDGES]
    # The plain-Python definition agrees.
    assert [str(session_of(t.to_pydatetime())) for t in times] == [d for _, d in EDGES]


def test_trading_dates_inputs() -> None:
    times = pd.DatetimeIndex([t for t, _ in EDGES], tz="UTC", name="time")
    expected = trading_dates(times)
    np.testing.assert_array_equal(trading_dates(times.tz_localize(None)), expected)  # naive
    np.testing.assert_array_equal(trading_dates(times.tz_convert("Asia/Tokyo")), expected)
    frame = pd.DataFrame({"close": np.ones(len(times))}, index=times)
    np.testing.assert_array_equal(trading_dates(frame), expected)
    np.testing.assert_array_equal(trading_dates(frame["close"]), expected)
    assert trading_dates(times[:0]).shape == (0,)
    with pytest.raises(
        DataError, match=re.escape("bars must have a DatetimeIndex, got RangeIndex")
    ):
        trading_dates(pd.RangeIndex(3))  # type: ignore[arg-type]


def test_trading_dates_of_the_sample(hourly: pd.DataFrame) -> None:
    got = trading_dates(hourly)
    expected = [session_of(t) for t in hourly.index.to_pydatetime()]
    assert [d.item() for d in got] == expected
    days = pd.DatetimeIndex(np.unique(got))
    # Every FX session of 2017 is a weekday: 260 of them, none on a weekend.
    assert len(days) == 260 and (days.day_of_week < 5).all()
    assert (days[0], days[-1]) == (pd.Timestamp("2017-01-02"), pd.Timestamp("2017-12-29"))


def test_trading_date_open() -> None:
    opens = trading_date_open([dt.date(2017, 1, 2), "2017-03-12", "2017-03-13", "2017-07-10"])
    assert list(opens) == [
        pd.Timestamp("2017-01-01 22:00", tz="UTC"),  # 17:00 EST on the Sunday before
        pd.Timestamp("2017-03-11 22:00", tz="UTC"),  # Saturday 17:00 EST
        pd.Timestamp("2017-03-12 21:00", tz="UTC"),  # Sunday 17:00 EDT
        pd.Timestamp("2017-07-09 21:00", tz="UTC"),
    ]
    # It is the first instant of its trading date.
    dates = trading_dates(opens)
    assert [str(d) for d in dates] == ["2017-01-02", "2017-03-12", "2017-03-13", "2017-07-10"]
    before = trading_dates(opens - pd.Timedelta(microseconds=1))
    assert [str(d) for d in before] == ["2017-01-01", "2017-03-11", "2017-03-12", "2017-07-09"]


def all_week_bars(start: str, hours: int) -> pd.DataFrame:
    """Hourly 24/7 bars (not FX hours), each with volume 1 so sums count bars."""
    index = pd.date_range(start, periods=hours, freq="1h", tz="UTC", name="time")
    ones = np.ones(hours)
    return pd.DataFrame(
        {"open": ones, "high": ones, "low": ones, "close": ones, "volume": ones}, index=index
    )


def test_bar_end_times_of_fx_bars(hourly: pd.DataFrame) -> None:
    for tf, delta in (("1h", "1h"), ("4h", "4h"), ("1d", "24h")):
        bars = resample(hourly, tf)
        ends = bar_end_times(bars, tf)
        assert ends.dtype == np.int64
        # FX bars (Sunday 17:00 to Friday 17:00 New York) never straddle a clock change.
        opens = bars.index.as_unit("ns").asi8
        np.testing.assert_array_equal(ends, opens + pd.Timedelta(delta).value)
        assert (ends[:-1] <= opens[1:]).all()
    daily_ends = pd.to_datetime(bar_end_times(resample(hourly, "1d"), "D1"), utc=True)
    assert daily_ends[0] == pd.Timestamp("2017-01-02 22:00", tz="UTC")
    # The Friday session before the spring change ends 22:00 UTC, the Monday one 21:00 UTC.
    assert pd.Timestamp("2017-03-10 22:00", tz="UTC") in daily_ends
    assert pd.Timestamp("2017-03-13 21:00", tz="UTC") in daily_ends


@pytest.mark.parametrize(
    ("start", "tf", "label", "end", "bars"),
    [
        # Spring: the 01:00-05:00 New York bin of 2017-03-12 is 3 real hours, its day 23.
        ("2017-03-11 00:00", "4h", "2017-03-12 06:00", "2017-03-12 09:00", 3),
        ("2017-03-11 00:00", "1d", "2017-03-11 22:00", "2017-03-12 21:00", 23),
        # Fall: the doubled 01:00 starts the bin at its first (EDT) occurrence: 5 hours.
        ("2017-11-04 00:00", "4h", "2017-11-05 05:00", "2017-11-05 10:00", 5),
        ("2017-11-04 00:00", "1d", "2017-11-04 21:00", "2017-11-05 22:00", 25),
    ],
    ids=["spring-4h", "spring-1d", "fall-4h", "fall-1d"],
)
def test_clock_changes_on_all_week_data(start, tf, label, end, bars) -> None:
    out = resample(all_week_bars(start, 72), tf)
    when = pd.Timestamp(label, tz="UTC")
    assert out.loc[when, "volume"] == bars
    ends = pd.to_datetime(bar_end_times(out, tf), utc=True)
    assert ends[out.index.get_loc(when)] == pd.Timestamp(end, tz="UTC")
    # Bins tile time: each ends where the next begins, and a 4h bin never spans two dates.
    assert (ends[:-1] == out.index[1:]).all()
    assert (out["volume"].to_numpy() == (ends - out.index) / pd.Timedelta(hours=1))[1:-1].all()


def test_bar_end_times_finer_and_errors(hourly: pd.DataFrame) -> None:
    np.testing.assert_array_equal(
        bar_end_times(hourly.index[:3], "H1"),
        hourly.index[:3].as_unit("ns").asi8 + pd.Timedelta(hours=1).value,
    )
    np.testing.assert_array_equal(
        bar_end_times(hourly.index[:3].tz_localize(None), "15m"),
        hourly.index[:3].as_unit("ns").asi8 + pd.Timedelta(minutes=15).value,
    )
    # A label inside a bin ends with its bin: 2017-01-02 12:00 UTC = 07:00 EST -> 09:00 EST.
    inside = pd.DatetimeIndex(["2017-01-02 12:00"], tz="UTC")
    assert bar_end_times(inside, "4h")[0] == pd.Timestamp("2017-01-02 14:00", tz="UTC").value
    with pytest.raises(DataError, match=re.escape(UNKNOWN_PREFIX.format("2h"))):
        bar_end_times(hourly, "2h")


# ------------------------------------------------------------------------------ resampling


def _expected(rows, start: dt.datetime, hours: int) -> dict[str, float]:
    """OHLCV of the raw rows in [start, start + hours), computed with plain Python."""
    end = start + dt.timedelta(hours=hours)
    inside = [r for r in rows if start <= r[0] < end]
    assert inside, "bucket must hold rows"
    return {
        "open": inside[0][1],
        "high": max(r[2] for r in inside),
        "low": min(r[3] for r in inside),
        "close": inside[-1][4],
        "volume": sum(r[5] for r in inside),
        "n": len(inside),
    }


BUCKETS = [
    # The week's first 4h bin, Sunday 17:00-21:00 New York (EST) = 22:00-02:00 UTC.
    ("4h", dt.datetime(2017, 1, 1, 22, tzinfo=UTC), 4, 4),
    # A summer mid-week bin, 09:00-13:00 EDT = 13:00-17:00 UTC.
    ("4h", dt.datetime(2017, 6, 14, 13, tzinfo=UTC), 4, 4),
    # The last bin of the year, Friday 13:00-17:00 EST = 18:00-22:00 UTC.
    ("4h", dt.datetime(2017, 12, 29, 18, tzinfo=UTC), 4, 4),
    # Christmas: the sample has 23:00 UTC Dec 24 to 07:00 UTC Dec 25, then stops.
    ("4h", dt.datetime(2017, 12, 24, 22, tzinfo=UTC), 4, 3),
    ("4h", dt.datetime(2017, 12, 25, 6, tzinfo=UTC), 4, 2),
    # The Monday session of 2017-01-02: Sunday 22:00 UTC to Monday 22:00 UTC, 24 bars.
    ("1d", dt.datetime(2017, 1, 1, 22, tzinfo=UTC), 24, 24),
    # A Friday in US summer time: Thursday 21:00 UTC to the week's close at 21:00 UTC.
    ("1d", dt.datetime(2017, 6, 15, 21, tzinfo=UTC), 24, 24),
    # Both sides of the spring change: Friday in EST, Monday in EDT.
    ("1d", dt.datetime(2017, 3, 9, 22, tzinfo=UTC), 24, 24),
    ("1d", dt.datetime(2017, 3, 12, 21, tzinfo=UTC), 24, 24),
    # Both sides of the autumn change: Friday in EDT, Monday in EST.
    ("1d", dt.datetime(2017, 11, 2, 21, tzinfo=UTC), 24, 24),
    ("1d", dt.datetime(2017, 11, 5, 22, tzinfo=UTC), 24, 24),
    # Christmas Monday: 9 bars. The last day, Friday 2017-12-29: 24 bars.
    ("1d", dt.datetime(2017, 12, 24, 22, tzinfo=UTC), 24, 9),
    ("1d", dt.datetime(2017, 12, 28, 22, tzinfo=UTC), 24, 24),
]


@pytest.mark.parametrize(
    ("tf", "start", "hours", "count"),
    BUCKETS,
    ids=[
        "4h-sunday-open",
        "4h-midweek-summer",
        "4h-friday-close",
        "4h-christmas-open",
        "4h-christmas-close",
        "1d-monday",
        "1d-friday-summer",
        "1d-friday-before-spring",
        "1d-monday-after-spring",
        "1d-friday-before-fall",
        "1d-monday-after-fall",
        "1d-christmas",
        "1d-friday-last",
    ],
)
def test_resample_matches_hand_computation(hourly, raw_rows, tf, start, hours, count) -> None:
    expected = _expected(raw_rows, start, hours)
    assert expected["n"] == count
    out = resample(hourly, tf)
    bar = out.loc[pd.Timestamp(start)]
    for column in ("open", "high", "low", "close"):
        assert bar[column] == expected[column], column
    assert bar["volume"] == pytest.approx(expected["volume"], rel=1e-12)


def test_resample_literal_values_of_the_first_bars(hourly: pd.DataFrame) -> None:
    # Read off the CSV by eye: the 01.01.2017 22:00, 23:00 and 02.01.2017 00:00, 01:00 rows.
    first_4h = resample(hourly, "4h").iloc[0]
    assert first_4h.name == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert first_4h.tolist() == pytest.approx(
        [1.05236, 1.05426, 1.05221, 1.0524, 143539993.3 + 253139999.4 + 131399993.9 + 273940002.4],
        rel=1e-12,
    )
    assert resample(hourly, "1d").index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")


def test_resample_counts(hourly: pd.DataFrame) -> None:
    four = resample(hourly, "4h")
    daily = resample(hourly, "1d")
    # 260 sessions x 6 bins = 1560, minus the 3 empty bins of Christmas Day (05:00, 09:00
    # and 13:00 New York); one daily bar per session.
    assert len(four) == 1557
    assert len(daily) == 260
    # The NY-close convention makes real data hold bars_per_year's counts (within 1%).
    for tf, bars in (("1h", hourly), ("4h", four), ("1d", daily)):
        assert len(bars) == pytest.approx(bars_per_year(tf), rel=0.01), tf
    # Volume is conserved; global extremes too.
    for out in (four, daily):
        assert out["volume"].sum() == pytest.approx(hourly["volume"].sum(), rel=1e-12)
        assert out["high"].max() == hourly["high"].max()
        assert out["low"].min() == hourly["low"].min()
        assert out.index.tz is not None and str(out.index.tz) == "UTC"
        assert out.index.name == "time"
        assert out.index.dtype == hourly.index.dtype
        assert list(out.columns) == ["open", "high", "low", "close", "volume"]
        assert all(str(t) == "float64" for t in out.dtypes)


def test_resample_daily_is_one_bar_per_weekday(hourly: pd.DataFrame) -> None:
    daily = resample(hourly, "1d")
    sessions = [session_of(t) for t in daily.index.to_pydatetime()]
    # One bar per weekday that has data, and no Saturday or Sunday session.
    weekdays = pd.bdate_range("2017-01-02", "2017-12-29").date.tolist()
    assert sessions == weekdays
    # Each bar opens at 17:00 New York the day before: 22:00 UTC in winter, 21:00 in summer.
    wall = daily.index.tz_convert("America/New_York")
    assert set(zip(wall.hour, wall.minute, strict=True)) == {(17, 0)}
    assert daily.index[daily.index.month == 7].hour.unique().tolist() == [21]
    assert daily.index[daily.index.month == 1].hour.unique().tolist() == [22]
    # Every 1h bar of a trading date is in that date's daily bar, and in no other.
    hour_sessions = pd.Series([session_of(t) for t in hourly.index.to_pydatetime()])
    grouped = hourly.reset_index(drop=True).groupby(hour_sessions)
    np.testing.assert_array_equal(daily["open"].to_numpy(), grouped["open"].first().to_numpy())
    np.testing.assert_array_equal(daily["close"].to_numpy(), grouped["close"].last().to_numpy())
    np.testing.assert_array_equal(daily["high"].to_numpy(), grouped["high"].max().to_numpy())
    np.testing.assert_array_equal(daily["low"].to_numpy(), grouped["low"].min().to_numpy())
    np.testing.assert_allclose(daily["volume"], grouped["volume"].sum(), rtol=1e-12)


def test_resample_4h_bins_in_new_york_wall_time(hourly: pd.DataFrame) -> None:
    four = resample(hourly, "4h")
    wall = four.index.tz_convert("America/New_York")
    assert set(wall.hour) == {17, 21, 1, 5, 9, 13}
    assert set(wall.minute) == {0}
    # In UTC the bins move by an hour with daylight saving.
    assert set(four.index[four.index.month == 1].hour) == {22, 2, 6, 10, 14, 18}
    assert set(four.index[four.index.month == 7].hour) == {21, 1, 5, 9, 13, 17}
    # No bin holds bars of two trading dates, and each holds at most 4 hourly bars.
    sessions = trading_dates(hourly)
    bins = four.index.searchsorted(hourly.index, side="right") - 1
    per_bin = pd.Series(sessions).groupby(bins).nunique()
    assert (per_bin == 1).all()
    assert pd.Series(bins).value_counts().max() == 4


def test_resample_no_weekend_bars(hourly: pd.DataFrame) -> None:
    for tf in ("4h", "1d"):
        out = resample(hourly, tf)
        wall = out.index.tz_convert("America/New_York")
        # No bar opens between Friday 17:00 and Sunday 17:00 New York.
        friday_late = (wall.day_of_week == 4) & (wall.hour >= 17)
        sunday_early = (wall.day_of_week == 6) & (wall.hour < 17)
        assert not (friday_late | (wall.day_of_week == 5) | sunday_early).any(), tf
        # Sunday bars open the week at 17:00 New York (and, for 4h, 21:00).
        assert set(wall[wall.day_of_week == 6].hour) == ({17, 21} if tf == "4h" else {17})
    four = resample(hourly, "4h")
    friday = four.index.tz_convert("America/New_York")
    assert set(friday[friday.day_of_week == 4].hour) == {1, 5, 9, 13}


def test_resample_daily_equals_daily_of_4h(hourly: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        resample(hourly, "1d"),
        resample(resample(hourly, "4h"), "1d"),
        check_exact=False,
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("canonical", "aliases"),
    [("4h", ["4H", "H4", "240m", "240min"]), ("1d", ["D1", "1D", "D", "daily"])],
    ids=["4h", "1d"],
)
def test_resample_aliases_identical(hourly, canonical, aliases) -> None:
    reference = resample(hourly, canonical)
    for alias in aliases:
        pd.testing.assert_frame_equal(resample(hourly, alias), reference, check_exact=True)


def test_resample_same_timeframe_is_an_equal_copy(hourly: pd.DataFrame) -> None:
    out = resample(hourly, "H1")
    pd.testing.assert_frame_equal(out, hourly, check_exact=True)
    assert out is not hourly
    before = hourly["close"].iloc[0]
    out.iloc[0, out.columns.get_loc("close")] = 99.0
    assert hourly["close"].iloc[0] == before


def test_resample_to_finer_is_an_error(hourly: pd.DataFrame) -> None:
    with pytest.raises(
        DataError,
        match=re.escape(
            "cannot resample 1h bars to the finer timeframe 15m: resampling only aggregates"
        ),
    ):
        resample(hourly, "M15")
    with pytest.raises(
        DataError, match=re.escape("cannot resample 4h bars to the finer timeframe 1h")
    ):
        resample(resample(hourly, "4h"), "1h")


def test_resample_unknown_timeframe(hourly: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=re.escape(UNKNOWN_PREFIX.format("2h"))):
        resample(hourly, "2h")


def test_resample_rejects_non_bars(hourly: pd.DataFrame) -> None:
    naive = hourly.tz_localize(None)
    with pytest.raises(
        DataError, match=re.escape("bars must have a tz-aware UTC DatetimeIndex, got tz=None")
    ):
        resample(naive, "4h")
    other_zone = hourly.tz_convert("Europe/London")
    with pytest.raises(DataError, match=re.escape("got tz=Europe/London")):
        resample(other_zone, "4h")
    with pytest.raises(DataError, match=re.escape("bars are missing column(s) volume")):
        resample(hourly.drop(columns="volume"), "4h")
    with pytest.raises(DataError, match=re.escape("bars must be a pandas DataFrame, got Series")):
        resample(hourly["close"], "4h")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=re.escape("strictly increasing index without duplicates")):
        resample(hourly.iloc[::-1], "4h")


def test_resample_gap_is_not_filled() -> None:
    # Monday 2020-01-06 session (EST): 22:00 and 23:00 UTC Sunday are 17:00 and 18:00 New
    # York (the 17:00 bin, labelled 22:00 UTC); 06:00 and 07:00 UTC are 01:00 and 02:00 New
    # York (the 01:00 bin, labelled 06:00 UTC). The 21:00 bin (02:00 UTC) is empty.
    index = pd.DatetimeIndex(
        ["2020-01-05 22:00", "2020-01-05 23:00", "2020-01-06 06:00", "2020-01-06 07:00"],
        tz="UTC",
        name="time",
    )
    bars = pd.DataFrame(
        {
            "open": [1.0, 2.0, 3.0, 4.0],
            "high": [1.5, 2.5, 3.5, 4.5],
            "low": [0.5, 1.5, 2.5, 3.5],
            "close": [1.2, 2.2, 3.2, 4.2],
            "volume": [1.0, 2.0, 3.0, 4.0],
        },
        index=index,
    )
    out = resample(bars, "4h")
    assert list(out.index) == [
        pd.Timestamp("2020-01-05 22:00", tz="UTC"),
        pd.Timestamp("2020-01-06 06:00", tz="UTC"),
    ]
    np.testing.assert_array_equal(
        out.to_numpy(), [[1.0, 2.5, 0.5, 2.2, 3.0], [3.0, 4.5, 2.5, 4.2, 7.0]]
    )
    daily = resample(bars, "1d")
    assert list(daily.index) == [pd.Timestamp("2020-01-05 22:00", tz="UTC")]
    np.testing.assert_array_equal(daily.to_numpy(), [[1.0, 4.5, 0.5, 4.2, 10.0]])


def test_resample_finer_than_4h_stays_on_utc_hours() -> None:
    # 15m bars from 21:30 to 22:45 UTC: 1h bins at 21:00 and 22:00 UTC, as before.
    index = pd.date_range("2020-01-05 21:30", periods=6, freq="15min", tz="UTC", name="time")
    values = np.arange(1.0, 7.0)
    bars = pd.DataFrame(
        {"open": values, "high": values, "low": values, "close": values, "volume": values},
        index=index,
    )
    out = resample(bars, "1h")
    assert list(out.index.hour) == [21, 22]
    assert out["volume"].tolist() == [1.0 + 2.0, 3.0 + 4.0 + 5.0 + 6.0]


def test_resample_empty_and_single_bar(hourly: pd.DataFrame) -> None:
    assert resample(hourly.iloc[:0], "4h").empty
    one = resample(hourly.iloc[:1], "4h")
    assert one.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert one.iloc[0].tolist() == hourly.iloc[0].tolist()
