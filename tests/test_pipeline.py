"""Tests of forexgrid.pipeline.train_and_evaluate: the RunResult contract and honest evaluation.

Fast tests use the bundled real EURUSD sample and a ridge model. The null-result and
planted-signal tests (marked slow) run the whole pipeline on random walks and on AR(1)
returns built here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forexgrid import pipeline
from forexgrid.config import load_config
from forexgrid.core import models
from forexgrid.core.backtest import METRIC_NAMES, compute_metrics_batch, strategy_returns
from forexgrid.core.features import build_targets
from forexgrid.core.inference import make_features, predict
from forexgrid.core.regimes import DEFAULT_REGIMES, Regime, label_regimes
from forexgrid.core.signals import (
    build_inference_grid,
    compute_positions,
    compute_signals,
    realised_volatility,
)
from forexgrid.core.stats import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)
from forexgrid.data.sample import load_sample
from forexgrid.data.timeframes import bars_per_year, trading_dates
from forexgrid.grid import TrainingConfig
from forexgrid.pipeline import RunResult, evaluate_model, train_and_evaluate

RESULT_COLUMNS = [
    "signal", "threshold", "lookback", "regime", "split", "sharpe", "max_drawdown",
    "win_rate", "trades", "total_return", "profit_factor", "exposure",
]  # fmt: skip
CHOSEN_COLUMNS = [
    "regime", "signal", "threshold", "lookback", "val_sharpe", "val_trades", "test_sharpe",
    "test_max_drawdown", "test_win_rate", "test_trades", "dsr", "test_psr", "reason",
]  # fmt: skip
REGIMES = ["all", *(r.name for r in DEFAULT_REGIMES)]
KEY = ["signal", "threshold", "lookback", "regime", "split"]


def _config(horizon: int = 3, model_type: str = "ridge", days: int = 60) -> TrainingConfig:
    return TrainingConfig(
        model_type=model_type, symbol="EURUSD", timeframe="1h", days_history=days, horizon=horizon
    )


def _settings(**sections):
    return load_config(sections or None)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load_sample("EURUSD", "1h")


@pytest.fixture(scope="module")
def run3(sample) -> RunResult:
    return train_and_evaluate(_config(3), sample, _settings())


def _is_combination(frame: pd.DataFrame, row) -> np.ndarray:
    """Rows of ``frame`` with the signal, threshold and lookback (NA = none) of ``row``."""
    lookback = frame["lookback"]
    same_lookback = lookback.isna() if pd.isna(row.lookback) else lookback.eq(row.lookback)
    return (
        (frame["signal"] == row.signal).to_numpy()
        & (frame["threshold"] == row.threshold).to_numpy()
        & same_lookback.fillna(False).to_numpy(dtype=bool)
    )


def _perturbed(bars: pd.DataFrame, start: int, seed: int = 0) -> pd.DataFrame:
    """The same bars with every price and volume from position ``start`` on changed."""
    out = bars.copy()
    rng = np.random.default_rng(seed)
    n = len(out) - start
    factor = np.exp(np.cumsum(rng.normal(0.0, 2e-3, n)))
    prices = ["open", "high", "low", "close"]
    out.iloc[start:, [out.columns.get_loc(c) for c in prices]] = (
        out.iloc[start:][prices].to_numpy() * factor[:, None]
    )
    vol = out.columns.get_loc("volume")
    out.iloc[start:, vol] = out.iloc[start:, vol].to_numpy() * rng.uniform(0.5, 2.0, n)
    return out


# --------------------------------------------------------------------------- shape


def test_results_has_one_row_per_combination_regime_split(run3: RunResult) -> None:
    results = run3.results
    assert results.columns.tolist() == RESULT_COLUMNS
    assert run3.n_combinations == 82
    assert len(results) == 82 * len(REGIMES) * 2
    assert not results.duplicated(KEY).any()
    assert set(results["split"]) == {"validation", "test"}
    assert results["regime"].drop_duplicates().tolist() == REGIMES
    ig = _settings().inference_grid
    grid = build_inference_grid(
        ig.prediction_methods,
        ig.ensemble_methods,
        ig.confidence_thresholds,
        ig.lookback_windows,
        3,
    )
    expected = grid.to_frame()
    for (regime, split), part in results.groupby(["regime", "split"], sort=False):
        got = part[["signal", "threshold", "lookback"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=f"{regime} {split}")
    assert (results["trades"] >= 0).all()
    assert results["exposure"].between(0, 1).all()


def test_chosen_has_one_row_per_regime(run3: RunResult) -> None:
    chosen = run3.chosen
    assert [c for c in chosen.columns if c in CHOSEN_COLUMNS] == CHOSEN_COLUMNS
    assert chosen["regime"].tolist() == REGIMES
    picked = chosen[chosen["reason"] == "best validation Sharpe"]
    assert "all" in picked["regime"].tolist()
    assert run3.best_regimes() == [r for r in picked["regime"] if r != "all"]


def test_chosen_is_the_best_eligible_on_validation_and_reports_test(run3: RunResult) -> None:
    min_trades = _settings().selection.min_trades
    results = run3.results
    for row in run3.chosen.itertuples():
        val = results[(results["regime"] == row.regime) & (results["split"] == "validation")]
        eligible = val[(val["trades"] >= min_trades) & np.isfinite(val["sharpe"])]
        if eligible.empty:
            assert row.reason == "insufficient trades"
            continue
        best = eligible.loc[eligible["sharpe"].idxmax()]
        assert (row.signal, row.threshold) == (best["signal"], best["threshold"])
        assert pd.isna(row.lookback) == pd.isna(best["lookback"])
        assert pd.isna(row.lookback) or row.lookback == best["lookback"]
        assert row.val_sharpe == best["sharpe"] and row.val_trades == best["trades"]
        same = (results["regime"] == row.regime) & (results["split"] == "test")
        test = results[same & _is_combination(results, row)]
        assert len(test) == 1
        assert row.test_sharpe == test["sharpe"].iloc[0]
        assert row.test_trades == test["trades"].iloc[0]
        assert row.test_max_drawdown == test["max_drawdown"].iloc[0]
        assert row.test_win_rate == test["win_rate"].iloc[0]
        assert 0.0 <= row.dsr <= 1.0 and 0.0 <= row.test_psr <= 1.0


def test_timings_and_counts(run3: RunResult) -> None:
    assert set(run3.timings) == {"phase1", "phase2"}
    assert all(isinstance(v, float) and v > 0 for v in run3.timings.values())
    assert run3.n_train_rows == len(run3.splits.train)
    assert run3.grid_notes == ()


def test_horizon_1_evaluates_13_combinations(sample) -> None:
    result = train_and_evaluate(_config(1), sample, _settings())
    assert result.n_combinations == 13
    assert set(result.results["signal"]) == {"direct"}
    assert len(result.results) == 13 * len(REGIMES) * 2
    assert any("equal direct" in note for note in result.grid_notes)


def test_horizon_1_with_only_derived_methods_listed(sample) -> None:
    # recursive and direct_multi equal direct at h = 1; direct need not be listed.
    settings = _settings(inference_grid={"prediction_methods": ["recursive", "direct_multi"]})
    result = train_and_evaluate(_config(1), sample, settings)
    assert result.n_combinations == 13
    assert set(result.results["signal"]) == {"direct"}
    preds = result.predictions
    np.testing.assert_array_equal(preds["recursive"].to_numpy(), preds["direct_multi"].to_numpy())


# --------------------------------------------------------------------------- coverage


def test_predictions_and_masks_cover_exactly_validation_and_test(sample, run3) -> None:
    s = run3.splits
    expected = sample.index[s.validation.start : s.validation.stop].append(
        sample.index[s.test.start : s.test.stop]
    )
    assert run3.predictions.index.equals(expected)
    assert run3.regime_masks.index.equals(expected)
    labels = np.r_[["validation"] * len(s.validation), ["test"] * len(s.test)]
    assert run3.predictions["split"].tolist() == labels.tolist()
    assert run3.predictions.columns.tolist() == ["direct", "recursive", "direct_multi", "split"]
    assert run3.predictions[["direct", "recursive", "direct_multi"]].notna().all().all()
    assert run3.regime_masks.columns.tolist() == REGIMES[1:]
    assert all(dtype == np.dtype(bool) for dtype in run3.regime_masks.dtypes)
    # The masks are the causal labels of the whole history, not of a cut-off piece.
    r = _settings().regimes
    whole = label_regimes(
        sample,
        DEFAULT_REGIMES,
        trend_window=r.trend_window,
        volatility_window=r.volatility_window,
        percentile_window=r.percentile_window,
        volume_window=r.volume_window,
    )
    pd.testing.assert_frame_equal(run3.regime_masks, whole.loc[expected])


def test_split_hygiene(sample, run3) -> None:
    s = run3.splits
    evaluation = _settings().evaluation
    h, embargo = 3, evaluation.embargo_bars
    assert s.purge == h + embargo
    # Every training target window (i, i + h] ends, plus the embargo, before validation.
    last_train = s.train.stop - 1
    assert last_train + h + embargo < s.validation.start
    assert s.validation.stop - 1 + h + embargo < s.test.start
    # Calendar edges in whole trading days (New York 17:00 sessions): test = the last
    # test_days, validation = the validation_days before it, training = days_history before.
    dates = trading_dates(sample.index)
    day = np.timedelta64(1, "D")
    last = dates[-1]
    test_first = last - (evaluation.test_days - 1) * day
    validation_first = test_first - evaluation.validation_days * day
    train_first = validation_first - 60 * day
    assert s.test.stop == len(sample)
    assert dates[s.test.start] >= test_first > dates[s.test.start - 1]
    assert dates[s.validation.start] >= validation_first > dates[s.validation.start - 1]
    assert dates[s.train.start] >= train_first > dates[s.train.start - 1]
    assert s.validation_window == (
        validation_first.astype(object),
        (test_first - day).astype(object),
    )
    # The purges are exactly horizon + embargo bars.
    assert np.searchsorted(dates, test_first) - s.validation.stop == h + embargo
    assert np.searchsorted(dates, validation_first) - s.train.stop == h + embargo


class RecordingRegressor:
    """A tiny sklearn-API regressor that records what it was fitted on."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingRegressor:
        self.X_ = np.array(X, copy=True)
        self.y_ = np.array(y, copy=True)
        x = self.X_[:, 0]
        self.slope_, self.intercept_ = np.polyfit(x, self.y_, 1)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.intercept_ + self.slope_ * np.asarray(X)[:, 0]


def test_model_sees_only_training_rows(sample, monkeypatch) -> None:
    monkeypatch.setattr(models, "make_model", lambda *args, **kwargs: RecordingRegressor())
    tc = _config(3)
    result = train_and_evaluate(tc, sample, _settings())
    model = result.model
    assert isinstance(model, RecordingRegressor)
    s = result.splits
    rows = np.arange(s.train.start, s.train.stop)
    assert model.X_.shape == (result.n_train_rows, make_features(sample, tc).shape[1])
    assert result.n_train_rows == rows.size
    np.testing.assert_array_equal(model.X_, make_features(sample, tc).to_numpy()[rows])
    np.testing.assert_array_equal(model.y_, build_targets(sample, 3).to_numpy()[rows])
    # The recorded model is the one phase 2 used.
    assert result.predictions["direct"].notna().all()


@pytest.mark.parametrize(
    ("offset", "changes"),
    [
        pytest.param(0, False, id="after-last-training-target"),
        pytest.param(-1, True, id="inside-last-training-target"),
    ],
)
def test_model_ignores_bars_after_the_training_targets(sample, run3, offset, changes) -> None:
    s = run3.splits
    # The last training row's target ends at close[train.stop - 1 + h].
    start = s.train.stop + 3 + offset
    other = train_and_evaluate(_config(3), _perturbed(sample, start), _settings())
    same = np.array_equal(other.model[-1].coef_, run3.model[-1].coef_) and np.array_equal(
        other.model[0].mean_, run3.model[0].mean_
    )
    assert same != changes


@pytest.mark.parametrize(
    "where", ["test_start", "validation_end"], ids=["from-test-start", "from-validation-end"]
)
def test_validation_results_ignore_later_bars(sample, run3, where: str) -> None:
    s = run3.splits
    # The validation backtest's last used close is that of its last bar (whose own return,
    # needing the next close, is excluded).
    start = s.test.start if where == "test_start" else s.validation.stop
    other = train_and_evaluate(_config(3), _perturbed(sample, start, seed=3), _settings())
    val = run3.results["split"] == "validation"
    pd.testing.assert_frame_equal(other.results[val], run3.results[val])
    val_cols = ["regime", "signal", "threshold", "lookback", "val_sharpe", "val_trades", "dsr"]
    pd.testing.assert_frame_equal(other.chosen[val_cols], run3.chosen[val_cols])
    # The test figures do move: the perturbation reached the evaluation.
    test_sharpe = run3.results.loc[~val, "sharpe"].to_numpy()
    assert not np.allclose(
        other.results.loc[~val, "sharpe"].to_numpy(), test_sharpe, equal_nan=True
    )


@pytest.mark.parametrize("htf", [(), ("4h",)], ids=["no-htf", "htf-4h"])
def test_predictions_equal_predict_on_the_whole_history(sample, htf) -> None:
    # Phase 2 predicts from a cut of the history; the cut must not change a forecast.
    tc = TrainingConfig(
        model_type="ridge",
        symbol="EURUSD",
        timeframe="1h",
        days_history=60,
        horizon=4,
        indicator_timeframes=htf,
    )
    result = train_and_evaluate(tc, sample, _settings())
    got = result.predictions.drop(columns="split")
    whole = predict(result.model, sample, tc, _settings()).loc[got.index]
    assert got.notna().all().all()
    pd.testing.assert_frame_equal(got, whole, check_exact=False, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- phase 2 by hand


def test_results_match_a_recomputation_from_the_whole_history(sample, run3) -> None:
    """Phase 2 recomputed on all bars, with every forecast before the first out-of-sample
    bar missing: the pipeline's cut of the history changes nothing, each split starts flat,
    costs are charged, and dsr / test_psr are computed as DESIGN.md says."""
    settings = _settings()
    tc = _config(3)
    ig = settings.inference_grid
    grid = build_inference_grid(
        ig.prediction_methods,
        ig.ensemble_methods,
        ig.confidence_thresholds,
        ig.lookback_windows,
        3,
    )
    s = run3.splits
    # The bar whose close completes the last training target: the model exists from here.
    assert run3.first_forecast == sample.index[s.train.stop - 1 + 3]
    base = predict(run3.model, sample, tc, settings, out_of_sample_from=run3.first_forecast)
    close = sample["close"].to_numpy()
    positions = compute_positions(
        compute_signals(base, close, grid), realised_volatility(close), grid
    )
    spread = 1.0 * 1e-4  # default spread 1 pip, EURUSD pip 0.0001
    per_year = bars_per_year("1h")
    s = run3.splits
    returns_of = {}
    for name, rows in (("validation", s.validation), ("test", s.test)):
        part = slice(rows.start, rows.stop)
        pd.testing.assert_frame_equal(
            run3.predictions.loc[run3.predictions["split"] == name].drop(columns="split"),
            base.iloc[part],
            check_exact=False,
            rtol=1e-12,
            atol=1e-18,
        )
        returns = strategy_returns(positions[part], close[part], spread)
        regime_rows = run3.regime_masks.loc[sample.index[part]].to_numpy().T
        masks = np.vstack([np.ones(len(rows), dtype=bool), regime_rows])
        metrics = compute_metrics_batch(returns, positions[part], masks, per_year)
        got = run3.results[run3.results["split"] == name]
        for key in METRIC_NAMES:
            np.testing.assert_allclose(
                got[key].to_numpy(dtype=float), metrics[key].reshape(-1), rtol=1e-9, err_msg=key
            )
        returns_of[name] = (returns, masks)

        # Each split starts flat: the first bar pays the entry even when the position was
        # already held on the bar before the split.
        held = (positions[rows.start] != 0) & (positions[rows.start] == positions[rows.start - 1])
        assert held.any()
        carried = returns.copy()
        carried[0] += (spread / 2 / close[rows.start]) * np.abs(positions[rows.start])
        all_rows = got[got["regime"] == "all"]
        k = np.flatnonzero(held)
        assert (
            all_rows["total_return"].to_numpy()[k] < np.expm1(np.nansum(carried[:, k], axis=0))
        ).all()

    # dsr and test_psr of the chosen combination of "all" (per-bar Sharpes; V over all N).
    row = run3.chosen.iloc[0]
    assert row.regime == "all"
    combos = grid.to_frame()
    (k,) = np.flatnonzero(_is_combination(combos, row))
    # Every bar counts, the last one too: it closes the position held into it.
    val_returns = returns_of["validation"][0]
    test_returns = returns_of["test"][0]
    per_bar = sharpe_ratio(val_returns)
    variance = np.var(per_bar[np.isfinite(per_bar)], ddof=1)
    assert row.dsr == pytest.approx(
        deflated_sharpe_ratio(val_returns[:, k], variance, 82), rel=1e-9
    )
    assert row.test_psr == pytest.approx(probabilistic_sharpe_ratio(test_returns[:, k]), rel=1e-9)


def test_spread_is_charged(sample, run3) -> None:
    free = train_and_evaluate(
        _config(3), sample, _settings(evaluation={"spread_pips": {"default": 0.0}})
    )
    assert free.results[KEY].equals(run3.results[KEY])
    traded = run3.results["trades"].to_numpy() > 0
    assert traded.sum() > 100
    costly = run3.results["total_return"].to_numpy()
    gross = free.results["total_return"].to_numpy()
    assert (gross[traded] > costly[traded]).all()
    # Regimes' bars with no position change pay nothing: identical where nothing traded.
    np.testing.assert_array_equal(free.results["trades"], run3.results["trades"])
    all_rows = (run3.results["regime"] == "all").to_numpy()
    never = all_rows & (run3.results["exposure"].to_numpy() == 0)
    np.testing.assert_array_equal(gross[never], costly[never])


# --------------------------------------------------------------------------- out of sample


class GarbageOnTrainingRows:
    """A real model that answers garbage for exactly the feature rows it was fitted on.

    If any forecast of a fitted row reached phase 2 (ensemble weights, confidence ranks,
    consistency, the direct_multi mean, a recursive origin), the metrics would change.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rng = np.random.default_rng(99)
        self.garbage_answers = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> GarbageOnTrainingRows:
        self.inner.fit(X, y)
        self.fitted_rows_ = {row.tobytes() for row in np.ascontiguousarray(X, dtype=float)}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=float)
        out = np.array(self.inner.predict(X), dtype=float)
        fitted = np.fromiter((row.tobytes() in self.fitted_rows_ for row in X), bool, len(X))
        out[fitted] = self.rng.normal(0.0, 0.01, int(fitted.sum()))
        self.garbage_answers += int(fitted.sum())
        return out


def _with_garbage_on_training_rows(monkeypatch) -> list[GarbageOnTrainingRows]:
    made: list[GarbageOnTrainingRows] = []
    real = models.make_model

    def make(*args, **kwargs):
        made.append(GarbageOnTrainingRows(real(*args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(models, "make_model", make)
    return made


@pytest.mark.parametrize(
    ("horizon", "model_type"),
    [(1, "ridge"), (3, "ridge"), (6, "random_forest")],
    ids=["h1-ridge", "h3-ridge", "h6-random-forest"],
)
def test_garbage_on_training_rows_changes_no_metric(sample, monkeypatch, horizon, model_type):
    """Every validation and test metric, for every prediction method, ensemble, threshold
    and lookback, is the same whatever the model answers on the rows it was fitted on."""
    tc = _config(horizon, model_type)
    settings = _settings(model_management={}, execution={"seed": 7})
    honest = train_and_evaluate(tc, sample, settings)
    made = _with_garbage_on_training_rows(monkeypatch)
    tricked = train_and_evaluate(tc, sample, settings)
    (model,) = made
    # The wrapper really does answer garbage on a training row...
    rows = make_features(sample, tc).to_numpy()[
        tricked.splits.train.start : tricked.splits.train.stop
    ]
    rows = rows[np.isfinite(rows).all(axis=1)][:5]
    assert not np.allclose(model.predict(rows), model.inner.predict(rows))
    model.garbage_answers = 0
    # ...yet phase 2 never asked about one, and nothing it measured moved.
    evaluate_model(model, tc, sample, settings)
    assert model.garbage_answers == 0
    signals_seen = set(honest.results["signal"])
    expected = {"direct"} if horizon == 1 else {"direct", "recursive", "direct_multi"}
    assert expected | ({"mean", "weighted", "stacking"} if horizon > 1 else set()) == signals_seen
    pd.testing.assert_frame_equal(tricked.results, honest.results, check_exact=True)
    pd.testing.assert_frame_equal(tricked.chosen, honest.chosen, check_exact=True)
    np.testing.assert_array_equal(tricked.trials.returns, honest.trials.returns)


def test_a_phase_2_that_reads_fitted_rows_is_caught(sample, monkeypatch) -> None:
    """The garbage test has power: moving phase 2's first forecast back into the training
    rows (the old warm-up) changes validation metrics."""
    tc = _config(3)
    honest = train_and_evaluate(tc, sample, _settings())
    _with_garbage_on_training_rows(monkeypatch)
    original = pipeline._Phase2Window.of

    def leaky(split, horizon, n_bars):
        window = original(split, horizon, n_bars)
        early = window.first_forecast - 400
        return pipeline._Phase2Window(early - 20, early, n_bars)

    monkeypatch.setattr(pipeline._Phase2Window, "of", staticmethod(leaky))
    leaked = train_and_evaluate(tc, sample, _settings())
    val = (honest.results["split"] == "validation").to_numpy()
    changed = ~np.isclose(
        leaked.results["sharpe"].to_numpy()[val],
        honest.results["sharpe"].to_numpy()[val],
        equal_nan=True,
    )
    assert changed.sum() > 50


def test_windows_fill_from_the_first_out_of_sample_forecast(run3, sample) -> None:
    s = run3.splits
    first = s.train.stop - 1 + 3
    assert run3.first_forecast == sample.index[first]
    # The window between the first forecast and validation is the embargo plus one bar.
    assert s.validation.start - first == _settings().evaluation.embargo_bars + 1
    # Confidence ranks need L earlier out-of-sample signals: at threshold > 0 with the
    # longest lookback, the first validation days are flat (no return at all) while they
    # fill, and the shorter lookbacks trade sooner.
    combos = run3.results[
        (run3.results["split"] == "validation") & (run3.results["regime"] == "all")
    ]
    daily = run3.trials.of("all")
    bars_per_day = 24
    for lookback in _settings().inference_grid.lookback_windows:
        k = np.flatnonzero(
            (combos["threshold"].to_numpy() > 0) & (combos["lookback"].to_numpy() == lookback)
        )
        filling_days = (lookback - (s.validation.start - first)) // bars_per_day
        assert (daily[:filling_days, k] == 0).all(), lookback
        assert (daily[filling_days + 2 :, k] != 0).any(), lookback


def test_trials_are_the_daily_validation_returns_of_every_combination(run3, sample) -> None:
    t = run3.trials
    assert t.regimes == tuple(REGIMES)
    assert t.returns.dtype == np.float32
    assert t.returns.shape == (len(REGIMES), len(t.days), run3.n_combinations)
    assert t.validation_window == run3.splits.validation_window
    assert t.days[0] == np.datetime64(t.validation_window[0])
    assert (pd.DatetimeIndex(t.days).day_of_week < 5).all()  # Monday to Friday
    assert t.rules_versions[0] == "all" and len(set(t.rules_versions)) == len(REGIMES)
    # A day's return summed over the window is the split's total log return: for "all",
    # exp(sum) - 1 equals the validation total_return of every combination.
    val_all = run3.results.query("split == 'validation' and regime == 'all'")
    np.testing.assert_allclose(
        np.expm1(t.of("all").astype(float).sum(axis=0)),
        val_all["total_return"].to_numpy(),
        rtol=1e-4,
        atol=1e-6,
    )


# --------------------------------------------------------------------------- insufficient


def test_regime_without_eligible_combination_keeps_its_row(sample) -> None:
    regimes = [*DEFAULT_REGIMES, Regime("never", {"trend_strength": "> 2"})]
    result = train_and_evaluate(_config(3), sample, _settings(), regimes)
    assert result.chosen["regime"].tolist() == [*REGIMES, "never"]
    row = result.chosen.set_index("regime").loc["never"]
    assert row["reason"] == "insufficient trades"
    for name in CHOSEN_COLUMNS[1:-1]:
        assert pd.isna(row[name]), name
    rows = result.results[result.results["regime"] == "never"]
    assert len(rows) == 82 * 2
    assert (rows["trades"] == 0).all() and rows["sharpe"].isna().all()
    assert "never" not in result.best_regimes()


def test_min_trades_above_every_count_leaves_all_insufficient(sample) -> None:
    result = train_and_evaluate(_config(3), sample, _settings(selection={"min_trades": 100_000}))
    assert result.chosen["regime"].tolist() == REGIMES
    assert (result.chosen["reason"] == "insufficient trades").all()
    assert result.chosen[["val_sharpe", "test_sharpe", "dsr", "test_psr"]].isna().all().all()
    assert result.best_regimes() == []
    assert "insufficient trades" in result._repr_html_()


def test_repr_html_renders(run3: RunResult) -> None:
    html = run3._repr_html_()
    assert html.startswith("<b>RunResult</b> ridge EURUSD 1h 60d h3 time_delta")
    assert "82 combinations" in html and "<table" in html
    for regime in REGIMES:
        assert f"<td>{regime}</td>" in html


# --------------------------------------------------------------------------- null and signal


def _bars_from_log_returns(returns: np.ndarray, seed: int) -> pd.DataFrame:
    """1h bars on a weekday index whose close-to-close log returns are ``returns``."""
    rng = np.random.default_rng(seed)
    n = returns.size
    index = pd.date_range("2021-01-04", periods=n * 2, freq="h", tz="UTC")
    index = index[index.day_of_week < 5][:n]
    close = 1.1 * np.exp(np.cumsum(returns))
    open_ = np.r_[1.1, close[:-1]]
    wick = np.abs(rng.normal(0.0, 3e-4, (2, n)))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(7.0, 0.3, n),
        },
        index=index,
    )


N_NULL = 20


@pytest.mark.slow
def test_null_result_on_random_walks() -> None:
    """No signal in, no signal out: the validation-chosen ``all`` combination earns nothing
    on test and its deflated Sharpe ratio does not claim skill.

    With zero spread every causal strategy on a driftless random walk has expected return 0
    (a martingale), so the band is symmetric: 3 standard errors of the mean of N_NULL
    independent annualised Sharpes, each with standard error ~ sqrt(bars_per_year / n_test)
    (about 2.5 for ~1,000 test bars; the observed spread of the 20 values agrees), so the band
    is about +-1.6. Choosing on test instead of validation, or a look-ahead leak, lands far
    outside it (choosing on test gave a mean of +3.4).
    """
    settings = _settings(evaluation={"spread_pips": {"default": 0.0}})
    test_sharpes, dsrs, val_sharpes, n_test = [], [], [], []
    for seed in range(N_NULL):
        rng = np.random.default_rng(1000 + seed)
        bars = _bars_from_log_returns(rng.normal(0.0, 1e-3, 5000), seed)
        result = train_and_evaluate(_config(3, days=120), bars, settings)
        row = result.chosen.iloc[0]
        assert row.regime == "all" and row.reason == "best validation Sharpe"
        test_sharpes.append(row.test_sharpe)
        val_sharpes.append(row.val_sharpe)
        dsrs.append(row.dsr)
        n_test.append(len(result.splits.test))
    standard_error = np.sqrt(bars_per_year("1h") / np.mean(n_test)) / np.sqrt(N_NULL)
    print(
        f"null: test Sharpe mean {np.mean(test_sharpes):+.2f} (band +-{3 * standard_error:.2f}),"
        f" values {np.round(test_sharpes, 2).tolist()}; validation Sharpe mean "
        f"{np.mean(val_sharpes):+.2f}; dsr {np.round(dsrs, 3).tolist()}"
    )
    assert abs(np.mean(test_sharpes)) < 3 * standard_error
    assert sum(d < 0.95 for d in dsrs) >= 0.9 * N_NULL
    # Selection on validation is optimistic; the test period shows it.
    assert np.mean(val_sharpes) > np.mean(test_sharpes)


@pytest.mark.slow
def test_planted_signal_is_found_and_survives_to_test() -> None:
    """AR(1) log returns (phi 0.25): the chosen ``all`` combination trades it profitably on
    test, net of the default 1-pip spread."""
    sharpes = []
    for seed in range(3):
        rng = np.random.default_rng(2000 + seed)
        shocks = rng.normal(0.0, 1e-3, 5000)
        returns = np.empty_like(shocks)
        returns[0] = shocks[0]
        for t in range(1, shocks.size):  # test data, not a hot path
            returns[t] = 0.25 * returns[t - 1] + shocks[t]
        bars = _bars_from_log_returns(returns, seed)
        result = train_and_evaluate(_config(1, days=120), bars, _settings())
        row = result.chosen.iloc[0]
        assert row.regime == "all"
        sharpes.append(row.test_sharpe)
    print(f"planted: test Sharpes {np.round(sharpes, 2).tolist()}")
    assert all(s > 0 for s in sharpes)
    assert np.mean(sharpes) > 3.0
