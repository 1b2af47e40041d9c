"""Tests of forexgrid.core.models: the model factories."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from forexgrid.core.models import (
    DEFAULT_HYPERPARAMETERS,
    LINEAR_MODEL_TYPES,
    MODEL_TYPES,
    make_model,
    valid_hyperparameter_names,
)
from forexgrid.exceptions import ConfigError

GUIDE_MODEL_TYPES = (
    "random_forest",
    "gradient_boosting",
    "xgboost",
    "lightgbm",
    "linear_regression",
    "ridge",
    "lasso",
    "elasticnet",
)

CLASSES = {
    "random_forest": "RandomForestRegressor",
    "gradient_boosting": "GradientBoostingRegressor",
    "xgboost": "XGBRegressor",
    "lightgbm": "LGBMRegressor",
    "linear_regression": "LinearRegression",
    "ridge": "Ridge",
    "lasso": "Lasso",
    "elasticnet": "ElasticNet",
}


@pytest.fixture(scope="module")
def returns_data():
    """Features and a target on the scale of 1h log returns (std ~1e-3), weak signal."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 20))
    y = 1e-3 * (0.4 * x[:, 0] - 0.3 * x[:, 1] + rng.normal(size=1200))
    return x, y


def _regressor(model):
    return model[-1] if isinstance(model, Pipeline) else model


def test_model_types_are_the_guides_eight():
    assert MODEL_TYPES == GUIDE_MODEL_TYPES
    assert set(DEFAULT_HYPERPARAMETERS) == set(MODEL_TYPES)
    assert LINEAR_MODEL_TYPES == {"linear_regression", "ridge", "lasso", "elasticnet"}


def test_model_types_agree_with_the_config_module():
    import forexgrid.config as config

    assert config.MODEL_TYPES == MODEL_TYPES


def test_importing_the_factories_does_not_import_boosting_libraries():
    code = (
        "import sys, forexgrid.core.models, forexgrid.grid; "
        "print(sorted(m for m in ('xgboost', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_make_model_returns_the_documented_estimator(model_type):
    model = make_model(model_type, seed=7)
    reg = _regressor(model)
    assert type(reg).__name__ == CLASSES[model_type]
    if model_type in LINEAR_MODEL_TYPES:
        assert isinstance(model, Pipeline)
        assert [name for name, _ in model.steps] == ["scale", "model"]
        assert isinstance(model.steps[0][1], StandardScaler)
    else:
        assert not isinstance(model, Pipeline)
    params = reg.get_params()
    if "n_jobs" in params:
        assert params["n_jobs"] == 1
    if "random_state" in params:
        assert params["random_state"] == 7
    for name, value in DEFAULT_HYPERPARAMETERS[model_type].items():
        assert params[name] == value
    assert clone(model).get_params().keys() == model.get_params().keys()  # sklearn contract


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_default_models_fit_and_do_not_predict_a_constant(model_type, returns_data):
    x, y = returns_data
    model = make_model(model_type)
    assert model.fit(x[:1000], y[:1000]) is model
    pred = model.predict(x[1000:])
    assert pred.shape == (200,) and np.isfinite(pred).all()
    assert np.std(pred) > 1e-6, "predicts a constant"
    assert np.corrcoef(pred, y[1000:])[0, 1] > 0.2, "misses an obvious signal"
    reg = _regressor(model)
    if model_type in {"lasso", "elasticnet"}:
        assert np.count_nonzero(reg.coef_) >= 2
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(x[1000:]), pred)


@pytest.mark.parametrize(
    "model_type", ["random_forest", "gradient_boosting", "xgboost", "lightgbm"]
)
def test_the_seed_makes_fits_reproducible(model_type, returns_data):
    x, y = returns_data
    hp = {"n_estimators": 10}
    a = make_model(model_type, hp, seed=1).fit(x, y).predict(x[:50])
    b = make_model(model_type, hp, seed=1).fit(x, y).predict(x[:50])
    c = make_model(model_type, hp, seed=2).fit(x, y).predict(x[:50])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_hyperparameters_override_defaults_and_the_seed():
    model = make_model("random_forest", {"max_depth": 3, "random_state": 5}, seed=1)
    assert model.max_depth == 3 and model.random_state == 5
    assert model.n_estimators == DEFAULT_HYPERPARAMETERS["random_forest"]["n_estimators"]
    ridge = make_model("ridge", {"alpha": np.float64(10.0)})
    assert ridge[-1].alpha == 10.0 and type(ridge[-1].alpha) is float


@pytest.mark.parametrize(
    ("given", "expected"),
    [("XGBoost", "XGBRegressor"), (" random-forest ", "RandomForestRegressor")],
    ids=["case", "separator"],
)
def test_model_type_spelling_is_forgiven(given, expected):
    assert type(make_model(given)).__name__ == expected


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        ("xgbost", "model_type: unknown model type 'xgbost' (did you mean 'xgboost'?); expected"),
        ("svm", "model_type: unknown model type 'svm'; expected one of: random_forest, "),
        (3, "model_type: unknown model type 3; expected one of: "),
    ],
    ids=["typo", "unknown", "not-a-string"],
)
def test_unknown_model_type(model_type, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_model(model_type)


def test_unknown_hyperparameter_names_it_and_lists_valid_ones():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "hyperparameters.max_dpth: unknown hyperparameter 'max_dpth' for xgboost "
            "(did you mean 'max_depth'?); valid names: base_score, booster,"
        ),
    ):
        make_model("xgboost", {"max_dpth": 3})
    with pytest.raises(ConfigError, match=re.escape("valid names: alpha, copy_X, fit_intercept")):
        make_model("ridge", {"model__alpha": 1.0})


def test_valid_names_are_the_estimators_params_without_n_jobs():
    names = valid_hyperparameter_names("random_forest")
    assert "max_depth" in names and "random_state" in names and "n_jobs" not in names
    assert "verbose" in valid_hyperparameter_names("lightgbm")
    assert list(names) == sorted(names)


@pytest.mark.parametrize(
    ("model_type", "hp", "message"),
    [
        (
            "random_forest",
            {"n_estimators": 0},
            "hyperparameters: invalid hyperparameters for random_forest (n_estimators=0): "
            "InvalidParameterError: The 'n_estimators' parameter of RandomForestRegressor must "
            "be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            "gradient_boosting",
            {"loss": "foo"},
            "The 'loss' parameter of GradientBoostingRegressor must be a str among",
        ),
        ("ridge", {"alpha": -1.0}, "The 'alpha' parameter of Ridge must be a float"),
        (
            "xgboost",
            {"n_estimators": 0},
            "invalid hyperparameters for xgboost (n_estimators=0): ValueError: n_estimators "
            "must be an int >= 1, got 0",
        ),
        (
            "xgboost",
            {"subsample": 2.0},
            "invalid hyperparameters for xgboost (subsample=2.0): XGBoostError: value 2 for "
            "Parameter subsample exceed bound [0,1]",
        ),
        ("lightgbm", {"n_estimators": True}, "n_estimators must be an int >= 1, got True"),
        (
            "lightgbm",
            {"learning_rate": -0.1},
            "invalid hyperparameters for lightgbm (learning_rate=-0.1): LightGBMError: Check "
            "failed: (learning_rate) > (0.0)",
        ),
        (
            "lasso",
            {"alpha": [0.1, 0.2]},
            "hyperparameters.alpha: must be a single number, string, bool or null, got list",
        ),
        ("ridge", {"alpha": float("nan")}, "hyperparameters.alpha: must be a finite number"),
        (
            "random_forest",
            {"n_jobs": 4},
            "hyperparameters.n_jobs: not accepted for random_forest; n_jobs is fixed to 1",
        ),
        (
            "ridge",
            [("alpha", 1.0)],
            "hyperparameters: expected a mapping of name -> value for ridge, got list",
        ),
        (
            "xgboost",
            {"n_estimators": 99999999999999999999},
            "hyperparameters.n_estimators: integers must be between -2147483648 and 2147483647 "
            "(what the model libraries accept), got 99999999999999999999",
        ),
        (
            "random_forest",
            {"max_depth": 2**62},
            "hyperparameters.max_depth: integers must be between -2147483648 and 2147483647",
        ),
        (
            "random_forest",
            {"n_estimators": 1_000_000},
            "hyperparameters.n_estimators: at most 100000 trees, got 1000000",
        ),
        (
            "ridge",
            {"solver": "x" * 10_000},
            "hyperparameters: invalid hyperparameters for ridge (solver='xxxxxxxx",
        ),
    ],
    ids=[
        "rf-n0",
        "gb-loss",
        "ridge-negative",
        "xgb-n0",
        "xgb-subsample",
        "lgbm-bool",
        "lgbm-lr",
        "list-value",
        "nan-value",
        "n_jobs",
        "not-a-mapping",
        "huge-int",
        "int-beyond-c-int",
        "too-many-trees",
        "long-string",
    ],
)
def test_bad_hyperparameter_values_carry_the_library_message(model_type, hp, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_model(model_type, hp)


def test_validation_cache_tells_bool_from_int():
    make_model("lightgbm", {"n_estimators": 1})  # cached as valid
    with pytest.raises(ConfigError, match=re.escape("n_estimators must be an int >= 1, got True")):
        make_model("lightgbm", {"n_estimators": True})


def test_library_messages_are_one_line():
    with pytest.raises(ConfigError) as info:
        make_model("xgboost", {"subsample": 2.0})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "seed", [1.5, "1", True, -1, 2**32], ids=["float", "str", "bool", "negative", "2**32"]
)
def test_bad_seed(seed):
    message = f"seed: expected an integer between 0 and 4294967295, got {seed!r}"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make_model("ridge", seed=seed)


def test_long_hyperparameter_values_are_cut_in_messages():
    with pytest.raises(ConfigError) as info:
        make_model("ridge", {"solver": "x" * 10_000})
    assert len(str(info.value)) < 1000
    assert "(10,000 characters)" in str(info.value)
