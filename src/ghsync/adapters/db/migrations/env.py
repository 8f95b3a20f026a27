"""Alembic environment: runs the migrations on the connection handed over by ghsync.adapters.db.migrate."""

from __future__ import annotations

from alembic import context

import ghsync.adapters.db.models  # noqa: F401  (registers every table on Base.metadata)
from ghsync.adapters.db.base import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
