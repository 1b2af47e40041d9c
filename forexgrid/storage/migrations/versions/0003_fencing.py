"""Fenced runners and honest counts: claim tokens, runner identity, model-file history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

- ``training_queue.claim_token``: a new random token at every claim. Every write a runner
  makes checks it in the same transaction, so a runner that lost its queue (declared
  crashed, then claimed by another) writes nothing more.
- ``training_queue.runner_host``, ``runner_host_id``, ``runner_pid``,
  ``runner_process_start``: who runs the queue, precisely enough that a runner on the same
  machine can tell at once whether that process is still alive.
- ``training_runs.kept_when_trained``: the keep decision made when the run completed (its
  ``is_model_kept`` is the current truth: a later run may push the model out);
  ``model_deleted_at`` and ``model_deleted_by_run_id`` say when and by which run.

Written out by hand (a migration must not import the current table classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_queue") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(36), nullable=True))
        batch.add_column(sa.Column("runner_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("runner_host_id", sa.String(400), nullable=True))
        batch.add_column(sa.Column("runner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("runner_process_start", sa.Double(), nullable=True))
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("kept_when_trained", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("model_deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("model_deleted_by_run_id", sa.Integer(), nullable=True))
    # Runs completed before this revision: the decision at the time is unknown, but a run
    # whose model is kept now was kept then.
    op.execute("UPDATE training_runs SET kept_when_trained = is_model_kept WHERE is_model_kept")


def downgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("model_deleted_by_run_id")
        batch.drop_column("model_deleted_at")
        batch.drop_column("kept_when_trained")
    with op.batch_alter_table("training_queue") as batch:
        for name in (
            "runner_process_start",
            "runner_pid",
            "runner_host_id",
            "runner_host",
            "claim_token",
        ):
            batch.drop_column(name)
