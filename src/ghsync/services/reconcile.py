"""The reconcile use case. Until the sync issues land its body records a no-op sync operation.

The jobs runner calls it with the project id and the coalesced reasons; it must be idempotent
(a job can run more than once: at-least-once delivery).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import Engine

from ghsync.adapters.db.base import utcnow
from ghsync.adapters.db.engine import session_factory
from ghsync.adapters.db.models import ProjectRow, SyncOperationRow

log = logging.getLogger(__name__)


def record_noop_reconcile(engine: Engine, project_id: str, reasons: list[str]) -> uuid.UUID | None:
    """Record a `reconcile` operation that did nothing; returns its id, or None for an unknown project.

    An unknown (e.g. deleted) project is not an error: raising would only make the runner retry a
    job that can never succeed.
    """
    try:
        key = uuid.UUID(project_id)
    except ValueError:
        log.warning("reconcile requested for %r, which is not a project id; ignored", project_id)
        return None
    started_at = utcnow()
    with session_factory(engine)() as session, session.begin():
        if session.get(ProjectRow, key) is None:
            log.info("reconcile requested for unknown project %s; ignored", project_id)
            return None
        operation = SyncOperationRow(
            project_id=key,
            operation_type="reconcile",
            status="success",
            direction="none",
            metadata_={"noop": True, "reasons": list(reasons)},
            started_at=started_at,
            completed_at=utcnow(),
        )
        session.add(operation)
        session.flush()
        operation_id = operation.id
    log.info("reconcile of %s recorded as a no-op (reasons: %s)", project_id, ", ".join(reasons))
    return operation_id


class NoopReconciler:
    """The reconcile handler for the jobs runner: `NoopReconciler(engine)(project_id, reasons)`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self, project_id: str, reasons: list[str]) -> None:
        record_noop_reconcile(self._engine, project_id, reasons)
