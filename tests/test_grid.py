"""Tests of forexgrid.grid: TrainingConfig, config_hash, data_fingerprint, GridSpec."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import pickle
import re
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.data.timeframes import timeframe_delta
from forexgrid.exceptions import ConfigError, DataError, GridSizeError
from forexgrid.grid import (
    DEFAULT_MAX_GRID_SIZE,
    ENCODERS,
    FrozenParams,
    GridSpec,
    TrainingConfig,
    config_hash,
    config_hasher,
    data_fingerprint,
)

BASE = dict(model_type="ridge", symbol="EURUSD", timeframe="1h", days_history=60, horizon=3)

# Pinned: SHA-256 of the canonical JSON below. A change here invalidates every stored hash
# ("already trained" filtering, checkpoints); bump HASH_VERSION on purpose if it must change.
PINNED_JSON = (
    '{"config":{"days_history":60,"encoder":"time_delta","horizon":3,'
    '"hyperparameters":{"alpha":1.0},"indicator_timeframes":[],"model_type":"ridge",'
    '"symbol":"EURUSD","timeframe":"1h"},"hash_version":1}'
)
PINNED_HEX = "dcf8dcf02bca40b733425268481846c724907225b7c1bf5bdae33b65e710645d"


def settings_ns(window=32, validation_days=60, test_days=60, embargo_bars=12, seed=42):
    return SimpleNamespace(
        features=SimpleNamespace(model_dump=lambda mode: {"window": window, "rsi_window": 14}),
        evaluation=SimpleNamespace(
            validation_days=validation_days, test_days=test_days, embargo_bars=embargo_bars
        ),
        execution=SimpleNamespace(seed=seed),
    )


FINGERPRINT = {
    "first": "2017-01-02T00:00:00+00:00",
    "last": "2017-12-29T21:00:00+00:00",
    "bars": 6225,
}


# ----------------------------------------------------------------------------- TrainingConfig


@pytest.mark.parametrize(
    ("field", "given", "stored"),
    [
        ("timeframe", "H1", "1h"),
        ("timeframe", "1H", "1h"),
        ("timeframe", "60m", "1h"),
        ("timeframe", "D1", "1d"),
        ("timeframe", "M15", "15m"),
        ("symbol", " eurusd ", "EURUSD"),
        ("model_type", "Ridge", "ridge"),
        ("encoder", "Absolute", "absolute"),
        ("indicator_timeframes", ["1d", "4H", "4h"], ("4h", "1d")),
        ("indicator_timeframes", None, ()),
        ("days_history", 60, 60),
    ],
    ids=["H1", "1H", "60m", "D1", "M15", "symbol", "model", "encoder", "ind", "ind-none", "days"],
)
def test_fields_are_normalised(field, given, stored):
    tc = TrainingConfig(**{**BASE, field: given})
    assert getattr(tc, field) == stored


def test_hyperparameters_are_a_frozen_sorted_mapping():
    tc = TrainingConfig(**BASE, hyperparameters={"solver": "svd", "alpha": 2.0})
    assert isinstance(tc.hyperparameters, FrozenParams)
    assert list(tc.hyperparameters) == ["alpha", "solver"]
    assert tc.hyperparameters == {"alpha": 2.0, "solver": "svd"}
    assert tc.hyperparameters["alpha"] == 2.0
    with pytest.raises(AttributeError):
        tc.hyperparameters._items = ()  # type: ignore[misc]
    assert TrainingConfig(**BASE).hyperparameters == {}
    assert tc.effective_hyperparameters == {"alpha": 2.0, "solver": "svd"}


def test_training_config_is_frozen_hashable_and_picklable():
    tc = TrainingConfig(**BASE, hyperparameters={"alpha": 2.0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        tc.horizon = 4  # type: ignore[misc]
    assert tc == TrainingConfig(**{**BASE, "timeframe": "H1"}, hyperparameters={"alpha": 2.0})
    assert len({tc, TrainingConfig(**BASE, hyperparameters={"alpha": 2.0})}) == 1
    assert pickle.loads(pickle.dumps(tc)) == tc


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"model_type": "xgbost"},
            "model_type: unknown model type 'xgbost' (did you mean 'xgboost'?)",
        ),
        (
            {"symbol": "EUR/USD"},
            "symbol: expected a symbol of letters and digits such as 'EURUSD', got 'EUR/USD' "
            "(write 'EURUSD')",
        ),
        (
            {"symbol": ""},
            "symbol: expected a symbol of letters and digits such as 'EURUSD', got ''",
        ),
        (
            {"symbol": "E" * 21},
            "symbol: expected a symbol of at most 20 letters and digits such as 'EURUSD', got "
            f"{'E' * 21!r}",
        ),
        (
            {"timeframe": "2h"},
            "timeframe: unknown timeframe '2h'; expected one of 15m, 1h, 4h, 1d",
        ),
        (
            {"timeframe": "1m"},
            "timeframe: cannot train on timeframe '1m'; expected one of 15m, 1h, 4h, 1d",
        ),
        ({"days_history": 0}, "days_history: expected an integer between 1 and 36500, got 0"),
        (
            {"days_history": 60.0},
            "days_history: expected an integer between 1 and 36500, got 60.0",
        ),
        (
            {"days_history": 99999999999999999999},
            "days_history: expected an integer between 1 and 36500, got 99999999999999999999",
        ),
        ({"horizon": True}, "horizon: expected an integer between 1 and 1000, got True"),
        ({"horizon": 1001}, "horizon: expected an integer between 1 and 1000, got 1001"),
        (
            {"horizon": 10**5000},
            "horizon: expected an integer between 1 and 1000, got <an integer of 5001 digits>",
        ),
        (
            {"encoder": "onehot"},
            "encoder: unknown encoder 'onehot'; expected one of time_delta, absolute, normalized",
        ),
        (
            {"indicator_timeframes": "4h"},
            "indicator_timeframes: expected a list of timeframes such as ['4h', '1d'], got '4h'",
        ),
        (
            {"indicator_timeframes": ["1h"]},
            "indicator_timeframes[0]: indicator timeframe '1h' must be higher than the "
            "configuration's timeframe 1h",
        ),
        (
            {"indicator_timeframes": ["4h", "3h"]},
            "indicator_timeframes[1]: unknown timeframe '3h'",
        ),
        (
            {"hyperparameters": {"alpah": 1.0}},
            "hyperparameters.alpah: unknown hyperparameter 'alpah' for ridge (did you mean "
            "'alpha'?)",
        ),
        (
            {"hyperparameters": {"alpha": -1.0}},
            "hyperparameters: invalid hyperparameters for ridge (alpha=-1.0)",
        ),
        ({"hyperparameters": 3}, "hyperparameters: expected a mapping of name -> value, got 3"),
    ],
    ids=[
        "model",
        "symbol-slash",
        "symbol-empty",
        "symbol-long",
        "timeframe",
        "timeframe-not-trainable",
        "days-zero",
        "days-float",
        "days-huge",
        "horizon-bool",
        "horizon-too-far",
        "horizon-5000-digits",
        "encoder",
        "ind-string",
        "ind-not-higher",
        "ind-unknown",
        "hp-name",
        "hp-value",
        "hp-type",
    ],
)
def test_invalid_fields_raise_config_error(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainingConfig(**{**BASE, **override})


def test_to_dict_round_trips_through_json():
    tc = TrainingConfig(
        **{**BASE, "model_type": "lasso"},
        encoder="normalized",
        indicator_timeframes=("4h", "1d"),
        hyperparameters={"alpha": 1e-4},
    )
    data = json.loads(json.dumps(tc.to_dict()))
    assert data == {
        "model_type": "lasso",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "days_history": 60,
        "horizon": 3,
        "encoder": "normalized",
        "indicator_timeframes": ["4h", "1d"],
        "hyperparameters": {"alpha": 1e-4},
    }
    assert TrainingConfig.from_dict(data) == tc
    assert TrainingConfig.from_dict(BASE) == TrainingConfig(**BASE)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"model_type": "ridge"},
            "training configuration: missing key(s) symbol, timeframe, days_history, horizon",
        ),
        (
            {**BASE, "seed": 1},
            "training configuration: unknown key(s) seed; expected days_history,",
        ),
        (["ridge"], "training configuration: expected a mapping, got list"),
        ({**BASE, "horizon": "3"}, "horizon: expected an integer between 1 and 1000, got '3'"),
    ],
    ids=["missing", "unknown", "not-mapping", "bad-value"],
)
def test_from_dict_errors(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainingConfig.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "label"),
    [
        ({"model_type": "xgboost"}, "xgboost EURUSD 1h 60d h3 time_delta"),
        (
            {"indicator_timeframes": ["1d", "4h"], "hyperparameters": {"alpha": 2.0}},
            "ridge EURUSD 1h 60d h3 time_delta +4h,1d alpha=2.0",
        ),
    ],
    ids=["plain", "extras"],
)
def test_label(kwargs, label):
    assert TrainingConfig(**{**BASE, **kwargs}).label == label


def test_encoders_agree_with_the_config_module():
    import forexgrid.config as config

    assert config.ENCODERS == ENCODERS


# ----------------------------------------------------------------------------- config_hash


def test_config_hash_is_pinned():
    tc = TrainingConfig(**BASE)
    assert hashlib.sha256(PINNED_JSON.encode()).hexdigest() == PINNED_HEX
    assert config_hash(tc) == PINNED_HEX


def test_config_hash_is_stable_across_processes():
    code = (
        "from forexgrid.grid import TrainingConfig, config_hash; "
        "print(config_hash(TrainingConfig(model_type='ridge', symbol='EURUSD', timeframe='1h', "
        "days_history=60, horizon=3)))"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        assert out.stdout.strip() == PINNED_HEX


@pytest.mark.parametrize(
    "override",
    [
        {"model_type": "lasso"},
        {"symbol": "GBPUSD"},
        {"timeframe": "4h"},
        {"days_history": 90},
        {"horizon": 1},
        {"encoder": "absolute"},
        {"indicator_timeframes": ["4h"]},
        {"hyperparameters": {"alpha": 2.0}},
    ],
    ids=["model", "symbol", "timeframe", "days", "horizon", "encoder", "ind", "hp"],
)
def test_every_field_changes_the_hash(override):
    assert config_hash(TrainingConfig(**{**BASE, **override})) != PINNED_HEX


@pytest.mark.parametrize(
    "override",
    [
        {"timeframe": "H1"},
        {"symbol": "eurusd"},
        {"hyperparameters": {"alpha": 1.0}},  # the default, written out
        {"indicator_timeframes": []},
    ],
    ids=["alias", "case", "default-hp", "empty-ind"],
)
def test_equivalent_spellings_share_the_hash(override):
    assert config_hash(TrainingConfig(**{**BASE, **override})) == PINNED_HEX


def test_indicator_timeframe_order_does_not_change_the_hash():
    a = TrainingConfig(**BASE, indicator_timeframes=["4h", "1d"])
    b = TrainingConfig(**BASE, indicator_timeframes=["D1", "H4"])
    assert config_hash(a) == config_hash(b)


def test_settings_and_data_enter_the_hash():
    tc = TrainingConfig(**BASE)
    base = config_hash(tc, settings_ns(), FINGERPRINT)
    assert base == config_hash(tc, settings_ns(), dict(reversed(FINGERPRINT.items())))
    assert base != PINNED_HEX
    assert config_hash(tc, settings_ns(window=48), FINGERPRINT) != base
    assert config_hash(tc, settings_ns(validation_days=30), FINGERPRINT) != base
    assert config_hash(tc, settings_ns(test_days=30), FINGERPRINT) != base
    assert config_hash(tc, settings_ns(embargo_bars=0), FINGERPRINT) != base
    assert config_hash(tc, settings_ns(seed=7), FINGERPRINT) != base
    assert config_hash(tc, settings_ns(), {**FINGERPRINT, "bars": 6226}) != base
    assert config_hash(tc, None, FINGERPRINT) != base
    # Settings that do not change the model (spread, min_trades) are not hashed.
    extra = settings_ns()
    extra.evaluation.spread_pips = {"default": 3.0}
    assert config_hash(tc, extra, FINGERPRINT) == base


def test_real_settings_hash():
    import forexgrid.config as config

    settings = config.load_config(None)
    tc = TrainingConfig(**BASE)
    digest = config_hash(tc, settings, FINGERPRINT)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest != PINNED_HEX
    assert config_hash(tc, settings.model_dump(), FINGERPRINT) == digest  # mapping form


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((BASE,), "config hash: expected a TrainingConfig, got dict"),
        (
            (None, SimpleNamespace(features={})),
            "config hash: settings have no 'evaluation' section",
        ),
        (
            (None, SimpleNamespace(features={}, evaluation=SimpleNamespace(test_days=60))),
            "config hash: settings have no 'evaluation.validation_days'",
        ),
        (
            (
                None,
                SimpleNamespace(
                    features={"w": {1, 2}},
                    evaluation={"validation_days": 1, "test_days": 1, "embargo_bars": 1},
                ),
            ),
            "config hash: features.w has a value that is not plain data: set {1, 2}",
        ),
        ((None, None, "2017"), "config hash: data_fingerprint must be a mapping"),
    ],
    ids=["not-tc", "no-evaluation", "no-window", "not-plain", "fingerprint-type"],
)
def test_config_hash_errors(args, message):
    tc, *rest = args
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_hash(tc if tc is not None else TrainingConfig(**BASE), *rest)


def test_data_fingerprint():
    index = pd.date_range("2017-01-02", periods=5, freq="h", tz="UTC")
    bars = pd.DataFrame({"close": range(5)}, index=index, dtype=float)
    expected = {
        "first": "2017-01-02T00:00:00+00:00",
        "last": "2017-01-02T04:00:00+00:00",
        "bars": 5,
    }
    assert data_fingerprint(bars) == expected
    assert data_fingerprint(bars.index.tz_convert("America/New_York")) == expected
    assert data_fingerprint(bars.iloc[:-1])["bars"] == 4


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        (
            pd.DataFrame({"close": [1.0]}),
            "data fingerprint: bars must have a DatetimeIndex, got RangeIndex",
        ),
        (
            pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex(["2017-01-02"])),
            "tz-aware UTC index, got a naive one",
        ),
        (
            pd.DataFrame({"close": []}, index=pd.DatetimeIndex([], tz="UTC")),
            "data fingerprint: bars are empty",
        ),
    ],
    ids=["no-datetime", "naive", "empty"],
)
def test_data_fingerprint_errors(bars, message):
    with pytest.raises(DataError, match=re.escape(message)):
        data_fingerprint(bars)


# ----------------------------------------------------------------------------- GridSpec

GUIDE = dict(
    model_types=["xgboost", "lightgbm"],
    symbols=["EURUSD"],
    timeframes=["1h", "4h"],
    days_history=[60, 90],
    horizons=[1, 3],
)


def test_design_example():
    spec = GridSpec(**GUIDE)
    configs = spec.expand()
    assert len(configs) == len(spec) == 16
    assert spec.describe() == (
        "2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons = 16 configurations"
    )
    assert all(tc.encoder == "time_delta" and tc.indicator_timeframes == () for tc in configs)
    assert len({config_hash(tc) for tc in configs}) == 16


def test_guide_example_arithmetic():
    spec = GridSpec(
        model_types=["xgboost", "lightgbm"],
        symbols=["EURUSD", "GBPUSD"],
        timeframes=["1h"],
        days_history=[60, 90],
        horizons=[1, 3],
    )
    assert spec.describe() == (
        "2 models x 2 symbols x 1 timeframe x 2 days x 2 horizons = 16 configurations"
    )


def test_expansion_order_is_model_symbol_timeframe_days_horizon_encoder_ind_hp():
    spec = GridSpec(
        model_types=["ridge", "lasso"],
        symbols=["GBPUSD", "EURUSD"],
        timeframes=["4h", "1h"],
        days_history=[90, 30],
        horizons=[3, 1],
        encoders=["absolute", "time_delta"],
        indicator_timeframes=[["1d"], []],
        hyperparameters={"ridge": {"alpha": [2.0, 0.5]}},
    )
    keys = [
        (
            tc.model_type,
            tc.symbol,
            tc.timeframe,
            tc.days_history,
            tc.horizon,
            tc.encoder,
            tc.indicator_timeframes,
            tc.hyperparameters.get("alpha"),
        )
        for tc in spec.expand()
    ]
    assert len(keys) == len(set(keys)) == (2 + 1) * 2**6  # ridge has two alphas
    assert keys[:3] == [
        ("ridge", "GBPUSD", "4h", 90, 3, "absolute", ("1d",), 2.0),
        ("ridge", "GBPUSD", "4h", 90, 3, "absolute", ("1d",), 0.5),
        ("ridge", "GBPUSD", "4h", 90, 3, "absolute", (), 2.0),
    ]
    assert keys[-1] == ("lasso", "EURUSD", "1h", 30, 1, "time_delta", (), None)
    assert spec.expand() == spec.expand()


def test_hyperparameter_lists_multiply_only_their_model():
    spec = GridSpec(
        **{**GUIDE, "model_types": ["xgboost", "ridge"]},
        hyperparameters={"xgboost": {"max_depth": [3, 4, 5], "learning_rate": 0.1}},
    )
    xgb = [tc for tc in spec.expand() if tc.model_type == "xgboost"]
    ridge = [tc for tc in spec.expand() if tc.model_type == "ridge"]
    assert len(xgb) == 3 * 8 and len(ridge) == 8
    assert {tc.hyperparameters["max_depth"] for tc in xgb} == {3, 4, 5}
    assert all(tc.hyperparameters["learning_rate"] == 0.1 for tc in xgb)
    assert all(tc.hyperparameters == {} for tc in ridge)
    assert spec.describe() == (
        "4 model variants (xgboost 3, ridge 1) x 1 symbol x 2 timeframes x 2 days x "
        "2 horizons = 32 configurations"
    )


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            dict(
                model_types="ridge", symbols="EURUSD", timeframes="1h", days_history=60, horizons=1
            ),
            "1 model x 1 symbol x 1 timeframe x 1 day x 1 horizon = 1 configuration",
        ),
        (
            {**GUIDE, "encoders": ["time_delta", "absolute"]},
            "2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons x 2 encoders = 32 "
            "configurations",
        ),
        (
            {**GUIDE, "indicator_timeframes": [[], ["1d"]]},
            "2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons x 2 indicator timeframe "
            "sets = 32 configurations",
        ),
        (
            {
                **GUIDE,
                "hyperparameters": {
                    "xgboost": {"max_depth": [3, 4]},
                    "lightgbm": {"num_leaves": [7, 15]},
                },
            },
            "2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons x 2 hyperparameter sets = "
            "32 configurations",
        ),
        (
            {**GUIDE, "timeframes": ["1h", "H1", "4h"]},
            "2 models x 1 symbol x 3 timeframes x 2 days x 2 horizons = 24 configurations (8 "
            "duplicates removed)",
        ),
        (
            {
                **GUIDE,
                "model_types": ["ridge"],
                "hyperparameters": {"ridge": {"alpha": [1.0, 1.0]}},
                "days_history": [60],
                "horizons": [1],
                "timeframes": ["1h"],
            },
            "1 model x 1 symbol x 1 timeframe x 1 day x 1 horizon x 2 hyperparameter sets = 2 "
            "configurations (1 duplicate removed)",
        ),
    ],
    ids=["singular", "encoders", "indicator-sets", "hp-sets", "alias-dups", "one-dup"],
)
def test_describe(kwargs, text):
    spec = GridSpec(**kwargs)
    assert spec.describe() == text
    raw = int(re.search(r"= (\d+) configuration", text).group(1))
    removed = re.search(r"\((\d+) duplicates? removed\)", text)
    assert len(spec) == raw - (int(removed.group(1)) if removed else 0)


def test_aliases_collapse_and_first_spelling_wins():
    spec = GridSpec(**{**GUIDE, "timeframes": ["H1", "4h", "1h"], "symbols": ["eurusd", "EURUSD"]})
    assert len(spec) == 16
    assert [tc.timeframe for tc in spec.expand()][:4] == ["1h", "1h", "1h", "1h"]


def test_indicator_timeframes_not_above_the_timeframe_are_left_out():
    spec = GridSpec(**{**GUIDE, "indicator_timeframes": [[], ["4h", "1d"]]})
    by_tf = {}
    for tc in spec.expand():
        by_tf.setdefault(tc.timeframe, set()).add(tc.indicator_timeframes)
    assert by_tf == {"1h": {(), ("4h", "1d")}, "4h": {(), ("1d",)}}
    spec = GridSpec(**{**GUIDE, "indicator_timeframes": [[], ["4h"]]})
    assert len(spec) == 16 + 8  # the 4h configurations with ["4h"] are the plain ones
    assert spec.describe().endswith("= 32 configurations (8 duplicates removed)")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model_types": []}, "grid.model_types: must list at least one value"),
        ({"model_types": ["xgboost", "svm"]}, "grid.model_types[1]: unknown model type 'svm'"),
        (
            {"symbols": ["EURUSD", "EUR-USD"]},
            "grid.symbols[1]: expected a symbol of letters and digits",
        ),
        ({"timeframes": ["1h", "2h"]}, "grid.timeframes[1]: unknown timeframe '2h'"),
        (
            {"days_history": [60, 0]},
            "grid.days_history[1]: expected an integer between 1 and 36500, got 0",
        ),
        (
            {"days_history": [60, 99999999999999999999]},
            "grid.days_history[1]: expected an integer between 1 and 36500, got "
            "99999999999999999999",
        ),
        (
            {"horizons": [1, 2**63]},
            "grid.horizons[1]: expected an integer between 1 and 1000, got 9223372036854775808",
        ),
        ({"horizons": {"a": 1}}, "grid.horizons: expected a list, got {'a': 1}"),
        ({"encoders": ["time_delta", "x"]}, "grid.encoders[1]: unknown encoder 'x'"),
        (
            {"indicator_timeframes": ["4h"]},
            "grid.indicator_timeframes[0]: each element is one choice of indicator timeframes",
        ),
        (
            {"indicator_timeframes": [["4h", "5h"]]},
            "grid.indicator_timeframes[0][1]: unknown timeframe '5h'",
        ),
        (
            {"hyperparameters": {"ridge": {"alpha": 1.0}}},
            "grid.hyperparameters.ridge: hyperparameters given for model type 'ridge', which is "
            "not in grid.model_types (xgboost, lightgbm)",
        ),
        (
            {"hyperparameters": {"xgboost": {"max_depth": []}}},
            "grid.hyperparameters.xgboost.max_depth: must list at least one value",
        ),
        (
            {"hyperparameters": {"xgboost": {"max_dpth": [3]}}},
            "grid.hyperparameters.xgboost.max_dpth: unknown hyperparameter 'max_dpth' for xgboost",
        ),
        (
            {"hyperparameters": {"xgboost": {"max_depth": [3, -1]}}},
            "grid.hyperparameters.xgboost: invalid hyperparameters for xgboost (max_depth=-1)",
        ),
        (
            {"hyperparameters": {"xgboost": 3}},
            "grid.hyperparameters.xgboost: expected a mapping of name -> value or [values], got 3",
        ),
        (
            {"hyperparameters": [1]},
            "grid.hyperparameters: expected {model_type: {name: value or [values]}}, got [1]",
        ),
    ],
    ids=[
        "empty",
        "model",
        "symbol",
        "timeframe",
        "days",
        "days-huge",
        "horizon-2**63",
        "not-a-list",
        "encoder",
        "ind-flat",
        "ind-unknown",
        "hp-foreign-model",
        "hp-empty-list",
        "hp-name",
        "hp-value",
        "hp-not-mapping",
        "hp-not-mapping-top",
    ],
)
def test_grid_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        GridSpec(**{**GUIDE, **override})


def test_from_settings_duck_typed_and_mapping():
    grid = SimpleNamespace(
        **GUIDE, encoders=("time_delta",), indicator_timeframes=((),), hyperparameters={}
    )
    assert GridSpec.from_settings(grid).expand() == GridSpec(**GUIDE).expand()
    assert len(GridSpec.from_settings(dict(GUIDE))) == 16
    with pytest.raises(ConfigError, match=re.escape("grid.horizons: missing; expected a list")):
        GridSpec.from_settings({k: v for k, v in GUIDE.items() if k != "horizons"})


def test_from_real_settings():
    import forexgrid.config as config

    settings = config.load_config(None)
    spec = GridSpec.from_settings(settings.grid)
    assert spec.model_types == tuple(settings.grid.model_types)
    assert len(spec) > 0


def test_repr_html():
    spec = GridSpec(**GUIDE, hyperparameters={"xgboost": {"objective": "reg:squarederror"}})
    text = spec._repr_html_()
    assert text.startswith("<table>") and text.endswith("</table>")
    assert "<b>16</b>" in text and "xgboost, lightgbm" in text
    assert "2 models x 1 symbol" in text
    assert "&#x27;reg:squarederror&#x27;" in text  # escaped


def test_gridspec_is_frozen_and_iterable():
    spec = GridSpec(**GUIDE)
    assert list(spec) == spec.expand()
    assert spec.timeframes == ("1h", "4h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.symbols = ("GBPUSD",)  # type: ignore[misc]
    assert spec == GridSpec(**GUIDE) and hash(spec) == hash(GridSpec(**GUIDE))


@settings(max_examples=40, deadline=None)
@given(
    models=st.lists(
        st.sampled_from(["ridge", "Lasso", "linear_regression"]), min_size=1, max_size=3
    ),
    timeframes=st.lists(st.sampled_from(["1h", "H1", "4h", "4H", "D1"]), min_size=1, max_size=4),
    days=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    horizons=st.lists(st.integers(1, 2), min_size=1, max_size=2),
)
def test_expansion_counts_distinct_normalised_cells(models, timeframes, days, horizons):
    spec = GridSpec(
        model_types=models,
        symbols=["EURUSD"],
        timeframes=timeframes,
        days_history=days,
        horizons=horizons,
    )
    canon_tf = {"1h": "1h", "H1": "1h", "4h": "4h", "4H": "4h", "D1": "1d"}
    distinct = (
        {m.lower() for m in models},
        {canon_tf[t] for t in timeframes},
        set(days),
        set(horizons),
    )
    configs = spec.expand()
    assert len(configs) == len(distinct[0]) * len(distinct[1]) * len(distinct[2]) * len(
        distinct[3]
    )
    assert len({config_hash(tc) for tc in configs}) == len(configs)
    raw = len(models) * len(timeframes) * len(days) * len(horizons)
    assert f"= {raw} configuration" in spec.describe()
    assert ("duplicate" in spec.describe()) == (raw != len(configs))


# ----------------------------------------------------------------------------- size and order

# Grids with every kind of duplicate (aliases, case, repeated values, indicator options that
# coincide once filtered, repeated hyperparameter values) and their expansion as commit
# 3d9e227 (before expansion streamed) produced it: configurations, then the SHA-256 of their
# settings-free hashes joined by newlines, in order.
BEFORE_STREAMING = {
    "duplicates": (
        dict(
            model_types=["ridge", "Ridge", "lasso"],
            symbols=["EURUSD", "eurusd", "GBPUSD"],
            timeframes=["1h", "H1", "4h"],
            days_history=[30, 30, 60],
            horizons=[1, 3, 1],
            encoders=["time_delta", "normalized", "TIME_DELTA"],
            indicator_timeframes=[[], ["4h"], ["1d", "4h"], ["4h", "1d"]],
            hyperparameters={"ridge": {"alpha": [0.5, 2.0, 0.5]}},
        ),
        240,
        "9f4d10ec39e04c22e791cfa1165d33526b5cf406b0ed7fb373c9649daf4502b2",
    ),
    "hyperparameters": (
        dict(
            model_types=["elasticnet", "ridge", "linear_regression"],
            symbols=["USDJPY"],
            timeframes=["4h", "1h"],
            days_history=[90, 60],
            horizons=[2],
            hyperparameters={
                "elasticnet": {"alpha": [1e-5, 2e-5], "l1_ratio": [0.2, 0.5], "max_iter": 3000},
                "ridge": {"alpha": [1, 1.0, 2]},  # 1 and 1.0 hash apart (JSON 1 vs 1.0)
            },
        ),
        32,
        "ad429ba98c0580142a74a39e547838f83177e1846a8b56147ed7494b429b8659",
    ),
    "guide": (
        GUIDE,
        16,
        "bc9bfdf312af9c4545032003b0c7790da7d8ddb20c0ac72c45894798b59c9e82",
    ),
}


def _hashes_digest(configs) -> str:
    return hashlib.sha256("\n".join(config_hash(tc) for tc in configs).encode()).hexdigest()


def _reference_expand(spec: GridSpec) -> list[TrainingConfig]:
    """The expansion as it was before it streamed: every cell of the raw product built and
    validated, the first of each hash kept."""
    seen, out = set(), []
    for model in spec.model_types:
        hp_sets = spec._hyperparameter_sets(model)
        for symbol, tf, days, h, enc, ind, hp in itertools.product(
            spec.symbols,
            spec.timeframes,
            spec.days_history,
            spec.horizons,
            spec.encoders,
            spec.indicator_timeframes,
            hp_sets,
        ):
            base = timeframe_delta(tf)
            ind = tuple(t for t in ind if timeframe_delta(t) > base)
            tc = TrainingConfig(model, symbol, tf, days, h, enc, ind, hp)
            if config_hash(tc) not in seen:
                seen.add(config_hash(tc))
                out.append(tc)
    return out


@pytest.mark.parametrize("name", list(BEFORE_STREAMING))
def test_expansion_is_the_one_before_streaming(name):
    kwargs, size, digest = BEFORE_STREAMING[name]
    spec = GridSpec(**kwargs)
    configs = spec.expand()
    assert len(spec) == len(configs) == size
    assert _hashes_digest(configs) == digest
    assert configs == _reference_expand(spec)
    # Built without the field checks, yet equal to (and typed as) a checked configuration.
    for tc in configs:
        again = TrainingConfig(**tc.to_dict())
        assert tc == again and hash(tc) == hash(again)
        assert type(tc.hyperparameters) is FrozenParams
        assert type(tc.indicator_timeframes) is tuple


def test_duplicates_are_counted_without_expanding():
    spec = GridSpec(**BEFORE_STREAMING["duplicates"][0])
    assert spec.describe() == (
        "7 model variants (ridge 3, ridge 3, lasso 1) x 3 symbols x 3 timeframes x 3 days x "
        "3 horizons x 3 encoders x 4 indicator timeframe sets = 6,804 configurations "
        "(6,564 duplicates removed)"
    )


def test_a_huge_grid_is_counted_and_described_without_building_it():
    # 9.6e10 configurations: building them (or a list of them) would never finish.
    spec = GridSpec(
        model_types=["ridge", "lasso", "elasticnet", "xgboost"],
        symbols=[f"PAIR{i}" for i in range(10)],
        timeframes=["15m", "1h", "4h", "1d"],
        days_history=range(1, 1001),
        horizons=range(1, 1001),
        encoders=list(ENCODERS),
        indicator_timeframes=[[], ["1d"]],
    )
    # 1d has no higher indicator timeframe, so its two options are one: 7 of 8.
    assert len(spec) == 4 * 10 * 7 * 1000 * 1000 * 3
    assert spec.describe() == (
        "4 models x 10 symbols x 4 timeframes x 1,000 days x 1,000 horizons x 3 encoders x "
        "2 indicator timeframe sets = 960,000,000 configurations (120,000,000 duplicates "
        "removed)"
    )
    assert spec.symbol_timeframes()[:5] == [
        ("PAIR0", "15m"),
        ("PAIR0", "1h"),
        ("PAIR0", "4h"),
        ("PAIR0", "1d"),
        ("PAIR1", "15m"),
    ]
    assert "<b>840000000</b>" in spec._repr_html_()
    first = next(iter(spec))  # iterating is lazy
    assert first.label == "ridge PAIR0 15m 1d h1 time_delta"
    with pytest.raises(GridSizeError, match=re.escape("max_size is 100,000: shrink the grid")):
        spec.expand()


def test_check_size_states_the_arithmetic():
    spec = GridSpec(
        model_types=["ridge", "lasso", "elasticnet", "linear_regression"],
        symbols=["EURUSD", "GBPUSD", "USDJPY"],
        timeframes=["1h", "4h"],
        days_history=range(1, 501),
        horizons=range(1, 101),
        encoders=["time_delta", "absolute", "normalized"],
    )
    message = (
        "grid has 4 models x 3 symbols x 2 timeframes x 500 days x 100 horizons x 3 encoders "
        "= 3,600,000 configurations; execution.max_grid_size is 100,000: shrink the grid or "
        "raise the limit"
    )
    with pytest.raises(GridSizeError, match=f"^{re.escape(message)}$") as caught:
        spec.check_size(DEFAULT_MAX_GRID_SIZE)
    assert isinstance(caught.value, ConfigError)
    assert spec.check_size(3_600_000) == 3_600_000  # the limit itself is allowed
    with pytest.raises(GridSizeError, match=re.escape("= 3,600,000 configurations; max_size")):
        spec.expand(max_size=3_599_999)


def test_the_limit_counts_configurations_after_duplicates():
    spec = GridSpec(**{**GUIDE, "timeframes": ["1h", "H1", "4h"]})  # 24 raw, 16 distinct
    assert spec.check_size(16) == 16
    with pytest.raises(GridSizeError) as caught:
        spec.check_size(15)
    assert str(caught.value) == (
        "grid has 2 models x 1 symbol x 3 timeframes x 2 days x 2 horizons = 24 configurations "
        "(8 duplicates removed); execution.max_grid_size is 15: shrink the grid or raise the "
        "limit"
    )


def test_expand_takes_a_limit_or_none():
    spec = GridSpec(**GUIDE)
    assert spec.expand(max_size=16) == spec.expand(max_size=None) == list(spec)
    with pytest.raises(GridSizeError, match=re.escape("16 configurations; max_size is 15:")):
        spec.expand(max_size=15)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "100", None])
def test_check_size_needs_a_positive_integer(bad):
    with pytest.raises(ConfigError, match=re.escape(f"expected an integer >= 1, got {bad!r}")):
        GridSpec(**GUIDE).check_size(bad)


def test_default_limit_is_the_settings_default():
    import forexgrid.config as config

    assert config.load_config(None).execution.max_grid_size == DEFAULT_MAX_GRID_SIZE == 100_000


def test_config_hasher_binds_settings_and_fingerprint():
    import forexgrid.config as config

    settings = config.load_config(None)
    fingerprint = {"first": "2017-01-02T00:00:00+00:00", "last": "2017-12-29T00:00:00+00:00"}
    configs = GridSpec(**BEFORE_STREAMING["hyperparameters"][0]).expand()
    for args in [(), (settings,), (None, fingerprint), (settings, fingerprint)]:
        hasher = config_hasher(*args)
        assert [hasher(tc) for tc in configs] == [config_hash(tc, *args) for tc in configs]
    with pytest.raises(ConfigError, match="expected a TrainingConfig, got dict"):
        config_hasher(settings)({"model_type": "ridge"})
    with pytest.raises(ConfigError, match="data_fingerprint must be a mapping"):
        config_hasher(settings, ["x"])


@settings(max_examples=60, deadline=None)
@given(
    models=st.lists(st.sampled_from(["ridge", "Lasso", "RIDGE"]), min_size=1, max_size=3),
    timeframes=st.lists(st.sampled_from(["1h", "H1", "4h", "D1"]), min_size=1, max_size=3),
    indicators=st.lists(
        st.lists(st.sampled_from(["4h", "1d", "D1"]), max_size=2, unique=True),
        min_size=1,
        max_size=3,
    ),
    alphas=st.lists(st.sampled_from([0.5, 1, 1.0, 2.0]), min_size=1, max_size=3),
    horizons=st.lists(st.integers(1, 2), min_size=1, max_size=2),
)
def test_streamed_expansion_equals_the_reference(models, timeframes, indicators, alphas, horizons):
    hp = {"ridge": {"alpha": alphas}} if any(m.lower() == "ridge" for m in models) else None
    spec = GridSpec(
        model_types=models,
        symbols=["EURUSD", "eurusd"],
        timeframes=timeframes,
        days_history=[30],
        horizons=horizons,
        indicator_timeframes=indicators,
        hyperparameters=hp,
    )
    reference = _reference_expand(spec)
    assert list(spec) == reference
    assert len(spec) == len(reference)
    assert len({config_hash(tc) for tc in reference}) == len(reference)
