"""Synthetic, regime-switching FX bars with known regime labels.

**Everything here is synthetic. It is never real market data** and says nothing about any
real market: it exists so that tests, examples and benchmarks have deterministic inputs
whose true regime is known. For real data use :func:`forexgrid.data.load_sample` or your
own files.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forexgrid.data.store import validate_symbol
from forexgrid.data.timeframes import (
    BAR_COLUMNS,
    TIMEFRAMES,
    bar_end_times,
    normalize_timeframe,
    trading_dates,
)
from forexgrid.exceptions import DataError

__all__ = ["REGIMES", "bars_from_log_returns", "synthetic_bars"]

logger = logging.getLogger(__name__)

REGIMES: tuple[str, ...] = ("bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
"""Regime names of the generator, as DESIGN.md names the default regimes."""


@dataclass(frozen=True)
class _Regime:
    drift: float  # mean log return per bar, in units of the base per-bar volatility
    vol: float  # volatility multiplier of the base per-bar volatility
    phi: float | None  # AR(1) coefficient of the deviation from the segment's anchor price
    mean_duration: float  # bars


# Tuned so that the bar-weighted average volatility is about the base one, trends are
# visible to a 50-bar R-squared (drift 0.2 sigma: ~7 sigma-of-a-bar over 50 bars) and
# ranging regimes revert with half-lives of ~14 (volatile) and ~23 (calm) bars.
_PARAMS: dict[str, _Regime] = {
    "bull_trending": _Regime(drift=0.2, vol=1.0, phi=None, mean_duration=180.0),
    "bear_trending": _Regime(drift=-0.2, vol=1.1, phi=None, mean_duration=150.0),
    "volatile_ranging": _Regime(drift=0.0, vol=1.8, phi=0.95, mean_duration=120.0),
    "calm_ranging": _Regime(drift=0.0, vol=0.55, phi=0.97, mean_duration=250.0),
}

_BASE_PRICES = {
    "EURUSD": 1.10,
    "GBPUSD": 1.30,
    "USDJPY": 110.0,
    "AUDUSD": 0.72,
    "NZDUSD": 0.68,
    "USDCAD": 1.30,
    "USDCHF": 0.95,
    "EURGBP": 0.86,
    "EURJPY": 125.0,
    "GBPJPY": 145.0,
}
_HOURLY_VOL = 1e-3  # per-bar log-return volatility at 1h, EURUSD-like
_CORRELATION = 0.6  # pairwise correlation of the symbols' shocks
_GARCH_ALPHA, _GARCH_BETA = 0.08, 0.90
_PULL_SCALE = 0.05  # log distance from the base price at which trends start to lean back
_MIN_DURATION = 12
_DURATION_SHAPE = 4.0  # gamma shape: durations vary, but rarely collapse to a few bars
_VOLUME_PER_HOUR = 1000.0


def synthetic_bars(
    n: int = 5000,
    seed: int = 0,
    symbols: str | Sequence[str] | None = None,
    timeframe: str = "1h",
    start: str | pd.Timestamp = "2020-01-06",
) -> tuple[pd.DataFrame | dict[str, pd.DataFrame], pd.Series]:
    """Generate SYNTHETIC regime-switching FX bars and their true regime labels.

    This is synthetic data, never real market data. A Markov chain walks over the four
    regimes of :data:`REGIMES` with persistent segments (mean durations 120-250 bars):
    ``bull_trending`` (positive drift), ``bear_trending`` (negative drift),
    ``volatile_ranging`` (high volatility, mean-reverting) and ``calm_ranging`` (low
    volatility, mean-reverting). Volatility clusters (a GARCH(1,1)-like variance driven by
    past shocks) and follows an intraday cycle; trends lean back towards the symbol's base
    price so prices stay realistic (EURUSD ~1.10 with per-bar volatility ~1e-3 at 1h,
    scaled by the square root of the bar length for other timeframes; USDJPY ~110). Bars
    exist only in FX trading hours, which follow New York: none opens from Friday 17:00 to
    Sunday 17:00 New York time (22:00 UTC in northern winter, 21:00 UTC in summer), and
    4h and 1d bars sit on the New York 17:00 bins of
    :func:`forexgrid.data.timeframes.resample` (a daily bar is one trading date). Each bar
    opens at the previous close; high and low extend beyond open/close; volume is positive
    and rises with volatility.

    Several symbols share one regime path and have shocks with pairwise correlation ~0.6.
    The first symbol's bars do not depend on which other symbols are requested.

    Parameters
    ----------
    n : int
        Number of bars (>= 1).
    seed : int
        Seed (>= 0); the output is a deterministic function of all arguments.
    symbols : str, sequence of str or None
        None or one symbol gives one DataFrame (None means ``EURUSD``); several give a dict
        symbol -> DataFrame.
    timeframe : str
        Any timeframe of :data:`forexgrid.data.timeframes.TIMEFRAMES` (aliases accepted).
    start : str or pandas.Timestamp
        The first candidate bar time (UTC if naive), rounded up to the timeframe (for 4h
        and 1d: to the next New York bin boundary); bars then follow in trading hours.

    Returns
    -------
    bars : pandas.DataFrame or dict of str to pandas.DataFrame
        Bars (UTC index named ``time``, float64 ``open high low close volume``).
    labels : pandas.Series
        The true regime name of every bar, indexed like the bars, named ``regime``.

    Raises
    ------
    DataError
        If ``n``, ``seed``, ``symbols``, ``timeframe`` or ``start`` is invalid.
    """
    n = _check_int("n", n, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    tf = normalize_timeframe(timeframe)
    names = _check_symbols(symbols)
    index = _trading_index(start, n, tf)

    # One child stream per role (regime path, market factor, each symbol): the i-th child of a
    # SeedSequence does not depend on how many children exist, so the first symbol's path is
    # the same whatever other symbols are requested.
    children = np.random.SeedSequence(seed).spawn(2 + len(names))
    regime_rng = np.random.default_rng(children[0])
    market_rng = np.random.default_rng(children[1])
    symbol_rngs = [np.random.default_rng(child) for child in children[2:]]

    common = market_rng.standard_normal(n)
    own = [rng.standard_normal((4, n)) for rng in symbol_rngs]  # shock, high, low, volume
    shocks = np.stack(
        [math.sqrt(_CORRELATION) * common + math.sqrt(1.0 - _CORRELATION) * o[0] for o in own]
    )

    base_vol = _HOURLY_VOL * math.sqrt(pd.Timedelta(TIMEFRAMES[tf]) / pd.Timedelta(hours=1))
    # Volatility clustering is market-wide: driven by the first symbol's shocks, shared.
    cluster = np.sqrt(_garch_variance(shocks[0]))
    season = _intraday_factor(index)

    base_prices = np.array([_base_price(s) for s in names])
    codes, log_close = _regime_path(
        n, shocks, base_vol * cluster * season, base_vol, np.log(base_prices), regime_rng
    )
    regime_vol = np.array([_PARAMS[r].vol for r in REGIMES])[codes]
    bar_vol = base_vol * regime_vol * cluster * season

    frames = {}
    for k, name in enumerate(names):
        frames[name] = _ohlcv(
            log_close[k], base_prices[k], bar_vol, base_vol, own[k][1:], index, tf
        )
    labels = pd.Series(np.asarray(REGIMES, dtype=object)[codes], index=index, name="regime")
    logger.debug("synthetic_bars: %d %s bars of %s (seed %d)", n, tf, ", ".join(names), seed)
    if symbols is None or isinstance(symbols, str) or len(names) == 1:
        return frames[names[0]], labels
    return frames, labels


def _check_int(name: str, value: object, minimum: int, where: str = "synthetic_bars") -> int:
    # bool is an int subclass; True as a bar count is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"{where}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise DataError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


_WHERE_RETURNS = "bars_from_log_returns"


def _check_symbols(symbols: str | Sequence[str] | None) -> list[str]:
    if symbols is None:
        return ["EURUSD"]
    if isinstance(symbols, str):
        return [validate_symbol(symbols)]
    if not isinstance(symbols, Sequence) or len(symbols) == 0:
        raise DataError(
            "synthetic_bars: symbols must be None, a symbol or a non-empty list of symbols, "
            f"got {symbols!r}"
        )
    names = [validate_symbol(s) for s in symbols]
    duplicates = sorted({s for s in names if names.count(s) > 1})
    if duplicates:
        raise DataError(f"synthetic_bars: duplicate symbols {', '.join(duplicates)}")
    return names


def _base_price(symbol: str) -> float:
    if symbol in _BASE_PRICES:
        return _BASE_PRICES[symbol]
    return 100.0 if "JPY" in symbol else 1.0


def bars_from_log_returns(
    log_returns: Sequence[float] | np.ndarray,
    *,
    start: str | pd.Timestamp = "2021-01-04",
    timeframe: str = "1h",
    price: float = 1.1,
    seed: int = 0,
    volatility: float | None = None,
) -> pd.DataFrame:
    """Synthetic Bars on FX trading hours whose close-to-close log returns are given.

    For experiments whose truth is known: a driftless random walk (nothing to find), an
    AR(1) process (a planted signal). Each bar opens at the previous close; the high and low
    reach beyond open and close by half-normal wicks of half ``volatility``; the volume
    rises with the size of the move relative to ``volatility``. Prices are not rounded, so a
    random walk stays an exact martingale.

    Parameters
    ----------
    log_returns
        One log return per bar (finite).
    start
        The first bar's time (UTC unless it carries a zone); bars fall in FX trading hours
        from there (New York week, daylight saving included), as :func:`synthetic_bars`'.
    timeframe
        The bars' timeframe.
    price
        The price before the first return.
    seed
        Seed of the wicks and volumes.
    volatility
        The per-bar volatility the wicks and volumes are scaled by; the standard deviation
        of ``log_returns`` when None.

    Returns
    -------
    pandas.DataFrame
        Bars (the Bars contract).

    Raises
    ------
    DataError
        If a return is not finite, there is none, ``price`` is not > 0, or ``start`` or
        ``timeframe`` is invalid.
    """
    returns = np.asarray(log_returns, dtype=float).reshape(-1)
    if returns.size == 0 or not np.isfinite(returns).all():
        raise DataError(f"{_WHERE_RETURNS}: expected one or more finite log returns")
    if not (isinstance(price, numbers.Real) and math.isfinite(price) and price > 0):
        raise DataError(f"{_WHERE_RETURNS}: price must be a number > 0, got {price!r}")
    timeframe = normalize_timeframe(timeframe)
    rng = np.random.default_rng([_check_int("seed", seed, 0, _WHERE_RETURNS), 1])
    n = returns.size
    scale = float(returns.std()) if volatility is None else float(volatility)
    if not (math.isfinite(scale) and scale > 0):
        raise DataError(
            f"{_WHERE_RETURNS}: volatility must be a number > 0, got {volatility!r} (or "
            "returns that vary)"
        )
    close = price * np.exp(np.cumsum(returns))
    open_ = np.r_[price, close[:-1]]
    wicks = np.abs(rng.normal(0.0, 0.5 * scale, (2, n)))
    size = np.abs(returns) / scale
    volume = np.round(1000.0 * (0.5 + 0.5 * size) * rng.lognormal(0.0, 0.25, n)) + 1.0
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wicks[0]),
            "low": np.minimum(open_, close) * np.exp(-wicks[1]),
            "close": close,
            "volume": volume,
        },
        index=_trading_index(start, n, timeframe),
    )


def _trading_index(start: str | pd.Timestamp, n: int, timeframe: str) -> pd.DatetimeIndex:
    """The first ``n`` bar open times from ``start`` that fall in FX trading hours.

    The FX week follows New York: open Sunday 17:00, close Friday 17:00 New York time
    (daylight saving included), i.e. a bar is open iff its trading date is a weekday. Bars
    are laid on the bins of :func:`forexgrid.data.timeframes.resample`: 4h and 1d bars on
    the New York-anchored bins (a daily bar is one trading date), finer bars every
    timeframe from 00:00 UTC. So synthetic bars of any timeframe resample exactly like
    real ones, e.g. 1h bars to one daily bar per weekday.
    """
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"synthetic_bars: start must be a date or timestamp such as '2020-01-06', "
            f"got {start!r}"
        ) from err
    if first is pd.NaT:
        raise DataError(f"synthetic_bars: start must be a date or timestamp, got {start!r}")
    first = first.tz_localize("UTC") if first.tz is None else first.tz_convert("UTC")
    offset = TIMEFRAMES[timeframe]
    delta = pd.Timedelta(offset)
    per_week = int(pd.Timedelta(days=7) / delta)
    open_per_week = pd.Timedelta(hours=120) / delta
    weeks = math.ceil(n / open_per_week) + 2
    if timeframe in ("4h", "1d"):
        # New York-anchored bins: every bin boundary is the end of the bin before it, and
        # an hourly grid meets every bin, so the boundaries from ``first`` on are the
        # distinct bin ends of the grid's hours (bar_end_times handles daylight saving).
        hours = pd.date_range(
            first.floor("1h") - pd.Timedelta(hours=1),
            periods=weeks * 7 * 24 + 2,
            freq="1h",
        )
        ends = np.unique(bar_end_times(hours, timeframe))
        ends = ends[ends >= first.as_unit("ns").value]
        candidates = pd.to_datetime(ends, unit="ns", utc=True).as_unit(hours.unit)
    else:
        candidates = pd.date_range(first.ceil(offset), periods=weeks * per_week, freq=delta)
    weekday = pd.DatetimeIndex(trading_dates(candidates)).day_of_week
    index = candidates[weekday < 5][:n].rename("time")
    index.freq = None  # a filtered index has no regular frequency
    return index


def _garch_variance(shocks: np.ndarray) -> np.ndarray:
    """Variance multipliers h_t = (1-a-b) + a z_{t-1}^2 + b h_{t-1}, mean 1, h_{-1} = 1."""
    from scipy.signal import lfilter  # scipy comes with scikit-learn; imported when used

    centred = np.empty_like(shocks)
    centred[0] = 0.0
    centred[1:] = shocks[:-1] ** 2 - 1.0
    # h_t - 1 = a (z_{t-1}^2 - 1) + b (h_{t-1} - 1): a linear filter, run in C.
    return 1.0 + lfilter([_GARCH_ALPHA], [1.0, -_GARCH_BETA], centred)


def _intraday_factor(index: pd.DatetimeIndex) -> np.ndarray:
    # FX is most active in the London/New York overlap (~14:00 UTC), least in late Asia.
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    factor = 1.0 + 0.35 * np.cos(2.0 * np.pi * (hours - 14.0) / 24.0)
    return factor / factor.mean()


def _next_regime(current: int, deviation: float, rng: np.random.Generator) -> int:
    # Trends lean against the distance from the base price, so prices stay in a realistic
    # band; the ranging regimes are equally likely.
    weights = np.array([math.exp(-deviation), math.exp(deviation), 1.0, 1.0])
    weights[current] = 0.0
    return int(rng.choice(len(REGIMES), p=weights / weights.sum()))


def _regime_path(
    n: int,
    shocks: np.ndarray,
    noise_vol: np.ndarray,
    base_vol: float,
    log_base: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Regime codes (n,) and log closes (symbols, n), built segment by segment."""
    from scipy.signal import lfilter

    codes = np.empty(n, dtype=np.intp)
    log_close = np.empty_like(shocks)
    level = log_base.copy()
    current = int(rng.integers(len(REGIMES)))
    pos = 0
    # One iteration per regime segment (~n/180), each vectorised over its bars.
    while pos < n:
        if pos > 0:
            current = _next_regime(current, (level[0] - log_base[0]) / _PULL_SCALE, rng)
        params = _PARAMS[REGIMES[current]]
        duration = rng.gamma(_DURATION_SHAPE, params.mean_duration / _DURATION_SHAPE)
        end = min(n, pos + max(_MIN_DURATION, int(round(duration))))
        codes[pos:end] = current
        noise = shocks[:, pos:end] * (params.vol * noise_vol[pos:end])
        if params.phi is None:
            path = np.cumsum(noise + params.drift * base_vol, axis=1)
        else:
            # AR(1) deviation from the price where the range began: mean reversion.
            path = lfilter([1.0], [1.0, -params.phi], noise, axis=1)
        log_close[:, pos:end] = level[:, None] + path
        level = log_close[:, end - 1].copy()
        pos = end
    return codes, log_close


def _ohlcv(
    log_close: np.ndarray,
    base_price: float,
    bar_vol: np.ndarray,
    base_vol: float,
    extra: np.ndarray,
    index: pd.DatetimeIndex,
    timeframe: str,
) -> pd.DataFrame:
    decimals = 3 if base_price > 20.0 else 5  # pip conventions: JPY pairs quote 3 decimals
    close = np.exp(log_close)
    open_ = np.concatenate(([base_price], close[:-1]))
    # Intrabar excursions beyond open/close, proportional to the bar's volatility.
    high = np.maximum(open_, close) * np.exp(0.5 * bar_vol * np.abs(extra[0]))
    low = np.minimum(open_, close) * np.exp(-0.5 * bar_vol * np.abs(extra[1]))
    hours = pd.Timedelta(TIMEFRAMES[timeframe]) / pd.Timedelta(hours=1)
    activity = bar_vol / base_vol
    volume = _VOLUME_PER_HOUR * hours * activity**1.5 * np.exp(0.25 * extra[2])
    # Rounding is monotone, so low <= open/close <= high survives it, and each open still
    # equals the previous close exactly.
    frame = pd.DataFrame(
        {
            "open": np.round(open_, decimals),
            "high": np.round(high, decimals),
            "low": np.round(low, decimals),
            "close": np.round(close, decimals),
            "volume": np.maximum(np.round(volume), 1.0),
        },
        index=index,
        columns=list(BAR_COLUMNS),
        dtype="float64",
    )
    return frame
