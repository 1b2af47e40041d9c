"""Phase 1 and phase 2 for one configuration: :func:`train_and_evaluate`.

Phase 1 builds the features and targets, splits the bars into train | purge | validation |
purge | test and fits the model on the training rows. Phase 2 predicts with every method,
builds every signal of the canonical inference grid, turns them into positions per
confidence threshold and lookback, backtests all of them net of spread, and measures each
per regime on the validation and the test period. Each regime's combination is chosen on
validation; its test figures are what is reported.

Pure computation: nothing here writes a file or touches a database.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid.core import backtest, features, models, regimes, signals, splits, stats
from forexgrid.core.inference import feature_params, make_features, predict
from forexgrid.data.timeframes import bars_per_year, infer_timeframe, resample, timeframe_delta
from forexgrid.exceptions import DataError
from forexgrid.grid import TrainingConfig, config_hash, data_fingerprint

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "CHOSEN_COLUMNS",
    "PINNED_CHOSEN_COLUMNS",
    "RESULT_COLUMNS",
    "RunResult",
    "train_and_evaluate",
]

logger = logging.getLogger(__name__)

SPLITS = ("validation", "test")
#: Columns of ``RunResult.results``: the combination, where it was measured, the metrics.
RESULT_COLUMNS: tuple[str, ...] = (
    "signal",
    "threshold",
    "lookback",
    "regime",
    "split",
    *backtest.METRIC_NAMES,
)
#: Columns of ``RunResult.chosen``: one row per regime, chosen on validation, tested on test.
CHOSEN_COLUMNS: tuple[str, ...] = (
    "regime",
    "signal",
    "threshold",
    "lookback",
    "val_sharpe",
    "val_trades",
    "val_max_drawdown",
    "val_win_rate",
    "test_sharpe",
    "test_max_drawdown",
    "test_win_rate",
    "test_trades",
    "test_total_return",
    "dsr",
    "test_psr",
    "reason",
)
#: The columns of ``RunResult.chosen`` that DESIGN.md pins (the others are extra detail).
PINNED_CHOSEN_COLUMNS: tuple[str, ...] = tuple(
    c for c in CHOSEN_COLUMNS if c not in ("val_max_drawdown", "val_win_rate", "test_total_return")
)
ALL_REGIME = "all"
INSUFFICIENT = "insufficient trades"
CHOSEN_ON_VALIDATION = "best validation Sharpe"


@dataclass(frozen=True)
class RunResult:
    """Everything one configuration's two phases produce (no file written, no row stored).

    Attributes
    ----------
    config : TrainingConfig
        The configuration trained.
    config_hash : str
        Its identity, including the settings that change the model and the data fingerprint.
    model : estimator
        The fitted model.
    results : pandas.DataFrame
        One row per distinct combination x regime x split: ``signal, threshold, lookback,
        regime, split, sharpe, max_drawdown, win_rate, trades, total_return, profit_factor,
        exposure``.
    chosen : pandas.DataFrame
        One row per regime (``all`` included): the combination chosen on validation and its
        test figures, ``dsr`` and ``test_psr``; ``reason`` says why a regime has none.
    predictions : pandas.DataFrame
        Per-bar base predictions of the validation and test periods, with a ``split`` column.
    regime_masks : pandas.DataFrame
        Per-bar regime membership (bool) over the same bars.
    data_fingerprint : dict
        First and last bar time and bar count of the bars given (at the timeframe).
    n_combinations : int
        Distinct inference combinations evaluated (N of the deflated Sharpe ratio).
    grid_notes : tuple of str
        Which combinations were merged because they must give identical positions.
    splits : Splits
        The split boundaries.
    timings : dict
        Seconds of ``phase1`` and ``phase2``.
    n_train_rows : int
        Rows the model was fitted on.
    """

    config: TrainingConfig
    config_hash: str
    model: Any
    results: pd.DataFrame
    chosen: pd.DataFrame
    predictions: pd.DataFrame
    regime_masks: pd.DataFrame
    data_fingerprint: dict
    n_combinations: int
    grid_notes: tuple[str, ...]
    splits: splits.Splits
    timings: dict = field(default_factory=dict)
    n_train_rows: int = 0

    def best_regimes(self) -> list[str]:
        """Regimes (``all`` excluded) that have a validation-chosen combination."""
        rows = self.chosen[
            (self.chosen["regime"] != ALL_REGIME) & (self.chosen["reason"] == CHOSEN_ON_VALIDATION)
        ]
        return rows["regime"].tolist()

    def _repr_html_(self) -> str:
        c = self.config
        head = (
            f"<b>RunResult</b> {html.escape(c.model_type)} {html.escape(c.symbol)} "
            f"{html.escape(c.timeframe)} {c.days_history}d h{c.horizon} "
            f"{html.escape(c.encoder)}<br>"
            f"hash {self.config_hash[:12]} &middot; {self.n_train_rows:,} training rows &middot; "
            f"{self.n_combinations} combinations &middot; phase 1 "
            f"{self.timings.get('phase1', float('nan')):.2f}s, phase 2 "
            f"{self.timings.get('phase2', float('nan')):.2f}s"
        )
        shown = self.chosen[list(PINNED_CHOSEN_COLUMNS)]
        return head + shown.to_html(index=False, float_format=lambda x: f"{x:.3f}", na_rep="")


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


def _feature_warmup_bars(config: TrainingConfig, settings: Settings) -> int:
    """Bars of history the features need before a row is complete (higher timeframes too)."""
    params = feature_params(settings)
    base = features.history_length(config.encoder, **params)
    step = timeframe_delta(config.timeframe)
    warm = base
    for higher in config.indicator_timeframes:
        ratio = timeframe_delta(higher) / step
        # The higher bars' own history, with room for weekends (7 calendar days per 5).
        warm = max(warm, int(np.ceil((base + 2) * ratio * 7 / 5)))
    return warm


def _day_aligned_start(index: pd.DatetimeIndex, position: int) -> int:
    """The first bar of the UTC day of ``position``, so every higher bar starts complete."""
    position = max(0, position)
    return int(index.searchsorted(index[position].floor("D")))


def _eval_warmup_bars(settings: Settings, horizon: int) -> int:
    """Bars of predictions phase 2's windows need before the validation period."""
    grid = settings.inference_grid
    longest = max(grid.lookback_windows)
    # Ensemble weights look back L + h bars; confidence ranks L earlier signals; the
    # direct_multi mean uses h forecasts; consistency max(5, h); volatility 20 bars.
    return 2 * longest + 2 * horizon + max(5, horizon) + signals.VOLATILITY_WINDOW + 2


def _regime_warmup_bars(settings: Settings) -> int:
    r = settings.regimes
    return r.trend_window + r.volatility_window + r.percentile_window + r.volume_window + 2


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
    if settings is None:
        from forexgrid.config import load_config

        settings = load_config(None)
    if regime_definitions is None:
        regime_definitions = regimes.DEFAULT_REGIMES
    started = time.perf_counter()

    bars = _bars_at_timeframe(bars, config.timeframe)
    evaluation = settings.evaluation
    feature_warmup = _feature_warmup_bars(config, settings)
    split = splits.make_splits(
        bars.index,
        days_history=config.days_history,
        validation_days=evaluation.validation_days,
        test_days=evaluation.test_days,
        horizon=config.horizon,
        embargo_bars=evaluation.embargo_bars,
        warmup_bars=features.history_length(config.encoder, **feature_params(settings)) - 1,
        timeframe=config.timeframe,
    )
    eval_start = max(0, split.validation.start - _eval_warmup_bars(settings, config.horizon))
    first = _day_aligned_start(bars.index, min(split.train.start, eval_start) - feature_warmup)
    used = bars.iloc[first:]
    # The bars given (at the configuration's timeframe) are the data's identity, so a queue
    # can compute the same hash before training from the same bars.
    fingerprint = data_fingerprint(bars)
    identity = config_hash(config, settings, fingerprint)

    # ---- phase 1: features, targets, fit on the training rows only
    X = make_features(used, config, settings)
    y = features.build_targets(used, config.horizon).to_numpy()
    matrix = X.to_numpy(dtype=float)
    train_rows = np.arange(split.train.start, split.train.stop) - first
    train_rows = train_rows[
        np.isfinite(matrix[train_rows]).all(axis=1) & np.isfinite(y[train_rows])
    ]
    if train_rows.size < splits.MIN_TRAIN_ROWS:
        raise DataError(
            f"{config.symbol} {config.timeframe}: only {train_rows.size} training rows have "
            f"complete features (need {splits.MIN_TRAIN_ROWS}); load more history before "
            f"{split.train_start}"
        )
    model = models.make_model(config.model_type, config.hyperparameters, settings.execution.seed)
    model.fit(matrix[train_rows], y[train_rows])
    phase1 = time.perf_counter() - started

    # ---- phase 2: predictions, signals, positions, backtests over validation and test
    started = time.perf_counter()
    e0 = eval_start - first
    eval_bars = used.iloc[e0:]
    ig = settings.inference_grid
    grid = signals.build_inference_grid(
        ig.prediction_methods,
        ig.ensemble_methods,
        ig.confidence_thresholds,
        ig.lookback_windows,
        config.horizon,
    )
    # At horizon 1 the grid evaluates every method as direct, listed or not.
    methods = (
        *ig.prediction_methods,
        *(m for m in grid.methods if m not in ig.prediction_methods),
    )
    # predict() sees the real history the recursive windows need before the first origin.
    history = max(0, e0 - features.history_length(config.encoder, **feature_params(settings)))
    base = predict(
        model,
        used.iloc[history:],
        config,
        settings,
        methods,
        features=X.iloc[history:],
    ).iloc[e0 - history :]

    r = settings.regimes
    regime_from = max(0, eval_start - _regime_warmup_bars(settings))
    masks_full = regimes.label_regimes(
        bars.iloc[regime_from:],
        regime_definitions,
        trend_window=r.trend_window,
        volatility_window=r.volatility_window,
        percentile_window=r.percentile_window,
        volume_window=r.volume_window,
    ).iloc[eval_start - regime_from :]

    close = eval_bars["close"].to_numpy(dtype=float)
    signal_series = signals.compute_signals(base, close, grid)
    volatility = signals.realised_volatility(close)
    positions = signals.compute_positions(signal_series, volatility, grid)

    spread_price = evaluation.spread_for(config.symbol) * evaluation.pip_size_for(config.symbol)
    per_year = bars_per_year(config.timeframe)
    combos = grid.to_frame()
    regime_names = [ALL_REGIME, *masks_full.columns]
    tables, split_returns, split_masks = [], {}, {}
    for name, rows in (("validation", split.validation), ("test", split.test)):
        local = slice(rows.start - eval_start, rows.stop - eval_start)
        returns = backtest.strategy_returns(positions[local], close[local], spread_price)
        masks = np.vstack(
            [np.ones(returns.shape[0], dtype=bool), masks_full.iloc[local].to_numpy(bool).T]
        )
        metrics = backtest.compute_metrics_batch(returns, positions[local], masks, per_year)
        table = pd.concat([combos] * len(regime_names), ignore_index=True)
        table["regime"] = np.repeat(regime_names, len(combos))
        table["split"] = name
        for key in backtest.METRIC_NAMES:
            table[key] = metrics[key].reshape(-1)
        tables.append(table)
        split_returns[name], split_masks[name] = returns, masks
    results = pd.concat(tables, ignore_index=True)
    chosen = _choose(results, split_returns, split_masks, regime_names, grid, settings)

    periods = {"validation": split.validation, "test": split.test}
    label = np.full(len(eval_bars), "", dtype=object)
    for name, rows in periods.items():
        label[rows.start - eval_start : rows.stop - eval_start] = name
    keep = label != ""
    predictions = base.loc[keep].assign(split=label[keep])
    regime_masks = masks_full.loc[keep]
    phase2 = time.perf_counter() - started

    for note in grid.notes:
        logger.info("%s: %s", config.label, note)
    return RunResult(
        config=config,
        config_hash=identity,
        model=model,
        results=results,
        chosen=chosen,
        predictions=predictions,
        regime_masks=regime_masks,
        data_fingerprint=fingerprint,
        n_combinations=len(grid),
        grid_notes=grid.notes,
        splits=split,
        timings={"phase1": phase1, "phase2": phase2},
        n_train_rows=int(train_rows.size),
    )


def _choose(
    results: pd.DataFrame,
    split_returns: dict[str, np.ndarray],
    split_masks: dict[str, np.ndarray],
    regime_names: list[str],
    grid: signals.InferenceGrid,
    settings: Settings,
) -> pd.DataFrame:
    """Per regime, the combination with the best validation Sharpe among the eligible ones.

    Eligible: at least ``selection.min_trades`` validation trades opened in the regime and a
    finite validation Sharpe. Ties go to the earlier combination in grid order.
    """
    k = len(grid)
    val = results[results["split"] == "validation"]
    test = results[results["split"] == "test"]
    rows = []
    for m, regime in enumerate(regime_names):
        v = val.iloc[m * k : (m + 1) * k]
        t = test.iloc[m * k : (m + 1) * k]
        eligible = (v["trades"].to_numpy() >= settings.selection.min_trades) & np.isfinite(
            v["sharpe"].to_numpy()
        )
        if not eligible.any():
            rows.append({"regime": regime, "reason": INSUFFICIENT, "val_trades": np.nan})
            continue
        best = int(np.argmax(np.where(eligible, v["sharpe"].to_numpy(), -np.inf)))
        val_returns = _masked(split_returns["validation"], split_masks["validation"][m])
        test_returns = _masked(split_returns["test"], split_masks["test"][m])[:, best]
        per_bar = stats.sharpe_ratio(val_returns)
        per_bar = per_bar[np.isfinite(per_bar)]
        variance = float(np.var(per_bar, ddof=1)) if per_bar.size > 1 else float("nan")
        vb, tb = v.iloc[best], t.iloc[best]
        rows.append(
            {
                "regime": regime,
                "signal": vb["signal"],
                "threshold": vb["threshold"],
                "lookback": vb["lookback"],
                "val_sharpe": vb["sharpe"],
                "val_trades": vb["trades"],
                "val_max_drawdown": vb["max_drawdown"],
                "val_win_rate": vb["win_rate"],
                "test_sharpe": tb["sharpe"],
                "test_max_drawdown": tb["max_drawdown"],
                "test_win_rate": tb["win_rate"],
                "test_trades": tb["trades"],
                "test_total_return": tb["total_return"],
                "dsr": stats.deflated_sharpe_ratio(val_returns[:, best], variance, k),
                "test_psr": stats.probabilistic_sharpe_ratio(test_returns),
                "reason": CHOSEN_ON_VALIDATION,
            }
        )
    chosen = pd.DataFrame(rows).reindex(columns=list(CHOSEN_COLUMNS))
    chosen["lookback"] = chosen["lookback"].astype("Int64")
    for name in ("val_trades", "test_trades"):
        chosen[name] = chosen[name].astype("Int64")
    return chosen


def _masked(returns: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The finite per-bar returns of the regime's bars (T_m, K), in time order."""
    r = returns[mask]
    return r[np.isfinite(r).all(axis=1)]
