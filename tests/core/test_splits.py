"""Tests of forexgrid.core.splits: trading-date windows, purges, too-little-data errors."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.core.splits import MIN_TRAIN_ROWS, Splits, make_splits
from forexgrid.data.sample import load_sample
from forexgrid.exceptions import ConfigError, DataError

UTC = "UTC"


def hourly(start: str, periods: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq="1h", tz=UTC, name="time")


def fx_hourly(start: str, end: str) -> pd.DatetimeIndex:
    """1h FX bars: Sunday 17:00 to Friday 16:00 New York time, no weekend bars."""
    index = pd.date_range(start, end, freq="1h", tz=UTC, name="time")
    wall = index.tz_convert("America/New_York")
    hour, day = wall.hour, wall.day_of_week
    weekend = ((day == 4) & (hour >= 17)) | (day == 5) | ((day == 6) & (hour < 17))
    return index[~weekend]


def session_dates(index: pd.DatetimeIndex) -> np.ndarray:
    """Trading dates by their definition: the New York date of the time plus 7 hours."""
    wall = index.tz_convert("America/New_York").tz_localize(None) + pd.Timedelta(hours=7)
    return np.array([t.date() for t in wall])


# 24/7 bars (not FX hours): 2017-01-01 00:00 .. 2017-02-09 23:00 UTC. The last bar, 18:00
# New York, belongs to trading date 2017-02-10; in winter every trading date d holds the
# bars from 22:00 UTC on d - 1 to 21:00 UTC on d.
REGULAR = hourly("2017-01-01", 40 * 24)
BASE = {
    "days_history": 20,
    "validation_days": 10,
    "test_days": 5,
    "horizon": 3,
    "embargo_bars": 2,
    "warmup_bars": 10,
}


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_boundaries_on_a_regular_index():
    splits = make_splits(REGULAR, **BASE)
    assert isinstance(splits, Splits)
    # test: trading dates 02-06 .. 02-10, from 02-05 22:00 UTC (position 35 * 24 + 22 = 862)
    assert splits.test == range(862, 960)
    # validation: 01-27 .. 02-05, from 01-26 22:00 UTC (position 622), minus purge 5
    assert splits.validation == range(622, 857)
    # training: 01-07 .. 01-26, from 01-06 22:00 UTC (position 142), minus purge 5
    assert splits.train == range(142, 617)
    assert splits.warmup == range(132, 142)
    assert splits.purge == 5
    assert splits.end == ts("2017-02-09 23:00")
    assert (splits.test_first_day, splits.test_last_day) == (day("2017-02-06"), day("2017-02-10"))
    assert splits.validation_window == (day("2017-01-27"), day("2017-02-05"))
    assert (splits.validation_first_day, splits.validation_last_day) == splits.validation_window
    assert (splits.train_first_day, splits.train_last_day) == (
        day("2017-01-07"),
        day("2017-01-26"),
    )
    # Cutoffs: 17:00 New York (22:00 UTC in winter) the day before each window's first date.
    assert splits.test_cutoff == ts("2017-02-05 22:00")
    assert splits.validation_cutoff == ts("2017-01-26 22:00")
    assert splits.history_cutoff == ts("2017-01-06 22:00")
    assert (splits.train_start, splits.train_end) == (ts("2017-01-06 22:00"), REGULAR[616])
    assert splits.validation_start == ts("2017-01-26 22:00")
    assert splits.validation_end == REGULAR[856]
    assert (splits.test_start, splits.test_end) == (ts("2017-02-05 22:00"), REGULAR[-1])
    frame = splits.to_frame()
    assert frame["bars"].tolist() == [475, 235, 98]
    assert frame.index.tolist() == ["train", "validation", "test"]
    for name in ("train_first_day", "validation_last_day", "test_last_day"):
        assert type(getattr(splits, name)) is dt.date


def test_a_bar_at_a_cutoff_starts_the_later_window():
    # Half-open [cutoff, next cutoff): the bar opening at 17:00 New York is in the window
    # that starts there; the bar an hour earlier is in the window before.
    splits = make_splits(REGULAR, **{**BASE, "horizon": 1, "embargo_bars": 0})
    edge = REGULAR.get_loc(splits.test_cutoff)
    assert edge == 862 and splits.test.start == edge
    assert splits.validation.stop == edge - 1  # the bar before is validation's, purged (1)
    edge = REGULAR.get_loc(splits.validation_cutoff)
    assert splits.validation.start == edge and splits.train.stop == edge - 1
    assert splits.train.start == REGULAR.get_loc(splits.history_cutoff)


@pytest.mark.parametrize(
    ("horizon", "embargo"),
    [(1, 0), (3, 12), (10, 5), (24, 0)],
    ids=["h1", "h3e12", "h10e5", "h24"],
)
def test_purges_keep_every_target_window_out_of_later_periods(horizon, embargo):
    splits = make_splits(REGULAR, **{**BASE, "horizon": horizon, "embargo_bars": embargo})
    purge = horizon + embargo
    assert splits.purge == purge
    assert splits.validation.start - splits.train.stop == purge
    assert splits.test.start - splits.validation.stop == purge
    train = np.array(splits.train)
    validation = np.array(splits.validation)
    # The guarantee: i + horizon + embargo_bars < start of the next period, for every row ...
    assert (train + horizon + embargo < splits.validation.start).all()
    assert (validation + horizon + embargo < splits.test.start).all()
    # ... and it is tight: the purge removes no more than it must.
    assert train[-1] + horizon + embargo == splits.validation.start - 1
    assert validation[-1] + horizon + embargo == splits.test.start - 1
    # Periods are disjoint and ordered, and the warm-up sits right before training.
    assert splits.warmup.stop == splits.train.start and len(splits.warmup) == BASE["warmup_bars"]
    assert splits.train.stop <= splits.validation.start < splits.test.start


def test_weekends_use_calendar_days_and_follow_new_york():
    # 2017-01-01 is a Sunday; the data ends on Friday 2017-03-31 20:00 UTC (16:00 EDT). US
    # daylight saving starts on Sunday 2017-03-12, so the sessions open at 22:00 UTC before
    # it and at 21:00 UTC after.
    index = fx_hourly("2017-01-01 22:00", "2017-03-31 21:00")
    assert index[-1] == ts("2017-03-31 20:00")
    splits = make_splits(
        index,
        days_history=28,
        validation_days=14,
        test_days=7,
        horizon=1,
        embargo_bars=0,
        warmup_bars=24,
    )
    # 7 calendar days (03-25 .. 03-31) hold 5 trading days = 120 1h bars, not 168.
    assert (splits.test_first_day, splits.test_last_day) == (day("2017-03-25"), day("2017-03-31"))
    assert len(splits.test) == 120
    assert splits.test_cutoff == ts("2017-03-24 21:00")  # Friday 17:00 EDT
    assert splits.test_start == ts("2017-03-26 21:00")  # the Sunday open, 17:00 EDT
    # 14 days (03-11 .. 03-24): 10 trading days, the first opening on the change-over Sunday.
    assert splits.validation_window == (day("2017-03-11"), day("2017-03-24"))
    assert len(splits.validation) == 240 - 1
    assert splits.validation_cutoff == ts("2017-03-10 22:00")  # Friday 17:00 EST
    assert splits.validation_start == ts("2017-03-12 21:00")  # Sunday 17:00 EDT
    # 28 days (02-11 .. 03-10): 20 trading days.
    assert (splits.train_first_day, splits.train_last_day) == (
        day("2017-02-11"),
        day("2017-03-10"),
    )
    assert len(splits.train) == 480 - 1
    assert splits.history_cutoff == ts("2017-02-10 22:00")
    assert splits.train_start == ts("2017-02-12 22:00")


@pytest.fixture(scope="module")
def sample_splits() -> dict[str, Splits]:
    windows = {
        "days_history": 90,
        "validation_days": 60,
        "test_days": 60,
        "horizon": 1,
        "embargo_bars": 0,
        "warmup_bars": 10,
    }
    return {tf: make_splits(load_sample("EURUSD", tf), **windows) for tf in ("1h", "4h", "1d")}


def test_timeframes_of_the_same_data_share_their_windows(sample_splits):
    # The real 2017 sample ends Friday 2017-12-29; its 1h, 4h and 1d bars end at 21:00,
    # 18:00 and (the daily bar's open) 2017-12-28 22:00 UTC, all on trading date 12-29.
    assert [s.end for s in sample_splits.values()] == [
        ts("2017-12-29 21:00"),
        ts("2017-12-29 18:00"),
        ts("2017-12-28 22:00"),
    ]
    for tf, splits in sample_splits.items():
        # test: 12-29 - 59 days = 10-31; validation 09-01 .. 10-30; training 90 days back.
        assert (splits.test_first_day, splits.test_last_day) == (
            day("2017-10-31"),
            day("2017-12-29"),
        ), tf
        assert splits.validation_window == (day("2017-09-01"), day("2017-10-30")), tf
        assert (splits.train_first_day, splits.train_last_day) == (
            day("2017-06-03"),  # 08-31 - 89 days, a Saturday: no bars
            day("2017-08-31"),
        ), tf
        # The windows start at the same instants: 17:00 EDT = 21:00 UTC.
        assert splits.history_cutoff == ts("2017-06-02 21:00"), tf
        assert splits.validation_cutoff == ts("2017-08-31 21:00"), tf
        assert splits.test_cutoff == ts("2017-10-30 21:00"), tf
        assert (splits.train_start, splits.validation_start, splits.test_start) == (
            ts("2017-06-04 21:00"),
            ts("2017-08-31 21:00"),
            ts("2017-10-30 21:00"),
        ), tf
    # Sessions: validation 42 (21 in September, 21 in October to the 30th), test 44
    # (10-31, 22 in November, 21 in December); Christmas Day holds 9 of its 24 hours,
    # 3 of its 6 4h bins. Purge of 1 bar at the end of validation.
    assert [len(s.validation) for s in sample_splits.values()] == [42 * 24 - 1, 42 * 6 - 1, 41]
    assert [len(s.test) for s in sample_splits.values()] == [44 * 24 - 15, 44 * 6 - 3, 44]


def test_windows_hold_whole_trading_dates(sample_splits):
    bars = load_sample("EURUSD", "1h")
    splits = sample_splits["1h"]
    dates = session_dates(bars.index)
    windows = {
        "train": (splits.train.start, splits.train.stop + splits.purge),
        "validation": (splits.validation.start, splits.validation.stop + splits.purge),
        "test": (splits.test.start, splits.test.stop),
    }
    days = {
        "train": (splits.train_first_day, splits.train_last_day),
        "validation": splits.validation_window,
        "test": (splits.test_first_day, splits.test_last_day),
    }
    for name, (first, stop) in windows.items():
        inside = dates[first:stop]
        low, high = days[name]
        assert ((inside >= low) & (inside <= high)).all(), name
        # ... and no bar of those dates is outside the window.
        assert not ((dates[:first] >= low) & (dates[:first] <= high)).any(), name
        assert not ((dates[stop:] >= low) & (dates[stop:] <= high)).any(), name
        # Every session of the window is complete: 24 bars (Christmas Day excepted).
        counts = pd.Series(inside).value_counts()
        assert set(counts) <= {24, 9}, name
        assert (counts == 24).sum() == len(counts) - (name == "test"), name


def test_a_24_7_index_and_a_naive_index_work():
    # Trading dates exist for every timestamp, weekends included; naive times are UTC.
    aware = make_splits(REGULAR, **BASE)
    naive = make_splits(REGULAR.tz_localize(None), **BASE)
    assert (naive.train, naive.validation, naive.test) == (
        aware.train,
        aware.validation,
        aware.test,
    )
    assert naive.validation_window == aware.validation_window
    assert naive.test_cutoff == aware.test_cutoff


def test_whole_days_as_floats_are_accepted():
    as_floats = {**BASE, "days_history": 20.0, "validation_days": np.float64(10), "test_days": 5}
    assert make_splits(REGULAR, **as_floats) == make_splits(REGULAR, **BASE)
    as_numpy = {**BASE, "days_history": np.int64(20)}
    assert make_splits(REGULAR, **as_numpy) == make_splits(REGULAR, **BASE)


def test_accepts_a_frame_and_its_index_alike():
    frame = pd.DataFrame({"close": np.ones(len(REGULAR))}, index=REGULAR)
    assert make_splits(frame, **BASE) == make_splits(REGULAR, **BASE)


def test_too_little_data_message():
    # Last bar 2017-02-20 23:00 UTC = trading date 02-21; 180 days back the training window
    # starts on 2016-08-26, i.e. at 17:00 EDT on 08-25 = 21:00 UTC.
    index = hourly("2017-01-02", 1200)
    message = (
        "not enough data: need about 3,118 bars of 1h data: 60 + 60 + 60 days "
        "(days_history + validation_days + test_days) plus 32 warm-up bars before the "
        "training start 2016-08-25 21:00 UTC (trading date 2016-08-26); the data has 1,200 "
        "bars from 2017-01-02 00:00 to 2017-02-20 23:00 UTC (50.0 days), 0 of them before the "
        "training start (32 needed); load more history or reduce days_history"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(
            index,
            days_history=60,
            validation_days=60,
            test_days=60,
            horizon=3,
            embargo_bars=12,
            warmup_bars=32,
        )


def test_warmup_boundary_is_exact():
    # BASE puts 142 bars before the training start: 142 warm-up bars fit, 143 do not.
    assert make_splits(REGULAR, **{**BASE, "warmup_bars": 142}).warmup == range(0, 142)
    with pytest.raises(
        DataError, match=re.escape("142 of them before the training start (143 needed)")
    ):
        make_splits(REGULAR, **{**BASE, "warmup_bars": 143})


def test_data_must_reach_before_the_training_window_even_without_warmup():
    # One bar before the training start (01-06 21:00 UTC) is enough, none is not.
    assert make_splits(REGULAR[141:], **{**BASE, "warmup_bars": 0}).train.start == 1
    for late in (REGULAR[142:], REGULAR[200:]):
        with pytest.raises(
            DataError, match=re.escape("0 of them before the training start (1 needed)")
        ):
            make_splits(late, **{**BASE, "warmup_bars": 0})


def test_empty_validation_is_reported():
    # One validation day, 02-05, holds its 24 bars; a purge of 24 removes them all.
    message = (
        "the validation period is empty: validation_days = 1 (trading dates 2017-02-05 to "
        "2017-02-05) holds 24 bars and the purge of 24 bars (horizon 20 + embargo_bars 4) "
        "removes them all; use more validation_days or a shorter horizon/embargo"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(REGULAR, **{**BASE, "validation_days": 1, "horizon": 20, "embargo_bars": 4})
    # One bar fewer of purge leaves one validation row.
    one = make_splits(REGULAR, **{**BASE, "validation_days": 1, "horizon": 20, "embargo_bars": 3})
    assert len(one.validation) == 1 and one.validation_start == ts("2017-02-04 22:00")


def test_short_training_is_reported():
    message = (
        "the training period has 19 rows after the purge of 5 bars (horizon 3 + embargo_bars "
        "2); at least 50 are needed: days_history = 1 (trading dates 2017-01-26 to "
        "2017-01-26) holds 24 bars; use more days_history"
    )
    assert MIN_TRAIN_ROWS == 50
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(REGULAR, **{**BASE, "days_history": 1})
    # The threshold is a parameter.
    assert len(make_splits(REGULAR, **{**BASE, "days_history": 1}, min_train_rows=19).train) == 19


WHOLE = "must be a whole number of days >= 1, got"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("horizon", 0, "horizon: must be an integer >= 1, got 0"),
        ("horizon", 2.0, "horizon: must be an integer >= 1, got 2.0"),
        ("embargo_bars", -1, "embargo_bars: must be an integer >= 0, got -1"),
        ("warmup_bars", True, "warmup_bars: must be an integer >= 0, got True"),
        ("test_days", 0, f"test_days: {WHOLE} 0"),
        ("test_days", -3, f"test_days: {WHOLE} -3"),
        ("validation_days", 2.5, f"validation_days: {WHOLE} 2.5"),
        ("validation_days", 0.1, f"validation_days: {WHOLE} 0.1"),
        ("days_history", float("nan"), f"days_history: {WHOLE} nan"),
        ("days_history", float("inf"), f"days_history: {WHOLE} inf"),
        ("days_history", True, f"days_history: {WHOLE} True"),
        ("validation_days", "60", f"validation_days: {WHOLE} '60'"),
    ],
    ids=[
        "h0",
        "h_float",
        "embargo",
        "warmup_bool",
        "test0",
        "test_negative",
        "val_fraction",
        "val_small_fraction",
        "history_nan",
        "history_inf",
        "history_bool",
        "val_str",
    ],
)
def test_bad_parameters(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_splits(REGULAR, **{**BASE, key: value})


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (pd.RangeIndex(10), "make_splits needs a DatetimeIndex of bars, got RangeIndex"),
        (REGULAR[:0], "not enough data: the bar index is empty"),
        (REGULAR[::-1], "the bar index must be strictly increasing (no duplicates)"),
    ],
    ids=["not_datetime", "empty", "unsorted"],
)
def test_bad_index(index, message):
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(index, **BASE)


@settings(max_examples=60, deadline=None)
@given(
    days_history=st.integers(1, 30),
    validation_days=st.integers(1, 10),
    test_days=st.integers(1, 10),
    horizon=st.integers(1, 30),
    embargo=st.integers(0, 20),
    warmup=st.integers(0, 60),
    drop_weekends=st.booleans(),
)
def test_split_invariants(
    days_history, validation_days, test_days, horizon, embargo, warmup, drop_weekends
):
    index = fx_hourly("2017-01-01 22:00", "2017-03-31 21:00") if drop_weekends else REGULAR
    try:
        splits = make_splits(
            index,
            days_history=days_history,
            validation_days=validation_days,
            test_days=test_days,
            horizon=horizon,
            embargo_bars=embargo,
            warmup_bars=warmup,
        )
    except DataError:
        return
    dates = session_dates(index)
    one = dt.timedelta(days=1)
    last = dates[-1]
    test_left = last - test_days * one  # exclusive bounds, as in the module docstring
    validation_left = test_left - validation_days * one
    train_left = validation_left - days_history * one
    assert (dates[splits.test.start :] > test_left).all() and splits.test.stop == len(index)
    assert dates[splits.test.start - 1] <= test_left
    validation = dates[splits.validation.start : splits.validation.stop + splits.purge]
    assert ((validation > validation_left) & (validation <= test_left)).all()
    assert dates[splits.validation.start - 1] <= validation_left
    train = dates[splits.train.start : splits.train.stop + splits.purge]
    assert ((train > train_left) & (train <= validation_left)).all()
    assert dates[splits.train.start - 1] <= train_left
    assert splits.validation.stop + splits.purge == splits.test.start
    assert splits.train.stop + splits.purge == splits.validation.start
    # The [cutoff, next cutoff) rule in time.
    assert index[splits.test.start - 1] < splits.test_cutoff <= index[splits.test.start]
    assert index[splits.train.start - 1] < splits.history_cutoff <= index[splits.train.start]
    assert len(splits.train) >= MIN_TRAIN_ROWS and len(splits.validation) > 0
    assert splits.train.start >= warmup and splits.warmup.start >= 0
    assert splits.train.stop - 1 + horizon + embargo < splits.validation.start
    assert splits.validation.stop - 1 + horizon + embargo < splits.test.start
