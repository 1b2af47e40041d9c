"""Tests of forexgrid.data.timeframes: names, aliases, inference and FX resampling."""

from __future__ import annotations

import csv
import datetime as dt
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from forexgrid.data.sample import load_sample
from forexgrid.data.timeframes import (
    TIMEFRAMES,
    TRAINABLE_TIMEFRAMES,
    bars_per_year,
    infer_timeframe,
    normalize_timeframe,
    resample,
    timeframe_delta,
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


UTC = dt.timezone.utc
BUCKETS = [
    # Sunday open: only 22:00 and 23:00 exist in the 20:00-24:00 bucket.
    ("4h", dt.datetime(2017, 1, 1, 20, tzinfo=UTC), 4, 2),
    # A full mid-week bucket.
    ("4h", dt.datetime(2017, 6, 14, 12, tzinfo=UTC), 4, 4),
    # Friday close of the year: 20:00 and 21:00.
    ("4h", dt.datetime(2017, 12, 29, 20, tzinfo=UTC), 4, 2),
    # The Sunday-evening bars form their own daily bar, dated that Sunday 00:00 UTC.
    ("1d", dt.datetime(2017, 1, 1, tzinfo=UTC), 24, 2),
    # A Friday in US summer time: the week closes at 21:00 UTC, so 00:00-20:00 (21 bars).
    ("1d", dt.datetime(2017, 6, 16, tzinfo=UTC), 24, 21),
    # The last day, a Friday in winter: 00:00-21:00 (22 bars).
    ("1d", dt.datetime(2017, 12, 29, tzinfo=UTC), 24, 22),
]


@pytest.mark.parametrize(
    ("tf", "start", "hours", "count"),
    BUCKETS,
    ids=[
        "4h-sunday-open",
        "4h-midweek",
        "4h-friday-close",
        "1d-sunday",
        "1d-friday-summer",
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
    # Read off the CSV by eye: 01.01.2017 22:00 and 23:00 rows.
    first_4h = resample(hourly, "4h").iloc[0]
    assert first_4h.name == pd.Timestamp("2017-01-01 20:00", tz="UTC")
    assert first_4h.tolist() == pytest.approx(
        [1.05236, 1.05426, 1.05221, 1.05282, 143539993.3 + 253139999.4], rel=1e-12
    )


def test_resample_counts(hourly: pd.DataFrame) -> None:
    four = resample(hourly, "4h")
    daily = resample(hourly, "1d")
    # 52 weeks x (1 Sunday-evening bucket + 30 weekday buckets) = 1612, minus the 3 buckets
    # of Christmas Day 08:00-20:00 UTC, which has no bars.
    assert len(four) == 1609
    # 260 weekdays (2017-01-02 .. 2017-12-29) + 52 Sunday-evening bars.
    assert len(daily) == 312
    days = daily.index.day_of_week
    assert int((days < 5).sum()) == 260
    assert int((days == 6).sum()) == 52
    assert (daily.index == daily.index.normalize()).all()  # all at 00:00 UTC
    # Volume is conserved; global extremes too.
    for out in (four, daily):
        assert out["volume"].sum() == pytest.approx(hourly["volume"].sum(), rel=1e-12)
        assert out["high"].max() == hourly["high"].max()
        assert out["low"].min() == hourly["low"].min()
        assert out.index.tz is not None and str(out.index.tz) == "UTC"
        assert out.index.name == "time"
        assert list(out.columns) == ["open", "high", "low", "close", "volume"]
        assert all(str(t) == "float64" for t in out.dtypes)


def test_resample_no_weekend_bars(hourly: pd.DataFrame) -> None:
    for tf in ("4h", "1d"):
        out = resample(hourly, tf)
        days = out.index.day_of_week
        assert not (days == 5).any(), f"{tf}: Saturday bar"
        # Sunday bars only hold the evening open: 20:00 for 4h, the 00:00 daily label for 1d.
        sunday_hours = set(out.index[days == 6].hour)
        assert sunday_hours == ({20} if tf == "4h" else {0})
    four = resample(hourly, "4h")
    # Nothing after the Friday 20:00 bucket until Sunday.
    friday = four.index[four.index.day_of_week == 4]
    assert set(friday.hour) == {0, 4, 8, 12, 16, 20}


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
    index = pd.DatetimeIndex(
        ["2020-01-06 00:00", "2020-01-06 01:00", "2020-01-06 09:00", "2020-01-06 10:00"],
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
    # Buckets 04:00 is empty and absent; 00:00 and 08:00 hold two bars each.
    assert list(out.index.hour) == [0, 8]
    np.testing.assert_array_equal(
        out.to_numpy(), [[1.0, 2.5, 0.5, 2.2, 3.0], [3.0, 4.5, 2.5, 4.2, 7.0]]
    )


def test_resample_empty_and_single_bar(hourly: pd.DataFrame) -> None:
    assert resample(hourly.iloc[:0], "4h").empty
    one = resample(hourly.iloc[:1], "4h")
    assert one.index[0] == pd.Timestamp("2017-01-01 20:00", tz="UTC")
    assert one.iloc[0].tolist() == hourly.iloc[0].tolist()
