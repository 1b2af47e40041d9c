"""The YAML configuration: pydantic models of every section, ``load_config`` and ``dump_config``.

Every model is frozen and forbids unknown keys. A partial file takes defaults for the keys it
leaves out, an empty file (or ``load_config(None)``) gives the defaults. Validation errors
become one-line :class:`~forexgrid.exceptions.ConfigError` messages of the form
``<file>: <dotted.path[index]>: <problem>, got <repr of value>``. The reference of every key
is ``docs/configuration.md``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from forexgrid import _limits
from forexgrid._config_io import (
    convert_validation_error,
    describe_error,
    format_loc,
    read_yaml,
    short_repr,
)
from forexgrid._suggest import close_match
from forexgrid.exceptions import ConfigError, DataError, quote_input

__all__ = [
    "DATABASE_URL_ENV",
    "ENCODERS",
    "ENSEMBLE_METHODS",
    "EXECUTION_BACKENDS",
    "SELECTION_SCORES",
    "LOG_LEVELS",
    "MODEL_TYPES",
    "PREDICTION_METHODS",
    "WORKSPACE_ENV",
    "DataConfig",
    "DatabaseConfig",
    "EvaluationConfig",
    "ExecutionConfig",
    "FeaturesConfig",
    "GridConfig",
    "InferenceGridConfig",
    "LoggingConfig",
    "ModelManagementConfig",
    "QueueConfig",
    "RecoveryConfig",
    "RegimesConfig",
    "SelectionConfig",
    "Settings",
    "StorageConfig",
    "dump_config",
    "load_config",
    "override_grid",
]

logger = logging.getLogger(__name__)

MODEL_TYPES: tuple[str, ...] = (
    "random_forest",
    "gradient_boosting",
    "xgboost",
    "lightgbm",
    "linear_regression",
    "ridge",
    "lasso",
    "elasticnet",
)
ENCODERS: tuple[str, ...] = ("time_delta", "absolute", "normalized")
PREDICTION_METHODS: tuple[str, ...] = ("direct", "recursive", "direct_multi")
ENSEMBLE_METHODS: tuple[str, ...] = ("mean", "weighted", "stacking")
EXECUTION_BACKENDS: tuple[str, ...] = ("local", "dask", "papermill")
SELECTION_SCORES: tuple[str, ...] = ("deflated_sharpe", "val_sharpe")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

WORKSPACE_ENV = "FOREXGRID_WORKSPACE"
DATABASE_URL_ENV = "FOREXGRID_DATABASE_URL"

_SYMBOL_RE = re.compile(r"[A-Za-z0-9]+")
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+._-]*://\S*")
_SQLITE_RE = re.compile(r"(sqlite(?:\+\w+)?):///(.*)", re.DOTALL)
_PASSWORD_RE = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)(@)")


# --------------------------------------------------------------------------- value checks


def _invalid(problem: str) -> PydanticCustomError:
    # The problem travels in the context so braces in it are never taken as a template.
    return PydanticCustomError("forexgrid", "{problem}", {"problem": problem})


def _unknown(kind: str, value: str, allowed: tuple[str, ...]) -> PydanticCustomError:
    close = close_match(value.lower(), allowed)
    hint = f"; did you mean {close!r}?" if close else ""
    return _invalid(f"unknown {kind}{hint} (expected one of: {', '.join(allowed)})")


def _choice(kind: str, allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise _unknown(kind, value, allowed)
        return value

    return AfterValidator(check)


def _symbol(value: str) -> str:
    if not _SYMBOL_RE.fullmatch(value):
        raise _invalid("symbol must contain only letters and digits, like 'EURUSD'")
    if len(value) > _limits.MAX_SYMBOL_LENGTH:
        raise _invalid(f"symbol must be at most {_limits.MAX_SYMBOL_LENGTH} characters long")
    return value.upper()


def _spread_key(value: str) -> str:
    # "default" is the fallback entry, not a symbol; any spelling of it means the same.
    return "default" if value.lower() == "default" else _symbol(value)


def _normalize_timeframe(value: str) -> str:
    # Imported here, not at module level: forexgrid.data may itself read the config.
    from forexgrid.data.timeframes import TIMEFRAMES, normalize_timeframe

    try:
        return normalize_timeframe(value)
    except DataError:
        raise _invalid(
            f"unknown timeframe (expected one of: {', '.join(TIMEFRAMES)}, or an alias such "
            "as M15, H1, 1H, 60m, H4, 4H, D1, 1D)"
        ) from None


def _trainable_timeframe(value: str) -> str:
    from forexgrid.data.timeframes import TRAINABLE_TIMEFRAMES

    canonical = _normalize_timeframe(value)
    if canonical not in TRAINABLE_TIMEFRAMES:
        raise _invalid(
            f"timeframe {canonical!r} cannot be trained on "
            f"(expected one of: {', '.join(TRAINABLE_TIMEFRAMES)})"
        )
    return canonical


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = close_match(value, sorted(zoneinfo.available_timezones()))
        hint = f"; did you mean {close!r}?" if close else ""
        raise _invalid(f"unknown time zone{hint} (expected an IANA name like 'UTC')") from None
    return value


def _log_level(value: str) -> str:
    upper = value.upper()
    if upper not in LOG_LEVELS:
        raise _unknown("log level", upper, LOG_LEVELS)
    return upper


def _database_url(value: str) -> str:
    if not _URL_RE.fullmatch(value):
        raise _invalid(
            "must be an SQLAlchemy URL like 'sqlite:///forexgrid.db' or "
            "'postgresql+psycopg://user@host/dbname'"
        )
    return value


def _scheduler_address(value: str) -> str:
    if not _URL_RE.fullmatch(value) and not re.fullmatch(r"[^\s/:]+:\d+", value):
        raise _invalid("must be a scheduler address like 'tcp://127.0.0.1:8786'")
    return value


def _hyper_scalar(value: Any) -> None:
    # The model libraries take C ints and finite floats; say so here, not in a worker.
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not _limits.INT32_MIN <= value <= _limits.INT32_MAX:
        raise _invalid(
            f"integers must be between {_limits.INT32_MIN} and {_limits.INT32_MAX} "
            "(what the model libraries accept)"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid("numbers must be finite")


def _hyper_value(value: Any) -> Any:
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        _hyper_scalar(value)
        return value
    if isinstance(value, list) and value and all(isinstance(v, scalar) for v in value):
        for item in value:
            _hyper_scalar(item)
        # A list is a set of grid options; stored as a tuple so the setting stays immutable.
        return tuple(value)
    raise _invalid("must be a value or a non-empty list of values")


def _distinct(
    *, allow_empty: bool = False, key: Callable[[Any], Hashable] = lambda v: v
) -> AfterValidator:
    def check(values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not values and not allow_empty:
            raise _invalid("must not be empty")
        seen: set[Hashable] = set()
        for value in values:
            if key(value) in seen:
                shown = list(value) if isinstance(value, tuple) else value
                raise _invalid(f"duplicate entry {quote_input(shown)} (entries must be distinct)")
            seen.add(key(value))
        return values

    return AfterValidator(check)


def _no_colliding_keys(normalise: Callable[[str], str]) -> BeforeValidator:
    # dict validation keeps the last of two keys that normalise alike; refuse that instead.
    def check(value: Any) -> Any:
        if isinstance(value, Mapping):
            seen: dict[str, str] = {}
            for raw in value:
                if not isinstance(raw, str) or not _SYMBOL_RE.fullmatch(raw):
                    continue  # reported by the key validator
                norm = normalise(raw)
                if norm in seen:
                    raise _invalid(
                        f"keys {quote_input(seen[norm])} and {quote_input(raw)} name the same "
                        "entry"
                    )
                seen[norm] = raw
        return value

    return BeforeValidator(check)


# --------------------------------------------------------------------------- numeric ranges


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting: ``low <= x <= high`` (``low < x`` if open).

    Every numeric field of the settings carries one (a test checks it), and
    ``docs/configuration.md`` shows :attr:`text` for each.
    """

    low: float
    high: float
    low_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    @property
    def text(self) -> str:
        """The range in words: ``between 1 and 1024`` or ``> 0 and <= 60``."""
        if self.low_open:
            return f"> {_show(self.low)} and <= {_show(self.high)}"
        return f"between {_show(self.low)} and {_show(self.high)}"

    def __call__(self, value: float) -> float:
        if value not in self:
            raise _invalid(f"must be {self.text}")
        return value


def _integer(low: int, high: int) -> Any:
    return Annotated[int, Field(strict=True), AfterValidator(Range(low, high))]


def _number(low: float, high: float, *, low_open: bool = False) -> Any:
    bounds = Range(low, high, low_open)

    def huge_int(value: Any) -> Any:
        # An int beyond float's range would be reported as "must be a number".
        if isinstance(value, int) and not isinstance(value, bool) and value not in bounds:
            raise _invalid(f"must be {bounds.text}")
        return value

    return Annotated[
        float,
        BeforeValidator(huge_int),
        Field(strict=True, allow_inf_nan=False),
        AfterValidator(bounds),
    ]


# --------------------------------------------------------------------------- field types

Str = Annotated[str, Field(strict=True, min_length=1)]
# Unbounded: kept for code that has not chosen a range yet (every setting should).
Int1 = Annotated[int, Field(strict=True, ge=1)]
Int0 = Annotated[int, Field(strict=True, ge=0)]
Days = _integer(1, _limits.MAX_DAYS)
Window = _integer(2, _limits.MAX_WINDOW)
Workers = _integer(1, _limits.MAX_WORKERS)
Count = _integer(0, 1_000_000)
Probability = _number(0, 1)
Flag = Annotated[bool, Field(strict=True)]
Symbol = Annotated[Str, AfterValidator(_symbol)]
Timeframe = Annotated[Str, AfterValidator(_trainable_timeframe)]
# Indicator timeframes may be any known one (30m indicators for a 15m model).
IndicatorTimeframe = Annotated[Str, AfterValidator(_normalize_timeframe)]
ModelType = Annotated[Str, _choice("model type", MODEL_TYPES)]
Encoder = Annotated[Str, _choice("encoder", ENCODERS)]
PredictionMethod = Annotated[Str, _choice("prediction method", PREDICTION_METHODS)]
EnsembleMethod = Annotated[Str, _choice("ensemble method", ENSEMBLE_METHODS)]
HyperValue = Annotated[Any, AfterValidator(_hyper_value)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


# --------------------------------------------------------------------------- sections


class DataConfig(_Section):
    """``data``: where market data lives and the zone of naive timestamps."""

    data_dir: Str = "./data"
    default_tz: Annotated[Str, AfterValidator(_timezone)] = "UTC"
    max_import_mb: _integer(1, _limits.MAX_IMPORT_MB) = 1024


class DatabaseConfig(_Section):
    """``database``: the SQLAlchemy URL and connection options."""

    url: Annotated[Str, AfterValidator(_database_url)] = "sqlite:///forexgrid.db"
    busy_timeout_seconds: _number(0, 3600, low_open=True) = 30.0
    echo: Flag = False


class StorageConfig(_Section):
    """``storage``: model artifacts and checkpoints."""

    artifacts_dir: Str = "./artifacts"
    checkpoints_dir: Str = "./checkpoints/training_pipeline"
    compress_old_models: Flag = True
    checkpoint_retention_days: Days = 30


class QueueConfig(_Section):
    """``queue``: parallelism and checkpoint cadence of the queue runner."""

    max_parallel_queues: Workers = 1
    auto_checkpoint_interval: _integer(1, 1_000_000) = 10
    max_inference_workers: Workers = 4


class RecoveryConfig(_Section):
    """``recovery``: crash detection and automatic resume."""

    auto_resume_on_crash: Flag = False
    detect_crash_after_minutes: _number(0, 10_080, low_open=True) = 5.0


class ModelManagementConfig(_Section):
    """``model_management``: which trained models are kept per regime."""

    delete_non_best_models: Flag = True
    keep_top_n_per_regime: _integer(1, 1000) = 1
    min_improvement_threshold: _number(0, 10) = 0.01


class InferenceGridConfig(_Section):
    """``inference_grid``: the phase-2 grid of signals, thresholds and lookbacks."""

    prediction_methods: Annotated[tuple[PredictionMethod, ...], _distinct()] = PREDICTION_METHODS
    ensemble_methods: Annotated[tuple[EnsembleMethod, ...], _distinct(allow_empty=True)] = (
        ENSEMBLE_METHODS
    )
    confidence_thresholds: Annotated[tuple[Probability, ...], _distinct()] = (
        0.0,
        0.3,
        0.5,
        0.7,
        0.9,
    )
    lookback_windows: Annotated[tuple[Window, ...], _distinct()] = (50, 100, 200)


class LoggingConfig(_Section):
    """``logging``: level and rotating log file (configured by the fronts only)."""

    level: Annotated[Str, AfterValidator(_log_level)] = "INFO"
    log_to_file: Flag = True
    log_file: Str = "./logs/training_pipeline.log"
    # At least 1 KB: RotatingFileHandler never rotates at a size that rounds to 0 bytes.
    max_log_size_mb: _number(0.001, 102_400) = 100.0
    # RotatingFileHandler renames every backup on each rollover.
    backup_count: _integer(0, 1000) = 5


class EvaluationConfig(_Section):
    """``evaluation``: validation/test windows, embargo and trading costs."""

    validation_days: Days = 60
    test_days: Days = 60
    embargo_bars: _integer(0, _limits.MAX_WINDOW) = 12
    spread_pips: Annotated[
        dict[Annotated[Str, AfterValidator(_spread_key)], _number(0, 1000)],
        _no_colliding_keys(_spread_key),
    ] = Field(default_factory=lambda: {"default": 1.0})
    pip_size: Annotated[
        dict[Symbol, _number(0, 1000, low_open=True)], _no_colliding_keys(str.upper)
    ] = Field(default_factory=dict)

    @field_validator("spread_pips")
    @classmethod
    def _has_default(cls, value: dict[str, float]) -> dict[str, float]:
        if "default" not in value:
            raise _invalid("must contain a 'default' entry (the spread of unlisted symbols)")
        return value

    def spread_for(self, symbol: str) -> float:
        """Return the spread of ``symbol`` in pips (its own entry, else ``default``)."""
        return self.spread_pips.get(symbol.upper(), self.spread_pips["default"])

    def pip_size_for(self, symbol: str) -> float:
        """Return the pip size of ``symbol`` in price units.

        The ``pip_size`` entry when there is one, else 0.01 for JPY pairs and 0.0001 for the
        rest.
        """
        key = symbol.upper()
        if key in self.pip_size:
            return self.pip_size[key]
        return 0.01 if "JPY" in key else 0.0001


class FeaturesConfig(_Section):
    """``features``: window lengths of the model inputs."""

    window: Window = 32
    rsi_window: Window = 14
    atr_window: Window = 14
    volatility_window: Window = 20
    momentum_window: Window = 10


class RegimesConfig(_Section):
    """``regimes``: trailing windows of the causal regime indicators."""

    # 3: the trend strength is a line fitted through the window (2 points always fit).
    trend_window: _integer(3, _limits.MAX_WINDOW) = 50
    volatility_window: Window = 20
    percentile_window: Window = 500
    volume_window: Window = 20


def _even(value: int) -> int:
    if value % 2:
        raise _invalid(f"must be an even number of blocks, got {value}")
    return value


class SelectionConfig(_Section):
    """``selection``: how the per-regime bests are scored, admitted and replaced."""

    score: Annotated[Str, _choice("selection score", SELECTION_SCORES)] = "deflated_sharpe"
    min_trades: Count = 20
    min_score: _number(-1000, 1000) = 0.0
    min_dsr: Probability = 0.0
    absolute_improvement_floor: _number(0, 1000) = 0.05
    # C(S, S/2) splits: 12,870 at 16 (the paper's), 184,756 at 20 (seconds per scope), and
    # about 5x more per step of 2 beyond.
    pbo_blocks: Annotated[_integer(2, 20), AfterValidator(_even)] = 16


class ExecutionConfig(_Section):
    """``execution``: executor backend, workers and the models' random seed."""

    backend: Annotated[Str, _choice("execution backend", EXECUTION_BACKENDS)] = "local"
    workers: Workers = 1
    # validate_default: the dask check must also run when the key is left out.
    scheduler_address: Annotated[Str, AfterValidator(_scheduler_address)] | None = Field(
        default=None, validate_default=True
    )
    seed: _integer(0, _limits.SEED_MAX) = 42
    # The most configurations one queue may hold (checked before any is built); the ceiling
    # keeps queue_index within a 32-bit integer with room to spare.
    max_grid_size: _integer(1, _limits.MAX_GRID_SIZE) = 100_000
    # The papermill backend (docs/batch.md): the template each configuration runs as
    # (None: the installed forexgrid.templates/train_config.ipynb, which is
    # notebooks/templates/train_config.ipynb in a source checkout) and the output folder.
    notebook: Str | None = None
    output_dir: Str = "./runs"

    @field_validator("scheduler_address", mode="after")
    @classmethod
    def _required_for_dask(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("backend") == "dask":
            raise _invalid("required when backend is 'dask' (like 'tcp://127.0.0.1:8786')")
        return value


class GridConfig(_Section):
    """``grid``: the phase-1 grid of training configurations."""

    model_types: Annotated[tuple[ModelType, ...], _distinct()] = ("xgboost", "lightgbm")
    symbols: Annotated[tuple[Symbol, ...], _distinct()] = ("EURUSD",)
    timeframes: Annotated[tuple[Timeframe, ...], _distinct()] = ("1h", "4h")
    days_history: Annotated[tuple[Days, ...], _distinct()] = (60, 90)
    horizons: Annotated[tuple[_integer(1, _limits.MAX_HORIZON), ...], _distinct()] = (1, 3)
    encoders: Annotated[tuple[Encoder, ...], _distinct()] = ("time_delta",)
    # Each inner list is one grid option; the same timeframes in another order are the same
    # option, hence the set-valued key.
    indicator_timeframes: Annotated[
        tuple[Annotated[tuple[IndicatorTimeframe, ...], _distinct(allow_empty=True)], ...],
        _distinct(key=frozenset),
    ] = ((),)
    hyperparameters: dict[ModelType, dict[Str, HyperValue]] = Field(default_factory=dict)
    skip_trained: Flag = True

    @field_validator("hyperparameters")
    @classmethod
    def _only_grid_models(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Same rule as GridSpec, so `config check` catches what building the grid would.
        models = info.data.get("model_types")
        stray = [m for m in value if models is not None and m not in models]
        if stray:
            raise _invalid(
                f"hyperparameters given for model type {stray[0]!r}, which is not in "
                f"grid.model_types ({', '.join(models)}); add it there or remove them"
            )
        return value


# --------------------------------------------------------------------------- settings


def _default_workspace() -> Path:
    env = os.environ.get(WORKSPACE_ENV)
    return Path(os.path.abspath(Path(env).expanduser())) if env else Path.cwd()


class Settings(BaseModel):
    """The whole configuration: one frozen model per section.

    Build it with :func:`load_config`. Relative paths in it are resolved against
    :attr:`workspace` by :meth:`resolve_path` and the ``*_path`` properties. Mapping-valued
    keys (``spread_pips``, ``pip_size``, ``hyperparameters``) are plain dicts, so a
    ``Settings`` is not hashable.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    data: DataConfig = Field(default_factory=DataConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    model_management: ModelManagementConfig = Field(default_factory=ModelManagementConfig)
    inference_grid: InferenceGridConfig = Field(default_factory=InferenceGridConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    regimes: RegimesConfig = Field(default_factory=RegimesConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    grid: GridConfig = Field(default_factory=GridConfig)

    _workspace: Path = PrivateAttr(default_factory=_default_workspace)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # "queue:" with nothing under it is YAML null: read it as an empty section.
        if isinstance(data, Mapping):
            return {k: {} if v is None and k in cls.model_fields else v for k, v in data.items()}
        return data

    @property
    def workspace(self) -> Path:
        """The absolute directory that relative paths in the settings are relative to."""
        return self._workspace

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        """Return ``value`` as an absolute path: ``~`` expanded, relative to the workspace."""
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self._workspace / path
        return Path(os.path.normpath(path))

    @property
    def data_path(self) -> Path:
        """Absolute ``data.data_dir``."""
        return self.resolve_path(self.data.data_dir)

    @property
    def artifacts_path(self) -> Path:
        """Absolute ``storage.artifacts_dir``."""
        return self.resolve_path(self.storage.artifacts_dir)

    @property
    def checkpoints_path(self) -> Path:
        """Absolute ``storage.checkpoints_dir``."""
        return self.resolve_path(self.storage.checkpoints_dir)

    @property
    def log_path(self) -> Path:
        """Absolute ``logging.log_file``."""
        return self.resolve_path(self.logging.log_file)

    @property
    def database_url(self) -> str:
        """``database.url`` with a relative SQLite path made absolute against the workspace.

        In-memory SQLite (``sqlite://``, ``:memory:``), ``file:`` URIs, absolute paths and
        other databases are returned unchanged.
        """
        url = self.database.url
        match = _SQLITE_RE.fullmatch(url)
        if not match:
            return url
        dialect, rest = match.groups()
        path, sep, query = rest.partition("?")
        if not path or path.startswith((":memory:", "file:")) or Path(path).is_absolute():
            return url
        return f"{dialect}:///{self.resolve_path(path)}{sep}{query}"


# --------------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    workspace: str | os.PathLike[str] | None = None,
) -> Settings:
    """Load, validate and return the settings.

    Parameters
    ----------
    path
        A YAML file, a mapping of the same shape (for tests and notebooks) or ``None`` for
        the defaults. Keys left out take their defaults; an empty file gives the defaults.
    workspace
        Directory that relative paths are resolved against. Defaults to
        ``$FOREXGRID_WORKSPACE`` if set, else the current directory.

    Returns
    -------
    Settings
        The validated, frozen settings. ``$FOREXGRID_DATABASE_URL``, when set and not
        empty, replaces ``database.url``.

    Raises
    ------
    TypeError
        ``path`` is neither a path, a mapping nor ``None``.
    ConfigError
        The file is missing, a directory, not UTF-8, not YAML, or a key or value is invalid.
        The message is one line: ``<file>: <dotted.path[index]>: <problem>, got <value>``;
        ``<defaults>`` or ``<dict>`` stands for the file when there is none.
    """
    if path is None:
        label, raw = "<defaults>", None
    elif isinstance(path, Mapping):
        label, raw = "<dict>", path
    elif isinstance(path, (str, os.PathLike)):
        label = os.fspath(path)
        raw = read_yaml(Path(label).expanduser(), label)
    else:
        raise TypeError(f"load_config() takes a path, a mapping or None, got {quote_input(path)}")

    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{label}: top level: must be a mapping of sections "
            f"({', '.join(Settings.model_fields)}), got {short_repr(raw)}"
        )

    labels: dict[tuple[str, ...], str] = {}
    env_url = os.environ.get(DATABASE_URL_ENV)
    if env_url:
        section = raw.get("database")
        if section is None or isinstance(section, Mapping):
            raw = {**raw, "database": {**(section or {}), "url": env_url}}
            labels[("database", "url")] = f"${DATABASE_URL_ENV}"
            logger.debug("database.url taken from $%s", DATABASE_URL_ENV)

    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(convert_validation_error(exc, label, labels, Settings)) from None

    if workspace is not None:
        settings._workspace = Path(os.path.abspath(Path(workspace).expanduser()))
    logger.debug("configuration loaded from %s (workspace %s)", label, settings.workspace)
    return settings


def override_grid(
    grid: GridConfig, lists: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> GridConfig:
    """``grid`` with some of its lists replaced, validated like the file's ``grid`` section.

    The fronts pass the lists a user gave (``forexgrid run --days 60,90``) through here, so
    they meet the same types and ranges as the configuration file.

    Parameters
    ----------
    grid
        The section to start from (``settings.grid``).
    lists
        Key -> new list; ``None`` values are left as they are.
    names
        Key -> the name the user gave it (``{"days_history": "--days"}``), used in messages.

    Returns
    -------
    GridConfig

    Raises
    ------
    ConfigError
        ``<name>: <problem>, got <value>`` for the first invalid value (``grid.<key>`` for a
        key ``names`` does not name).
    """
    names = names or {}
    data = grid.model_dump(mode="json")
    data.update({key: value for key, value in lists.items() if value is not None})
    try:
        return GridConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        where = names.get(loc[0]) if loc else None
        where = where or f"grid.{format_loc(loc)}"
        raise ConfigError(f"{where}: {describe_error(first, GridConfig)}") from None


class _ShowDumper(yaml.SafeDumper):
    """Block style for mappings, one-line lists of scalars: the layout of the default file."""


def _represent_list(dumper: yaml.SafeDumper, values: list) -> yaml.Node:
    flow = all(not isinstance(v, (list, dict)) for v in values)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", values, flow_style=flow)


_ShowDumper.add_representer(list, _represent_list)


def dump_config(settings: Settings, *, hide_password: bool = True) -> str:
    """Return the effective settings as YAML, as ``forexgrid config show`` prints them.

    Parameters
    ----------
    settings
        The settings to show.
    hide_password
        Replace a password in ``database.url`` by ``***`` (the text is meant for screens
        and logs). With ``False`` the output loads back into equal settings.

    Returns
    -------
    str
        A YAML document with every key, headed by a comment naming the workspace.
    """
    data = settings.model_dump(mode="json")
    if hide_password:
        data["database"]["url"] = _PASSWORD_RE.sub(r"\1***\3", data["database"]["url"])
    body = yaml.dump(data, Dumper=_ShowDumper, sort_keys=False, allow_unicode=True)
    return f"# forexgrid effective configuration; workspace: {settings.workspace}\n{body}"
