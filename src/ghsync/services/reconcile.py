"""The reconcile use case. Until the sync issues land it records a no-op operation that serves the
project's pending requests; and the outbox relay, which re-tells the queue of requests still pending.

The jobs runner calls `reconcile(project_id)`; it must be idempotent (a job can run more than once:
at-least-once delivery). The reasons are the outbox rows it serves, not job arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ghsync.domain.operations import SyncOperation
from ghsync.observability.logging import get_logger
from ghsync.ports.uow import ReconcileNotifier, UnitOfWorkFactory
from ghsync.services.projects import parse_project_id

log = get_logger(__name__)


class ReconcileService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def reconcile(self, project_id: str) -> str | None:
        """Serve the project's pending requests; returns the operation's id, or None for no project.

        An unknown (e.g. deleted) project is not an error: raising would only make the runner retry a
        job that can never succeed.
        """
        try:
            key = parse_project_id(project_id)
        except Exception:
            log.warning("reconcile_ignored", project_id=project_id, why="not a project id")
            return None
        started = datetime.now(UTC)
        with self._uow() as uow:
            if uow.projects.get(key) is None:
                log.info("reconcile_ignored", project_id=key, why="unknown project")
                return None
            pending = uow.requests.pending(key)
            operation_id = uow.operations.add(
                SyncOperation(
                    project_id=key,
                    operation_type="reconcile",
                    status="success",
                    direction="none",
                    started_at=started,
                    completed_at=datetime.now(UTC),
                    metadata={"noop": True, "reasons": sorted({r.reason for r in pending})},
                )
            )
            uow.requests.mark_served(key, [r.id for r in pending], operation_id)
            uow.commit()
        log.info("reconcile_noop", project_id=key, requests=len(pending), operation_id=operation_id)
        return operation_id


def relay_pending_requests(uow: UnitOfWorkFactory, notify: ReconcileNotifier) -> int:
    """Tell the queue again of every project with pending requests (after a crash between a commit and
    the queue, or a queue that was down); returns how many projects. Queued reconciles coalesce, so
    telling twice costs nothing."""
    with uow() as work:
        project_ids = work.requests.pending_projects()
    for project_id in project_ids:
        notify(project_id)
    return len(project_ids)
