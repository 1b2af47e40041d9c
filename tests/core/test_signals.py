"""Tests of forexgrid.core.signals: the inference grid, ensembles, confidence and positions.

Every definition is pinned against a slow, obvious per-bar loop written from DESIGN.md
("Ensembles", "Confidence", "Inference grid", "Backtest"), and the grid's merges are checked
by brute force: positions of the full, uncollapsed product on real data.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from forexgrid.config import load_config
from forexgrid.core.features import build_targets
from forexgrid.core.inference import make_features, predict
from forexgrid.core.models import make_model
from forexgrid.core.signals import (
    ENSEMBLE_METHODS,
    L_DEPENDENT_ENSEMBLES,
    PREDICTION_METHODS,
    Combination,
    InferenceGrid,
    build_inference_grid,
    compute_confidence,
    compute_positions,
    compute_signals,
    realised_volatility,
)
from forexgrid.data.sample import load_sample
from forexgrid.exceptions import ConfigError
from forexgrid.grid import TrainingConfig

GUIDE_THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.9)
GUIDE_LOOKBACKS = (50, 100, 200)


# --------------------------------------------------------------------------- slow references


def _outcomes(close: np.ndarray, h: int) -> np.ndarray:
    y = np.full(close.shape[0], np.nan)
    y[:-h] = np.log(close[h:] / close[:-h])
    return y


def slow_ensemble(
    base: np.ndarray, close: np.ndarray, h: int, lookback: int, kind: str
) -> np.ndarray:
    """One bar at a time: weights from the forecasts made at s in [t-h-L+1, t-h]."""
    n, m = base.shape
    y = _outcomes(close, h)
    out = np.full(n, np.nan)
    for t in range(n):
        weights = np.full(m, 1.0 / m)
        if kind != "mean":
            lo, hi = t - h - lookback + 1, t - h
            if lo >= 0:
                f, outcome = base[lo : hi + 1], y[lo : hi + 1]
                # Equal weights until L outcomes of every method are known.
                if np.isfinite(f).all() and np.isfinite(outcome).all():
                    if kind == "weighted":
                        stat = np.array(
                            [np.mean(np.sign(f[:, j]) == np.sign(outcome)) for j in range(m)]
                        )
                    else:
                        stat = np.array(
                            [1.0 / np.var(outcome - f[:, j], ddof=1) for j in range(m)]
                        )
                    if stat.sum() > 0:
                        weights = stat / stat.sum()
        out[t] = sum(weights[j] * base[t, j] for j in range(m))
    return out


def _slow_rank(values: np.ndarray, t: int, window: int) -> float:
    if t < window:
        return np.nan
    prev, x = values[t - window : t], values[t]
    if np.isnan(x) or np.isnan(prev).any():
        return np.nan
    return (np.sum(prev < x) + 0.5 * np.sum(prev == x)) / window


def slow_components(
    signal: np.ndarray, volatility: np.ndarray, lookback: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude, consistency and feature confidence, one bar at a time."""
    n = signal.shape[0]
    n_consistency = max(5, h)
    magnitude, consistency, feature = (np.full(n, np.nan) for _ in range(3))
    for t in range(n):
        magnitude[t] = _slow_rank(np.abs(signal), t, lookback)
        feature[t] = 1.0 - _slow_rank(volatility, t, lookback)
        if t >= n_consistency:
            prev = signal[t - n_consistency : t]
            if not (np.isnan(prev).any() or np.isnan(signal[t])):
                consistency[t] = np.mean(np.sign(prev) == np.sign(signal[t]))
    return magnitude, consistency, feature


def slow_confidence(signal: np.ndarray, volatility: np.ndarray, lookback: int, h: int):
    m, c, f = slow_components(signal, volatility, lookback, h)
    return 0.4 * m + 0.4 * c + 0.2 * f


def slow_volatility(close: np.ndarray, window: int = 20) -> np.ndarray:
    r = np.diff(np.log(close), prepend=np.nan)
    out = np.full(close.shape[0], np.nan)
    for t in range(window, close.shape[0]):
        out[t] = np.std(r[t - window + 1 : t + 1], ddof=1)
    return out


def _random_case(n: int, h: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Random forecasts of three methods (NaN heads of different lengths) and closes."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    y = _outcomes(close, h)
    noise = rng.normal(0.0, 1e-3, (n, 3))
    # Forecasts correlated with the outcome by different amounts, so the hit rates and
    # error variances (and therefore the weights) really differ between methods.
    base = np.nan_to_num(y)[:, None] * np.array([0.8, 0.3, 0.0]) + noise
    base[:7, 0] = np.nan
    base[:9, 1] = np.nan
    base[: 7 + h, 2] = np.nan  # direct_multi starts h - 1 bars after direct
    return pd.DataFrame(base, columns=list(PREDICTION_METHODS)), close


def _grid(h: int, lookbacks=(5, 20), **kwargs) -> InferenceGrid:
    return build_inference_grid(
        kwargs.get("methods", PREDICTION_METHODS),
        kwargs.get("ensembles", ENSEMBLE_METHODS),
        kwargs.get("thresholds", GUIDE_THRESHOLDS),
        lookbacks,
        h,
    )


# --------------------------------------------------------------------------- the grid


@pytest.mark.parametrize(("horizon", "expected"), [(1, 13), (2, 82), (3, 82), (24, 82)])
def test_guide_lists_give_82_and_13(horizon: int, expected: int) -> None:
    ig = load_config(None).inference_grid
    assert ig.prediction_methods == PREDICTION_METHODS
    assert ig.ensemble_methods == ENSEMBLE_METHODS
    assert ig.confidence_thresholds == GUIDE_THRESHOLDS
    assert ig.lookback_windows == GUIDE_LOOKBACKS
    grid = build_inference_grid(
        ig.prediction_methods,
        ig.ensemble_methods,
        ig.confidence_thresholds,
        ig.lookback_windows,
        horizon,
    )
    assert len(grid) == expected
    assert len(set(grid.combinations)) == expected
    at_zero = [c for c in grid.combinations if c.threshold == 0.0]
    if horizon > 1:
        # 3 methods + mean once each, weighted and stacking once per lookback: 4 + 6 = 10;
        # then 4 thresholds x 6 signals x 3 lookbacks = 72.
        assert sorted((c.signal, c.lookback or 0) for c in at_zero) == sorted(
            [(s, 0) for s in (*PREDICTION_METHODS, "mean")]
            + [(s, lb) for s in L_DEPENDENT_ENSEMBLES for lb in GUIDE_LOOKBACKS]
        )
        assert grid.notes == ()
    else:
        # Every signal equals direct: 1 at threshold 0 + 4 thresholds x 3 lookbacks = 13.
        assert {c.signal for c in grid.combinations} == {"direct"}
        assert at_zero == [Combination("direct", 0.0, None)]
        assert grid.notes == (
            "horizon 1: recursive, direct_multi equal direct; evaluated once as direct",
            "one distinct prediction method: ensembles mean, weighted, stacking equal direct; "
            "evaluated once",
        )
    frame = grid.to_frame()
    assert frame.columns.tolist() == ["signal", "threshold", "lookback"]
    assert len(frame.drop_duplicates()) == expected


# Counts derived by hand: (signals at threshold 0 without L) + (L-dependent at 0) x lookbacks
# + (thresholds above 0) x signals x lookbacks.
OTHER_SHAPES = [
    pytest.param(
        ("direct",),
        ENSEMBLE_METHODS,
        GUIDE_THRESHOLDS,
        GUIDE_LOOKBACKS,
        3,
        1 + 4 * 3,
        id="one-method-ensembles-merged",
    ),
    pytest.param(
        ("recursive",),
        ("weighted",),
        GUIDE_THRESHOLDS,
        GUIDE_LOOKBACKS,
        5,
        1 + 4 * 3,
        id="one-method-weighted-merged",
    ),
    pytest.param(
        PREDICTION_METHODS,
        (),
        GUIDE_THRESHOLDS,
        GUIDE_LOOKBACKS,
        3,
        3 + 4 * 3 * 3,
        id="no-ensembles",
    ),
    pytest.param(
        PREDICTION_METHODS,
        (),
        GUIDE_THRESHOLDS,
        GUIDE_LOOKBACKS,
        1,
        1 + 4 * 3,
        id="no-ensembles-h1",
    ),
    pytest.param(
        PREDICTION_METHODS,
        ENSEMBLE_METHODS,
        (0.3, 0.6),
        GUIDE_LOOKBACKS,
        3,
        2 * 6 * 3,
        id="no-zero-threshold",
    ),
    pytest.param(
        PREDICTION_METHODS,
        ENSEMBLE_METHODS,
        (0.3, 0.6),
        GUIDE_LOOKBACKS,
        1,
        2 * 1 * 3,
        id="no-zero-threshold-h1",
    ),
    pytest.param(
        PREDICTION_METHODS,
        ENSEMBLE_METHODS,
        (0.0,),
        GUIDE_LOOKBACKS,
        3,
        4 + 2 * 3,
        id="only-zero-threshold",
    ),
    pytest.param(
        PREDICTION_METHODS, ("mean",), (0.0,), GUIDE_LOOKBACKS, 4, 4, id="zero-threshold-mean-only"
    ),
    pytest.param(
        ("direct", "direct_multi"),
        ("weighted",),
        (0.0, 0.5),
        (50, 100),
        2,
        (2 + 2) + 3 * 2,
        id="two-methods-weighted",
    ),
    pytest.param(
        PREDICTION_METHODS,
        ENSEMBLE_METHODS,
        GUIDE_THRESHOLDS,
        (100,),
        3,
        (4 + 2) + 4 * 6,
        id="one-lookback",
    ),
    pytest.param(
        ("direct", "recursive"),
        ENSEMBLE_METHODS,
        GUIDE_THRESHOLDS,
        GUIDE_LOOKBACKS,
        1,
        1 + 4 * 3,
        id="two-methods-h1",
    ),
    pytest.param(
        PREDICTION_METHODS,
        ENSEMBLE_METHODS,
        GUIDE_THRESHOLDS,
        (100, 50, 100),
        3,
        (4 + 2 * 2) + 4 * 6 * 2,
        id="duplicate-lookbacks-once",
    ),
]


@pytest.mark.parametrize(
    ("methods", "ensembles", "thresholds", "lookbacks", "horizon", "expected"), OTHER_SHAPES
)
def test_other_list_shapes(methods, ensembles, thresholds, lookbacks, horizon, expected) -> None:
    grid = build_inference_grid(methods, ensembles, thresholds, lookbacks, horizon)
    assert len(grid) == expected
    assert len(set(grid.combinations)) == expected


def test_h1_with_only_derived_methods_is_evaluated_as_direct() -> None:
    grid = build_inference_grid(("recursive", "direct_multi"), (), (0.0, 0.5), (50,), 1)
    assert grid.methods == ("direct",)
    assert [c.signal for c in grid.combinations] == ["direct", "direct"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            (("direct", "magic"), (), (0.0,), (50,), 3),
            "inference_grid.prediction_methods: unknown name 'magic'; expected some of "
            "direct, recursive, direct_multi",
            id="unknown-method",
        ),
        pytest.param(
            (("direct",), ("median",), (0.0,), (50,), 3),
            "inference_grid.ensemble_methods: unknown name 'median'; expected some of "
            "mean, weighted, stacking",
            id="unknown-ensemble",
        ),
        pytest.param(
            (("direct", "direct"), (), (0.0,), (50,), 3),
            "inference_grid.prediction_methods: duplicate names in ['direct', 'direct']",
            id="duplicate-method",
        ),
        pytest.param(
            (("direct",), (), (0.0, 1.5), (50,), 3),
            "inference_grid.confidence_thresholds: must be in [0, 1], got (0.0, 1.5)",
            id="threshold-above-1",
        ),
        pytest.param(
            (("direct",), (), (0.0,), (1,), 3),
            "inference_grid.lookback_windows: must be >= 2, got (1,)",
            id="lookback-1",
        ),
        pytest.param(
            ((), (), (0.0,), (50,), 3),
            "inference_grid: prediction_methods, confidence_thresholds and lookback_windows "
            "must each list at least one value",
            id="no-methods",
        ),
        pytest.param(
            (("direct",), (), (0.0,), (50,), 0), "horizon: must be >= 1, got 0", id="horizon-0"
        ),
    ],
)
def test_grid_rejects_bad_lists(args, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_inference_grid(*args)


# --------------------------------------------------------------------------- real predictions


@pytest.fixture(scope="module")
def real_base() -> dict[int, tuple[pd.DataFrame, np.ndarray]]:
    """Out-of-sample ridge predictions of all methods on the real sample, for h = 1 and 3."""
    bars = load_sample("EURUSD", "1h")
    out = {}
    for h in (1, 3):
        tc = TrainingConfig(
            model_type="ridge", symbol="EURUSD", timeframe="1h", days_history=60, horizon=h
        )
        x = make_features(bars, tc)
        y = build_targets(bars, h).to_numpy()
        matrix = x.to_numpy()
        rows = np.arange(2000)
        rows = rows[np.isfinite(matrix[rows]).all(axis=1) & np.isfinite(y[rows])]
        model = make_model("ridge").fit(matrix[rows], y[rows])
        base = predict(model, bars, tc, features=x)
        # Out of sample only: the fit saw rows < 2000 (targets up to 2000 + h).
        out[h] = (base.iloc[2100:].reset_index(drop=True), bars["close"].to_numpy()[2100:])
    return out


def _positions_by_definition(
    signal: np.ndarray, volatility: np.ndarray, threshold: float, lookback: int, h: int
) -> np.ndarray:
    """DESIGN.md "Backtest": sign at threshold 0; else sign where confidence >= threshold."""
    direction = np.nan_to_num(np.sign(signal))
    if threshold == 0.0:
        return direction
    confidence = compute_confidence(signal, volatility, lookback, h)
    with np.errstate(invalid="ignore"):
        return np.where(confidence >= threshold, direction, 0.0)  # NaN >= x is False: flat


def _canonical(combo: Combination, horizon: int, methods: tuple[str, ...]) -> Combination:
    """The combination an uncollapsed one must be merged into, derived from DESIGN.md."""
    signal, lookback = combo.signal, combo.lookback
    effective = ("direct",) if horizon == 1 else methods
    if signal in PREDICTION_METHODS and horizon == 1:
        signal = "direct"
    if signal in ENSEMBLE_METHODS and len(effective) == 1:
        signal = effective[0]
    if combo.threshold == 0.0 and signal not in L_DEPENDENT_ENSEMBLES:
        lookback = None
    return Combination(signal, combo.threshold, lookback)


@pytest.mark.parametrize(
    ("horizon", "methods", "ensembles"),
    [
        pytest.param(3, PREDICTION_METHODS, ENSEMBLE_METHODS, id="guide-h3"),
        pytest.param(1, PREDICTION_METHODS, ENSEMBLE_METHODS, id="guide-h1"),
        pytest.param(3, ("recursive",), ENSEMBLE_METHODS, id="one-method-h3"),
        pytest.param(3, ("direct", "direct_multi"), ("weighted",), id="two-methods-h3"),
    ],
)
def test_merged_combinations_give_identical_positions(real_base, horizon, methods, ensembles):
    base, close = real_base[horizon]
    volatility = realised_volatility(close)
    grid = build_inference_grid(methods, ensembles, GUIDE_THRESHOLDS, GUIDE_LOOKBACKS, horizon)
    kept = compute_positions(compute_signals(base, close, grid), volatility, grid)
    kept_by_combo = dict(zip(grid.combinations, kept.T, strict=True))

    # The full product, every signal computed from every listed method (no merging at all).
    full = InferenceGrid(
        horizon=horizon,
        methods=tuple(methods),
        ensembles=tuple(ensembles),
        lookbacks=GUIDE_LOOKBACKS,
        combinations=(),
        notes=(),
    )
    signals = compute_signals(base, close, full)
    images = set()
    for signal, threshold, lookback in itertools.product(
        (*methods, *ensembles), GUIDE_THRESHOLDS, GUIDE_LOOKBACKS
    ):
        combo = Combination(signal, threshold, lookback)
        key = (signal, lookback if signal in L_DEPENDENT_ENSEMBLES else None)
        brute = _positions_by_definition(signals[key], volatility, threshold, lookback, horizon)
        target = _canonical(combo, horizon, tuple(methods))
        assert target in kept_by_combo, f"{combo} merged into {target}, which is not kept"
        np.testing.assert_array_equal(brute, kept_by_combo[target], err_msg=str(combo))
        images.add(target)
    # Nothing is kept that no combination maps to.
    assert images == set(grid.combinations)
    # On real data the kept combinations really differ pairwise: nothing left to merge.
    assert len({column.tobytes() for column in kept.T}) == len(grid)


# --------------------------------------------------------------------------- ensembles


@pytest.mark.parametrize("kind", ["mean", "weighted", "stacking"])
@pytest.mark.parametrize("horizon", [1, 3, 6], ids=lambda h: f"h{h}")
@pytest.mark.parametrize("lookback", [4, 25], ids=lambda lb: f"L{lb}")
def test_ensembles_match_slow_loop(kind: str, horizon: int, lookback: int) -> None:
    base, close = _random_case(160, horizon, seed=horizon * 100 + lookback)
    grid = InferenceGrid(
        horizon=horizon,
        methods=PREDICTION_METHODS,
        ensembles=(kind,),
        lookbacks=(lookback,),
        combinations=(),
        notes=(),
    )
    got = compute_signals(base, close, grid)
    key = (kind, lookback if kind in L_DEPENDENT_ENSEMBLES else None)
    expected = slow_ensemble(base.to_numpy(), close, horizon, lookback, kind)
    np.testing.assert_allclose(got[key], expected, rtol=1e-9, atol=1e-15)
    head = max(9, 7 + horizon)  # a NaN forecast of any method makes the ensemble NaN
    assert np.isnan(got[key][:head]).all() and np.isfinite(got[key][head:]).all()
    if kind != "mean":
        # The weights do something: once L outcomes exist the ensemble differs from the mean.
        plain = base.to_numpy().mean(axis=1)
        late = slice(horizon + lookback + 12, None)
        assert not np.allclose(got[key][late], plain[late])
    for method in PREDICTION_METHODS:
        np.testing.assert_array_equal(got[(method, None)], base[method].to_numpy())


def test_stacking_and_weighted_favour_the_accurate_method() -> None:
    n, h, lookback = 400, 2, 30
    rng = np.random.default_rng(5)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    y = np.nan_to_num(_outcomes(close, h))
    perfect = y + rng.normal(0.0, 1e-5, n)
    base = pd.DataFrame(
        {"direct": perfect, "recursive": -y + rng.normal(0.0, 1e-3, n)},
        columns=["direct", "recursive"],
    )
    grid = InferenceGrid(h, ("direct", "recursive"), ("weighted", "stacking"), (lookback,), (), ())
    got = compute_signals(base, close, grid)
    late = slice(lookback + h + 1, n - h)
    # Stacking: 1/variance puts almost all weight on the accurate method.
    np.testing.assert_allclose(got[("stacking", lookback)][late], perfect[late], atol=1e-6)
    # Weighted: the always-wrong method has hit rate ~0, so the accurate one dominates.
    assert np.mean(np.sign(got[("weighted", lookback)][late]) == np.sign(y[late])) > 0.95


def test_ensemble_weights_ignore_outcomes_not_yet_known() -> None:
    # Changing closes after bar T changes nothing at bars <= T (outcomes known by t only).
    base, close = _random_case(200, 4, seed=11)
    grid = _grid(4)
    full = compute_signals(base, close, grid)
    changed = close.copy()
    changed[150:] *= np.exp(np.random.default_rng(0).normal(0.0, 0.01, 50))
    moved = compute_signals(base, changed, grid)
    for key in full:
        np.testing.assert_array_equal(moved[key][:150], full[key][:150])
    assert not np.allclose(moved[("weighted", 5)][150:], full[("weighted", 5)][150:])


# --------------------------------------------------------------------------- confidence


def test_realised_volatility_matches_slow_loop() -> None:
    _, close = _random_case(120, 1, seed=3)
    np.testing.assert_allclose(realised_volatility(close), slow_volatility(close), rtol=1e-9)


@pytest.mark.parametrize("horizon", [1, 3, 8], ids=lambda h: f"h{h}")
@pytest.mark.parametrize("lookback", [3, 10, 40], ids=lambda lb: f"L{lb}")
def test_confidence_matches_slow_loop(horizon: int, lookback: int) -> None:
    rng = np.random.default_rng(horizon * 7 + lookback)
    n = 150
    signal = rng.normal(0.0, 1e-3, n)
    signal[:6] = np.nan
    signal[rng.integers(0, n, 10)] = 0.0  # zeros: sign 0 and magnitude ties
    signal[60:64] = signal[59]  # ties in magnitude and sign
    volatility = np.abs(rng.normal(1e-3, 3e-4, n))
    volatility[:21] = np.nan
    got = compute_confidence(signal, volatility, lookback, horizon)
    expected = slow_confidence(signal, volatility, lookback, horizon)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.nanmin(got) >= 0.0 and np.nanmax(got) <= 1.0


# Each component alone: inputs chosen so that the other two are known constants.
@pytest.mark.parametrize("lookback", [5, 30], ids=lambda lb: f"L{lb}")
@pytest.mark.parametrize("horizon", [2, 9], ids=lambda h: f"h{h}")
def test_magnitude_component_alone(lookback: int, horizon: int) -> None:
    rng = np.random.default_rng(lookback + horizon)
    signal = np.abs(rng.normal(0.0, 1.0, 120)) + 0.01  # one sign: consistency 1
    signal[50:53] = signal[49]  # ties count half
    volatility = np.full(120, 0.5)  # all ties: feature = 1 - 0.5
    magnitude, _, _ = slow_components(signal, volatility, lookback, horizon)
    got = compute_confidence(signal, volatility, lookback, horizon)
    start = max(lookback, 5, horizon)
    np.testing.assert_allclose(got[start:], 0.4 * magnitude[start:] + 0.4 + 0.1, rtol=1e-12)


@pytest.mark.parametrize("horizon", [1, 5, 9], ids=lambda h: f"h{h}")
def test_consistency_component_alone(horizon: int) -> None:
    rng = np.random.default_rng(horizon)
    signal = rng.choice([-2.0, 2.0], 120)  # one magnitude: magnitude rank 0.5 (all ties)
    volatility = np.full(120, 0.5)
    lookback = 10
    _, consistency, _ = slow_components(signal, volatility, lookback, horizon)
    got = compute_confidence(signal, volatility, lookback, horizon)
    start = max(lookback, 5, horizon)
    np.testing.assert_allclose(got[start:], 0.2 + 0.4 * consistency[start:] + 0.1, rtol=1e-12)
    # The window is max(5, h) earlier signals, t excluded.
    n_c = max(5, horizon)
    t = 50
    share = np.mean(np.sign(signal[t - n_c : t]) == np.sign(signal[t]))
    assert got[t] == pytest.approx(0.3 + 0.4 * share)


@pytest.mark.parametrize("lookback", [4, 25], ids=lambda lb: f"L{lb}")
def test_feature_component_alone(lookback: int) -> None:
    rng = np.random.default_rng(lookback)
    signal = np.full(120, 1.0)  # magnitude 0.5 (ties), consistency 1
    volatility = np.abs(rng.normal(1e-3, 3e-4, 120))
    _, _, feature = slow_components(signal, volatility, lookback, 3)
    got = compute_confidence(signal, volatility, lookback, 3)
    start = max(lookback, 5)
    np.testing.assert_allclose(got[start:], 0.2 + 0.4 + 0.2 * feature[start:], rtol=1e-12)
    # Lower volatility than every earlier bar gives the full 0.2, higher gives nothing.
    extreme = volatility.copy()
    extreme[80] = extreme[80 - lookback : 80].min() / 2
    extreme[90] = extreme[90 - lookback : 90].max() * 2
    got = compute_confidence(signal, extreme, lookback, 3)
    assert got[80] == pytest.approx(0.2 + 0.4 + 0.2)
    assert got[90] == pytest.approx(0.2 + 0.4)


def test_every_threshold_selects_a_real_share_of_bars(real_base) -> None:
    base, close = real_base[3]
    volatility = realised_volatility(close)
    for lookback in GUIDE_LOOKBACKS:
        confidence = compute_confidence(base["direct"].to_numpy(), volatility, lookback, 3)
        defined = confidence[np.isfinite(confidence)]
        shares = [np.mean(defined >= x) for x in (0.1, 0.3, 0.5, 0.7, 0.9)]
        assert all(0.0 < s < 1.0 for s in shares), (lookback, shares)
        assert shares == sorted(shares, reverse=True)


# --------------------------------------------------------------------------- positions


def test_positions_follow_the_definition() -> None:
    base, close = _random_case(200, 3, seed=21)
    grid = _grid(3)
    volatility = realised_volatility(close)
    signals = compute_signals(base, close, grid)
    positions = compute_positions(signals, volatility, grid)
    assert positions.shape == (200, len(grid))
    assert set(np.unique(positions)) <= {-1.0, 0.0, 1.0}
    n_confident = n_rejected = 0
    for k, combo in enumerate(grid.combinations):
        signal = signals[combo.signal_key]
        if combo.threshold == 0.0:
            # Threshold 0: sign(signal) everywhere, even while the confidence window fills.
            np.testing.assert_array_equal(positions[:, k], np.nan_to_num(np.sign(signal)))
            continue
        confidence = slow_confidence(signal, volatility, combo.lookback, 3)
        filling = np.isnan(confidence)
        assert filling[: combo.lookback].all()
        # Above 0: flat while a window is still filling (NaN confidence) ...
        assert (positions[filling, k] == 0.0).all()
        # ... else sign(signal) exactly where confidence >= threshold.
        confident = ~filling & (np.nan_to_num(confidence, nan=-1.0) >= combo.threshold)
        np.testing.assert_array_equal(positions[confident, k], np.sign(signal[confident]))
        assert (positions[~confident, k] == 0.0).all()
        n_confident += confident.sum()
        n_rejected += (~confident & ~filling).sum()
    assert n_confident > 1000 and n_rejected > 1000


def test_nan_signal_is_flat_at_every_threshold() -> None:
    grid = build_inference_grid(("direct",), (), (0.0, 0.5), (5,), 2)
    signal = np.r_[np.nan, np.nan, np.linspace(-1, 1, 30), np.nan, 0.5, 0.5]
    positions = compute_positions({("direct", None): signal}, np.full(35, 0.1), grid)
    nan = np.isnan(signal)
    assert (positions[nan] == 0.0).all()
    np.testing.assert_array_equal(positions[~nan, 0], np.sign(signal[~nan]))


# --------------------------------------------------------------------------- causality


@pytest.mark.parametrize("horizon", [1, 3])
def test_signals_confidence_positions_are_causal(real_base, horizon: int) -> None:
    base, close = real_base[horizon]
    grid = build_inference_grid(
        PREDICTION_METHODS, ENSEMBLE_METHODS, GUIDE_THRESHOLDS, GUIDE_LOOKBACKS, horizon
    )

    def positions(n: int) -> np.ndarray:
        c = close[:n]
        signals = compute_signals(base.iloc[:n], c, grid)
        return compute_positions(signals, realised_volatility(c), grid)

    full = positions(len(close))
    assert (full[800:] != 0).any(axis=0).all()  # every combination trades
    for cut in (450, 701, 1500, 3000):
        # The outcomes of the last h bars of the prefix are unknown: no earlier row may care.
        np.testing.assert_array_equal(positions(cut), full[:cut], err_msg=f"prefix {cut}")
