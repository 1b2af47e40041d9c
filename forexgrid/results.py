"""What one configuration's two phases produce: :class:`RunResult` (and phase 2's
:class:`Evaluation`, the run's :class:`RunTrials`) and the column names other code relies on.

:mod:`forexgrid.pipeline` computes them and re-exports every name here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid.core import backtest

if TYPE_CHECKING:
    from forexgrid.core.splits import Splits
    from forexgrid.grid import TrainingConfig

__all__ = [
    "ALL_REGIME",
    "CHOSEN_COLUMNS",
    "CHOSEN_ON_VALIDATION",
    "INSUFFICIENT",
    "PINNED_CHOSEN_COLUMNS",
    "RESULT_COLUMNS",
    "SPLITS",
    "Evaluation",
    "RunResult",
    "RunTrials",
]

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
    "combination",
)
#: The columns of ``RunResult.chosen`` that DESIGN.md pins (the others are extra detail).
PINNED_CHOSEN_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in CHOSEN_COLUMNS
    if c not in ("val_max_drawdown", "val_win_rate", "test_total_return", "combination")
)
ALL_REGIME = "all"
INSUFFICIENT = "insufficient trades"
CHOSEN_ON_VALIDATION = "best validation Sharpe"


@dataclass(frozen=True)
class RunTrials:
    """A run's trials: the daily validation returns of every combination in every regime.

    Every (configuration, combination) scored in a regime is a trial of that regime's
    multiple-testing scope; these series are what the grid-wide deflated Sharpe ratio and
    the probability of backtest overfitting are computed from (:mod:`forexgrid.core.trials`,
    :mod:`forexgrid.core.pbo`). A day's return is the sum of the net log returns of the
    regime's validation bars of that trading day (0 when the regime did not occur or the
    combination held no position), so runs on different timeframes share one time axis.

    Attributes
    ----------
    regimes : tuple of str
        ``all`` first, then the regimes scored, in the order of ``RunResult.chosen``.
    rules_versions : tuple of str
        Per regime, :func:`forexgrid.core.regimes.rules_version` of what it was scored under.
    days : numpy.ndarray of datetime64[D]
        The Monday-Friday trading dates of the validation window (before the purge).
    returns : numpy.ndarray of float32, shape (regimes, days, combinations)
        Daily validation returns, combinations in grid order (``RunResult.results``).
    validation_window : (datetime.date, datetime.date)
        First and last trading date of the validation window: runs are only compared with
        runs of the same window.
    """

    regimes: tuple[str, ...]
    rules_versions: tuple[str, ...]
    days: np.ndarray
    returns: np.ndarray
    validation_window: tuple[date, date]

    def of(self, regime: str) -> np.ndarray:
        """The (days, combinations) daily returns of one regime."""
        return self.returns[self.regimes.index(regime)]

    def version_of(self, regime: str) -> str:
        """The rules version the regime was scored under."""
        return self.rules_versions[self.regimes.index(regime)]


@dataclass(frozen=True)
class Evaluation:
    """Phase 2 of one fitted model (:func:`evaluate_model`).

    Attributes are those of :class:`RunResult` with the same names.
    """

    results: pd.DataFrame
    chosen: pd.DataFrame
    predictions: pd.DataFrame
    regime_masks: pd.DataFrame
    trials: RunTrials
    n_combinations: int
    grid_notes: tuple[str, ...]
    first_forecast: pd.Timestamp


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
        test figures, ``dsr`` and ``test_psr``; ``reason`` says why a regime has none;
        ``combination`` is the chosen combination's position in the grid.
    predictions : pandas.DataFrame
        Per-bar base predictions of the validation and test periods, with a ``split`` column.
    regime_masks : pandas.DataFrame
        Per-bar regime membership (bool) over the same bars.
    data_fingerprint : dict
        First and last bar time and bar count of the bars given (at the timeframe).
    n_combinations : int
        Distinct inference combinations evaluated (N of the run's own deflated Sharpe ratio).
    grid_notes : tuple of str
        Which combinations were merged because they must give identical positions.
    splits : Splits
        The split boundaries.
    timings : dict
        Seconds of ``phase1`` and ``phase2``.
    n_train_rows : int
        Rows the model was fitted on.
    trials : RunTrials
        The daily validation returns of every combination per regime (the run's trials).
    first_forecast : pandas.Timestamp
        The first bar phase 2 forecast: the bar whose close completes the last training
        target. Windows fill from here on; every earlier forecast counts as missing.
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
    splits: Splits
    timings: dict = field(default_factory=dict)
    n_train_rows: int = 0
    trials: RunTrials | None = None
    first_forecast: pd.Timestamp | None = None

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
