"""What the storage package hands out: frozen dataclasses built from rows.

Rows (ORM objects) never leave :mod:`forexgrid.storage`; callers get these snapshots, which
stay valid after the session is closed and never touch the database again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from forexgrid.core.regimes import Regime
from forexgrid.grid import GridSpec, TrainingConfig
from forexgrid.storage.tables import RegimeDefinition, TrainingQueue, TrainingRun

__all__ = ["QueueInfo", "RegimeInfo", "RunInfo", "grid_from_json", "grid_to_json"]


def grid_to_json(spec: GridSpec) -> dict[str, Any]:
    """Return a GridSpec as JSON-safe plain data (``GridSpec(**data)`` rebuilds it)."""
    hyper = None
    if spec.hyperparameters:
        hyper = {
            model: {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
            for model, params in spec.hyperparameters.items()
        }
    return {
        "model_types": list(spec.model_types),
        "symbols": list(spec.symbols),
        "timeframes": list(spec.timeframes),
        "days_history": list(spec.days_history),
        "horizons": list(spec.horizons),
        "encoders": list(spec.encoders),
        "indicator_timeframes": [list(s) for s in spec.indicator_timeframes],
        "hyperparameters": hyper,
    }


def grid_from_json(data: dict[str, Any]) -> GridSpec:
    """Rebuild the GridSpec stored by :func:`grid_to_json`.

    Raises
    ------
    ConfigError
        If the stored grid is no longer valid (e.g. a model type was removed).
    """
    return GridSpec(**data)


@dataclass(frozen=True)
class QueueInfo:
    """A training queue as stored (read-only snapshot).

    Attributes mirror the ``training_queue`` columns; ``grid`` and ``settings`` are the stored
    JSON (``grid_json``, ``settings_json``). ``total`` and ``skipped`` are aliases of
    ``total_configs`` and ``skipped_count`` (configurations left out because an identical
    model was already trained).
    """

    id: int
    queue_uuid: str
    queue_name: str
    status: str
    total_configs: int
    skipped_count: int
    current_index: int
    completed_count: int
    failed_count: int
    kept_count: int
    deleted_count: int
    requested_action: str | None
    owner: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    heartbeat_at: datetime | None
    completed_at: datetime | None
    error: str | None
    grid: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    #: The fencing token of the current (or last) claim; see ``storage.queues.fence``.
    claim_token: str | None = field(default=None, compare=False, repr=False)
    runner_host: str | None = None
    runner_pid: int | None = None
    runner_host_id: str | None = field(default=None, compare=False, repr=False)
    runner_process_start: float | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_row(cls, row: TrainingQueue) -> QueueInfo:
        return cls(
            id=row.id,
            queue_uuid=row.queue_uuid,
            queue_name=row.queue_name,
            status=row.status,
            total_configs=row.total_configs,
            skipped_count=row.skipped_count,
            current_index=row.current_index,
            completed_count=row.completed_count,
            failed_count=row.failed_count,
            kept_count=row.kept_count,
            deleted_count=row.deleted_count,
            requested_action=row.requested_action,
            owner=row.owner,
            created_at=row.created_at,
            started_at=row.started_at,
            updated_at=row.updated_at,
            heartbeat_at=row.heartbeat_at,
            completed_at=row.completed_at,
            error=row.error,
            grid=dict(row.grid_json or {}),
            settings=dict(row.settings_json or {}),
            claim_token=row.claim_token,
            runner_host=row.runner_host,
            runner_pid=row.runner_pid,
            runner_host_id=row.runner_host_id,
            runner_process_start=row.runner_process_start,
        )

    @property
    def total(self) -> int:
        """Configurations in the queue (after skipping already-trained ones)."""
        return self.total_configs

    @property
    def skipped(self) -> int:
        """Configurations of the grid left out because they were already trained."""
        return self.skipped_count

    @property
    def done(self) -> int:
        """Configurations finished (completed or failed)."""
        return self.completed_count + self.failed_count

    @property
    def remaining(self) -> int:
        """Configurations not finished yet."""
        return max(0, self.total_configs - self.done)

    @property
    def progress(self) -> float:
        """Share of configurations finished, 0.0 .. 1.0 (1.0 for an empty queue)."""
        return 1.0 if self.total_configs == 0 else self.done / self.total_configs

    def spec(self) -> GridSpec:
        """Rebuild the queue's :class:`~forexgrid.grid.GridSpec` from ``grid``."""
        return grid_from_json(self.grid)

    def _repr_html_(self) -> str:
        rows = [
            (
                "status",
                self.status
                + (f" ({self.requested_action} requested)" if self.requested_action else ""),
            ),
            ("progress", f"{self.done}/{self.total_configs} ({self.progress:.0%})"),
            ("completed / failed", f"{self.completed_count} / {self.failed_count}"),
            ("kept / deleted", f"{self.kept_count} / {self.deleted_count}"),
            ("skipped (already trained)", str(self.skipped_count)),
            ("current index", str(self.current_index)),
            ("owner", self.owner or ""),
            (
                "heartbeat",
                self.heartbeat_at.isoformat(timespec="seconds") if self.heartbeat_at else "",
            ),
            ("error", self.error or ""),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
            if v
        )
        return (
            f"<table><caption style='text-align:left'>Queue {self.id}: "
            f"{html.escape(self.queue_name)}</caption>{body}</table>"
        )


@dataclass(frozen=True)
class RunInfo:
    """A training run (one configuration of a queue) as stored (read-only snapshot).

    Attributes mirror the ``training_runs`` columns; ``config_json`` is the configuration's
    :meth:`~forexgrid.grid.TrainingConfig.to_dict`, rebuilt by :attr:`config`.
    """

    id: int
    run_uuid: str
    queue_id: int
    queue_index: int
    config_hash: str
    status: str
    model_type: str
    symbol: str
    timeframe: str
    days_history: int
    horizon: int
    encoder: str
    is_model_kept: bool
    model_file_path: str | None
    model_file_sha256: str | None
    model_file_size_bytes: int | None
    best_regimes: tuple[str, ...]
    n_combinations: int | None
    phase1_seconds: float | None
    phase2_seconds: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    config_json: dict[str, Any] = field(
        default_factory=dict, hash=False, compare=False, repr=False
    )
    data_fingerprint: dict[str, Any] | None = field(
        default=None, hash=False, compare=False, repr=False
    )
    #: The keep decision when the run completed (``is_model_kept`` is the current truth).
    kept_when_trained: bool | None = None
    model_deleted_at: datetime | None = None
    #: The run whose selection pushed this model out of every list (None: a command).
    model_deleted_by_run_id: int | None = None

    @classmethod
    def from_row(cls, row: TrainingRun) -> RunInfo:
        return cls(
            id=row.id,
            run_uuid=row.run_uuid,
            queue_id=row.queue_id,
            queue_index=row.queue_index,
            config_hash=row.config_hash,
            status=row.status,
            model_type=row.model_type,
            symbol=row.symbol,
            timeframe=row.timeframe,
            days_history=row.days_history,
            horizon=row.horizon,
            encoder=row.encoder,
            is_model_kept=bool(row.is_model_kept),
            model_file_path=row.model_file_path,
            model_file_sha256=row.model_file_sha256,
            model_file_size_bytes=row.model_file_size_bytes,
            best_regimes=tuple(row.best_regimes or ()),
            n_combinations=row.n_combinations,
            phase1_seconds=row.phase1_seconds,
            phase2_seconds=row.phase2_seconds,
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            config_json=dict(row.config_json or {}),
            data_fingerprint=dict(row.data_fingerprint) if row.data_fingerprint else None,
            kept_when_trained=row.kept_when_trained,
            model_deleted_at=row.model_deleted_at,
            model_deleted_by_run_id=row.model_deleted_by_run_id,
        )

    @property
    def config(self) -> TrainingConfig:
        """The run's :class:`~forexgrid.grid.TrainingConfig`."""
        return TrainingConfig.from_dict(self.config_json)


@dataclass(frozen=True)
class RegimeInfo:
    """A stored regime definition (read-only snapshot)."""

    id: int
    name: str
    description: str
    rules: dict[str, str] = field(hash=False, compare=False)
    active: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RegimeDefinition) -> RegimeInfo:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description or "",
            rules=dict(row.rules_json),
            active=bool(row.active),
            is_default=bool(row.is_default),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def to_regime(self) -> Regime:
        """The :class:`~forexgrid.core.regimes.Regime` this definition describes."""
        return Regime(self.name, dict(self.rules), self.description, self.active)
