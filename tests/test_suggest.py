""" "Did you mean" suggestions: offered for close matches only, at every place that offers one."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from forexgrid import load_config
from forexgrid._suggest import CUTOFF, close_match
from forexgrid.cli import cli
from forexgrid.core.models import check_model_type, normalize_hyperparameters
from forexgrid.core.regimes import parse_rules
from forexgrid.exceptions import ConfigError, RuleError


def test_close_match_only_for_close_names():
    assert CUTOFF == 0.6
    assert close_match("xgbost", ["xgboost", "lightgbm"]) == "xgboost"
    assert close_match("banana", ["xgboost", "lightgbm", "ridge"]) is None
    assert close_match("x" * 1_000_000, ["xgboost"]) is None  # cut first, still no match


def _message(call) -> str:
    with pytest.raises((ConfigError, RuleError)) as info:
        call()
    return str(info.value)


# (where, a call with a close name, a call with a far-off name)
SITES = [
    (
        "config key",
        lambda: load_config({"selection": {"min_trade": 5}}),
        lambda: load_config({"selection": {"qqqqqqqq": 5}}),
    ),
    (
        "config choice",
        lambda: load_config({"selection": {"score": "val_sharp"}}),
        lambda: load_config({"selection": {"score": "banana"}}),
    ),
    (
        "time zone",
        lambda: load_config({"data": {"default_tz": "Europe/Londn"}}),
        lambda: load_config({"data": {"default_tz": "Qqqqqqqqqqqq"}}),
    ),
    (
        "regime indicator",
        lambda: parse_rules("r", {"volatilty": "> 0"}),
        lambda: parse_rules("r", {"zzz": "> 0"}),
    ),
    (
        "model type",
        lambda: check_model_type("xgbost"),
        lambda: check_model_type("banana"),
    ),
    (
        "hyperparameter",
        lambda: normalize_hyperparameters("ridge", {"alph": 1.0}),
        lambda: normalize_hyperparameters("ridge", {"qqqqqq": 1.0}),
    ),
]


@pytest.mark.parametrize(("close", "far"), [s[1:] for s in SITES], ids=[s[0] for s in SITES])
def test_a_close_name_gets_a_suggestion_and_a_far_off_one_none(close, far):
    assert re.search(r"did you mean '[^']+'\?", _message(close))
    assert "did you mean" not in _message(far)


def test_a_single_letter_gets_no_indicator_suggestion():
    # A unique prefix suggests ('trend' -> 'trend_strength'), but not from one letter.
    assert "did you mean 'trend_strength'?" in _message(lambda: parse_rules("r", {"trend": "> 0"}))
    assert "did you mean" not in _message(lambda: parse_rules("r", {"t": "> 0"}))


def test_cli_values_get_suggestions_only_when_close(tmp_path):
    def history(model: str) -> str:
        argv = ["--workspace", str(tmp_path), "history", "--model-type", model]
        return CliRunner().invoke(cli, argv).stderr

    assert "unknown value 'ridg'; did you mean 'ridge'?" in history("ridg")
    far = history("banana")
    assert "unknown value 'banana' (expected one of" in far and "did you mean" not in far
