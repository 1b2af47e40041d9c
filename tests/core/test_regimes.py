"""Tests of forexgrid.core.regimes: indicators, the rule language and regime masks."""

from __future__ import annotations

import json
import math
import operator
import re
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import linregress

import forexgrid.core.regimes as regimes_mod
from forexgrid.core.regimes import (
    DEFAULT_REGIMES,
    INDICATORS,
    Condition,
    Regime,
    RuleSet,
    label_regimes,
    parse_rules,
    regime_indicators,
)
from forexgrid.exceptions import ConfigError, DataError, RuleError

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "forexgrid"
    / "data"
    / "samples"
    / "EURUSD_1h_2017_dukascopy.csv"
)
EXPECTED = (
    "expected 'OP NUMBER', 'OP NUMBERth percentile', 'OP NUMBERx average' or "
    "'between A and B' (OP one of > >= < <= == !=)"
)
NAN = np.nan


@pytest.fixture(scope="module")
def real_bars() -> pd.DataFrame:
    """The bundled 2017 EURUSD 1h sample (6,225 real bars)."""
    try:
        from forexgrid.data._formats import read_bars
    except ImportError:  # the reader is written by another helper; read the CSV directly
        df = pd.read_csv(SAMPLE)
        df.index = pd.to_datetime(df.pop("Time"), format="%d.%m.%Y %H:%M:%S.%f", utc=True)
        df.columns = [c.lower() for c in df.columns]
        return df.astype("float64")
    return read_bars(SAMPLE)


def make_bars(close, volume=None) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    if volume is None:
        volume = np.ones_like(close)
    index = pd.date_range("2020-01-06", periods=close.size, freq="h", tz="UTC")
    return pd.DataFrame(
        {"close": close, "volume": np.asarray(volume, dtype=float)},
        index=index,
    )


def random_bars(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    return make_bars(close, rng.uniform(100, 200, n))


# --------------------------------------------------------------------------- causality


@pytest.mark.parametrize("cut", [700, 1500, 3000], ids=lambda t: f"T={t}")
def test_prefix_equals_full_computation(real_bars, cut):
    full_ind = regime_indicators(real_bars)
    part_ind = regime_indicators(real_bars.iloc[:cut])
    np.testing.assert_array_equal(part_ind.to_numpy(), full_ind.iloc[:cut].to_numpy())
    full = label_regimes(real_bars)
    part = label_regimes(real_bars.iloc[:cut])
    pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_changing_future_bars_changes_nothing_before(real_bars):
    cut = 2000
    changed = real_bars.copy()
    rng = np.random.default_rng(1)
    changed.iloc[cut:, changed.columns.get_loc("close")] *= rng.uniform(
        0.9, 1.1, len(changed) - cut
    )
    changed.iloc[cut:, changed.columns.get_loc("volume")] *= 7.0
    a, b = label_regimes(real_bars), label_regimes(changed)
    pd.testing.assert_frame_equal(a.iloc[:cut], b.iloc[:cut])
    assert not a.iloc[cut:].equals(b.iloc[cut:])  # the change is visible from the cut on
    ia, ib = regime_indicators(real_bars), regime_indicators(changed)
    np.testing.assert_array_equal(ia.iloc[:cut].to_numpy(), ib.iloc[:cut].to_numpy())


# --------------------------------------------------------------------------- reference values


@pytest.mark.parametrize("t", [49, 50, 777, 3001, 6224], ids=lambda t: f"t={t}")
def test_trend_strength_equals_linregress(real_bars, t):
    ind = regime_indicators(real_bars)
    y = np.log(real_bars["close"].to_numpy()[t - 49 : t + 1])
    expected = linregress(np.arange(50), y).rvalue ** 2
    assert ind["trend_strength"].iat[t] == pytest.approx(expected, abs=1e-10)


def test_trend_strength_other_window_and_long_series():
    bars = random_bars(60_000, seed=3)
    ind = regime_indicators(bars, trend_window=7)
    y = np.log(bars["close"].to_numpy())
    for t in (6, 7, 30_000, 59_999):
        expected = linregress(np.arange(7), y[t - 6 : t + 1]).rvalue ** 2
        assert ind["trend_strength"].iat[t] == pytest.approx(expected, abs=1e-8)


def test_trend_strength_of_line_is_one_and_constant_window_is_zero():
    close = np.concatenate([np.exp(np.linspace(0.0, 0.1, 60)), np.full(60, 1.3)])
    ts = regime_indicators(make_bars(close), trend_window=10)["trend_strength"].to_numpy()
    assert np.isnan(ts[:9]).all()
    np.testing.assert_allclose(ts[9:60], 1.0, atol=1e-9)
    np.testing.assert_array_equal(ts[69:], 0.0)  # windows wholly inside the flat stretch
    assert np.all((ts[9:] >= 0) & (ts[9:] <= 1))


def test_returns_volatility_and_volume_by_hand():
    close = [1.0, 1.1, 1.21, 1.0, 1.5, 1.5, 1.2, 1.3]
    volume = [10, 20, 30, 40, 0, 0, 0, 5]
    ind = regime_indicators(make_bars(close, volume), trend_window=3, volatility_window=2)
    ind = ind.set_axis(range(8))
    np.testing.assert_allclose(
        ind["returns"],
        [
            NAN,
            NAN,
            math.log(1.21),
            math.log(1.0 / 1.1),
            math.log(1.5 / 1.21),
            math.log(1.5 / 1.0),
            math.log(1.2 / 1.5),
            math.log(1.3 / 1.5),
        ],
        rtol=1e-8,
    )
    lr = np.diff(np.log(close))
    expected_vol = [NAN, NAN] + [np.std(lr[i - 1 : i + 1], ddof=1) for i in range(1, 7)]
    np.testing.assert_allclose(ind["volatility"], expected_vol, rtol=1e-10)
    # volume[t] / mean of the 20 (here 20 = default) previous volumes: too few -> NaN
    assert ind["volume"].isna().all()
    ratio = regime_indicators(make_bars(close, volume), trend_window=3, volume_window=3)["volume"]
    # t=3: 40 / mean(10, 20, 30); t=4..6: 0 / positive; t=7: 5 / mean(0, 0, 0) -> NaN, not inf
    np.testing.assert_array_equal(ratio.to_numpy(), [NAN, NAN, NAN, 2.0, 0.0, 0.0, 0.0, NAN])


def test_indicator_frame_shape_and_index(real_bars):
    ind = regime_indicators(real_bars)
    assert list(ind.columns) == list(INDICATORS)
    assert ind.index.equals(real_bars.index)
    assert (ind.dtypes == "float64").all()
    # NaN exactly while each window fills (default windows 50, 20, -, 20)
    assert ind["returns"].isna().sum() == 49
    assert ind["trend_strength"].isna().sum() == 49
    assert ind["volatility"].isna().sum() == 20
    assert ind["volume"].isna().sum() == 20


def slow_rank(values, t, window):
    """Exact percentile rank (a Fraction in 0..100) of values[t] among the window before t."""
    prev = values[t - window : t]
    if t < window or np.isnan(values[t]) or np.isnan(prev).any():
        return None
    less = sum(1 for v in prev if v < values[t])
    equal = sum(1 for v in prev if v == values[t])
    return Fraction(100) * (Fraction(less) + Fraction(equal, 2)) / window


@pytest.mark.parametrize("window", [1, 3, 8], ids=lambda w: f"W={w}")
@pytest.mark.parametrize("pct", [0, 12.5, 25, 50, 75, 100], ids=lambda p: f"p={p}")
@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_percentile_rule_matches_slow_loop(window, pct, op):
    rng = np.random.default_rng(window)
    values = rng.integers(0, 4, 60).astype(float)  # many ties
    values[[5, 33]] = np.nan
    frame = pd.DataFrame({"volatility": values})
    mask = parse_rules("r", {"volatility": f"{op} {pct}th percentile"}).evaluate(
        frame, percentile_window=window, volume_window=2
    )
    cmp = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
    cmp |= {"==": operator.eq, "!=": operator.ne}
    expected = []
    for t in range(60):
        rank = slow_rank(values, t, window)
        expected.append(rank is not None and cmp[op](rank, Fraction(pct)))
    np.testing.assert_array_equal(mask, expected)


# --------------------------------------------------------------------------- shares on real data

# DESIGN.md: roughly bull 15%, bear 11%, volatile ranging 9%, calm ranging 19% of bars.
DESIGN_SHARES = {
    "bull_trending": 0.15,
    "bear_trending": 0.11,
    "volatile_ranging": 0.09,
    "calm_ranging": 0.19,
}


def test_default_regime_shares_on_real_sample(real_bars):
    masks = label_regimes(real_bars)
    shares = masks.mean()
    print("\nshare of bars per default regime:", shares.round(4).to_dict())
    assert list(masks.columns) == list(DESIGN_SHARES)
    for name, expected in DESIGN_SHARES.items():
        assert abs(shares[name] - expected) <= 0.06, (name, shares[name])
    # bull and bear exclude each other; trending and ranging exclude each other
    assert not (masks["bull_trending"] & masks["bear_trending"]).any()
    assert not (masks["bull_trending"] & masks["calm_ranging"]).any()
    assert not (masks["volatile_ranging"] & masks["calm_ranging"]).any()
    # the warm-up (percentile needs 20 + 500 bars) is in no ranging regime
    assert not masks[["volatile_ranging", "calm_ranging"]].iloc[:520].any().any()
    assert masks[["volatile_ranging", "calm_ranging"]].iloc[520:].any().all()


# --------------------------------------------------------------------------- rule forms

# A hand-built indicator frame (percentile_window=4, volume_window=2 in evaluate).
FRAME = pd.DataFrame(
    {
        "returns": [NAN, -2, -1, 0, 1, 2, 3, 0],
        "trend_strength": [0.1, 0.2, 0.8, 0.9, 0.5, 0.7, 0.71, NAN],
        # percentile ranks (W=4): NaN x4, then 100, 37.5, 25, 0
        "volatility": [4, 1, 3, 2, 5, 2, 2, 0],
        # trailing mean of the 2 previous: NaN, NaN, 2, 2.5, 3, 2.5, NaN, NaN
        "volume": [1, 3, 2, 4, 1, NAN, 2, 2],
    },
    dtype=float,
)


def bits(s: str) -> list[bool]:
    return [c == "1" for c in s]


RULE_CASES = [
    ({"returns": "> 0"}, "00001110", "gt"),
    ({"returns": ">= 0"}, "00011111", "ge"),
    ({"returns": "< 0"}, "01100000", "lt"),
    ({"returns": "<= -1"}, "01100000", "le-negative"),
    ({"returns": "== 0"}, "00010001", "eq"),
    ({"returns": "!= 0"}, "01101110", "ne-nan-is-false"),
    ({"returns": "> 1.5e0"}, "00000110", "exponent"),
    ({"returns": "> -15E-1"}, "00111111", "negative-exponent"),
    ({"returns": "> +.5"}, "00001110", "leading-dot-plus"),
    ({"returns": "> 2."}, "00000010", "trailing-dot"),
    ({"trend_strength": "> 0.7"}, "00110010", "strict-threshold"),
    ({"returns": "between -1 and 1"}, "00111001", "between-inclusive"),
    ({"returns": "between 0 and 0"}, "00010001", "between-point"),
    ({"returns": "between -1e9 and 1e9"}, "01111111", "between-wide"),
    ({"volatility": "> 75th percentile"}, "00001000", "pct-gt"),
    ({"volatility": ">= 37.5th percentile"}, "00001100", "pct-fraction"),
    ({"volatility": "== 25th percentile"}, "00000010", "pct-eq"),
    ({"volatility": "!= 25th percentile"}, "00001101", "pct-ne"),
    ({"volatility": "< 1st percentile"}, "00000001", "pct-1st"),
    ({"volatility": "> 2nd percentile"}, "00001110", "pct-2nd"),
    ({"volatility": "> 3rd percentile"}, "00001110", "pct-3rd"),
    ({"volatility": "<= 100th percentile"}, "00001111", "pct-100"),
    ({"volatility": ">= 0th percentile"}, "00001111", "pct-0"),
    ({"volatility": "> 50.5th percentile"}, "00001000", "pct-50.5"),
    ({"volatility": "> 30 percentile"}, "00001100", "pct-no-suffix"),
    ({"volume": "> 1x average"}, "00010000", "avg-gt"),
    ({"volume": ">= 1x average"}, "00110000", "avg-ge"),
    ({"volume": "< 0.5x average"}, "00001000", "avg-lt"),
    ({"volume": "> 1.5x average"}, "00010000", "avg-1.5"),
    ({"volume": "== 1x average"}, "00100000", "avg-eq"),
    ({"volume": "!= 1x average"}, "00011000", "avg-ne-nan-is-false"),
    ({"returns": "> 0.5x average"}, "00011110", "avg-other-indicator"),
    ({"returns": "  >=   0  "}, "00011111", "spaces"),
    ({"returns": "\t>0\n"}, "00001110", "tab-newline-no-space"),
    ({"returns": "BETWEEN -1 AND 1"}, "00111001", "upper-case"),
    ({"volatility": ">75TH Percentile"}, "00001000", "mixed-case-percentile"),
    ({"volatility": "> 75 th   percentile"}, "00001000", "spaced-suffix"),
    ({"volume": "> 1.5 X Average"}, "00010000", "mixed-case-average"),
    ({"volume": ">1.5xaverage"}, "00010000", "average-no-spaces"),
    ({"returns": ">= 0", "trend_strength": "> 0.7"}, "00010010", "two-rules-anded"),
    (
        {"returns": ">= 0", "trend_strength": "> 0.7", "volatility": "< 30th percentile"},
        "00000010",
        "three-rules-anded",
    ),
    ('{"returns": "> 0"}', "00001110", "json-string"),
    ('  {"returns" : "between -1 and 1",\n "volume": ">= 1x average"}  ', "00110000", "json-two"),
]


@pytest.mark.parametrize(
    ("rules", "expected"), [c[:2] for c in RULE_CASES], ids=[c[2] for c in RULE_CASES]
)
def test_rule_forms_evaluate(rules, expected):
    mask = parse_rules("r", rules).evaluate(FRAME, percentile_window=4, volume_window=2)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, bits(expected))


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("> 0.7", Condition("trend_strength", ">", "value", (0.7,))),
        (" != -1e-3 ", Condition("trend_strength", "!=", "value", (-0.001,))),
        ("<= 90th percentile", Condition("trend_strength", "<=", "percentile", (90.0,))),
        ("> 2x average", Condition("trend_strength", ">", "average", (2.0,))),
        ("between 0.1 and 0.2", Condition("trend_strength", "between", "between", (0.1, 0.2))),
    ],
    ids=["value", "exponent", "percentile", "average", "between"],
)
def test_parsed_conditions(text, condition):
    ruleset = parse_rules("r", {"trend_strength": text})
    assert ruleset == RuleSet("r", (condition,))
    assert ruleset.conditions[0].text == text


def test_condition_str():
    rs = parse_rules("r", {"volatility": ">  75TH percentile", "returns": "between -1 and 2"})
    assert [str(c) for c in rs.conditions] == [
        "volatility > 75th percentile",
        "returns between -1 and 2",
    ]


# --------------------------------------------------------------------------- malformed rules


def cannot(key: str, text: str, name: str = "x") -> str:
    return f"regime {name!r}: rule {key!r}: cannot parse {text!r}; {EXPECTED}"


def not_finite(token: str, text: str) -> str:
    return f"regime 'x': rule 'returns': number {token!r} in {text!r} is not finite; {EXPECTED}"


def not_string(shown: str) -> str:
    return f"regime 'x': rule 'returns': condition must be a string such as '> 0.7', got {shown}"


def not_object(kind: str) -> str:
    return f"regime 'x': rules must be a JSON object (dict) of indicator -> condition, got {kind}"


def bad_json(reason: str) -> str:
    return (
        f"regime 'x': rules are not valid JSON ({reason}); expected an object such as "
        '{"trend_strength": "> 0.7"}'
    )


def bad_pct(text: str, got: str) -> str:
    return (
        f"regime 'x': rule 'volatility': {text!r}: percentile must be between 0 and 100, got {got}"
    )


KNOWN = "(known: returns, trend_strength, volatility, volume)"
NO_RULES = (
    "regime 'x': no rules; give at least one indicator -> condition, such as "
    '{"trend_strength": "> 0.7"}'
)
LONG = "> " + "1" * 199
# Python expressions, shell fragments, near misses of the grammar: each text is a condition
# on 'returns' that must be refused with the generic "cannot parse" message.
UNPARSABLE = {
    "python-import": "__import__('os').system('x')",
    "or-true": "> 0 or True",
    "lambda": "lambda: 1",
    "shell": "> 0; rm -rf",
    "and-chain": "> 0.7 and < 2",
    "double-gt": ">> 1",
    "reversed-ge": "=> 1",
    "single-eq": "= 1",
    "number-first": "1 < 2",
    "empty": "",
    "blank": "   ",
    "decimal-comma": "> 1,5",
    "underscore-number": "> 1_000",
    "arabic-digit": "> \u0663",
    "hex": "> 0x7",
    "avg-abbrev": "> 2 x avg",
    "between-missing": "between 1 and",
    "between-glued": "between 1and 2",
    "between-pct": "between 1 and 2 percentile",
    "attribute": "returns.__class__",
    "format-string": "> {0}",
}
BAD_RULES = [
    pytest.param(
        "breakout",
        {"volatility": "> 90th percentil"},
        cannot("volatility", "> 90th percentil", "breakout"),
        id="typo-percentile",
    ),
    *(
        pytest.param("x", {"returns": text}, cannot("returns", text), id=key)
        for key, text in UNPARSABLE.items()
    ),
    pytest.param(
        "x",
        {"volatilty": "> 1"},
        f"regime 'x': unknown indicator 'volatilty'; did you mean 'volatility'? {KNOWN}",
        id="unknown-did-you-mean",
    ),
    pytest.param(
        "x", {"rsi": "> 70"}, f"regime 'x': unknown indicator 'rsi' {KNOWN}", id="unknown-no-hint"
    ),
    pytest.param(
        "x",
        {"Trend": "> 0.7"},
        f"regime 'x': unknown indicator 'Trend'; did you mean 'trend_strength'? {KNOWN}",
        id="unknown-prefix",
    ),
    pytest.param("x", {"": "> 0.7"}, f"regime 'x': unknown indicator '' {KNOWN}", id="empty-key"),
    pytest.param("x", {"returns": "> 1e999"}, not_finite("1e999", "> 1e999"), id="overflow"),
    pytest.param("x", {"returns": "> nan"}, not_finite("nan", "> nan"), id="nan"),
    pytest.param(
        "x", {"returns": "< -Infinity"}, not_finite("-Infinity", "< -Infinity"), id="neg-inf"
    ),
    pytest.param(
        "x",
        {"returns": "between -inf and 0"},
        not_finite("-inf", "between -inf and 0"),
        id="between-inf",
    ),
    pytest.param(
        "x",
        {"returns": "between 2 and 1"},
        "regime 'x': rule 'returns': 'between 2 and 1': the lower bound 2 is above the upper "
        "bound 1; write 'between A and B' with A <= B",
        id="between-reversed",
    ),
    pytest.param(
        "x",
        {"volatility": "> 101th percentile"},
        bad_pct("> 101th percentile", "101"),
        id="pct-over-100",
    ),
    pytest.param(
        "x",
        {"volatility": "> -1st percentile"},
        bad_pct("> -1st percentile", "-1"),
        id="pct-negative",
    ),
    pytest.param(
        "x",
        {"returns": LONG},
        "regime 'x': rule 'returns': condition is 201 characters long, at most 200 allowed "
        f"(starts {LONG[:40]!r})",
        id="too-long",
    ),
    pytest.param("x", {"returns": 0.7}, not_string("0.7 (float)"), id="number"),
    pytest.param("x", {"returns": True}, not_string("True (bool)"), id="bool"),
    pytest.param("x", {"returns": None}, not_string("None (NoneType)"), id="none"),
    pytest.param("x", {"returns": ["> 0"]}, not_string("['> 0'] (list)"), id="list"),
    pytest.param("x", {"returns": {"gt": 0}}, not_string("{'gt': 0} (dict)"), id="nested"),
    pytest.param("x", '{"returns": {"gt": 0}}', not_string("{'gt': 0} (dict)"), id="json-nested"),
    pytest.param(
        "x", {1: "> 0"}, "regime 'x': indicator names must be strings, got 1 (int)", id="int-key"
    ),
    pytest.param("x", {}, NO_RULES, id="empty-dict"),
    pytest.param("x", " {} ", NO_RULES, id="empty-json"),
    pytest.param("x", ["returns", "> 0"], not_object("list"), id="list-rules"),
    pytest.param("x", None, not_object("NoneType"), id="none-rules"),
    pytest.param("x", 5, not_object("int"), id="int-rules"),
    pytest.param("x", "[1, 2]", not_object("list"), id="json-list"),
    pytest.param(
        "x",
        "{trend_strength: > 0.7}",
        bad_json("Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        id="bad-json",
    ),
    pytest.param(
        "x",
        '{"returns": "> 0", "returns": "< 0"}',
        bad_json("duplicate key 'returns'"),
        id="json-duplicate-key",
    ),
    pytest.param("x", "[" * 100_000, bad_json("nested too deeply"), id="json-deep"),
    pytest.param(
        "", {"returns": "> 0"}, "regime name must be a non-empty string, got ''", id="empty-name"
    ),
    pytest.param(
        "  ",
        {"returns": "> 0"},
        "regime name must be a non-empty string, got '  '",
        id="blank-name",
    ),
    pytest.param(
        None,
        {"returns": "> 0"},
        "regime name must be a non-empty string, got None",
        id="none-name",
    ),
]


@pytest.mark.parametrize(("name", "rules", "message"), BAD_RULES)
def test_bad_rules_raise_rule_error(name, rules, message):
    with pytest.raises(RuleError, match=f"^{re.escape(message)}$"):
        parse_rules(name, rules)
    with pytest.raises(RuleError, match=f"^{re.escape(message)}$"):
        Regime(name, rules)


# --------------------------------------------------------------------------- hostile rules

HUGE_NAME = "n" * 1_000_000
HUGE_KEY = "k" * 1_000_000


def _bad_factor(text: str, got: str) -> str:
    return (
        f"regime 'x': rule 'volume': {text!r}: the average factor must be between "
        f"-1,000,000 and 1,000,000, got {got}"
    )


HOSTILE = [
    pytest.param(
        "x", {"volume": "> -1e308x average"}, _bad_factor("> -1e308x average", "-1e+308"),
        id="average-factor-overflow",
    ),
    pytest.param(
        "x", {"volume": "< 1e308 x average"}, _bad_factor("< 1e308 x average", "1e+308"),
        id="average-factor-huge",
    ),
    pytest.param(
        "x", {"volume": "> 1000001x average"}, _bad_factor("> 1000001x average", "1e+06"),
        id="average-factor-just-above",
    ),
    pytest.param(
        "x", '{"returns": ' + "9" * 5000 + "}",
        "regime 'x': rules are not valid JSON (a number of more than 4300 digits); expected "
        'an object such as {"trend_strength": "> 0.7"}',
        id="json-huge-integer",
    ),
    pytest.param(
        "x", {"returns": 10**5000},
        "regime 'x': rule 'returns': condition must be a string such as '> 0.7', got "
        "<an integer of 5001 digits> (int)",
        id="huge-integer-condition",
    ),
    pytest.param(
        "x", {HUGE_KEY: "> 0"},
        f"regime 'x': unknown indicator {repr(HUGE_KEY)[:200]}... (1,000,000 characters) "
        f"{KNOWN}",
        id="huge-indicator-name",
    ),
    pytest.param(
        HUGE_NAME, {"returns": ">> 1"},
        f"regime {repr(HUGE_NAME)[:200]}... (1,000,000 characters): rule 'returns': cannot "
        f"parse '>> 1'; {EXPECTED}",
        id="huge-regime-name",
    ),
    pytest.param(
        "x", {"returns": "> 0" + " " * 1_000_000},
        "regime 'x': rule 'returns': condition is 1,000,003 characters long, at most 200 "
        "allowed (starts '> 0" + " " * 37 + "')",
        id="huge-condition",
    ),
    pytest.param(
        "x", "{\"a\": " * 100_000, bad_json("nested too deeply"), id="json-deep-objects",
    ),
    pytest.param(
        "x\n\x00é", {"returns": "> 0 or 1"},
        f"regime 'x\\n\\x00é': rule 'returns': cannot parse '> 0 or 1'; {EXPECTED}",
        id="control-characters-in-name",
    ),
    pytest.param(
        "x", {"returns": "> \u0661\u0662"},
        f"regime 'x': rule 'returns': cannot parse '> \u0661\u0662'; {EXPECTED}",
        id="arabic-indic-digits",
    ),
    pytest.param(
        "x", {"returns": "> １"},
        f"regime 'x': rule 'returns': cannot parse '> １'; {EXPECTED}",
        id="fullwidth-digit",
    ),
    pytest.param(
        "x", {"returns": "> 1e99999999999999999999"},
        not_finite("1e99999999999999999999", "> 1e99999999999999999999"),
        id="huge-exponent",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rules", "message"), HOSTILE)
def test_hostile_rules_give_one_bounded_rule_error(name, rules, message):
    with pytest.raises(RuleError) as info:
        parse_rules(name, rules)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 600


@pytest.mark.parametrize(
    "rules",
    [
        {"volume": "> 1000000x average", "returns": "> 1e308"},
        {"volume": "< -1000000x average"},
        {"volume": "> 0x average"},
        {"returns": "between -1e308 and 1.7976931348623157e308"},
        {"returns": "> 1e-400"},  # underflows to 0, a valid threshold
        {"volatility": "> 1e-320th percentile"},
        {"returns": "> " + "1" * 198},
    ],
    ids=["factor-limit", "negative-factor-limit", "zero-factor", "between-extremes", "underflow",
         "denormal-percentile", "198-digits"],
)  # fmt: skip
def test_extreme_valid_rules_evaluate_without_warnings(real_bars, rules):
    # Spikes of 1e300 over a baseline of 1e-300 overflow the volume ratio and the "x average"
    # products; that must stay silent too (inf compares as the true value would).
    bars = real_bars.iloc[:600].copy()
    bars["volume"] = np.where(np.arange(600) % 37 == 0, 1e300, 1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masks = label_regimes(bars, {"r": rules}, percentile_window=50)
    assert masks["r"].dtype == bool


def test_rule_error_is_a_value_error():
    with pytest.raises(ValueError, match=re.escape("cannot parse '>> 1'")):
        parse_rules("x", {"returns": ">> 1"})


# --------------------------------------------------------------------------- property tests

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=4)
    ),
    max_leaves=12,
)
GRAMMAR_WORDS = st.sampled_from(
    [">", ">=", "<", "<=", "==", "!=", "=", "between", "and", "th", "st", "percentile",
     "x", "average", "AVERAGE", "Between", "0", "1", "-2.5", "1e3", "75", "101", "nan",
     "inf", ".", "e", " ", "  ", "\t"]
)  # fmt: skip
NEAR_GRAMMAR = st.lists(GRAMMAR_WORDS, min_size=1, max_size=7).map("".join) | st.lists(
    GRAMMAR_WORDS, min_size=1, max_size=7
).map(" ".join)
SMALL_FRAME = FRAME  # 8 rows, every indicator


def check_parse(rules) -> None:
    with warnings.catch_warnings():
        # A rule either parses or is refused; no numpy warning may escape from evaluating it.
        warnings.simplefilter("error")
        try:
            ruleset = parse_rules("h", rules)
        except RuleError:
            return
        mask = ruleset.evaluate(SMALL_FRAME, percentile_window=3, volume_window=2)
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (8,)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(INDICATORS), text=st.text(max_size=60) | NEAR_GRAMMAR)
def test_any_condition_text_parses_or_raises_rule_error(key, text):
    check_parse({key: text})


@settings(max_examples=200, deadline=None)
@given(rules=JSON_VALUES)
def test_any_json_value_parses_or_raises_rule_error(rules):
    check_parse(rules)
    check_parse(json.dumps(rules))


@settings(max_examples=200, deadline=None)
@given(rules=st.dictionaries(st.sampled_from(INDICATORS), JSON_VALUES | NEAR_GRAMMAR, max_size=4))
def test_any_mapping_of_known_indicators_parses_or_raises_rule_error(rules):
    check_parse(rules)


@settings(max_examples=150, deadline=None)
@given(
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    number=st.floats(-1e6, 1e6, allow_nan=False),
    form=st.sampled_from(["{op} {n}", "{op}{n}", "{op} {n}x average"]),
)
def test_generated_valid_conditions_parse(op, number, form):
    text = form.format(op=op, n=repr(number))
    cond = parse_rules("g", {"returns": text}).conditions[0]
    assert (cond.op, cond.numbers) == (op, (number,))


# --------------------------------------------------------------------------- regimes, labelling


def test_default_regimes_are_designs():
    assert [(r.name, r.rules, r.active) for r in DEFAULT_REGIMES] == [
        ("bull_trending", {"trend_strength": "> 0.7", "returns": "> 0"}, True),
        ("bear_trending", {"trend_strength": "> 0.7", "returns": "< 0"}, True),
        ("volatile_ranging", {"trend_strength": "< 0.3", "volatility": "> 75th percentile"}, True),
        ("calm_ranging", {"trend_strength": "< 0.3", "volatility": "< 50th percentile"}, True),
    ]
    assert all(r.description for r in DEFAULT_REGIMES)
    assert isinstance(DEFAULT_REGIMES, tuple)


def test_regime_keeps_a_copy_of_rules_and_decodes_json():
    rules = {"returns": "> 0"}
    r = Regime("up", rules)
    rules["returns"] = "< 0"
    assert r.rules == {"returns": "> 0"}
    assert Regime("up", '{"returns": "> 0"}') == r
    assert hash(Regime("up", {"returns": "> 0"})) == hash(r)
    assert r.ruleset.conditions == (Condition("returns", ">", "value", (0.0,)),)
    with pytest.raises(AttributeError):
        r.name = "down"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"description": 3}, "regime 'up': description must be a string, got int"),
        ({"active": "yes"}, "regime 'up': active must be true or false, got 'yes'"),
    ],
    ids=["description", "active"],
)
def test_regime_validates_fields(kwargs, message):
    with pytest.raises(RuleError, match=f"^{re.escape(message)}$"):
        Regime("up", {"returns": "> 0"}, **kwargs)


def test_label_regimes_accepts_mapping_and_skips_inactive(real_bars):
    bars = real_bars.iloc[:1200]
    masks = label_regimes(
        bars,
        {"up": {"returns": "> 0"}, "loud": '{"volume": "> 2x average"}'},
    )
    ind = regime_indicators(bars)
    assert list(masks.columns) == ["up", "loud"]
    assert masks.index.equals(bars.index)
    assert (masks.dtypes == "bool").all()
    np.testing.assert_array_equal(masks["up"], (ind["returns"] > 0).to_numpy())
    avg = ind["volume"].rolling(20).mean().shift(1)
    np.testing.assert_array_equal(masks["loud"], (ind["volume"] > 2 * avg).to_numpy())
    assert masks["loud"].any()

    regs = [Regime("a", {"returns": "> 0"}), Regime("b", {"returns": "< 0"}, active=False)]
    assert list(label_regimes(bars, regs).columns) == ["a"]
    assert label_regimes(bars, Regime("a", {"returns": "> 0"})).shape == (1200, 1)


def test_multi_label_and_none(real_bars):
    regs = {"up": {"returns": "> 0"}, "strong": {"trend_strength": "> 0.5"}}
    masks = label_regimes(real_bars, regs)
    both = masks.all(axis=1)
    neither = ~masks.any(axis=1)
    assert both.any() and neither.any()
    assert not masks.iloc[:49].any().any()  # warm-up bars are in no regime


def test_percentile_rank_computed_once_per_call(real_bars, monkeypatch):
    calls = []
    real = regimes_mod.trailing_rank

    def counting(values, window):
        calls.append(window)
        return real(values, window)

    monkeypatch.setattr(regimes_mod, "trailing_rank", counting)
    regs = [*DEFAULT_REGIMES, Regime("quiet", {"volatility": "< 10th percentile"})]
    label_regimes(real_bars.iloc[:1000], regs, percentile_window=300)
    assert calls == [300]  # four volatility percentile rules, one ranking


@pytest.mark.parametrize(
    ("regimes", "message"),
    [
        (
            [Regime("a", {"returns": "> 0"}), Regime("a", {"returns": "< 0"})],
            "regime 'a' is defined twice; regime names must be unique",
        ),
        (["a"], "regimes[0]: expected a Regime (or pass a mapping of name -> rules), got str"),
        ("a", "regimes must be Regime objects or a mapping of name -> rules, got str"),
        ({"b": {"returns": "> 0"}, "a": {"rsi": "> 0"}}, "regime 'a': unknown indicator 'rsi'"),
    ],
    ids=["duplicate", "not-regime", "string", "bad-rules-in-mapping"],
)
def test_label_regimes_rejects_bad_regimes(regimes, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        label_regimes(make_bars(np.ones(10)), regimes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trend_window": 2}, "trend_window must be an integer >= 3, got 2"),
        ({"volatility_window": 1.5}, "volatility_window must be an integer >= 2, got 1.5"),
        ({"percentile_window": 0}, "percentile_window must be an integer >= 1, got 0"),
        ({"volume_window": True}, "volume_window must be an integer >= 1, got True"),
    ],
    ids=["trend", "volatility-float", "percentile-zero", "volume-bool"],
)
def test_bad_windows_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        label_regimes(make_bars(np.ones(10)), **kwargs)


def test_bad_bars_raise_data_error():
    bars = make_bars([1.0, 1.1, 0.0, 1.2])
    with pytest.raises(
        DataError,
        match=re.escape(
            "bars: close must be a positive finite number, got 0.0 at "
            "2020-01-06 02:00:00+00:00 (row 2)"
        ),
    ):
        regime_indicators(bars)
    with pytest.raises(DataError, match=re.escape("bars: missing column(s) volume;")):
        regime_indicators(bars.drop(columns="volume"))
    with pytest.raises(DataError, match=re.escape("bars must be a pandas DataFrame, got ndarray")):
        regime_indicators(np.ones((3, 2)))


def test_evaluate_names_missing_column():
    rs = parse_rules("r", {"volume": "> 1"})
    with pytest.raises(
        RuleError,
        match=re.escape("regime 'r': rule 'volume': the indicator frame has no column 'volume'"),
    ):
        rs.evaluate(FRAME.drop(columns="volume"))


def test_short_and_empty_bars():
    empty = label_regimes(make_bars(np.empty(0)))
    assert empty.shape == (0, 4)
    short = label_regimes(make_bars(np.linspace(1, 2, 30)))
    assert not short.any().any()


def test_default_regime_names_are_identifiers_and_others_are_refused():
    from forexgrid.core.regimes import check_regime_name

    for regime in DEFAULT_REGIMES:
        assert check_regime_name(regime.name) == regime.name
    assert check_regime_name("high_vol-breakout2") == "high_vol-breakout2"
    refused = [("my regime", "' '"), ("a/b", "'/'"), ("x.y", "'.'"), ("\u00e9t\u00e9", "'\u00e9'")]
    for bad, char in refused:
        with pytest.raises(RuleError, match=re.escape(f"{char} is not allowed; a regime name is")):
            check_regime_name(bad)
    with pytest.raises(RuleError, match="non-empty string"):
        check_regime_name("")
