"""Validation of a training configuration's fields, and the frozen hyperparameter mapping.

Each check returns the canonical value or raises a ConfigError naming the field and the
value; :class:`forexgrid.grid.TrainingConfig` runs them on construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from forexgrid import _limits
from forexgrid.core.features import ENCODERS
from forexgrid.core.models import (
    normalize_hyperparameters,
    validate_hyperparameters,
)
from forexgrid.data.timeframes import (
    TIMEFRAMES,
    TRAINABLE_TIMEFRAMES,
    normalize_timeframe,
    timeframe_delta,
)
from forexgrid.exceptions import ConfigError, DataError, quote_input

__all__ = [
    "FrozenParams",
    "check_encoder",
    "check_hyperparameters",
    "check_indicator_timeframes",
    "check_positive_int",
    "check_symbol",
    "check_timeframe",
]

_SYMBOL_RE = re.compile(r"^[A-Za-z0-9]+$")


class FrozenParams(Mapping[str, Any]):
    """An immutable, hashable mapping of hyperparameter name -> scalar, sorted by name.

    Compares equal to a ``dict`` with the same items; ``repr`` looks like a dict.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        object.__setattr__(self, "_items", tuple(sorted(dict(pairs).items())))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenParams is immutable")

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenParams):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return repr(dict(self._items))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenParams, (self._items,))


# ----------------------------------------------------------------------------- field checks
# Module-level so GridSpec can check its lists with the index in the key path
# ("grid.timeframes[1]") before building any configuration.


def check_symbol(value: object, key: str) -> str:
    if isinstance(value, str) and _SYMBOL_RE.match(value.strip()):
        if len(value.strip()) > _limits.MAX_SYMBOL_LENGTH:
            raise ConfigError(
                f"{key}: expected a symbol of at most {_limits.MAX_SYMBOL_LENGTH} letters and "
                f"digits such as 'EURUSD', got {quote_input(value)}"
            )
        return value.strip().upper()
    hint = ""
    if isinstance(value, str):
        cleaned = re.sub(r"[^A-Za-z0-9]", "", value).upper()
        if cleaned:
            hint = f" (write {quote_input(cleaned)})"
    raise ConfigError(
        f"{key}: expected a symbol of letters and digits such as 'EURUSD', got "
        f"{quote_input(value)}{hint}"
    )


def check_timeframe(value: object, key: str, *, trainable: bool) -> str:
    try:
        canonical = normalize_timeframe(value)  # type: ignore[arg-type]
    except DataError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    if trainable and canonical not in TRAINABLE_TIMEFRAMES:
        raise ConfigError(
            f"{key}: cannot train on timeframe {quote_input(value)}; expected one of "
            f"{', '.join(TRAINABLE_TIMEFRAMES)}"
        )
    return canonical


# The largest value of each integer field, by the field's name in the key path (the grid's
# lists and TrainingConfig name them "grid.days_history[2]", "horizon", ...).
_MAXIMUM = {
    "days_history": _limits.MAX_DAYS,
    "horizon": _limits.MAX_HORIZON,
    "horizons": _limits.MAX_HORIZON,
}
_INDEX_RE = re.compile(r"(\[\d+\])+$")


def check_positive_int(value: object, key: str, maximum: int | None = None) -> int:
    """``value`` as an int between 1 and ``maximum``, else a ConfigError naming ``key``.

    Without ``maximum``, the bound of the field ``key`` names (days of history: 36500,
    horizons: 1000; see :mod:`forexgrid._limits`), else the largest database integer.
    """
    if maximum is None:
        field = _INDEX_RE.sub("", key).rsplit(".", 1)[-1]
        maximum = _MAXIMUM.get(field, 2**63 - 1)
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigError(
            f"{key}: expected an integer between 1 and {maximum}, got {quote_input(value)}"
        )
    return value


def check_encoder(value: object, key: str) -> str:
    if isinstance(value, str) and value.strip().lower() in ENCODERS:
        return value.strip().lower()
    raise ConfigError(
        f"{key}: unknown encoder {quote_input(value)}; expected one of {', '.join(ENCODERS)}"
    )


def check_indicator_timeframes(value: object, timeframe: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{key}: expected a list of timeframes such as ['4h', '1d'], got {quote_input(value)}"
        )
    base = timeframe_delta(timeframe)
    out: set[str] = set()
    for i, item in enumerate(value):
        canonical = check_timeframe(item, f"{key}[{i}]", trainable=False)
        if timeframe_delta(canonical) <= base:
            raise ConfigError(
                f"{key}[{i}]: indicator timeframe {quote_input(item)} must be higher than the "
                f"configuration's timeframe {timeframe}"
            )
        out.add(canonical)
    # Sorted fine to coarse and deduplicated: the order a user lists them in must not make a
    # different configuration (or a different feature column order).
    order = list(TIMEFRAMES)
    return tuple(sorted(out, key=order.index))


def check_hyperparameters(model_type: str, value: object, key: str) -> FrozenParams:
    if isinstance(value, FrozenParams):
        value = dict(value)
    elif value is not None and not isinstance(value, Mapping):
        # Also accepts the (name, value) pairs that to_dict() never writes but a user may.
        try:
            value = dict(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{key}: expected a mapping of name -> value, got {quote_input(value)}"
            ) from exc
    params = normalize_hyperparameters(model_type, value, key=key)  # type: ignore[arg-type]
    if params:
        # Values are checked by the library itself (cached per distinct set); skipped when
        # empty so building default configurations never imports xgboost or lightgbm.
        params = validate_hyperparameters(model_type, params, key=key)
    return FrozenParams(params)
