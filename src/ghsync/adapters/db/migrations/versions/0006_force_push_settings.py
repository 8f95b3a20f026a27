"""per-project force-push settings: the operator's opt-in, and holding a person's force-pushes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:55:00

Both default to false: ghsync never force-pushes unless an operator enables it for a project, and a
person's force-push is handled like any divergence unless the project asks for it to be held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "github_allow_force_push", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "github_hold_force_pushes", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("github_hold_force_pushes")
        batch_op.drop_column("github_allow_force_push")
