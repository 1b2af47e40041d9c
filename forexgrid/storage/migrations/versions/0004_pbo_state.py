"""Incremental PBO: the CSCV state of each trial scope.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

- ``trial_scopes.pbo_state``: the compressed state of the scope's probability of backtest
  overfitting (:class:`forexgrid.core.pbo_state.PBOState`: per split the chosen trial and
  its counts, per distinct trial a digest, and the runs it covers), so that a queue's end
  adds only its new trials instead of scoring every trial of the scope again. NULL until
  the scope's PBO is next computed (then from scratch, once).

Written out by hand (a migration must not import the current table classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trial_scopes") as batch:
        batch.add_column(sa.Column("pbo_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trial_scopes") as batch:
        batch.drop_column("pbo_state")
