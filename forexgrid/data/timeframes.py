"""Timeframe names and FX-convention resampling of Bars.

Canonical timeframe names are ``1m 5m 15m 30m 1h 4h 1d`` (the trainable set is ``15m 1h 4h
1d``). :func:`normalize_timeframe` maps the usual aliases (``H1``, ``1H``, ``60m``, ``M15``,
``D1``, ...) to them. :func:`resample` aggregates Bars to a coarser timeframe with FX
conventions: each bar is labelled by its open time (left-closed, left-labelled bins anchored
at 00:00 UTC, so daily bars start at midnight UTC) and empty periods such as weekends are
dropped, never filled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

import pandas as pd

from forexgrid.exceptions import DataError

__all__ = [
    "BAR_COLUMNS",
    "TIMEFRAMES",
    "TRAINABLE_TIMEFRAMES",
    "bars_per_year",
    "infer_timeframe",
    "normalize_timeframe",
    "resample",
    "timeframe_delta",
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
            f"timeframe must be a string such as '1h', got {value!r} ({type(value).__name__})"
        )
    canonical = _ALIASES.get(value.strip().lower())
    if canonical is None:
        raise DataError(
            f"unknown timeframe {value!r}; expected one of "
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

    Parameters
    ----------
    timeframe : str
        A timeframe name or alias.

    Returns
    -------
    float
        For example 6240.0 for ``1h``, 1560.0 for ``4h``, 260.0 for ``1d``.

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
    """Aggregate Bars to a coarser timeframe with FX conventions.

    Each output bar is labelled by its open time; bins are left-closed and anchored at
    00:00 UTC (daily bars start at midnight UTC, so the Sunday 22:00-23:00 bars form their
    own daily bar dated that Sunday). open = first, high = max, low = min, close = last,
    volume = sum. Periods without input bars (weekends, gaps) produce no bar.

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
    # Grouping by the floored open time only creates groups that hold bars, so weekends and
    # gaps are never invented. floor() is anchored at the Unix epoch (a midnight UTC), which
    # puts 4h bins at 00, 04, ... UTC and daily bins at 00:00 UTC.
    keys = bars.index.floor(TIMEFRAMES[target])
    out = (
        bars.loc[:, list(BAR_COLUMNS)]
        .groupby(keys, sort=True)
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    )
    out.index.name = bars.index.name
    return out
