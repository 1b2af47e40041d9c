"""Tests of forexgrid.core.splits: calendar-day windows, purges, too-little-data errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.core.splits import MIN_TRAIN_ROWS, Splits, make_splits
from forexgrid.exceptions import ConfigError, DataError

UTC = "UTC"


def hourly(start: str, periods: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq="1h", tz=UTC, name="time")


def fx_hourly(start: str, end: str) -> pd.DatetimeIndex:
    """1h FX bars: Sunday 22:00 to Friday 21:00 UTC, no weekend bars."""
    index = pd.date_range(start, end, freq="1h", tz=UTC, name="time")
    hour, day = index.hour, index.day_of_week
    weekend = ((day == 4) & (hour >= 22)) | (day == 5) | ((day == 6) & (hour < 22))
    return index[~weekend]


REGULAR = hourly("2017-01-01", 40 * 24)  # 2017-01-01 00:00 .. 2017-02-09 23:00
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


def test_boundaries_on_a_regular_index():
    splits = make_splits(REGULAR, **BASE)
    assert isinstance(splits, Splits)
    # test: (end - 5 days, end] = 2017-02-05 00:00 .. 2017-02-09 23:00 = 120 bars
    assert splits.test == range(840, 960)
    # validation: (end - 15 days, end - 5 days] = positions 600..839, minus purge 5
    assert splits.validation == range(600, 835)
    # training: (end - 35 days, end - 15 days] = positions 120..599, minus purge 5
    assert splits.train == range(120, 595)
    assert splits.warmup == range(110, 120)
    assert splits.purge == 5
    assert splits.end == ts("2017-02-09 23:00")
    assert splits.test_cutoff == ts("2017-02-04 23:00")
    assert splits.validation_cutoff == ts("2017-01-25 23:00")
    assert splits.history_cutoff == ts("2017-01-05 23:00")
    assert (splits.train_start, splits.train_end) == (ts("2017-01-06 00:00"), REGULAR[594])
    assert splits.validation_start == ts("2017-01-26 00:00")
    assert splits.validation_end == REGULAR[834]
    assert (splits.test_start, splits.test_end) == (ts("2017-02-05 00:00"), REGULAR[-1])
    frame = splits.to_frame()
    assert frame["bars"].tolist() == [475, 235, 120]
    assert frame.index.tolist() == ["train", "validation", "test"]


def test_bar_exactly_test_days_before_the_last_is_not_in_test():
    splits = make_splits(REGULAR, **{**BASE, "horizon": 1, "embargo_bars": 0})
    edge = REGULAR.get_loc(REGULAR[-1] - pd.Timedelta(days=5))
    assert edge == 839
    assert edge not in splits.test and splits.test.start == edge + 1
    # It belongs to validation's window, where the purge (1 bar) then removes it.
    assert splits.validation.stop == edge
    # Same rule at the validation/training edge.
    edge = REGULAR.get_loc(REGULAR[-1] - pd.Timedelta(days=15))
    assert splits.validation.start == edge + 1 and splits.train.stop == edge


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


def test_weekends_use_calendar_days():
    # 2017-01-01 is a Sunday; the data ends on Friday 2017-03-31 21:00.
    index = fx_hourly("2017-01-01 22:00", "2017-03-31 21:00")
    splits = make_splits(
        index,
        days_history=28,
        validation_days=14,
        test_days=7,
        horizon=1,
        embargo_bars=0,
        warmup_bars=24,
    )
    # 7 calendar days hold 5 trading days = 120 1h bars, not 168.
    assert len(splits.test) == 120
    assert splits.test_start == ts("2017-03-26 22:00")  # the Sunday open
    assert len(splits.validation) == 240 - 1
    assert splits.validation_start == ts("2017-03-12 22:00")
    assert len(splits.train) == 480 - 1
    assert splits.train_start == ts("2017-02-12 22:00")


def test_accepts_a_frame_and_its_index_alike():
    frame = pd.DataFrame({"close": np.ones(len(REGULAR))}, index=REGULAR)
    assert make_splits(frame, **BASE) == make_splits(REGULAR, **BASE)


def test_too_little_data_message():
    index = hourly("2017-01-02", 1200)
    message = (
        "not enough data: need about 3,118 bars of 1h data: 60 + 60 + 60 days "
        "(days_history + validation_days + test_days) plus 32 warm-up bars before the "
        "training start 2016-08-24 23:00 UTC; the data has 1,200 bars from 2017-01-02 00:00 "
        "to 2017-02-20 23:00 UTC (50.0 days), 0 of them at or before the training start "
        "(32 needed); load more history or reduce days_history"
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
    # BASE puts 120 bars at or before the training start: 120 warm-up bars fit, 121 do not.
    assert make_splits(REGULAR, **{**BASE, "warmup_bars": 120}).warmup == range(0, 120)
    with pytest.raises(
        DataError, match=re.escape("120 of them at or before the training start (121 needed)")
    ):
        make_splits(REGULAR, **{**BASE, "warmup_bars": 121})


def test_data_must_reach_the_training_window_even_without_warmup():
    late = REGULAR[200:]  # starts after the training window's start
    with pytest.raises(
        DataError, match=re.escape("0 of them at or before the training start (1 needed)")
    ):
        make_splits(late, **{**BASE, "warmup_bars": 0})


def test_empty_validation_is_reported():
    message = (
        "the validation period is empty: the 0.1 validation days (2017-02-04 20:36 to "
        "2017-02-04 23:00) hold 3 bars and the purge of 5 bars (horizon 3 + embargo_bars 2) "
        "removes them all; use more validation_days or a shorter horizon/embargo"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(REGULAR, **{**BASE, "validation_days": 0.1})


def test_short_training_is_reported():
    message = (
        "the training period has 19 rows after the purge of 5 bars (horizon 3 + embargo_bars "
        "2); at least 50 are needed: the 1 days_history (2017-01-24 23:00 to 2017-01-25 "
        "23:00) hold 24 bars; use more days_history"
    )
    assert MIN_TRAIN_ROWS == 50
    with pytest.raises(DataError, match=re.escape(message)):
        make_splits(REGULAR, **{**BASE, "days_history": 1})
    # The threshold is a parameter.
    assert len(make_splits(REGULAR, **{**BASE, "days_history": 1}, min_train_rows=19).train) == 19


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("horizon", 0, "horizon: must be an integer >= 1, got 0"),
        ("horizon", 2.0, "horizon: must be an integer >= 1, got 2.0"),
        ("embargo_bars", -1, "embargo_bars: must be an integer >= 0, got -1"),
        ("warmup_bars", True, "warmup_bars: must be an integer >= 0, got True"),
        ("test_days", 0, "test_days: must be a number of days > 0, got 0"),
        ("days_history", float("nan"), "days_history: must be a number of days > 0, got nan"),
        ("validation_days", "60", "validation_days: must be a number of days > 0, got '60'"),
    ],
    ids=["h0", "h_float", "embargo", "warmup_bool", "test0", "history_nan", "val_str"],
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
    validation_days=st.floats(0.5, 10),
    test_days=st.floats(0.5, 10),
    horizon=st.integers(1, 30),
    embargo=st.integers(0, 20),
    warmup=st.integers(0, 60),
    drop_weekends=st.booleans(),
)
def test_split_invariants(
    days_history, validation_days, test_days, horizon, embargo, warmup, drop_weekends
):
    index = fx_hourly("2017-01-01 22:00", "2017-02-28 21:00") if drop_weekends else REGULAR
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
    times = index.as_unit("ns").asi8
    day = pd.Timedelta(days=1).value
    end = times[-1]
    test_t = times[splits.test.start : splits.test.stop]
    assert (test_t > end - test_days * day).all() and splits.test.stop == len(index)
    assert splits.test.start == 0 or times[splits.test.start - 1] <= end - test_days * day
    assert len(splits.train) >= MIN_TRAIN_ROWS and len(splits.validation) > 0
    assert splits.train.start >= warmup and splits.warmup.start >= 0
    assert splits.train.stop - 1 + horizon + embargo < splits.validation.start
    assert splits.validation.stop - 1 + horizon + embargo < splits.test.start
