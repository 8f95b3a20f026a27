"""periodic runs and throttle state

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:10:00

`periodic_runs`: a periodic task's period is claimed by inserting (task, period_start), so of all the
worker processes of a deployment exactly one runs it. `throttle_state`: the secondary-limit cool-down
and the last quota seen per installation, shared by every process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghsync.adapters.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_runs",
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("period_start", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("task", "period_start", name=op.f("pk_periodic_runs")),
    )
    op.create_table(
        "throttle_state",
        sa.Column("installation_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cooldown_until", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cooldown_kind", sa.String(length=20), nullable=True),
        sa.Column("quota_limit", sa.Integer(), nullable=True),
        sa.Column("quota_remaining", sa.Integer(), nullable=True),
        sa.Column("quota_used", sa.Integer(), nullable=True),
        sa.Column("quota_resource", sa.String(length=64), nullable=True),
        sa.Column("quota_reset_at", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quota_observed_at", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("installation_id", name=op.f("pk_throttle_state")),
    )


def downgrade() -> None:
    op.drop_table("throttle_state")
    op.drop_table("periodic_runs")
