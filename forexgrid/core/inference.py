"""Prediction methods: direct, recursive and direct_multi, batched over all bars.

Each method gives, at bar t, a forecast of the h-bar log return ``log(close[t+h]/close[t])``
using data up to t only (DESIGN.md, "Prediction methods"):

- ``direct``: ``f(x_t)``.
- ``recursive``: f_1 = f(x_t); for j = 2..h, f_j is the forecast on the history extended by
  j-1 synthetic bars (time = previous + one timeframe, open = previous close,
  close = open * exp(f_{j-1} / h), high/low = max/min(open, close), volume = last real
  volume; higher-timeframe indicators keep their last completed real value); the value is
  mean(f_1..f_h). Every origin bar is extended at once, so the cost is h batched
  ``model.predict`` calls, not a loop over bars.
- ``direct_multi``: the mean of the direct forecasts made at t, t-1, ..., t-h+1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid.core import features as _features
from forexgrid.core.signals import PREDICTION_METHODS
from forexgrid.data.timeframes import timeframe_delta
from forexgrid.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    from forexgrid.config import Settings
    from forexgrid.grid import TrainingConfig

__all__ = ["PREDICTION_METHODS", "feature_params", "make_features", "predict"]

# Origins extended per batch in the recursive method: bounds memory at about
# _CHUNK x history_length x 6 floats.
_CHUNK = 8192


def feature_params(settings: Settings | None) -> dict[str, int]:
    """The feature-window keyword arguments of ``build_features`` from the configuration."""
    if settings is None:
        from forexgrid.config import load_config

        settings = load_config(None)
    f = settings.features
    return {
        "window": f.window,
        "rsi_window": f.rsi_window,
        "atr_window": f.atr_window,
        "volatility_window": f.volatility_window,
        "momentum_window": f.momentum_window,
    }


def make_features(
    bars: pd.DataFrame, training_config: TrainingConfig, settings: Settings | None = None
) -> pd.DataFrame:
    """The model inputs of a training configuration: ``build_features`` with its settings."""
    return _features.build_features(
        bars,
        encoder=training_config.encoder,
        indicator_timeframes=tuple(training_config.indicator_timeframes),
        timeframe=training_config.timeframe,
        **feature_params(settings),
    )


def _check_predict_input(
    bars: pd.DataFrame, features: pd.DataFrame, methods: Sequence[str]
) -> tuple[str, ...]:
    """The one input check every prediction method shares."""
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    unknown = [m for m in methods if m not in PREDICTION_METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"prediction methods: unknown or empty {list(methods)}; expected some of "
            f"{', '.join(PREDICTION_METHODS)}"
        )
    if not features.index.equals(bars.index):
        raise DataError("features: index differs from the bars' index; rebuild the features")
    return methods


def _model_predict(model: Any, rows: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(rows), dtype=float).reshape(-1)


def predict(
    model: Any,
    bars: pd.DataFrame,
    training_config: TrainingConfig,
    settings: Settings | None = None,
    methods: Sequence[str] = PREDICTION_METHODS,
    *,
    features: pd.DataFrame | None = None,
    out_of_sample_from: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Forecasts of every requested prediction method at every bar.

    Parameters
    ----------
    model
        A fitted estimator with ``predict`` over the feature matrix of ``make_features``.
    bars
        Bars (the Bars contract) at the configuration's timeframe.
    training_config
        The configuration the model was trained with (horizon, encoder, timeframe,
        indicator timeframes).
    settings
        The configuration (its ``features`` section); None uses the defaults.
    methods
        Any of ``direct``, ``recursive``, ``direct_multi``.
    features
        The features of ``bars`` when already built (``make_features``), to avoid building
        them twice.
    out_of_sample_from
        The first bar at which the model may forecast: the model is not asked about any
        earlier bar (those are typically the rows it was fitted on), their forecasts are
        NaN, and the methods that combine several forecasts treat them as missing
        (``direct_multi`` needs h forecasts from this bar on; ``recursive`` starts from
        origins at or after it). None forecasts every bar.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``bars``, one float column per method, NaN before enough history (and
        before ``out_of_sample_from``).

    Raises
    ------
    ConfigError
        For an unknown prediction method.
    DataError
        When ``features`` does not belong to ``bars``.
    """
    if features is None:
        features = make_features(bars, training_config, settings)
    methods = _check_predict_input(bars, features, methods)
    horizon = int(training_config.horizon)

    matrix = features.to_numpy(dtype=float)
    valid = np.isfinite(matrix).all(axis=1)
    if out_of_sample_from is not None:
        valid &= bars.index >= out_of_sample_from
    direct = np.full(len(bars), np.nan)
    if valid.any():
        direct[valid] = _model_predict(model, matrix[valid])

    out = {}
    for method in methods:
        if method == "direct" or horizon == 1:
            out[method] = direct
        elif method == "direct_multi":
            out[method] = pd.Series(direct).rolling(horizon, min_periods=horizon).mean().to_numpy()
        else:
            out[method] = _recursive(
                model, bars, features, direct, valid, training_config, settings
            )
    return pd.DataFrame(out, index=bars.index, columns=list(methods))


def _recursive(
    model: Any,
    bars: pd.DataFrame,
    features: pd.DataFrame,
    direct: np.ndarray,
    valid: np.ndarray,
    training_config: TrainingConfig,
    settings: Settings | None,
) -> np.ndarray:
    """The recursive method for every valid origin bar, in batches of origins."""
    params = feature_params(settings)
    encoder = training_config.encoder
    timeframe = training_config.timeframe
    horizon = int(training_config.horizon)
    length = _features.history_length(encoder, **params)
    base_names = _features.feature_names(encoder, **params)
    # Higher-timeframe columns keep their last completed real value on synthetic bars.
    htf = features.drop(columns=base_names).to_numpy(dtype=float)
    step = np.int64(timeframe_delta(timeframe).value)

    raw = {
        name: bars[name].to_numpy(dtype=float)
        for name in ("open", "high", "low", "close", "volume")
    }
    times = bars.index.as_unit("ns").asi8
    origins = np.flatnonzero(valid & (np.arange(len(bars)) >= length - 1))
    result = np.full(len(bars), np.nan)
    for start in range(0, origins.size, _CHUNK):
        rows = origins[start : start + _CHUNK]
        take = rows[:, None] + np.arange(1 - length, 1)[None, :]
        window = {name: values[take] for name, values in raw.items()}
        window["time"] = times[take]
        forecasts = np.empty((rows.size, horizon))
        forecasts[:, 0] = direct[rows]
        synthetic = {name: np.empty((rows.size, horizon - 1)) for name in window}
        synthetic["time"] = np.empty((rows.size, horizon - 1), dtype=np.int64)
        previous_close = window["close"][:, -1]
        for j in range(1, horizon):
            k = j - 1  # index of the synthetic bar made from forecast f_j
            bar_open = previous_close
            bar_close = bar_open * np.exp(forecasts[:, j - 1] / horizon)
            synthetic["open"][:, k] = bar_open
            synthetic["close"][:, k] = bar_close
            synthetic["high"][:, k] = np.maximum(bar_open, bar_close)
            synthetic["low"][:, k] = np.minimum(bar_open, bar_close)
            synthetic["volume"][:, k] = window["volume"][:, -1]
            synthetic["time"][:, k] = window["time"][:, -1] + step * j
            previous_close = bar_close
            # The last `length` bars of the real window followed by synthetic bars 1..j.
            extended = {
                name: np.concatenate([window[name][:, j:], synthetic[name][:, :j]], axis=1)
                for name in window
            }
            base = _features.features_from_windows(
                extended["open"],
                extended["high"],
                extended["low"],
                extended["close"],
                extended["volume"],
                extended["time"],
                encoder=encoder,
                timeframe=timeframe,
                **params,
            )
            inputs = np.concatenate([base, htf[rows]], axis=1)
            forecasts[:, j] = _model_predict(model, inputs)
        result[rows] = forecasts.mean(axis=1)
    return result
