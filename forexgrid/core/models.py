"""Model factories: one scikit-learn-API regressor per model type of the grid.

:func:`make_model` returns a plain, unfitted estimator (``fit`` returns self, fitted
attributes end in ``_``), so the pipeline, pickling and the executor backends treat every
model type the same way. Linear models come inside ``Pipeline([("scale", StandardScaler()),
("model", ...)])`` because their penalties (and their conditioning) depend on the scale of
the features, which differs by orders of magnitude between returns, volumes and RSI.

Every estimator runs single-threaded (``n_jobs=1``): parallelism belongs to the grid, which
runs several configurations at once, and nested thread pools would oversubscribe the cores.
xgboost and lightgbm are imported inside the factory so ``import forexgrid`` stays light.

Default hyperparameters (:data:`DEFAULT_HYPERPARAMETERS`) are sized so one fit on about
3,000 rows x 150 features takes about a second or less on one core:

===================  =========================================================================
model type           defaults (anything not listed is the library's default)
===================  =========================================================================
random_forest        100 trees, max_depth 8, min_samples_leaf 20, max_features "sqrt"
gradient_boosting    150 trees, max_depth 3, learning_rate 0.05, subsample 0.7,
                     max_features "sqrt", min_samples_leaf 20
xgboost              200 trees, max_depth 4, learning_rate 0.05, subsample 0.8,
                     colsample_bytree 0.5, min_child_weight 5, tree_method "hist"
lightgbm             200 trees, num_leaves 15, max_depth 5, learning_rate 0.05, subsample 0.8
                     (subsample_freq 1), colsample_bytree 0.5, min_child_samples 20, verbose -1
linear_regression    ordinary least squares
ridge                alpha 1.0 (mild on standardised features and ~1,000+ rows)
lasso                alpha 1e-5, max_iter 5000
elasticnet           alpha 2e-5, l1_ratio 0.5, max_iter 5000
===================  =========================================================================

The lasso and elastic-net penalties are small because the target is a raw log return (a
standard deviation of about 1e-3 on 1h bars): the penalty above which every coefficient is
zero is about ``std(y) * max|corr(x, y)|``, roughly 5e-5 there, so the scikit-learn default
``alpha=1.0`` would predict a constant.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from forexgrid import _limits
from forexgrid._suggest import close_match
from forexgrid.config import MODEL_TYPES  # the vocabulary lives with the settings
from forexgrid.exceptions import ConfigError, quote_input

__all__ = [
    "DEFAULT_HYPERPARAMETERS",
    "LINEAR_MODEL_TYPES",
    "MODEL_TYPES",
    "check_model_type",
    "make_model",
    "normalize_hyperparameters",
    "valid_hyperparameter_names",
    "validate_hyperparameters",
]

logger = logging.getLogger(__name__)


#: Model types wrapped in ``Pipeline(StandardScaler, model)``.
LINEAR_MODEL_TYPES: frozenset[str] = frozenset(
    {"linear_regression", "ridge", "lasso", "elasticnet"}
)

#: Defaults per model type, applied before the user's hyperparameters (see module docstring).
DEFAULT_HYPERPARAMETERS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "random_forest": MappingProxyType(
            {"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 20, "max_features": "sqrt"}
        ),
        "gradient_boosting": MappingProxyType(
            {
                "n_estimators": 150,
                "max_depth": 3,
                "learning_rate": 0.05,
                "subsample": 0.7,
                "max_features": "sqrt",
                "min_samples_leaf": 20,
            }
        ),
        "xgboost": MappingProxyType(
            {
                "n_estimators": 200,
                "max_depth": 4,
                "learning_rate": 0.05,
                "subsample": 0.8,
                "colsample_bytree": 0.5,
                "min_child_weight": 5,
                "tree_method": "hist",
            }
        ),
        "lightgbm": MappingProxyType(
            {
                "n_estimators": 200,
                "num_leaves": 15,
                "max_depth": 5,
                "learning_rate": 0.05,
                "subsample": 0.8,
                "subsample_freq": 1,
                "colsample_bytree": 0.5,
                "min_child_samples": 20,
                "verbose": -1,
            }
        ),
        "linear_regression": MappingProxyType({}),
        "ridge": MappingProxyType({"alpha": 1.0}),
        "lasso": MappingProxyType({"alpha": 1e-5, "max_iter": 5000}),
        "elasticnet": MappingProxyType({"alpha": 2e-5, "l1_ratio": 0.5, "max_iter": 5000}),
    }
)

# Set by forexgrid, not by the user: the grid owns parallelism.
_RESERVED = {"n_jobs": "n_jobs is fixed to 1: parallelism belongs to the grid (execution.*)"}

# Model types whose n_estimators the libraries check late or not at all (xgboost trains
# zero trees without complaint); checked here so the error comes before any training.
_BOOSTED = {"xgboost", "lightgbm"}


def check_model_type(model_type: object, *, key: str = "model_type") -> str:
    """Return the canonical name of ``model_type``, one of :data:`MODEL_TYPES`.

    Parameters
    ----------
    model_type
        The name to check; case, surrounding spaces and ``-`` for ``_`` are forgiven.
    key
        The key path named in the error message.

    Returns
    -------
    str
        The canonical model type.

    Raises
    ------
    ConfigError
        If the name is not a known model type; the message suggests the closest one.
    """
    if isinstance(model_type, str):
        # Lenient on case and separators ("XGBoost", "random-forest"): widgets and the CLI
        # pass what users type; the canonical name is what gets hashed and stored.
        canonical = model_type.strip().lower().replace("-", "_").replace(" ", "_")
        if canonical in MODEL_TYPES:
            return canonical
    hint = ""
    if isinstance(model_type, str) and len(canonical) <= 100:
        close = close_match(canonical, MODEL_TYPES)
        if close:
            hint = f" (did you mean {close!r}?)"
    raise ConfigError(
        f"{key}: unknown model type {quote_input(model_type)}{hint}; "
        f"expected one of: {', '.join(MODEL_TYPES)}"
    )


def _estimator_class(model_type: str) -> type:
    # Imports here, not at module level, so import forexgrid stays fast.
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor
    if model_type == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor
    if model_type == "xgboost":
        from xgboost import XGBRegressor

        return XGBRegressor
    if model_type == "lightgbm":
        from lightgbm import LGBMRegressor

        return LGBMRegressor
    from sklearn import linear_model

    return {
        "linear_regression": linear_model.LinearRegression,
        "ridge": linear_model.Ridge,
        "lasso": linear_model.Lasso,
        "elasticnet": linear_model.ElasticNet,
    }[model_type]


@functools.cache
def valid_hyperparameter_names(model_type: str) -> tuple[str, ...]:
    """Names accepted as hyperparameters of ``model_type`` (the estimator's ``get_params``).

    For linear model types these are the regressor's own names (``alpha``), not the
    pipeline's (``model__alpha``). ``n_jobs`` is excluded: forexgrid fixes it to 1.

    Raises
    ------
    ConfigError
        If ``model_type`` is unknown.
    """
    model_type = check_model_type(model_type)
    cls = _estimator_class(model_type)
    names = set(cls().get_params(deep=False)) | set(DEFAULT_HYPERPARAMETERS[model_type])
    return tuple(sorted(names - set(_RESERVED)))


def normalize_hyperparameters(
    model_type: str, hyperparameters: Mapping[str, Any] | None, *, key: str = "hyperparameters"
) -> dict[str, Any]:
    """Check names and JSON-safe scalar types of ``hyperparameters``; return a sorted dict.

    Values must be ``None``, ``bool``, ``int``, finite ``float`` or ``str`` (numpy scalars are
    converted), because they are part of the configuration hash and of the database row.

    Raises
    ------
    ConfigError
        If a name is unknown or reserved, or a value is not a JSON-safe scalar.
    """
    model_type = check_model_type(model_type)
    if hyperparameters is None:
        return {}
    if not isinstance(hyperparameters, Mapping):
        raise ConfigError(
            f"{key}: expected a mapping of name -> value for {model_type}, "
            f"got {type(hyperparameters).__name__} {quote_input(hyperparameters)}"
        )
    if not hyperparameters:
        # No names to check: do not import xgboost/lightgbm just to list theirs.
        return {}
    valid = valid_hyperparameter_names(model_type)
    out: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        # The name is part of the key path; a huge one is cut there and quoted below.
        where = f"{key}.{str(name)[:100]}"
        if name in _RESERVED:
            raise ConfigError(f"{where}: not accepted for {model_type}; {_RESERVED[name]}")
        if name not in valid:
            close = close_match(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise ConfigError(
                f"{where}: unknown hyperparameter {quote_input(name)} for {model_type}{hint}; "
                f"valid names: {', '.join(valid)}"
            )
        out[name] = _scalar(value, where)
        if name == "n_estimators" and isinstance(out[name], int):
            if out[name] > _limits.MAX_ESTIMATORS:
                raise ConfigError(
                    f"{where}: at most {_limits.MAX_ESTIMATORS} trees, got {out[name]}"
                )
    return dict(sorted(out.items()))


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        # The libraries take C ints; a larger one fails deep inside them, or never ends.
        if not _limits.INT32_MIN <= value <= _limits.INT32_MAX:
            raise ConfigError(
                f"{where}: integers must be between {_limits.INT32_MIN} and "
                f"{_limits.INT32_MAX} (what the model libraries accept), got {quote_input(value)}"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return value
    raise ConfigError(
        f"{where}: must be a single number, string, bool or null, "
        f"got {type(value).__name__} {quote_input(value)}"
    )


def _build(model_type: str, params: Mapping[str, Any], seed: int) -> Any:
    cls = _estimator_class(model_type)
    accepted = cls().get_params(deep=False)
    kwargs: dict[str, Any] = {}
    if "n_jobs" in accepted:
        kwargs["n_jobs"] = 1
    if "random_state" in accepted:
        kwargs["random_state"] = seed
    # User and default hyperparameters win over the seed (a seed sweep via random_state is a
    # legitimate grid, and it is hashed with the other hyperparameters).
    kwargs.update(params)
    estimator = cls(**kwargs)
    if model_type in LINEAR_MODEL_TYPES:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator


@functools.lru_cache(maxsize=1024)
def _validate_cached(model_type: str, items: tuple[tuple[str, str, Any], ...]) -> None:
    # Items carry their type name: True == 1 == 1.0 hash alike, but are not alike to a library.
    params = {name: value for name, _, value in items}
    if model_type in _BOOSTED and "n_estimators" in params:
        n = params["n_estimators"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n_estimators must be an int >= 1, got {n!r}")
    if model_type in _BOOSTED:
        # The boosting libraries check their parameters natively, at fit time only: a
        # one-tree probe fit on a tiny fixed sample surfaces their errors now, in milliseconds.
        probe = _build(model_type, {**params, "n_estimators": 1}, seed=0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 4))
        probe.fit(x, x[:, 0] + 0.1 * rng.normal(size=64))
        return
    estimator = _build(model_type, params, seed=0)
    inner = estimator[-1] if model_type in LINEAR_MODEL_TYPES else estimator
    # scikit-learn checks _parameter_constraints at fit time; _validate_params (public
    # behaviour since 1.2, used by every sklearn fit) runs the same check without data.
    inner._validate_params()


def validate_hyperparameters(
    model_type: str, hyperparameters: Mapping[str, Any] | None, *, key: str = "hyperparameters"
) -> dict[str, Any]:
    """Check ``hyperparameters`` for ``model_type``: names, types and values.

    Results are cached per (model type, hyperparameters), so validating a large grid costs
    one check per distinct combination.

    Parameters
    ----------
    model_type
        One of :data:`MODEL_TYPES`.
    hyperparameters
        Overrides of :data:`DEFAULT_HYPERPARAMETERS`, name -> scalar value.
    key
        The key path named in error messages.

    Returns
    -------
    dict
        The normalised hyperparameters (sorted by name, numpy scalars converted).

    Raises
    ------
    ConfigError
        If the model type or a name is unknown, or a value is rejected by the library (the
        message carries the library's own message).
    """
    model_type = check_model_type(model_type)
    params = normalize_hyperparameters(model_type, hyperparameters, key=key)
    effective = {**DEFAULT_HYPERPARAMETERS[model_type], **params}
    try:
        _validate_cached(
            model_type, tuple((k, type(v).__name__, v) for k, v in sorted(effective.items()))
        )
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every library error becomes a ConfigError
        given = ", ".join(f"{k}={quote_input(v)}" for k, v in params.items()) or "defaults"
        # One line: native libraries add newlines, and the CLI prints one line. Libraries
        # quote the value whole ("Got 'xxx...' instead."): cut their text too.
        detail = " ".join(str(exc).split())
        if len(detail) > 500:
            detail = f"{detail[:500]}... ({len(detail):,} characters)"
        raise ConfigError(
            f"{key}: invalid hyperparameters for {model_type} ({given}): "
            f"{type(exc).__name__}: {detail}"
        ) from exc
    return params


def make_model(
    model_type: str, hyperparameters: Mapping[str, Any] | None = None, seed: int = 42
) -> Any:
    """Build an unfitted scikit-learn-API regressor for ``model_type``.

    Parameters
    ----------
    model_type
        One of :data:`MODEL_TYPES`.
    hyperparameters
        Overrides of :data:`DEFAULT_HYPERPARAMETERS` for this model type, with the
        estimator's own parameter names (``alpha`` for ridge, not ``model__alpha``).
        ``random_state`` here wins over ``seed``; ``n_jobs`` is not accepted.
    seed
        ``random_state`` of estimators that have one (trees, boosting, ridge/lasso solvers).

    Returns
    -------
    estimator
        A ``RandomForestRegressor``, ``GradientBoostingRegressor``, ``xgboost.XGBRegressor``,
        ``lightgbm.LGBMRegressor``, or ``Pipeline([("scale", StandardScaler()), ("model",
        <linear regressor>)])``, with ``n_jobs=1`` wherever the estimator has it.

    Raises
    ------
    ConfigError
        If the model type is unknown (with a did-you-mean), a hyperparameter name is unknown
        (listing the valid ones), or a value is invalid (with the library's message).

    Examples
    --------
    >>> model = make_model("ridge", {"alpha": 10.0})
    >>> [name for name, _ in model.steps], model[-1].alpha
    (['scale', 'model'], 10.0)
    """
    model_type = check_model_type(model_type)
    params = validate_hyperparameters(model_type, hyperparameters)
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, np.integer))
        or not 0 <= seed <= _limits.SEED_MAX
    ):
        raise ConfigError(
            f"seed: expected an integer between 0 and {_limits.SEED_MAX}, got {quote_input(seed)}"
        )
    effective = {**DEFAULT_HYPERPARAMETERS[model_type], **params}
    logger.debug("make_model %s %s seed=%s", model_type, effective, seed)
    return _build(model_type, effective, int(seed))
