"""Training configurations, the configuration grid and the canonical configuration hash.

A :class:`TrainingConfig` is one cell of the grid: what to train (model type and its
hyperparameters) on what (symbol, timeframe, days of history, encoder, indicator
timeframes) to predict what (horizon). :class:`GridSpec` holds the user's lists and expands
them into the Cartesian product of configurations, deduplicated by :func:`config_hash`.
Its size is arithmetic on the lists (``len(spec)``, :meth:`GridSpec.describe`), and its
configurations are produced one at a time, so a grid too large to queue is refused
(:meth:`GridSpec.check_size`) before anything is built.

The hash is SHA-256 of canonical JSON (sorted keys, no whitespace, ASCII) of every field that
changes the trained model, so it is identical across processes, machines and Python
versions, and "already trained" means exactly "same model on the same data".
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from forexgrid._grid_fields import (
    FrozenParams,
    check_encoder,
    check_hyperparameters,
    check_indicator_timeframes,
    check_positive_int,
    check_symbol,
    check_timeframe,
)

# ENCODERS is owned by the features module and re-exported here for grid users.
from forexgrid.core.features import ENCODERS
from forexgrid.core.models import (
    DEFAULT_HYPERPARAMETERS,
    check_model_type,
    validate_hyperparameters,
)
from forexgrid.data.timeframes import (
    timeframe_delta,
)
from forexgrid.exceptions import ConfigError, DataError, GridSizeError

__all__ = [
    "DEFAULT_MAX_GRID_SIZE",
    "ENCODERS",
    "HASH_VERSION",
    "FrozenParams",
    "GridSpec",
    "TrainingConfig",
    "config_hash",
    "config_hasher",
    "data_fingerprint",
]

#: Version of the hashed payload's layout; bump it when the payload changes shape, so old and
#: new hashes never collide by accident.
HASH_VERSION = 1

#: Default of ``execution.max_grid_size``: the most configurations one queue may hold.
DEFAULT_MAX_GRID_SIZE = 100_000

# ----------------------------------------------------------------------------- TrainingConfig


@dataclass(frozen=True)
class TrainingConfig:
    """One configuration of the grid: one model to train and evaluate.

    Fields are validated and normalised on construction: the model type and encoder are
    canonical names, the symbol is upper case, the timeframe canonical (``"1H"`` -> ``"1h"``),
    ``indicator_timeframes`` a sorted, deduplicated tuple of higher timeframes, and
    ``hyperparameters`` a :class:`FrozenParams` (a ``dict`` is accepted). Instances are
    immutable and hashable.

    Parameters
    ----------
    model_type : str
        One of :data:`forexgrid.core.models.MODEL_TYPES`.
    symbol : str
        Letters and digits, e.g. ``"EURUSD"``.
    timeframe : str
        One of ``15m 1h 4h 1d`` or an alias (``H1``, ``4H``, ``D1`` ...).
    days_history : int
        Calendar days of training data (>= 1).
    horizon : int
        Bars ahead to predict (>= 1).
    encoder : str, default "time_delta"
        One of :data:`ENCODERS`.
    indicator_timeframes : sequence of str, default ()
        Higher timeframes whose indicators are added as features.
    hyperparameters : mapping, optional
        Overrides of the model type's defaults (see :func:`forexgrid.core.models.make_model`).

    Raises
    ------
    ConfigError
        If any field is invalid; the message names the field and the value.
    """

    model_type: str
    symbol: str
    timeframe: str
    days_history: int
    horizon: int
    encoder: str = "time_delta"
    indicator_timeframes: tuple[str, ...] = ()
    hyperparameters: FrozenParams = field(default_factory=FrozenParams)

    def __post_init__(self) -> None:
        model_type = check_model_type(self.model_type, key="model_type")
        timeframe = check_timeframe(self.timeframe, "timeframe", trainable=True)
        values = {
            "model_type": model_type,
            "symbol": check_symbol(self.symbol, "symbol"),
            "timeframe": timeframe,
            "days_history": check_positive_int(self.days_history, "days_history"),
            "horizon": check_positive_int(self.horizon, "horizon"),
            "encoder": check_encoder(self.encoder, "encoder"),
            "indicator_timeframes": check_indicator_timeframes(
                self.indicator_timeframes, timeframe, "indicator_timeframes"
            ),
            "hyperparameters": check_hyperparameters(
                model_type, self.hyperparameters, "hyperparameters"
            ),
        }
        for name, value in values.items():
            # Frozen dataclass: normalisation has to go around __setattr__.
            object.__setattr__(self, name, value)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``"xgboost EURUSD 1h 60d h3 time_delta"``.

        Indicator timeframes (``+4h,1d``) and hyperparameters (``max_depth=3``) are appended
        only when given.
        """
        parts = [
            self.model_type,
            self.symbol,
            self.timeframe,
            f"{self.days_history}d",
            f"h{self.horizon}",
            self.encoder,
        ]
        if self.indicator_timeframes:
            parts.append("+" + ",".join(self.indicator_timeframes))
        parts.extend(f"{k}={v}" for k, v in self.hyperparameters.items())
        return " ".join(parts)

    @property
    def effective_hyperparameters(self) -> dict[str, Any]:
        """The model type's defaults updated with this configuration's hyperparameters."""
        return {**DEFAULT_HYPERPARAMETERS[self.model_type], **self.hyperparameters}

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (lists for tuples, a dict of hyperparameters).

        ``TrainingConfig.from_dict(tc.to_dict()) == tc`` always holds.
        """
        return {
            "model_type": self.model_type,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "days_history": self.days_history,
            "horizon": self.horizon,
            "encoder": self.encoder,
            "indicator_timeframes": list(self.indicator_timeframes),
            "hyperparameters": dict(self.hyperparameters),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """Build a configuration from :meth:`to_dict` output (e.g. a database or checkpoint).

        Parameters
        ----------
        data : mapping
            Keys as written by :meth:`to_dict`; ``encoder``, ``indicator_timeframes`` and
            ``hyperparameters`` may be omitted (defaults).

        Returns
        -------
        TrainingConfig

        Raises
        ------
        ConfigError
            If ``data`` is not a mapping, lacks a required key, has an unknown key, or a value
            is invalid.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"training configuration: expected a mapping, got {type(data).__name__}"
            )
        required = ("model_type", "symbol", "timeframe", "days_history", "horizon")
        allowed = set(required) | {"encoder", "indicator_timeframes", "hyperparameters"}
        missing = [k for k in required if k not in data]
        if missing:
            raise ConfigError(
                f"training configuration: missing key(s) {', '.join(missing)}; "
                f"got {', '.join(map(str, data)) or 'no keys'}"
            )
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ConfigError(
                f"training configuration: unknown key(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(allowed))}"
            )
        kwargs = dict(data)
        if kwargs.get("indicator_timeframes") is None:
            kwargs["indicator_timeframes"] = ()
        return cls(**kwargs)


# ----------------------------------------------------------------------------- hashing


def data_fingerprint(bars: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> dict[str, Any]:
    """Return the fingerprint of the data a model is trained on.

    Parameters
    ----------
    bars : DataFrame, Series or DatetimeIndex
        Bars (tz-aware UTC index).

    Returns
    -------
    dict
        ``{"first": ISO time of the first bar, "last": ISO time of the last bar, "bars":
        count}``, e.g. ``{"first": "2017-01-02T00:00:00+00:00", ...}``.

    Raises
    ------
    DataError
        If there is no tz-aware DatetimeIndex or no bar.
    """
    index = bars if isinstance(bars, pd.Index) else getattr(bars, "index", None)
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"data fingerprint: bars must have a DatetimeIndex, got {type(index).__name__}"
        )
    if index.tz is None:
        raise DataError(
            "data fingerprint: bars must have a tz-aware UTC index, got a naive one; "
            "use index.tz_localize('UTC')"
        )
    if len(index) == 0:
        raise DataError("data fingerprint: bars are empty")
    first, last = index.min().tz_convert("UTC"), index.max().tz_convert("UTC")
    return {"first": first.isoformat(), "last": last.isoformat(), "bars": len(index)}


def _section(settings: Any, name: str) -> Any:
    value = settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)
    if value is None:
        raise ConfigError(f"config hash: settings have no '{name}' section")
    return value


def _plain(value: Any, key: str) -> Any:
    """A JSON-safe plain-data copy of a settings section (pydantic model, dataclass, mapping)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config hash: {key} must be finite, got {value!r}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(
        f"config hash: {key} has a value that is not plain data: {type(value).__name__} {value!r}"
    )


def config_hash(
    tc: TrainingConfig,
    settings: Any = None,
    data_fingerprint: Mapping[str, Any] | None = None,
) -> str:
    """Return the canonical SHA-256 hex digest identifying a trained model.

    Hashed as canonical JSON (``sort_keys=True, separators=(",", ":")``, ASCII, no NaN):

    - ``hash_version`` (:data:`HASH_VERSION`);
    - the configuration's fields, with the *effective* hyperparameters (the model type's
      defaults updated with the configuration's own), so ``{"alpha": 1.0}`` and ``{}`` for
      ridge are the same model, and changing a default makes a new hash;
    - when ``settings`` is given: ``settings.features`` (whole section) and the evaluation
      windows ``validation_days``, ``test_days``, ``embargo_bars`` from ``settings.evaluation``,
      and ``settings.execution.seed``;
    - when ``data_fingerprint`` is given: that dict (see :func:`data_fingerprint`).

    Parameters
    ----------
    tc : TrainingConfig
        The configuration.
    settings : object, optional
        The loaded settings (attributes or mapping keys ``features`` and ``evaluation``).
    data_fingerprint : mapping, optional
        First/last bar time and bar count of the data used.

    Returns
    -------
    str
        64 lower-case hex digits.

    Raises
    ------
    ConfigError
        If ``tc`` is not a TrainingConfig, or the settings lack a hashed section or hold a
        value that is not plain data.
    """
    _check_config(tc)
    return config_hasher(settings, data_fingerprint)(tc)


def config_hasher(
    settings: Any = None, data_fingerprint: Mapping[str, Any] | None = None
) -> Callable[[TrainingConfig], str]:
    """Return :func:`config_hash` with ``settings`` and ``data_fingerprint`` bound, for hashing
    many configurations: both are converted to plain data once, here, not per call.

    ``config_hasher(settings, fingerprint)(tc) == config_hash(tc, settings, fingerprint)``
    always.

    Parameters
    ----------
    settings : object, optional
        As for :func:`config_hash`.
    data_fingerprint : mapping, optional
        As for :func:`config_hash`.

    Returns
    -------
    callable
        ``hasher(tc) -> str``.

    Raises
    ------
    ConfigError
        As :func:`config_hash`: here for the settings and the fingerprint, when called for a
        ``tc`` that is not a TrainingConfig.
    """
    extra = _settings_payload(settings) if settings is not None else {}
    if data_fingerprint is not None:
        extra["data"] = _fingerprint_payload(data_fingerprint)

    def hasher(tc: TrainingConfig) -> str:
        return _digest(tc, extra)

    return hasher


def _settings_payload(settings: Any) -> dict[str, Any]:
    """The hashed part of the settings: features, evaluation windows and the seed."""
    evaluation = _section(settings, "evaluation")
    windows = {}
    for name in ("validation_days", "test_days", "embargo_bars"):
        value = (
            evaluation.get(name)
            if isinstance(evaluation, Mapping)
            else getattr(evaluation, name, None)
        )
        if value is None:
            raise ConfigError(f"config hash: settings have no 'evaluation.{name}'")
        windows[name] = value
    payload = {
        "features": _plain(_section(settings, "features"), "features"),
        "evaluation": _plain(windows, "evaluation"),
    }
    # The seed changes every randomised model (trees, boosting), so it is identity too.
    execution = _section(settings, "execution")
    seed = execution.get("seed") if isinstance(execution, Mapping) else execution.seed
    payload["seed"] = _plain(seed, "execution.seed")
    return payload


def _fingerprint_payload(data_fingerprint: Any) -> Any:
    if not isinstance(data_fingerprint, Mapping):
        raise ConfigError(
            "config hash: data_fingerprint must be a mapping such as "
            "data_fingerprint(bars) returns, got "
            f"{type(data_fingerprint).__name__}"
        )
    return _plain(data_fingerprint, "data_fingerprint")


def _check_config(tc: Any) -> None:
    if not isinstance(tc, TrainingConfig):
        raise ConfigError(f"config hash: expected a TrainingConfig, got {type(tc).__name__}")


def _digest(tc: TrainingConfig, extra: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the configuration and the ``extra`` hashed parts."""
    _check_config(tc)
    config = tc.to_dict()
    config["hyperparameters"] = tc.effective_hyperparameters
    payload = {"hash_version": HASH_VERSION, "config": config, **extra}
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------- GridSpec


def _as_list(value: Any, key: str) -> list[Any]:
    # A lone string or number is a one-element list ("EURUSD" is not six symbols).
    if isinstance(value, (str, int, np.integer)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    items = list(value)
    if not items:
        raise ConfigError(f"{key}: must list at least one value")
    return items


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def _expand_hyperparameters(
    model_type: str, spec: Mapping[str, Any], key: str
) -> list[dict[str, Any]]:
    """The hyperparameter combinations of one model type: lists expand, scalars stay."""
    names = sorted(spec)
    choices = []
    for name in names:
        value = spec[name]
        if isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"{key}.{name}: must list at least one value")
            choices.append(list(value))
        else:
            choices.append([value])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


_CONFIG_FIELDS = tuple(f.name for f in fields(TrainingConfig))


def _checked_config(*values: Any) -> TrainingConfig:
    """A TrainingConfig from values already checked and normalised by its own field checks.

    Skips ``__post_init__``: the checks (the hyperparameters' above all) cost more than the
    rest of queue creation together, and :class:`GridSpec` has run each of them once per
    distinct value, so the instance is equal to ``TrainingConfig(*values)``.
    """
    tc = object.__new__(TrainingConfig)
    for name, value in zip(_CONFIG_FIELDS, values, strict=True):
        object.__setattr__(tc, name, value)
    return tc


@dataclass(frozen=True)
class _DistinctAxes:
    """A grid's axes normalised, each distinct value once, in the order first given.

    A configuration's hash depends on each group (model type and hyperparameters; symbol;
    timeframe and indicator timeframes; days; horizon; encoder) separately, so the grid's
    distinct configurations are exactly the product of these distinct values, and the first
    of each set of duplicates comes in the product's order.
    """

    models: tuple[tuple[str, tuple[FrozenParams, ...]], ...]
    symbols: tuple[str, ...]
    timeframes: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]
    days_history: tuple[int, ...]
    horizons: tuple[int, ...]
    encoders: tuple[str, ...]

    @property
    def size(self) -> int:
        models = sum(len(hp_sets) for _, hp_sets in self.models)
        timeframes = sum(len(ind_sets) for _, ind_sets in self.timeframes)
        return (
            models
            * timeframes
            * math.prod(
                len(axis)
                for axis in (self.symbols, self.days_history, self.horizons, self.encoders)
            )
        )

    def __iter__(self) -> Iterator[TrainingConfig]:
        for model, hp_sets in self.models:
            for symbol, (timeframe, ind_sets) in itertools.product(self.symbols, self.timeframes):
                for days, horizon, encoder, ind, hp in itertools.product(
                    self.days_history, self.horizons, self.encoders, ind_sets, hp_sets
                ):
                    yield _checked_config(
                        model, symbol, timeframe, days, horizon, encoder, ind, hp
                    )


def _distinct(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class GridSpec:
    """The user's lists, expanded into the grid of :class:`TrainingConfig`.

    Building a spec checks every value of every list (each distinct one once) but builds no
    configuration: ``len(spec)`` and :meth:`describe` are arithmetic on the lists, iterating
    yields the configurations one at a time, and :meth:`expand` makes a list of them up to a
    limit (:meth:`check_size`), so a grid too large to queue costs nothing to refuse.

    Parameters
    ----------
    model_types, symbols, timeframes, days_history, horizons : sequence
        The grid's axes (a lone string or int counts as a one-element list).
    encoders : sequence of str, default ("time_delta",)
    indicator_timeframes : sequence of sequences of str, default ((),)
        Each element is one choice of indicator timeframes, e.g. ``[[], ["4h", "1d"]]``.
        For each configuration, the timeframes not above its own timeframe are left out
        (``["4h"]`` means no indicator timeframes for 4h bars), and the resulting duplicates
        are removed.
    hyperparameters : mapping, optional
        ``{model_type: {name: value or [values]}}``; a list multiplies that model type's
        configurations only; model types not named use their defaults.

    Raises
    ------
    ConfigError
        If a list is empty or holds an invalid value (the message names ``grid.<axis>[i]``),
        or ``hyperparameters`` names a model type that is not in ``model_types``.

    Examples
    --------
    >>> spec = GridSpec(model_types=["xgboost", "lightgbm"], symbols=["EURUSD"],
    ...                 timeframes=["1h", "4h"], days_history=[60, 90], horizons=[1, 3])
    >>> len(spec)
    16
    >>> print(spec.describe())
    2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons = 16 configurations
    """

    model_types: tuple[str, ...]
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    days_history: tuple[int, ...]
    horizons: tuple[int, ...]
    encoders: tuple[str, ...] = ("time_delta",)
    indicator_timeframes: tuple[tuple[str, ...], ...] = ((),)
    hyperparameters: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        g = "grid"
        models = tuple(
            check_model_type(m, key=f"{g}.model_types[{i}]")
            for i, m in enumerate(_as_list(self.model_types, f"{g}.model_types"))
        )
        symbols = tuple(
            check_symbol(s, f"{g}.symbols[{i}]")
            for i, s in enumerate(_as_list(self.symbols, f"{g}.symbols"))
        )
        timeframes = tuple(_as_list(self.timeframes, f"{g}.timeframes"))
        for i, t in enumerate(timeframes):
            check_timeframe(t, f"{g}.timeframes[{i}]", trainable=True)
        days = tuple(
            check_positive_int(d, f"{g}.days_history[{i}]")
            for i, d in enumerate(_as_list(self.days_history, f"{g}.days_history"))
        )
        horizons = tuple(
            check_positive_int(h, f"{g}.horizons[{i}]")
            for i, h in enumerate(_as_list(self.horizons, f"{g}.horizons"))
        )
        encoders = tuple(
            check_encoder(e, f"{g}.encoders[{i}]")
            for i, e in enumerate(_as_list(self.encoders, f"{g}.encoders"))
        )
        ind_raw = self.indicator_timeframes
        if ind_raw is None:
            ind_raw = ((),)
        ind_sets = []
        for i, choice in enumerate(_as_list(ind_raw, f"{g}.indicator_timeframes")):
            if isinstance(choice, str) or not isinstance(choice, Iterable):
                raise ConfigError(
                    f"{g}.indicator_timeframes[{i}]: each element is one choice of indicator "
                    f"timeframes, a list such as ['4h', '1d'] or []; got {choice!r} "
                    "(for one choice holding it, write [[...]])"
                )
            ind_sets.append(
                tuple(
                    check_timeframe(t, f"{g}.indicator_timeframes[{i}][{j}]", trainable=False)
                    for j, t in enumerate(choice)
                )
            )
        object.__setattr__(self, "model_types", models)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "timeframes", timeframes)
        object.__setattr__(self, "days_history", days)
        object.__setattr__(self, "horizons", horizons)
        object.__setattr__(self, "encoders", encoders)
        object.__setattr__(self, "indicator_timeframes", tuple(ind_sets))
        object.__setattr__(self, "hyperparameters", self._check_grid_hyperparameters(models))
        # Every value is checked now, each distinct one once, so an invalid grid is reported
        # when the spec is built; no configuration is built until the grid is iterated.
        _ = self._axes

    def _check_grid_hyperparameters(
        self, models: tuple[str, ...]
    ) -> Mapping[str, Mapping[str, Any]] | None:
        raw = self.hyperparameters
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise ConfigError(
                "grid.hyperparameters: expected {model_type: {name: value or [values]}}, "
                f"got {raw!r}"
            )
        out: dict[str, FrozenParams] = {}
        for model_key, params in raw.items():
            key = f"grid.hyperparameters.{model_key}"
            model = check_model_type(model_key, key=key)
            if model not in models:
                raise ConfigError(
                    f"{key}: hyperparameters given for model type {model!r}, which is not in "
                    f"grid.model_types ({', '.join(models)}); add it there or remove them"
                )
            if model in out:
                raise ConfigError(f"{key}: hyperparameters for {model!r} are given twice")
            if params is None:
                params = {}
            if not isinstance(params, Mapping):
                raise ConfigError(
                    f"{key}: expected a mapping of name -> value or [values], got {params!r}"
                )
            frozen = {
                name: tuple(v) if isinstance(v, (list, tuple)) else v for name, v in params.items()
            }
            out[model] = FrozenParams(frozen)
            # Each combination checked once, with the grid's key path in the message.
            for combo in _expand_hyperparameters(model, frozen, key):
                validate_hyperparameters(model, combo, key=key)
        return FrozenParams(out)

    @classmethod
    def from_settings(cls, grid: Any) -> GridSpec:
        """Build a spec from a settings section (``settings.grid``) or a mapping.

        Reads the attributes (or keys) ``model_types, symbols, timeframes, days_history,
        horizons`` (required) and ``encoders, indicator_timeframes, hyperparameters``
        (optional).

        Raises
        ------
        ConfigError
            If a required attribute is missing or a value is invalid.
        """

        def get(name: str) -> Any:
            if isinstance(grid, Mapping):
                return grid.get(name)
            return getattr(grid, name, None)

        kwargs: dict[str, Any] = {}
        for name in ("model_types", "symbols", "timeframes", "days_history", "horizons"):
            value = get(name)
            if value is None:
                raise ConfigError(f"grid.{name}: missing; expected a list")
            kwargs[name] = value
        for name in ("encoders", "indicator_timeframes", "hyperparameters"):
            value = get(name)
            if value is not None:
                kwargs[name] = value
        return cls(**kwargs)

    def _hyperparameter_sets(self, model_type: str) -> list[dict[str, Any]]:
        spec = (self.hyperparameters or {}).get(model_type)
        if not spec:
            return [{}]
        return _expand_hyperparameters(model_type, spec, f"grid.hyperparameters.{model_type}")

    @cached_property
    def _raw_count(self) -> int:
        per_model = sum(len(self._hyperparameter_sets(m)) for m in self.model_types)
        return per_model * math.prod(
            len(axis)
            for axis in (
                self.symbols,
                self.timeframes,
                self.days_history,
                self.horizons,
                self.encoders,
                self.indicator_timeframes,
            )
        )

    @cached_property
    def _axes(self) -> _DistinctAxes:
        """The distinct normalised values of each axis; costs the sum of the axes' lengths
        (and of each model type's hyperparameter sets), never their product."""
        timeframes = _distinct(
            check_timeframe(t, f"grid.timeframes[{i}]", trainable=True)
            for i, t in enumerate(self.timeframes)
        )
        first = (self.symbols[0], timeframes[0], self.days_history[0], self.horizons[0])
        models = []
        for model in _distinct(self.model_types):
            key = f"grid.hyperparameters.{model}"
            by_hash: dict[str, FrozenParams] = {}
            for combo in self._hyperparameter_sets(model):
                params = check_hyperparameters(model, combo, key)
                # Two sets are the same model when their hashes are (same effective values).
                probe = _checked_config(model, *first, self.encoders[0], (), params)
                by_hash.setdefault(config_hash(probe), params)
            models.append((model, tuple(by_hash.values())))
        with_indicators = []
        for timeframe in timeframes:
            # An indicator timeframe not above this configuration's timeframe adds nothing
            # (4h indicators on 4h bars): it is left out for this timeframe, so one list of
            # options serves a grid of several timeframes.
            base = timeframe_delta(timeframe)
            ind_sets = _distinct(
                check_indicator_timeframes(
                    [t for t in choice if timeframe_delta(t) > base],
                    timeframe,
                    f"grid.indicator_timeframes (timeframe {timeframe})",
                )
                for choice in self.indicator_timeframes
            )
            with_indicators.append((timeframe, ind_sets))
        return _DistinctAxes(
            models=tuple(models),
            symbols=_distinct(self.symbols),
            timeframes=tuple(with_indicators),
            days_history=_distinct(self.days_history),
            horizons=_distinct(self.horizons),
            encoders=_distinct(self.encoders),
        )

    def expand(self, max_size: int | None = DEFAULT_MAX_GRID_SIZE) -> list[TrainingConfig]:
        """Return the grid's configurations, deduplicated by :func:`config_hash`.

        Order: model type, symbol, timeframe, days, horizon, encoder, indicator timeframes,
        hyperparameter set (the last varies fastest), each in the order given; the first of
        duplicates (e.g. ``"1h"`` and ``"1H"``) is kept. Iterating the spec yields the same
        configurations one at a time, without a list.

        Parameters
        ----------
        max_size : int or None, default :data:`DEFAULT_MAX_GRID_SIZE`
            The most configurations to build a list of; None for no limit.

        Returns
        -------
        list of TrainingConfig

        Raises
        ------
        GridSizeError
            If the grid has more than ``max_size`` configurations (nothing is built).
        """
        if max_size is not None:
            self.check_size(max_size, setting="max_size")
        return list(self._axes)

    def check_size(self, max_size: int, *, setting: str = "execution.max_grid_size") -> int:
        """Refuse a grid of more than ``max_size`` configurations, before any is built.

        Parameters
        ----------
        max_size : int
            The limit (``settings.execution.max_grid_size``).
        setting : str, default "execution.max_grid_size"
            What the message names as the limit.

        Returns
        -------
        int
            ``len(self)``, the number of distinct configurations.

        Raises
        ------
        GridSizeError
            ``"grid has 4 models x 3 symbols x 2 timeframes x 500 days x 100 horizons x 3
            encoders = 3,600,000 configurations; execution.max_grid_size is 100,000: shrink the
            grid or raise the limit"``.
        ConfigError
            If ``max_size`` is not an integer >= 1.
        """
        if (
            isinstance(max_size, bool)
            or not isinstance(max_size, (int, np.integer))
            or max_size < 1
        ):
            raise ConfigError(f"{setting}: expected an integer >= 1, got {max_size!r}")
        size = len(self)
        if size > max_size:
            raise GridSizeError(
                f"grid has {self.describe()}; {setting} is {int(max_size):,}: shrink the grid "
                "or raise the limit"
            )
        return size

    def symbol_timeframes(self) -> list[tuple[str, str]]:
        """The distinct (symbol, timeframe) pairs the grid trains on, normalised, in the order
        the configurations first use them: the data each needs (one fingerprint per pair)."""
        axes = self._axes
        return [(symbol, tf) for symbol in axes.symbols for tf, _ in axes.timeframes]

    def __len__(self) -> int:
        """The number of distinct configurations, computed from the lists' lengths."""
        return self._axes.size

    def __iter__(self) -> Iterator[TrainingConfig]:
        return iter(self._axes)

    def describe(self) -> str:
        """Return the grid's arithmetic, e.g.
        ``"2 models x 2 symbols x 1 timeframe x 2 days x 2 horizons = 16 configurations"``.

        Encoders, indicator timeframe sets and hyperparameter sets appear as factors only when
        there are several. When model types have different numbers of hyperparameter sets,
        the first factor counts model variants instead: ``"3 model variants (xgboost 2,
        ridge 1)"``. Duplicates removed by hashing are appended: ``"(2 duplicates
        removed)"``; the product is the count before that removal.
        """
        hp_counts = [len(self._hyperparameter_sets(m)) for m in self.model_types]
        factors = []
        uniform = len(set(hp_counts)) == 1
        if uniform:
            factors.append(_plural(len(self.model_types), "model"))
        else:
            detail = ", ".join(
                f"{m} {n}" for m, n in zip(self.model_types, hp_counts, strict=True)
            )
            factors.append(f"{_plural(sum(hp_counts), 'model variant')} ({detail})")
        factors += [
            _plural(len(self.symbols), "symbol"),
            _plural(len(self.timeframes), "timeframe"),
            _plural(len(self.days_history), "day"),
            _plural(len(self.horizons), "horizon"),
        ]
        if len(self.encoders) > 1:
            factors.append(_plural(len(self.encoders), "encoder"))
        if len(self.indicator_timeframes) > 1:
            factors.append(_plural(len(self.indicator_timeframes), "indicator timeframe set"))
        if uniform and hp_counts[0] > 1:
            factors.append(_plural(hp_counts[0], "hyperparameter set"))
        text = f"{' x '.join(factors)} = {_plural(self._raw_count, 'configuration')}"
        removed = self._raw_count - len(self)
        if removed:
            text += f" ({_plural(removed, 'duplicate')} removed)"
        return text

    def _repr_html_(self) -> str:
        def cell(values: Sequence[Any]) -> str:
            return html.escape(", ".join(str(v) for v in values))

        rows = [
            ("model types", cell(self.model_types)),
            ("symbols", cell(self.symbols)),
            ("timeframes", cell(self.timeframes)),
            ("days history", cell(self.days_history)),
            ("horizons", cell(self.horizons)),
            ("encoders", cell(self.encoders)),
            (
                "indicator timeframes",
                cell(["[" + ", ".join(s) + "]" for s in self.indicator_timeframes]),
            ),
        ]
        if self.hyperparameters:
            rows.append(
                (
                    "hyperparameters",
                    "<br>".join(
                        html.escape(f"{m}: {dict(p)}") for m, p in self.hyperparameters.items()
                    ),
                )
            )
        rows.append(("configurations", f"<b>{len(self)}</b>"))
        body = "".join(
            f"<tr><th style='text-align:left'>{name}</th><td style='text-align:left'>{value}"
            "</td></tr>"
            for name, value in rows
        )
        return (
            "<table><caption style='text-align:left'>GridSpec: "
            f"{html.escape(self.describe())}</caption>{body}</table>"
        )
