"""Signals, ensembles, confidence and the canonical inference grid (phase 2's inner loop).

A *signal* is one prediction method alone or one ensemble of the listed methods. An
*inference combination* is a (signal, confidence threshold, lookback window) triple; the
inference grid lists the combinations that can give different positions, each once. All
functions work on whole arrays of bars: nothing here loops over bars.

Definitions (DESIGN.md, "Ensembles", "Confidence", "Inference grid"):

- ``mean``: equal weights over the methods.
- ``weighted``: weights proportional to each method's hit rate (share of correct signs) over
  the forecasts made at s in [t-h-L+1, t-h], whose outcomes are known at t.
- ``stacking``: weights proportional to 1 / variance of (y_s - f_s) over the same window.
- Equal weights until L outcomes exist.
- Confidence = 0.4 magnitude + 0.4 consistency + 0.2 feature, each rank-based, in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forexgrid.config import ENSEMBLE_METHODS, PREDICTION_METHODS
from forexgrid.core._rolling import trailing_rank
from forexgrid.exceptions import ConfigError

__all__ = [
    "ENSEMBLE_METHODS",
    "L_DEPENDENT_ENSEMBLES",
    "PREDICTION_METHODS",
    "Combination",
    "InferenceGrid",
    "build_inference_grid",
    "compute_confidence",
    "compute_positions",
    "compute_signals",
    "realised_volatility",
]

# Ensembles whose weights come from the trailing window, so each lookback is its own signal.
L_DEPENDENT_ENSEMBLES = ("weighted", "stacking")

CONFIDENCE_WEIGHTS = {"magnitude": 0.4, "consistency": 0.4, "feature": 0.2}
VOLATILITY_WINDOW = 20  # bars of the realised volatility behind the "feature" confidence


@dataclass(frozen=True, order=True)
class Combination:
    """One inference combination: a signal, a confidence threshold and a lookback.

    ``lookback`` is None where the positions cannot depend on it (threshold 0 with a signal
    that does not use the lookback window).
    """

    signal: str
    threshold: float
    lookback: int | None

    @property
    def signal_key(self) -> tuple[str, int | None]:
        """The key of this combination's signal series in :func:`compute_signals`' output."""
        return (self.signal, self.lookback if self.signal in L_DEPENDENT_ENSEMBLES else None)


@dataclass(frozen=True)
class InferenceGrid:
    """The distinct inference combinations for one horizon, and why others were merged."""

    horizon: int
    methods: tuple[str, ...]
    ensembles: tuple[str, ...]
    lookbacks: tuple[int, ...]
    combinations: tuple[Combination, ...]
    notes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.combinations)

    @property
    def signals(self) -> tuple[str, ...]:
        """The distinct signal names: the effective methods, then the ensembles."""
        return self.methods + self.ensembles

    def to_frame(self) -> pd.DataFrame:
        """The combinations as a DataFrame with columns signal, threshold, lookback."""
        frame = pd.DataFrame(
            [(c.signal, c.threshold, c.lookback) for c in self.combinations],
            columns=["signal", "threshold", "lookback"],
        )
        frame["lookback"] = frame["lookback"].astype("Int64")
        return frame


def _check_names(kind: str, given: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    names = tuple(given)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ConfigError(
            f"inference_grid.{kind}: unknown name {unknown[0]!r}; expected some of "
            f"{', '.join(allowed)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"inference_grid.{kind}: duplicate names in {list(names)}")
    return names


def build_inference_grid(
    prediction_methods: Sequence[str],
    ensemble_methods: Sequence[str],
    confidence_thresholds: Sequence[float],
    lookback_windows: Sequence[int],
    horizon: int,
) -> InferenceGrid:
    """Canonicalise signals x thresholds x lookbacks into the distinct combinations.

    Merged (computed once) because they must give identical positions:

    - at horizon 1 every prediction method equals ``direct``;
    - with a single distinct method every ensemble equals that method;
    - at threshold 0 the position is ``sign(signal)``, so the lookbacks collapse for the
      signals that do not use the lookback window (the methods and ``mean``).

    With the guide's lists (3 methods, 3 ensembles, 5 thresholds, 3 lookbacks) this gives 82
    combinations for horizon > 1 and 13 for horizon 1.

    Raises
    ------
    ConfigError
        For unknown or duplicate names, an empty list of methods, thresholds or lookbacks, a
        threshold outside [0, 1], a lookback below 2 or a horizon below 1.
    """
    methods = _check_names("prediction_methods", prediction_methods, PREDICTION_METHODS)
    ensembles = _check_names("ensemble_methods", ensemble_methods, ENSEMBLE_METHODS)
    thresholds = tuple(float(x) for x in confidence_thresholds)
    lookbacks = tuple(int(x) for x in lookback_windows)
    if not methods or not thresholds or not lookbacks:
        raise ConfigError(
            "inference_grid: prediction_methods, confidence_thresholds and lookback_windows "
            "must each list at least one value"
        )
    if any(not 0.0 <= x <= 1.0 for x in thresholds):
        raise ConfigError(
            f"inference_grid.confidence_thresholds: must be in [0, 1], got {thresholds}"
        )
    if any(x < 2 for x in lookbacks):
        raise ConfigError(f"inference_grid.lookback_windows: must be >= 2, got {lookbacks}")
    if horizon < 1:
        raise ConfigError(f"horizon: must be >= 1, got {horizon}")

    notes = []
    if horizon == 1 and methods != ("direct",):
        others = [m for m in methods if m != "direct"]
        notes.append(f"horizon 1: {', '.join(others)} equal direct; evaluated once as direct")
        methods = ("direct",)
    if len(methods) == 1 and ensembles:
        notes.append(
            f"one distinct prediction method: ensembles {', '.join(ensembles)} equal "
            f"{methods[0]}; evaluated once"
        )
        ensembles = ()

    # Repeated lookbacks would give identical positions: each distinct one is evaluated once.
    lookbacks = tuple(sorted(set(lookbacks)))
    combinations = []
    for threshold in sorted(set(thresholds)):
        for signal in methods + ensembles:
            uses_lookback = threshold > 0 or signal in L_DEPENDENT_ENSEMBLES
            if uses_lookback:
                combinations.extend(Combination(signal, threshold, lb) for lb in lookbacks)
            else:
                combinations.append(Combination(signal, threshold, None))
    return InferenceGrid(
        horizon=horizon,
        methods=methods,
        ensembles=ensembles,
        lookbacks=lookbacks,
        combinations=tuple(combinations),
        notes=tuple(notes),
    )


def _trailing(values: pd.DataFrame, window: int, lag: int, how: str) -> pd.DataFrame:
    """Rolling statistic over rows [t-lag-window+1, t-lag] (NaN until ``window`` values)."""
    rolled = getattr(values.rolling(window, min_periods=window), how)()
    return rolled.shift(lag)


def _ensemble_weights(
    base: pd.DataFrame, outcomes: np.ndarray, horizon: int, lookback: int, kind: str
) -> np.ndarray:
    """Per-bar weights (T, M) of the weighted or stacking ensemble; equal while filling."""
    # A plain array: DataFrame.where would align its column labels with those of an
    # unlabelled frame and mask everything.
    known = base.notna().to_numpy() & np.isfinite(outcomes)[:, None]
    if kind == "weighted":
        score = (np.sign(base.to_numpy()) == np.sign(outcomes)[:, None]).astype(float)
        score = pd.DataFrame(np.where(known, score, np.nan), index=base.index)
        stat = _trailing(score, lookback, horizon, "mean").to_numpy()
    else:
        errors = np.where(known, outcomes[:, None] - base.to_numpy(), np.nan)
        errors = pd.DataFrame(errors, index=base.index)
        variance = _trailing(errors, lookback, horizon, "var").to_numpy()
        # A method with (near) zero error variance takes all the weight, finitely.
        stat = 1.0 / np.maximum(variance, 1e-18)
    total = stat.sum(axis=1, keepdims=True)
    equal = np.full_like(stat, 1.0 / stat.shape[1])
    usable = np.isfinite(stat).all(axis=1, keepdims=True) & (total > 0)
    return np.where(usable, stat / np.where(total > 0, total, 1.0), equal)


def compute_signals(
    base: pd.DataFrame, close: np.ndarray, grid: InferenceGrid
) -> dict[tuple[str, int | None], np.ndarray]:
    """Every distinct signal series of the grid, keyed by (signal, lookback or None).

    Parameters
    ----------
    base
        The base predictions, one column per prediction method (``predict``'s output), in bar
        order. Only the grid's effective methods are used.
    close
        Close prices of the same bars; the outcome of the forecast made at s is
        ``log(close[s+h] / close[s])``, known from bar s + h on.
    grid
        The canonical inference grid.
    """
    h = grid.horizon
    methods = base[list(grid.methods)]
    close = np.asarray(close, dtype=float)
    outcomes = np.full(close.shape[0], np.nan)
    outcomes[:-h] = np.log(close[h:] / close[:-h])

    signals: dict[tuple[str, int | None], np.ndarray] = {
        (m, None): methods[m].to_numpy(dtype=float) for m in grid.methods
    }
    if "mean" in grid.ensembles:
        signals[("mean", None)] = methods.to_numpy(dtype=float).mean(axis=1)
    for kind in (e for e in grid.ensembles if e in L_DEPENDENT_ENSEMBLES):
        for lookback in grid.lookbacks:
            weights = _ensemble_weights(methods, outcomes, h, lookback, kind)
            signals[(kind, lookback)] = (weights * methods.to_numpy(dtype=float)).sum(axis=1)
    return signals


def realised_volatility(close: np.ndarray, window: int = VOLATILITY_WINDOW) -> np.ndarray:
    """Std of the last ``window`` log close returns, bar t included (NaN while filling)."""
    returns = pd.Series(np.log(np.asarray(close, dtype=float))).diff()
    return returns.rolling(window, min_periods=window).std().to_numpy()


def compute_confidence(
    signal: np.ndarray, volatility: np.ndarray, lookback: int, horizon: int
) -> np.ndarray:
    """Confidence in [0, 1] of each bar's signal; NaN while a window is still filling.

    ``0.4 * magnitude + 0.4 * consistency + 0.2 * feature`` where magnitude is the
    percentile rank of |signal_t| among the previous ``lookback`` values, consistency the
    share of the previous max(5, h) signals with the same sign as signal_t, and feature
    ``1 -`` the percentile rank of the current realised volatility among the previous
    ``lookback`` bars.
    """
    feature = 1.0 - trailing_rank(volatility, lookback)
    return _confidence(np.asarray(signal, dtype=float), feature, lookback, horizon)


def _consistency(signal: np.ndarray, horizon: int) -> np.ndarray:
    """Share of the previous max(5, h) signals with the sign of signal_t (NaN while filling)."""
    n = max(5, horizon)
    sign = np.sign(signal)
    out = np.full(sign.shape[0], np.nan)
    if sign.shape[0] <= n:
        return out
    # Row i of the view holds sign[i : i + n], the n signals before target t = i + n.
    previous = sliding_window_view(sign[:-1], n)
    current = sign[n:]
    share = (previous == current[:, None]).mean(axis=1)
    share[np.isnan(previous).any(axis=1) | np.isnan(current)] = np.nan
    out[n:] = share
    return out


def _confidence(
    signal: np.ndarray, feature: np.ndarray, lookback: int, horizon: int
) -> np.ndarray:
    """:func:`compute_confidence` given its ``feature`` term, which depends on L only."""
    magnitude = trailing_rank(np.abs(signal), lookback)
    consistency = _consistency(signal, horizon)
    w = CONFIDENCE_WEIGHTS
    return w["magnitude"] * magnitude + w["consistency"] * consistency + w["feature"] * feature


def compute_positions(
    signals: Mapping[tuple[str, int | None], np.ndarray],
    volatility: np.ndarray,
    grid: InferenceGrid,
) -> np.ndarray:
    """Positions (T, K) in {-1, 0, 1} of every combination of the grid, in grid order.

    ``p_t = sign(signal_t)`` when confidence_t >= threshold, else 0; NaN signals and NaN
    confidence (windows still filling) give 0 for every threshold above 0, and a NaN signal
    gives 0 at threshold 0.
    """
    n = len(next(iter(signals.values())))
    positions = np.zeros((n, len(grid)))
    confidence_cache: dict[tuple[str, int | None, int], np.ndarray] = {}
    # The volatility rank is the same for every signal at a given L: rank it once per L.
    feature_cache: dict[int, np.ndarray] = {}
    for k, combo in enumerate(grid.combinations):
        signal = signals[combo.signal_key]
        direction = np.nan_to_num(np.sign(signal), nan=0.0)
        if combo.threshold <= 0:
            positions[:, k] = direction
            continue
        key = (*combo.signal_key, combo.lookback)
        if key not in confidence_cache:
            if combo.lookback not in feature_cache:
                feature_cache[combo.lookback] = 1.0 - trailing_rank(volatility, combo.lookback)
            confidence_cache[key] = _confidence(
                np.asarray(signal, dtype=float),
                feature_cache[combo.lookback],
                combo.lookback,
                grid.horizon,
            )
        confident = np.nan_to_num(confidence_cache[key], nan=-1.0) >= combo.threshold
        positions[:, k] = np.where(confident, direction, 0.0)
    return positions
