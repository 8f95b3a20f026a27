"""operations' direction wide enough for 'from_github'; projects found by repository id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:10:00

The plan's `direction VARCHAR(10)` cannot hold 'from_github' (11 characters): PostgreSQL refused every
inbound operation (SQLite does not enforce lengths). Webhooks and polling look projects up by the
repository's id, so it gets an index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("github_sync_operations", schema=None) as batch_op:
        batch_op.alter_column(
            "direction",
            existing_type=sa.String(length=10),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("ix_projects_github_repository_id", ["github_repository_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_github_repository_id")
    with op.batch_alter_table("github_sync_operations", schema=None) as batch_op:
        batch_op.alter_column(
            "direction",
            existing_type=sa.String(length=16),
            type_=sa.String(length=10),
            existing_nullable=False,
        )
