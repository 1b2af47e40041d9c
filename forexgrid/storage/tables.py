"""The database tables (SQLAlchemy 2 declarative) and their portable column types.

Table names are the user guide's: ``training_queue``, ``training_runs``, ``inference_results``,
``regime_definitions``, ``regime_best_models``, plus ``chosen_results`` (one row per regime of
a run's validation-chosen combination), ``run_trials`` (a run's daily validation returns per
regime: its trials, kept for the grid-wide statistics), ``trial_scopes`` (the additive
statistics of all trials of one symbol, regime, rules version and validation window) and
``forexgrid_meta`` (key/value markers such as "the default regimes were seeded"). The schema
itself is created and upgraded by the Alembic migrations in ``forexgrid/storage/migrations``;
a test keeps these classes and the migrations in step.

Two column types make SQLite and PostgreSQL behave alike:

- :class:`UTCDateTime` stores UTC and always returns timezone-aware UTC datetimes (SQLite has
  no time zone support and would silently drop an offset);
- :class:`MetricFloat` stores NaN as NULL and reads NULL back as NaN (SQLite turns NaN into
  NULL anyway, PostgreSQL would keep it: one rule for both), while +/-inf round-trip on both.

Only this package imports these classes; callers get dataclasses or DataFrames.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "QUEUE_ACTIONS",
    "QUEUE_STATUSES",
    "RUN_STATUSES",
    "Base",
    "ChosenResult",
    "InferenceResult",
    "Meta",
    "MetricFloat",
    "RegimeBestModel",
    "RegimeDefinition",
    "RunTrial",
    "TrainingQueue",
    "TrialScope",
    "TrainingRun",
    "UTCDateTime",
    "utcnow",
]

QUEUE_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "paused",
    "cancelled",
    "completed",
    "crashed",
    "failed",
)
RUN_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed")
QUEUE_ACTIONS: tuple[str, ...] = ("pause", "cancel")

# Named constraints, so later migrations (batch mode on SQLite) can refer to them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware (naive input is read as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        value = value.astimezone(timezone.utc)
        # SQLite's DATETIME text has no offset: convert first, then store the naive UTC time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class MetricFloat(TypeDecorator[float]):
    """A double whose NaN is stored as NULL and whose NULL reads back as NaN."""

    impl = Double()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> float:
        return math.nan if value is None else float(value)


class Base(DeclarativeBase):
    """Declarative base of the forexgrid tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TrainingQueue(Base):
    """One grid of configurations, trained in ``current_index`` order by one runner."""

    __tablename__ = "training_queue"
    __table_args__ = (
        CheckConstraint(_in("status", QUEUE_STATUSES), name="status"),
        CheckConstraint(
            f"requested_action IS NULL OR {_in('requested_action', QUEUE_ACTIONS)}",
            name="requested_action",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    queue_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    grid_json: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    settings_json: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    total_configs: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    current_index: Mapped[int] = mapped_column(Integer, default=0)
    completed_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    kept_count: Mapped[int] = mapped_column(Integer, default=0)
    deleted_count: Mapped[int] = mapped_column(Integer, default=0)
    requested_action: Mapped[str | None] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(200))
    # Fencing: a new random token at every claim; a runner's every write checks it.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    # Who runs the queue: the machine (display name and precise identity), the process
    # and when it started, so a runner on the same machine can tell whether it is alive.
    runner_host: Mapped[str | None] = mapped_column(String(255))
    runner_host_id: Mapped[str | None] = mapped_column(String(400))
    runner_pid: Mapped[int | None] = mapped_column(Integer)
    runner_process_start: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class TrainingRun(Base):
    """One configuration of a queue: its identity, status, model file and summary."""

    __tablename__ = "training_runs"
    __table_args__ = (
        UniqueConstraint("queue_id", "queue_index"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("training_queue.id"))
    queue_index: Mapped[int] = mapped_column(Integer)
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    config_json: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    model_type: Mapped[str] = mapped_column(String(40))
    symbol: Mapped[str] = mapped_column(String(40), index=True)
    timeframe: Mapped[str] = mapped_column(String(8))
    days_history: Mapped[int] = mapped_column(Integer)
    horizon: Mapped[int] = mapped_column(Integer)
    encoder: Mapped[str] = mapped_column(String(40))
    # The current truth (a later run may push the model out of every list)...
    is_model_kept: Mapped[bool] = mapped_column(Boolean, default=False)
    # ...and the decision made when the run completed (NULL: not completed yet).
    kept_when_trained: Mapped[bool | None] = mapped_column(Boolean)
    model_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    model_deleted_by_run_id: Mapped[int | None] = mapped_column(Integer)
    model_file_path: Mapped[str | None] = mapped_column(Text)
    model_file_sha256: Mapped[str | None] = mapped_column(String(64))
    model_file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    best_regimes: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    n_combinations: Mapped[int | None] = mapped_column(Integer)
    phase1_seconds: Mapped[float | None] = mapped_column(Double)
    phase2_seconds: Mapped[float | None] = mapped_column(Double)
    data_fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InferenceResult(Base):
    """One row of ``RunResult.results``: a combination's metrics in a regime and split."""

    __tablename__ = "inference_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"), index=True)
    signal: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[float] = mapped_column(Double)
    lookback: Mapped[int | None] = mapped_column(Integer)
    regime: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(16))
    sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    max_drawdown: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    win_rate: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    trades: Mapped[int | None] = mapped_column(Integer)
    total_return: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    profit_factor: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    exposure: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    # The regime rules the row was measured under (NULL: before rules were versioned).
    rules_version: Mapped[str | None] = mapped_column(String(16))


class ChosenResult(Base):
    """One row of ``RunResult.chosen``: the validation-chosen combination of one regime."""

    __tablename__ = "chosen_results"
    __table_args__ = (UniqueConstraint("run_id", "regime", "rules_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"))
    regime: Mapped[str] = mapped_column(String(100))
    signal: Mapped[str | None] = mapped_column(String(40))
    threshold: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    lookback: Mapped[int | None] = mapped_column(Integer)
    val_sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    val_trades: Mapped[int | None] = mapped_column(Integer)
    val_max_drawdown: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    val_win_rate: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    test_sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    test_max_drawdown: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    test_win_rate: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    test_trades: Mapped[int | None] = mapped_column(Integer)
    test_total_return: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    dsr: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    test_psr: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)
    combination: Mapped[int | None] = mapped_column(Integer)
    rules_version: Mapped[str | None] = mapped_column(String(16))


class RegimeDefinition(Base):
    """A named regime and its rules (validated by the rule parser before they are stored)."""

    __tablename__ = "regime_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rules_json: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegimeBestModel(Base):
    """One place in the list of bests of a symbol, regime and validation window (rank 1 is
    the best). Legacy rows (written before windows were recorded) have no window."""

    __tablename__ = "regime_best_models"
    __table_args__ = (
        UniqueConstraint(
            "symbol",
            "regime",
            "validation_start",
            "validation_end",
            "rank",
            name="uq_regime_best_models_list_rank",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(40))
    regime: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Double)
    signal: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[float] = mapped_column(Double)
    lookback: Mapped[int | None] = mapped_column(Integer)
    test_sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    achieved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    validation_start: Mapped[date | None] = mapped_column(Date)
    validation_end: Mapped[date | None] = mapped_column(Date)
    rules_version: Mapped[str | None] = mapped_column(String(16))
    # The grid-wide deflated Sharpe ratio at the last update of the list, the validation
    # Sharpe, and the daily moments the DSR is recomputed from as trials accumulate.
    dsr: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    val_sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    daily_sharpe: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    daily_skew: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    daily_kurtosis: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    daily_n: Mapped[int | None] = mapped_column(Integer)


class RunTrial(Base):
    """One run's trials in one regime: the daily validation returns of its combinations.

    ``returns`` is a zlib-compressed little-endian float32 array of shape
    ``(n_days, n_combinations)``; it is NULL when the run could not be scored under these
    rules (``status`` says why, e.g. its model file was deleted before the rules changed).
    Never deleted: the statistics of later runs count these trials.
    """

    __tablename__ = "run_trials"
    __table_args__ = (
        UniqueConstraint("run_id", "regime", "rules_version"),
        Index(
            "ix_run_trials_scope",
            "symbol",
            "regime",
            "rules_version",
            "validation_start",
            "validation_end",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"))
    symbol: Mapped[str] = mapped_column(String(40))
    regime: Mapped[str] = mapped_column(String(100))
    rules_version: Mapped[str] = mapped_column(String(16))
    validation_start: Mapped[date] = mapped_column(Date)
    validation_end: Mapped[date] = mapped_column(Date)
    n_days: Mapped[int] = mapped_column(Integer)
    n_combinations: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(40), default="scored")
    returns: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrialScope(Base):
    """The additive statistics of every trial of one scope: symbol, regime, rules version
    and validation window (:class:`forexgrid.core.trials.TrialStats`), and its PBO.

    ``gram``, ``z_sum`` and ``active_days`` are zlib-compressed little-endian float64 arrays
    of shape ``(n_days, n_days)``, ``(n_days,)`` and ``(n_days,)``.
    """

    __tablename__ = "trial_scopes"
    __table_args__ = (
        UniqueConstraint(
            "symbol",
            "regime",
            "rules_version",
            "validation_start",
            "validation_end",
            name="uq_trial_scopes_scope",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(40))
    regime: Mapped[str] = mapped_column(String(100))
    rules_version: Mapped[str] = mapped_column(String(16))
    validation_start: Mapped[date] = mapped_column(Date)
    validation_end: Mapped[date] = mapped_column(Date)
    n_days: Mapped[int] = mapped_column(Integer)
    n_runs: Mapped[int] = mapped_column(Integer, default=0)
    n_trials: Mapped[int] = mapped_column(Integer, default=0)
    sharpe_sum: Mapped[float] = mapped_column(Double, default=0.0)
    sharpe_sq_sum: Mapped[float] = mapped_column(Double, default=0.0)
    gram: Mapped[bytes] = mapped_column(LargeBinary)
    z_sum: Mapped[bytes] = mapped_column(LargeBinary)
    active_days: Mapped[bytes] = mapped_column(LargeBinary)
    pbo: Mapped[float] = mapped_column(MetricFloat(), nullable=True)
    pbo_blocks: Mapped[int | None] = mapped_column(Integer)
    pbo_trials: Mapped[int | None] = mapped_column(Integer)
    pbo_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The PBO's incremental state (forexgrid.core.pbo_state, compressed, with the runs it
    # covers); NULL until computed. Deferred: only update_pbo reads it.
    pbo_state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Meta(Base):
    """Key/value markers of the database itself (e.g. ``default_regimes_seeded``)."""

    __tablename__ = "forexgrid_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
