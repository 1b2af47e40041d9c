"""Tests of forexgrid.core.inference: causality and slow references of every method.

``predict`` is checked against an obvious per-bar loop written from DESIGN.md ("Prediction
methods"): for each origin, append synthetic bars one at a time to a copy of the real bars,
call ``build_features`` on it, take the last row, ``model.predict``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from forexgrid.config import load_config
from forexgrid.core.features import (
    build_features,
    build_targets,
    feature_names,
    history_length,
)
from forexgrid.core.inference import PREDICTION_METHODS, feature_params, make_features, predict
from forexgrid.core.models import make_model
from forexgrid.data.sample import load_sample
from forexgrid.exceptions import ConfigError, DataError
from forexgrid.grid import TrainingConfig

ENCODERS = ("time_delta", "absolute", "normalized")
HTF = {"none": (), "4h": ("4h",)}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """Real EURUSD 1h bars, long enough for the 4h indicators' own warm-up."""
    return load_sample("EURUSD", "1h").iloc[:700]


def _config(horizon: int, encoder: str, htf: tuple[str, ...]) -> TrainingConfig:
    return TrainingConfig(
        model_type="ridge",
        symbol="EURUSD",
        timeframe="1h",
        days_history=30,
        horizon=horizon,
        encoder=encoder,
        indicator_timeframes=htf,
    )


_MODELS: dict[tuple, object] = {}


def _fitted(bars: pd.DataFrame, tc: TrainingConfig, model_type: str):
    """A model fitted on the complete feature rows of the first 400 bars (cached)."""
    key = (model_type, tc.horizon, tc.encoder, tc.indicator_timeframes)
    if key not in _MODELS:
        x = make_features(bars, tc).to_numpy()
        y = build_targets(bars, tc.horizon).to_numpy()
        rows = np.arange(400)
        rows = rows[np.isfinite(x[rows]).all(axis=1) & np.isfinite(y[rows])]
        assert rows.size > 150
        hyper = {"n_estimators": 5, "max_depth": 2} if model_type == "xgboost" else None
        _MODELS[key] = make_model(model_type, hyper).fit(x[rows], y[rows])
    return _MODELS[key]


# --------------------------------------------------------------------------- causality


def assert_same_forecasts(got: np.ndarray, expected: np.ndarray, message: str = "") -> None:
    """Equal NaN pattern and values equal up to BLAS rounding.

    ``model.predict`` on a batch of a different size may round the last bit differently
    (about 1e-16 relative, seen with ridge); any use of later bars moves values by many
    orders of magnitude more.
    """
    assert np.array_equal(np.isnan(got), np.isnan(expected)), message
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-18, err_msg=message)


@pytest.mark.parametrize("model_type", ["ridge", "xgboost"])
@pytest.mark.parametrize("htf", list(HTF), ids=lambda k: f"htf-{k}")
@pytest.mark.parametrize("encoder", ENCODERS)
def test_predict_is_causal(bars: pd.DataFrame, encoder: str, htf: str, model_type: str) -> None:
    tc = _config(3, encoder, HTF[htf])
    model = _fitted(bars, tc, model_type)
    full = predict(model, bars, tc, methods=PREDICTION_METHODS)
    assert full.columns.tolist() == list(PREDICTION_METHODS)
    assert full.index.equals(bars.index)
    assert full.iloc[200:].notna().all().all()
    for cut in (150, 301, 455, 699):
        prefix = predict(model, bars.iloc[:cut], tc, methods=PREDICTION_METHODS)
        assert_same_forecasts(
            prefix.to_numpy(), full.iloc[:cut].to_numpy(), f"prefix of {cut} bars"
        )
    # Changing the future must not move the past either (a stricter form of the same claim).
    changed = bars.copy()
    factor = np.exp(np.random.default_rng(1).normal(0.0, 0.01, 300))
    changed.iloc[400:, :4] = changed.iloc[400:, :4].to_numpy() * factor[:, None]
    moved = predict(model, changed, tc, methods=PREDICTION_METHODS)
    assert_same_forecasts(moved.iloc[:400].to_numpy(), full.iloc[:400].to_numpy())
    assert not np.allclose(moved.iloc[420:].to_numpy(), full.iloc[420:].to_numpy())


# --------------------------------------------------------------------------- slow references


def _slow_recursive(model, bars: pd.DataFrame, tc: TrainingConfig, t: int) -> float:
    """DESIGN.md "recursive", literally: extend the real history one synthetic bar at a time."""
    params = feature_params(load_config(None))
    h = tc.horizon
    real = make_features(bars.iloc[: t + 1], tc)
    htf_names = [c for c in real.columns if c.startswith("htf_")]
    forecasts = [float(model.predict(real.iloc[[-1]].to_numpy())[0])]
    extended = bars.iloc[: t + 1].copy()
    for _ in range(2, h + 1):
        last = extended.iloc[-1]
        bar_open = last["close"]
        bar_close = bar_open * np.exp(forecasts[-1] / h)
        synthetic = pd.DataFrame(
            {
                "open": [bar_open],
                "high": [max(bar_open, bar_close)],
                "low": [min(bar_open, bar_close)],
                "close": [bar_close],
                "volume": [bars["volume"].iloc[t]],  # the last real volume
            },
            index=[extended.index[-1] + pd.Timedelta(hours=1)],
        )
        extended = pd.concat([extended, synthetic])
        row = build_features(extended, encoder=tc.encoder, timeframe="1h", **params).iloc[-1]
        # Higher-timeframe indicators keep their last completed real value.
        x = np.r_[row.to_numpy(), real[htf_names].iloc[-1].to_numpy()]
        forecasts.append(float(model.predict(x[None, :])[0]))
    return float(np.mean(forecasts))


@pytest.mark.parametrize("horizon", [2, 4], ids=lambda h: f"h{h}")
@pytest.mark.parametrize("htf", list(HTF), ids=lambda k: f"htf-{k}")
@pytest.mark.parametrize("encoder", ENCODERS)
def test_recursive_matches_slow_loop(bars: pd.DataFrame, encoder: str, htf: str, horizon: int):
    tc = _config(horizon, encoder, HTF[htf])
    model = _fitted(bars, tc, "ridge")
    small = bars.iloc[:260]
    got = predict(model, small, tc, methods=("direct", "recursive"))
    origins = range(230, 260, 3)
    expected = [_slow_recursive(model, small, tc, t) for t in origins]
    np.testing.assert_allclose(got["recursive"].iloc[list(origins)], expected, rtol=1e-9)
    # The synthetic bars matter: recursive is not direct.
    assert not np.allclose(got["recursive"].iloc[230:], got["direct"].iloc[230:])


def test_recursive_matches_slow_loop_for_a_tree_model(bars: pd.DataFrame) -> None:
    tc = _config(3, "time_delta", ("4h",))
    model = _fitted(bars, tc, "xgboost")
    small = bars.iloc[:250]
    got = predict(model, small, tc, methods=("recursive",))["recursive"]
    origins = list(range(235, 250, 2))
    expected = [_slow_recursive(model, small, tc, t) for t in origins]
    np.testing.assert_allclose(got.iloc[origins], expected, rtol=1e-6)


@pytest.mark.parametrize("horizon", [2, 5], ids=lambda h: f"h{h}")
@pytest.mark.parametrize("htf", list(HTF), ids=lambda k: f"htf-{k}")
def test_direct_and_direct_multi_match_slow_loop(bars: pd.DataFrame, htf: str, horizon: int):
    tc = _config(horizon, "time_delta", HTF[htf])
    model = _fitted(bars, tc, "ridge")
    bars = bars.iloc[:300]
    got = predict(model, bars, tc)
    x = make_features(bars, tc)
    direct = np.full(len(bars), np.nan)
    smoothed = np.full(len(bars), np.nan)
    for t in range(len(bars)):
        if x.iloc[t].notna().all():
            direct[t] = model.predict(x.iloc[[t]].to_numpy())[0]
        if t >= horizon - 1:
            # mean of the direct forecasts made at t, t-1, ..., t-h+1 (NaN if any is missing)
            smoothed[t] = np.mean(direct[t - horizon + 1 : t + 1])
    np.testing.assert_allclose(got["direct"], direct, rtol=1e-10)
    np.testing.assert_allclose(got["direct_multi"], smoothed, rtol=1e-9)
    assert np.array_equal(np.isnan(got.to_numpy()), np.isnan(np.c_[direct, direct, smoothed]))
    first = int(np.flatnonzero(np.isfinite(direct))[0])
    if not HTF[htf]:
        assert first == history_length("time_delta") - 1
    assert np.isnan(got["direct_multi"].iloc[: first + horizon - 1]).all()
    assert np.isfinite(got["direct_multi"].iloc[first + horizon - 1])


@pytest.mark.parametrize("htf", list(HTF), ids=lambda k: f"htf-{k}")
@pytest.mark.parametrize("encoder", ENCODERS)
def test_horizon_1_methods_coincide(bars: pd.DataFrame, encoder: str, htf: str) -> None:
    tc = _config(1, encoder, HTF[htf])
    model = _fitted(bars, tc, "ridge")
    got = predict(model, bars, tc)
    for method in ("recursive", "direct_multi"):
        np.testing.assert_array_equal(got[method].to_numpy(), got["direct"].to_numpy())
    assert got["direct"].notna().sum() > 400
    # At h = 1 the slow recursive loop is f_1 alone.
    t = 500
    assert got["recursive"].iloc[t] == pytest.approx(_slow_recursive(model, bars, tc, t))


# --------------------------------------------------------------------------- inputs


def test_precomputed_features_give_the_same_forecasts(bars: pd.DataFrame) -> None:
    tc = _config(3, "normalized", ("4h",))
    model = _fitted(bars, tc, "ridge")
    own = predict(model, bars, tc)
    given = predict(model, bars, tc, features=make_features(bars, tc))
    np.testing.assert_array_equal(own.to_numpy(), given.to_numpy())


def test_single_method_as_a_string(bars: pd.DataFrame) -> None:
    tc = _config(3, "time_delta", ())
    model = _fitted(bars, tc, "ridge")
    got = predict(model, bars, tc, methods="direct_multi")
    assert got.columns.tolist() == ["direct_multi"]


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        pytest.param(
            ("direct", "oracle"),
            "prediction methods: unknown or empty ['direct', 'oracle']; expected some of "
            "direct, recursive, direct_multi",
            id="unknown",
        ),
        pytest.param(
            (),
            "prediction methods: unknown or empty []; expected some of direct, recursive, "
            "direct_multi",
            id="empty",
        ),
    ],
)
def test_unknown_method_is_a_config_error(bars: pd.DataFrame, methods, message: str) -> None:
    tc = _config(3, "time_delta", ())
    with pytest.raises(ConfigError, match=re.escape(message)):
        predict(_fitted(bars, tc, "ridge"), bars, tc, methods=methods)


def test_features_of_other_bars_are_a_data_error(bars: pd.DataFrame) -> None:
    tc = _config(3, "time_delta", ())
    other = make_features(bars.iloc[1:], tc)
    with pytest.raises(
        DataError,
        match=re.escape("features: index differs from the bars' index; rebuild the features"),
    ):
        predict(_fitted(bars, tc, "ridge"), bars, tc, features=other)


def test_feature_layout_is_what_the_model_was_fitted_on(bars: pd.DataFrame) -> None:
    # The recursive method rebuilds base features and appends the higher-timeframe ones;
    # its column order must be make_features' order.
    tc = _config(3, "absolute", ("4h",))
    x = make_features(bars, tc)
    params = feature_params(load_config(None))
    base = feature_names("absolute", **params)
    assert x.columns.tolist()[: len(base)] == base
    assert all(c.startswith("htf_4h_") for c in x.columns[len(base) :])
