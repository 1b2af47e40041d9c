"""Features and targets: one windowed definition shared by real and synthetic history.

Every feature at bar ``t`` is a function of the last ``L`` raw bars up to and including ``t``
(:func:`history_length`), with finite windows only (RSI and ATR are simple means, never
exponential state). The single definition is :func:`features_from_windows`, which takes a
batch of ``N`` raw windows ``(N, L)`` and returns the features of the last bar of each. The
recursive prediction method builds windows whose tail is synthetic and calls it directly;
:func:`build_features` feeds it sliding windows over real bars, so both see the same numbers.

Column layout of a feature row (``feature_names``):

- encoder block, ``window`` bars per OHLC field, oldest first (``lag{k}`` = k bars before t):
  ``time_delta``: ``ret_{field}_lag{k}`` = log(field[t-k] / close[t-k-1]);
  ``absolute``: ``{field}_lag{k}`` = the raw price;
  ``normalized``: ``z_{field}_lag{k}`` = (field - mean) / std of the window's ``window``
  closes (population std; a flat window gives 0s);
- time block (every encoder): ``dt`` (time since the previous bar in units of the
  timeframe), ``hour_sin``, ``hour_cos`` (time of day of bar t's open), ``weekday_sin``,
  ``weekday_cos`` (Monday = 0);
- indicators (every encoder): ``volatility`` (sample std, ddof=1, of the last
  ``volatility_window`` log close returns), ``rsi`` (``rsi_window``-bar simple means of close
  gains and losses, 0..100, 50 when there is no movement), ``atr`` (``atr_window``-bar simple
  mean of the true range divided by close[t]), ``momentum`` (log close[t] /
  close[t - momentum_window]), ``volume_rel`` (log1p(volume[t]) minus the mean of log1p(volume)
  over the last ``window`` bars: scale-free and finite for any volume >= 0).

Higher-timeframe columns (``htf_{tf}_{indicator}``, from :func:`indicator_features`) follow
the encoder columns in :func:`build_features`; they hold the four indicators of the last
*completed* higher bar.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forexgrid.config import ENCODERS  # the vocabulary lives with the settings
from forexgrid.data.timeframes import (
    bar_end_times,
    infer_timeframe,
    normalize_timeframe,
    resample,
    timeframe_delta,
)
from forexgrid.exceptions import ConfigError, DataError

__all__ = [
    "ENCODERS",
    "INDICATORS",
    "build_features",
    "build_targets",
    "feature_names",
    "features_from_windows",
    "history_length",
    "indicator_feature_names",
    "indicator_features",
]

logger = logging.getLogger(__name__)

INDICATORS: tuple[str, ...] = ("volatility", "rsi", "atr", "momentum")

_OHLC = ("open", "high", "low", "close")
_BAR_COLUMNS = ("open", "high", "low", "close", "volume")
_TIME_NAMES = ("dt", "hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
_DAY_NS = 86_400 * 10**9
# 1970-01-01 (day 0 of int64 ns time) was a Thursday; Monday = 0 as in pandas.
_EPOCH_WEEKDAY = 3
# Rows per chunk in build_features: bounded memory (a chunk of 32-bar windows is ~1 MB per
# field) while keeping numpy's per-call overhead negligible.
_CHUNK_ROWS = 4096
# A window whose close std is below this fraction of its mean is flat: rounding in the mean
# would otherwise turn a flat window into +-1 z-scores.
_FLAT_REL_STD = 1e-12


# --------------------------------------------------------------------------- parameters


def _check_encoder(encoder: str) -> str:
    if encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder {encoder!r}; expected one of {', '.join(ENCODERS)}")
    return encoder


def _check_windows(**windows: int) -> None:
    for name, value in windows.items():
        # bool is an int subclass; True as a window size is always a mistake.
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ConfigError(f"features.{name}: must be an integer >= 2, got {value!r}")


def history_length(
    encoder: str,
    window: int = 32,
    rsi_window: int = 14,
    atr_window: int = 14,
    volatility_window: int = 20,
    momentum_window: int = 10,
) -> int:
    """Return ``L``, the number of raw bars (including bar t) one feature row needs.

    Every encoder needs ``window + 1`` bars (returns and the time delta look at the bar
    before the oldest/current one); each indicator needs its window plus the previous close.

    Parameters
    ----------
    encoder : str
        One of :data:`ENCODERS`.
    window, rsi_window, atr_window, volatility_window, momentum_window : int
        Window sizes in bars (each >= 2).

    Returns
    -------
    int
        ``max(window, rsi_window, atr_window, volatility_window, momentum_window) + 1``.

    Raises
    ------
    ConfigError
        Unknown encoder or a window that is not an integer >= 2.
    """
    _check_encoder(encoder)
    _check_windows(
        window=window,
        rsi_window=rsi_window,
        atr_window=atr_window,
        volatility_window=volatility_window,
        momentum_window=momentum_window,
    )
    return int(max(window, rsi_window, atr_window, volatility_window, momentum_window)) + 1


def feature_names(
    encoder: str,
    window: int = 32,
    rsi_window: int = 14,
    atr_window: int = 14,
    volatility_window: int = 20,
    momentum_window: int = 10,
) -> list[str]:
    """Return the column names of :func:`features_from_windows` output, in order.

    Takes the same window arguments as :func:`history_length` so callers can pass one
    keyword set everywhere; only ``window`` changes the names (the others are validated).

    Parameters
    ----------
    encoder : str
        One of :data:`ENCODERS`.
    window : int
        Bars per OHLC field in the encoder block.
    rsi_window, atr_window, volatility_window, momentum_window : int
        Indicator windows (each >= 2); they do not change the names.

    Returns
    -------
    list of str
        Encoder block, time block, then ``volatility rsi atr momentum volume_rel``.

    Raises
    ------
    ConfigError
        Unknown encoder or a window that is not an integer >= 2.
    """
    history_length(encoder, window, rsi_window, atr_window, volatility_window, momentum_window)
    prefix = {"time_delta": "ret_", "absolute": "", "normalized": "z_"}[encoder]
    lags = range(window - 1, -1, -1)  # oldest first, lag0 = bar t
    names = [f"{prefix}{field}_lag{k}" for field in _OHLC for k in lags]
    return names + list(_TIME_NAMES) + list(INDICATORS) + ["volume_rel"]


def indicator_feature_names(indicator_timeframes: Sequence[str]) -> list[str]:
    """Return the higher-timeframe column names, e.g. ``htf_4h_rsi``.

    Parameters
    ----------
    indicator_timeframes : sequence of str
        Higher timeframes (aliases accepted, names use the canonical form).

    Returns
    -------
    list of str
        ``htf_{tf}_{indicator}`` for each timeframe, then each of :data:`INDICATORS`.

    Raises
    ------
    DataError
        An unknown timeframe.
    """
    tfs = [normalize_timeframe(tf) for tf in indicator_timeframes]
    return [f"htf_{tf}_{name}" for tf in tfs for name in INDICATORS]


# --------------------------------------------------------------------------- the definition


def _indicator_block(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    rsi_window: int,
    atr_window: int,
    volatility_window: int,
    momentum_window: int,
) -> np.ndarray:
    """The four common indicators of the last column of (N, L) windows, as (N, 4)."""
    last = close[:, -1]
    log_returns = np.log(close[:, -volatility_window:] / close[:, -volatility_window - 1 : -1])
    volatility = log_returns.std(axis=1, ddof=1)

    moves = np.diff(close[:, -rsi_window - 1 :], axis=1)
    gains = np.clip(moves, 0.0, None).mean(axis=1)
    losses = np.clip(-moves, 0.0, None).mean(axis=1)
    total = gains + losses
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100.0 * gains / total, 50.0)

    hi = high[:, -atr_window:]
    lo = low[:, -atr_window:]
    prev_close = close[:, -atr_window - 1 : -1]
    true_range = np.maximum(hi - lo, np.maximum(np.abs(hi - prev_close), np.abs(lo - prev_close)))
    atr = true_range.mean(axis=1) / last

    momentum = np.log(last / close[:, -momentum_window - 1])
    return np.column_stack([volatility, rsi, atr, momentum])


def _as_windows(name: str, values: object, dtype: type) -> np.ndarray:
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        # datetime64 of any unit -> int64 ns (a plain int cast would keep e.g. microseconds).
        array = array.astype("datetime64[ns]").view(np.int64)
    array = array.astype(dtype, copy=False)
    if array.ndim != 2:
        raise DataError(
            f"features_from_windows: {name} must be a 2-D array (N windows, L bars), "
            f"got shape {array.shape}"
        )
    return array


def features_from_windows(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    times: np.ndarray,
    *,
    encoder: str,
    window: int = 32,
    rsi_window: int = 14,
    atr_window: int = 14,
    volatility_window: int = 20,
    momentum_window: int = 10,
    timeframe: str,
) -> np.ndarray:
    """Compute the features of the last bar of each of N raw windows (vectorised over N).

    This is the one definition of every base feature: :func:`build_features` feeds it
    sliding windows of real bars, recursive prediction feeds it windows whose tail is
    synthetic. Windows longer than :func:`history_length` are accepted; only their last
    ``L`` bars are read.

    Parameters
    ----------
    open, high, low, close, volume : array-like, shape (N, L)
        Raw bar fields, oldest to newest; the last column is bar t.
    times : array-like of int64, shape (N, L)
        Bar open times as int64 nanoseconds since the epoch, UTC (``datetime64`` arrays
        of any unit are converted).
    encoder : str
        One of :data:`ENCODERS`.
    window, rsi_window, atr_window, volatility_window, momentum_window : int
        Window sizes in bars (each >= 2).
    timeframe : str
        The bars' timeframe (``15m``, ``1h``, ``4h``, ``1d``; aliases accepted), the unit
        of the ``dt`` feature.

    Returns
    -------
    numpy.ndarray, shape (N, F)
        Columns as :func:`feature_names` ``(encoder, window)``.

    Raises
    ------
    ConfigError
        Unknown encoder or a bad window size.
    DataError
        Arrays that are not 2-D of one shape with at least ``L`` columns, or an unknown
        timeframe.
    """
    length = history_length(
        encoder, window, rsi_window, atr_window, volatility_window, momentum_window
    )
    fields = {
        "open": _as_windows("open", open, np.float64),
        "high": _as_windows("high", high, np.float64),
        "low": _as_windows("low", low, np.float64),
        "close": _as_windows("close", close, np.float64),
        "volume": _as_windows("volume", volume, np.float64),
        "times": _as_windows("times", times, np.int64),
    }
    shapes = {name: array.shape for name, array in fields.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"features_from_windows: arrays differ in shape: {shapes}")
    n_cols = shapes["close"][1]
    if n_cols < length:
        raise DataError(
            f"features_from_windows: windows have {n_cols} bars but encoder {encoder!r} with "
            f"these windows needs L = {length} bars (see history_length)"
        )
    tf_ns = timeframe_delta(normalize_timeframe(timeframe)).value
    # Only the last L columns matter; a contiguous copy makes every row's reductions run in
    # the same order whatever N is, so chunked and unchunked results agree bit for bit.
    o, h, lo, c, v = (np.ascontiguousarray(fields[k][:, -length:]) for k in _BAR_COLUMNS)
    t = fields["times"][:, -2:]

    with np.errstate(divide="ignore", invalid="ignore"):
        if encoder == "time_delta":
            prev_close = c[:, -window - 1 : -1]
            encoded = [np.log(field[:, -window:] / prev_close) for field in (o, h, lo, c)]
        elif encoder == "absolute":
            encoded = [field[:, -window:] for field in (o, h, lo, c)]
        else:  # normalized
            closes = c[:, -window:]
            mean = closes.mean(axis=1, keepdims=True)
            std = closes.std(axis=1, keepdims=True)
            flat = ~(std > _FLAT_REL_STD * np.abs(mean))
            safe_std = np.where(flat, 1.0, std)
            encoded = [
                np.where(flat, 0.0, (field[:, -window:] - mean) / safe_std)
                for field in (o, h, lo, c)
            ]

        dt = (t[:, 1] - t[:, 0]).astype(np.float64) / tf_ns
        day_fraction = np.mod(t[:, 1], _DAY_NS).astype(np.float64) / _DAY_NS
        weekday = np.mod(np.floor_divide(t[:, 1], _DAY_NS) + _EPOCH_WEEKDAY, 7)
        hour_angle = 2.0 * np.pi * day_fraction
        week_angle = 2.0 * np.pi * weekday.astype(np.float64) / 7.0
        time_block = np.column_stack(
            [dt, np.sin(hour_angle), np.cos(hour_angle), np.sin(week_angle), np.cos(week_angle)]
        )

        indicators = _indicator_block(
            h,
            lo,
            c,
            rsi_window=rsi_window,
            atr_window=atr_window,
            volatility_window=volatility_window,
            momentum_window=momentum_window,
        )
        log_volume = np.log1p(v[:, -window:])
        volume_rel = log_volume[:, -1] - log_volume.mean(axis=1)

    return np.concatenate([*encoded, time_block, indicators, volume_rel[:, None]], axis=1)


# --------------------------------------------------------------------------- bars -> frames


def _check_bars(bars: pd.DataFrame) -> None:
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in _BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(
            f"bars are missing column(s) {', '.join(missing)}; expected "
            f"{' '.join(_BAR_COLUMNS)}, found {' '.join(map(str, bars.columns))}"
        )
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError(
            "bars must have a tz-aware (UTC) DatetimeIndex, got "
            f"{type(index).__name__} with dtype {index.dtype}"
        )
    if len(index) > 1 and not (index.is_monotonic_increasing and index.is_unique):
        raise DataError("bars index must be strictly increasing (sorted, no duplicates)")


def _times_ns(index: pd.DatetimeIndex) -> np.ndarray:
    # pandas 3 parses to microseconds by default; the feature code works in ns.
    return index.tz_convert("UTC").as_unit("ns").asi8


def indicator_features(
    bars: pd.DataFrame,
    indicator_timeframes: Sequence[str],
    *,
    rsi_window: int = 14,
    atr_window: int = 14,
    volatility_window: int = 20,
    momentum_window: int = 10,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """Return the four indicators of each higher timeframe, from its last completed bar.

    The bars are resampled to each higher timeframe (FX conventions: New York 17:00 close,
    bars labelled by their open time). A higher bar completes at the exact end of its bin
    (:func:`forexgrid.data.timeframes.bar_end_times`, which follows daylight saving: a
    24/7 daily bin of a change-over Sunday lasts 23 or 25 hours); base bar ``t`` closes at
    its own end likewise (``t + tf`` for timeframes up to 1h). At base bar ``t`` the row
    holds the indicators of the latest higher bar that completed at or before the close of
    bar t, so nothing after that close is used. Rows before enough higher bars exist are
    NaN.

    Parameters
    ----------
    bars : pandas.DataFrame
        Bars (UTC DatetimeIndex, ``open high low close volume``).
    indicator_timeframes : sequence of str
        Higher timeframes, each coarser than the bars' timeframe.
    rsi_window, atr_window, volatility_window, momentum_window : int
        Indicator windows in *higher* bars.
    timeframe : str, optional
        The bars' timeframe; inferred from the index when None.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``bars``, columns :func:`indicator_feature_names`.

    Raises
    ------
    DataError
        Bars that break the contract, an unknown timeframe, or an indicator timeframe not
        coarser than the bars' timeframe.
    ConfigError
        A window that is not an integer >= 2.
    """
    _check_bars(bars)
    _check_windows(
        rsi_window=rsi_window,
        atr_window=atr_window,
        volatility_window=volatility_window,
        momentum_window=momentum_window,
    )
    names = indicator_feature_names(indicator_timeframes)
    out = pd.DataFrame(np.nan, index=bars.index, columns=names, dtype=np.float64)
    if not names or len(bars) == 0:
        return out
    base_tf = normalize_timeframe(timeframe) if timeframe is not None else infer_timeframe(bars)
    base_delta = timeframe_delta(base_tf)
    base_close = bar_end_times(bars.index, base_tf)
    length = max(rsi_window, atr_window, volatility_window, momentum_window) + 1

    for raw_tf in indicator_timeframes:
        tf = normalize_timeframe(raw_tf)
        delta = timeframe_delta(tf)
        if delta <= base_delta:
            raise DataError(
                f"indicator timeframe {raw_tf!r} is not coarser than the bars' timeframe "
                f"{base_tf!r}; indicator_timeframes must be higher timeframes"
            )
        higher = resample(bars, tf)
        if len(higher) < length:
            continue  # too little higher history: the columns stay NaN
        windows = {
            k: np.ascontiguousarray(sliding_window_view(higher[k].to_numpy(np.float64), length))
            for k in ("high", "low", "close")
        }
        values = np.full((len(higher), len(INDICATORS)), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            values[length - 1 :] = _indicator_block(
                windows["high"],
                windows["low"],
                windows["close"],
                rsi_window=rsi_window,
                atr_window=atr_window,
                volatility_window=volatility_window,
                momentum_window=momentum_window,
            )
        completes = _completion_times(higher.index, tf)
        # merge_asof on int64 keys: exact match allowed (a bar completing exactly when
        # bar t closes is usable at t), "backward" = the latest completed bar.
        right = pd.DataFrame(values, columns=INDICATORS)
        right.insert(0, "_completes", completes)
        left = pd.DataFrame({"_closes": base_close})
        merged = pd.merge_asof(
            left, right, left_on="_closes", right_on="_completes", direction="backward"
        )
        cols = [f"htf_{tf}_{name}" for name in INDICATORS]
        out[cols] = merged[list(INDICATORS)].to_numpy()
    return out


def _completion_times(higher_index: pd.DatetimeIndex, timeframe: str) -> np.ndarray:
    """Time (int64 ns) at which each higher bar is complete: the exact end of its bin."""
    return bar_end_times(higher_index, timeframe)


def build_features(
    bars: pd.DataFrame,
    encoder: str = "time_delta",
    window: int = 32,
    indicator_timeframes: Sequence[str] = (),
    rsi_window: int = 14,
    atr_window: int = 14,
    volatility_window: int = 20,
    momentum_window: int = 10,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """Compute the feature matrix X of every bar.

    Row t is :func:`features_from_windows` on the ``L`` bars ending at t (``L`` =
    :func:`history_length`), followed by the higher-timeframe columns of
    :func:`indicator_features`. The first ``L - 1`` rows are NaN (not enough history); a
    frame with fewer than ``L`` bars gives an all-NaN frame (the split code reports
    too-little-data). Higher-timeframe columns may stay NaN for longer, until enough
    higher bars have completed.

    Parameters
    ----------
    bars : pandas.DataFrame
        Bars (UTC DatetimeIndex, columns ``open high low close volume``).
    encoder : str
        One of :data:`ENCODERS`.
    window, rsi_window, atr_window, volatility_window, momentum_window : int
        Window sizes in bars (each >= 2).
    indicator_timeframes : sequence of str
        Higher timeframes whose indicators are appended (e.g. ``["4h", "1d"]``).
    timeframe : str, optional
        The bars' timeframe; inferred from the index when None.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``bars``; columns :func:`feature_names` then
        :func:`indicator_feature_names`; float64.

    Raises
    ------
    ConfigError
        Unknown encoder (the message lists the valid ones) or a bad window size.
    DataError
        Bars that break the contract, an unknown or uninferable timeframe, or an indicator
        timeframe not coarser than the bars'.
    """
    length = history_length(
        encoder, window, rsi_window, atr_window, volatility_window, momentum_window
    )
    _check_bars(bars)
    names = feature_names(encoder, window)
    n = len(bars)
    if n < length:
        # Not enough history for one row: all NaN, not an error (make_splits reports
        # too-little-data with the numbers). Higher-timeframe names are still validated.
        columns = names + indicator_feature_names(indicator_timeframes)
        return pd.DataFrame(np.nan, index=bars.index, columns=columns, dtype=np.float64)
    tf = normalize_timeframe(timeframe) if timeframe is not None else infer_timeframe(bars)
    values = np.full((n, len(names)), np.nan)
    arrays = [bars[k].to_numpy(np.float64) for k in _BAR_COLUMNS]
    views = [sliding_window_view(a, length) for a in arrays]
    views.append(sliding_window_view(_times_ns(bars.index), length))
    # Chunks bound the memory of the contiguous window copies; each row is computed from its
    # own window only, so the chunking cannot change a value.
    for start in range(0, n - length + 1, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n - length + 1)
        o, h, lo, c, v, t = (view[start:stop] for view in views)
        values[start + length - 1 : stop + length - 1] = features_from_windows(
            o,
            h,
            lo,
            c,
            v,
            t,
            encoder=encoder,
            window=window,
            rsi_window=rsi_window,
            atr_window=atr_window,
            volatility_window=volatility_window,
            momentum_window=momentum_window,
            timeframe=tf,
        )
    frame = pd.DataFrame(values, index=bars.index, columns=names)
    if indicator_timeframes:
        htf = indicator_features(
            bars,
            indicator_timeframes,
            rsi_window=rsi_window,
            atr_window=atr_window,
            volatility_window=volatility_window,
            momentum_window=momentum_window,
            timeframe=tf,
        )
        frame = pd.concat([frame, htf], axis=1)
    return frame


def build_targets(bars: pd.DataFrame, horizon: int) -> pd.Series:
    """Return the h-bar forward log return ``y_t = log(close[t+h] / close[t])``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Bars with a ``close`` column.
    horizon : int
        h >= 1, in bars.

    Returns
    -------
    pandas.Series
        Indexed like ``bars``, named ``target``; NaN for the last ``horizon`` bars.

    Raises
    ------
    ConfigError
        ``horizon`` not an integer >= 1.
    DataError
        ``bars`` has no ``close`` column.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"horizon: must be an integer >= 1, got {horizon!r}")
    if not isinstance(bars, pd.DataFrame) or "close" not in bars.columns:
        raise DataError("build_targets: bars must be a DataFrame with a 'close' column")
    close = bars["close"].to_numpy(np.float64)
    target = np.full(len(close), np.nan)
    if len(close) > horizon:
        target[:-horizon] = np.log(close[horizon:] / close[:-horizon])
    return pd.Series(target, index=bars.index, name="target")
