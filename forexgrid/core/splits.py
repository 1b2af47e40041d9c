"""Train | purge | validation | purge | test: the evaluation windows of one configuration.

Windows are whole trading dates (DESIGN.md, "Evaluation windows"), counted back in calendar
days from the trading date of the last bar. A bar's trading date is the calendar date of its
New York time plus 7 hours (the FX day closes at 17:00 New York,
:func:`forexgrid.data.timeframes.trading_dates`), so the 1h, 4h and 1d bars of the same data
share their last trading date and get the same windows, whatever their open times. With
``last_day`` the trading date of the last bar and ``d`` the trading date of a bar:

- test:       ``last_day - test_days < d <= last_day``
- validation: ``last_day - test_days - validation_days < d <= last_day - test_days``
- training:   ``last_day - test_days - validation_days - days_history < d
  <= last_day - test_days - validation_days``

Weekends and holidays use up calendar days but contribute no bars. In time, each window
starts at its *cutoff*, 17:00 New York on the calendar day before its first trading date,
and a bar is in a window iff ``cutoff <= open time < next cutoff``: half-open ``[left,
right)``, so a bar opening exactly at 17:00 New York belongs to the later window. Then
``purge = horizon + embargo_bars`` bars are removed from the end of training and from the end
of validation. The guarantee, in bar positions: every training row ``i`` has ``i + horizon +
embargo_bars < validation.start`` and every validation row ``i`` has ``i + horizon +
embargo_bars < test.start``; the target ``log(close[i+h] / close[i])`` of a training row
therefore ends at least ``embargo_bars + 1`` bars before the first validation bar (likewise
validation before test). An index that does not follow FX hours (24/7 bars) works the same:
every timestamp has a trading date.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forexgrid.data.timeframes import (
    bars_per_year,
    infer_timeframe,
    trading_date_open,
    trading_dates,
)
from forexgrid.exceptions import ConfigError, DataError

__all__ = ["MIN_TRAIN_ROWS", "Splits", "make_splits"]

logger = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 50
"""Fewest training rows :func:`make_splits` accepts (fewer cannot fit a sensible model)."""

_DAY = pd.Timedelta(days=1)
_ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Splits:
    """Integer position ranges of the three periods of one configuration, and their edges.

    Attributes
    ----------
    train, validation, test : range
        Bar positions (``iloc``) of each period, after the purges.
    purge : int
        ``horizon + embargo_bars``: bars dropped from the end of training and of validation.
    warmup : range
        The ``warmup_bars`` positions just before ``train.start`` (feature history only).
    history_cutoff, validation_cutoff, test_cutoff : pandas.Timestamp
        The UTC instants at which the training, validation and test windows start (17:00
        New York on the calendar day before the window's first trading date). Before the
        purges a bar is in training iff ``history_cutoff <= open time < validation_cutoff``,
        in validation iff ``validation_cutoff <= open time < test_cutoff``, in test iff
        ``test_cutoff <= open time``.
    end : pandas.Timestamp
        Open time of the last bar.
    train_start, train_end, validation_start, validation_end, test_start, test_end : Timestamp
        Open times of the first and last bar (inclusive) of each period after the purges.
    horizon, embargo_bars, warmup_bars : int
        The arguments the split was made with.
    train_first_day, train_last_day, validation_first_day, validation_last_day : datetime.date
        The first and last trading date (inclusive) of training and of validation, before
        the purges.
    test_first_day, test_last_day : datetime.date
        The same for test; ``test_last_day`` is the trading date of the last bar.
    """

    train: range
    validation: range
    test: range
    purge: int
    warmup: range
    history_cutoff: pd.Timestamp
    validation_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp
    end: pd.Timestamp
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    horizon: int
    embargo_bars: int
    warmup_bars: int
    train_first_day: dt.date
    train_last_day: dt.date
    validation_first_day: dt.date
    validation_last_day: dt.date
    test_first_day: dt.date
    test_last_day: dt.date

    @property
    def validation_window(self) -> tuple[dt.date, dt.date]:
        """``(validation_first_day, validation_last_day)``: the validation trading dates.

        Equal for the 1h, 4h and 1d bars of the same data, so runs on different timeframes
        can be compared on it.
        """
        return (self.validation_first_day, self.validation_last_day)

    def to_frame(self) -> pd.DataFrame:
        """One row per period (``train validation test``): first, last, bars."""
        return pd.DataFrame(
            {
                "first": [self.train_start, self.validation_start, self.test_start],
                "last": [self.train_end, self.validation_end, self.test_end],
                "bars": [len(self.train), len(self.validation), len(self.test)],
            },
            index=pd.Index(["train", "validation", "test"], name="split"),
        )


def _check_days(name: str, value: object) -> int:
    whole = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
        and float(value).is_integer()
        and value >= 1
    )
    if not whole:
        raise ConfigError(f"{name}: must be a whole number of days >= 1, got {value!r}")
    return int(value)


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_index(index: object) -> pd.DatetimeIndex:
    if isinstance(index, (pd.DataFrame, pd.Series)):
        index = index.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"make_splits needs a DatetimeIndex of bars, got {type(index).__name__}")
    if len(index) == 0:
        raise DataError("not enough data: the bar index is empty")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataError("make_splits: the bar index must be strictly increasing (no duplicates)")
    return index


def _when(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


def _date(day: np.datetime64) -> dt.date:
    return day.astype("datetime64[D]").item()


def make_splits(
    index: pd.DatetimeIndex,
    *,
    days_history: int,
    validation_days: int,
    test_days: int,
    horizon: int,
    embargo_bars: int,
    warmup_bars: int,
    min_train_rows: int = MIN_TRAIN_ROWS,
    timeframe: str | None = None,
) -> Splits:
    """Split a bar index into training, validation and test periods with purges.

    See the module docstring for the exact boundary rule: windows are whole trading dates
    counted back in calendar days from the last bar's trading date (in time: ``[cutoff,
    next cutoff)``); ``horizon + embargo_bars`` bars are purged from the end of training and
    of validation, which guarantees ``i + horizon + embargo_bars < validation.start`` for
    every training row and ``i + horizon + embargo_bars < test.start`` for every validation
    row.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        The bars' index (a DataFrame or Series is accepted and its index used); naive
        timestamps are UTC.
    days_history, validation_days, test_days : int
        Calendar days of each window: whole numbers >= 1 (a float with an integral value,
        such as ``60.0``, is accepted).
    horizon : int
        Target horizon in bars (>= 1).
    embargo_bars : int
        Extra bars purged after each target window (>= 0).
    warmup_bars : int
        Bars of history the first training row's features need (``history_length - 1``).
    min_train_rows : int
        Fewest training rows accepted.
    timeframe : str, optional
        The bars' timeframe, only used to word the too-little-data message; inferred from
        the index when None.

    Returns
    -------
    Splits

    Raises
    ------
    ConfigError
        A window that is not a whole number of days >= 1, or a horizon or bar count that is
        not an integer in range.
    DataError
        The data does not reach back far enough (fewer than ``warmup_bars`` bars, or no bar
        at all, before the training window's start; the message gives the bars and days
        needed and found), or a period ends up empty, or training has fewer than
        ``min_train_rows`` rows after its purge.
    """
    history = _check_days("days_history", days_history)
    validation_d = _check_days("validation_days", validation_days)
    test_d = _check_days("test_days", test_days)
    horizon = _check_count("horizon", horizon, 1)
    embargo_bars = _check_count("embargo_bars", embargo_bars, 0)
    warmup_bars = _check_count("warmup_bars", warmup_bars, 0)
    min_train_rows = _check_count("min_train_rows", min_train_rows, 1)
    index = _check_index(index)

    n = len(index)
    end = index[-1]
    dates = trading_dates(index)  # non-decreasing, like the index
    test_last_day = dates[-1]
    test_first_day = test_last_day - (test_d - 1) * _ONE_DAY
    validation_last_day = test_first_day - _ONE_DAY
    validation_first_day = validation_last_day - (validation_d - 1) * _ONE_DAY
    train_last_day = validation_first_day - _ONE_DAY
    train_first_day = train_last_day - (history - 1) * _ONE_DAY
    # searchsorted(side="left") = the first bar whose trading date is on or after the day.
    train_first, validation_first, test_first = (
        int(i)
        for i in np.searchsorted(
            dates, [train_first_day, validation_first_day, test_first_day], side="left"
        )
    )
    history_cutoff, validation_cutoff, test_cutoff = trading_date_open(
        [train_first_day, validation_first_day, test_first_day]
    )
    purge = horizon + embargo_bars
    windows = (
        f"{history} + {validation_d} + {test_d} days (days_history + validation_days + test_days)"
    )

    # The data must reach back before the training window (a bar before its start) and
    # hold warmup_bars bars before the first training row.
    needed_before = max(warmup_bars, 1)
    if train_first < needed_before:
        raise DataError(
            _too_little_message(
                index,
                timeframe,
                history + validation_d + test_d,
                windows,
                warmup_bars,
                needed_before,
                train_first,
                history_cutoff,
                _date(train_first_day),
            )
        )

    train = range(train_first, validation_first - purge)
    validation = range(validation_first, test_first - purge)
    test = range(test_first, n)
    if len(test) == 0:  # pragma: no cover - the last bar is always in test
        raise DataError("the test period is empty")
    if len(validation) == 0:
        raise DataError(
            f"the validation period is empty: validation_days = {validation_d} (trading "
            f"dates {_date(validation_first_day)} to {_date(validation_last_day)}) holds "
            f"{test_first - validation_first:,} bars and the purge of {purge} bars "
            f"(horizon {horizon} + embargo_bars {embargo_bars}) removes them all; "
            "use more validation_days or a shorter horizon/embargo"
        )
    if len(train) < min_train_rows:
        raise DataError(
            f"the training period has {max(len(train), 0):,} rows after the purge of {purge} "
            f"bars (horizon {horizon} + embargo_bars {embargo_bars}); at least "
            f"{min_train_rows:,} are needed: days_history = {history} (trading dates "
            f"{_date(train_first_day)} to {_date(train_last_day)}) holds "
            f"{validation_first - train_first:,} bars; use more days_history"
        )
    splits = Splits(
        train=train,
        validation=validation,
        test=test,
        purge=purge,
        warmup=range(train.start - warmup_bars, train.start),
        history_cutoff=history_cutoff,
        validation_cutoff=validation_cutoff,
        test_cutoff=test_cutoff,
        end=end,
        train_start=index[train.start],
        train_end=index[train.stop - 1],
        validation_start=index[validation.start],
        validation_end=index[validation.stop - 1],
        test_start=index[test.start],
        test_end=index[test.stop - 1],
        horizon=horizon,
        embargo_bars=embargo_bars,
        warmup_bars=warmup_bars,
        train_first_day=_date(train_first_day),
        train_last_day=_date(train_last_day),
        validation_first_day=_date(validation_first_day),
        validation_last_day=_date(validation_last_day),
        test_first_day=_date(test_first_day),
        test_last_day=_date(test_last_day),
    )
    logger.debug(
        "splits: train %d, validation %d, test %d bars (purge %d)",
        len(train),
        len(validation),
        len(test),
        purge,
    )
    return splits


def _too_little_message(
    index: pd.DatetimeIndex,
    timeframe: str | None,
    total_days: int,
    windows: str,
    warmup_bars: int,
    needed_before: int,
    found_before: int,
    history_cutoff: pd.Timestamp,
    train_first_day: dt.date,
) -> str:
    """Explain how many bars and days were needed and what the data holds."""
    try:
        tf = timeframe if timeframe is not None else infer_timeframe(index)
        # An FX week has 5 trading days: bars per calendar day = bars per year / 364.
        per_day = bars_per_year(tf) / (52 * 7)
        need = f"about {math.ceil(total_days * per_day) + warmup_bars:,} bars of {tf} data"
    except DataError:
        need = "more bars"
    span_days = (index[-1] - index[0]) / _DAY
    return (
        f"not enough data: need {need}: {windows} plus {warmup_bars:,} warm-up bars before "
        f"the training start {_when(history_cutoff)} UTC (trading date {train_first_day}); "
        f"the data has {len(index):,} bars from {_when(index[0])} to {_when(index[-1])} UTC "
        f"({span_days:.1f} days), {found_before:,} of them before the training start "
        f"({needed_before:,} needed); load more history or reduce days_history"
    )
