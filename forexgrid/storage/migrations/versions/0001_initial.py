"""Initial schema: queues, runs, inference and chosen results, regimes, bests, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written out by hand from ``forexgrid.storage.tables`` as it stood at this revision: a
migration must not import the current table classes, which will change after it.
Timestamps are ``DateTime(timezone=True)`` (stored in UTC); metrics are doubles whose NaN is
stored as NULL by the application.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _metric(name: str) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "forexgrid_meta",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_forexgrid_meta")),
    )
    op.create_table(
        "regime_definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rules_json", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regime_definitions")),
        sa.UniqueConstraint("name", name=op.f("uq_regime_definitions_name")),
    )
    op.create_table(
        "training_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_uuid", sa.String(36), nullable=False),
        sa.Column("queue_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("grid_json", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("settings_json", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("total_configs", sa.Integer(), nullable=False),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("current_index", sa.Integer(), nullable=False),
        sa.Column("completed_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("kept_count", sa.Integer(), nullable=False),
        sa.Column("deleted_count", sa.Integer(), nullable=False),
        sa.Column("requested_action", sa.String(16), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        _time("created_at", nullable=False),
        _time("started_at"),
        _time("updated_at", nullable=False),
        _time("heartbeat_at"),
        _time("completed_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "requested_action IS NULL OR requested_action IN ('pause', 'cancel')",
            name=op.f("ck_training_queue_requested_action"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'paused', 'cancelled', 'completed', 'crashed', "
            "'failed')",
            name=op.f("ck_training_queue_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_queue")),
        sa.UniqueConstraint("queue_uuid", name=op.f("uq_training_queue_queue_uuid")),
    )
    op.create_index(op.f("ix_training_queue_status"), "training_queue", ["status"])
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_uuid", sa.String(36), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("queue_index", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config_json", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(40), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("days_history", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("encoder", sa.String(40), nullable=False),
        sa.Column("is_model_kept", sa.Boolean(), nullable=False),
        sa.Column("model_file_path", sa.Text(), nullable=True),
        sa.Column("model_file_sha256", sa.String(64), nullable=True),
        sa.Column("model_file_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("best_regimes", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("n_combinations", sa.Integer(), nullable=True),
        sa.Column("phase1_seconds", sa.Double(), nullable=True),
        sa.Column("phase2_seconds", sa.Double(), nullable=True),
        sa.Column("data_fingerprint", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at", nullable=False),
        _time("started_at"),
        _time("completed_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed')",
            name=op.f("ck_training_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["training_queue.id"],
            name=op.f("fk_training_runs_queue_id_training_queue"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
        sa.UniqueConstraint(
            "queue_id", "queue_index", name=op.f("uq_training_runs_queue_id_queue_index")
        ),
        sa.UniqueConstraint("run_uuid", name=op.f("uq_training_runs_run_uuid")),
    )
    for column in ("config_hash", "status", "symbol"):
        op.create_index(op.f(f"ix_training_runs_{column}"), "training_runs", [column])
    op.create_table(
        "chosen_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("regime", sa.String(100), nullable=False),
        sa.Column("signal", sa.String(40), nullable=True),
        _metric("threshold"),
        sa.Column("lookback", sa.Integer(), nullable=True),
        _metric("val_sharpe"),
        sa.Column("val_trades", sa.Integer(), nullable=True),
        _metric("val_max_drawdown"),
        _metric("val_win_rate"),
        _metric("test_sharpe"),
        _metric("test_max_drawdown"),
        _metric("test_win_rate"),
        sa.Column("test_trades", sa.Integer(), nullable=True),
        _metric("test_total_return"),
        _metric("dsr"),
        _metric("test_psr"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_runs.id"], name=op.f("fk_chosen_results_run_id_training_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chosen_results")),
        sa.UniqueConstraint("run_id", "regime", name=op.f("uq_chosen_results_run_id_regime")),
    )
    op.create_table(
        "inference_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(40), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("lookback", sa.Integer(), nullable=True),
        sa.Column("regime", sa.String(100), nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        _metric("sharpe"),
        _metric("max_drawdown"),
        _metric("win_rate"),
        sa.Column("trades", sa.Integer(), nullable=True),
        _metric("total_return"),
        _metric("profit_factor"),
        _metric("exposure"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_runs.id"],
            name=op.f("fk_inference_results_run_id_training_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_results")),
    )
    op.create_index(op.f("ix_inference_results_run_id"), "inference_results", ["run_id"])
    op.create_table(
        "regime_best_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("regime", sa.String(100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("signal", sa.String(40), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("lookback", sa.Integer(), nullable=True),
        _metric("test_sharpe"),
        _time("achieved_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_runs.id"],
            name=op.f("fk_regime_best_models_run_id_training_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regime_best_models")),
        sa.UniqueConstraint(
            "symbol", "regime", "rank", name=op.f("uq_regime_best_models_symbol_regime_rank")
        ),
    )
    op.create_index(op.f("ix_regime_best_models_run_id"), "regime_best_models", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_regime_best_models_run_id"), table_name="regime_best_models")
    op.drop_table("regime_best_models")
    op.drop_index(op.f("ix_inference_results_run_id"), table_name="inference_results")
    op.drop_table("inference_results")
    op.drop_table("chosen_results")
    for column in ("symbol", "status", "config_hash"):
        op.drop_index(op.f(f"ix_training_runs_{column}"), table_name="training_runs")
    op.drop_table("training_runs")
    op.drop_index(op.f("ix_training_queue_status"), table_name="training_queue")
    op.drop_table("training_queue")
    op.drop_table("regime_definitions")
    op.drop_table("forexgrid_meta")
