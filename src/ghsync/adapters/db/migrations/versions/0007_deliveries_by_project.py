"""a project's deliveries found by index: the hook's health view read the whole dedup table

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:40:00

`GET /v1/webhooks/github/{projectId}/health` reads a project's newest deliveries. Without an index it
scanned and sorted every delivery kept for GITHUB_DELIVERY_TTL: 40 ms over a week of a busy
installation's 210,000 (bench/webhook_health.py), for each call.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_project_received", ["project_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_project_received")
