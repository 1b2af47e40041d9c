"""Timeframe names, the FX trading calendar (New York 17:00 close) and resampling of Bars.

Canonical timeframe names are ``1m 5m 15m 30m 1h 4h 1d`` (the trainable set is ``15m 1h 4h
1d``). :func:`normalize_timeframe` maps the usual aliases (``H1``, ``1H``, ``60m``, ``M15``,
``D1``, ...) to them.

The FX day closes at 17:00 New York time (daylight saving included): the week opens Sunday
17:00 New York and closes Friday 17:00 New York, which is 22:00 UTC in northern winter and
21:00 UTC in summer. The *trading date* of an instant (:func:`trading_dates`) is the calendar
date of its New York wall time plus 7 hours, so Sunday 17:00 New York belongs to Monday and
Friday 16:59 New York to Friday.

:func:`resample` aggregates Bars to a coarser timeframe with that convention: each output bar
is labelled by its open instant (UTC); ``1d`` bins are whole trading dates (17:00 to 17:00
New York, one bar per trading date), ``4h`` bins start at 17, 21, 01, 05, 09 and 13 New York
wall time; finer bins are whole multiples of their length from 00:00 UTC (New York's UTC
offsets are whole hours, so hour bins already align with it). Empty periods such as
weekends are dropped, never filled. :func:`bar_end_times` gives the exact instant each bar
ends, daylight-saving changes included.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from forexgrid.exceptions import DataError, quote_input

__all__ = [
    "BAR_COLUMNS",
    "TIMEFRAMES",
    "TRAINABLE_TIMEFRAMES",
    "TRADING_DAY_TZ",
    "bar_end_times",
    "bars_per_year",
    "infer_timeframe",
    "normalize_timeframe",
    "resample",
    "timeframe_delta",
    "trading_date_open",
    "trading_dates",
]

logger = logging.getLogger(__name__)

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
"""The columns of a Bars frame, in order."""

TIMEFRAMES: Mapping[str, str] = MappingProxyType(
    {
        "1m": "1min",
        "5m": "5min",
        "15m": "15min",
        "30m": "30min",
        "1h": "1h",
        "4h": "4h",
        "1d": "1D",
    }
)
"""Canonical timeframe name -> pandas offset alias, ordered fine to coarse."""

TRAINABLE_TIMEFRAMES: tuple[str, ...] = ("15m", "1h", "4h", "1d")
"""The timeframes a grid may train on (DESIGN.md)."""

# Lower-cased alias -> canonical name. Lookups are case-insensitive, so "1M" means one
# minute here (as "15M" means fifteen minutes): forexgrid has no monthly timeframe, and a
# silent month would be far worse than this documented choice.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "1m": "1m",
        "m1": "1m",
        "1min": "1m",
        "5m": "5m",
        "m5": "5m",
        "5min": "5m",
        "15m": "15m",
        "m15": "15m",
        "15min": "15m",
        "30m": "30m",
        "m30": "30m",
        "30min": "30m",
        "1h": "1h",
        "h1": "1h",
        "60m": "1h",
        "60min": "1h",
        "4h": "4h",
        "h4": "4h",
        "240m": "4h",
        "240min": "4h",
        "1d": "1d",
        "d1": "1d",
        "d": "1d",
        "daily": "1d",
    }
)

_ALIAS_HINT = (
    "M15, 15min, H1, 1H, 60m, H4, 4H, 240m, D1, 1D, D, daily; finer data timeframes: "
    "1m, 5m, 30m (M1, M5, M30)"
)

# A trading year for FX: 5 days a week, 52 weeks (DESIGN.md: 24 x 5 x 52 bars for 1h).
_TRADING_DAYS_PER_YEAR = 5 * 52

TRADING_DAY_TZ = "America/New_York"
"""The zone of the FX day: trading dates roll over at 17:00 in this zone."""

# 17:00 New York + 7 hours = 00:00 of the next date: shifting New York wall time by this
# much turns trading dates into calendar dates and NY-anchored bins into plain floor() bins.
_SESSION_SHIFT = pd.Timedelta(hours=7)

# Timeframes whose bins follow New York wall time; finer ones are whole hours or less, and
# New York's UTC offsets are whole hours, so their UTC bins are already aligned.
_NEW_YORK_BINNED = frozenset({"4h", "1d"})


def normalize_timeframe(value: str) -> str:
    """Return the canonical name of a timeframe given by name or alias.

    Parameters
    ----------
    value : str
        A timeframe such as ``"1h"``, ``"H1"``, ``"60m"``, ``"4H"``, ``"M15"`` or ``"D1"``
        (case-insensitive; surrounding whitespace is ignored). ``"1m"``, ``"M1"`` and
        ``"1min"`` mean one minute, never one month.

    Returns
    -------
    str
        One of the keys of :data:`TIMEFRAMES`.

    Raises
    ------
    DataError
        If ``value`` is not a string or not a known timeframe.
    """
    if not isinstance(value, str):
        raise DataError(
            f"timeframe must be a string such as '1h', got {quote_input(value)} "
            f"({type(value).__name__})"
        )
    canonical = _ALIASES.get(value.strip().lower())
    if canonical is None:
        raise DataError(
            f"unknown timeframe {quote_input(value)}; expected one of "
            f"{', '.join(TRAINABLE_TIMEFRAMES)} (aliases: {_ALIAS_HINT})"
        )
    return canonical


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """Return the duration of one bar of ``timeframe``.

    Parameters
    ----------
    timeframe : str
        A timeframe name or alias.

    Returns
    -------
    pandas.Timedelta

    Raises
    ------
    DataError
        If ``timeframe`` is unknown.
    """
    return pd.Timedelta(TIMEFRAMES[normalize_timeframe(timeframe)])


def bars_per_year(timeframe: str) -> float:
    """Return the number of bars in an FX trading year (24 hours x 5 days x 52 weeks).

    With the New York 17:00 close (:func:`resample`) a trading week is exactly five trading
    dates of 24 hours, Sunday 17:00 to Friday 17:00 New York, so real data resampled here
    holds these counts: the bundled 2017 EURUSD sample has 6,225 1h bars (6,240 less the
    Christmas closure), 1,557 4h bars and 260 daily bars, one per weekday.

    Parameters
    ----------
    timeframe : str
        A timeframe name or alias.

    Returns
    -------
    float
        For example 24960.0 for ``15m``, 6240.0 for ``1h``, 1560.0 for ``4h``, 260.0 for
        ``1d``.

    Raises
    ------
    DataError
        If ``timeframe`` is unknown.
    """
    per_day = pd.Timedelta(days=1) / timeframe_delta(timeframe)
    return float(per_day * _TRADING_DAYS_PER_YEAR)


def _index_of(bars: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
    index = bars if isinstance(bars, pd.Index) else getattr(bars, "index", None)
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            "bars must have a DatetimeIndex, got "
            f"{type(index).__name__ if index is not None else type(bars).__name__}"
        )
    return index


def _as_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The index in UTC; naive timestamps are UTC."""
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _session_wall(utc: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Naive New York wall time plus 7 hours: its calendar date is the trading date, and
    its plain ``floor("4h")`` / ``floor("1D")`` bins are the New York-anchored bins."""
    return utc.tz_convert(TRADING_DAY_TZ).tz_localize(None) + _SESSION_SHIFT


def _from_session_wall(wall: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC instants of bin boundaries given in :func:`_session_wall` time.

    Only bin boundaries come through here, and they are deterministic across daylight
    saving: 1d boundaries (17:00 New York) and 4h boundaries (17, 21, 01, 05, 09, 13) never
    fall in the spring-forward gap (02:00-03:00 on the second Sunday of March), and on the
    fall-back Sunday (first Sunday of November) the doubled 01:00 is taken at its first
    (summer-time) occurrence. So that Sunday's 01:00-05:00 bin holds both 01:xx hours and
    lasts 5 real hours, the spring one lasts 3; their daily bins last 25 and 23 hours. FX is
    closed then, so only 24/7 data ever fills these bins. ``nonexistent`` is only a guard.
    """
    local = (wall - _SESSION_SHIFT).tz_localize(
        TRADING_DAY_TZ,
        ambiguous=np.ones(len(wall), dtype=bool),
        nonexistent="shift_forward",
    )
    return local.tz_convert("UTC")


def trading_dates(index: pd.DatetimeIndex | pd.DataFrame | pd.Series) -> np.ndarray:
    """Return the trading date (FX session) of each timestamp.

    The trading date is the calendar date of the New York wall time (daylight saving
    included) plus 7 hours: a session runs from 17:00 New York on the previous calendar day
    to 17:00 New York. Sunday 17:00 New York belongs to Monday, Friday 16:59 New York to
    Friday, Friday 17:00 New York to Saturday. Vectorised.

    Parameters
    ----------
    index : DatetimeIndex, DataFrame or Series
        Timestamps (tz-aware, any zone; naive timestamps are UTC), or an object whose index
        they are.

    Returns
    -------
    numpy.ndarray
        dtype ``datetime64[D]``, one trading date per timestamp.

    Raises
    ------
    DataError
        If there is no DatetimeIndex.
    """
    wall = _session_wall(_as_utc(_index_of(index)))
    # Casting datetime64 to days floors, so this is the calendar date of the shifted time.
    return wall.to_numpy().astype("datetime64[D]")


def trading_date_open(dates: object) -> pd.DatetimeIndex:
    """Return the UTC instant each trading date's session opens (17:00 New York the day
    before).

    A timestamp belongs to trading date ``d`` iff ``trading_date_open([d])[0] <= timestamp <
    trading_date_open([d + 1 day])[0]``.

    Parameters
    ----------
    dates : array-like of dates
        Trading dates (``datetime.date``, ``numpy.datetime64``, ISO strings, ...).

    Returns
    -------
    pandas.DatetimeIndex
        tz-aware UTC instants, one per date (22:00 UTC in winter, 21:00 UTC in summer, on
        the previous calendar day).
    """
    days = pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[D]"))
    return _from_session_wall(days)


def bar_end_times(
    index: pd.DatetimeIndex | pd.DataFrame | pd.Series, timeframe: str
) -> np.ndarray:
    """Return the UTC instant at which each bar of ``timeframe`` ends, as int64 nanoseconds.

    Bars are labelled by their open instant. For ``4h`` and ``1d`` the end is the next bin
    boundary in New York wall time (17:00 for ``1d``; 17, 21, 01, 05, 09, 13 for ``4h``), so
    it follows daylight saving: a 24/7 daily bin of a change-over Sunday lasts 23 or 25
    hours (FX bars, Sunday 17:00 to Friday 17:00 New York, never straddle a change, so for
    them it is always the open plus 4 or 24 hours). A label that is not on a bin boundary
    ends with the bin that holds it. Finer timeframes end at the open plus their duration.

    Parameters
    ----------
    index : DatetimeIndex, DataFrame or Series
        Bar open times (tz-aware; naive timestamps are UTC), or an object with that index.
    timeframe : str
        The bars' timeframe (name or alias).

    Returns
    -------
    numpy.ndarray
        int64 nanoseconds since the Unix epoch (UTC), one per bar; the unit the feature code
        compares in (``DatetimeIndex.as_unit("ns").asi8`` gives comparable open times).

    Raises
    ------
    DataError
        If there is no DatetimeIndex or ``timeframe`` is unknown.
    """
    tf = normalize_timeframe(timeframe)
    utc = _as_utc(_index_of(index))
    if tf in _NEW_YORK_BINNED:
        offset = TIMEFRAMES[tf]
        ends = _from_session_wall(_session_wall(utc).floor(offset) + pd.Timedelta(offset))
    else:
        ends = utc + pd.Timedelta(TIMEFRAMES[tf])
    return ends.as_unit("ns").asi8.copy()


def _median_spacing(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise DataError(
            f"cannot infer the timeframe from {len(index)} bar(s); at least 2 are needed"
        )
    spacing = pd.Series(index).diff().iloc[1:].median()
    return pd.Timedelta(spacing)


def infer_timeframe(bars: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> str:
    """Return the canonical timeframe of bars from the median spacing of their index.

    Parameters
    ----------
    bars : DataFrame, Series or DatetimeIndex
        Bars (or their index) with at least two timestamps.

    Returns
    -------
    str
        The canonical timeframe whose bar duration equals the median spacing exactly.
        Weekends and gaps do not disturb it, as long as most bars are consecutive.

    Raises
    ------
    DataError
        If there is no DatetimeIndex, fewer than two bars, or the median spacing matches no
        known timeframe.
    """
    spacing = _median_spacing(_index_of(bars))
    for name, offset in TIMEFRAMES.items():
        if pd.Timedelta(offset) == spacing:
            return name
    raise DataError(
        f"cannot infer the timeframe: the median spacing of the bars is {spacing}, which "
        f"matches none of {', '.join(TIMEFRAMES)}"
    )


def _check_bars(bars: object) -> pd.DataFrame:
    """Cheap structural check of the Bars contract (full validation is the readers' job)."""
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    index = _index_of(bars)
    if index.tz is None or str(index.tz) != "UTC":
        raise DataError(
            f"bars must have a tz-aware UTC DatetimeIndex, got tz={index.tz}; "
            "read files with forexgrid.data.read_bars or use index.tz_localize/tz_convert('UTC')"
        )
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(
            f"bars are missing column(s) {', '.join(missing)}; expected "
            f"{', '.join(BAR_COLUMNS)}, found {', '.join(map(str, bars.columns))}"
        )
    if not index.is_unique or not index.is_monotonic_increasing:
        raise DataError("bars must have a strictly increasing index without duplicates")
    return bars


def resample(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate Bars to a coarser timeframe with FX conventions (New York 17:00 close).

    Each output bar is labelled by its open instant in UTC; bins are left-closed. ``1d``
    bins are trading dates, 17:00 New York of the previous day to 17:00 New York (one bar
    per trading date: the Monday session of 2017-01-02 is labelled 2017-01-01 22:00 UTC,
    a summer session 21:00 UTC); ``4h`` bins start at 17, 21, 01, 05, 09 and 13 New York
    wall time; finer bins are anchored at 00:00 UTC. Daylight saving is followed (see
    :func:`bar_end_times`). open = first, high = max, low = min, close = last, volume = sum.
    Periods without input bars (weekends, gaps) produce no bar.

    Parameters
    ----------
    bars : pandas.DataFrame
        Bars (tz-aware UTC index, strictly increasing, OHLCV columns).
    timeframe : str
        The target timeframe (name or alias). Resampling to the bars' own timeframe returns
        an equal copy.

    Returns
    -------
    pandas.DataFrame
        Bars at ``timeframe`` with columns ``open high low close volume``.

    Raises
    ------
    DataError
        If ``bars`` breaks the Bars contract, ``timeframe`` is unknown, or ``timeframe`` is
        finer than the bars' spacing (resampling only aggregates).
    """
    bars = _check_bars(bars)
    target = normalize_timeframe(timeframe)
    delta = pd.Timedelta(TIMEFRAMES[target])
    if len(bars) >= 2:
        # The median spacing, not the inferred name, so irregular (e.g. gappy) input still
        # resamples; the name is only used to word the error.
        spacing = _median_spacing(bars.index)
        if delta < spacing:
            try:
                source = f"{infer_timeframe(bars)} bars"
            except DataError:
                source = f"bars spaced {spacing} apart"
            raise DataError(
                f"cannot resample {source} to the finer timeframe {target}: resampling only "
                "aggregates to coarser timeframes; load finer data instead"
            )
        if delta == spacing:
            return bars.loc[:, list(BAR_COLUMNS)].copy()
    if bars.empty:
        return bars.loc[:, list(BAR_COLUMNS)].copy()
    # Grouping by the bin of each bar only creates groups that hold bars, so weekends and
    # gaps are never invented. 4h and 1d bins are floor() bins of New York wall time + 7h
    # (00:00 there is 17:00 New York); their labels go back to UTC once per bin, not per
    # bar. Finer bins: floor() is anchored at the Unix epoch, a midnight UTC.
    new_york = target in _NEW_YORK_BINNED
    keys = (
        _session_wall(bars.index).floor(TIMEFRAMES[target])
        if new_york
        else bars.index.floor(TIMEFRAMES[target])
    )
    out = (
        bars.loc[:, list(BAR_COLUMNS)]
        .groupby(keys, sort=True)
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    )
    if new_york:
        out.index = _from_session_wall(pd.DatetimeIndex(out.index)).as_unit(bars.index.unit)
    out.index.name = bars.index.name
    return out
