"""Tests of forexgrid/config.py: defaults, validation messages, paths, env vars, dump, docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from forexgrid._config_io import short_repr
from forexgrid.config import (
    ENCODERS,
    ENSEMBLE_METHODS,
    MODEL_TYPES,
    PREDICTION_METHODS,
    Range,
    Settings,
    dump_config,
    load_config,
)
from forexgrid.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "configs" / "training_pipeline" / "default_config.yaml"
DOCS = ROOT / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own environment must not leak into what the tests see.
    monkeypatch.delenv("FOREXGRID_DATABASE_URL", raising=False)
    monkeypatch.delenv("FOREXGRID_WORKSPACE", raising=False)


def _write(tmp_path: Path, text: str | bytes, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


# --------------------------------------------------------------------------- defaults


def test_constants_list_the_valid_names() -> None:
    assert MODEL_TYPES == (
        "random_forest",
        "gradient_boosting",
        "xgboost",
        "lightgbm",
        "linear_regression",
        "ridge",
        "lasso",
        "elasticnet",
    )
    assert ENCODERS == ("time_delta", "absolute", "normalized")
    assert PREDICTION_METHODS == ("direct", "recursive", "direct_multi")
    assert ENSEMBLE_METHODS == ("mean", "weighted", "stacking")


def test_default_file_holds_exactly_the_defaults() -> None:
    from_file = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert from_file == Settings().model_dump(mode="json")
    assert load_config(None).model_dump(mode="json") == from_file
    assert load_config(DEFAULT_YAML) == load_config(None)


def test_default_values_spot_check() -> None:
    cfg = load_config(None)
    assert cfg.queue.max_parallel_queues == 1
    assert cfg.inference_grid.confidence_thresholds == (0.0, 0.3, 0.5, 0.7, 0.9)
    assert cfg.inference_grid.lookback_windows == (50, 100, 200)
    assert cfg.grid.timeframes == ("1h", "4h")
    assert cfg.grid.indicator_timeframes == ((),)
    assert cfg.evaluation.spread_pips == {"default": 1.0}
    assert cfg.execution.scheduler_address is None
    assert cfg.execution.seed == 42


def test_every_key_in_default_file_has_a_comment() -> None:
    lines = DEFAULT_YAML.read_text(encoding="utf-8").splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if not re.match(r"\s*[A-Za-z_]\w*:", line):
            continue
        previous = next((p for p in reversed(lines[:i]) if p.strip()), "")
        if not previous.lstrip().startswith("#") and "#" not in line:
            uncommented.append(line.strip())
    assert uncommented == []
    # Guard against a regex that matches nothing: every section, key and nested key counts.
    defaults = Settings().model_dump(mode="json")
    expected = sum(
        1 + sum(1 + len(v) if isinstance(v, dict) else 1 for v in keys.values())
        for keys in defaults.values()
    )
    assert sum(1 for line in lines if re.match(r"\s*[A-Za-z_]\w*:", line)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "# nothing but a comment\n", "---\n", "queue:\n", "queue: null\ngrid:\n"],
    ids=["empty", "comment-only", "document-marker", "empty-section", "null-sections"],
)
def test_empty_file_or_sections_give_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(_write(tmp_path, text)) == load_config(None)


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "queue:\n  max_parallel_queues: 3\n"))
    assert cfg.queue.max_parallel_queues == 3
    assert cfg.queue.auto_checkpoint_interval == 10
    assert cfg.model_dump(exclude={"queue"}) == Settings().model_dump(exclude={"queue"})


def test_settings_are_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.queue.max_parallel_queues = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- normalisation


def test_values_are_normalised(tmp_path: Path) -> None:
    text = """
grid:
  model_types: [ridge]
  timeframes: [H1, 4H, M15, D1]
  symbols: [eurusd, GbpJpy]
  indicator_timeframes: [[], [H4], [1D, 4h]]
  hyperparameters: {ridge: {alpha: [0.1, 1.0], fit_intercept: true}}
logging:
  level: warning
evaluation:
  spread_pips: {Default: 0.5, usdjpy: 1.5}
  pip_size: {xauusd: 0.1}
"""
    cfg = load_config(_write(tmp_path, text))
    assert cfg.grid.timeframes == ("1h", "4h", "15m", "1d")
    assert cfg.grid.symbols == ("EURUSD", "GBPJPY")
    assert cfg.grid.indicator_timeframes == ((), ("4h",), ("1d", "4h"))
    assert cfg.grid.hyperparameters == {"ridge": {"alpha": (0.1, 1.0), "fit_intercept": True}}
    assert cfg.logging.level == "WARNING"
    assert cfg.evaluation.spread_pips == {"default": 0.5, "USDJPY": 1.5}
    assert cfg.evaluation.pip_size == {"XAUUSD": 0.1}


@pytest.mark.parametrize(
    ("symbol", "spread", "pip"),
    [
        ("EURUSD", 1.0, 0.0001),
        ("eurusd", 1.0, 0.0001),
        ("USDJPY", 1.5, 0.01),
        ("gbpjpy", 2.0, 0.01),
        ("XAUUSD", 1.0, 0.1),
    ],
    ids=["listed-default", "lower-case", "jpy-spread", "jpy-pip", "pip-override"],
)
def test_spread_and_pip_size_lookup(symbol: str, spread: float, pip: float) -> None:
    cfg = load_config(
        {
            "evaluation": {
                "spread_pips": {"default": 1.0, "USDJPY": 1.5, "GBPJPY": 2.0},
                "pip_size": {"XAUUSD": 0.1},
            }
        }
    )
    assert cfg.evaluation.spread_for(symbol) == spread
    assert cfg.evaluation.pip_size_for(symbol) == pip


def test_dask_backend_with_address_is_accepted() -> None:
    cfg = load_config(
        {"execution": {"backend": "dask", "scheduler_address": "tcp://127.0.0.1:8786"}}
    )
    assert cfg.execution.scheduler_address == "tcp://127.0.0.1:8786"


# --------------------------------------------------------------------------- malformed


MALFORMED = [
    ("top-level-list", "- data\n- queue\n", "top level: must be a mapping of sections (data, "
     "database, storage, queue, recovery, model_management, inference_grid, logging, "
     "evaluation, features, regimes, selection, execution, grid), got ['data', 'queue']"),
    ("section-not-mapping", "queue: 5\n", "queue: must be a mapping, got 5"),
    ("unknown-section", "storag:\n  artifacts_dir: x\n",
     "storag: unknown key; did you mean 'storage'?"),
    ("unknown-nested-key", "queue:\n  max_paralel_queues: 2\n",
     "queue.max_paralel_queues: unknown key; did you mean 'max_parallel_queues'?"),
    ("unknown-key-no-match", "queue:\n  colour: red\n", "queue.colour: unknown key (allowed "
     "keys: max_parallel_queues, auto_checkpoint_interval, max_inference_workers)"),
    ("string-for-int", "queue:\n  max_parallel_queues: 'two'\n",
     "queue.max_parallel_queues: must be an integer, got 'two'"),
    ("numeric-string-for-int", "features:\n  window: '32'\n",
     "features.window: must be an integer, got '32'"),
    ("bool-for-int", "queue:\n  max_parallel_queues: true\n",
     "queue.max_parallel_queues: must be an integer, got True"),
    ("float-for-int", "grid:\n  horizons: [1, 2.5]\n",
     "grid.horizons[1]: must be an integer, got 2.5"),
    ("string-for-bool", "database:\n  echo: 'maybe'\n",
     "database.echo: must be true or false, got 'maybe'"),
    ("out-of-range", "queue:\n  max_parallel_queues: 0\n",
     "queue.max_parallel_queues: must be between 1 and 1024, got 0"),
    ("huge-integer", "execution:\n  workers: 99999999999999999999\n",
     "execution.workers: must be between 1 and 1024, got 99999999999999999999"),
    ("huge-integer-in-list", "grid:\n  days_history: [60, 99999999999999999999]\n",
     "grid.days_history[1]: must be between 1 and 36500, got 99999999999999999999"),
    ("huge-float", "logging:\n  max_log_size_mb: 1.0e+300\n",
     "logging.max_log_size_mb: must be between 0.001 and 102400, got 1e+300"),
    ("infinite-float", "database:\n  busy_timeout_seconds: .inf\n",
     "database.busy_timeout_seconds: must be a finite number, got inf"),
    ("huge-backup-count", "logging:\n  backup_count: 100000000000\n",
     "logging.backup_count: must be between 0 and 1000, got 100000000000"),
    ("too-many-pbo-blocks", "selection:\n  pbo_blocks: 22\n",
     "selection.pbo_blocks: must be between 2 and 20, got 22"),
    ("huge-hyperparameter", "grid:\n  model_types: [xgboost]\n  hyperparameters: {xgboost: "
     "{max_depth: 99999999999999999999}}\n", "grid.hyperparameters.xgboost.max_depth: integers "
     "must be between -2147483648 and 2147483647 (what the model libraries accept), got "
     "99999999999999999999"),
    ("nan-hyperparameter", "grid:\n  model_types: [ridge]\n  hyperparameters: {ridge: "
     "{alpha: [1.0, .nan]}}\n", "grid.hyperparameters.ridge.alpha: numbers must be finite, "
     "got [1.0, nan]"),
    ("zero-for-positive-number", "recovery:\n  detect_crash_after_minutes: 0\n",
     "recovery.detect_crash_after_minutes: must be > 0 and <= 10080, got 0"),
    ("threshold-above-one", "inference_grid:\n  confidence_thresholds: [0.0, 0.5, 1.5]\n",
     "inference_grid.confidence_thresholds[2]: must be between 0 and 1, got 1.5"),
    ("lookback-too-small", "inference_grid:\n  lookback_windows: [1]\n",
     "inference_grid.lookback_windows[0]: must be between 2 and 10000, got 1"),
    ("unknown-prediction-method", "inference_grid:\n  prediction_methods: [direct, recursiv]\n",
     "inference_grid.prediction_methods[1]: unknown prediction method; did you mean "
     "'recursive'? (expected one of: direct, recursive, direct_multi), got 'recursiv'"),
    ("empty-prediction-methods", "inference_grid:\n  prediction_methods: []\n",
     "inference_grid.prediction_methods: must not be empty, got []"),
    ("unknown-model-type", "grid:\n  model_types: [xgboost, prophet]\n",
     "grid.model_types[1]: unknown model type (expected one of: random_forest, "
     "gradient_boosting, xgboost, lightgbm, linear_regression, ridge, lasso, elasticnet), "
     "got 'prophet'"),
    ("unknown-hyperparameter-model", "grid:\n  hyperparameters: {xgbost: {max_depth: 3}}\n",
     "grid.hyperparameters.xgbost: unknown model type; did you mean 'xgboost'? (expected "
     "one of: random_forest, gradient_boosting, xgboost, lightgbm, linear_regression, ridge, "
     "lasso, elasticnet), got 'xgbost'"),
    ("hyperparameters-for-model-not-in-grid", "grid:\n  hyperparameters: {ridge: {alpha: 1}}\n",
     "grid.hyperparameters: hyperparameters given for model type 'ridge', which is not in "
     "grid.model_types (xgboost, lightgbm); add it there or remove them, got "
     "{'ridge': {'alpha': 1}}"),
    ("bad-hyperparameter-value",
     "grid:\n  model_types: [ridge]\n  hyperparameters: {ridge: {alpha: {a: 1}}}\n",
     "grid.hyperparameters.ridge.alpha: must be a value or a non-empty list of values, "
     "got {'a': 1}"),
    ("bad-timeframe", "grid:\n  timeframes: [1h, 2h]\n",
     "grid.timeframes[1]: unknown timeframe (expected one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d, "
     "or an alias such as M15, H1, 1H, 60m, H4, 4H, D1, 1D), got '2h'"),
    ("untrainable-timeframe", "grid:\n  timeframes: [5m]\n",
     "grid.timeframes[0]: timeframe '5m' cannot be trained on (expected one of: 15m, 1h, "
     "4h, 1d), got '5m'"),
    ("duplicate-after-alias", "grid:\n  timeframes: [1h, H1]\n",
     "grid.timeframes: duplicate entry '1h' (entries must be distinct), got ['1h', 'H1']"),
    ("duplicate-entries", "grid:\n  days_history: [60, 90, 60]\n",
     "grid.days_history: duplicate entry 60 (entries must be distinct), got [60, 90, 60]"),
    ("duplicate-indicator-option", "grid:\n  indicator_timeframes: [[4h, 1d], [1d, 4h]]\n",
     "grid.indicator_timeframes: duplicate entry ['1d', '4h'] (entries must be distinct), "
     "got [['4h', '1d'], ['1d', '4h']]"),
    ("empty-grid-list", "grid:\n  symbols: []\n", "grid.symbols: must not be empty, got []"),
    ("scalar-for-list", "grid:\n  symbols: EURUSD\n",
     "grid.symbols: must be a list, got 'EURUSD'"),
    ("bad-log-level", "logging:\n  level: verbose\n", "logging.level: unknown log level "
     "(expected one of: DEBUG, INFO, WARNING, ERROR, CRITICAL), got 'verbose'"),
    ("dask-without-address", "execution:\n  backend: dask\n",
     "execution.scheduler_address: required when backend is 'dask' (like "
     "'tcp://127.0.0.1:8786'), got None"),
    ("unknown-backend", "execution:\n  backend: ray\n", "execution.backend: unknown execution "
     "backend (expected one of: local, dask, papermill), got 'ray'"),
    ("seed-too-large", "execution:\n  seed: 4294967296\n",
     "execution.seed: must be between 0 and 4294967295, got 4294967296"),
    ("spread-without-default", "evaluation:\n  spread_pips: {EURUSD: 1.0}\n",
     "evaluation.spread_pips: must contain a 'default' entry (the spread of unlisted "
     "symbols), got {'EURUSD': 1.0}"),
    ("negative-spread", "evaluation:\n  spread_pips: {default: 1.0, EURUSD: -0.5}\n",
     "evaluation.spread_pips.EURUSD: must be between 0 and 1000, got -0.5"),
    ("colliding-spread-keys", "evaluation:\n  spread_pips: {default: 1, eurusd: 1, EURUSD: 2}\n",
     "evaluation.spread_pips: keys 'eurusd' and 'EURUSD' name the same entry, "
     "got {'default': 1, 'eurusd': 1, 'EURUSD': 2}"),
    ("bad-symbol", "grid:\n  symbols: [EUR/USD]\n", "grid.symbols[0]: symbol must contain "
     "only letters and digits, like 'EURUSD', got 'EUR/USD'"),
    ("long-symbol", "grid:\n  symbols: [EURUSD" + "X" * 15 + "]\n", "grid.symbols[0]: "
     "symbol must be at most 20 characters long, got 'EURUSDXXXXXXXXXXXXXXX'"),
    ("bad-symbol-key", "evaluation:\n  pip_size: {EUR/USD: 0.0001}\n",
     "evaluation.pip_size['EUR/USD']: symbol must contain only letters and digits, like "
     "'EURUSD', got 'EUR/USD'"),
    ("bad-timezone", "data:\n  default_tz: Europe/Londn\n", "data.default_tz: unknown time "
     "zone; did you mean 'Europe/London'? (expected an IANA name like 'UTC'), got "
     "'Europe/Londn'"),
    ("empty-path", "storage:\n  artifacts_dir: ''\n",
     "storage.artifacts_dir: must not be empty, got ''"),
    ("not-a-url", "database:\n  url: forexgrid.db\n", "database.url: must be an SQLAlchemy "
     "URL like 'sqlite:///forexgrid.db' or 'postgresql+psycopg://user@host/dbname', got "
     "'forexgrid.db'"),
    ("nan", "selection:\n  min_score: .nan\n", "selection.min_score: must be a finite "
     "number, got nan"),
    ("several-errors", "queue:\n  max_parallel_queues: 0\n  auto_checkpoint_interval: 0\n"
     "features:\n  window: 1\n", "queue.max_parallel_queues: must be between 1 and 1024, got 0 "
     "(and 2 more)"),
    ("yaml-syntax", "queue:\n  max_parallel_queues: 1\n bad: 2\n", "line 3, column 2: "
     "invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing "
     "a block mapping on line 1)"),
    ("yaml-unclosed-list", "grid:\n  horizons: [1, 3\n", "line 3, column 1: invalid YAML: "
     "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence on line 2)"),
    ("duplicate-yaml-key", "queue:\n  max_parallel_queues: 1\nqueue:\n  max_parallel_queues: "
     "2\n", "line 3, column 1: invalid YAML: duplicate key 'queue' (first given on line 1)"),
    ("unsafe-tag", "queue: !!python/object:os.system {}\n", "line 1, column 8: invalid YAML: "
     "could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object:os.system'"),
    ("invalid-utf8", b"data:\n  data_dir: 'caf\xe9'\n", "line 2: not valid UTF-8 text, "
     "got b'\\xe9'"),
    ("yaml-integer-too-long", "execution:\n  workers: " + "9" * 5000 + "\n",
     "line 2, column 12: invalid YAML: an integer of 5000 digits (at most 4300 are read)"),
    ("yaml-impossible-date", "data:\n  data_dir: 2017-13-45\n", "line 2, column 13: "
     "invalid YAML: cannot read '2017-13-45' as a timestamp (month must be in 1..12); quote "
     "it to make it text"),
    ("yaml-bad-float-tag", "selection:\n  min_score: !!float abc\n", "line 2, column 14: "
     "invalid YAML: cannot read 'abc' as a float (could not convert string to float: 'abc'); "
     "quote it to make it text"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_config_message(tmp_path: Path, text: str | bytes, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=_exact(f"{path}: {expected}")):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=_exact(f"{path}: config file not found")):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    expected = f"{tmp_path}: is a directory, expected a YAML config file"
    with pytest.raises(ConfigError, match=_exact(expected)):
        load_config(tmp_path)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "link-to-dev-zero", "huge"])
def test_config_files_that_cannot_be_read_safely_are_refused(tmp_path: Path, kind: str) -> None:
    import os

    path = {"dev-zero": Path("/dev/zero")}.get(kind, tmp_path / "cfg.yaml")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        with open(path, "wb") as handle:
            handle.truncate(20 << 30)  # sparse: refused from its size, never read
    expected = {
        "dev-zero": f"{path}: is a character device, not a regular file; expected a YAML "
        "config file",
        "fifo": f"{path}: is a FIFO (named pipe), not a regular file; expected a YAML config file",
        "link-to-dev-zero": f"{path}: is a character device, not a regular file; expected a "
        "YAML config file",
        "huge": f"{path}: the file is 21,474,836,480 bytes (20,480.0 MB), more than the limit "
        "of 10,485,760 bytes (10.0 MB); a configuration is a few kilobytes",
    }[kind]
    with pytest.raises(ConfigError, match=_exact(expected)):
        load_config(path)


def test_dict_input_is_labelled() -> None:
    expected = "<dict>: features.windw: unknown key; did you mean 'window'?"
    with pytest.raises(ConfigError, match=_exact(expected)):
        load_config({"features": {"windw": 48}})


def test_long_values_are_shortened() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"queue": {"max_parallel_queues": "x" * 10_000_000}})
    message = str(info.value)
    assert message.endswith("... (10,000,000 characters)")
    assert len(message) < 200


@pytest.mark.parametrize(
    "data",
    [
        {"evaluation": {"pip_size": {"E" * 1_000_000: 0.1}}},
        {"evaluation": {"spread_pips": {"default": 1, "e" * 1_000_000: 1, "E" * 1_000_000: 2}}},
        {"grid": {"symbols": ["EURUSD", "EUR/" * 1_000_000]}},
        {"queue": {"x" * 1_000_000: 1}},
        {"data": {"default_tz": "Europe/" + "x" * 1_000_000}},
    ],
    ids=["dict-key", "colliding-keys", "list-item", "unknown-key", "time-zone"],
)
def test_huge_values_and_keys_give_a_short_message(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert len(str(info.value)) < 600, str(info.value)[:600]


def test_wrong_argument_type() -> None:
    with pytest.raises(TypeError, match=re.escape("takes a path, a mapping or None, got 5")):
        load_config(5)  # type: ignore[arg-type]


def test_bom_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, b"\xef\xbb\xbfqueue:\n  max_parallel_queues: 2\n"))
    assert cfg.queue.max_parallel_queues == 2


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_SECTIONS = st.sampled_from([*Settings.model_fields, "storag"])


@st.composite
def _configs(draw: st.DrawFn) -> dict[str, Any]:
    section = draw(_SECTIONS)
    model = Settings.model_fields.get(section)
    keys = list(model.annotation.model_fields) if model is not None else []
    key = draw(st.sampled_from([*keys, "extra"]))
    return {section: {key: draw(_VALUES)}}


@settings(max_examples=150, deadline=None)
@given(_configs())
def test_any_input_gives_settings_or_one_line_config_error(data: dict[str, Any]) -> None:
    try:
        load_config(data)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("<dict>: ")
        assert "\n" not in message


# --------------------------------------------------------------------------- environment


def test_database_url_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:55432/forexgrid_test"
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", url)
    assert load_config(None).database.url == url
    path = _write(tmp_path, "database:\n  url: 'sqlite:///other.db'\n  echo: true\n")
    cfg = load_config(path)
    assert cfg.database.url == url
    assert cfg.database.echo is True
    assert cfg.database_url == url


def test_database_url_env_empty_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", "")
    assert load_config(None).database.url == "sqlite:///forexgrid.db"


def test_bad_database_url_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", "not a url")
    expected = (
        "$FOREXGRID_DATABASE_URL: database.url: must be an SQLAlchemy URL like "
        "'sqlite:///forexgrid.db' or 'postgresql+psycopg://user@host/dbname', got 'not a url'"
    )
    with pytest.raises(ConfigError, match=_exact(expected)):
        load_config(None)


def test_workspace_defaults_to_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.workspace == tmp_path
    assert cfg.data_path == tmp_path / "data"


def test_workspace_from_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_ws, arg_ws = tmp_path / "env", tmp_path / "arg"
    monkeypatch.setenv("FOREXGRID_WORKSPACE", str(env_ws))
    assert load_config(None).workspace == env_ws
    assert load_config(None, workspace=arg_ws).workspace == arg_ws


def test_relative_paths_resolve_against_workspace(tmp_path: Path) -> None:
    cfg = load_config(None, workspace=tmp_path)
    assert cfg.data_path == tmp_path / "data"
    assert cfg.artifacts_path == tmp_path / "artifacts"
    assert cfg.checkpoints_path == tmp_path / "checkpoints" / "training_pipeline"
    assert cfg.log_path == tmp_path / "logs" / "training_pipeline.log"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'forexgrid.db'}"
    assert cfg.resolve_path("../x") == tmp_path.parent / "x"
    assert cfg.resolve_path("/abs/y") == Path("/abs/y")
    assert cfg.resolve_path("~/z") == Path.home() / "z"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///db/fx.db", "sqlite:///{ws}/db/fx.db"),
        ("sqlite+pysqlite:///fx.db?timeout=5", "sqlite+pysqlite:///{ws}/fx.db?timeout=5"),
        ("sqlite:////abs/fx.db", "sqlite:////abs/fx.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u@127.0.0.1/fx", "postgresql+psycopg://u@127.0.0.1/fx"),
    ],
    ids=["relative", "driver-and-query", "absolute", "memory-empty", "memory", "postgres"],
)
def test_database_url_resolution(tmp_path: Path, url: str, expected: str) -> None:
    cfg = load_config({"database": {"url": url}}, workspace=tmp_path)
    assert cfg.database_url == expected.format(ws=tmp_path)


# --------------------------------------------------------------------------- dump


def test_dump_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(
        {
            "grid": {
                "timeframes": ["H1", "1d"],
                "indicator_timeframes": [[], ["4h", "1d"]],
                "model_types": ["ridge", "lasso"],
                "hyperparameters": {"ridge": {"alpha": [0.1, 1.0]}, "lasso": {"alpha": 0.5}},
            },
            "evaluation": {"spread_pips": {"default": 0.8, "usdjpy": 1.2}},
            "execution": {"backend": "dask", "scheduler_address": "tcp://127.0.0.1:8786"},
            "logging": {"level": "debug"},
        },
        workspace=tmp_path,
    )
    text = dump_config(cfg)
    assert text.startswith(f"# forexgrid effective configuration; workspace: {tmp_path}\n")
    again = load_config(_write(tmp_path, text), workspace=tmp_path)
    assert again == cfg
    assert load_config(_write(tmp_path, dump_config(load_config(None)), "d.yaml")) == (
        load_config(None)
    )


def test_dump_config_hides_database_password() -> None:
    cfg = load_config({"database": {"url": "postgresql://fx:s3cret@db.example/fx"}})
    assert "s3cret" not in dump_config(cfg)
    assert "postgresql://fx:***@db.example/fx" in dump_config(cfg)
    assert "s3cret" in dump_config(cfg, hide_password=False)


# --------------------------------------------------------------------------- docs


def _doc_sections() -> dict[str, str]:
    parts = re.split(r"^## `(\w+)`$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_docs_list_every_key_with_its_default() -> None:
    sections = _doc_sections()
    defaults = Settings().model_dump(mode="json")
    assert list(sections) == list(defaults)
    problems = []
    for section, keys in defaults.items():
        for key, default in keys.items():
            row = re.search(rf"^\| `{key}` \| `([^`]*)` \|(.*)$", sections[section], re.MULTILINE)
            if row is None:
                problems.append(f"{section}.{key}: no row")
                continue
            if yaml.safe_load(row.group(1)) != default:
                problems.append(f"{section}.{key}: documented default {row.group(1)}")
            # Leaf keys below a mapping default (spread_pips.default) are named in the row.
            nested = default if isinstance(default, dict) else {}
            problems += [f"{section}.{key}.{n}" for n in nested if f"`{n}`" not in row.group(2)]
    assert problems == []


def test_docs_name_the_environment_variables() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE"):
        assert f"| `{name}` |" in text


# --------------------------------------------------------------------------- numeric ranges


def _numbers(annotation: Any, metadata: tuple[Any, ...] = ()) -> Iterator[tuple[Any, Any, Any]]:
    """(container, int or float, Range or None) for every number in a field's type."""
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        yield from _numbers(base, (*metadata, *extra))
        return
    if annotation in (int, float):
        ranges = [getattr(m, "func", None) for m in metadata]
        yield None, annotation, next((r for r in ranges if isinstance(r, Range)), None)
        return
    origin = get_origin(annotation)
    for arg in get_args(annotation):
        if arg is not Ellipsis:
            for _, kind, found in _numbers(arg):
                yield origin, kind, found


def _numeric_fields() -> list[tuple[str, str, Any, Any, Range | None]]:
    out = []
    for section, field in Settings.model_fields.items():
        for key, info in field.annotation.model_fields.items():
            for container, kind, found in _numbers(info.annotation, tuple(info.metadata)):
                out.append((section, key, container, kind, found))
    return out


NUMERIC = _numeric_fields()
RANGED = [n for n in NUMERIC if n[4] is not None]
RANGED_IDS = [f"{n[0]}.{n[1]}" for n in RANGED]


def test_every_number_has_a_range() -> None:
    assert len(NUMERIC) >= 30
    assert [f"{n[0]}.{n[1]}" for n in NUMERIC if n[4] is None] == []


def _wrap(section: str, key: str, container: Any, value: Any) -> tuple[dict[str, Any], str]:
    """A config with ``value`` at the key, and the key path an error names."""
    if container is tuple:
        return {section: {key: [value]}}, f"{section}.{key}[0]"
    if container is dict:
        entry = "default" if key == "spread_pips" else "EURUSD"
        return {section: {key: {entry: value}}}, f"{section}.{key}.{entry}"
    return {section: {key: value}}, f"{section}.{key}"


@pytest.mark.parametrize(("section", "key", "container", "kind", "bounds"), RANGED, ids=RANGED_IDS)
def test_values_outside_the_range_name_the_key_and_the_range(
    section: str, key: str, container: Any, kind: type, bounds: Range
) -> None:
    if kind is int:
        low, high = int(bounds.low), int(bounds.high)
        outside = [low - 1, high + 1, 10**20, -(10**20), 10**400]
        inside = [low, high]
    else:
        low, high = float(bounds.low), float(bounds.high)
        below = low if bounds.low_open else low - max(abs(low), 1.0) / 2
        outside = [below, high + 1.0, 1e300, -1e300, 10**20, -(10**400)]
        inside = [high, (low + high) / 2] + ([] if bounds.low_open else [low])
    for value in outside:
        data, where = _wrap(section, key, container, value)
        shown = short_repr(value)
        message = f"<dict>: {where}: must be {bounds.text}, got {shown}"
        with pytest.raises(ConfigError, match=_exact(message)):
            load_config(data)
    for value in inside:
        data, _ = _wrap(section, key, container, value)
        if key == "spread_pips" or container is not dict:
            load_config(data)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=str)
@pytest.mark.parametrize(
    ("section", "key", "container"),
    [n[:3] for n in RANGED if n[3] is float],
    ids=[i for n, i in zip(RANGED, RANGED_IDS, strict=True) if n[3] is float],
)
def test_non_finite_numbers_are_refused(section: str, key: str, container: Any, value: float):
    data, where = _wrap(section, key, container, value)
    message = f"<dict>: {where}: must be a finite number, got {value!r}"
    with pytest.raises(ConfigError, match=_exact(message)):
        load_config(data)


def test_docs_show_every_range() -> None:
    sections = _doc_sections()
    missing = []
    for section, key, _, _, bounds in NUMERIC:
        row = re.search(rf"^\| `{key}` \|.*$", sections[section], re.MULTILINE)
        assert row is not None, f"{section}.{key}"
        if bounds is not None and bounds.text not in row.group(0):
            missing.append(f"{section}.{key}: {bounds.text}")
    assert missing == []


def test_shipped_configs_and_examples_are_inside_the_ranges() -> None:
    # Every YAML config in the repository and every yaml block in the docs loads.
    texts = [p.read_text(encoding="utf-8") for p in ROOT.glob("configs/**/*.yaml")]
    for doc in [*ROOT.glob("docs/*.md"), ROOT / "README.md"]:
        texts += re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)
    assert texts
    for text in texts:
        data = yaml.safe_load(text)
        if isinstance(data, dict) and set(data) <= set(Settings.model_fields):
            load_config(data)
