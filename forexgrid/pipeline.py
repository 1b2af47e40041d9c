"""Phase 1 and phase 2 for one configuration: :func:`train_and_evaluate`.

The data flow, one step per function (DESIGN.md "Data flow of one configuration"):

1. **Splits**: train | purge | validation | purge | test, in whole trading days
   (:mod:`forexgrid.core.splits`).
2. **Features and fit** (phase 1): the model inputs of every bar from the first training
   row's warm-up on, and the model fitted on the training rows only.
3. **Out-of-sample forecasts** (phase 2 from here, :func:`evaluate_model`): every prediction
   method, from the first bar at which the fitted model could exist (the bar whose close
   completes the last training target) on. The model is never asked about an earlier bar,
   so no forecast of a row it was fitted on reaches any window of phase 2.
4. **Positions**: every signal of the canonical inference grid, its confidence per lookback,
   and the positions per threshold.
5. **Scoring per regime and split**: backtests net of spread over the validation and the
   test period, metrics per regime.
6. **Choice**: per regime, the combination with the best validation Sharpe; its test
   figures are what is reported.
7. **Trials**: the daily validation returns of every combination in every regime, which the
   grid-wide statistics (deflated Sharpe ratio, PBO) are computed from later.

Pure computation: nothing here writes a file or touches a database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid.core import backtest, features, models, regimes, signals, splits, stats, trials
from forexgrid.core.inference import feature_params, make_features, predict
from forexgrid.data.timeframes import (
    bars_per_year,
    infer_timeframe,
    resample,
    timeframe_delta,
    trading_dates,
)
from forexgrid.exceptions import DataError
from forexgrid.grid import TrainingConfig, config_hash, data_fingerprint
from forexgrid.results import (
    ALL_REGIME,
    CHOSEN_COLUMNS,
    CHOSEN_ON_VALIDATION,
    INSUFFICIENT,
    PINNED_CHOSEN_COLUMNS,
    RESULT_COLUMNS,
    SPLITS,
    Evaluation,
    RunResult,
    RunTrials,
)

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "CHOSEN_COLUMNS",
    "PINNED_CHOSEN_COLUMNS",
    "RESULT_COLUMNS",
    "Evaluation",
    "RunResult",
    "RunTrials",
    "evaluate_model",
    "train_and_evaluate",
]

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ the flow


def train_and_evaluate(
    config: TrainingConfig,
    bars: pd.DataFrame,
    settings: Settings | None = None,
    regime_definitions: Iterable[regimes.Regime] | Mapping[str, Any] | None = None,
) -> RunResult:
    """Train one configuration (phase 1) and backtest its inference grid (phase 2).

    Parameters
    ----------
    config
        The configuration to train.
    bars
        Bars of ``config.symbol`` at ``config.timeframe`` or finer (resampled then), covering
        at least the training, validation and test windows plus the features' warm-up.
    settings
        The configuration file's settings; None uses the defaults.
    regime_definitions
        The regimes to score; None uses the four defaults.

    Returns
    -------
    RunResult

    Raises
    ------
    DataError
        When the bars are coarser than the configuration's timeframe or too short for its
        windows (the message says how many bars were needed and found).
    ConfigError
        For invalid hyperparameters or inference-grid settings.
    """
    settings = _settings(settings)
    bars = _bars_at_timeframe(bars, config.timeframe)
    # The bars given (at the configuration's timeframe) are the data's identity, so a queue
    # can compute the same hash before training from the same bars.
    fingerprint = data_fingerprint(bars)

    started = time.perf_counter()
    split = _split(bars, config, settings)
    inputs = _model_inputs(bars, config, settings, split)
    model, n_train_rows = _fit(inputs, bars, config, settings, split)
    phase1 = time.perf_counter() - started

    started = time.perf_counter()
    evaluation = evaluate_model(
        model, config, bars, settings, regime_definitions, split=split, inputs=inputs
    )
    phase2 = time.perf_counter() - started

    for note in evaluation.grid_notes:
        logger.info("%s: %s", config.label, note)
    return RunResult(
        config=config,
        config_hash=config_hash(config, settings, fingerprint),
        model=model,
        results=evaluation.results,
        chosen=evaluation.chosen,
        predictions=evaluation.predictions,
        regime_masks=evaluation.regime_masks,
        data_fingerprint=fingerprint,
        n_combinations=evaluation.n_combinations,
        grid_notes=evaluation.grid_notes,
        splits=split,
        timings={"phase1": phase1, "phase2": phase2},
        n_train_rows=n_train_rows,
        trials=evaluation.trials,
        first_forecast=evaluation.first_forecast,
    )


def evaluate_model(
    model: Any,
    config: TrainingConfig,
    bars: pd.DataFrame,
    settings: Settings | None = None,
    regime_definitions: Iterable[regimes.Regime] | Mapping[str, Any] | None = None,
    *,
    split: splits.Splits | None = None,
    inputs: _ModelInputs | None = None,
) -> Evaluation:
    """Phase 2 of a fitted model: forecasts, positions, backtests, choice and trials.

    :func:`train_and_evaluate` calls it after the fit; called on its own (with the bars the
    model was trained on) it rescores a stored model, e.g. under new regime rules, without
    retraining.

    Parameters
    ----------
    model
        The fitted model of ``config``.
    config, bars, settings, regime_definitions
        As for :func:`train_and_evaluate`; the bars must be those the model was trained on
        for the periods to be the same.
    split, inputs
        The splits and model inputs when already computed (phase 1 passes them).

    Returns
    -------
    Evaluation
    """
    settings = _settings(settings)
    if regime_definitions is None:
        regime_definitions = regimes.DEFAULT_REGIMES
    bars = _bars_at_timeframe(bars, config.timeframe)
    if split is None:
        split = _split(bars, config, settings)
    if inputs is None:
        inputs = _model_inputs(bars, config, settings, split)

    window = _Phase2Window.of(split, config.horizon, len(bars))
    forecasts = _out_of_sample_forecasts(model, inputs, bars, config, settings, window)
    grid = _inference_grid(settings, config.horizon)
    close = bars["close"].to_numpy(dtype=float)[window.start :]
    positions = signals.compute_positions(
        signals.compute_signals(forecasts, close, grid), signals.realised_volatility(close), grid
    )
    masks = _regime_masks(bars, regime_definitions, settings, window)
    scored = {
        name: _score_split(name, period, positions, close, masks, window, grid, config, settings)
        for name, period in (("validation", split.validation), ("test", split.test))
    }
    results = pd.concat([s.table for s in scored.values()], ignore_index=True)
    chosen = _choose(results, scored, grid, settings.selection.min_trades)
    run_trials = _trials(scored["validation"], split, regime_definitions, settings)

    in_periods = np.concatenate(
        [np.arange(p.start, p.stop) - window.start for p in (split.validation, split.test)]
    )
    labels = np.repeat(SPLITS, [len(split.validation), len(split.test)])
    return Evaluation(
        results=results,
        chosen=chosen,
        predictions=forecasts.iloc[in_periods].assign(split=labels),
        regime_masks=masks.iloc[in_periods],
        trials=run_trials,
        n_combinations=len(grid),
        grid_notes=grid.notes,
        first_forecast=bars.index[window.first_forecast],
    )


# ------------------------------------------------------------------- splits and phase 1


def _settings(settings: Settings | None) -> Settings:
    if settings is None:
        from forexgrid.config import load_config

        settings = load_config(None)
    return settings


def _bars_at_timeframe(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    have = infer_timeframe(bars)
    if have == timeframe:
        return bars
    if timeframe_delta(have) < timeframe_delta(timeframe):
        return resample(bars, timeframe)
    raise DataError(
        f"bars are {have} but the configuration trains on {timeframe}; pass bars at "
        f"{timeframe} or finer"
    )


def _history_length(config: TrainingConfig, settings: Settings) -> int:
    """Bars one feature row needs, the row's own bar included."""
    return features.history_length(config.encoder, **feature_params(settings))


def _split(bars: pd.DataFrame, config: TrainingConfig, settings: Settings) -> splits.Splits:
    evaluation = settings.evaluation
    return splits.make_splits(
        bars.index,
        days_history=config.days_history,
        validation_days=evaluation.validation_days,
        test_days=evaluation.test_days,
        horizon=config.horizon,
        embargo_bars=evaluation.embargo_bars,
        warmup_bars=_history_length(config, settings) - 1,
        timeframe=config.timeframe,
    )


def _feature_warmup_bars(config: TrainingConfig, settings: Settings) -> int:
    """Bars of history the features need before a row is complete (higher timeframes too)."""
    base = _history_length(config, settings)
    step = timeframe_delta(config.timeframe)
    warm = base
    for higher in config.indicator_timeframes:
        ratio = timeframe_delta(higher) / step
        # The higher bars' own history, with room for weekends (7 calendar days per 5).
        warm = max(warm, int(np.ceil((base + 2) * ratio * 7 / 5)))
    return warm


@dataclass(frozen=True)
class _ModelInputs:
    """The features and targets of ``bars[first:]``, the bars phases 1 and 2 read."""

    first: int
    features: pd.DataFrame
    targets: np.ndarray


def _model_inputs(
    bars: pd.DataFrame, config: TrainingConfig, settings: Settings, split: splits.Splits
) -> _ModelInputs:
    """Features and targets from the first training row's warm-up on.

    The first bar is the start of a trading session, so every higher-timeframe bar the
    features resample starts complete.
    """
    wanted = max(0, split.train.start - _feature_warmup_bars(config, settings))
    sessions = trading_dates(bars.index)
    first = int(np.searchsorted(sessions, sessions[wanted], side="left"))
    used = bars.iloc[first:]
    return _ModelInputs(
        first=first,
        features=make_features(used, config, settings),
        targets=features.build_targets(used, config.horizon).to_numpy(),
    )


def _fit(
    inputs: _ModelInputs,
    bars: pd.DataFrame,
    config: TrainingConfig,
    settings: Settings,
    split: splits.Splits,
) -> tuple[Any, int]:
    """The model fitted on the training rows whose features and target are complete."""
    matrix = inputs.features.to_numpy(dtype=float)
    rows = np.arange(split.train.start, split.train.stop) - inputs.first
    rows = rows[np.isfinite(matrix[rows]).all(axis=1) & np.isfinite(inputs.targets[rows])]
    if rows.size < splits.MIN_TRAIN_ROWS:
        raise DataError(
            f"{config.symbol} {config.timeframe}: only {rows.size} training rows have "
            f"complete features (need {splits.MIN_TRAIN_ROWS}); load more history before "
            f"{split.train_start}"
        )
    model = models.make_model(config.model_type, config.hyperparameters, settings.execution.seed)
    model.fit(matrix[rows], inputs.targets[rows])
    return model, int(rows.size)


# ------------------------------------------------------------------------------ phase 2


@dataclass(frozen=True)
class _Phase2Window:
    """The bars phase 2 computes on, as positions in the configuration's bars.

    Attributes
    ----------
    start
        The first bar of phase 2's arrays: price history for the realised volatility of
        the confidence score, ``VOLATILITY_WINDOW`` bars before ``first_forecast``.
    first_forecast
        The first bar the model forecasts: the bar whose close completes the last training
        target, ``train.stop - 1 + horizon``, when the fitted model could first exist.
    stop
        One past the last bar.
    """

    start: int
    first_forecast: int
    stop: int

    @classmethod
    def of(cls, split: splits.Splits, horizon: int, n_bars: int) -> _Phase2Window:
        first_forecast = split.train.stop - 1 + horizon
        return cls(
            start=max(0, first_forecast - signals.VOLATILITY_WINDOW),
            first_forecast=first_forecast,
            stop=n_bars,
        )

    def local(self, period: range) -> slice:
        """A period of the bars as a slice of phase 2's arrays."""
        return slice(period.start - self.start, period.stop - self.start)


def _out_of_sample_forecasts(
    model: Any,
    inputs: _ModelInputs,
    bars: pd.DataFrame,
    config: TrainingConfig,
    settings: Settings,
    window: _Phase2Window,
) -> pd.DataFrame:
    """Every prediction method over phase 2's bars, NaN before the first forecast."""
    # The recursive method reads real bars before each origin: give predict() that history.
    history_from = max(inputs.first, window.first_forecast - _history_length(config, settings))
    forecasts = predict(
        model,
        bars.iloc[history_from:],
        config,
        settings,
        _methods(settings, config.horizon),
        features=inputs.features.iloc[history_from - inputs.first :],
        out_of_sample_from=bars.index[window.first_forecast],
    )
    return forecasts.iloc[window.start - history_from :]


def _inference_grid(settings: Settings, horizon: int) -> signals.InferenceGrid:
    ig = settings.inference_grid
    return signals.build_inference_grid(
        ig.prediction_methods,
        ig.ensemble_methods,
        ig.confidence_thresholds,
        ig.lookback_windows,
        horizon,
    )


def _methods(settings: Settings, horizon: int) -> tuple[str, ...]:
    """The listed prediction methods, plus ``direct`` at horizon 1 (which evaluates every
    method as direct, listed or not)."""
    listed = tuple(settings.inference_grid.prediction_methods)
    grid = _inference_grid(settings, horizon)
    return (*listed, *(m for m in grid.methods if m not in listed))


def _regime_warmup_bars(settings: Settings) -> int:
    r = settings.regimes
    return r.trend_window + r.volatility_window + r.percentile_window + r.volume_window + 2


def _regime_masks(
    bars: pd.DataFrame,
    regime_definitions: Iterable[regimes.Regime] | Mapping[str, Any],
    settings: Settings,
    window: _Phase2Window,
) -> pd.DataFrame:
    """Causal regime labels of phase 2's bars, from their own warm-up of earlier bars."""
    labels_from = max(0, window.start - _regime_warmup_bars(settings))
    labels = regimes.label_regimes(
        bars.iloc[labels_from:], regime_definitions, **dict(settings.regimes)
    )
    return labels.iloc[window.start - labels_from :]


@dataclass(frozen=True)
class _SplitScore:
    """One split's backtest: per-bar returns (T, K), regime masks (M, T), metrics table."""

    name: str
    index: pd.DatetimeIndex
    returns: np.ndarray
    masks: np.ndarray
    table: pd.DataFrame


def _score_split(
    name: str,
    period: range,
    positions: np.ndarray,
    close: np.ndarray,
    masks: pd.DataFrame,
    window: _Phase2Window,
    grid: signals.InferenceGrid,
    config: TrainingConfig,
    settings: Settings,
) -> _SplitScore:
    """Backtest every combination over one split and measure it in every regime."""
    rows = window.local(period)
    evaluation = settings.evaluation
    spread_price = evaluation.spread_for(config.symbol) * evaluation.pip_size_for(config.symbol)
    returns = backtest.strategy_returns(positions[rows], close[rows], spread_price)
    regime_rows = masks.iloc[rows]
    split_masks = np.vstack([np.ones(len(regime_rows), dtype=bool), regime_rows.to_numpy(bool).T])
    metrics = backtest.compute_metrics_batch(
        returns, positions[rows], split_masks, bars_per_year(config.timeframe)
    )
    names = [ALL_REGIME, *masks.columns]
    combos = grid.to_frame()
    table = pd.concat([combos] * len(names), ignore_index=True)
    table["regime"] = np.repeat(names, len(combos))
    table["split"] = name
    for key in backtest.METRIC_NAMES:
        table[key] = metrics[key].reshape(-1)
    return _SplitScore(name, regime_rows.index, returns, split_masks, table)


def _choose(
    results: pd.DataFrame,
    scored: Mapping[str, _SplitScore],
    grid: signals.InferenceGrid,
    min_trades: int,
) -> pd.DataFrame:
    """Per regime, the combination with the best validation Sharpe among the eligible ones.

    Eligible: at least ``min_trades`` validation trades opened in the regime and a finite
    validation Sharpe. Ties go to the earlier combination in grid order.
    """
    k = len(grid)
    val = results[results["split"] == "validation"]
    test = results[results["split"] == "test"]
    regime_names = val["regime"].iloc[::k].tolist()
    rows = []
    for m, regime in enumerate(regime_names):
        v = val.iloc[m * k : (m + 1) * k]
        t = test.iloc[m * k : (m + 1) * k]
        sharpe = v["sharpe"].to_numpy()
        eligible = (v["trades"].to_numpy() >= min_trades) & np.isfinite(sharpe)
        if not eligible.any():
            rows.append({"regime": regime, "reason": INSUFFICIENT, "val_trades": np.nan})
            continue
        best = int(np.argmax(np.where(eligible, sharpe, -np.inf)))
        validation, tested = scored["validation"], scored["test"]
        val_returns = validation.returns[validation.masks[m]]
        test_returns = tested.returns[tested.masks[m]][:, best]
        rows.append(
            {
                "regime": regime,
                "signal": v["signal"].iloc[best],
                "threshold": v["threshold"].iloc[best],
                "lookback": v["lookback"].iloc[best],
                "val_sharpe": sharpe[best],
                "val_trades": v["trades"].iloc[best],
                "val_max_drawdown": v["max_drawdown"].iloc[best],
                "val_win_rate": v["win_rate"].iloc[best],
                "test_sharpe": t["sharpe"].iloc[best],
                "test_max_drawdown": t["max_drawdown"].iloc[best],
                "test_win_rate": t["win_rate"].iloc[best],
                "test_trades": t["trades"].iloc[best],
                "test_total_return": t["total_return"].iloc[best],
                "dsr": _run_dsr(val_returns, best, k),
                "test_psr": stats.probabilistic_sharpe_ratio(test_returns),
                "reason": CHOSEN_ON_VALIDATION,
                "combination": best,
            }
        )
    chosen = pd.DataFrame(rows).reindex(columns=list(CHOSEN_COLUMNS))
    for name in ("lookback", "val_trades", "test_trades", "combination"):
        chosen[name] = chosen[name].astype("Int64")
    return chosen


def _run_dsr(val_returns: np.ndarray, best: int, n_combinations: int) -> float:
    """The run's own deflated Sharpe ratio of its chosen combination (DESIGN.md "Metrics"):
    per-bar Sharpe ratios, V over this run's combinations, N = the number of combinations.
    The grid-wide DSR that ranks the bests is computed across runs from the trials."""
    per_bar = stats.sharpe_ratio(val_returns)
    per_bar = per_bar[np.isfinite(per_bar)]
    variance = float(np.var(per_bar, ddof=1)) if per_bar.size > 1 else float("nan")
    return stats.deflated_sharpe_ratio(val_returns[:, best], variance, n_combinations)


def _trials(
    validation: _SplitScore,
    split: splits.Splits,
    regime_definitions: Iterable[regimes.Regime] | Mapping[str, Any],
    settings: Settings,
) -> RunTrials:
    """Daily validation returns of every combination in every regime, float32."""

    days = trials.trading_days(split.validation_first_day, split.validation_last_day)
    daily = trials.daily_returns(
        validation.returns, validation.masks, trading_dates(validation.index), days
    )
    by_name = {r.name: r for r in regimes.as_regimes(regime_definitions) if r.active}
    windows = dict(settings.regimes)
    names = (ALL_REGIME, *by_name)
    versions = tuple(regimes.rules_version(by_name.get(name), **windows) for name in names)
    return RunTrials(
        regimes=names,
        rules_versions=versions,
        days=days,
        returns=daily,
        validation_window=split.validation_window,
    )
