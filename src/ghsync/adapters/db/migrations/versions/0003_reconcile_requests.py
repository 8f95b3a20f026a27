"""reconcile requests (the outbox); no assumed default branch

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00

`reconcile_requests`: a reconcile request is written in the requester's transaction (with the
delivery, the version, the link that caused it), pending until the operation that served it is set.
`projects.github_branch` loses its `main` default: the default branch is always read from GitHub.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ghsync.adapters.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("requested_at", ghsync.adapters.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_reconcile_requests_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_requests")),
    )
    with op.batch_alter_table("reconcile_requests", schema=None) as batch_op:
        batch_op.create_index("ix_reconcile_requests_pending", ["project_id", "operation_id"], unique=False)
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.alter_column("github_branch", existing_type=sa.String(length=255), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.alter_column("github_branch", existing_type=sa.String(length=255), server_default="main")
    with op.batch_alter_table("reconcile_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_reconcile_requests_pending")
    op.drop_table("reconcile_requests")
