"""Trials and comparable bests: run_trials, trial_scopes; windows and rule versions on bests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

- ``run_trials``: a run's daily validation returns per regime (its trials), never deleted.
- ``trial_scopes``: the additive statistics of all trials of a symbol, regime, rules version
  and validation window, and its probability of backtest overfitting.
- ``regime_best_models``: the validation window and rules version an entry was scored under,
  its grid-wide DSR and the moments it is recomputed from; lists are per window, so the
  unique rank is per (symbol, regime, window). Rows written before this revision keep a NULL
  window: they are shown as legacy and never ranked against new entries.
- ``chosen_results`` and ``inference_results``: the rules version of each row, so a regime
  rescored under new rules keeps its earlier rows; ``chosen_results.combination``.

Written out by hand (a migration must not import the current table classes). Batch mode
rebuilds the SQLite tables whose constraints change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCOPE = ("symbol", "regime", "rules_version", "validation_start", "validation_end")


def _metric(name: str) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "run_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("regime", sa.String(100), nullable=False),
        sa.Column("rules_version", sa.String(16), nullable=False),
        sa.Column("validation_start", sa.Date(), nullable=False),
        sa.Column("validation_end", sa.Date(), nullable=False),
        sa.Column("n_days", sa.Integer(), nullable=False),
        sa.Column("n_combinations", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("returns", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_runs.id"], name=op.f("fk_run_trials_run_id_training_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_trials")),
        sa.UniqueConstraint(
            "run_id",
            "regime",
            "rules_version",
            name=op.f("uq_run_trials_run_id_regime_rules_version"),
        ),
    )
    op.create_index("ix_run_trials_scope", "run_trials", list(_SCOPE))
    op.create_table(
        "trial_scopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("regime", sa.String(100), nullable=False),
        sa.Column("rules_version", sa.String(16), nullable=False),
        sa.Column("validation_start", sa.Date(), nullable=False),
        sa.Column("validation_end", sa.Date(), nullable=False),
        sa.Column("n_days", sa.Integer(), nullable=False),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("n_trials", sa.Integer(), nullable=False),
        sa.Column("sharpe_sum", sa.Double(), nullable=False),
        sa.Column("sharpe_sq_sum", sa.Double(), nullable=False),
        sa.Column("gram", sa.LargeBinary(), nullable=False),
        sa.Column("z_sum", sa.LargeBinary(), nullable=False),
        sa.Column("active_days", sa.LargeBinary(), nullable=False),
        _metric("pbo"),
        sa.Column("pbo_blocks", sa.Integer(), nullable=True),
        sa.Column("pbo_trials", sa.Integer(), nullable=True),
        sa.Column("pbo_computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trial_scopes")),
        sa.UniqueConstraint(*_SCOPE, name="uq_trial_scopes_scope"),
    )
    with op.batch_alter_table("regime_best_models") as batch:
        batch.add_column(sa.Column("validation_start", sa.Date(), nullable=True))
        batch.add_column(sa.Column("validation_end", sa.Date(), nullable=True))
        batch.add_column(sa.Column("rules_version", sa.String(16), nullable=True))
        for name in ("dsr", "val_sharpe", "daily_sharpe", "daily_skew", "daily_kurtosis"):
            batch.add_column(_metric(name))
        batch.add_column(sa.Column("daily_n", sa.Integer(), nullable=True))
        batch.drop_constraint("uq_regime_best_models_symbol_regime_rank", type_="unique")
        batch.create_unique_constraint(
            "uq_regime_best_models_list_rank",
            ["symbol", "regime", "validation_start", "validation_end", "rank"],
        )
    with op.batch_alter_table("chosen_results") as batch:
        batch.add_column(sa.Column("combination", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rules_version", sa.String(16), nullable=True))
        batch.drop_constraint("uq_chosen_results_run_id_regime", type_="unique")
        batch.create_unique_constraint(
            op.f("uq_chosen_results_run_id_regime_rules_version"),
            ["run_id", "regime", "rules_version"],
        )
    with op.batch_alter_table("inference_results") as batch:
        batch.add_column(sa.Column("rules_version", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inference_results") as batch:
        batch.drop_column("rules_version")
    with op.batch_alter_table("chosen_results") as batch:
        batch.drop_constraint("uq_chosen_results_run_id_regime_rules_version", type_="unique")
        batch.create_unique_constraint("uq_chosen_results_run_id_regime", ["run_id", "regime"])
        batch.drop_column("rules_version")
        batch.drop_column("combination")
    with op.batch_alter_table("regime_best_models") as batch:
        batch.drop_constraint("uq_regime_best_models_list_rank", type_="unique")
        batch.create_unique_constraint(
            "uq_regime_best_models_symbol_regime_rank", ["symbol", "regime", "rank"]
        )
        for name in (
            "daily_n",
            "daily_kurtosis",
            "daily_skew",
            "daily_sharpe",
            "val_sharpe",
            "dsr",
            "rules_version",
            "validation_end",
            "validation_start",
        ):
            batch.drop_column(name)
    op.drop_table("trial_scopes")
    op.drop_index("ix_run_trials_scope", table_name="run_trials")
    op.drop_table("run_trials")
