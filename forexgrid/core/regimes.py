"""Market regimes: causal indicators, the rule language and per-bar regime masks.

A regime is a named set of rules, one condition per indicator, all ANDed, for example
``{"trend_strength": "> 0.7", "returns": "> 0"}``. :func:`label_regimes` turns a list of
regimes into one boolean column per regime (multi-label: a bar may be in several regimes or
none). Every value at bar t uses bars up to and including t only, so masks computed on a
prefix of the data equal the full computation on that prefix.

The rule language is parsed by regular expressions over a fixed grammar (never ``eval``)::

    condition := OP NUMBER
               | OP NUMBER [st|nd|rd|th] percentile     (0 <= NUMBER <= 100)
               | OP NUMBER x average
               | between NUMBER and NUMBER              (inclusive, A <= B)
    OP        := > | >= | < | <= | == | !=

Words are case-insensitive and whitespace is free. See ``docs/regimes.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forexgrid._suggest import close_match
from forexgrid.core._rolling import trailing_rank
from forexgrid.exceptions import ConfigError, DataError, RuleError, quote_input

__all__ = [
    "DEFAULT_REGIMES",
    "INDICATORS",
    "Condition",
    "Regime",
    "RuleSet",
    "as_regimes",
    "check_regime_name",
    "label_regimes",
    "parse_rules",
    "regime_indicators",
    "rules_version",
]

logger = logging.getLogger(__name__)

INDICATORS: tuple[str, ...] = ("returns", "trend_strength", "volatility", "volume")
"""The indicator names rules may use, in the column order of :func:`regime_indicators`."""

OPERATORS: tuple[str, ...] = (">", ">=", "<", "<=", "==", "!=")

# Longer conditions are rejected before any matching: no legitimate condition comes close.
MAX_CONDITION_LENGTH = 200
# The factor of "OP NUMBER x average": beyond it the product can overflow float for ordinary
# indicator values, and no meaningful rule comes near it.
MAX_AVERAGE_FACTOR = 1e6
# Indicator names longer than this get no "did you mean" (difflib is slow on huge strings).
_MAX_SUGGEST_LENGTH = 100

_EXPECTED = (
    "expected 'OP NUMBER', 'OP NUMBERth percentile', 'OP NUMBERx average' or "
    "'between A and B' (OP one of > >= < <= == !=)"
)

# ASCII only: Python's \d and float() also accept other scripts' digits, which no user means.
_OP = r"(>=|<=|==|!=|>|<)"
# nan/inf are matched on purpose so that they get a precise "not finite" message.
_NUM = r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?|[+-]?(?:nan|inf(?:inity)?))"
_FLAGS = re.IGNORECASE | re.ASCII
_VALUE_RE = re.compile(rf"\s*{_OP}\s*{_NUM}\s*", _FLAGS)
_PERCENTILE_RE = re.compile(rf"\s*{_OP}\s*{_NUM}\s*(?:st|nd|rd|th)?\s*percentile\s*", _FLAGS)
_AVERAGE_RE = re.compile(rf"\s*{_OP}\s*{_NUM}\s*x\s*average\s*", _FLAGS)
_BETWEEN_RE = re.compile(rf"\s*between\s+{_NUM}\s+and\s+{_NUM}\s*", _FLAGS)

_COMPARE = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


# --------------------------------------------------------------------------- indicators


def _check_window(name: str, value: Any, minimum: int) -> int:
    # bool is an int subclass; True as a window is always a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {quote_input(value)}")
    return int(value)


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    # pandas' rolling sum is compensated (Kahan) and computed online from the first value,
    # so it is both accurate and identical on every prefix of the series.
    return pd.Series(x).rolling(window, min_periods=window).sum().to_numpy()


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the ``window`` values before t (t excluded); NaN if any of them is NaN."""
    out = np.full(x.shape[0], np.nan)
    out[1:] = pd.Series(x[:-1]).rolling(window, min_periods=window).mean().to_numpy()
    return out


def _trend_strength(log_close: np.ndarray, window: int) -> np.ndarray:
    """R-squared of the least-squares line through each trailing window, by rolling sums."""
    n = log_close.shape[0]
    # Anchoring at the first value keeps the sums small (less cancellation) and is the same
    # for every prefix, so the result stays causal to the last bit.
    y = log_close - log_close[0]
    i = np.arange(n, dtype=float)
    s_y = _rolling_sum(y, window)
    s_yy = _rolling_sum(y * y, window)
    s_iy = _rolling_sum(i * y, window)
    # Centre x on the window's mean position: sum((i - c) * y) = sum(i * y) - c * sum(y).
    centre = i - (window - 1) / 2.0
    sxy = s_iy - centre * s_y
    syy = s_yy - s_y * s_y / window
    sxx = window * (window * window - 1) / 12.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = sxy * sxy / (sxx * syy)
    # A constant window has no trend; its computed variance is rounding noise, not signal.
    flat = syy <= 1e3 * np.finfo(float).eps * np.abs(s_yy)
    r2 = np.where(flat & ~np.isnan(syy), 0.0, r2)
    return np.clip(r2, 0.0, 1.0)


def regime_indicators(
    bars: pd.DataFrame,
    trend_window: int = 50,
    volatility_window: int = 20,
    percentile_window: int = 500,
    volume_window: int = 20,
) -> pd.DataFrame:
    """Compute the causal regime indicators of a bar series.

    With ``c`` the close, ``v`` the volume, ``W`` the trend window, ``V`` the volatility
    window and ``A`` the volume window, at bar t:

    - ``returns = log(c[t] / c[t-W+1])``, the log return over the trend window's closes;
    - ``trend_strength`` = R-squared (0..1) of a least-squares line through ``log c`` over
      bars ``t-W+1..t`` (0 for a constant window);
    - ``volatility`` = standard deviation (ddof=1) of the ``V`` log returns ending at t;
    - ``volume = v[t] / mean(v[t-A..t-1])``: the bar's volume against the mean of the ``A``
      bars *before* it (t excluded, so a spike does not dilute its own baseline; the
      ``x average`` rule form uses the same convention). A zero mean gives NaN.

    Each column is NaN while its window is filling.

    Parameters
    ----------
    bars
        Bars with at least ``close`` and ``volume`` columns (positive, finite closes).
    trend_window
        Bars in the trend window (>= 3).
    volatility_window
        Log returns in the volatility window (>= 2).
    percentile_window
        Accepted for symmetry with :func:`label_regimes` (the percentile rank of the rule
        language is computed on demand), validated (>= 1) and otherwise unused.
    volume_window
        Bars in the volume baseline (>= 1).

    Returns
    -------
    pandas.DataFrame
        float64 columns ``returns, trend_strength, volatility, volume``, indexed like bars.

    Raises
    ------
    DataError
        If ``bars`` is not a DataFrame, lacks ``close`` or ``volume``, or has a close that is
        not a positive finite number.
    ConfigError
        If a window is not an integer at or above its minimum.
    """
    trend_window = _check_window("trend_window", trend_window, 3)
    volatility_window = _check_window("volatility_window", volatility_window, 2)
    _check_window("percentile_window", percentile_window, 1)
    volume_window = _check_window("volume_window", volume_window, 1)
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in ("close", "volume") if c not in bars.columns]
    if missing:
        raise DataError(
            f"bars: missing column(s) {', '.join(missing)}; regime indicators need "
            f"'close' and 'volume' (got columns {list(bars.columns)})"
        )
    close = bars["close"].to_numpy(dtype=float)
    volume = bars["volume"].to_numpy(dtype=float)
    bad = ~(np.isfinite(close) & (close > 0))
    if bad.any():
        at = int(np.argmax(bad))
        raise DataError(
            f"bars: close must be a positive finite number, got {float(close[at])!r} at "
            f"{bars.index[at]} (row {at})"
        )
    n = close.shape[0]
    log_close = np.log(close)

    returns = np.full(n, np.nan)
    if n >= trend_window:
        returns[trend_window - 1 :] = (
            log_close[trend_window - 1 :] - log_close[: n - trend_window + 1]
        )

    trend = _trend_strength(log_close, trend_window) if n else np.empty(0)

    log_ret = np.concatenate(([np.nan], np.diff(log_close)))
    volatility = (
        pd.Series(log_ret).rolling(volatility_window, min_periods=volatility_window).std()
    ).to_numpy()

    baseline = _trailing_mean(volume, volume_window)
    # A spike over a tiny baseline may overflow to inf: still "far above average".
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        vol_ratio = volume / np.where(baseline == 0, np.nan, baseline)

    return pd.DataFrame(
        {
            "returns": returns,
            "trend_strength": trend,
            "volatility": volatility,
            "volume": vol_ratio,
        },
        index=bars.index,
    )


# --------------------------------------------------------------------------- rule language


@dataclass(frozen=True)
class Condition:
    """One parsed condition of a rule set.

    Attributes
    ----------
    indicator
        One of :data:`INDICATORS`.
    op
        One of ``> >= < <= == !=``, or ``"between"``.
    kind
        ``"value"``, ``"percentile"``, ``"average"`` or ``"between"``.
    numbers
        The number (``(x,)``), or the bounds ``(a, b)`` for ``between``.
    text
        The condition as the user wrote it.
    """

    indicator: str
    op: str
    kind: str
    numbers: tuple[float, ...]
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        x = self.numbers[0]
        if self.kind == "between":
            return f"{self.indicator} between {x:g} and {self.numbers[1]:g}"
        suffix = {"value": "", "percentile": "th percentile", "average": "x average"}[self.kind]
        return f"{self.indicator} {self.op} {x:g}{suffix}"


class _Derived:
    """An indicator frame plus the derived series rules compare against, each computed once.

    The percentile rank and the trailing average of an indicator are costly (O(n * window))
    and shared by many rules and regimes, so they are memoised per indicator.
    """

    def __init__(self, indicators: pd.DataFrame, percentile_window: int, volume_window: int):
        self.indicators = indicators
        self.percentile_window = percentile_window
        self.volume_window = volume_window
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def values(self, indicator: str) -> np.ndarray:
        return self.indicators[indicator].to_numpy(dtype=float)

    def percentile_score(self, indicator: str) -> np.ndarray:
        """100 x (count below + half the ties) among the previous values: exact integers."""
        key = ("percentile", indicator)
        if key not in self._cache:
            window = self.percentile_window
            rank = trailing_rank(self.values(indicator), window)
            # rank is (less + equal/2) / window rounded; recovering the half-integer count
            # lets "== 50th percentile" and the like compare exactly against NUMBER * window.
            self._cache[key] = np.round(rank * (2 * window)) * 50.0
        return self._cache[key]

    def average(self, indicator: str) -> np.ndarray:
        key = ("average", indicator)
        if key not in self._cache:
            self._cache[key] = _trailing_mean(self.values(indicator), self.volume_window)
        return self._cache[key]


@dataclass(frozen=True)
class RuleSet:
    """The parsed rules of one regime: conditions on indicators, all ANDed.

    Build it with :func:`parse_rules`.
    """

    name: str
    conditions: tuple[Condition, ...]

    def evaluate(
        self,
        indicators: pd.DataFrame,
        percentile_window: int = 500,
        volume_window: int = 20,
    ) -> np.ndarray:
        """Return the boolean mask of the bars where every condition holds.

        A condition is False wherever its indicator, its percentile rank or its trailing
        average is NaN (including ``!=``).

        Parameters
        ----------
        indicators
            A frame from :func:`regime_indicators`.
        percentile_window
            Previous values an ``OP NUMBERth percentile`` condition ranks against (>= 1).
        volume_window
            Previous values an ``OP NUMBERx average`` condition averages (>= 1).

        Returns
        -------
        numpy.ndarray
            bool array of length ``len(indicators)``.

        Raises
        ------
        RuleError
            If ``indicators`` lacks a column a condition uses.
        ConfigError
            If a window is not a positive integer.
        """
        derived = _Derived(
            indicators,
            _check_window("percentile_window", percentile_window, 1),
            _check_window("volume_window", volume_window, 1),
        )
        return self._mask(derived)

    def _mask(self, derived: _Derived) -> np.ndarray:
        frame = derived.indicators
        mask = np.ones(len(frame), dtype=bool)
        for cond in self.conditions:
            if cond.indicator not in frame.columns:
                raise RuleError(
                    f"regime {quote_input(self.name)}: rule {cond.indicator!r}: the indicator "
                    f"frame has no column {cond.indicator!r} (columns: "
                    f"{quote_input(list(frame.columns))})"
                )
            x = derived.values(cond.indicator)
            # The factor is bounded at parsing, but an infinite or huge average (a volume
            # spike over a near-zero baseline) still makes inf or nan here: inf compares as
            # the exact product would, and nan satisfies nothing (below).
            with np.errstate(invalid="ignore", over="ignore"):
                if cond.kind == "value":
                    lhs, rhs = x, cond.numbers[0]
                elif cond.kind == "percentile":
                    lhs, rhs = (
                        derived.percentile_score(cond.indicator),
                        (cond.numbers[0] * derived.percentile_window),
                    )
                elif cond.kind == "average":
                    lhs, rhs = x, cond.numbers[0] * derived.average(cond.indicator)
                else:  # between, inclusive
                    mask &= (x >= cond.numbers[0]) & (x <= cond.numbers[1])
                    continue
                hit = _COMPARE[cond.op](lhs, rhs)
            # NaN != x is True in IEEE arithmetic; an unknown indicator value satisfies nothing.
            mask &= hit & ~np.isnan(lhs) & ~np.isnan(rhs)
        return mask


def _number(token: str, prefix: str, text: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise RuleError(
            f"{prefix}number {quote_input(token)} in {quote_input(text)} is not finite; "
            f"{_EXPECTED}"
        )
    return value


def _parse_condition(name: str, indicator: str, text: Any) -> Condition:
    prefix = f"regime {quote_input(name)}: rule {quote_input(indicator)}: "
    if not isinstance(text, str):
        raise RuleError(
            f"{prefix}condition must be a string such as '> 0.7', got {quote_input(text)} "
            f"({type(text).__name__})"
        )
    if len(text) > MAX_CONDITION_LENGTH:
        raise RuleError(
            f"{prefix}condition is {len(text):,} characters long, at most "
            f"{MAX_CONDITION_LENGTH} allowed (starts {text[:40]!r})"
        )
    m = _BETWEEN_RE.fullmatch(text)
    if m:
        low, high = (_number(tok, prefix, text) for tok in m.groups())
        if low > high:
            raise RuleError(
                f"{prefix}{quote_input(text)}: the lower bound {low:g} is above the upper "
                f"bound {high:g}; write 'between A and B' with A <= B"
            )
        return Condition(indicator, "between", "between", (low, high), text)
    for kind, regex in (
        ("value", _VALUE_RE),
        ("percentile", _PERCENTILE_RE),
        ("average", _AVERAGE_RE),
    ):
        m = regex.fullmatch(text)
        if m:
            op, token = m.groups()
            number = _number(token, prefix, text)
            if kind == "percentile" and not 0.0 <= number <= 100.0:
                raise RuleError(
                    f"{prefix}{quote_input(text)}: percentile must be between 0 and 100, got "
                    f"{number:g}"
                )
            if kind == "average" and not abs(number) <= MAX_AVERAGE_FACTOR:
                raise RuleError(
                    f"{prefix}{quote_input(text)}: the average factor must be between "
                    f"{-MAX_AVERAGE_FACTOR:,.0f} and {MAX_AVERAGE_FACTOR:,.0f}, got {number:g}"
                )
            return Condition(indicator, op, kind, (number,), text)
    raise RuleError(f"{prefix}cannot parse {quote_input(text)}; {_EXPECTED}")


#: What a stored regime name may hold. It is a CLI argument, a column name, a chart label
#: and a key of JSON files, so it is an identifier.
REGIME_NAME_RULE = "letters, digits, '_' and '-' only, e.g. 'high_vol-breakout'"
_REGIME_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def check_regime_name(name: Any) -> str:
    """Return ``name`` after checking it is an identifier: ASCII letters, digits, ``_``, ``-``.

    The default names (``bull_trending``, ...) pass. Stored regimes are checked when they
    are added or renamed; names in older databases and checkpoints are still read.

    Raises
    ------
    RuleError
        If ``name`` is not a non-empty string of those characters; the message names the
        first character that is not allowed.
    """
    _check_name(name)
    if not _REGIME_NAME.fullmatch(name):
        bad = next(c for c in name if not _REGIME_NAME.fullmatch(c))
        raise RuleError(
            f"regime name {quote_input(name)}: {bad!r} is not allowed; a regime name is "
            f"an identifier: {REGIME_NAME_RULE}"
        )
    return name


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"regime name must be a non-empty string, got {quote_input(name)}")
    return name


class _DuplicateKeyError(ValueError):
    """A key given twice in a rules JSON object."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicated keys silently; a rule must not vanish silently.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate key {quote_input(key)}")
        out[key] = value
    return out


def _rules_dict(name: str, rules: Any) -> dict[str, Any]:
    """Return ``rules`` as a dict, decoding a JSON string; RuleError otherwise."""
    shown = quote_input(name)
    if isinstance(rules, str):
        try:
            rules = json.loads(rules, object_pairs_hook=_reject_duplicate_keys)
        except (ValueError, RecursionError) as exc:
            # JSONDecodeError is a ValueError (so is Python's refusal of an integer of more
            # than 4300 digits); RecursionError comes from absurd nesting.
            if isinstance(exc, RecursionError):
                reason = "nested too deeply"
            elif isinstance(exc, (json.JSONDecodeError, _DuplicateKeyError)):
                reason = str(exc)
            else:
                reason = "a number of more than 4300 digits"
            raise RuleError(
                f"regime {shown}: rules are not valid JSON ({reason}); expected an object "
                'such as {"trend_strength": "> 0.7"}'
            ) from exc
    if not isinstance(rules, Mapping):
        raise RuleError(
            f"regime {shown}: rules must be a JSON object (dict) of indicator -> condition, "
            f"got {type(rules).__name__}"
        )
    if not rules:
        raise RuleError(
            f"regime {shown}: no rules; give at least one indicator -> condition, such as "
            '{"trend_strength": "> 0.7"}'
        )
    return dict(rules)


def parse_rules(name: str, rules: Mapping[str, str] | str) -> RuleSet:
    """Parse the rules of a regime.

    Parameters
    ----------
    name
        The regime's name (used in error messages and as the mask's column name).
    rules
        A mapping ``indicator -> condition string``, or the same as a JSON object string.

    Returns
    -------
    RuleSet
        The parsed conditions, in the order given.

    Raises
    ------
    RuleError
        If the name is empty, the rules are not a non-empty JSON object, an indicator is
        unknown, or a condition is not a string of the grammar (see module docstring) with
        finite numbers, a percentile in 0..100 and ``between`` bounds in order.
    """
    name = _check_name(name)
    conditions = []
    for key, text in _rules_dict(name, rules).items():
        if not isinstance(key, str):
            raise RuleError(
                f"regime {quote_input(name)}: indicator names must be strings, got "
                f"{quote_input(key)} ({type(key).__name__})"
            )
        if key not in INDICATORS:
            close = None
            if len(key) <= _MAX_SUGGEST_LENGTH:
                close = close_match(key, INDICATORS)
                # difflib misses short prefixes ('trend'); a unique prefix of 3 or more
                # characters is a good guess (a single letter is not).
                prefixed = [i for i in INDICATORS if len(key) >= 3 and i.startswith(key.lower())]
                close = close or (prefixed[0] if len(prefixed) == 1 else None)
            hint = f"; did you mean {close!r}?" if close else ""
            raise RuleError(
                f"regime {quote_input(name)}: unknown indicator {quote_input(key)}{hint} "
                f"(known: {', '.join(INDICATORS)})"
            )
        conditions.append(_parse_condition(name, key, text))
    return RuleSet(name, tuple(conditions))


# --------------------------------------------------------------------------- regimes


@dataclass(frozen=True)
class Regime:
    """A named market regime.

    Attributes
    ----------
    name
        Unique name, the column name in :func:`label_regimes`.
    rules
        The rules as a dict ``indicator -> condition`` (a JSON string is decoded). Validated
        at construction; the parsed form is :attr:`ruleset`.
    description
        Free text for people.
    active
        Inactive regimes are skipped by :func:`label_regimes`.

    Raises
    ------
    RuleError
        At construction, if the name, rules, description or active flag is invalid.
    """

    name: str
    rules: dict[str, str]
    description: str = ""
    active: bool = True
    ruleset: RuleSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ruleset = parse_rules(self.name, self.rules)
        if not isinstance(self.description, str):
            raise RuleError(
                f"regime {quote_input(self.name)}: description must be a string, got "
                f"{type(self.description).__name__}"
            )
        if not isinstance(self.active, (bool, np.bool_)):
            raise RuleError(
                f"regime {quote_input(self.name)}: active must be true or false, got "
                f"{quote_input(self.active)}"
            )
        # Frozen: set the normalised fields through object.__setattr__. The copy keeps the
        # regime independent of later changes to the caller's dict.
        object.__setattr__(self, "rules", _rules_dict(self.name, self.rules))
        object.__setattr__(self, "active", bool(self.active))
        object.__setattr__(self, "ruleset", ruleset)

    def __hash__(self) -> int:
        # The rules dict is unhashable; hash its canonical JSON instead.
        return hash(
            (self.name, json.dumps(self.rules, sort_keys=True), self.description, self.active)
        )


DEFAULT_REGIMES: tuple[Regime, ...] = (
    Regime(
        "bull_trending",
        {"trend_strength": "> 0.7", "returns": "> 0"},
        "Strong upward trend",
    ),
    Regime(
        "bear_trending",
        {"trend_strength": "> 0.7", "returns": "< 0"},
        "Strong downward trend",
    ),
    Regime(
        "volatile_ranging",
        {"trend_strength": "< 0.3", "volatility": "> 75th percentile"},
        "High volatility, no trend",
    ),
    Regime(
        "calm_ranging",
        {"trend_strength": "< 0.3", "volatility": "< 50th percentile"},
        "Low volatility consolidation",
    ),
)
"""The four default regimes of DESIGN.md, all active."""


def rules_version(regime: Regime | None, **windows: int) -> str:
    """A short identity of what a regime's mask measures: its rules and indicator windows.

    Results scored under different versions of a regime measure different bars and are
    never ranked against each other. Renaming a regime or editing its description keeps
    its version; editing its rules or the indicator windows changes it.

    Parameters
    ----------
    regime
        The regime; None for the pseudo-regime ``all`` (every bar), whose version is
        ``"all"``.
    **windows
        The indicator windows the masks are computed with (``trend_window``,
        ``volatility_window``, ``percentile_window``, ``volume_window``).

    Returns
    -------
    str
        12 hexadecimal characters of a SHA-256 of the canonical JSON, or ``"all"``.
    """
    if regime is None:
        return "all"
    text = json.dumps(
        {"rules": regime.rules, "windows": {k: int(v) for k, v in windows.items()}},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def as_regimes(regimes: Iterable[Regime] | Mapping[str, Any]) -> list[Regime]:
    """The regimes as :class:`Regime` objects (a mapping name -> rules is converted).

    Raises
    ------
    RuleError
        If an item is not a regime, a rule is invalid, or two regimes share a name.
    """
    if isinstance(regimes, Regime):
        regimes = [regimes]
    if isinstance(regimes, Mapping):
        out = [r if isinstance(r, Regime) else Regime(name, r) for name, r in regimes.items()]
    elif isinstance(regimes, (str, bytes)) or not isinstance(regimes, Iterable):
        raise RuleError(
            "regimes must be Regime objects or a mapping of name -> rules, got "
            f"{type(regimes).__name__}"
        )
    else:
        out = list(regimes)
        for i, r in enumerate(out):
            if not isinstance(r, Regime):
                raise RuleError(
                    f"regimes[{i}]: expected a Regime (or pass a mapping of name -> rules), "
                    f"got {type(r).__name__}"
                )
    seen: set[str] = set()
    for r in out:
        if r.name in seen:
            raise RuleError(
                f"regime {quote_input(r.name)} is defined twice; regime names must be unique"
            )
        seen.add(r.name)
    return out


def label_regimes(
    bars: pd.DataFrame,
    regimes: Iterable[Regime] | Mapping[str, Any] = DEFAULT_REGIMES,
    *,
    trend_window: int = 50,
    volatility_window: int = 20,
    percentile_window: int = 500,
    volume_window: int = 20,
) -> pd.DataFrame:
    """Label each bar with the regimes whose rules hold there.

    Parameters
    ----------
    bars
        Bars with ``close`` and ``volume`` columns.
    regimes
        :class:`Regime` objects, or a mapping ``name -> rules`` (dict or JSON string).
        Inactive regimes are skipped.
    trend_window, volatility_window, percentile_window, volume_window
        Windows of :func:`regime_indicators` and of the percentile and average rule forms.

    Returns
    -------
    pandas.DataFrame
        One bool column per active regime (in the order given), indexed like ``bars``.
        A bar may be in several regimes or in none; warm-up bars are in none.

    Raises
    ------
    RuleError
        If a regime is malformed or two regimes share a name.
    DataError
        If the bars lack ``close``/``volume`` or have a non-positive close.
    ConfigError
        If a window is invalid.
    """
    active = [r for r in as_regimes(regimes) if r.active]
    indicators = regime_indicators(
        bars,
        trend_window=trend_window,
        volatility_window=volatility_window,
        percentile_window=percentile_window,
        volume_window=volume_window,
    )
    # One _Derived for all regimes: each indicator's percentile rank is computed once.
    derived = _Derived(indicators, percentile_window, volume_window)
    masks = {r.name: r.ruleset._mask(derived) for r in active}
    logger.debug(
        "labelled %d bars with %d regimes: %s",
        len(indicators),
        len(active),
        {k: int(v.sum()) for k, v in masks.items()},
    )
    return pd.DataFrame(masks, index=bars.index, dtype=bool)
